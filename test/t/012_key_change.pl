
# Key changes under load: ledger_rotate_key() queues a change and returns,
# the worker carries it out in steps while pgbench reads and writes, the
# status shows UPDATING with progress and then ENABLED, and no statement
# fails.  An immediate shutdown in the middle of a change: after the
# restart the change completes and every row reads back.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

# One key per batch, so that a change of 600 data keys takes 600
# transactions: long enough to be watched, and to be cut by a crash.
my $ntables = 600;
my $node = ledger_node('keychange',
	extra_conf => "ledger.key_change_batch = 1\nmax_connections = 30\n");
my $keyring = keyring_path($node);

$node->safe_psql('postgres', qq{
	CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
	INSERT INTO acct SELECT g, 'owner-' || g, 100 FROM generate_series(1, 1500) g;
	CREATE TABLE events (id bigserial PRIMARY KEY, v int) USING ledger;
	DO \$\$ BEGIN
	  FOR i IN 1..$ntables LOOP
	    EXECUTE format('CREATE TABLE extra%s (id int PRIMARY KEY, v text) USING ledger', i);
	    EXECUTE format('INSERT INTO extra%s VALUES (1, %L)', i, 'row of ' || i);
	  END LOOP;
	END \$\$;
	-- Watches ledger_status() from inside one session until a change has
	-- been seen in progress and then finished, or until it was seen in the
	-- middle if stop_midway.
	CREATE FUNCTION watch_change(stop_midway boolean) RETURNS text
	LANGUAGE plpgsql AS \$\$
	DECLARE
	  s record; seen text := ''; midway boolean := false; t0 timestamptz := clock_timestamp();
	BEGIN
	  LOOP
	    SELECT * INTO s FROM ledger_status();
	    IF s.status = 'UPDATING' AND position('UPDATING' IN seen) = 0 THEN
	      seen := seen || 'UPDATING ' || s.pending_change || ' ';
	    END IF;
	    IF s.status = 'UPDATING' AND s.change_done > 0 AND s.change_done < s.change_total THEN
	      midway := true;
	      IF stop_midway THEN RETURN seen || 'midway'; END IF;
	    END IF;
	    IF s.status = 'ENABLED' AND seen <> '' THEN
	      RETURN seen || CASE WHEN midway THEN 'midway ' ELSE '' END || 'ENABLED';
	    END IF;
	    IF clock_timestamp() - t0 > interval '120 s' THEN RETURN seen || 'timeout'; END IF;
	    PERFORM pg_sleep(0.001);
	  END LOOP;
	END \$\$;
});

my $checksum_sql = q{
	SELECT md5(string_agg(id || ':' || owner || ':' || balance, ',' ORDER BY id)) FROM acct};
my $checksum = $node->safe_psql('postgres', $checksum_sql);

sub all_rows_read
{
	my ($what) = @_;
	is($node->safe_psql('postgres', $checksum_sql), $checksum, "$what: every account reads back");
	is($node->safe_psql('postgres', qq{
		SELECT count(*) FROM generate_series(1, $ntables) i,
		  LATERAL ledger_history(format('extra%s', i)) h
		 WHERE h.data->>'v' = 'row of ' || i}),
		$ntables, "$what: every table's history opens");
}

my $write = $node->basedir . '/write.sql';
append_to_file($write, q{
\set v random(1, 1000000)
INSERT INTO events (v) VALUES (:v);
});
my $read = $node->basedir . '/read.sql';
append_to_file($read, q{
\set id random(1, 1500)
\set t random(1, 600)
SELECT owner, balance FROM acct WHERE id = :id;
SELECT v FROM extra:t WHERE id = 1;
});

