
# The embedded file key provider: what CREATE EXTENSION needs, where the
# keyring may live, and what happens when it is readable by others,
# missing or malformed.  Key material never reaches the server log.

use strict;
use warnings;

use File::Find;
use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Verbose logging, so that the check for key material in the log at the
# end covers as much as the server can say.
my $node = ledger_node(
	'keys',
	preload    => 0,
	keyring    => undef,
	extension  => 0,
	extra_conf => "log_min_messages = debug1\nlog_error_verbosity = verbose\n"
	  . "ledger.key_check_interval = 100\n");
my $keyring = keyring_path($node);
my $e;

# --- Without shared_preload_libraries -------------------------------------

$e = psql_error($node, 'CREATE EXTENSION ledger');
isnt($e->{ret}, 0, 'CREATE EXTENSION fails without shared_preload_libraries');
like(
	$e->{message},
	qr/ledger must be loaded via shared_preload_libraries/,
	'... saying the library must be preloaded');
like($e->{hint}, qr/Add ledger to shared_preload_libraries/,
	'... with a hint on what to do');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_extension WHERE extname = 'ledger'}),
	'0', '... and leaves no extension behind');

# --- Preloaded, but ledger.keyring_file unset -----------------------------

$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ledger'");
$node->restart;
$e = psql_error($node, 'CREATE EXTENSION ledger');
is($e->{sqlstate}, 'LD001', 'CREATE EXTENSION without ledger.keyring_file fails with LD001');
like($e->{message}, qr/ledger does not have access to its provider key/,
	'... with the provider-key message');
like($e->{detail}, qr/ledger\.keyring_file is not set/, '... naming the unset setting');
like($e->{hint}, qr/Set ledger\.keyring_file/, '... and a hint');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_extension WHERE extname = 'ledger'}),
	'0', '... and leaves no extension behind');

# --- A keyring inside the data directory is refused ----------------------

my $inside = $node->data_dir . '/keyring';
foreach my $setting ($inside, 'keyring', 'global/../keyring')
{
	$node->append_conf('postgresql.conf', "ledger.keyring_file = '$setting'");
	$node->reload;
	$node->poll_query_until('postgres',
		"SELECT current_setting('ledger.keyring_file') = '$setting'")
	  or die "reload did not take effect";
	$e = psql_error($node, 'CREATE EXTENSION ledger');
	isnt($e->{ret}, 0, "keyring '$setting' inside the data directory is refused");
	like($e->{message}, qr/is inside the data directory/,
		"... with a message saying so ($setting)");
	like($e->{hint}, qr/outside the data directory/, "... and a hint ($setting)");
	ok(!-e $inside, "... and no keyring was created in the data directory ($setting)");
}
my @datadir_keyrings;
find(sub { push @datadir_keyrings, $File::Find::name if /keyring/ }, $node->data_dir);
is_deeply(\@datadir_keyrings, [], 'no keyring file anywhere in the data directory');

# --- A keyring outside the data directory works --------------------------

$node->append_conf('postgresql.conf', "ledger.keyring_file = '$keyring'");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT current_setting('ledger.keyring_file') = '$keyring'")
  or die "reload did not take effect";
$node->safe_psql('postgres', 'CREATE EXTENSION ledger');
ok(-f $keyring, 'CREATE EXTENSION created the keyring outside the data directory');
is(sprintf('%04o', file_mode($keyring)), '0600', 'keyring has mode 0600');
my @hex = keyring_key_hex($keyring);
is(scalar(@hex), 1, 'keyring holds one key');
my $good_keyring = slurp_file($keyring);

$node->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, secret text) USING ledger;
	INSERT INTO t SELECT g, 'secret-' || g FROM generate_series(1, 10) g;
});
is($node->safe_psql('postgres', 'SELECT secret FROM t WHERE id = 3'),
	'secret-3', 'ledger rows read back with the keyring in place');

