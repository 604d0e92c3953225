/*-------------------------------------------------------------------------
 *
 * merkle.h
 *	  Merkle tree hashing shared by the server and the ledger-verify tool.
 *
 * Nothing here depends on the server, so the offline auditor compiles the
 * same file.  docs/verification.md gives the byte layouts.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LEDGER_MERKLE_H
#define LEDGER_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32

/* SHA-256 of a buffer; false only if OpenSSL fails. */
extern int	merkle_sha256(const uint8_t *data, size_t len, uint8_t *out);

/* Leaf hash: SHA-256(0x00 || data). */
extern int	merkle_leaf(const uint8_t *data, size_t len, uint8_t *out);

/* Inner node: SHA-256(0x01 || left || right). */
extern int	merkle_node(const uint8_t *left, const uint8_t *right, uint8_t *out);

/* The largest power of two below n (n >= 2): where RFC 6962 splits a tree. */
extern uint64_t merkle_split(uint64_t n);

/*
 * Root over n leaf hashes (not data), split RFC 6962 style: the left
 * subtree holds the largest power of two below n.  The empty tree is
 * SHA-256 of nothing.
 */
extern int	merkle_root(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n,
						uint8_t *out);

/*
 * The subtrees "depth" levels below the root of a tree of n >= 1 leaves,
 * left to right, as ranges [start, end) (a single leaf ends its branch
 * sooner): a root can be computed from theirs, each on its own.  Returns
 * their number, at most 2^depth.
 */
extern int	merkle_subtrees(uint64_t n, int depth, uint64_t (*ranges)[2]);

/* The root of a tree of n leaves from the roots of its merkle_subtrees(). */
extern int	merkle_root_of_subtrees(uint64_t n, int depth,
									const uint8_t (*roots)[MERKLE_HASH_LEN],
									uint8_t *out);

/*
 * A source of subtree hashes: the root over leaves [start, end) of some
 * tree, into out; false if it cannot be had.  Paths and consistency proofs
 * (layout.h) are built from one, so that a tree held as an array and a
 * tree held as stored nodes share the code.
 */
typedef int (*merkle_subtree_fn) (void *arg, uint64_t start, uint64_t end,
								  uint8_t *out);

/* A merkle_subtree_fn over an array of leaf hashes (arg). */
extern int	merkle_array_subtree(void *arg, uint64_t start, uint64_t end,
								 uint8_t *out);

/*
 * A tree that grows one leaf at a time, held as its peaks: the roots of
 * the perfect subtrees that the binary digits of its size split it into,
 * largest first.  Appending a leaf completes one perfect subtree at each
 * level from 0 up to the number of trailing one bits of the old size;
 * those are the nodes that end at the new leaf.
 */
#define MERKLE_MAX_LEVELS	64

typedef struct MerkleFrontier
{
	uint64_t	size;
	int			npeaks;
	uint8_t		peaks[MERKLE_MAX_LEVELS][MERKLE_HASH_LEN];
} MerkleFrontier;

/*
 * Append a leaf hash.  nodes[0 .. return value) receive the perfect
 * subtrees that end at the new leaf, level 0 (the leaf) first; -1 on
 * failure.
 */
extern int	merkle_frontier_push(MerkleFrontier *f, const uint8_t *leaf,
								 uint8_t (*nodes)[MERKLE_HASH_LEN]);

/* The root of the tree so far (the empty tree's, SHA-256 of nothing). */
extern int	merkle_frontier_root(const MerkleFrontier *f, uint8_t *out);

#endif							/* LEDGER_MERKLE_H */