# Runs a change while pgbench reads and writes; returns what the watcher
# saw, if $watched (a one-step change may be over before it looks).
sub change_under_load
{
	my ($sql, $what, $watched) = @_;
	my ($wout, $werr, $pout, $perr) = ('', '', '', '');
	my $watch = $watched && IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
			'SELECT watch_change(false)' ],
		'>', \$wout, '2>', \$werr);
	my $load = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-T', '4', '-f', "$write\@1", '-f', "$read\@3",
			'-p', $node->port, '-h', $node->host, 'postgres' ],
		'>', \$pout, '2>', \$perr);
	sleep(1);
	my $id = $node->safe_psql('postgres', $sql);
	like($id, qr/^\d+$/, "$what: ledger_rotate_key() returns the change's id at once");
	$watch->finish if $watched;
	chomp $wout;
	ok($load->finish, "$what: pgbench saw no failed statement")
	  or diag($perr);
	unlike($perr, qr/ERROR/, "$what: no error under load");
	is($node->safe_psql('postgres',
		"SELECT state, error IS NULL FROM ledger.key_changes WHERE change_id = $id"),
		'done|t', "$what: the change is done");
	return $wout;
}

# --- Root key rotation: re-wraps every data key ---------------------------

my $seen = change_under_load('SELECT ledger_rotate_key()', 'root key rotation', 1);
like($seen, qr/^UPDATING root_key midway ENABLED$/,
	'root key rotation: the status went UPDATING, with progress, then ENABLED');
is($node->safe_psql('postgres', q{
	SELECT string_agg(version || ':' || state, ',' ORDER BY version)
	  FROM ledger.keys WHERE kind = 'root'}),
	'1:retired,2:active', 'a new root key version is active, the old one retired');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE parent_version = 2) = count(*) FROM ledger.keys WHERE kind = 'data'}),
	't', 'every data key is wrapped by the new root key');
all_rows_read('after the root key rotation');

# --- Provider key change: another key of the keyring ----------------------

my $new_key = '0a1b2c3d-0000-4000-8000-000000000001';
append_to_file($keyring, "key $new_key 1 enabled " . ('5a' x 32) . "\n");
my ($old_key) = $node->safe_psql('postgres', 'SELECT provider_key_id FROM ledger_status()');
change_under_load("SELECT ledger_rotate_key('provider_key', '$new_key')",
	'provider key change', 0);
is($node->safe_psql('postgres', 'SELECT provider_key_id FROM ledger_status()'),
	$new_key, 'provider key change: the root key is wrapped by the new provider key');

# The old provider key can go: nothing needs it any more.
my $text = slurp_file($keyring);
$text =~ s/^key \Q$old_key\E .*\n//m;
open(my $fh, '>', $keyring) or die; print $fh $text; close $fh;
chmod(0600, $keyring);
$node->restart;
all_rows_read('without the old provider key, after a restart');

# --- Data key rotation: new writes use new keys ---------------------------

my $old_data_key = $node->safe_psql('postgres',
	q{SELECT data_key_id FROM ledger.tables WHERE relid = 'acct'::regclass});
$seen = change_under_load(q{SELECT ledger_rotate_key('data_keys')}, 'data key rotation', 1);
like($seen, qr/^UPDATING data_keys/, 'data key rotation: the status went UPDATING');
my $new_data_key = $node->safe_psql('postgres',
	q{SELECT data_key_id FROM ledger.tables WHERE relid = 'acct'::regclass});
isnt($new_data_key, $old_data_key, 'data key rotation: the table has a new data key');
$node->safe_psql('postgres', q{UPDATE acct SET balance = balance WHERE id = 1});
is($node->safe_psql('postgres', q{
	SELECT ledger_document_version('acct', ctid) FROM acct WHERE id = 1}), '1',
	'a new revision was written');
$checksum = $node->safe_psql('postgres', $checksum_sql);
all_rows_read('after the data key rotation');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ledger_verify('full')}), '1',
	'ledger_verify(full) passes');

# --- Refusals --------------------------------------------------------------

