
# The proof that sealed columns never reach the disk in the clear.
#
# Random markers go into NON-indexed columns of a ledger table: plain text,
# jsonb keys and values (jsonb keeps strings as raw bytes), a row of about
# 10 MB (its sealed payload lives in ledger.journal), rows loaded by COPY,
# set by UPDATE and ON CONFLICT DO UPDATE, and a deleted row.  After
# ANALYZE, VACUUM, CHECKPOINT and a clean shutdown, every file under the
# data directory, WAL included, is searched byte for byte: no marker may
# be found.  The SQL never spells a marker out (it sends reverse(marker)),
# so a marker on disk can only come from a stored value.
#
# Control: the same markers, written afterwards into a heap table and into
# an indexed (plaintext) column of the ledger table, ARE found, in those
# relations' files, which shows that the search finds what is there.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# wal_level = logical puts the most into WAL; hint bits are WAL-logged too.
my $node = ledger_node('disk',
	extra_conf => "wal_level = logical\nwal_log_hints = on\n");
is($node->safe_psql('postgres', 'SHOW data_checksums'), 'off', 'node set up');

my %m = map { $_ => random_marker(24) }
  qw(text jkey jval big bigjson copy upd onconf del small_update);
my %rev = map { $_ => scalar reverse($m{$_}) } keys %m;

# SQL that yields a marker without spelling it out.
sub mk { my ($k) = @_; return "reverse('$rev{$k}')"; }

my $ten_mb = 10 * 1024 * 1024;
$node->safe_psql(
	'postgres', qq{
	CREATE TABLE lt (id int PRIMARY KEY, tag text, body text, doc jsonb) USING ledger;
	CREATE INDEX lt_tag ON lt (tag);
	INSERT INTO lt VALUES
	  (1, 'a', ${\ mk('text')}, '{"plain": 1}'),
	  (2, 'b', 'x', jsonb_build_object(${\ mk('jkey')}, ${\ mk('jval')})),
	  (3, 'c', 'to be updated', '{}'),
	  (4, 'd', 'to be upserted', '{}'),
	  (5, 'e', ${\ mk('del')}, '{}'),
	  (6, 'f', 'y', jsonb_build_object('nested', jsonb_build_array(1, ${\ mk('jval')})));
	-- about 10 MB, with the marker at both ends
	INSERT INTO lt VALUES (7, 'g',
	  ${\ mk('big')} || repeat('0123456789abcdef', $ten_mb / 16) || ${\ mk('big')},
	  jsonb_build_object('big', ${\ mk('bigjson')}));
	UPDATE lt SET body = ${\ mk('upd')} WHERE id = 3;
	UPDATE lt SET body = body || ${\ mk('small_update')} WHERE id = 1;
	INSERT INTO lt VALUES (4, 'd', 'conflict', '{}')
	  ON CONFLICT (id) DO UPDATE SET body = ${\ mk('onconf')};
	DELETE FROM lt WHERE id = 5;
});
# COPY sends its rows as data, not as SQL text.
my ($ret, $out, $err) = $node->psql('postgres',
	"COPY lt FROM STDIN;\n8\th\t$m{copy}\t{\"copy\": \"$m{copy}\"}\n\\.\n");
is($ret, 0, 'COPY into the ledger table') or diag $err;
$node->safe_psql('postgres', 'ANALYZE lt; VACUUM lt; ANALYZE; CHECKPOINT;');

# The rows do hold the markers.
is( $node->safe_psql(
		'postgres', qq{SELECT string_agg(id::text, ',' ORDER BY id) FROM lt WHERE
		  body = ${\ mk('text')} || ${\ mk('small_update')} OR
		  doc -> ${\ mk('jkey')} = to_jsonb(${\ mk('jval')}) OR
		  doc->'nested'->>1 = ${\ mk('jval')} OR
		  body = ${\ mk('upd')} OR body = ${\ mk('onconf')} OR
		  (position(${\ mk('big')} in body) = 1 AND
		   right(body, 24) = ${\ mk('big')} AND
		   doc->>'big' = ${\ mk('bigjson')}) OR
		  (body = '$m{copy}' AND doc->>'copy' = '$m{copy}')}
	),
	'1,2,3,4,6,7,8',
	'every row reads back with its marker');
is($node->safe_psql('postgres', 'SELECT length(body) FROM lt WHERE id = 7'),
	$ten_mb + 48, 'the big row is about 10 MB');
is( $node->safe_psql('postgres', q{SELECT count(*) FROM lt WHERE id = 5}),
	'0', 'the deleted row is gone');
cmp_ok(
	$node->safe_psql(
		'postgres', q{SELECT count(*) FROM ledger.journal
		WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'lt'::regclass)}
	),
	'>=', 12,
	'the journal holds the revisions');

$node->stop;
my $datadir = $node->data_dir;
my $found   = files_containing($datadir, values %m);
foreach my $k (sort keys %m)
{
	is_deeply($found->{ $m{$k} }, [],
		"marker '$k' (a sealed value) is in no file of the data directory, WAL included");
}

# --- Control ---------------------------------------------------------------

$node->start;
$node->safe_psql(
	'postgres', qq{
	CREATE TABLE ht (id int, body text, doc jsonb) USING heap;
	-- uncompressed out-of-line storage, like ledger.journal's payload
	ALTER TABLE ht ALTER COLUMN body SET STORAGE EXTERNAL;
	INSERT INTO ht VALUES
	  (1, ${\ mk('copy')}, jsonb_build_object(${\ mk('jkey')}, ${\ mk('jval')})),
	  (2, ${\ mk('big')} || repeat('0123456789abcdef', $ten_mb / 16), '{}');
	INSERT INTO lt VALUES (100, ${\ mk('text')}, 'ctl', '{}');
	CHECKPOINT;
});
my $lt_file = $node->safe_psql('postgres', q{SELECT pg_relation_filepath('lt')});
my $lt_idx  = $node->safe_psql('postgres', q{SELECT pg_relation_filepath('lt_tag')});
my $ht_file = $node->safe_psql('postgres', q{SELECT pg_relation_filepath('ht')});
my $ht_toast = $node->safe_psql('postgres',
	q{SELECT pg_relation_filepath(reltoastrelid) FROM pg_class WHERE oid = 'ht'::regclass});
$node->stop;

$found = files_containing($datadir, $m{text}, $m{jkey}, $m{jval}, $m{copy}, $m{big});
my %files = map { $_ => { map { $_ => 1 } @{ $found->{ $m{$_} } } } }
  qw(text jkey jval copy big);
ok($files{text}{"$datadir/$lt_file"},
	'control: a marker in an indexed ledger column is found in the table file');
ok($files{text}{"$datadir/$lt_idx"},
	'control: ... and in its index');
ok($files{copy}{"$datadir/$ht_file"},
	'control: a marker in a heap text column is found in the heap file');
ok($files{jkey}{"$datadir/$ht_file"},
	'control: a jsonb key in a heap table is found as stored');
ok($files{jval}{"$datadir/$ht_file"},
	'control: a jsonb value in a heap table is found as stored');
ok($files{big}{"$datadir/$ht_toast"},
	'control: the marker of a 10 MB heap value is found in its TOAST file');
ok(scalar(grep { m{/pg_wal/} } keys %{ $files{copy} }),
	'control: the heap marker is found in WAL too');

done_testing();
