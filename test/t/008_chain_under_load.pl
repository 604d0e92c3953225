# The chain under concurrent writers: 8 pgbench clients write to three
# ledger tables with savepoints and transactions that roll back, while the
# worker seals every 200 ms.  Afterwards every committed revision is sealed
# exactly once, no rolled-back one appears, and ledger_verify('full')
# passes.  Then the same load is cut by an immediate shutdown: after the
# restart nothing committed is lost and the ledger still verifies.
#
# A heap table, "witness", gets one row in every transaction that commits
# ledger writes: it is the independent count of what committed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ledger_node('load', extra_conf => "ledger.seal_interval = '200ms'\nmax_connections = 30\n");

$node->safe_psql('postgres', q{
	CREATE TABLE t1 (id bigserial PRIMARY KEY, v int, note text) USING ledger;
	CREATE TABLE t2 (id int PRIMARY KEY, v int) USING ledger;
	CREATE TABLE t3 (id bigserial PRIMARY KEY, v int) USING ledger;
	INSERT INTO t2 SELECT g, 0 FROM generate_series(1, 100) g;
	CREATE TABLE witness (id bigserial PRIMARY KEY, v int);
});

# Committing work: each transaction writes all three tables; a savepoint
# that rolls back writes negative values, which must never appear.
my $commit_script = $node->basedir . '/commit.sql';
PostgreSQL::Test::Utils::append_to_file($commit_script, q{
\set v random(1, 1000000)
\set hot random(1, 100)
BEGIN;
INSERT INTO t1 (v, note) VALUES (:v, repeat('x', :v % 300));
SAVEPOINT s1;
INSERT INTO t1 (v) VALUES (-:v);
UPDATE t2 SET v = -1 WHERE id = :hot;
ROLLBACK TO s1;
UPDATE t2 SET v = v + 1 WHERE id = :hot;
SAVEPOINT s2;
INSERT INTO t3 (v) VALUES (:v);
RELEASE s2;
INSERT INTO witness (v) VALUES (:v);
COMMIT;
});

# Work that rolls back as a whole.
my $abort_script = $node->basedir . '/abort.sql';
PostgreSQL::Test::Utils::append_to_file($abort_script, q{
\set v random(1, 1000000)
BEGIN;
INSERT INTO t1 (v) VALUES (-:v);
INSERT INTO t3 (v) VALUES (-:v);
DELETE FROM t2 WHERE id = 1;
ROLLBACK;
});

sub pgbench_cmd
{
	my ($seconds) = @_;
	return [
		'pgbench', '-n', '-c', '8', '-j', '2', '-T', $seconds,
		'-f', "$commit_script\@9", '-f', "$abort_script\@1",
		'-h', $node->host, '-p', $node->port, 'postgres'
	];
}

# Everything committed is in the chain once, and nothing else is.
sub check_chain
{
	my ($label) = @_;
	$node->safe_psql('postgres', 'SELECT ledger_digest()');
	my $q = sub { $node->safe_psql('postgres', shift) };
	my $committed = $q->('SELECT count(*) FROM witness');
	ok($committed > 0, "$label: transactions committed ($committed)");
	is($q->(q{SELECT count(*) FROM ledger_history(NULL::t1) h WHERE h.operation = 'INSERT'}),
		$committed, "$label: one t1 revision per committed transaction");
	is($q->(q{SELECT count(*) FROM ledger_history(NULL::t3)}),
		$committed, "$label: one t3 revision per committed transaction");
	is($q->(q{SELECT count(*) FROM ledger_history(NULL::t1) h WHERE (h.data).v < 0}),
		'0', "$label: no revision of a rolled-back savepoint or transaction");
	is($q->(q{SELECT count(*) FROM ledger_history(NULL::t2) h WHERE (h.data).v < 0 OR h.operation = 'DELETE'}),
		'0', "$label: no rolled-back update or delete of the hot rows");
	is($q->(q{SELECT sum(v) FROM t2}), $committed,
		"$label: the hot rows hold one increment per commit");
	is($q->(q{SELECT count(*) FROM ledger.transactions t
			   WHERE NOT EXISTS (SELECT FROM ledger.blocks b
								 WHERE b.block_number > 0 AND t.seq BETWEEN b.first_seq AND b.last_seq)}),
		'0', "$label: every transaction is sealed");
	is($q->(q{SELECT count(*) FROM ledger.transactions t
			   JOIN ledger.blocks b ON b.block_number > 0 AND t.seq BETWEEN b.first_seq AND b.last_seq
			   GROUP BY t.seq HAVING count(*) > 1}),
		'', "$label: no transaction is sealed twice");
	is($q->(q{SELECT sum(entry_count) FROM ledger.blocks}),
		$q->(q{SELECT count(*) FROM ledger.transactions}),
		"$label: the blocks count every entry once");
	is($q->(q{SELECT revisions = (SELECT count(*) FROM ledger.journal) AND unsealed_transactions = 0
			   FROM ledger_verify('full')}),
		't', "$label: ledger_verify('full') passes");
}

# 1. 30 seconds of load; the worker seals while it runs.
my ($out, $err) = ('', '');
IPC::Run::run(pgbench_cmd(30), '>', \$out, '2>', \$err);
like($out, qr/number of failed transactions: 0|processed: \d+/, 'pgbench ran');
ok($node->safe_psql('postgres', 'SELECT count(*) FROM ledger.blocks') > 10,
	'the worker sealed blocks while the load ran');
check_chain('after load');

# 2. The same load, cut by an immediate shutdown.
my $h = IPC::Run::start(pgbench_cmd(20), '>', \$out, '2>', \$err);
sleep 6;
$node->stop('immediate');
$h->finish;
$node->start;
check_chain('after a crash');

# The chain goes on from where it was: new work is sealed after the old.
$node->safe_psql('postgres', q{INSERT INTO t3 (v) VALUES (7); INSERT INTO witness (v) VALUES (7)});
$node->safe_psql('postgres', 'SELECT ledger_digest()');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM (SELECT seq FROM ledger.transactions GROUP BY seq HAVING count(*) > 1) d}),
	'0', 'sequence numbers stay unique across the restart');
is($node->safe_psql('postgres', q{SELECT unsealed_transactions FROM ledger_verify('chain')}),
	'0', 'the chain continues after the restart');

$node->stop;
done_testing();
