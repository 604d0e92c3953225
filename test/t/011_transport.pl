
# ledger.require_secure_transport: over TCP, ledger data needs TLS; over a
# Unix-domain socket it does not.  The server has a self-signed certificate
# made here with openssl.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ledger_node('transport', start => 0);
my $data = $node->data_dir;
system_or_bail('openssl', 'req', '-new', '-x509', '-days', '2', '-nodes',
	'-newkey', 'rsa:2048', '-subj', '/CN=localhost',
	'-keyout', "$data/server.key", '-out', "$data/server.crt");
chmod(0600, "$data/server.key") or die "chmod: $!";
$node->append_conf('postgresql.conf', qq{
listen_addresses = '127.0.0.1'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ledger');
$node->safe_psql('postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, v text) USING ledger;
	INSERT INTO t VALUES (1, 'over the socket');
	CREATE TABLE h (id int);
});

my $tcp = 'host=127.0.0.1 port=' . $node->port . ' dbname=postgres';

sub refused
{
	my ($sql, $what) = @_;
	my $e = psql_error($node, $sql, connstr => "$tcp sslmode=disable");
	is($e->{sqlstate}, '28000', "TCP without TLS: $what is refused with 28000");
	unlike($e->{stdout}, qr/over the socket/, "... and shows no data ($what)");
	return $e;
}

my $e = refused('SELECT v FROM t', 'a read');
like($e->{message}, qr/ledger data cannot be used over an unencrypted connection/,
	'... saying why');
like($e->{hint}, qr/sslmode=require/, '... and hinting at sslmode=require');
$e = refused(q{INSERT INTO t VALUES (2, 'plain')}, 'a write');
like($e->{message}, qr/unencrypted connection/, '... for the same reason');
is($node->safe_psql('postgres', 'SELECT count(*) FROM h', connstr => "$tcp sslmode=disable"),
	'0', 'TCP without TLS: a heap table still works');
is($node->safe_psql('postgres', q{SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()},
		connstr => "$tcp sslmode=require"),
	't', 'sslmode=require gives a TLS connection');
is($node->safe_psql('postgres', 'SELECT v FROM t WHERE id = 1', connstr => "$tcp sslmode=require"),
	'over the socket', 'TCP with TLS: ledger data reads');
$node->safe_psql('postgres', q{INSERT INTO t VALUES (3, 'over TLS')},
	connstr => "$tcp sslmode=require");
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '2',
	'TCP with TLS: it writes; a Unix-socket session reads');

$e = psql_error($node, 'SET ledger.require_secure_transport = off',
	connstr => "$tcp sslmode=disable");
is($e->{sqlstate}, '55P02', 'a session cannot turn the rule off');

$node->append_conf('postgresql.conf', 'ledger.require_secure_transport = off');
$node->reload;
ok($node->poll_query_until('postgres',
		q{SELECT current_setting('ledger.require_secure_transport')}, 'off'),
	'the rule is turned off in the configuration');
is($node->safe_psql('postgres', 'SELECT v FROM t WHERE id = 1', connstr => "$tcp sslmode=disable"),
	'over the socket', '... and then TCP without TLS reads');

done_testing();
