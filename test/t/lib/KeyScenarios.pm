
# The seed scenarios of key custody, run under pgbench load against any
# provider that can disable a key (used by 014_provider_command.pl and
# 015_provider_pkcs11.pl):
#
#   1. 1,500 records inserted at a steady rate, then read back;
#   2. the provider key changed under a read load, once for each of
#      "changes" (through an alias, directly): no read fails, the status
#      goes UPDATING, then ENABLED;
#   3. the key disabled under a read-and-write load: within a few check
#      intervals every statement fails with LD001 and the status is
#      KMS_KEY_INACCESSIBLE with its since-time; enabled again: ENABLED by
#      itself, the load succeeds, every row committed before is there;
#   4. a role without the key grant: a clean 42501.
#
# Each writing transaction also inserts into a heap table, "witness": what
# committed there is the independent record of what must be in the ledger.

package KeyScenarios;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use LedgerTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(run_key_scenarios fill_records script pgbench);

# Watch ledger_status() from one session until a change was seen pending
# or running and then finished; returns what it saw.
my $watch_fn = q{
CREATE OR REPLACE FUNCTION watch_status() RETURNS text LANGUAGE plpgsql AS $$
DECLARE s record; seen text := ''; t0 timestamptz := clock_timestamp();
BEGIN
  LOOP
    SELECT * INTO s FROM ledger_status();
    IF s.status = 'UPDATING' AND seen = '' THEN seen := 'UPDATING '; END IF;
    IF s.status = 'ENABLED' AND seen <> '' THEN RETURN seen || 'ENABLED'; END IF;
    IF clock_timestamp() - t0 > interval '60 s' THEN RETURN seen || 'timeout'; END IF;
    PERFORM pg_sleep(0.001);
  END LOOP;
END $$;
};

# A pgbench script file in the node's directory.
sub script
{
	my ($node, $name, $body) = @_;
	my $path = $node->basedir . "/$name.sql";
	unlink $path;
	append_to_file($path, $body);
	return $path;
}

# pgbench with 4 clients for $secs seconds, in the background; returns the
# harness and its output handles.
sub pgbench
{
	my ($node, $secs, @files) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-T', $secs, (map { ('-f', $_) } @files),
			'-p', $node->port, '-h', $node->host, 'postgres' ],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

sub status
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT status, inaccessible_since IS NOT NULL FROM ledger_status()});
}

# Change the provider key to $key under a read load; $expect is what
# ledger_status() must then show as "key id|alias".
sub change_key
{
	my ($node, $p, $key, $expect, $read) = @_;
	my ($wout, $werr) = ('', '');
	my $watch = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', 'SELECT watch_status()' ],
		'>', \$wout, '2>', \$werr);
	my $load = pgbench($node, 4, $read);
	sleep(1);
	my $id = $node->safe_psql('postgres',
		"SELECT ledger_rotate_key('provider_key', '$key', '$p->{provider}')");
	$watch->finish;
	chomp $wout;
	is($wout, 'UPDATING ENABLED', "change to $key: the status went UPDATING, then ENABLED");
	ok($load->{h}->finish, "change to $key: no read failed") or diag(${ $load->{err} });
	is($node->safe_psql('postgres',
		"SELECT state, error FROM ledger.key_changes WHERE change_id = $id"),
		'done|', "change to $key: the change is done");
	is($node->safe_psql('postgres', q{
		SELECT provider || '|' || provider_key_id || '|' || coalesce(provider_key_alias, '')
		  FROM ledger_status()}),
		"$p->{provider}|$expect", "change to $key: ledger_status() shows the new key");
}

# The tables every scenario uses, and scenario 1: 1,500 records inserted
# at a steady rate, then read back.  Returns the checksum of the records.
my $checksum_sql = q{
	SELECT md5(string_agg(id || ':' || owner || ':' || balance, ',' ORDER BY id)) FROM acct};

sub fill_records
{
	my ($node) = @_;

	$node->safe_psql('postgres', q{
		CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
		CREATE TABLE events (id bigint PRIMARY KEY, v int) USING ledger;
		CREATE TABLE witness (id bigint PRIMARY KEY);
		CREATE SEQUENCE ids;
	});
	my $fill = script($node, 'fill', q{
INSERT INTO acct SELECT coalesce(max(id), 0) + 1, 'owner-' || (coalesce(max(id), 0) + 1), 100 FROM acct;
});
	$node->command_ok(
		[ 'pgbench', '-n', '-c', '1', '-t', '1500', '-R', '1000', '-f', $fill,
			'-p', $node->port, '-h', $node->host, 'postgres' ],
		'1: pgbench inserted 1,500 records at a steady rate');
	is($node->safe_psql('postgres', q{
		SELECT count(*), min(id), max(id), sum(balance), count(*) FILTER (WHERE owner = 'owner-' || id)
		  FROM acct}),
		'1500|1|1500|150000|1500', '1: all 1,500 records read back as written');
	return $node->safe_psql('postgres', $checksum_sql);
}

