
# Shared helpers for ledger's Perl TAP tests.
#
# Every test in test/t/ uses this module to set up nodes that preload the
# extension with a keyring outside the data directory, to read SQLSTATEs out
# of psql errors, to look into heap pages on disk and to search files for
# byte strings.  Keep logic that more than one test needs here.

package LedgerTest;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use Fcntl qw(SEEK_SET);
use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(
  ledger_node keyring_path keyring_key_hex
  psql_error psql_out
  file_mode
  page_item read_bytes write_bytes flip_byte
  files_containing
  ledger_table_id journal_current_docs table_docs
  random_marker
  server_log
  node_alive
);

use constant BLCKSZ => 8192;

# A new node, initialised (without data checksums, which initdb leaves off
# unless asked) and configured to preload ledger with a keyring file in the
# node's base directory, i.e. outside its data directory.
#
# Options:
#   preload        => 0     do not put ledger in shared_preload_libraries
#   keyring        => PATH  value of ledger.keyring_file (default: the
#                           node's keyring_path); '' or undef leaves it unset
#   allows_streaming, extra_conf => passed on / appended
#   start          => 0     do not start the node
#   extension      => 0     do not CREATE EXTENSION ledger
sub ledger_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(allows_streaming => $opt{allows_streaming} // 0);
	my $preload = $opt{preload} // 1;
	my $keyring = exists $opt{keyring} ? $opt{keyring} : keyring_path($node);
	my $conf    = '';
	$conf .= "shared_preload_libraries = 'ledger'\n" if $preload;
	$conf .= "ledger.keyring_file = '$keyring'\n"
	  if defined $keyring && $keyring ne '';
	$conf .= $opt{extra_conf} if defined $opt{extra_conf};
	$node->append_conf('postgresql.conf', $conf) if $conf ne '';

	return $node if defined $opt{start} && !$opt{start};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ledger')
	  if $opt{extension} // 1;
	return $node;
}

# Where ledger_node() puts the keyring of a node: outside its data directory.
sub keyring_path
{
	my ($node) = @_;
	return $node->basedir . '/keyring';
}

# The hex key material of every "key" line of a keyring file.
sub keyring_key_hex
{
	my ($path) = @_;
	my @hex;
	foreach my $line (split /\n/, slurp_file($path))
	{
		push @hex, $1 if $line =~ /^key\s+\S+\s+\d+\s+\S+\s+([0-9a-fA-F]{64})\s*$/;
	}
	return @hex;
}

# Run SQL that is expected to fail; returns a hash with the psql exit code,
# stdout, stderr, and the error's sqlstate, message, detail and hint (in
# verbose error mode, psql prints "ERROR:  SQLSTATE: message").
# Options: connstr => ..., passed on to $node->psql.
sub psql_error
{
	my ($node, $sql, %params) = @_;
	my $db = delete $params{dbname} // 'postgres';
	my ($ret, $out, $err) =
	  $node->psql($db, "\\set VERBOSITY verbose\n$sql", %params);
	my %e = (ret => $ret, stdout => $out, stderr => $err);
	if ($err =~ /(?:ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}):\s+([^\n]*)/)
	{
		$e{sqlstate} = $1;
		$e{message}  = $2;
	}
	$e{detail} = $1 if $err =~ /DETAIL:\s+([^\n]*)/;
	$e{hint}   = $1 if $err =~ /HINT:\s+([^\n]*)/;
	$e{sqlstate} //= '';
	$e{message}  //= '';
	$e{detail}   //= '';
	$e{hint}     //= '';
	return \%e;
}

