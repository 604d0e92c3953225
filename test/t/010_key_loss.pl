
# Key loss and recovery under load, with the file provider: the keyring
# disappears while pgbench reads and writes, every statement is refused
# with LD001 within a check interval, and once the keyring is back the
# ledger serves again by itself with every committed row intact.  Also the
# key grant: table privileges alone read nothing.
#
# Each writing transaction also inserts into a heap table, "witness": what
# committed there is the independent record of what must be in the ledger.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use KeyScenarios;
use LedgerTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $interval_ms = 500;
# No autovacuum: its ANALYZE would unwrap keys and notice a loss too,
# where this test wants to see what the worker's check and the
# generation counter do.
my $node = ledger_node('keyloss',
	extra_conf => "ledger.key_check_interval = '${interval_ms}ms'\nmax_connections = 30\n"
	  . "autovacuum = off\n");
my $keyring = keyring_path($node);

sub status
{
	return $node->safe_psql('postgres',
		q{SELECT status, inaccessible_since IS NOT NULL FROM ledger_status()});
}


# --- 1. 1,500 records at a steady rate, then read back ---------------------

my $acct_before = fill_records($node);
is(status(), 'ENABLED|f', 'the status is ENABLED');

# --- 3. The keyring disappears under a read-and-write load ----------------

my $write = script($node, 'write', q{
\set v random(1, 1000000)
BEGIN;
SELECT nextval('ids') AS id \gset
INSERT INTO events VALUES (:id, :v);
INSERT INTO witness VALUES (:id);
COMMIT;
});
my $read = script($node, 'read', q{
\set id random(1, 1500)
SELECT owner, balance FROM acct WHERE id = :id;
});

sub start_load { return pgbench($node, $_[0], "$write\@1", "$read\@3") }

# A session that holds unwrapped keys from before the loss.
my ($sin, $sout, $serr) = ('', '', '');
my $session = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres') ],
	'<', \$sin, '>', \$sout, '2>', \$serr);
$sin .= "SELECT owner FROM acct WHERE id = 7;\n";
$session->pump until $sout =~ /owner-7/;

my $load = start_load(30);
usleep(2_000_000);
ok($node->safe_psql('postgres', 'SELECT count(*) FROM witness') > 0,
	'the load writes before the keyring goes away');

my $away = "$keyring.away";
rename($keyring, $away) or die "rename: $!";
my $t0 = time;
ok($node->poll_query_until('postgres',
	q{SELECT status FROM ledger_status()}, 'KMS_KEY_INACCESSIBLE'),
	'the status becomes KMS_KEY_INACCESSIBLE');
my $refused_after = time - $t0;
diag(sprintf('refused %.2f s after the keyring went away (check interval %.1f s)',
	$refused_after, $interval_ms / 1000));
# Generous: a check interval, a poll interval and a slow machine.
cmp_ok($refused_after, '<', 10 * $interval_ms / 1000, '... within a few check intervals');

# The session that unwrapped its keys before the loss is cut off too.
$sin .= "SELECT owner FROM acct WHERE id = 8;\n";
$session->pump until $serr =~ /ERROR/;
like($serr, qr/LD001.*\n.*inaccessible since/,
	'a session holding keys from before the loss is refused by the key status');
unlike($sout, qr/owner-8/, '... and reads nothing');
$sin .= "\\q\n";
$session->finish;
is(status(), 'KMS_KEY_INACCESSIBLE|t', '... with the time it began');

# Every kind of access is refused, in new sessions and by the load's own
# sessions, which still held unwrapped keys.
foreach my $sql (
	'SELECT * FROM acct WHERE id = 1',
	'SELECT count(*) FROM acct',
	q{INSERT INTO acct VALUES (9999, 'late', 1)},
	'UPDATE acct SET balance = 0 WHERE id = 2',
	'DELETE FROM acct WHERE id = 3',
	'SELECT * FROM ledger_history(NULL::acct, 1)')
{
	my $e = psql_error($node, $sql);
	is($e->{sqlstate}, 'LD001', "refused with LD001: $sql");
	unlike($e->{stdout}, qr/owner-/, "... and no data shown: $sql");
}
my $e = psql_error($node, 'SELECT * FROM acct WHERE id = 1');
like($e->{message}, qr/ledger does not have access to its provider key/, 'the message names the provider key');
like($e->{detail}, qr/inaccessible since .*the file does not exist/, 'the detail says since when and why');
like($e->{hint}, qr/Restore the keyring file.*serves again/, 'the hint says what to do, and that the ledger recovers by itself');

$load->{h}->finish;
like(${ $load->{err} }, qr/LD001|does not have access to its provider key/,
	'the load met the refusal');

# --- The keyring comes back ------------------------------------------------

rename($away, $keyring) or die "rename: $!";
$t0 = time;
ok($node->poll_query_until('postgres', q{SELECT status FROM ledger_status()}, 'ENABLED'),
	'the status returns to ENABLED by itself');
diag(sprintf('recovered %.2f s after the keyring came back', time - $t0));
is(status(), 'ENABLED|f', '... and no longer says inaccessible since');