sub run_key_scenarios
{
	my ($node, %p) = @_;
	my $interval = $p{interval_ms} / 1000;

	$node->safe_psql('postgres', $watch_fn);
	my $before = fill_records($node);

	# --- 2. The provider key changes under a read load -----------------------
	my $read = script($node, 'read', q{
\set id random(1, 1500)
SELECT owner, balance FROM acct WHERE id = :id;
});
	change_key($node, \%p, @$_, $read) foreach @{ $p{changes} };

	# --- 3. The key is disabled under a read-and-write load ------------------
	my $write = script($node, 'write', q{
\set v random(1, 1000000)
BEGIN;
SELECT nextval('ids') AS id \gset
INSERT INTO events VALUES (:id, :v);
INSERT INTO witness VALUES (:id);
COMMIT;
});
	my $load = pgbench($node, 30, "$write\@1", "$read\@3");
	usleep(2_000_000);
	ok($node->safe_psql('postgres', 'SELECT count(*) FROM witness') > 0,
		'3: the load writes before the key is disabled');
	$p{disable}->();
	my $t0 = time;
	ok($node->poll_query_until('postgres', q{SELECT status FROM ledger_status()},
		'KMS_KEY_INACCESSIBLE'), '3: the status becomes KMS_KEY_INACCESSIBLE');
	my $refused = time - $t0;
	diag(sprintf('refused %.2f s after the key was disabled (interval %.1f s)', $refused, $interval));
	cmp_ok($refused, '<', 10 * $interval, '3: ... within a few check intervals');
	is(status($node), 'KMS_KEY_INACCESSIBLE|t', '3: ... with the time it began');
	foreach my $sql ('SELECT * FROM acct WHERE id = 1', q{INSERT INTO acct VALUES (9999, 'late', 1)},
		'UPDATE acct SET balance = 0 WHERE id = 2', 'DELETE FROM acct WHERE id = 3')
	{
		my $e = psql_error($node, $sql);
		is($e->{sqlstate}, 'LD001', "3: refused with LD001: $sql");
		unlike($e->{stdout}, qr/owner-/, "3: ... and no data shown: $sql");
	}
	my $e = psql_error($node, 'SELECT * FROM acct WHERE id = 1');
	like($e->{message}, qr/ledger does not have access to its provider key/,
		'3: the message names the provider key');
	like($e->{detail}, qr/inaccessible since .*Key provider "$p{provider}"/,
		'3: the detail says since when, and names the provider');
	$load->{h}->finish;
	like(${ $load->{err} }, qr/LD001|does not have access to its provider key/,
		'3: the load met the refusal');

	$p{enable}->();
	$t0 = time;
	ok($node->poll_query_until('postgres', q{SELECT status FROM ledger_status()}, 'ENABLED'),
		'3: the status returns to ENABLED by itself');
	diag(sprintf('recovered %.2f s after the key was enabled', time - $t0));
	cmp_ok(time - $t0, '<', 10 * $interval, '3: ... within a few check intervals');
	my $witnessed = $node->safe_psql('postgres', 'SELECT count(*) FROM witness');
	$load = pgbench($node, 3, "$write\@1", "$read\@3");
	ok($load->{h}->finish, '3: the same load succeeds again') or diag(${ $load->{err} });
	ok($node->safe_psql('postgres', 'SELECT count(*) FROM witness') > $witnessed, '3: ... and writes');
	is($node->safe_psql('postgres', $checksum_sql), $before,
		'3: every record written before the refusal is there and unchanged');
	is($node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM (SELECT id FROM events EXCEPT SELECT id FROM witness) a) || ','
		    || (SELECT count(*) FROM (SELECT id FROM witness EXCEPT SELECT id FROM events) b)}),
		'0,0', '3: the ledger holds exactly the transactions that committed');

	# --- 4. A role without the key grant ---------------------------------------
	$node->safe_psql('postgres', 'CREATE ROLE clerk LOGIN; GRANT SELECT ON acct TO clerk;');
	$e = psql_error($node, 'SELECT * FROM acct WHERE id = 1',
		connstr => $node->connstr('postgres') . ' user=clerk');
	is($e->{sqlstate}, '42501', '4: a role with SELECT but no key grant gets 42501');
	unlike($e->{stdout} . $e->{stderr}, qr/owner-1\b/, '4: ... and sees no data');
}

1;
