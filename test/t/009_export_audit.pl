# Offline audit: an export of the journal, a digest and proofs are checked
# with no database, by ledger-verify and by test/independent/verify.py, a
# re-implementation written from docs/verification.md that shares no code
# with the extension.  Both must accept what the ledger wrote and reject
# every change to it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use LedgerTest;
use File::Temp qw(tempdir);
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = "$FindBin::RealBin/../independent/verify.py";
my $tool   = 'ledger-verify';
my $dir    = tempdir(CLEANUP => 1);

my $node = ledger_node('audit');
$node->safe_psql('postgres', q{
	CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
	CREATE TABLE notes (id int, body text) USING ledger;
	INSERT INTO acct SELECT g, 'owner ' || g, g * 100 FROM generate_series(1, 40) g;
	INSERT INTO notes SELECT g, repeat('note ', g * 200) FROM generate_series(1, 5) g;
	-- large enough to store subtrees: its root is made from them
	CREATE TABLE bulk (id int, v text) USING ledger;
	INSERT INTO bulk SELECT g, 'row ' || g FROM generate_series(1, 20000) g;
	SELECT ledger_digest();
	UPDATE acct SET balance = balance - 1 WHERE id % 3 = 0;
	DELETE FROM notes WHERE id = 2;
	SELECT ledger_digest();
	BEGIN;
	INSERT INTO acct VALUES (100, 'in a transaction', 1);
	SAVEPOINT s; INSERT INTO acct VALUES (101, 'rolled back', 1); ROLLBACK TO s;
	UPDATE acct SET owner = 'renamed' WHERE id = 1;
	COMMIT;
});
my $old = $node->safe_psql('postgres', q{SELECT digest FROM ledger_digest()});
$node->safe_psql('postgres', q{INSERT INTO acct VALUES (200, 'last', 2)});
my $digest = $node->safe_psql('postgres', q{SELECT digest FROM ledger_digest()});

sub write_file
{
	my ($name, $text) = @_;
	my $path = "$dir/$name";
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
	return $path;
}

my $export = write_file('export.jsonl',
	$node->safe_psql('postgres', q{SELECT * FROM ledger_export()}) . "\n");
my $digest_file = write_file('digest.json', $digest);
my $proof = write_file('proof.json', $node->safe_psql('postgres', qq{
	SELECT ledger_proof('acct', ledger_document_id('acct', ctid), 1, '$digest')
	  FROM acct WHERE id = 1}));
# A revision in the second run of the bulk transaction's tree: its proof
# is built through the stored subtrees.
my $bulk_proof = write_file('bulk_proof.json', $node->safe_psql('postgres', qq{
	SELECT ledger_proof('bulk', ledger_document_id('bulk', ctid), 0, '$digest')
	  FROM bulk WHERE id = 10000}));
my $cproof = write_file('consistency.json',
	$node->safe_psql('postgres', qq{SELECT ledger_consistency_proof('$old', '$digest')}));
my $revisions = $node->safe_psql('postgres', q{SELECT count(*) FROM ledger.journal});
my $sealed = $node->safe_psql('postgres',
	q{SELECT count(*) FROM ledger.journal WHERE payload IS NOT NULL AND table_id <> 0});

sub run_cmd
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($? >> 8, $out . $err);
}

# The ledger's own export, digest and proofs check.
my ($rc, $out) = run_cmd('python3', $python, $export, $digest_file, $proof, $cproof, $bulk_proof);
is($rc, 0, 'the independent verifier accepts the export and the proofs');
like($out, qr/ok: document \d+ version 0 is in the history/,
	'the independent verifier checks a proof built through stored subtrees');
like($out, qr/ok: $revisions revisions in \d+ blocks lead to the digest/,
	'the independent verifier recomputed every revision');
like($out, qr/ok: document \d+ version 1 is in the history/, 'the independent verifier checks the inclusion proof');
like($out, qr/ok: block \d+ extends to block \d+/, 'the independent verifier checks the consistency proof');

($rc, $out) = run_cmd($tool, 'export', $export, $digest_file);
is($rc, 0, 'ledger-verify accepts the export');
like($out, qr/^ok: $revisions revisions/, 'ledger-verify recomputed every revision');
($rc, $out) = run_cmd($tool, 'export', $export, $digest, '--keyring', keyring_path($node));
is($rc, 0, 'ledger-verify accepts the export with the keyring');
like($out, qr/$sealed payloads opened and their data hashes match/,
	'with the keyring, every sealed payload is opened and its data hash checked');
is((run_cmd($tool, 'proof', $proof, $digest_file))[0], 0, 'ledger-verify accepts the inclusion proof');
is((run_cmd($tool, 'proof', $cproof, $digest))[0], 0, 'ledger-verify accepts the consistency proof');
is((run_cmd($tool, 'proof', $bulk_proof, $digest_file))[0], 0,
	'ledger-verify accepts a proof built through stored subtrees');

