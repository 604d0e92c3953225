
# ledger-keyring, the file provider's console, against a running ledger:
# the seed scenarios of key custody for the file provider.  Under a
# pgbench load, the provider key changes through an alias and directly;
# the key is disabled, scheduled for deletion, cancelled and enabled, and
# the ledger refuses and recovers each time by itself.  The console never
# prints key material.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ledger_node('cli',
	extra_conf => "ledger.key_check_interval = 200\nmax_connections = 30\nautovacuum = off\n");
my $keyring = keyring_path($node);

# Runs ledger-keyring; returns (exit status, stdout, stderr).
sub kr
{
	my ($stdin, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'ledger-keyring', '--keyring', $keyring, @args ],
		'<', \$stdin, '>', \$out, '2>', \$err);
	chomp $out;
	return ($? >> 8, $out, $err);
}

sub kr_ok
{
	my ($what, @args) = @_;
	my ($rc, $out, $err) = kr('', @args);
	is($rc, 0, "ledger-keyring @args: $what") or diag($err);
	return $out;
}

sub status
{
	return $node->safe_psql('postgres',
		'SELECT status, provider_key_id, provider_key_alias, provider_key_version FROM ledger_status()');
}

sub wait_status
{
	my ($status, $what) = @_;
	ok($node->poll_query_until('postgres', 'SELECT status FROM ledger_status()', $status),
		"$what: the status becomes $status");
}

sub run_change
{
	my ($sql, $what) = @_;
	my $id = $node->safe_psql('postgres', $sql);
	ok($node->poll_query_until('postgres',
		"SELECT state FROM ledger.key_changes WHERE change_id = $id", 'done'), "$what: done");
}

# --- 1. 1,500 records at a steady rate, then read back -------------------

$node->safe_psql('postgres', q{
	CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
});
my $fill = $node->basedir . '/fill.sql';
append_to_file($fill, q{
INSERT INTO acct SELECT coalesce(max(id), 0) + 1, 'owner-' || (coalesce(max(id), 0) + 1), 100 FROM acct;
});
$node->command_ok(
	[ 'pgbench', '-n', '-c', '1', '-t', '1500', '-R', '1000', '-f', $fill,
		'-p', $node->port, '-h', $node->host, 'postgres' ],
	'1,500 records inserted at a steady rate');
my $checksum_sql = q{SELECT count(*) || ':' || md5(string_agg(id || owner || balance, ',' ORDER BY id)) FROM acct};
my $checksum = $node->safe_psql('postgres', $checksum_sql);
like($checksum, qr/^1500:/, 'all 1,500 read back');

my $read = $node->basedir . '/read.sql';
append_to_file($read, q{
\set id random(1, 1500)
SELECT owner FROM acct WHERE id = :id;
});

sub start_reads
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-T', '4', '-f', $read,
			'-p', $node->port, '-h', $node->host, 'postgres' ],
		'>', \$out, '2>', \$err);
	return [ $h, \$err ];
}

sub reads_succeeded
{
	my ($load, $what) = @_;
	ok($load->[0]->finish, "$what: no read failed under the load")
	  or diag(${ $load->[1] });
}

# --- The console ---------------------------------------------------------

my ($first) = split / /, kr_ok('lists the key CREATE EXTENSION made', 'list') =~ s/^.*\n//r;
like($first, qr/^[0-9a-f-]{36}$/, 'the first key has an id');
my $b = kr_ok('creates a key with an alias', 'create', '--alias', 'alias/ledger');
like($b, qr/^[0-9a-f-]{36}$/, '... and prints its id');
my $list = kr_ok('lists', 'list');
like($list, qr/\Q$b\E\s+1\s+enabled\s+alias\/ledger/, 'the list shows version, state and alias');
foreach my $hex (keyring_key_hex($keyring))
{
	unlike($list, qr/\Q${\ substr($hex, 0, 16)}\E/i, 'the list shows no key material');
}

# --- 2. Provider key changes under a read load -----------------------------

my $load = start_reads();
sleep 1;
run_change(q{SELECT ledger_rotate_key('provider_key', 'alias/ledger')}, 'change through an alias');
reads_succeeded($load, 'change through an alias');
is(status(), "ENABLED|$b|alias/ledger|1", 'the root key is wrapped by the key behind the alias');

# The alias moves to a new key; the change follows it.
my $c = kr_ok('creates another key', 'create');
kr_ok('moves the alias', 'alias', 'alias/ledger', $c);
$load = start_reads();
sleep 1;
run_change(q{SELECT ledger_rotate_key('provider_key', 'alias/ledger')}, 'change to the key the alias now names');
reads_succeeded($load, 'change after the alias moved');
is(status(), "ENABLED|$c|alias/ledger|1", 'the root key follows the alias');

