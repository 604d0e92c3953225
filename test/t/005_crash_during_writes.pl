
# A crash in the middle of a write load loses no committed ledger row and
# leaves the table and its journal in agreement.
#
# Three psql clients each run a long script of small transactions against
# their own rows of one ledger table: inserts, updates, multi-statement
# transactions with a row too big to stay inline, ON CONFLICT DO UPDATE
# (conflicting and not), and deletes.  Each client echoes "acked K" after
# COMMIT K returns.  Once every client is well under way the server is shut
# down with mode immediate; after crash recovery:
#
#  - each client's rows are exactly the state after its last acknowledged
#    transaction K, or after K+1 (committed, but the crash took the reply);
#  - every row reads back, by sequential and by index scan alike;
#  - the rows are exactly the newest non-deleted revisions of the journal,
#    document by document and version by version, and their counts match;
#  - new writes work.

use strict;
use warnings;

use Digest::MD5 qw(md5_hex);
use FindBin;
use IPC::Run;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = ledger_node('crash');
$node->safe_psql(
	'postgres', q{
	CREATE TABLE acct (id bigint PRIMARY KEY, client int, seq int, note text)
	  USING ledger;
});

my @clients = (1, 2, 3);
my $ntx     = 30000;    # far more than runs before the crash
my $crash_after = 400;  # transactions per client before the crash

sub id_of   { my ($c, $k, $j) = @_; return $c * 10_000_000 + $k * 10 + $j; }
sub note_of { my ($c, $k) = @_; return "c$c-k$k-" . ('n' x ($k % 50)); }
sub big_of  { my ($c, $k) = @_; return "big-c$c-k$k-" . ('x' x 3000); }

# Transaction k of client c: its SQL, and what it does to the client's rows
# (a model: id => "seq|md5(note)").
sub txn
{
	my ($c, $k) = @_;
	my $r = $k % 6;
	my (@sql, @ops);
	my $ins = sub {
		my ($id, $note) = @_;
		push @sql, "INSERT INTO acct VALUES ($id, $c, $k, '$note');";
		push @ops, [ 'set', $id, $k, $note ];
	};
	if ($r == 1)
	{
		$ins->(id_of($c, $k, 0), note_of($c, $k));
	}
	elsif ($r == 2)
	{
		my $id = id_of($c, $k - 1, 0);
		my $note = note_of($c, $k);
		push @sql, "UPDATE acct SET seq = $k, note = '$note' WHERE id = $id;";
		push @ops, [ 'set', $id, $k, $note ];
	}
	elsif ($r == 3)
	{
		$ins->(id_of($c, $k, 0), note_of($c, $k));
		$ins->(id_of($c, $k, 1), big_of($c, $k));
		my $id = id_of($c, $k - 2, 0);
		push @sql, "UPDATE acct SET seq = $k WHERE id = $id;";
		push @ops, [ 'seq', $id, $k ];
	}
	elsif ($r == 4 || $r == 5)
	{
		# r == 4 conflicts with the row inserted by k - 1; r == 5 does not
		my $id = $r == 4 ? id_of($c, $k - 1, 0) : id_of($c, $k, 0);
		my $note = note_of($c, $k);
		push @sql,
		  "INSERT INTO acct VALUES ($id, $c, $k, '$note') "
		  . "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, note = EXCLUDED.note;";
		push @ops, [ 'set', $id, $k, $note ];
	}
	else
	{
		# the big row of transaction k - 3
		my $id = id_of($c, $k - 3, 1);
		push @sql, "DELETE FROM acct WHERE id = $id;";
		push @ops, [ 'del', $id ];
	}
	return (join("\n", 'BEGIN;', @sql, 'COMMIT;', "\\echo acked $k"), \@ops);
}

sub apply_ops
{
	my ($state, $ops) = @_;
	foreach my $op (@$ops)
	{
		my ($what, $id, @v) = @$op;
		if ($what eq 'set')
		{
			$state->{$id} = { seq => $v[0], note => md5_hex($v[1]) };
		}
		elsif ($what eq 'seq')
		{
			die "model: no row $id" unless $state->{$id};
			$state->{$id}{seq} = $v[0];
		}
		else
		{
			delete $state->{$id};
		}
	}
	return;
}

sub state_text
{
	my ($state) = @_;
	return join("\n",
		map { "$_|$state->{$_}{seq}|$state->{$_}{note}" }
		sort { $a <=> $b } keys %$state);
}

# Write each client's script and start it.
my $tmp = PostgreSQL::Test::Utils::tempdir;
my (%h, %outfile, %errfile);
my $timeout = IPC::Run::timeout(300);
foreach my $c (@clients)
{
	my $script = "$tmp/client$c.sql";
	open(my $fh, '>', $script) or die "$script: $!";
	print $fh "SET synchronous_commit = on;\n";
	foreach my $k (1 .. $ntx)
	{
		my ($sql) = txn($c, $k);
		print $fh "$sql\n";
	}
	close $fh;
	$outfile{$c} = "$tmp/client$c.out";
	$errfile{$c} = "$tmp/client$c.err";
	$h{$c} = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $script
		],
		'>', $outfile{$c}, '2>', $errfile{$c}, $timeout);
}

