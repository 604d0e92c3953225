
# The kmip key provider against PyKMIP's server, over TLS 1.2 with client
# certificates: the root key moved into the KMS, the seed scenarios under
# pgbench load (the KMS admin revokes the key, then makes it Active again
# in the server's store), a server that is down, a wrong CA, and bad
# options.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use POSIX ();
use KeyScenarios;
use LedgerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

plan skip_all => 'PyKMIP is not installed (python3-pykmip)' unless -x '/usr/bin/pykmip-server';

my $interval_ms = 500;
my $dir = PostgreSQL::Test::Utils::tempdir('kmip');
my $admin_py = "$FindBin::RealBin/../kms/kmip_admin.py";

# A CA, a server certificate for 127.0.0.1 and a client certificate.
sub openssl
{
	my ($out, $err) = run_command([ 'openssl', @_ ]);
	die "openssl @_: $err" if $?;
}
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/ca.key",
	'-out', "$dir/ca.pem", '-days', '2', '-subj', '/CN=ledger test CA');
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/other-ca.key",
	'-out', "$dir/other-ca.pem", '-days', '2', '-subj', '/CN=another CA');
foreach my $who ([ 'server', '/CN=localhost', "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" ],
	[ 'client', '/CN=ledger', "extendedKeyUsage=clientAuth\n" ])
{
	my ($name, $subj, $ext) = @$who;
	openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/$name.key",
		'-out', "$dir/$name.csr", '-subj', $subj);
	append_to_file("$dir/$name.ext", $ext);
	openssl('x509', '-req', '-in', "$dir/$name.csr", '-CA', "$dir/ca.pem", '-CAkey', "$dir/ca.key",
		'-CAcreateserial', '-out', "$dir/$name.pem", '-days', '2', '-extfile', "$dir/$name.ext");
	chmod 0600, "$dir/$name.key";
}

my $port = PostgreSQL::Test::Cluster::get_free_port();
mkdir "$dir/policies";
append_to_file("$dir/server.conf", <<"EOF");
[server]
hostname=127.0.0.1
port=$port
certificate_path=$dir/server.pem
key_path=$dir/server.key
ca_path=$dir/ca.pem
auth_suite=TLS1.2
policy_path=$dir/policies
enable_tls_client_auth=True
database_path=$dir/pykmip.db
logging_level=INFO
EOF

# The server runs in a process group of its own, so that stopping it, or
# this test dying, stops every process it started.
my $kms_pid;
sub start_kms
{
	$kms_pid = fork() // die "fork: $!";
	return if $kms_pid;
	POSIX::setsid();
	open(STDOUT, '>>', "$dir/server.out") && open(STDERR, '>&', \*STDOUT)
	  && exec('/usr/bin/python3', '/usr/bin/pykmip-server', '-f', "$dir/server.conf", '-l', "$dir/server.log");
	POSIX::_exit(127);
}
sub stop_kms
{
	return unless $kms_pid;
	kill 'KILL', -$kms_pid;
	waitpid($kms_pid, 0);
	undef $kms_pid;
}
END { local $?; stop_kms(); }

my @admin = ('/usr/bin/python3', $admin_py, '127.0.0.1', $port, "$dir/client.pem", "$dir/client.key", "$dir/ca.pem");
sub kms
{
	my ($out, $err) = run_command([ @admin, @_ ]);
	die "kmip_admin @_: $err" if $?;
	chomp $out;
	return $out;
}

start_kms();
my $k1;
foreach (1 .. 100)
{
	my ($out, $err) = run_command([ @admin, 'create' ]);
	if ($? == 0) { chomp($k1 = $out); last; }
	usleep(200_000);
}
ok(defined $k1, 'PyKMIP\'s server runs, and makes an AES key') or BAIL_OUT('no KMIP server');
my $k2 = kms('create');
is(kms('state', $k2), 'ACTIVE', 'a second key is Active');

my $node = ledger_node('kmip',
	extra_conf => "ledger.key_check_interval = '${interval_ms}ms'\nmax_connections = 30\n"
	  . "autovacuum = off\n");

