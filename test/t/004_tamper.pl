
# Tampering with a ledger table's file is detected, never read past.
#
# With the server stopped, one byte of a row's sealed payload is flipped in
# the relation file (found through pg_relation_filepath, the row's ctid and
# the page's line pointer array); on other rows, a byte of the payload
# header and of the GCM tag.  Reading such a row fails with SQLSTATE XX001
# naming the table, returns no data and crashes nothing; rows on other
# pages read back unchanged.  Separately, a plaintext indexed value (an int4
# primary key) is changed in the attribute area of a row: reading it fails
# with a data-corruption error naming that table.
#
# The node has no data checksums (initdb's default, checked below), so a
# page checksum failure cannot mask what the ledger itself detects.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ledger_node('tamper');
is($node->safe_psql('postgres', 'SHOW data_checksums'),
	'off', 'data checksums are off, so only the ledger can notice tampering');

$node->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, note text, n int) USING ledger;
	INSERT INTO t SELECT g, 'note ' || g || ' ' || repeat(md5(g::text), 4), g * 10
	  FROM generate_series(1, 400) g;
	CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
	INSERT INTO accounts SELECT g, 'owner-' || g, g * 100 FROM generate_series(1, 20) g;
	-- rows 1 and 2 are too big to keep their ciphertext inline: the table
	-- keeps the payload header, ledger.journal (TOAST, uncompressed) the rest
	CREATE TABLE docs (id int PRIMARY KEY, body text) USING ledger;
	INSERT INTO docs VALUES (1, repeat('a', 5000)), (2, repeat('b', 5000)), (3, 'small');
});

# Block and item number of a row.
sub ctid_of
{
	my ($table, $id) = @_;
	my $ctid = $node->safe_psql('postgres', "SELECT ctid FROM $table WHERE id = $id");
	$ctid =~ /^\((\d+),(\d+)\)$/ or die "bad ctid '$ctid'";
	return ($1, $2);
}

my $nblocks = $node->safe_psql('postgres', q{SELECT pg_relation_size('t') / 8192});
cmp_ok($nblocks, '>=', 8, "t fills several pages ($nblocks)");

# Four victims on four different pages, each damaged in another way; the
# "moved" victim gets the sealed payload of the next row (same length).
my %victim = (
	ciphertext => { id => 50 },
	moved      => { id => 120 },
	header     => { id => 200 },
	tag        => { id => 350 });
my %victim_block;
foreach my $v (values %victim)
{
	@$v{qw(blk off)} = ctid_of('t', $v->{id});
	$victim_block{ $v->{blk} } = 1;
}
is(scalar(keys %victim_block), 4, 'the four victims lie on four pages');
my @donor = ctid_of('t', 121);

# A neighbour of each victim on the victim's page.
foreach my $v (values %victim)
{
	$v->{neighbour_off} = $v->{off} == 1 ? 2 : 1;
	$v->{neighbour} = $node->safe_psql('postgres',
		"SELECT id, note, n FROM t WHERE ctid = '($v->{blk},$v->{neighbour_off})'");
	like($v->{neighbour}, qr/^\d+\|note /, "victim $v->{id} has a neighbour on its page");
}

# What rows on the untouched pages hold now.
my $block_of = q{(ctid::text::point)[0]::int};
my $others_sql =
  "SELECT id, note, n FROM t WHERE $block_of NOT IN ("
  . join(',', sort keys %victim_block)
  . ') ORDER BY id';
my $others = $node->safe_psql('postgres', $others_sql);
my $nothers = () = $others =~ /\n/g;
cmp_ok($nothers, '>=', 250, 'most rows lie on untouched pages');

my @acc = ctid_of('accounts', 7);

# Rows whose sealed payload lives in the journal.
# (If they cannot be read to begin with, their part of the test is skipped,
# and the failure above says why.)
my $docs_ok = is(psql_out($node, 'SELECT id, length(body) FROM docs ORDER BY id'),
	"1|5000\n2|5000\n3|5", 'docs rows read back before tampering');
my (@docs2, $docs_file, $journal_toast, $doc1_head);
if ($docs_ok)
{
	@docs2 = ctid_of('docs', 2);
	$docs_file = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('docs')});
	$journal_toast = $node->data_dir . '/' . $node->safe_psql('postgres',
		q{SELECT pg_relation_filepath(reltoastrelid) FROM pg_class WHERE oid = 'ledger.journal'::regclass});
	$doc1_head = pack('H*', $node->safe_psql('postgres', q{
		SELECT encode(substr(payload, 1, 48), 'hex') FROM ledger.journal
		WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'docs'::regclass)
		  AND doc_id = (SELECT ledger_document_id('docs', ctid) FROM docs WHERE id = 1)
		  AND version = 0}));
}
my $t_file   = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('t')});
my $acc_file = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('accounts')});

