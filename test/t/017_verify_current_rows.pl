# ledger_verify('full') checks every current row without building it where
# nothing in it needs comparing: a row of a table with no column in the
# clear is only authenticated, and a row that keeps only its payload
# header has that header matched with its committed revision's.  Rows of
# a table with columns in the clear are opened in full.  Each path must
# still find a change to the row's file: one byte is flipped with the
# server stopped, verification must fail naming the table and what is
# wrong, and once the file is put back it must pass again.  Level chain,
# which reads no current row, passes throughout.
use strict;
use warnings;

use File::Copy;
use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = ledger_node('current_rows');
$node->safe_psql('postgres', q{
	CREATE TABLE bare (id int, body text) USING ledger;
	INSERT INTO bare SELECT g, 'row ' || g FROM generate_series(1, 20) g;
	-- too big to keep its ciphertext inline: the table keeps the header
	INSERT INTO bare VALUES (100, repeat(md5('large'), 200));
	UPDATE bare SET body = body || ' updated' WHERE id <= 5;
	CREATE TABLE keyed (id int PRIMARY KEY, v text) USING ledger;
	INSERT INTO keyed SELECT g, 'v' || g FROM generate_series(1, 10) g;
	SELECT ledger_digest();
});

my $clean = q{SELECT revisions || ' ' || current_rows FROM ledger_verify('full')};
my $counts = $node->safe_psql('postgres', $clean);
like($counts, qr/^\d+ 31$/, 'a clean ledger verifies, with all 31 current rows');

# The file of a row and its line pointer, read with the server stopped
# (which it is on return), so that the page is on disk.
sub locate
{
	my ($table, $id) = @_;
	my $ctid = $node->safe_psql('postgres', "SELECT ctid FROM $table WHERE id = $id");
	$ctid =~ /^\((\d+),(\d+)\)$/ or die "bad ctid '$ctid'";
	my ($blk, $off) = ($1, $2);
	my $file = $node->data_dir . '/'
	  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$table')");
	$node->stop;
	return ($file, page_item($file, $blk, $off));
}

# Flip the byte that $where picks (a file offset, from the row's line
# pointer), check what level full says, then put the file back.
sub detected
{
	my ($name, $table, $id, $where, $detail_re) = @_;
	my ($file, $it) = locate($table, $id);
	copy($file, "$file.saved") or die "copy: $!";
	flip_byte($file, $where->($it), 0x01);
	$node->start;
	my $e = psql_error($node, 'SELECT * FROM ledger_verify(\'full\')');
	is($e->{sqlstate}, 'XX001', "$name: reported as data corruption");
	like($e->{stderr}, qr/verifying the current rows of table public\.\Q$table\E/,
		"$name: the report names the table");
	like($e->{detail}, $detail_re, "$name: the report says what is wrong");
	like($node->safe_psql('postgres', q{SELECT revisions FROM ledger_verify('chain')}),
		qr/^\d+$/, "$name: level chain, which reads no current row, passes");
	$node->stop;
	move("$file.saved", $file) or die "move: $!";
	$node->start;
	is($node->safe_psql('postgres', $clean), $counts, "$name: put back, the ledger verifies again");
}

# The payload ends the tuple: header (32 bytes + a present-column bitmap
# byte), ciphertext, 16-byte tag, then its 4-byte length.
my $payload_start = sub { my $it = shift; $it->{start} + $it->{len} - 4 - $it->{payload_len} };

detected('an inline row of a table without columns in the clear', 'bare', 3,
	sub { $_[0]{start} + $_[0]{len} - 4 - 16 - 3 },
	qr/fails authentication/);

{
	my (undef, $it) = locate('bare', 100);
	is($it->{payload_len}, 33, 'the large row keeps only its payload header');
	$node->start;
}
detected('the header of a row that keeps only its header', 'bare', 100,
	sub { $payload_start->($_[0]) + 24 },    # inside the nonce
	qr/missing from ledger\.journal/);

detected('a column in the clear', 'keyed', 4,
	sub { $_[0]{start} + $_[0]{t_hoff} + 1 },    # the int4 key: 4 becomes 260
	qr/does not match its sealed value/);

$node->stop;
done_testing();