# The output of a query, or, if it fails, "psql failed: <stderr>", so that
# a comparison with the expected output fails and shows why.
sub psql_out
{
	my ($node, $sql, $db) = @_;
	my ($ret, $out, $err) = $node->psql($db // 'postgres', $sql);
	return $ret == 0 ? $out : "psql failed: $err";
}

# Permission bits of a file, e.g. 0600.
sub file_mode
{
	my ($path) = @_;
	my @st = stat($path) or return undef;
	return $st[2] & 07777;
}

sub read_bytes
{
	my ($file, $pos, $len) = @_;
	open(my $fh, '<:raw', $file) or croak "open $file: $!";
	sysseek($fh, $pos, SEEK_SET) or croak "seek $file: $!";
	my $buf = '';
	my $got = sysread($fh, $buf, $len);
	croak "short read from $file at $pos" unless defined $got && $got == $len;
	close $fh;
	return $buf;
}

sub write_bytes
{
	my ($file, $pos, $bytes) = @_;
	open(my $fh, '+<:raw', $file) or croak "open $file: $!";
	sysseek($fh, $pos, SEEK_SET) or croak "seek $file: $!";
	my $n = syswrite($fh, $bytes);
	croak "short write to $file at $pos"
	  unless defined $n && $n == length($bytes);
	close $fh or croak "close $file: $!";
	return;
}

# XOR one byte of a file with $mask (default 0xff); returns (old, new).
sub flip_byte
{
	my ($file, $pos, $mask) = @_;
	$mask //= 0xff;
	my $old = ord(read_bytes($file, $pos, 1));
	my $new = $old ^ $mask;
	write_bytes($file, $pos, chr($new));
	return ($old, $new);
}

# The line pointer of item $offnum (1-based) on block $blkno of a relation
# file: returns a hash with the file offsets of the tuple (start, len), its
# lp_flags, and the tuple's t_hoff.  Line pointers follow the 24-byte page
# header, 4 bytes each: lp_off:15, lp_flags:2, lp_len:15 (little endian).
sub page_item
{
	my ($file, $blkno, $offnum) = @_;
	my $page  = $blkno * BLCKSZ;
	my $lower = unpack('v', read_bytes($file, $page + 12, 2));
	my $nitems = ($lower - 24) / 4;
	croak "item $offnum beyond the $nitems items of block $blkno"
	  if $offnum < 1 || $offnum > $nitems;
	my $lp = unpack('V', read_bytes($file, $page + 24 + 4 * ($offnum - 1), 4));
	my %it = (
		lp_off   => $lp & 0x7fff,
		lp_flags => ($lp >> 15) & 0x3,
		lp_len   => ($lp >> 17) & 0x7fff);
	$it{start} = $page + $it{lp_off};
	$it{len}   = $it{lp_len};
	$it{t_hoff} = ord(read_bytes($file, $it{start} + 22, 1)) if $it{len} >= 23;
	# the payload length sits in the tuple's last four bytes, big endian
	$it{payload_len} = unpack('N', read_bytes($file, $it{start} + $it{len} - 4, 4))
	  if $it{len} >= 8;
	return \%it;
}

# Every regular file under $dir that contains any of the byte strings in
# @needles: returns a hash needle => [files].  Binary safe; files are read
# in chunks that overlap by the longest needle.
sub files_containing
{
	my ($dir, @needles) = @_;
	my %found = map { $_ => [] } @needles;
	my $maxlen = 0;
	foreach (@needles) { $maxlen = length($_) if length($_) > $maxlen; }
	my $chunk = 4 * 1024 * 1024;
	my $nfiles = 0;
	find(
		{
			no_chdir => 1,
			wanted   => sub {
				my $f = $File::Find::name;
				return unless -f $f && !-l $f;
				$nfiles++;
				open(my $fh, '<:raw', $f) or return;    # vanished meanwhile
				my $tail = '';
				my %hit;
				while (1)
				{
					my $buf;
					my $n = sysread($fh, $buf, $chunk);
					last unless $n;
					my $window = $tail . $buf;
					foreach my $nd (@needles)
					{
						$hit{$nd} = 1 if !$hit{$nd} && index($window, $nd) >= 0;
					}
					$tail = length($window) >= $maxlen
					  ? substr($window, -($maxlen - 1 || 1))
					  : $window;
				}
				close $fh;
				push @{ $found{$_} }, $f foreach sort keys %hit;
			}
		},
		$dir);
	croak "no files searched under $dir" unless $nfiles;
	return \%found;
}

# A random marker of [a-z0-9], distinctive enough to appear nowhere by
# chance.
sub random_marker
{
	my ($len) = @_;
	$len //= 24;
	my @c = ('a' .. 'z', '0' .. '9');
	return join('', map { $c[ int(rand(@c)) ] } 1 .. $len);
}

sub ledger_table_id
{
	my ($node, $table, $db) = @_;
	return $node->safe_psql($db // 'postgres',
		"SELECT table_id FROM ledger.tables WHERE relid = '$table'::regclass AND dropped_at IS NULL"
	);
}

# (These two return "psql failed: ..." instead of dying, see psql_out.)
# "doc_id:version" of the newest revision of every document of a table
# whose newest revision is not a tombstone, sorted, one per line.
sub journal_current_docs
{
	my ($node, $table, $db) = @_;
	my $tid = ledger_table_id($node, $table, $db);
	croak "no table id for $table" unless $tid =~ /^\d+$/;
	return psql_out(
		$node, qq{
		SELECT doc_id || ':' || version FROM (
		  SELECT DISTINCT ON (doc_id) doc_id, version, op
		  FROM ledger.journal WHERE table_id = $tid
		  ORDER BY doc_id, version DESC) j
		WHERE op <> 'D' ORDER BY doc_id}, $db);
}

# "doc_id:version" of every row of a ledger table, from its payload headers.
sub table_docs
{
	my ($node, $table, $db) = @_;
	return psql_out(
		$node, qq{
		SELECT d || ':' || v FROM (
		  SELECT ledger_document_id('$table', ctid) AS d,
		         ledger_document_version('$table', ctid) AS v
		  FROM $table) r ORDER BY d}, $db);
}

sub server_log
{
	my ($node) = @_;
	return slurp_file($node->logfile);
}

# True if the postmaster of a node still answers.
sub node_alive
{
	my ($node) = @_;
	my ($ret, $out) = $node->psql('postgres', 'SELECT 1');
	return $ret == 0 && $out eq '1';
}

1;
