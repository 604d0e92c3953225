
# A streaming replica made from a base backup reads the same ledger rows
# as its primary.
#
# The keyring lives outside the data directory, so the base backup holds
# neither the file nor its key material: the standby gets its own copy of
# the keyring, with ledger.keyring_file pointing at it.  WAL replay needs
# no key: it goes on while the standby's keyring is missing, and the rows
# read back once the keyring is back.  After promotion the former standby
# writes ledger rows of its own.

use strict;
use warnings;

use File::Copy;
use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# A short key check interval: after a refusal, a ledger serves again once
# a check succeeds.  On a standby no worker runs; a refused session checks.
my $primary = ledger_node('primary', allows_streaming => 1,
	extra_conf => "ledger.key_check_interval = 100\n");
my $primary_keyring = keyring_path($primary);
my ($hex) = keyring_key_hex($primary_keyring);
ok(defined $hex, 'the primary has a keyring');

$primary->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, name text, doc jsonb, amount numeric)
	  USING ledger;
	INSERT INTO t SELECT g, 'name-' || g, jsonb_build_object('g', g), g * 0.5
	  FROM generate_series(1, 200) g;
	UPDATE t SET name = name || '-upd' WHERE id % 10 = 0;
	DELETE FROM t WHERE id % 25 = 0;
	INSERT INTO t VALUES (500, repeat('big', 3000), '{"big": true}', 1);
});

$primary->backup('base');
my $backup = $primary->backup_dir . '/base';
ok(!-e "$backup/keyring", 'the base backup holds no keyring file');
is_deeply(files_containing($backup, $hex, uc $hex),
	{ $hex => [], uc($hex) => [] },
	'no file of the base backup holds the provider key');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
my $standby_keyring = keyring_path($standby);
copy($primary_keyring, $standby_keyring) or die "copy keyring: $!";
chmod(0600, $standby_keyring) or die "chmod: $!";
$standby->append_conf('postgresql.conf', "ledger.keyring_file = '$standby_keyring'");
$standby->start;

# Writes after the backup reach the standby by streaming.
$primary->safe_psql(
	'postgres', q{
	INSERT INTO t SELECT g, 'streamed-' || g, '{"s": 1}', g FROM generate_series(1001, 1100) g;
	UPDATE t SET name = 'streamed-update' WHERE id = 1;
	DELETE FROM t WHERE id = 2;
	INSERT INTO t VALUES (1500, repeat('streamed-big', 500), '{}', 2);
});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

my $rows_sql = q{SELECT id, name, doc, amount FROM t ORDER BY id};
my $journal_sql = q{
	SELECT table_id, doc_id, version, op, md5(payload), encode(revision_hash, 'hex')
	FROM ledger.journal ORDER BY table_id, doc_id, version};

sub compare
{
	my ($what) = @_;
	my $p = $primary->safe_psql('postgres', $rows_sql);
	is(psql_out($standby, $rows_sql), $p, "$what: standby rows equal the primary's");
	is(psql_out($standby, $journal_sql),
		$primary->safe_psql('postgres', $journal_sql),
		"$what: standby journal equals the primary's");
	is( psql_out($standby, 'SET enable_seqscan = off; SELECT name FROM t WHERE id = 1'),
		'streamed-update', "$what: an index scan on the standby opens the row");
	is(table_docs($standby, 't'), table_docs($primary, 't'),
		"$what: same documents and versions");
	return $p;
}

my $rows = compare('after streaming');
like($rows, qr/^500\|(big){3000}\|/m, 'the big row is among them');
is(psql_out($standby, 'SELECT count(*) FROM t'), '293', 'standby has 293 rows');
is(psql_out($standby, 'SELECT pg_is_in_recovery()'), 't', 'it is a standby');

# The chain on a standby: once caught up, its digest is the primary's, and
# it verifies at both levels.  No worker runs there.
my $digest = $primary->safe_psql('postgres', 'SELECT digest FROM ledger_digest()');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is(psql_out($standby, 'SELECT digest FROM ledger_digest()'), $digest,
	"the caught-up standby's digest is the primary's");