$node->stop;

# Payload: header (32 bytes + a 1-byte present-column bitmap for 3 columns),
# then ciphertext, then the 16-byte tag; a 4-byte length ends the tuple.
my $hdrlen = 33;
foreach my $what (sort keys %victim)
{
	my $v  = $victim{$what};
	my $it = page_item($t_file, $v->{blk}, $v->{off});
	is($it->{lp_flags}, 1, "$what victim: line pointer is LP_NORMAL");
	my $pay_start = $it->{start} + $it->{len} - 4 - $it->{payload_len};
	cmp_ok($pay_start, '>', $it->{start} + $it->{t_hoff},
		"$what victim: payload lies after the attributes");
	if ($what eq 'moved')
	{
		my $d = page_item($t_file, @donor);
		is($d->{len}, $it->{len}, 'moved victim: donor row has the same length');
		is($d->{payload_len}, $it->{payload_len}, 'moved victim: ... and payload length');
		my $d_start = $d->{start} + $d->{len} - 4 - $d->{payload_len};
		my $payload = read_bytes($t_file, $d_start, $d->{payload_len});
		isnt(read_bytes($t_file, $pay_start, $it->{payload_len}),
			$payload, 'moved victim: the payloads differ');
		write_bytes($t_file, $pay_start, $payload);
		next;
	}
	my $pos =
	    $what eq 'ciphertext' ? $it->{start} + $it->{len} - 4 - 16 - 9
	  : $what eq 'tag'        ? $it->{start} + $it->{len} - 4 - 5
	  :                         $pay_start + 24;    # inside the nonce
	cmp_ok($pos, '>=', $pay_start + ($what eq 'header' ? 0 : $hdrlen),
		"$what victim: byte to flip is in the intended region");
	flip_byte($t_file, $pos, 0x01);
}

# The plaintext primary key of accounts row 7: the first attribute, an
# int4 at t_hoff.  7 becomes 7 + 256 = 263.
my $it = page_item($acc_file, @acc);
my $key_pos = $it->{start} + $it->{t_hoff};
is(unpack('l<', read_bytes($acc_file, $key_pos, 4)),
	7, 'found the plaintext key of accounts row 7 on disk');
flip_byte($acc_file, $key_pos + 1, 0x01);
is(unpack('l<', read_bytes($acc_file, $key_pos, 4)), 263, 'changed it to 263');

SKIP:
{
	skip 'docs rows are unreadable even before tampering', 5 unless $docs_ok;

	# Row 1: a byte of its ciphertext in the journal's TOAST (stored
	# uncompressed, so the revision's first bytes are found as they are).
	is(length($doc1_head), 48, "found the start of row 1's sealed revision in the journal");
	my $toast = slurp_file($journal_toast);
	my $at = index($toast, $doc1_head);
	cmp_ok($at, '>=', 0, "found row 1's sealed revision in the journal's TOAST file");
	is(index($toast, $doc1_head, $at + 1), -1, '... exactly once');
	flip_byte($journal_toast, $at + 300, 0x01);

	# Row 2: the nonce in the payload header that the table keeps.
	my $d = page_item($docs_file, @docs2);
	is($d->{payload_len}, $hdrlen, 'docs row 2 keeps only the payload header');
	flip_byte($docs_file, $d->{start} + $d->{len} - 4 - $hdrlen + 24, 0x01);
	ok(1, 'tampered with docs rows 1 and 2');
}

$node->start;
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

sub corrupt_ok
{
	my ($sql, $table, $what, $detail_re) = @_;
	my $e = psql_error($node, $sql);
	is($e->{sqlstate}, 'XX001', "$what: SQLSTATE XX001");
	like($e->{message}, qr/^ledger row in table "\Q$table\E" is corrupted$/,
		"$what: the message names the table");
	like($e->{detail}, $detail_re, "$what: the detail says where") if $detail_re;
	is($e->{stdout}, '', "$what: no data returned");
	return $e;
}