sub options
{
	my (%o) = @_;
	my %all = (host => '127.0.0.1', port => $port, ca_file => "$dir/ca.pem",
		cert_file => "$dir/client.pem", key_file => "$dir/client.key", timeout_ms => 5000, %o);
	delete $all{$_} foreach grep { !defined $all{$_} } keys %all;
	return '{' . join(', ', map { qq{"$_": } . (/port|timeout_ms/ ? $all{$_} : qq{"$all{$_}"}) } sort keys %all) . '}';
}
$node->safe_psql('postgres', "SELECT ledger_create_provider('kms', 'kmip', '${\ options()}')");

my $e = psql_error($node, "SELECT ledger_create_provider('k2', 'kmip', '${\ options(key_file => undef)}')");
like($e->{message}, qr/needs both cert_file and key_file, or neither/, 'a client certificate needs its key');
$e = psql_error($node, "SELECT ledger_create_provider('k2', 'kmip', '${\ options(port => 70000)}')");
like($e->{message}, qr/must be a TCP port/, 'a port must be a TCP port');
$e = psql_error($node, q{SELECT ledger_rotate_key('provider_key', '999', 'kms')});
is($e->{sqlstate}, 'LD001', 'a key the KMS does not hold is refused at once');
like($e->{detail}, qr/the provider has no such key: Get Attributes: result reason 1/, '... with the KMS\'s result');

run_key_scenarios($node,
	provider    => 'kms',
	interval_ms => $interval_ms,
	changes     => [ [ $k1, "$k1|" ], [ $k2, "$k2|" ] ],
	disable     => sub { kms('revoke', $k2) },
	enable      => sub {
		my ($out, $err) = run_command([ '/usr/bin/python3', $admin_py, "$dir/pykmip.db", 'reactivate', $k2 ]);
		die $err if $?;
	});
like($node->safe_psql('postgres', q{SELECT string_agg(outcome, ' ') FROM ledger.key_events
	WHERE provider = 'kms' AND outcome <> 'ok'}),
	qr/key \d+ is (Deactivated|Compromised)/, 'ledger.key_events says the key was revoked');

# --- The KMS is down, or not the one we trust ------------------------------------

stop_kms();
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()});
# A check that raced the server's end may have found a connection it then
# dropped ("sent no valid response"); every later check records why anew,
# so wait for one made after the server was gone.
for (my $tries = 0; $tries < 150; $tries++)
{
	$e = psql_error($node, 'SELECT count(*) FROM acct');
	last if $e->{detail} =~ /could not connect/;
	select(undef, undef, undef, 0.2);
}
is($e->{sqlstate}, 'LD001', 'a KMIP server that is down: refused with LD001');
like($e->{detail}, qr/could not connect to 127\.0\.0\.1 port $port/, '... saying it could not connect');
start_kms();
ok($node->poll_query_until('postgres', q{SELECT status FROM ledger_status()}, 'ENABLED'),
	'once the server is back, the ledger recovers by itself');

$e = psql_error($node, "SELECT ledger_alter_provider('kms', '${\ options(ca_file => \"$dir/other-ca.pem\")}')");
is($e->{sqlstate}, '22023', 'a CA that did not sign the server\'s certificate is refused');
like($e->{detail}, qr/TLS handshake with the KMIP server: .*certificate verify failed/, '... by the TLS handshake');
$e = psql_error($node, "SELECT ledger_alter_provider('kms', '${\ options(host => 'localhost.invalid')}')");
like($e->{detail}, qr/could not connect to localhost\.invalid/, 'an unknown host is refused');

$node->restart;
is(psql_out($node, 'SELECT count(*), sum(balance) FROM acct'), '1500|150000',
	'after a restart, every row reads back through the KMS');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ledger_verify('full')}), '1',
	'ledger_verify(full) passes');
$node->stop;
stop_kms();
unlike(server_log($node), qr/BEGIN (RSA )?PRIVATE KEY/, 'the client key never reaches the server log');

done_testing();
