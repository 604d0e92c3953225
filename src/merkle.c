/*-------------------------------------------------------------------------
 *
 * merkle.c
 *	  Merkle tree hashing, in the style of RFC 6962 section 2.1.
 *
 * Leaves and inner nodes hash under different one-byte prefixes, so a
 * leaf can never pass for a node.  An odd node is never paired with a
 * copy of itself: a tree of n leaves splits into a perfect left subtree
 * of the largest power of two below n and the rest on the right.
 *
 *-------------------------------------------------------------------------
 */
#include "merkle.h"

#include <string.h>

#include <openssl/evp.h>

/*
 * SHA-256 of a ‖ b.  The algorithm is fetched once and one context is
 * reused: OpenSSL 3 otherwise looks the algorithm up by name on every
 * call, which cost more than the hashing (perf, ledger_verify('chain')).
 * Callers are single-threaded: a backend, or the ledger-verify tool.
 */
static int
sha256_two(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
		   uint8_t *out)
{
	static EVP_MD *md = NULL;
	static EVP_MD_CTX *ctx = NULL;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (ctx == NULL)
		ctx = EVP_MD_CTX_new();
	return md != NULL && ctx != NULL &&
		EVP_DigestInit_ex2(ctx, md, NULL) == 1 &&
		EVP_DigestUpdate(ctx, a, alen) == 1 &&
		(blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
		EVP_DigestFinal_ex(ctx, out, NULL) == 1;
}

int
merkle_sha256(const uint8_t *data, size_t len, uint8_t *out)
{
	return sha256_two(data, len, NULL, 0, out);
}

int
merkle_leaf(const uint8_t *data, size_t len, uint8_t *out)
{
	static const uint8_t prefix = 0x00;

	return sha256_two(&prefix, 1, data, len, out);
}

int
merkle_node(const uint8_t *left, const uint8_t *right, uint8_t *out)
{
	uint8_t		buf[1 + 2 * MERKLE_HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, MERKLE_HASH_LEN);
	memcpy(buf + 1 + MERKLE_HASH_LEN, right, MERKLE_HASH_LEN);
	return merkle_sha256(buf, sizeof(buf), out);
}

uint64_t
merkle_split(uint64_t n)
{
	uint64_t	k = 1;

	while (k < n - k)
		k *= 2;
	return k;
}

int
merkle_root(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, uint8_t *out)
{
	uint8_t		left[MERKLE_HASH_LEN];
	uint8_t		right[MERKLE_HASH_LEN];
	size_t		k;

	if (n == 0)
		return merkle_sha256((const uint8_t *) "", 0, out);
	if (n == 1)
	{
		memcpy(out, leaves[0], MERKLE_HASH_LEN);
		return 1;
	}
	k = merkle_split(n);
	return merkle_root(leaves, k, left) &&
		merkle_root(leaves + k, n - k, right) &&
		merkle_node(left, right, out);
}

static void
subtrees_in(uint64_t start, uint64_t end, int depth, uint64_t (*ranges)[2], int *n)
{
	uint64_t	k;

	if (depth == 0 || end - start < 2)
	{
		ranges[*n][0] = start;
		ranges[(*n)++][1] = end;
		return;
	}
	k = merkle_split(end - start);
	subtrees_in(start, start + k, depth - 1, ranges, n);
	subtrees_in(start + k, end, depth - 1, ranges, n);
}

int
merkle_subtrees(uint64_t n, int depth, uint64_t (*ranges)[2])
{
	int			count = 0;

	subtrees_in(0, n, depth, ranges, &count);
	return count;
}

/* Mirrors subtrees_in(), taking the next subtree root where it stops. */
static int
root_of_subtrees_in(uint64_t size, int depth, const uint8_t (*roots)[MERKLE_HASH_LEN],
					int *next, uint8_t *out)
{
	uint8_t		left[MERKLE_HASH_LEN];
	uint8_t		right[MERKLE_HASH_LEN];
	uint64_t	k;

	if (depth == 0 || size < 2)
	{
		memcpy(out, roots[(*next)++], MERKLE_HASH_LEN);
		return 1;
	}
	k = merkle_split(size);
	return root_of_subtrees_in(k, depth - 1, roots, next, left) &&
		root_of_subtrees_in(size - k, depth - 1, roots, next, right) &&
		merkle_node(left, right, out);
}

int
merkle_root_of_subtrees(uint64_t n, int depth, const uint8_t (*roots)[MERKLE_HASH_LEN],
						uint8_t *out)
{
	int			next = 0;

	return root_of_subtrees_in(n, depth, roots, &next, out);
}

int
merkle_array_subtree(void *arg, uint64_t start, uint64_t end, uint8_t *out)
{
	const uint8_t (*leaves)[MERKLE_HASH_LEN] = arg;

	return start < end && merkle_root(leaves + start, end - start, out);
}

int
merkle_frontier_push(MerkleFrontier *f, const uint8_t *leaf,
					 uint8_t (*nodes)[MERKLE_HASH_LEN])
{
	int			n = 1;

	if (f->npeaks >= MERKLE_MAX_LEVELS || f->size == UINT64_MAX)
		return -1;
	memcpy(nodes[0], leaf, MERKLE_HASH_LEN);
	/* Each one bit at the bottom of the size is a peak as tall as ours. */
	for (uint64_t s = f->size; s & 1; s >>= 1, n++)
	{
		if (!merkle_node(f->peaks[--f->npeaks], nodes[n - 1], nodes[n]))
			return -1;
	}
	memcpy(f->peaks[f->npeaks++], nodes[n - 1], MERKLE_HASH_LEN);
	f->size++;
	return n;
}

/* RFC 6962 splits off the largest power of two, so the peaks fold right to left. */
int
merkle_frontier_root(const MerkleFrontier *f, uint8_t *out)
{
	if (f->npeaks == 0)
		return merkle_sha256((const uint8_t *) "", 0, out);
	memcpy(out, f->peaks[f->npeaks - 1], MERKLE_HASH_LEN);
	for (int i = f->npeaks - 2; i >= 0; i--)
	{
		uint8_t		next[MERKLE_HASH_LEN];

		if (!merkle_node(f->peaks[i], out, next))
			return 0;
		memcpy(out, next, MERKLE_HASH_LEN);
	}
	return 1;
}
