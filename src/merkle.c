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

static size_t
split_point(size_t n)
{
	size_t		k = 1;

	while (k * 2 < n)
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
	k = split_point(n);
	return merkle_root(leaves, k, left) &&
		merkle_root(leaves + k, n - k, right) &&
		merkle_node(left, right, out);
}
