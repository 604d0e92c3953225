/*-------------------------------------------------------------------------
 *
 * layout.c
 *	  The hashed byte layouts, Merkle audit paths, and proof checking.
 *
 * Every layout is docs/verification.md, byte for byte.  A proof is checked
 * by recomputing, from the revision up, every hash on the way to the
 * digest; nothing stored in the proof is taken on trust, and any failure
 * to compute is a failure of the proof.
 *
 *-------------------------------------------------------------------------
 */
#include "layout.h"

#include <string.h>

#define REVISION_TAG	"ledger.revision.v1"
#define TXN_TAG			"ledger.txn.v1"
#define BLOCK_TAG		"ledger.block.v1"

static void
put_be(uint8_t *p, uint64_t v, int len)
{
	for (int i = len - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t) (v & 0xff);
}

int
layout_revision_hash(int64_t table_id, int64_t doc_id, int32_t version,
					 char op, const uint8_t *data_hash, uint8_t *out)
{
	uint8_t		buf[sizeof(REVISION_TAG) + 8 + 8 + 4 + 1 + LAYOUT_HASH_LEN];
	size_t		n = sizeof(REVISION_TAG);

	memcpy(buf, REVISION_TAG, n);
	put_be(buf + n, (uint64_t) table_id, 8);
	put_be(buf + n + 8, (uint64_t) doc_id, 8);
	put_be(buf + n + 16, (uint32_t) version, 4);
	buf[n + 20] = (uint8_t) op;
	memcpy(buf + n + 21, data_hash, LAYOUT_HASH_LEN);
	return merkle_sha256(buf, sizeof(buf), out);
}

int
layout_entry_hash(int64_t seq, int64_t committed_at_us, int32_t revision_count,
				  const uint8_t *merkle_root, uint8_t *out)
{
	uint8_t		buf[sizeof(TXN_TAG) + 8 + 8 + 4 + LAYOUT_HASH_LEN];
	size_t		n = sizeof(TXN_TAG);

	memcpy(buf, TXN_TAG, n);
	put_be(buf + n, (uint64_t) seq, 8);
	put_be(buf + n + 8, (uint64_t) committed_at_us, 8);
	put_be(buf + n + 16, (uint32_t) revision_count, 4);
	memcpy(buf + n + 20, merkle_root, LAYOUT_HASH_LEN);
	return merkle_sha256(buf, sizeof(buf), out);
}

int
layout_block_hash(const uint8_t *previous_hash, int64_t number,
				  const uint8_t *merkle_root, uint8_t *out)
{
	uint8_t		buf[sizeof(BLOCK_TAG) + LAYOUT_HASH_LEN + 8 + LAYOUT_HASH_LEN];
	size_t		n = sizeof(BLOCK_TAG);

	memcpy(buf, BLOCK_TAG, n);
	memcpy(buf + n, previous_hash, LAYOUT_HASH_LEN);
	put_be(buf + n + LAYOUT_HASH_LEN, (uint64_t) number, 8);
	memcpy(buf + n + LAYOUT_HASH_LEN + 8, merkle_root, LAYOUT_HASH_LEN);
	return merkle_sha256(buf, sizeof(buf), out);
}

/* RFC 6962 PATH(m, D[n]), written leaf first. */
int
merkle_path(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, size_t index,
			ProofStep *path)
{
	size_t		k = 1;
	int			len;

	if (index >= n)
		return -1;
	if (n == 1)
		return 0;
	while (k * 2 < n)
		k *= 2;
	if (index < k)
	{
		len = merkle_path(leaves, k, index, path);
		if (len < 0 || len >= PROOF_MAX_PATH ||
			!merkle_root(leaves + k, n - k, path[len].hash))
			return -1;
		path[len].left = 0;
	}
	else
	{
		len = merkle_path(leaves + k, n - k, index - k, path);
		if (len < 0 || len >= PROOF_MAX_PATH ||
			!merkle_root(leaves, k, path[len].hash))
			return -1;
		path[len].left = 1;
	}
	return len + 1;
}

/* Fold a leaf hash up its path to a root. */
static int
fold(uint8_t *hash, const ProofStep *path, int len)
{
	if (len < 0 || len > PROOF_MAX_PATH)
		return 0;
	for (int i = 0; i < len; i++)
	{
		uint8_t		next[MERKLE_HASH_LEN];

		if (!(path[i].left ? merkle_node(path[i].hash, hash, next) :
			  merkle_node(hash, path[i].hash, next)))
			return 0;
		memcpy(hash, next, MERKLE_HASH_LEN);
	}
	return 1;
}

/* From a block's hash along the chain to the digest. */
static const char *
follow_chain(int64_t number, uint8_t *hash, const ProofLink *chain, int64_t n,
			 const ChainDigest *digest)
{
	if (n < 0 || number < 0 || digest->block < number ||
		digest->block - number != n)
		return "The chain of blocks does not end at the digest's block.";
	for (int64_t i = 0; i < n; i++)
	{
		uint8_t		next[LAYOUT_HASH_LEN];

		if (chain[i].number != number + 1 + i)
			return "The chain of blocks skips or repeats a block.";
		if (!layout_block_hash(hash, chain[i].number, chain[i].merkle_root, next))
			return "SHA-256 failed.";
		memcpy(hash, next, LAYOUT_HASH_LEN);
	}
	if (memcmp(hash, digest->hash, LAYOUT_HASH_LEN) != 0)
		return "The hashes do not lead to the digest.";
	return NULL;
}

const char *
proof_check_revision(const RevisionProof *p, const ChainDigest *digest)
{
	uint8_t		hash[LAYOUT_HASH_LEN];
	uint8_t		leaf[LAYOUT_HASH_LEN];

	if (p->op != 'I' && p->op != 'U' && p->op != 'D')
		return "The operation is not I, U or D.";
	if (p->revision_count < 1 || p->seq < 1 || p->block_number < 1 ||
		p->version < 0)
		return "A count or number is out of range.";
	if (!layout_revision_hash(p->table_id, p->doc_id, p->version, p->op,
							  p->data_hash, hash) ||
		!merkle_leaf(hash, LAYOUT_HASH_LEN, leaf) ||
		!fold(leaf, p->tx_path, p->ntx))
		return "The transaction path is malformed.";
	if (!layout_entry_hash(p->seq, p->committed_at_us, p->revision_count,
						   leaf, hash) ||
		!merkle_leaf(hash, LAYOUT_HASH_LEN, leaf) ||
		!fold(leaf, p->block_path, p->nblock))
		return "The block path is malformed.";
	if (!layout_block_hash(p->previous_hash, p->block_number, leaf, hash))
		return "SHA-256 failed.";
	return follow_chain(p->block_number, hash, p->chain, p->nchain, digest);
}

const char *
proof_check_consistency(const ChainDigest *old, const ProofLink *chain,
						int64_t n, const ChainDigest *digest)
{
	uint8_t		hash[LAYOUT_HASH_LEN];

	memcpy(hash, old->hash, LAYOUT_HASH_LEN);
	return follow_chain(old->block, hash, chain, n, digest);
}
