
# The command key provider against a local program that plays a KMS
# (test/kms/fake_kms.py): providers configured through SQL, the root key
# moved from the keyring file to the KMS, the seed scenarios under
# pgbench load, and every way a command can fail: a timeout, wrong
# output, a disabled key, bad options.
use strict;
use warnings;

use FindBin;
use IPC::Run;
use lib "$FindBin::RealBin/lib";
use KeyScenarios;
use LedgerTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $interval_ms = 500;
my $node = ledger_node('cmdkms',
	extra_conf => "ledger.key_check_interval = '${interval_ms}ms'\nmax_connections = 30\n"
	  . "autovacuum = off\n");
my $state = $node->basedir . '/kms.json';
my $kms = $node->basedir . '/kms.sh';
append_to_file($kms, "#!/bin/sh\nFAKE_KMS_STATE='$state' exec /usr/bin/python3 '"
	  . "$FindBin::RealBin/../kms/fake_kms.py' \"\$@\"\n");
chmod 0700, $kms;

sub kms { system($kms, @_) == 0 or die "fake KMS @_ failed" }
kms('create', 'k1');
kms('create', 'k2');
kms('alias', 'alias/ledger', 'k1');

# --- Configuring providers through SQL -------------------------------------

is($node->safe_psql('postgres', 'SELECT name, type, options FROM ledger.providers'),
	'file|file|{}', 'CREATE EXTENSION registers the embedded file provider');
is($node->safe_psql('postgres', 'SELECT provider FROM ledger_status()'), 'file',
	'the root key starts on the file provider');

my %bad = (
	q{'kms', 'vault', '{}'} => [ '22023', qr/unknown key provider type "vault"/ ],
	q{'kms', 'command', '{}'} => [ '22023', qr/needs option "command"/ ],
	q{'kms', 'command', '{"command": "/bin/true", "pin": "1234"}'} =>
	  [ '22023', qr/has no option "pin"/ ],
	q{'kms', 'command', '{"command": "kms.sh"}'} => [ '22023', qr/must be an absolute path/ ],
	q{'kms', 'command', '{"command": "/nonexistent/kms"}'} => [ '22023', qr/cannot be run by the server/ ],
	q{'kms', 'command', '{"command": "/bin/true", "timeout_ms": -5}'} =>
	  [ '22023', qr/must be a positive integer/ ],
	q{'kms', 'command', '{"command": "/bin/true", "timeout_ms": "soon"}'} =>
	  [ '22023', qr/must be a positive integer/ ],
	q{'kms', 'command', '{"command": ["/bin/true"]}'} => [ '22023', qr/must be a string or a number/ ],
	q{'kms', 'command', '[1, 2]'} => [ '22023', qr/must be a JSON object/ ],
	q{'Bad Name', 'command', '{}'} => [ '42602', qr/is not a valid key provider name/ ],
	q{'file', 'file', '{}'} => [ '42710', qr/already exists/ ],
	q{NULL, 'file', '{}'} => [ '22004', qr/needs a name/ ]);
foreach my $args (sort keys %bad)
{
	my $e = psql_error($node, "SELECT ledger_create_provider($args)");
	is($e->{sqlstate}, $bad{$args}[0], "ledger_create_provider($args) is refused with $bad{$args}[0]");
	like($e->{message}, $bad{$args}[1], '... saying why');
}
like(psql_error($node, q{SELECT ledger_create_provider('kms', 'command', '{"pin": "1"}')})->{hint},
	qr/Secrets such as a PIN are never options/, 'an unknown option hints that secrets are no options');

$node->safe_psql('postgres', qq{
	CREATE ROLE keyadmin LOGIN IN ROLE ledger_key_admin;
	CREATE ROLE nobody LOGIN;
});
my $admin = $node->connstr('postgres') . ' user=keyadmin';
my $e = psql_error($node, qq{SELECT ledger_create_provider('kms', 'command', '{"command": "$kms"}')},
	connstr => $node->connstr('postgres') . ' user=nobody');
is($e->{sqlstate}, '42501', 'a role without ledger_key_admin cannot create providers');
# A provider runs programs as the server's OS user and receives the root
# key: /usr/bin/tee as a "KMS" would hand the root key back in the clear.
$e = psql_error($node, q{SELECT ledger_create_provider('tee', 'command', '{"command": "/usr/bin/tee"}')},
	connstr => $admin);