$load = start_reads();
sleep 1;
run_change("SELECT ledger_rotate_key('provider_key', '$b')", 'direct change');
reads_succeeded($load, 'direct change');
is(status(), "ENABLED|$b||1", 'a key named directly shows no alias');

# New key material: a new version; the old one still opens what it wrapped.
my $rot = kr_ok('rotates key material', 'rotate', $b);
is($rot, "$b 2", '... into version 2');
is($node->safe_psql('postgres', $checksum_sql), $checksum, 'version 1 still unwraps the root key');
run_change("SELECT ledger_rotate_key('provider_key', '$b')", 're-wrap with the new version');
is(status(), "ENABLED|$b||2", 'the root key is wrapped by version 2');

# --- 3. Disable, enable, schedule deletion, cancel --------------------------

my $write = $node->basedir . '/write.sql';
$node->safe_psql('postgres', 'CREATE SEQUENCE late_ids START 100000');
append_to_file($write, q{
\set v random(1, 1000000)
INSERT INTO acct VALUES (nextval('late_ids'), 'late', :v);
});
my ($lout, $lerr) = ('', '');
my $rw = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-T', '30', '-f', $write, '-f', $read,
		'-p', $node->port, '-h', $node->host, 'postgres' ],
	'>', \$lout, '2>', \$lerr);
sleep 1;
kr_ok('disables the key', 'disable', $b);
wait_status('KMS_KEY_INACCESSIBLE', 'disabled key');
my $e = psql_error($node, 'SELECT owner FROM acct WHERE id = 1');
is($e->{sqlstate}, 'LD001', 'disabled key: reads are refused');
like($e->{detail}, qr/is disabled/, '... and the detail says the key is disabled');
$e = psql_error($node, q{INSERT INTO acct VALUES (100000, 'x', 1)});
is($e->{sqlstate}, 'LD001', 'disabled key: writes are refused');
$rw->finish;
like($lerr, qr/LD001|does not have access/, 'the read-write load met the refusal');

kr_ok('enables the key', 'enable', $b);
wait_status('ENABLED', 'enabled again');
my $rows_now = $node->safe_psql('postgres', 'SELECT count(*) FROM acct');
ok($rows_now >= 1500, 'every row committed before the refusal is there');
is($node->safe_psql('postgres',
	q{SELECT count(*) || ':' || md5(string_agg(id || owner || balance, ',' ORDER BY id)) FROM acct WHERE id <= 1500}),
	$checksum, '... and unchanged');
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM ledger_verify('full')}), 't',
	'ledger_verify(full) passes after the outage');

my ($rc, $out, $err) = kr('', 'schedule-deletion', $b, '--days', '3');
is($rc, 1, 'a waiting period under 7 days is refused');
$out = kr_ok('schedules the deletion', 'schedule-deletion', $b, '--days', '7');
like($out, qr/pending deletion on \d{4}-\d\d-\d\d/, '... and says when');
wait_status('KMS_KEY_INACCESSIBLE', 'key pending deletion');
$e = psql_error($node, 'SELECT owner FROM acct WHERE id = 1');
like($e->{detail}, qr/pending deletion/, 'a key pending deletion is not used');
($rc, $out, $err) = kr('', 'enable', $b);
is($rc, 1, 'a key pending deletion cannot be enabled');
kr_ok('cancels the deletion', 'cancel-deletion', $b);
like(kr_ok('lists', 'list'), qr/\Q$b\E\s+2\s+disabled/, 'a cancelled deletion leaves the key disabled');
kr_ok('enables it', 'enable', $b);
wait_status('ENABLED', 'after the cancelled deletion');
is($node->safe_psql('postgres', 'SELECT owner FROM acct WHERE id = 7'), 'owner-7', 'reads work again');

# Purge deletes only keys whose waiting period is over: the time has
# passed here when the file says so.
my $d = kr_ok('creates a key to delete', 'create');
kr_ok('schedules it for deletion', 'schedule-deletion', $d, '--days', '7');
like(kr_ok('purges', 'purge'), qr/^0 key versions deleted/m, 'nothing is due yet');
my $text = slurp_file($keyring);
$text =~ s/^(key \Q$d\E 1 pending-deletion:)\d+/${1}1/m or die 'no pending key line';
open(my $fh, '>', $keyring) or die; print $fh $text; close $fh;
like(kr_ok('purges', 'purge'), qr/deleted \Q$d\E version 1/, 'a key whose time has come is deleted');
unlike(slurp_file($keyring), qr/\Q$d\E/, '... and gone from the file');
is($node->safe_psql('postgres', 'SELECT owner FROM acct WHERE id = 8'), 'owner-8',
	'the ledger does not notice the purge of a key it does not use');

# --- Import, and refusals --------------------------------------------------

