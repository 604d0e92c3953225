
# The pkcs11 key provider against SoftHSM2: non-extractable AES keys made
# on a token with pkcs11-tool, the root key moved into the HSM, the seed
# scenarios under pgbench load (an HSM admin disables the key by clearing
# its encrypt and decrypt attributes), and the HSM's own refusals: an
# extractable key, a wrong PIN, a missing token, a PIN file others can read.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use KeyScenarios;
use LedgerTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $module = '/usr/lib/softhsm/libsofthsm2.so';
plan skip_all => "SoftHSM2 is not installed ($module)" unless -r $module;

my $interval_ms = 500;
my $base = PostgreSQL::Test::Utils::tempdir('softhsm');
mkdir "$base/tokens" or die;
append_to_file("$base/softhsm2.conf",
	"directories.tokendir = $base/tokens\nobjectstore.backend = file\nlog.level = ERROR\n");
# The server and the tools find the token through this variable.
$ENV{SOFTHSM2_CONF} = "$base/softhsm2.conf";

sub run_ok
{
	my ($cmd, $what) = @_;
	my ($out, $err) = run_command($cmd);
	ok($? == 0, $what) or diag("$out$err");
}
run_ok([ 'softhsm2-util', '--init-token', '--free', '--label', 'ledger-hsm',
	'--so-pin', '5678', '--pin', '1234' ], 'a SoftHSM2 token is initialised');
foreach my $key ([ 'root-a', '--sensitive' ], [ 'root-b', '--sensitive' ], [ 'leaky', '--extractable' ])
{
	run_ok([ 'pkcs11-tool', '--module', $module, '--token-label', 'ledger-hsm', '--login',
		'--pin', '1234', '--keygen', '--key-type', 'AES:32', '--label', $key->[0], $key->[1] ],
		"pkcs11-tool makes AES key $key->[0] on the token");
}

my $node = ledger_node('hsm',
	extra_conf => "ledger.key_check_interval = '${interval_ms}ms'\nmax_connections = 30\n"
	  . "autovacuum = off\n");
my $pin = $node->basedir . '/hsm.pin';
append_to_file($pin, "1234\n");
chmod 0600, $pin;
my $wrong_pin = $node->basedir . '/wrong.pin';
append_to_file($wrong_pin, "9999\n");
chmod 0600, $wrong_pin;

sub options
{
	my (%o) = @_;
	my %all = (module => $module, token_label => 'ledger-hsm', pin_file => $pin, timeout_ms => 5000, %o);
	return '{' . join(', ', map { qq{"$_": } . ($_ eq 'timeout_ms' ? $all{$_} : qq{"$all{$_}"}) } sort keys %all) . '}';
}
$node->safe_psql('postgres', "SELECT ledger_create_provider('hsm', 'pkcs11', '${\ options()}')");
is($node->safe_psql('postgres', q{SELECT type FROM ledger.providers WHERE name = 'hsm'}), 'pkcs11',
	'a pkcs11 provider is configured through SQL');
my $e = psql_error($node, q{SELECT ledger_create_provider('hsm2', 'pkcs11', '{"module": "/nonexistent.so", "token_label": "x", "pin_file": "/x"}')});
is($e->{sqlstate}, '22023', 'a module the server cannot read is refused');
$e = psql_error($node, q{SELECT ledger_create_provider('hsm2', 'pkcs11', '{"module": "/usr/lib/softhsm/libsofthsm2.so", "token_label": "x"}')});
like($e->{message}, qr/needs option "pin_file"/, 'the PIN file is required');

$e = psql_error($node, q{SELECT ledger_rotate_key('provider_key', 'leaky', 'hsm')});
is($e->{sqlstate}, 'LD001', 'an extractable key is refused');
like($e->{detail}, qr/key "leaky" is extractable/, '... saying so');
$e = psql_error($node, q{SELECT ledger_rotate_key('provider_key', 'nothing', 'hsm')});
like($e->{detail}, qr/the provider has no such key: no AES key labelled "nothing"/,
	'a key the token does not hold is refused');

my $admin = [ $module, 'ledger-hsm', '1234' ];
run_key_scenarios($node,
	provider    => 'hsm',
	interval_ms => $interval_ms,
	changes     => [ [ 'root-a', 'root-a|' ], [ 'root-b', 'root-b|' ] ],
	disable     => sub { system("$FindBin::RealBin/../kms/hsm_key.py", @$admin, 'root-b', 'disable') == 0 or die },
	enable      => sub { system("$FindBin::RealBin/../kms/hsm_key.py", @$admin, 'root-b', 'enable') == 0 or die });

# --- The HSM's refusals, tried through ledger_alter_provider -----------------

foreach my $case (
	[ options(pin_file => $wrong_pin), qr/denied access to the key: C_Login: The password or PIN is incorrect/, 'a wrong PIN' ],
	[ options(token_label => 'elsewhere'), qr/no token labelled "elsewhere" is present/, 'a missing token' ])
{
	$e = psql_error($node, "SELECT ledger_alter_provider('hsm', '$case->[0]')");
	is($e->{sqlstate}, '22023', "$case->[2]: the options are refused");
	like($e->{detail}, $case->[1], "$case->[2]: ... with what the token said");
}
chmod 0644, $pin;
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()});
$e = psql_error($node, 'SELECT count(*) FROM acct');
like($e->{message} . $e->{detail}, qr/PIN file ".*" is accessible to other users|inaccessible since/,
	'a PIN file that others can read is refused');
chmod 0600, $pin;
ok($node->poll_query_until('postgres', q{SELECT status FROM ledger_status()}, 'ENABLED'),
	'... and the ledger recovers once it is 0600 again');

$node->restart;
is(psql_out($node, 'SELECT count(*), sum(balance) FROM acct'), '1500|150000',
	'after a restart, every row reads back through the HSM');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ledger_verify('full')}), '1',
	'ledger_verify(full) passes');
$node->stop;
my $log = server_log($node);
unlike($log, qr/\b1234\b.*PIN|PIN.*\b1234\b/, 'the PIN never reaches the server log');

done_testing();