is($e->{sqlstate}, '42501', 'a member of ledger_key_admin cannot define a provider either');
like($e->{message}, qr/permission denied for function ledger_create_provider/,
	'... only a superuser can (sql/providers.sql: not even with EXECUTE)');
$node->safe_psql('postgres',
	qq{SELECT ledger_create_provider('kms', 'command', '{"command": "$kms", "timeout_ms": 2000}')});
is($node->safe_psql('postgres', q{SELECT type, options->>'timeout_ms', created_by = current_user FROM ledger.providers WHERE name = 'kms'}),
	'command|2000|t', 'a superuser creates a provider');

$e = psql_error($node, q{SELECT ledger_rotate_key('provider_key', 'k9', 'kms')}, connstr => $admin);
is($e->{sqlstate}, 'LD001', 'a key the KMS does not have is refused at once');
like($e->{detail}, qr/Key provider "kms" \(command\): .* the provider has no such key: no such key: k9/,
	'... with what the KMS said');
$e = psql_error($node, q{SELECT ledger_rotate_key('provider_key', 'k1', 'nowhere')}, connstr => $admin);
is($e->{sqlstate}, '42704', 'an unknown provider is refused');

# --- The seed scenarios --------------------------------------------------------

run_key_scenarios($node,
	provider     => 'kms',
	interval_ms  => $interval_ms,
	changes      => [ [ 'alias/ledger', 'alias/ledger|' ], [ 'k2', 'k2|' ] ],
	disable      => sub { kms('disable', 'k2') },
	enable       => sub { kms('enable', 'k2') });

$node->safe_psql('postgres', 'GRANT SELECT ON acct TO ledger_key_admin');
$e = psql_error($node, q{SELECT * FROM acct}, connstr => $admin);
is($e->{sqlstate}, '42501', 'ledger_key_admin manages keys but reads no ledger rows');
is($node->safe_psql('postgres', q{SELECT provider, count(*) FILTER (WHERE outcome = 'ok') > 0
	FROM ledger.key_events WHERE event = 'unwrap' AND provider = 'kms' GROUP BY provider}),
	'kms|t', 'ledger.key_events records the unwraps through the KMS');
ok($node->safe_psql('postgres', q{SELECT count(*) FROM ledger.key_events
	WHERE provider = 'kms' AND outcome LIKE '%disabled%'}) > 0,
	'... and the refusals of the disabled key');

ok($node->poll_query_until('postgres', q{SELECT string_agg(event, ',' ORDER BY event_id) FROM ledger.key_events
	WHERE provider = 'kms' AND event LIKE '%provider'}, 'create provider'),
	'ledger.key_events records the creation of the provider');

# --- The keyring file is needed no more ----------------------------------------

my $keyring = keyring_path($node);
rename($keyring, "$keyring.away") or die;
is(psql_out($node, 'SELECT count(*) FROM acct'), '1500', 'with the root key in the KMS, the keyring file can go');
ok($node->poll_query_until('postgres', q{SELECT last_successful_check > now() - interval '2 s' FROM ledger_status()}),
	'... and the worker checks the KMS key, not the keyring');
$node->safe_psql('postgres', q{SELECT ledger_drop_provider('file')}, connstr => $admin);
$e = psql_error($node, q{SELECT ledger_drop_provider('kms')}, connstr => $admin);
is($e->{sqlstate}, '2BP01', 'a provider that wraps the root key cannot be dropped');
like($e->{hint}, qr/Move the root key to another provider first/, '... and the hint says what to do');

# --- The offline auditor with a root key in a KMS -------------------------------

$node->safe_psql('postgres', 'SELECT ledger_digest()');
my $export = $node->basedir . '/export.jsonl';
append_to_file($export, $node->safe_psql('postgres', 'SELECT * FROM ledger_export()') . "\n");
my $digest = $node->safe_psql('postgres', 'SELECT digest FROM ledger_digest()');
my ($out, $err) = run_command([ 'ledger-verify', 'export', $export, $digest ]);
like($out, qr/^ok: /, 'ledger-verify checks the chain of an export whose root key is in a KMS');
($out, $err) = run_command([ 'ledger-verify', 'export', $export, $digest, '--keyring', "$keyring.away" ]);
like($out, qr/root key is wrapped by key provider "kms", whose key is not in a keyring file/,
	'... and says plainly that a keyring cannot open its payloads');

# --- A root key rotation and a restart through the KMS ---------------------------

