
# Ledger rows survive a fast restart and a crash (immediate shutdown):
# every row reads back unchanged, the journal is byte for byte the same,
# an in-flight transaction leaves neither a row nor a revision, and new
# writes work afterwards.  The keyring is created with mode 0600 and is
# never re-created by a restart.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node    = ledger_node('main');
my $keyring = keyring_path($node);

# The keyring: created by CREATE EXTENSION, outside the data directory,
# owned by the server's user, mode 0600, with exactly one key line.
ok(-f $keyring, 'CREATE EXTENSION created the keyring file');
is(sprintf('%04o', file_mode($keyring)), '0600', 'keyring file has mode 0600');
is((stat($keyring))[4], $>, 'keyring file is owned by the server user');
my @hex = keyring_key_hex($keyring);
is(scalar(@hex), 1, 'keyring holds one key line');
my $keyring_text = slurp_file($keyring);

$node->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, name text, doc jsonb, amount numeric)
	  USING ledger;
	INSERT INTO t
	  SELECT g, 'name-' || g, jsonb_build_object('g', g, 'sq', g * g), g * 1.5
	  FROM generate_series(1, 300) g;
	UPDATE t SET name = name || '-upd', amount = amount + 1 WHERE id % 7 = 0;
	UPDATE t SET doc = doc || '{"twice": true}' WHERE id % 21 = 0;
	DELETE FROM t WHERE id % 50 = 0;
	-- a row whose payload is too big to stay inline: the journal holds it
	INSERT INTO t VALUES (1000, repeat('big', 2000), '{"big": true}', 0);
});

# Everything a reader can observe, in a stable order.
my $rows_sql = q{SELECT id, name, doc, amount FROM t ORDER BY id};
my $journal_sql = q{
	SELECT table_id, doc_id, version, op, key_id, md5(payload),
	       encode(data_hash, 'hex'),
	       encode(revision_hash, 'hex')
	FROM ledger.journal ORDER BY table_id, doc_id, version};

my $rows    = $node->safe_psql('postgres', $rows_sql);
my $journal = $node->safe_psql('postgres', $journal_sql);

is($node->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'295', '295 rows before restarting');
is( $node->safe_psql('postgres', q{SELECT name FROM t WHERE id = 14}),
	'name-14-upd', 'updated row reads back');
is( $node->safe_psql('postgres', q{SELECT length(name) FROM t WHERE id = 1000}),
	'6000', 'big row reads back');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM ledger.journal
		WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 't'::regclass)}
	),
	# 300 inserts, 42 + 14 updates, 6 deletes, 1 big insert
	'363',
	'journal holds one revision per change');
is(table_docs($node, 't'), journal_current_docs($node, 't'),
	'rows are the newest non-deleted revisions of the journal');

# Checks that the data read back after a restart are unchanged.
sub check_intact
{
	my ($what) = @_;
	is($node->safe_psql('postgres', $rows_sql), $rows, "$what: rows intact");
	is($node->safe_psql('postgres', $journal_sql),
		$journal, "$what: journal intact");
	is($node->safe_psql('postgres', 'SET enable_seqscan = off; SELECT name FROM t WHERE id = 42'),
		'name-42-upd', "$what: index scan opens the row");
	is(table_docs($node, 't'), journal_current_docs($node, 't'),
		"$what: rows match the journal's current revisions");
	is(slurp_file($keyring), $keyring_text, "$what: keyring unchanged");
	is(sprintf('%04o', file_mode($keyring)), '0600', "$what: keyring still 0600");
}

# Fast restart.
$node->restart;
check_intact('after fast restart');

# Committed but not checkpointed writes, then a crash while another
# transaction is in flight.
$node->safe_psql(
	'postgres', q{
	INSERT INTO t SELECT g, 'late-' || g, '{"late": 1}', g FROM generate_series(2001, 2050) g;
	UPDATE t SET name = 'late-updated' WHERE id = 2001;
	DELETE FROM t WHERE id = 2002;
});
$rows    = $node->safe_psql('postgres', $rows_sql);
$journal = $node->safe_psql('postgres', $journal_sql);
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'344', '344 rows before the crash');

my $inflight = $node->background_psql('postgres', on_error_stop => 0);
$inflight->query_safe(
	q{BEGIN; INSERT INTO t VALUES (3000, 'in-flight', '{}', 0);
	  UPDATE t SET name = 'in-flight-update' WHERE id = 1;});

$node->stop('immediate');
eval { $inflight->quit; };    # its server is gone
$node->start;
ok( $node->log_contains('database system was interrupted|was not properly shut down'),
	'the restart after the immediate shutdown ran crash recovery');
check_intact('after crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 3000'),
	'0', 'the in-flight insert is gone');
is($node->safe_psql('postgres', 'SELECT name FROM t WHERE id = 1'),
	'name-1', 'the in-flight update is gone');

# New writes work, and continue the documents' histories.
my $doc1_before = $node->safe_psql('postgres',
	q{SELECT ledger_document_id('t', ctid) || ':' || ledger_document_version('t', ctid) FROM t WHERE id = 7}
);
$node->safe_psql(
	'postgres', q{
	INSERT INTO t VALUES (4000, 'after-crash', '{"after": "crash"}', 4);
	UPDATE t SET name = 'updated-after-crash' WHERE id = 7;
	DELETE FROM t WHERE id = 8;
	INSERT INTO t VALUES (4001, repeat('z', 9000), '{}', 5);
});
is( $node->safe_psql('postgres', q{SELECT name, doc->>'after' FROM t WHERE id = 4000}),
	'after-crash|crash', 'insert after the crash reads back');
is( $node->safe_psql('postgres', q{SELECT name FROM t WHERE id = 7}),
	'updated-after-crash', 'update after the crash reads back');
is($node->safe_psql('postgres', q{SELECT count(*) FROM t WHERE id = 8}),
	'0', 'delete after the crash took effect');
is( $node->safe_psql('postgres', q{SELECT length(name) FROM t WHERE id = 4001}),
	'9000', 'big insert after the crash reads back');
my ($doc, $ver) = split /:/, $doc1_before;
is( $node->safe_psql('postgres',
		q{SELECT ledger_document_id('t', ctid) || ':' || ledger_document_version('t', ctid) FROM t WHERE id = 7}
	),
	$doc . ':' . ($ver + 1),
	'the update after the crash keeps the document id and takes the next version');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM (
		SELECT ledger_document_id('t', ctid) FROM t
		GROUP BY 1 HAVING count(*) > 1) d}
	),
	'0',
	'document ids stay unique after the crash');
is(table_docs($node, 't'), journal_current_docs($node, 't'),
	'rows still match the journal after new writes');

# And everything survives one more crash.
$rows = $node->safe_psql('postgres', $rows_sql);
$journal = $node->safe_psql('postgres', $journal_sql);
$node->stop('immediate');
$node->start;
check_intact('after a second crash');

$node->stop;
done_testing();
