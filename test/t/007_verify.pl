# ledger_verify() finds every change made to the history behind the
# extension's back, and names its place.
#
# Each case swaps the access method of the extension's tables to heap as a
# superuser (the files stay byte for byte the same), changes them with
# plain SQL, swaps back, runs ledger_verify() and rolls everything back,
# so the cases are independent.  A clean history must verify before and
# after every case: a check that always fails would pass this test
# otherwise.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

# The worker seals only when asked (ledger_digest()): the last insert
# below must stay unsealed.
my $node = ledger_node('verify', extra_conf => "ledger.seal_interval = '1h'\n");

$node->safe_psql('postgres', q{
	CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
	INSERT INTO acct SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 50) g;
	UPDATE acct SET balance = balance + 1 WHERE id <= 10;
	DELETE FROM acct WHERE id = 50;
	SELECT ledger_digest();
	INSERT INTO acct VALUES (100, 'late', 1);
});
my $old_digest = $node->safe_psql('postgres',
	q{SELECT digest FROM ledger_digest()});
$node->safe_psql('postgres', q{
	INSERT INTO acct VALUES (101, 'after the digest', 1);
	SELECT ledger_digest();
	INSERT INTO acct VALUES (102, 'unsealed', 2);
});

my ($doc1) = $node->safe_psql('postgres',
	q{SELECT ledger_document_id('acct', ctid) FROM acct WHERE id = 1});
my $tid = $node->safe_psql('postgres',
	q{SELECT table_id FROM ledger.tables WHERE relid = 'acct'::regclass});

# The revisions: the table's creation (a catalog event), 50 inserts, 10
# updates, 1 tombstone, 3 late inserts.
is($node->safe_psql('postgres',
		q{SELECT revisions || ' ' || current_rows || ' ' || unsealed_transactions FROM ledger_verify('full')}),
	'65 52 1', 'a clean history verifies, counting every revision and row');

# SQL that gives relations (names in schema ledger, or qualified) another
# access method.
sub swap_am
{
	my ($am, @rels) = @_;
	return join '', map {
		my $rel = /\./ ? $_ : "ledger.$_";
		"UPDATE pg_class SET relam = (SELECT oid FROM pg_am WHERE amname = '$am') "
		  . "WHERE oid = '$rel'::regclass;\n"
	} @rels;
}

# Settings that make the next tampered() verify in parallel: the journal
# is read by one worker alone, so a failure it finds must reach the leader.
my $in_parallel = "SET LOCAL min_parallel_table_scan_size = 0;\n"
  . "SET LOCAL max_parallel_maintenance_workers = 1;\n"
  . "SET LOCAL parallel_leader_participation = off;\n"
  . "SET LOCAL client_min_messages = debug1;\n";
my $settings = '';

# Run a change with the given tables on heap, then verify at the given
# level, all in one transaction that is rolled back.
sub tampered
{
	my ($change, $verify, @rels) = @_;
	@rels = ('journal') unless @rels;
	my $sql = "BEGIN;\n$settings" . swap_am('heap', @rels) . "$change;\n"
	  . join('', map { swap_am(/\./ ? 'ledger' : 'ledger_internal', $_) } @rels)
	  . "SELECT * FROM $verify;\nROLLBACK;\n";
	return psql_error($node, $sql);
}