my $id = $node->safe_psql('postgres', 'SELECT ledger_rotate_key()', connstr => $admin);
ok($node->poll_query_until('postgres', "SELECT state FROM ledger.key_changes WHERE change_id = $id", 'done'),
	'a root key rotation completes through the KMS');
is($node->safe_psql('postgres', q{SELECT provider, provider_key_id FROM ledger.keys WHERE kind = 'root' AND state = 'active'}),
	'kms|k2', '... the new root key version is wrapped by the same KMS key');
$node->restart;
is(psql_out($node, 'SELECT count(*), sum(balance) FROM acct'), '1500|150000',
	'after a restart, every row reads back through the KMS');

# --- How a command can fail ---------------------------------------------------

kms('hang', 'on');
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()});
my $t0 = time;
$e = psql_error($node, 'SELECT count(*) FROM acct');
is($e->{sqlstate}, 'LD001', 'a KMS that does not answer: refused with LD001');
like($e->{detail}, qr/did not answer within 2000 ms/, '... after the provider\'s timeout');
cmp_ok(time - $t0, '<', 30, '... and the session does not hang');
kms('hang', 'off');
ok($node->poll_query_until('postgres', q{SELECT status FROM ledger_status()}, 'ENABLED'),
	'once the KMS answers again, the ledger recovers');
is(`pgrep -f 'fake_kms.py (wrap|unwrap)' | wc -l` + 0, 0, 'no KMS command is left running');

kms('garble', 'on');
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()});
$e = psql_error($node, 'SELECT count(*) FROM acct');
is($e->{sqlstate}, 'LD001', 'a command that prints the wrong number of bytes: LD001');
like($e->{detail}, qr/printed 7 bytes, where 32 are expected/, '... saying so');
kms('garble', 'off');
ok($node->poll_query_until('postgres', q{SELECT status FROM ledger_status()}, 'ENABLED'),
	'... and the ledger recovers');

$e = psql_error($node, qq{SELECT ledger_alter_provider('kms', '{"command": "$kms"}')}, connstr => $admin);
is($e->{sqlstate}, '42501', 'a member of ledger_key_admin cannot alter a provider');
$e = psql_error($node, q{SELECT ledger_alter_provider('kms', '{"command": "/bin/false"}')});
is($e->{sqlstate}, '22023', 'options under which the provider cannot open the root key are refused');
like($e->{message}, qr/could not open root key version 2 with these options/, '... saying so');
is($node->safe_psql('postgres', q{SELECT options->>'command' FROM ledger.providers WHERE name = 'kms'}),
	$kms, '... and the provider keeps its options');
$node->safe_psql('postgres', qq{SELECT ledger_alter_provider('kms', '{"command": "$kms", "timeout_ms": 5000}')});
is($node->safe_psql('postgres', q{SELECT options->>'timeout_ms', changed_at IS NOT NULL FROM ledger.providers WHERE name = 'kms'}),
	'5000|t', 'working options are taken');

# A session altering the provider holds it: a key change to it waits,
# the worker does not (it comes back in later rounds), and the change
# completes once the session commits.
my ($sin, $sout, $serr) = ('', '', '');
my $session = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres') ],
	'<', \$sin, '>', \$sout, '2>', \$serr);
$sin .= qq{BEGIN; SELECT ledger_alter_provider('kms', '{"command": "$kms", "timeout_ms": 4000}'); SELECT 'altering';\n};
$session->pump until $sout =~ /altering/;
my $change = $node->safe_psql('postgres', q{SELECT ledger_rotate_key('provider_key', 'k1', 'kms')});
sleep(2);
is($node->safe_psql('postgres', "SELECT state FROM ledger.key_changes WHERE change_id = $change"),
	'pending', 'a key change to a provider that a session is altering waits');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'ledger worker' AND wait_event_type = 'Lock'}),
	'0', '... without the worker waiting on the lock');
$sin .= "COMMIT;\n\\q\n";
$session->finish;
ok($node->poll_query_until('postgres',
	"SELECT state FROM ledger.key_changes WHERE change_id = $change", 'done'),
	'once the session commits, the change is carried out');
is($node->safe_psql('postgres', q{SELECT provider_key_id, status FROM ledger_status()}),
	'k1|ENABLED', '... to the new key');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ledger_verify('full')}), '1',
	'ledger_verify(full) passes');

$node->stop;
my $log = server_log($node);
unlike($log, qr/PANIC|server process .* was terminated by signal/, 'no backend crashed');

done_testing();
