# ledger_verify('full') checks every current row without building it where
# nothing in it needs comparing: a row of a table with no column in the
# clear is only authenticated, and rows of a table with columns in the
# clear are opened in full.  Every row must be the very sealing of its
# newest committed revision: its payload header (which holds the
# sealing's random nonce) must be that revision's.  Each path must still find a
# change to the row's file, made with the server stopped: verification
# must fail naming the table and what is wrong, and once the file is put
# back it must pass again.  Level chain,
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

# Change the row's file with $edit (given the file and the row's line
# pointer), check what level full says, then put the file back.
sub detected
{
	my ($name, $table, $id, $edit, $detail_re) = @_;
	my $before = $node->safe_psql('postgres', $clean);
	my ($file, $it) = locate($table, $id);
	copy($file, "$file.saved") or die "copy: $!";
	$edit->($file, $it);
	$node->start;
	my $e = psql_error($node, 'SELECT * FROM ledger_verify(\'full\')');
	is($e->{sqlstate}, 'XX001', "$name: reported as data corruption");
	like($e->{stderr}, qr/(?:verifying the current rows of|failed at) table public\.\Q$table\E/,
		"$name: the report names the table");
	like($e->{detail}, $detail_re, "$name: the report says what is wrong");
	like($node->safe_psql('postgres', q{SELECT revisions FROM ledger_verify('chain')}),
		qr/^\d+$/, "$name: level chain, which reads no current row, passes");
	$node->stop;
	move("$file.saved", $file) or die "move: $!";
	$node->start;
	is($node->safe_psql('postgres', $clean), $before, "$name: put back, the ledger verifies again");
}

# The payload ends the tuple: header (32 bytes + a present-column bitmap
# byte), ciphertext, 16-byte tag, then its 4-byte length.
my $payload_start = sub { my $it = shift; $it->{start} + $it->{len} - 4 - $it->{payload_len} };

# Flip one byte, at the file offset $where picks from the line pointer.
sub flip_at
{
	my ($where) = @_;
	return sub { my ($file, $it) = @_; flip_byte($file, $where->($it), 0x01) };
}

detected('an inline row of a table without columns in the clear', 'bare', 3,
	flip_at(sub { $_[0]{start} + $_[0]{len} - 4 - 16 - 3 }),
	qr/fails authentication/);

# A transaction that rolls back seals the same version of a document as
# the one that then commits.  Its dead row is as authentic as the live
# one; copied over the live row's payload, it would be read back as the
# row.  Level full must see that the row is not the committed sealing.
{
	my $ctid = $node->safe_psql('postgres', q{
		BEGIN; UPDATE bare SET body = 'evil 7' WHERE id = 7; SELECT ctid FROM bare WHERE id = 7; ROLLBACK;});
	$ctid =~ /^\((\d+),(\d+)\)$/ or die "bad ctid '$ctid'";
	my @aborted = ($1, $2);
	$node->safe_psql('postgres', q{UPDATE bare SET body = 'good 7' WHERE id = 7});
	detected('a row replaced by a rolled-back sealing of its version', 'bare', 7,
		sub {
			my ($file, $it) = @_;
			my $dead = page_item($file, @aborted);
			is($dead->{payload_len}, $it->{payload_len}, 'the rolled-back sealing has the same length');
			my $at = sub { $_[0]{start} + $_[0]{len} - 4 - $_[0]{payload_len} };
			write_bytes($file, $at->($it), read_bytes($file, $at->($dead), $dead->{payload_len}));
			$node->start;
			is($node->safe_psql('postgres', 'SELECT body FROM bare WHERE id = 7'), 'evil 7',
				'... and reads back as the row');
			$node->stop;
		},
		qr/not the sealing of its newest revision/);
}

{
	my (undef, $it) = locate('bare', 100);
	is($it->{payload_len}, 33, 'the large row keeps only its payload header');
	$node->start;
}
detected('the header of a row that keeps only its header', 'bare', 100,
	flip_at(sub { $payload_start->($_[0]) + 24 }),    # inside the nonce
	qr/not the sealing of its newest revision/);

detected('a column in the clear', 'keyed', 4,
	flip_at(sub { $_[0]{start} + $_[0]{t_hoff} + 1 }),    # the int4 key: 4 becomes 260
	qr/does not match its sealed value/);

$node->stop;
done_testing();