my $noidx = 'SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_tidscan = off;';
foreach my $what (sort keys %victim)
{
	my $v   = $victim{$what};
	my $loc = qr/\Q($v->{blk},$v->{off})\E/;
	corrupt_ok("SELECT note FROM t WHERE id = $v->{id}", 't', "$what: index scan", $loc);
	corrupt_ok("$noidx SELECT note FROM t WHERE id = $v->{id}", 't', "$what: seq scan");
	corrupt_ok("SELECT note FROM t WHERE ctid = '($v->{blk},$v->{off})'", 't', "$what: TID scan", $loc);
}
foreach my $v (values %victim)
{
	is( $node->safe_psql('postgres',
			"SELECT id, note, n FROM t WHERE ctid = '($v->{blk},$v->{neighbour_off})'"),
		$v->{neighbour},
		"the neighbour of victim $v->{id} on its page still reads back");
}
like($node->safe_psql('postgres', "SELECT id, n FROM t WHERE ctid = '($donor[0],$donor[1])'"),
	qr/^121\|1210$/, 'the row whose payload was copied still reads back');
corrupt_ok('SELECT count(*) FROM t', 't', 'count(*) over the whole table');
corrupt_ok('SELECT sum(n) FROM t', 't', 'an aggregate over the whole table');
corrupt_ok("UPDATE t SET n = 0 WHERE id = $victim{ciphertext}{id}", 't', 'updating a damaged row');

# Rows on the untouched pages, read by TID range scans around the victims'
# pages, and by index.
my @ranges;
my $from = 0;
foreach my $b (sort { $a <=> $b } keys %victim_block)
{
	push @ranges, "SELECT id, note, n FROM t WHERE ctid >= '($from,0)' AND ctid < '($b,0)'";
	$from = $b + 1;
}
push @ranges, "SELECT id, note, n FROM t WHERE ctid >= '($from,0)'";
my $ranges_set = 'SET enable_seqscan = off; SET enable_indexscan = off; SET enable_bitmapscan = off;';
my $ranges_sql = join(' UNION ALL ', @ranges) . ' ORDER BY id';
my $plan = $node->safe_psql('postgres', "$ranges_set EXPLAIN (COSTS OFF) $ranges_sql");
like($plan, qr/Tid Range Scan/, 'the pages are read by TID range scans');
unlike($plan, qr/Seq Scan|Index/, '... only');
is( $node->safe_psql('postgres', "$ranges_set $ranges_sql"),
	$others,
	'every row on the untouched pages reads back unchanged');
my ($first_other) = $others =~ /^(\d+)\|/;
is( $node->safe_psql('postgres', "SELECT n FROM t WHERE id = $first_other"),
	$first_other * 10, 'an index scan reads a row on an untouched page');
is( $node->safe_psql('postgres', "SELECT n FROM t WHERE id = 400"),
	'4000', 'an index scan reads the last row');

# The plaintext key.
corrupt_ok("$noidx SELECT * FROM accounts", 'accounts',
	'changed plaintext key: seq scan');
corrupt_ok("$noidx SELECT owner FROM accounts WHERE id = 263", 'accounts',
	'changed plaintext key: seq scan for the new value');
corrupt_ok("SELECT owner, balance FROM accounts WHERE ctid = '($acc[0],$acc[1])'",
	'accounts', 'changed plaintext key: TID scan');
corrupt_ok("SET enable_seqscan = off; SELECT owner FROM accounts WHERE id = 7",
	'accounts', 'changed plaintext key: index scan for the old value');
is( $node->safe_psql('postgres', 'SELECT owner, balance FROM accounts WHERE id = 8'),
	'owner-8|800', 'other rows of accounts still read by index');

# The rows whose payload lives in the journal.
SKIP:
{
	skip 'docs rows are unreadable even before tampering', 7 unless $docs_ok;
	corrupt_ok('SELECT body FROM docs WHERE id = 1', 'docs',
		'changed ciphertext in the journal');
	corrupt_ok('SELECT body FROM docs WHERE id = 2', 'docs',
		'changed header of a row whose ciphertext is in the journal');
	is(psql_out($node, 'SELECT body FROM docs WHERE id = 3'),
		'small', 'the inline row of docs still reads back');
}

# Nothing crashed.
ok(node_alive($node), 'the server is still up');
ok(!$node->log_contains('terminated by signal|server process .* exited with exit code [^0]'),
	'no backend crashed');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$started, 'the postmaster was not restarted');

$node->stop;
done_testing();