# Level chain reads the journal in parallel workers when it is large: each
# change it must find is also found by a worker, and reported the same.
sub detects
{
	my ($name, $change, $verify, $place, $detail, @rels) = @_;
	my $e = tampered($change, $verify, @rels);
	is($e->{sqlstate}, 'XX001', "$name: reported as data corruption");
	like($e->{message}, $place, "$name: the report names the place");
	like($e->{detail} // '', $detail, "$name: the report says what is wrong");
	if ($verify =~ /chain/)
	{
		$settings = $in_parallel;
		my $p = tampered($change, $verify, @rels);
		$settings = '';
		like($p->{stderr}, qr/the journal is read by 1 of 1 planned parallel workers\n/,
			"$name: in parallel, a worker reads the journal");
		is(join('|', @$p{qw(sqlstate message detail)}), join('|', @$e{qw(sqlstate message detail)}),
			"$name: in parallel, the same report");
	}
	is($node->safe_psql('postgres', q{SELECT revisions FROM ledger_verify('full')}),
		'65', "$name: the untouched history still verifies");
}

my $rev = "table_id = $tid AND doc_id = $doc1";

detects('one payload byte',
	"UPDATE ledger.journal SET payload = set_byte(payload, 60, get_byte(payload, 60) # 1) WHERE $rev AND version = 1",
	"ledger_verify('full')",
	qr/at table public.acct \(table id $tid\) document $doc1 version 1$/,
	qr/fails authentication/);

# The chain level never opens a payload: that is what lets it run
# without keys.  Flipping a payload byte is a job for level full.
is(tampered("UPDATE ledger.journal SET payload = set_byte(payload, 60, get_byte(payload, 60) # 1) WHERE $rev AND version = 1",
		"ledger_verify('chain')")->{ret},
	0, 'level chain does not open payloads');

detects('a payload removed without a redaction',
	"UPDATE ledger.journal SET payload = NULL WHERE $rev AND version = 0",
	"ledger_verify('full')",
	qr/document $doc1 version 0$/, qr/no redaction of it is recorded/);

detects('a catalog event changed',
	"UPDATE ledger.journal SET payload = convert_to(replace(convert_from(payload, 'UTF8'), 'integer', 'bigint'), 'UTF8') WHERE table_id = 0",
	"ledger_verify('full')",
	qr/at the ledger catalog \(table id 0\) document $tid version 0$/, qr/data hash does not match its payload/);

detects('a stored revision hash',
	"UPDATE ledger.journal SET revision_hash = sha256(revision_hash) WHERE $rev AND version = 0",
	"ledger_verify('chain')",
	qr/document $doc1 version 0$/, qr/revision hash does not match/);

detects('a stored data hash',
	"UPDATE ledger.journal SET data_hash = sha256(data_hash) WHERE $rev AND version = 1",
	"ledger_verify('chain')",
	qr/document $doc1 version 1$/, qr/revision hash does not match/);

detects('a deleted revision',
	"DELETE FROM ledger.journal WHERE $rev AND version = 1",
	"ledger_verify('chain')",
	qr/at transaction \d+$/, qr/counts 10 revisions, the journal holds 9/);

# Entries sort before their revisions by a flag, not by an id no row can
# carry: a revision moved below every table id is still a revision.
detects('a revision moved below every table id',
	"UPDATE ledger.journal SET table_id = -9223372036854775808 WHERE $rev AND version = 0",
	"ledger_verify('chain')",
	qr/at table id -9223372036854775808 document $doc1 version 0$/, qr/revision hash does not match/);

detects('two revisions of a document reordered',
	"UPDATE ledger.journal SET version = -1 WHERE $rev AND version = 0;"
	  . "UPDATE ledger.journal SET version = 0 WHERE $rev AND version = 1;"
	  . "UPDATE ledger.journal SET version = 1 WHERE $rev AND version = -1",
	"ledger_verify('chain')",
	qr/document $doc1 version [01]$/, qr/revision hash does not match/);

detects('two transactions reordered',
	q{CREATE TEMP TABLE two AS SELECT seq FROM ledger.transactions ORDER BY seq LIMIT 2;
	  UPDATE ledger.transactions SET seq = -seq WHERE seq = (SELECT min(seq) FROM two);
	  UPDATE ledger.transactions SET seq = (SELECT min(seq) FROM two) WHERE seq = (SELECT max(seq) FROM two);
	  UPDATE ledger.transactions SET seq = (SELECT max(seq) FROM two) WHERE seq < 0},
	"ledger_verify('chain')",
	qr/at block 1$/, qr/Merkle root of its transactions/, 'transactions');

detects('a stored Merkle root of a transaction',
	"UPDATE ledger.transactions SET merkle_root = sha256(merkle_root) WHERE seq = (SELECT min(seq) FROM ledger.transactions)",
	"ledger_verify('chain')",
	qr/at transaction \d+$/, qr/Merkle root of its revisions/, 'transactions');

# A stored root that is no hash at all is named where the walk reaches it.
for my $mode ('', $in_parallel)
{
	$settings = $mode;
	my $e = tampered("UPDATE ledger.transactions SET merkle_root = '\\x00'::bytea "
		  . "WHERE seq = (SELECT min(seq) FROM ledger.transactions)",
		"ledger_verify('chain')", 'transactions');
	$settings = '';
	my $how = $mode ? 'in parallel' : 'alone';
	is($e->{sqlstate}, 'XX001', "a root that is no hash, $how: reported as data corruption");
	like($e->{message}, qr/^ledger chain is damaged: transaction \d+ has no valid hash$/,
		"a root that is no hash, $how: the report names the transaction");
}

detects('a removed block',
	'DELETE FROM ledger.blocks WHERE block_number = 1',
	"ledger_verify('chain')",
	qr/at block 2$/, qr/Block 1 should come next/, 'blocks');

detects('a stored block hash',
	'UPDATE ledger.blocks SET block_hash = sha256(block_hash) WHERE block_number = 1',
	"ledger_verify('chain')",
	qr/at block [12]$/, qr/block hash does not match|previous hash/, 'blocks');

detects('a stored tree node',
	'UPDATE ledger.blocks SET tree_nodes = sha256(tree_nodes) WHERE block_number = 1',
	"ledger_verify('chain')",
	qr/at block 1$/, qr/tree nodes do not match/, 'blocks');

detects('a stored tree root',
	'UPDATE ledger.blocks SET tree_root = sha256(tree_root) WHERE block_number = 2',
	"ledger_verify('chain')",
	qr/at block 2$/, qr/tree root does not match/, 'blocks');

detects('a removed transaction entry',
	"DELETE FROM ledger.transactions WHERE seq = (SELECT max(seq) FROM ledger.transactions)",
	"ledger_verify('chain')",
	qr/at table public.acct \(table id $tid\) document \d+ version 0$/, qr/No transaction entry covers/,
	'transactions');

# The current rows: heap's own UPDATE and DELETE change them without a
# revision.
detects('a current row deleted',
	'DELETE FROM acct WHERE id = 2',
	"ledger_verify('full')",
	qr/at table public.acct \(table id $tid\) document \d+ version 1$/, qr/has no row of this document/,
	'public.acct');
{
	my $e = tampered("UPDATE acct SET owner = 'mallory' WHERE id = 3",
		"ledger_verify('full')", 'public.acct');
	is($e->{sqlstate}, 'XX001', 'a current row rewritten: reported as data corruption');
	like($e->{stderr}, qr/verifying the current rows of table public.acct \(table id $tid\)/,
		'a current row rewritten: the report names the table');
}

# A history rewritten consistently after a digest: one transaction and
# every block from the one that covers it are removed, and the rest is
# sealed again.  The chain is whole again, but the old digest no longer
# matches.
{
	my $sql = "BEGIN;\n"
	  . swap_am('heap', qw(journal transactions blocks public.acct))
	  . qq{CREATE TEMP TABLE victim AS
		     SELECT xid, seq FROM ledger.transactions ORDER BY seq DESC OFFSET 2 LIMIT 1;
		   DELETE FROM ledger.journal WHERE xid = (SELECT xid FROM victim);
		   DELETE FROM ledger.blocks WHERE last_seq >= (SELECT seq FROM victim);
		   DELETE FROM ledger.transactions WHERE xid = (SELECT xid FROM victim);
		   DELETE FROM acct WHERE id = 100;
		 }
	  . swap_am('ledger_internal', qw(journal transactions blocks))
	  . swap_am('ledger', 'public.acct')
	  . qq{SELECT ledger_digest();
		   SELECT 'chain ok ' || revisions FROM ledger_verify('chain');
		   SELECT 'full ok ' || revisions FROM ledger_verify('full');
		   SELECT * FROM ledger_verify('$old_digest'::jsonb);
		   ROLLBACK;};
	my $e = psql_error($node, $sql);
	like($e->{stdout}, qr/chain ok 64/, 'a consistent rewrite passes the chain check');
	like($e->{stdout}, qr/full ok 64/, 'a consistent rewrite passes the full check');
	is($e->{sqlstate}, 'XX001', 'a consistent rewrite fails against the old digest');
	like($e->{detail} // '', qr/differs from the digest/, 'the report says the history changed');

	# The consistency proof from the old digest cannot be had, and one
	# built before the rewrite does not lead to the rewritten digest.
	my $before = $node->safe_psql('postgres',
		q{BEGIN READ ONLY; SELECT digest FROM ledger_digest(); COMMIT;});
	my $proof = $node->safe_psql('postgres',
		qq{SELECT ledger_consistency_proof('$old_digest', '$before')});
	$sql =~ s/SELECT \* FROM ledger_verify\('\Q$old_digest\E'::jsonb\);/
		SELECT ledger_verify_proof('$proof', (SELECT digest FROM ledger_digest())) AS old_proof_checks;
		SELECT ledger_consistency_proof('$old_digest', (SELECT digest FROM ledger_digest()));/
	  or die 'no digest check in the rewrite';
	$e = psql_error($node, $sql);
	like($e->{stdout}, qr/^f$/m, 'a consistent rewrite fails a consistency proof taken before it');
	is($e->{sqlstate}, 'XX001', 'no consistency proof leads from the old digest to a rewritten history');
	like($e->{stderr}, qr/the digest does not match this ledger/, 'the refusal says the digest is not of this ledger');
}

# The digest check itself.
is($node->safe_psql('postgres', "SELECT blocks > 0 FROM ledger_verify('$old_digest'::jsonb)"),
	't', 'the history up to an earlier digest is unchanged');
is(psql_error($node, q{SELECT * FROM ledger_verify('{"version": 1, "block": 999, "hash": "00", "root": "00"}'::jsonb)})->{sqlstate},
	'22023', 'a malformed digest is refused as an invalid parameter');
like(psql_error($node,
		q{SELECT * FROM ledger_verify('{"version": 1, "block": 999, "hash": "0000000000000000000000000000000000000000000000000000000000000000", "root": "0000000000000000000000000000000000000000000000000000000000000000"}'::jsonb)})->{detail},
	qr/no block with the digest's number/, 'a digest beyond the chain is reported');

# Level chain needs no key: it runs with the keyring gone.
my $keyring = keyring_path($node);
rename $keyring, "$keyring.away" or die "rename: $!";
$node->restart;
is($node->safe_psql('postgres', q{SELECT revisions FROM ledger_verify('chain')}),
	'65', 'level chain runs without the keyring');
is(psql_error($node, q{SELECT * FROM ledger_verify('full')})->{sqlstate},
	'LD001', 'level full needs the key');
rename "$keyring.away", $keyring or die "rename: $!";
$node->restart;
is($node->safe_psql('postgres', q{SELECT revisions FROM ledger_verify('full')}),
	'65', 'level full runs again with the keyring back');

# More revisions than ledger_verify() keeps in memory under the smallest
# maintenance_work_mem (1 MB: 16384 records): they spill to sorted runs on
# disk that are merged.  Two transactions commit in the opposite order to
# the one they wrote in, so the journal's physical order is not the
# chain's.  The result must not depend on the memory, and a change is
# still found at its place.
{
	my ($sin, $sout, $serr) = ('', '', '');
	my $first = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres') ],
		'<', \$sin, '>', \$sout, '2>', \$serr);
	$node->safe_psql('postgres', 'CREATE TABLE bulk (id int, v text) USING ledger');
	$sin .= "BEGIN; INSERT INTO bulk SELECT g, 'first' FROM generate_series(1, 12000) g; SELECT 'written';\n";
	$first->pump until $sout =~ /written/;
	$node->safe_psql('postgres', q{INSERT INTO bulk SELECT g, 'second' FROM generate_series(12001, 24000) g});
	$sin .= "COMMIT;\n\\q\n";
	$first->finish;
	$node->safe_psql('postgres', 'SELECT ledger_digest()');
	my $summary = q{SELECT revisions || ' ' || transactions || ' ' || blocks || ' ' || current_rows FROM ledger_verify('full')};
	my $in_memory = $node->safe_psql('postgres', $summary);
	like($in_memory, qr/^240\d\d /, 'the bulk revisions verify in memory');
	my $temp_files = q{SELECT temp_files FROM pg_stat_database WHERE datname = current_database()};
	my $before = $node->safe_psql('postgres', $temp_files);
	$node->safe_psql('postgres', "SET maintenance_work_mem = '1MB'; SELECT ledger_verify('chain')");
	cmp_ok($node->safe_psql('postgres', $temp_files), '>', $before,
		'level chain spills its records to temporary files under 1 MB');
	is($node->safe_psql('postgres', "SET maintenance_work_mem = '1MB'; $summary"),
		$in_memory, 'spilled to disk, verification counts the same');
	my $bulk = $node->safe_psql('postgres', q{SELECT table_id FROM ledger.tables WHERE relid = 'bulk'::regclass});
	my $change = "UPDATE ledger.journal SET revision_hash = sha256(revision_hash) WHERE table_id = $bulk AND doc_id = "
	  . "(SELECT min(doc_id) FROM ledger.journal WHERE table_id = $bulk)";
	my $e = tampered("SET LOCAL maintenance_work_mem = '1MB'; $change", "ledger_verify('chain')");
	is($e->{sqlstate}, 'XX001', 'spilled to disk, a changed revision hash is found');
	like($e->{message}, qr/at table public.bulk \(table id $bulk\) document \d+ version 0$/,
		'spilled to disk, the report names the revision');

	# Two workers and the leader share the journal's blocks; the workers'
	# sorted runs stay in the leader's memory, or, under 1 MB, most go to
	# temporary files.
	my $chain = q{SELECT revisions || ' ' || transactions || ' ' || blocks FROM ledger_verify('chain')};
	my $serial = $node->safe_psql('postgres', $chain);
	my $parallel = "SET min_parallel_table_scan_size = 0; SET max_parallel_maintenance_workers = 2;"
	  . "SET client_min_messages = debug1;";
	my ($ret, $out, $err) = $node->psql('postgres', "$parallel $chain");
	is($out, $serial, 'in parallel, the bulk revisions verify the same');
	like($err, qr/the journal is read by the leader and 2 of 2 planned parallel workers/,
		'two parallel workers and the leader read the journal');
	# Each bulk transaction's tree (12,000 leaves) is cut into subtrees
	# that the workers hash with the leader.
	like($err, qr/a tree of 12000 revisions is hashed in 8 subtrees, [1-8] of them by parallel workers/,
		'the workers hash subtrees of a large transaction');
	my $root = tampered(($parallel =~ s/SET /SET LOCAL /gr)
		  . "UPDATE ledger.transactions SET merkle_root = sha256(merkle_root) WHERE revision_count = 12000",
		"ledger_verify('chain')", 'transactions');
	like($root->{message}, qr/at transaction \d+$/, 'in parallel, a changed root of a large transaction is found');
	like($root->{detail}, qr/Merkle root of its revisions does not match/,
		'in parallel, the report says the root does not match');
	like($root->{stderr}, qr/of them by parallel workers/, 'in parallel, with subtrees hashed by the workers');
	$before = $node->safe_psql('postgres', $temp_files);
	($ret, $out, $err) = $node->psql('postgres', "SET maintenance_work_mem = '1MB'; $parallel $chain");
	is($out, $serial, 'in parallel under 1 MB, the bulk revisions verify the same');
	cmp_ok($node->safe_psql('postgres', $temp_files), '>', $before,
		'in parallel under 1 MB, runs go to temporary files');
	my $p = tampered("SET LOCAL maintenance_work_mem = '1MB'; " . ($parallel =~ s/SET /SET LOCAL /gr) . $change,
		"ledger_verify('chain')");
	is(join('|', @$p{qw(sqlstate message detail)}), join('|', @$e{qw(sqlstate message detail)}),
		'in parallel under 1 MB, the same revision is reported');
	like($p->{stderr}, qr/read by the leader and 2 of 2 planned parallel workers/, 'in parallel under 1 MB, with two workers');

	# Cancelled in parallel: the workers go with the statement, and the
	# next check runs as before.
	my $cancel = psql_error($node, "SET statement_timeout = '1ms'; $parallel $chain");
	is($cancel->{sqlstate}, '57014', 'a parallel check can be cancelled');
	ok($node->poll_query_until('postgres',
			q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'parallel worker'}),
		'no parallel worker outlives a cancelled check');
	is($node->safe_psql('postgres', "$parallel $chain"), $serial, 'after a cancelled check, the next counts the same');

	# With 60,000 more revisions under 1 MB, the workers' runs that go to
	# files outnumber what one merge takes (16 at 1 MB), so they are merged
	# a generation at a time; the counts and the report stay the same.
	$node->safe_psql('postgres', q{INSERT INTO bulk SELECT g, 'third' FROM generate_series(24001, 84000) g});
	$node->safe_psql('postgres', 'SELECT ledger_digest()');
	$serial = $node->safe_psql('postgres', $chain);
	like($serial, qr/^840\d\d /, 'the larger journal verifies in memory');
	($ret, $out, $err) = $node->psql('postgres', "SET maintenance_work_mem = '1MB'; $parallel $chain");
	is($out, $serial, 'in parallel under 1 MB, the larger journal verifies the same');
	like($err, qr/sorted runs of generation 0 merged into one of \d+ records/,
		'in parallel under 1 MB, runs in files are merged before the walk');
	$p = tampered("SET LOCAL maintenance_work_mem = '1MB'; " . ($parallel =~ s/SET /SET LOCAL /gr) . $change,
		"ledger_verify('chain')");
	is(join('|', @$p{qw(sqlstate message detail)}), join('|', @$e{qw(sqlstate message detail)}),
		'merged a generation at a time, the same revision is reported');
	like($p->{stderr}, qr/sorted runs of generation 0 merged/, 'the report came through merged runs');

	# The third transaction (60,000 revisions) stores its subtrees, the
	# roots of its runs of 8,192 leaves: a proof hashes one run of them.
	# The proofs of the revisions that start and end runs, and of its last
	# revision, must be the ones built from the whole tree (its subtrees
	# removed, in a transaction that rolls back), and must check.
	my $third = $node->safe_psql('postgres', q{SELECT seq FROM ledger.transactions WHERE revision_count = 60000});
	is($node->safe_psql('postgres', "SELECT length(subtrees) FROM ledger.transactions WHERE seq = $third"),
		8 * 52, 'a transaction of 60,000 revisions stores 8 subtrees');
	is($node->safe_psql('postgres', q{SELECT count(*) FROM ledger.transactions WHERE subtrees IS NOT NULL}),
		'1', 'transactions of 12,000 revisions store none');
	my $digest = $node->safe_psql('postgres', q{SELECT digest FROM ledger_digest()});
	my $picks = "SELECT doc_id, version FROM (SELECT j.doc_id, j.version, "
	  . "row_number() OVER (ORDER BY j.table_id, j.doc_id, j.version) - 1 AS pos "
	  . "FROM ledger.journal j JOIN ledger.transactions t USING (xid) WHERE t.seq = $third) r "
	  . "WHERE pos % 8192 IN (0, 1, 8191) OR pos = 59999";
	my $proofs = "(SELECT count(*) || ' ' || bool_and(ledger_verify_proof(p, '$digest')) || E'\n' "
	  . "|| string_agg(p::text, E'\n' ORDER BY doc_id) FROM (SELECT doc_id, "
	  . "ledger_proof('bulk', doc_id, version, '$digest') AS p FROM ($picks) s) x) y";
	my $fast = $node->safe_psql('postgres', "SELECT * FROM $proofs");
	like($fast, qr/^24 true\n/, 'proofs through the stored subtrees check');
	my $whole = tampered("UPDATE ledger.transactions SET subtrees = NULL WHERE seq = $third", $proofs, 'transactions');
	is($whole->{stdout}, $fast, 'they are the proofs built from the whole tree');

	# ledger_verify() checks the subtrees against the revisions and the
	# entry's root, alone and in parallel; a proof refuses a changed one.
	my $byte = sub { my ($at) = @_; "set_byte(subtrees, $at, get_byte(subtrees, $at) # 1)" };
	for my $mode ('', $in_parallel)
	{
		my $how = $mode ? 'in parallel' : 'alone';
		for my $case (
			[ 'subtrees removed', 'NULL', qr/Its stored subtrees are missing/ ],
			[ 'a subtree root changed', $byte->(52 * 3 + 20), qr/roots of its stored subtrees do not make the Merkle root/ ],
			[ 'a subtree moved', $byte->(52 * 2 + 15), qr/stored subtree 2 does not start at the revision that starts/ ],
			[ 'a subtree cut off', 'substring(subtrees FROM 1 FOR 52 * 7)', qr/not of the length its revisions need/ ])
		{
			my ($name, $value, $detail) = @$case;
			$settings = $mode;
			my $v = tampered("UPDATE ledger.transactions SET subtrees = $value WHERE seq = $third",
				"ledger_verify('chain')", 'transactions');
			$settings = '';
			is($v->{sqlstate}, 'XX001', "$name, $how: reported as data corruption");
			like($v->{message}, qr/at transaction $third$/, "$name, $how: the report names the transaction");
			like($v->{detail}, $detail, "$name, $how: the report says what is wrong");
		}
	}
	my $in_run3 = $node->safe_psql('postgres', "SELECT doc_id FROM ($picks) s ORDER BY doc_id OFFSET 10 LIMIT 1");
	my $refused = tampered("UPDATE ledger.transactions SET subtrees = " . $byte->(52 * 3 + 20) . " WHERE seq = $third",
		"ledger_proof('bulk', $in_run3, 0, '$digest')", 'transactions');
	is($refused->{sqlstate}, 'XX001', 'a proof through a changed subtree is refused');
	like($refused->{message}, qr/the stored subtrees of transaction $third do not match its revisions/,
		'the refusal names the transaction');
	$node->safe_psql('postgres', q{SELECT ledger_set_deletion_protection('bulk', false); DROP TABLE bulk});
}

# Only a superuser, or a role granted EXECUTE, may verify.
$node->safe_psql('postgres', 'CREATE ROLE auditor LOGIN');
is(psql_error($node, q{SELECT * FROM ledger_verify('chain')}, extra_params => ['-U', 'auditor'])->{sqlstate},
	'42501', 'an ordinary role may not verify');

$node->stop;
done_testing();