my $e = psql_error($node, q{SELECT ledger_rotate_key('provider_key', 'no-such-key')});
is($e->{sqlstate}, '42704', 'a provider key the keyring lacks is refused at once');
$e = psql_error($node, q{SELECT ledger_rotate_key('everything')});
is($e->{sqlstate}, '22023', 'an unknown kind of change is refused');
$node->safe_psql('postgres', 'CREATE ROLE dba LOGIN');
$e = psql_error($node, 'SELECT ledger_rotate_key()',
	connstr => $node->connstr('postgres') . ' user=dba');
is($e->{sqlstate}, '42501', 'a role without EXECUTE cannot change keys');

# --- A data key made under the old root version, committed late ----------

# A session creates a table (and its data key, under the current root
# version) and keeps its transaction open while a rotation runs: the
# rotation must not finish until it can re-wrap that key too.
my ($sin, $sout, $serr) = ('', '', '');
my $session = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres') ],
	'<', \$sin, '>', \$sout, '2>', \$serr);
$sin .= "BEGIN; CREATE TABLE late (id int PRIMARY KEY) USING ledger; INSERT INTO late VALUES (1); SELECT 'created';\n";
$session->pump until $sout =~ /created/;
my $late_change = $node->safe_psql('postgres', 'SELECT ledger_rotate_key()');
ok($node->poll_query_until('postgres', qq{
	SELECT done_count >= total_count FROM ledger.key_changes WHERE change_id = $late_change}),
	'the rotation re-wrapped every committed data key');
sleep(2);
is($node->safe_psql('postgres', "SELECT state FROM ledger.key_changes WHERE change_id = $late_change"),
	'running', '... but does not finish while a transaction that made a key under the old version is open');
$sin .= "COMMIT;\n\\q\n";
$session->finish;
ok($node->poll_query_until('postgres',
	"SELECT state FROM ledger.key_changes WHERE change_id = $late_change", 'done'),
	'once it commits, the rotation finishes');
is($node->safe_psql('postgres', q{
	SELECT k.parent_version = (SELECT max(version) FROM ledger.keys WHERE kind = 'root')
	  FROM ledger.tables t JOIN ledger.keys k ON k.key_id = t.data_key_id
	 WHERE t.relid = 'late'::regclass}),
	't', '... with the late data key wrapped by the new root version');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ledger.keys WHERE kind = 'root' AND state = 'active'}),
	'1', 'one root version is active');
is($node->safe_psql('postgres', 'SELECT count(*) FROM late'), '1', 'the late table reads');

# --- A data key rotation does not wait on a session ------------------------

# A session holds a lock that conflicts with the rotation's on one table:
# the worker gives every other table its key, keeps the change running,
# and finishes once the session lets go.
($sin, $sout, $serr) = ('', '', '');
$session = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres') ],
	'<', \$sin, '>', \$sout, '2>', \$serr);
$sin .= "BEGIN; LOCK TABLE extra7 IN SHARE UPDATE EXCLUSIVE MODE; SELECT 'locked';\n";
$session->pump until $sout =~ /locked/;
my $held_key = $node->safe_psql('postgres',
	q{SELECT data_key_id FROM ledger.tables WHERE relid = 'extra7'::regclass});
my $rekey = $node->safe_psql('postgres', q{SELECT ledger_rotate_key('data_keys')});
ok($node->poll_query_until('postgres', qq{
	SELECT done_count = total_count - 1 FROM ledger.key_changes WHERE change_id = $rekey}),
	'a data key rotation goes round a table a session has locked');
is($node->safe_psql('postgres', qq{
	SELECT state || ' ' || (SELECT data_key_id FROM ledger.tables WHERE relid = 'extra7'::regclass)
	  FROM ledger.key_changes WHERE change_id = $rekey}),
	"running $held_key", '... keeping that table\'s key and the change running');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'ledger worker' AND wait_event_type = 'Lock'}),
	'0', '... without the worker waiting on the lock');