is(psql_out($standby, q{SELECT revisions = (SELECT count(*) FROM ledger.journal)
	AND current_rows = (SELECT count(*) FROM t) FROM ledger_verify('full')}),
	't', 'ledger_verify runs on the standby');
is(psql_out($standby, "SELECT revisions > 0 FROM ledger_verify('$digest')"), 't',
	'the standby verifies against the digest');
is(psql_out($standby, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'ledger%'}),
	'0', 'no ledger worker runs on the standby');

# The standby uses its own keyring: with the primary's moved away, a new
# standby session still reads.
rename($primary_keyring, "$primary_keyring.away") or die "rename: $!";
is(psql_out($standby, 'SELECT name FROM t WHERE id = 3'),
	'name-3', "the standby reads with its own keyring while the primary's is missing");
rename("$primary_keyring.away", $primary_keyring) or die "rename: $!";
# Meanwhile the primary's worker may have seen its keyring missing.
ok($primary->poll_query_until('postgres', 'SELECT status FROM ledger_status()', 'ENABLED'),
	'the primary has access to its key');

# Replay needs no key: without the standby's keyring, reads fail with
# LD001, yet replay continues, and the rows read back once it is restored.
rename($standby_keyring, "$standby_keyring.away") or die "rename: $!";
my $e = psql_error($standby, 'SELECT name FROM t WHERE id = 3');
is($e->{sqlstate}, 'LD001', 'standby without its keyring: reads fail with LD001');
ok(!-e $standby_keyring, 'standby without its keyring: no keyring is created');
$primary->safe_psql('postgres',
	q{INSERT INTO t VALUES (2000, 'while the standby has no key', '{}', 3);});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is(psql_out($standby, 'SELECT status FROM ledger_status()'), 'KMS_KEY_INACCESSIBLE',
	'standby without its keyring: its status says so');
rename("$standby_keyring.away", $standby_keyring) or die "rename: $!";
ok($standby->poll_query_until('postgres', 'SELECT name FROM t WHERE id = 2000',
		'while the standby has no key'),
	'rows replayed without the key read back');
is(psql_out($standby, 'SELECT status FROM ledger_status()'), 'ENABLED',
	'the standby came back by itself, with no worker');
compare('after the keyring came back');

# Key changes on the primary reach the standby through WAL; it reads with
# the same keyring throughout, and refuses to change keys itself.
foreach my $kind ('root_key', 'data_keys')
{
	my $id = $primary->safe_psql('postgres', "SELECT ledger_rotate_key('$kind')");
	ok($primary->poll_query_until('postgres',
		"SELECT state FROM ledger.key_changes WHERE change_id = $id", 'done'),
		"the primary's $kind change is done");
	$primary->safe_psql('postgres', qq{INSERT INTO t VALUES ($id + 3000, 'after $kind', '{}', 4)});
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
	compare("after a $kind change on the primary");
}
$e = psql_error($standby, 'SELECT ledger_rotate_key()');
is($e->{sqlstate}, '25006', 'a standby refuses to change keys');
is(psql_out($standby, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'ledger%'}),
	'0', 'still no ledger worker on the standby');

# The promoted standby writes ledger rows of its own.
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'promotion did not finish';
is( psql_out(
		$standby, q{INSERT INTO t VALUES (3000, 'after promotion', '{"p": 1}', 4);
		UPDATE t SET name = 'updated after promotion' WHERE id = 3;
		SELECT name FROM t WHERE id IN (3, 3000) ORDER BY id}
	),
	"updated after promotion\nafter promotion",
	'the promoted standby writes and reads ledger rows');
is(table_docs($standby, 't'), journal_current_docs($standby, 't'),
	"the promoted standby's rows match its journal");
is( psql_out(
		$standby, q{SELECT count(*) FROM (
		SELECT ledger_document_id('t', ctid) FROM t GROUP BY 1 HAVING count(*) > 1) d}
	),
	'0',
	'document ids stay unique after promotion');

$standby->stop;
$primary->stop;
done_testing();