# Crash once every client is well under way, or as soon as one of them
# reports an error (psql writes errors to stderr unbuffered).
my $progress_sql = qq{
	SELECT count(*) FROM (
	  SELECT client FROM acct GROUP BY client HAVING max(seq) >= $crash_after) s};
my %client_error;
for (my $i = 0; $i < 1200; $i++)
{
	%client_error = map { $_ => slurp_file($errfile{$_}) }
	  grep { -s $errfile{$_} } @clients;
	last if %client_error;
	my ($ret, $n) = $node->psql('postgres', $progress_sql);
	last if $ret == 0 && $n == scalar(@clients);
	usleep(100_000);
}
foreach my $c (@clients)
{
	is($client_error{$c} // '', '', "client $c: no error before the crash");
}
$node->stop('immediate');

my %acked;
foreach my $c (@clients)
{
	$h{$c}->finish;
	isnt($h{$c}->result(0), 0, "client $c: psql stopped with an error (the server went away)");
	my @acks = slurp_file($outfile{$c}) =~ /^acked (\d+)$/mg;
	$acked{$c} = @acks ? $acks[-1] : 0;
	cmp_ok($acked{$c}, '>=', $crash_after - 50, "client $c: acknowledged $acked{$c} transactions");
	cmp_ok($acked{$c}, '<', $ntx, "client $c: was still running at the crash");
	is_deeply(\@acks, [ 1 .. $acked{$c} ], "client $c: acknowledgements are in order")
	  if @acks;
}

$node->start;
ok($node->log_contains('database system was interrupted|was not properly shut down'),
	'crash recovery ran');

# Each client's rows: the state after K or after K + 1.
my $total = 0;
foreach my $c (@clients)
{
	my %state;
	apply_ops(\%state, (txn($c, $_))[1]) for 1 .. $acked{$c};
	my $after_k = state_text(\%state);
	my $nk = keys %state;
	apply_ops(\%state, (txn($c, $acked{$c} + 1))[1]);
	my $after_k1 = state_text(\%state);
	my $nk1 = keys %state;

	my $rows_sql = "SELECT id, seq, md5(note) FROM acct WHERE client = $c ORDER BY id";
	my $seq_rows = psql_out($node,
		"SET enable_indexscan = off; SET enable_bitmapscan = off; $rows_sql");
	my $idx_rows = psql_out($node,
		"SET enable_seqscan = off; SET enable_bitmapscan = off; $rows_sql");
	my $which =
	    $seq_rows eq $after_k  ? 'K'
	  : $seq_rows eq $after_k1 ? 'K+1'
	  :                          'neither';
	isnt($which, 'neither',
		"client $c: rows are the state after its last acknowledged transaction ($which)");
	is($idx_rows, $seq_rows, "client $c: an index scan reads the same rows");
	$total += $which eq 'K+1' ? $nk1 : $nk;
	if ($which eq 'neither')
	{
		diag "client $c acked $acked{$c}; rows:\n"
		  . substr($seq_rows, 0, 2000)
		  . "\n--- expected:\n"
		  . substr($after_k, 0, 2000);
	}
}

is(psql_out($node, 'SELECT count(*) FROM acct'),
	$total, 'the table holds exactly the committed rows');

my $tid = ledger_table_id($node, 'acct');
my $current = journal_current_docs($node, 'acct');
is(table_docs($node, 'acct'), $current,
	'every row is the newest non-deleted revision of its document in the journal');
is( $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FROM (
		  SELECT DISTINCT ON (doc_id) op FROM ledger.journal
		  WHERE table_id = $tid ORDER BY doc_id, version DESC) j
		WHERE op <> 'D'}
	),
	$total,
	'the number of current journal revisions matches the number of rows');
is( $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FROM (
		  SELECT doc_id FROM ledger.journal WHERE table_id = $tid
		  GROUP BY doc_id HAVING max(version) + 1 <> count(*)) gaps}
	),
	'0',
	'no document has a gap or a duplicate in its versions');
is( $node->safe_psql(
		'postgres', qq{SELECT count(*) FROM ledger.journal
		WHERE table_id = $tid AND op <> 'D' AND payload IS NULL}
	),
	'0',
	'every non-tombstone revision holds its sealed payload');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM acct WHERE note LIKE 'big-%' AND length(note) > 3000}),
	$node->safe_psql('postgres', q{SELECT count(*) FROM acct WHERE note LIKE 'big-%'}),
	'big rows (payload in the journal) read back whole');

# New writes after recovery.
foreach my $c (@clients)
{
	my $id = id_of($c, $ntx + 1, 0);
	$node->safe_psql('postgres',
		"INSERT INTO acct VALUES ($id, $c, 0, 'after'); UPDATE acct SET seq = 1 WHERE id = $id;");
	is($node->safe_psql('postgres', "SELECT seq, note FROM acct WHERE id = $id"),
		'1|after', "client $c: writes work after the crash");
}
is(table_docs($node, 'acct'), journal_current_docs($node, 'acct'),
	'rows still match the journal after new writes');

$node->stop;
done_testing();