# Reads and writes in a new session, each with an empty key cache.
sub read_fails_like
{
	my ($re_message, $re_detail, $what) = @_;
	my $r = psql_error($node, 'SELECT secret FROM t WHERE id = 3');
	is($r->{sqlstate}, 'LD001', "$what: a read fails with LD001");
	# The provider's own error, or, once the worker has seen the failure,
	# the ledger's refusal, which repeats it in its detail.
	like("$r->{message}: " . ($r->{detail} // ''), $re_message, "$what: read error message");
	like($r->{detail}, $re_detail, "$what: read error detail") if $re_detail;
	unlike($r->{stdout}, qr/secret-3/, "$what: no data returned");
	my $w = psql_error($node, q{INSERT INTO t VALUES (100, 'written')});
	is($w->{sqlstate}, 'LD001', "$what: a write fails with LD001");
	return $r;
}

# A failure marks the key inaccessible for the whole ledger; it serves
# again once a check succeeds, within ledger.key_check_interval.
sub reads_work
{
	my ($what) = @_;
	ok( $node->poll_query_until(
			'postgres', q{SELECT secret FROM t WHERE id = 3}, 'secret-3'),
		"$what: reads work again");
	is($node->safe_psql('postgres', 'SELECT status FROM ledger_status()'),
		'ENABLED', "$what: the status is ENABLED");
}

# Replace the keyring by other contents, and back, each in one rename: the
# worker checks the keyring all the time and must never find it missing
# when the test means it to be malformed.
my $moved = "$keyring.away";

sub swap_keyring
{
	my ($contents) = @_;
	copy_file($keyring, $moved);
	append_to_file("$keyring.new", $contents);
	chmod(0600, "$keyring.new");
	rename("$keyring.new", $keyring) or die "rename: $!";
}

sub restore_keyring
{
	rename($moved, $keyring) or die "rename: $!";
}

sub copy_file
{
	my ($from, $to) = @_;
	my $text = slurp_file($from);
	unlink($to);
	append_to_file($to, $text);
	chmod(0600, $to);
}

# --- Group-readable keyring -----------------------------------------------

chmod(0640, $keyring) or die "chmod: $!";
my $r = read_fails_like(qr/keyring file ".*" is accessible to other users/,
	qr/mode 0600/, 'group-readable keyring');
like($r->{hint}, qr/chmod 0600/, 'group-readable keyring: the hint says chmod 0600');
chmod(0600, $keyring) or die "chmod: $!";
reads_work('after chmod 0600');
chmod(0604, $keyring) or die "chmod: $!";
read_fails_like(qr/accessible to other users/, undef, 'world-readable keyring');
chmod(0600, $keyring) or die "chmod: $!";
reads_work('after chmod 0600');

# --- Missing keyring, once the root key exists ----------------------------

rename($keyring, $moved) or die "rename: $!";
$r = read_fails_like(qr/ledger does not have access to its provider key/,
	qr/does not exist/, 'missing keyring');
like($r->{hint}, qr/Restore the keyring file/, 'missing keyring: hint says to restore it');
$e = psql_error($node, q{CREATE TABLE t2 (id int) USING ledger});
is($e->{sqlstate}, 'LD001', 'missing keyring: creating a ledger table fails with LD001');
ok(!-e $keyring, 'missing keyring is not silently re-created');
$node->restart;
$e = psql_error($node, 'SELECT count(*) FROM t');
is($e->{sqlstate}, 'LD001', 'missing keyring: still LD001 after a restart');
ok(!-e $keyring, 'missing keyring is not re-created by a restart either');
rename($moved, $keyring) or die "rename: $!";
reads_work('after restoring the keyring');

# --- A different keyring (a fresh key) is not the provider key ------------

my $other_key = 'key 11111111-2222-4333-8444-555555555555 1 enabled ' . ('ab' x 32) . "\n";
swap_keyring($other_key);
read_fails_like(qr/ledger does not have access to its provider key/,
	qr/does not hold provider key/, 'keyring without the provider key');
restore_keyring();
reads_work('after restoring the keyring again');

# The right key id, but other key material.
(my $wrong_material = $good_keyring) =~ s/[0-9a-f]{64}/'cd' x 32/e;
isnt($wrong_material, $good_keyring, 'made a keyring with other key material');
swap_keyring($wrong_material);
read_fails_like(qr/ledger does not have access to its provider key/,
	qr/does not open the ledger's root key/, 'keyring with other key material');
restore_keyring();
reads_work('after restoring the right keyring');

# --- Malformed keyrings are refused without echoing their contents ---------

my $canary = 'CANARY' . random_marker(20);
(my $bad_hex = $good_keyring) =~ s/([0-9a-f]{64})/substr($1, 0, 63) . 'g'/e;
my %malformed = (
	'a line that is not a key line' => "$good_keyring$canary this is not a key line\n",
	'a key line with a non-hex digit' => $bad_hex . "# $canary\n",
	'a key line with a short key' =>
	  "key 11111111-2222-4333-8444-555555555555 1 enabled $canary\n",);
foreach my $what (sort keys %malformed)
{
	swap_keyring($malformed{$what});
	$r = read_fails_like(qr/ledger does not have access to its provider key/,
		qr/malformed/, "keyring with $what");
	unlike($r->{stderr}, qr/\Q$canary\E/i,
		"keyring with $what: the error does not echo the file");
	unlike($r->{stderr}, qr/\Q$hex[0]\E/i,
		"keyring with $what: the error holds no key material");
	unlike($r->{stderr}, qr/\Q${\ substr($hex[0], 0, 16)}\E/i,
		"keyring with $what: the error holds no part of the key");
	restore_keyring();
}
reads_work('after restoring a well-formed keyring');

# An empty keyring holds no enabled key.
swap_keyring("# nothing here\n");
read_fails_like(qr/ledger does not have access to its provider key/,
	undef, 'keyring without keys');
restore_keyring();
reads_work('finally');

is(slurp_file($keyring), $good_keyring, 'the keyring was never rewritten');

# --- No key material in the server log ------------------------------------

$node->stop;
my $log = server_log($node);
ok(length($log) > 1000, 'the server log was written');
unlike($log, qr/\Q$hex[0]\E/i, 'the provider key never appears in the server log');
unlike($log, qr/\Q${\ substr($hex[0], 0, 16)}\E/i,
	'no 16-digit prefix of the provider key appears in the server log');
unlike($log, qr/\Q${\ substr($hex[0], 32, 16)}\E/i,
	'no 16-digit piece of the second half of the provider key appears in the server log');
unlike($log, qr/\Q$canary\E/, 'malformed keyring contents never appear in the server log');
like($log, qr/LD001|does not have access to its provider key/,
	'the refusals were logged (so the log was searched where they went)');

done_testing();