# A partial export, from block 2, checks against the same digest.
my $partial = write_file('partial.jsonl',
	$node->safe_psql('postgres', q{SELECT * FROM ledger_export(2)}) . "\n");
is((run_cmd('python3', $python, $partial, $digest_file))[0], 0, 'a partial export checks (independent)');
is((run_cmd($tool, 'export', $partial, $digest_file))[0], 0, 'a partial export checks (ledger-verify)');

# Every change to the export is found by both.
sub changed_export
{
	my ($name, $edit, $from) = @_;
	open my $in, '<', $from // $export or die $!;
	my @lines = <$in>;
	close $in;
	@lines = $edit->(@lines);
	return write_file("$name.jsonl", join('', @lines));
}

sub flip_hex
{
	my ($line, $key) = @_;
	$line =~ s/("$key": ")([0-9a-f])/$1 . ($2 eq '0' ? '1' : '0')/e or die "no $key in $line";
	return $line;
}

my %cases = (
	'a data hash' => sub {
		my $done = 0;
		map { !$done && /"type": "revision"/ && /"data_hash": "/ ? do { $done = 1; flip_hex($_, 'data_hash') } : $_ } @_;
	},
	'a revision hash' => sub {
		my $done = 0;
		map { !$done && /"type": "revision"/ ? do { $done = 1; flip_hex($_, 'revision_hash') } : $_ } @_;
	},
	'a removed revision' => sub {
		my $done = 0;
		grep { !(!$done && /"type": "revision"/ && ($done = 1)) } @_;
	},
	'a transaction root' => sub {
		my $done = 0;
		map { !$done && /"type": "transaction"/ ? do { $done = 1; flip_hex($_, 'merkle_root') } : $_ } @_;
	},
	'a block root' => sub {
		map { /"type": "block", "number": 2,/ ? flip_hex($_, 'merkle_root') : $_ } @_;
	},
	'the last block removed' => sub {
		my @blocks = grep { /"type": "block"/ } @_;
		my $last = $blocks[-1];
		grep { $_ ne $last } @_;
	},
);
for my $name (sort keys %cases)
{
	my $bad = changed_export($name =~ s/ /_/gr, $cases{$name});
	my ($prc, $pout) = run_cmd('python3', $python, $bad, $digest_file);
	is($prc, 1, "$name: the independent verifier rejects the export");
	like($pout, qr/FAILED: /, "$name: the independent verifier says where");
	my ($trc, $tout) = run_cmd($tool, 'export', $bad, $digest_file);
	is($trc, 1, "$name: ledger-verify rejects the export");
	like($tout, qr/FAILED: (block|transaction|table id) \d+/, "$name: ledger-verify names the place");
}

# A partial export starts from the peaks of the tree over the blocks
# before it, given in its header: changing one breaks the digest's root.
{
	my $bad = changed_export('peak', sub {
		map { /"type": "header"/ ? s/("tree": \[")([0-9a-f])/$1 . ($2 eq '0' ? '1' : '0')/er : $_ } @_;
	}, $partial);
	isnt(slurp_file($bad), slurp_file($partial), 'the partial export has a tree peak to change');
	my ($prc, $pout) = run_cmd('python3', $python, $bad, $digest_file);
	is($prc, 1, 'a changed tree peak: the independent verifier rejects the export');
	my ($trc, $tout) = run_cmd($tool, 'export', $bad, $digest_file);
	is($trc, 1, 'a changed tree peak: ledger-verify rejects the export');
	like($tout, qr/does not end at the digest/, 'a changed tree peak: ledger-verify says the export misses the digest');
}

# The header must come first, and once: moved to the end, or repeated, it
# could restart the tree in the middle of the export.
for my $where ('moved to the end', 'repeated')
{
	my $bad = changed_export("header_$where" =~ s/ /_/gr, sub {
		my ($header, @rest) = @_;
		die "the export does not start with its header" unless $header =~ /"type": "header"/;
		return $where eq 'repeated' ? ($header, @rest, $header) : (@rest, $header);
	});
	my ($prc, $pout) = run_cmd('python3', $python, $bad, $digest_file);
	is($prc, 1, "a header $where: the independent verifier rejects the export");
	like($pout, qr/the header must be the first line/, "a header $where: the independent verifier says why");
	my ($trc, $tout) = run_cmd($tool, 'export', $bad, $digest_file);
	is($trc, 1, "a header $where: ledger-verify rejects the export");
	like($tout, qr/must be the first line of the export/, "a header $where: ledger-verify says why");
}

# A payload byte: no hash covers the ciphertext, so only the keyring
# check, which opens it, can tell.
{
	my $done = 0;
	my $bad = changed_export('payload', sub {
		map { !$done && /"key_id": \d/ && /"payload": "[0-9a-f]/ ? do { $done = 1; s/("payload": "[0-9a-f]{100})([0-9a-f])/$1 . ($2 eq '0' ? '1' : '0')/e; $_ } : $_ } @_;
	});
	is((run_cmd($tool, 'export', $bad, $digest_file))[0], 0, 'a payload change passes the hash-only check');
	my ($trc, $tout) = run_cmd($tool, 'export', $bad, $digest_file, '--keyring', keyring_path($node));
	is($trc, 1, 'a payload change fails the keyring check');
	like($tout, qr/fails authentication/, 'ledger-verify says the payload does not open');
}

# A schema event's payload is JSON in the clear, hashed without a key.
{
	my $done = 0;
	my $bad = changed_export('event', sub {
		map { !$done && /"table_id": 0,/ && /"payload": "7b/ ? do { $done = 1; s/"payload": "7b/"payload": "7c/; $_ } : $_ } @_;
	});
	my ($trc, $tout) = run_cmd($tool, 'export', $bad, $digest_file);
	is($trc, 1, 'a changed schema event fails ledger-verify without the keyring');
	like($tout, qr/does not match the event's payload/, 'ledger-verify says the event changed');
}

# Another digest, and changed proofs, are rejected.
is((run_cmd('python3', $python, $export, $old))[0], 1, 'the export does not end at an older digest');
is((run_cmd($tool, 'export', $export, $old))[0], 1, 'ledger-verify: the export does not end at an older digest');
is((run_cmd($tool, 'proof', $proof, $old))[0], 1, 'an inclusion proof does not lead to another digest');
{
	open my $in, '<', $proof or die $!;
	my $text = join '', <$in>;
	close $in;
	$text =~ s/"side": "left"/"side": "RIGHT"/ or $text =~ s/"side": "right"/"side": "LEFT"/;
	$text =~ s/"side": "RIGHT"/"side": "right"/;
	$text =~ s/"side": "LEFT"/"side": "left"/;
	my $bad = write_file('bad-proof.json', $text);
	is((run_cmd('python3', $python, $export, $digest_file, $bad))[0], 1,
		'a proof with a swapped side fails the independent check');
	is((run_cmd($tool, 'proof', $bad, $digest_file))[0], 1, 'a proof with a swapped side fails ledger-verify');
}
{
	my $text = slurp_file($cproof);
	$text =~ s/("path": \[")([0-9a-f])/$1 . ($2 eq '0' ? '1' : '0')/e or die "no consistency path in $text";
	my $bad = write_file('bad-consistency.json', $text);
	is((run_cmd('python3', $python, $export, $digest_file, $bad))[0], 1,
		'a consistency proof with a changed hash fails the independent check');
	is((run_cmd($tool, 'proof', $bad, $digest_file))[0], 1,
		'a consistency proof with a changed hash fails ledger-verify');
}
# Hostile proofs: an old digest before block 0 (m = 0, where the check's
# loop would never end), upper-case hex, a boolean for a number.  Both
# verifiers refuse each, and neither hangs.
{
	my $c = slurp_file($cproof);
	my $p = slurp_file($proof);
	my %hostile = (
		'an old digest before block 0' => $c =~ s/("old": \{[^}]*"block": )\d+/${1}-1/r,
		'upper-case hex' => $p =~ s/("previous_hash": ")([0-9a-f]{64})/$1 . uc($2)/er,
		'a boolean for a version' => $p =~ s/("revision": \{[^}]*"version": )\d+/${1}true/r);
	for my $name (sort keys %hostile)
	{
		isnt($hostile{$name}, $name =~ /before/ ? $c : $p, "$name: the proof was changed");
		my $bad = write_file('hostile.json', $hostile{$name});
		is((run_cmd('python3', $python, $export, $digest_file, $bad))[0], 1,
			"$name: the independent verifier refuses it");
		isnt((run_cmd($tool, 'proof', $bad, $digest_file))[0], 0, "$name: ledger-verify refuses it");
	}
}
is((run_cmd($tool, 'proof', '{"version": 1}', $digest_file))[0], 2, 'a malformed proof is an input error');
is((run_cmd($tool, 'proof', $proof, '{"block": 1}'))[0], 2, 'a malformed digest is an input error');

# Exporting is not for everyone.
$node->safe_psql('postgres', 'CREATE ROLE clerk LOGIN');
is(psql_error($node, 'SELECT * FROM ledger_export()', extra_params => ['-U', 'clerk'])->{sqlstate},
	'42501', 'an ordinary role may not export');

$node->stop;
done_testing();