$sin .= "COMMIT;\n\\q\n";
$session->finish;
ok($node->poll_query_until('postgres',
	"SELECT state FROM ledger.key_changes WHERE change_id = $rekey", 'done'),
	'once the session lets go, the rotation finishes');
isnt($node->safe_psql('postgres',
	q{SELECT data_key_id FROM ledger.tables WHERE relid = 'extra7'::regclass}),
	$held_key, '... with a new key for that table too');

# --- The automatic rotation policy ------------------------------------------

# Sets a rotation policy to 2 s until the worker has carried out two
# changes of that kind by itself, then turns it off again.
sub policy_runs
{
	my ($setting, $kind, $what) = @_;
	my $before = $node->safe_psql('postgres', 'SELECT max(change_id) FROM ledger.key_changes');
	$node->safe_psql('postgres', qq{ALTER SYSTEM SET $setting = '2s'});
	$node->reload;
	ok($node->poll_query_until('postgres', qq{
		SELECT count(*) >= 2 FROM ledger.key_changes
		 WHERE change_id > $before AND kind = '$kind' AND state = 'done'}),
		"with $setting set, the worker $what by itself, again and again");
	$node->safe_psql('postgres', "ALTER SYSTEM RESET $setting");
	$node->reload;
	ok($node->poll_query_until('postgres', qq{
		SELECT current_setting('$setting') = '0' AND status = 'ENABLED' FROM ledger_status()}),
		"$setting turned off, the rotations stop");
}

policy_runs('ledger.root_key_rotation_period', 'root_key', 'rotates the root key');
all_rows_read('after automatic rotations');

# The keyring's own material: a new version of the provider key, then the
# root key re-wrapped with it, by the worker alone.
my $pk = $node->safe_psql('postgres', 'SELECT provider_key_id || \' \' || provider_key_version FROM ledger_status()');
my ($pk_id, $pk_version) = split / /, $pk;
policy_runs('ledger.provider_key_rotation_period', 'provider_key', 'rotates the keyring\'s material');
my ($id_now, $version_now) = split / /,
  $node->safe_psql('postgres', 'SELECT provider_key_id || \' \' || provider_key_version FROM ledger_status()');
is($id_now, $pk_id, '... the root key stays with the same provider key');
cmp_ok($version_now, '>', $pk_version + 1, '... wrapped by a newer version of it');
my @versions = grep { /^key \Q$pk_id\E (\d+) enabled / } split /\n/, slurp_file($keyring);
cmp_ok(scalar(@versions), '>=', $version_now, '... and the keyring keeps every version, for old backups');
is(sprintf('%04o', (stat($keyring))[2] & 07777), '0600', '... and stays mode 0600');
all_rows_read('after automatic provider key rotations');

# --- An immediate shutdown in the middle of a change ----------------------

my ($wout, $werr) = ('', '');
my $watch = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', 'SELECT watch_change(true)' ],
	'>', \$wout, '2>', \$werr);
sleep(1);
my $id = $node->safe_psql('postgres', 'SELECT ledger_rotate_key()');
$watch->finish;
chomp $wout;
is($wout, 'UPDATING root_key midway', 'the change was seen midway');
$node->stop('immediate');
$node->start;
ok($node->poll_query_until('postgres',
	"SELECT state FROM ledger.key_changes WHERE change_id = $id", 'done'),
	'after the restart, the change completes');
is($node->safe_psql('postgres', qq{
	SELECT finished_at > pg_postmaster_start_time() FROM ledger.key_changes WHERE change_id = $id}),
	't', '... resumed by the restarted worker');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE parent_version = (SELECT max(version) FROM ledger.keys WHERE kind = 'root'))
	     = count(*) FROM ledger.keys WHERE kind = 'data'}),
	't', '... and every data key is wrapped by the newest root key');
all_rows_read('after a crash in the middle of a key change');

done_testing();