my $witness_before = $node->safe_psql('postgres', 'SELECT count(*) FROM witness');
$node->command_ok(
	[ 'pgbench', '-n', '-c', '4', '-T', '3', '-f', "$write\@1", '-f', "$read\@3",
		'-p', $node->port, '-h', $node->host, 'postgres' ],
	'the same load succeeds again');
ok($node->safe_psql('postgres', 'SELECT count(*) FROM witness') > $witness_before,
	'... and writes');

is($node->safe_psql('postgres',
	q{SELECT md5(string_agg(id || ':' || owner || ':' || balance, ',' ORDER BY id)) FROM acct}),
	$acct_before, 'every record written before the loss is there and unchanged');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT id FROM events EXCEPT SELECT id FROM witness) a}) . ','
	  . $node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT id FROM witness EXCEPT SELECT id FROM events) b}),
	'0,0', 'the ledger holds exactly the transactions that committed, no more, no less');
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM ledger_verify('full')}),
	't', 'ledger_verify(full) passes');

# --- Loss noticed with no session touching the ledger ---------------------

# Only the worker's check can notice: nothing else uses the key.
rename($keyring, $away) or die "rename: $!";
ok($node->poll_query_until('postgres', q{SELECT status FROM ledger_status()},
	'KMS_KEY_INACCESSIBLE'), 'the worker notices a loss on its own');
rename($away, $keyring) or die "rename: $!";
ok($node->poll_query_until('postgres', q{SELECT status FROM ledger_status()}, 'ENABLED'),
	'... and the recovery');

# --- 4. The key grant -------------------------------------------------------

$node->safe_psql('postgres', q{
	CREATE ROLE clerk LOGIN;
	GRANT SELECT, INSERT ON acct TO clerk;
	GRANT EXECUTE ON FUNCTION ledger_verify(text) TO clerk;
});
$e = psql_error($node, 'SELECT * FROM acct WHERE id = 1', connstr => $node->connstr('postgres') . ' user=clerk');
is($e->{sqlstate}, '42501', 'a role with SELECT but no key grant is refused with 42501');
like($e->{message}, qr/permission denied to use the keys of the ledger/, '... saying so');
unlike($e->{stdout} . $e->{stderr}, qr/owner-1\b/, '... and shows no data');
$e = psql_error($node, q{INSERT INTO acct VALUES (10001, 'x', 1)},
	connstr => $node->connstr('postgres') . ' user=clerk');
is($e->{sqlstate}, '42501', '... and so is a write');
is($node->safe_psql('postgres', q{SELECT revisions > 0 FROM ledger_verify('chain')},
		connstr => $node->connstr('postgres') . ' user=clerk'),
	't', 'without the key grant, ledger_verify(chain) still works');
$e = psql_error($node, q{SELECT * FROM ledger_verify('full')},
	connstr => $node->connstr('postgres') . ' user=clerk');
is($e->{sqlstate}, '42501', '... but ledger_verify(full), which opens rows, is refused');

# A role without the key grant cannot borrow a holder's: code it owns runs
# as itself, and both the session's role and the current user need it.
$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	GRANT SELECT ON acct TO mallory;
	CREATE TABLE loot (v text);
	CREATE TABLE inbox (v text);
	ALTER TABLE loot OWNER TO mallory;
	ALTER TABLE inbox OWNER TO mallory;
	GRANT INSERT ON inbox TO clerk;
	CREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
	BEGIN INSERT INTO loot SELECT owner FROM acct; RETURN NEW; END $$;
	ALTER FUNCTION steal() OWNER TO mallory;
	CREATE TRIGGER steal AFTER INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION steal();
	GRANT ledger_key_user TO clerk;
});
$e = psql_error($node, q{INSERT INTO inbox VALUES ('hello')},
	connstr => $node->connstr('postgres') . ' user=clerk');
is($e->{sqlstate}, '42501',
	'a SECURITY DEFINER trigger of a role without the grant cannot read in a holder\'s session');
is($node->safe_psql('postgres', 'SELECT count(*) FROM loot'), '0', '... and stole nothing');
is($node->safe_psql('postgres', 'SELECT owner FROM acct WHERE id = 1',
		connstr => $node->connstr('postgres') . ' user=clerk'),
	'owner-1', 'with the key grant, the role reads');

# --- Two ledger databases keep a status each --------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE second');
$node->safe_psql('second', q{
	CREATE EXTENSION ledger;
	CREATE TABLE t (id int PRIMARY KEY) USING ledger;
	INSERT INTO t VALUES (1);
});
foreach my $db ('postgres', 'second')
{
	ok($node->poll_query_until($db, q{
		SELECT last_successful_check > now() - interval '5 s' FROM ledger_status()}),
		"the ledger of database $db is checked regularly");
}

# --- Nothing about keys in the log ------------------------------------------

$node->stop;
my $log = server_log($node);
like($log, qr/lost access to its provider key/, 'the loss was logged');
like($log, qr/has access to its provider key again/, 'so was the recovery');
foreach my $hex (keyring_key_hex($keyring))
{
	unlike($log, qr/\Q${\ substr($hex, 0, 16)}\E/i, 'no provider key material in the log');
}

done_testing();
