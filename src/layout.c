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

/* PATH(index, D[a:b]), leaf first: the sibling of every subtree on the way up. */
static int
path_in(merkle_subtree_fn fn, void *arg, uint64_t a, uint64_t b, uint64_t index,
		ProofStep *path)
{
	uint64_t	k;
	int			len;
	int			left;

	if (b - a == 1)
		return 0;
	k = merkle_split(b - a);
	left = index >= a + k;
	len = left ? path_in(fn, arg, a + k, b, index, path) :
		path_in(fn, arg, a, a + k, index, path);
	if (len < 0 || len >= PROOF_MAX_PATH)
		return -1;
	path[len].left = left;
	memset(path[len].hash, 0, LAYOUT_HASH_LEN);
	if (fn != NULL &&
		!(left ? fn(arg, a, a + k, path[len].hash) : fn(arg, a + k, b, path[len].hash)))
		return -1;
	return len + 1;
}

int
merkle_path(merkle_subtree_fn fn, void *arg, uint64_t n, uint64_t index,
			ProofStep *path)
{
	if (index >= n)
		return -1;
	return path_in(fn, arg, 0, n, index, path);
}

/*
 * SUBPROOF(m, D[a:b], whole) of RFC 6962 section 2.1.2: "whole" says that
 * D[a:b] is the old tree itself, whose root the checker already has.
 */
static int
subproof(merkle_subtree_fn fn, void *arg, uint64_t m, uint64_t a, uint64_t b,
		 int whole, uint8_t (*out)[MERKLE_HASH_LEN])
{
	uint64_t	k;
	int			len;

	if (m == b - a)
	{
		if (whole)
			return 0;
		return fn(arg, a, b, out[0]) ? 1 : -1;
	}
	k = merkle_split(b - a);
	if (m <= k)
		len = subproof(fn, arg, m, a, a + k, whole, out);
	else
		len = subproof(fn, arg, m - k, a + k, b, 0, out);
	if (len < 0 || len >= PROOF_MAX_CONSISTENCY ||
		!(m <= k ? fn(arg, a + k, b, out[len]) : fn(arg, a, a + k, out[len])))
		return -1;
	return len + 1;
}

int
merkle_consistency(merkle_subtree_fn fn, void *arg, uint64_t m, uint64_t n,
				   uint8_t (*out)[MERKLE_HASH_LEN])
{
	if (m == 0 || m > n)
		return -1;
	return subproof(fn, arg, m, 0, n, 1, out);
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

/*
 * From a block's hash up the tree of blocks to the digest's root.  The
 * sides must be the ones the block's number gives: a path that reaches
 * the root from another place would prove a block at another height.
 */
static const char *
climb_tree(const RevisionProof *p, const uint8_t *block_hash,
		   const ChainDigest *digest)
{
	ProofStep	expect[PROOF_MAX_PATH];
	uint8_t		hash[LAYOUT_HASH_LEN];
	int			len;

	if (digest->block < 0 || p->tree_size != digest->block + 1)
		return "The tree path is for another tree than the digest's.";
	len = merkle_path(NULL, NULL, (uint64_t) p->tree_size, (uint64_t) p->block_number, expect);
	if (len < 0 || len != p->ntree)
		return "The tree path has the wrong length for the block's place.";
	for (int i = 0; i < len; i++)
		if (expect[i].left != p->tree_path[i].left)
			return "The tree path does not lead up from the block's place.";
	if (!merkle_leaf(block_hash, LAYOUT_HASH_LEN, hash) ||
		!fold(hash, p->tree_path, p->ntree))
		return "SHA-256 failed.";
	if (memcmp(hash, digest->root, LAYOUT_HASH_LEN) != 0)
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
	return climb_tree(p, hash, digest);
}

static int
node_into(uint8_t *acc, const uint8_t *left, const uint8_t *right)
{
	uint8_t		next[MERKLE_HASH_LEN];

	if (!merkle_node(left, right, next))
		return 0;
	memcpy(acc, next, MERKLE_HASH_LEN);
	return 1;
}

/*
 * The check of RFC 9162 section 2.1.4.2: rebuild both roots from the
 * path.  fn and sn walk the last leaf of the old and of the new tree up
 * the levels; where the old tree's edge turns, a hash joins both roots,
 * elsewhere only the new one.
 */
static const char *
consistent(uint64_t m, uint64_t n, const uint8_t *old_root, const uint8_t *new_root,
		   const uint8_t (*path)[MERKLE_HASH_LEN], int npath)
{
	const uint8_t (*list)[MERKLE_HASH_LEN] = path;
	int			nlist = npath;
	uint8_t		fr[MERKLE_HASH_LEN];
	uint8_t		sr[MERKLE_HASH_LEN];
	uint64_t	fn = m - 1;
	uint64_t	sn = n - 1;
	int			i = 1;

	if (m == n)
		return npath == 0 && memcmp(old_root, new_root, LAYOUT_HASH_LEN) == 0 ? NULL :
			"The two digests are of the same block but differ.";
	/* An old tree of a power of two leaves is itself a node of the new one. */
	if ((m & (m - 1)) == 0)
	{
		memcpy(fr, old_root, LAYOUT_HASH_LEN);
		i = 0;
	}
	else if (nlist == 0)
		return "The consistency path is empty.";
	else
		memcpy(fr, list[0], LAYOUT_HASH_LEN);
	memcpy(sr, fr, LAYOUT_HASH_LEN);
	while (fn & 1)
	{
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < nlist; i++)
	{
		if (sn == 0)
			return "The consistency path is too long.";
		if ((fn & 1) || fn == sn)
		{
			if (!node_into(fr, list[i], fr) || !node_into(sr, list[i], sr))
				return "SHA-256 failed.";
			while (!(fn & 1) && fn != 0)
			{
				fn >>= 1;
				sn >>= 1;
			}
		}
		else if (!node_into(sr, sr, list[i]))
			return "SHA-256 failed.";
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return "The consistency path is too short.";
	if (memcmp(fr, old_root, LAYOUT_HASH_LEN) != 0)
		return "The path does not lead to the old digest's root.";
	if (memcmp(sr, new_root, LAYOUT_HASH_LEN) != 0)
		return "The path does not lead to the digest's root.";
	return NULL;
}

const char *
proof_check_consistency(const ConsistencyProof *p, const ChainDigest *digest)
{
	if (p->old.block < 0 || p->old.block > digest->block)
		return "The old digest is newer than the digest.";
	if (p->npath < 0 || p->npath > PROOF_MAX_CONSISTENCY)
		return "The consistency path is too long.";
	if (p->old.block == digest->block &&
		memcmp(p->old.hash, digest->hash, LAYOUT_HASH_LEN) != 0)
		return "The two digests are of the same block but differ.";
	return consistent((uint64_t) p->old.block + 1, (uint64_t) digest->block + 1,
					  p->old.root, digest->root,
					  (const uint8_t (*)[MERKLE_HASH_LEN]) p->path, p->npath);
}