my $imported = '0a0a0a0a-1111-4222-8333-444444444444';
($rc, $out, $err) = kr(('3c' x 32) . "\n", 'import', $imported);
is($rc, 0, 'imports key material from standard input');
run_change("SELECT ledger_rotate_key('provider_key', '$imported')", 'change to the imported key');
is(status(), "ENABLED|$imported||1", 'the imported key wraps the root key');
($rc, $out, $err) = kr("xyz\n", 'import', $imported);
is($rc, 1, 'malformed key material is refused');
($rc, $out, $err) = kr('', 'alias', 'main', $b);
is($rc, 1, 'an alias must start with alias/');
($rc, $out, $err) = kr('', 'disable', 'alias/none');
is($rc, 1, 'an unknown alias is refused');
chmod(0640, $keyring);
($rc, $out, $err) = kr('', 'list');
is($rc, 2, 'a keyring readable by the group is refused');
like($err, qr/chmod 0600/, '... with the command that fixes it');
chmod(0600, $keyring);
# The console writes a new file; its mode is the console's own choice.
umask(0022);
kr_ok('creates a key', 'create');
is(sprintf('%04o', file_mode($keyring)), '0600', 'the console writes the keyring with mode 0600 whatever the umask');

# A keyring with a NUL byte would hide what follows it: refused whole.
my $good = slurp_file($keyring);
open(my $nul, '>', "$keyring.nul") or die; print $nul "# x\0\n$good"; close $nul;
chmod(0600, "$keyring.nul");
($rc, $out, $err) = do {
	my ($o, $r) = ('', '');
	IPC::Run::run([ 'ledger-keyring', '--keyring', "$keyring.nul", 'list' ], '>', \$o, '2>', \$r);
	($? >> 8, $o, $r);
};
is($rc, 2, 'a keyring with a NUL byte is refused');
like($err, qr/malformed/, '... as malformed');

$e = psql_error($node, q{SELECT ledger_rotate_key('provider_key', 'alias/none')});
is($e->{sqlstate}, '42704', 'ledger_rotate_key refuses an alias the keyring lacks');
$e = psql_error($node, q{SELECT ledger_rotate_key('provider_key', 'Not A Key')});
is($e->{sqlstate}, '22023', 'ledger_rotate_key refuses a malformed key name');

# --- The audit trail: ledger.key_events --------------------------------------

# The worker moves events from shared memory into the table as it goes.
ok($node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM ledger.key_events WHERE event = 'provider_key done'
	   AND provider_key_id IS NULL AND change_id = (SELECT max(change_id) FROM ledger.key_changes)}),
	'the last key change is in the audit trail');
my %seen = map { split /\|/, $_, 2 } split /\n/, $node->safe_psql('postgres', q{
	SELECT event, count(*) FROM ledger.key_events GROUP BY event});
ok($seen{$_}, "the audit trail has '$_' events")
  foreach ('check', 'unwrap', 'wrap', 'provider_key requested', 'provider_key done');
is($node->safe_psql('postgres', qq{
	SELECT count(*) > 0 FROM ledger.key_events
	 WHERE event = 'wrap' AND provider_key_id = '$imported' AND outcome = 'ok'
	   AND node_id IS NOT NULL AND node_version IS NOT NULL}),
	't', 'a wrap names the provider key and the root key version it wrapped');
is($node->safe_psql('postgres', q{
	SELECT count(*) > 0 FROM ledger.key_events
	 WHERE event IN ('unwrap', 'check') AND outcome LIKE '%is disabled%'}),
	't', 'uses of the disabled key are recorded with what failed');
is($node->safe_psql('postgres', q{
	SELECT count(*) > 0 FROM ledger.key_events
	 WHERE event IN ('unwrap', 'check') AND outcome LIKE '%pending deletion%'}),
	't', '... and of the key pending deletion');
is($node->safe_psql('postgres', q{
	SELECT bool_and(role IS NOT NULL) FROM ledger.key_events WHERE event = 'unwrap'}),
	't', 'every unwrap names the role that caused it');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ledger.key_events WHERE occurred_at > now() + interval '1 minute'}),
	'0', 'no event from the future');
$e = psql_error($node, 'DELETE FROM ledger.key_events');
is($e->{sqlstate}, '42501', 'the audit trail refuses DELETE, even to a superuser');
$e = psql_error($node, q{UPDATE ledger.key_events SET outcome = 'ok'});
is($e->{sqlstate}, '42501', '... and UPDATE');
my $events = $node->safe_psql('postgres', q{SELECT string_agg(e::text, ' ') FROM ledger.key_events e});
foreach my $hex (keyring_key_hex($keyring))
{
	unlike($events, qr/\Q${\ substr($hex, 0, 16)}\E/i, 'no key material in the audit trail');
}

$node->stop;
my $log = server_log($node);
foreach my $hex (keyring_key_hex($keyring))
{
	unlike($log, qr/\Q${\ substr($hex, 0, 16)}\E/i, 'no key material in the server log');
}

done_testing();
