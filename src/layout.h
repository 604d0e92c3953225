/*-------------------------------------------------------------------------
 *
 * layout.h
 *	  The hashed byte layouts of docs/verification.md, and the checking of
 *	  proofs against a digest.
 *
 * Nothing here depends on the server: the extension, the ledger-verify
 * tool and the fuzz harness compile the same code.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LEDGER_LAYOUT_H
#define LEDGER_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "merkle.h"

#define LAYOUT_HASH_LEN MERKLE_HASH_LEN

/* Longest Merkle path accepted: trees hold fewer than 2^63 leaves. */
#define PROOF_MAX_PATH	63

extern int	layout_revision_hash(int64_t table_id, int64_t doc_id, int32_t version,
								 char op, const uint8_t *data_hash, uint8_t *out);
extern int	layout_entry_hash(int64_t seq, int64_t committed_at_us,
							  int32_t revision_count, const uint8_t *merkle_root,
							  uint8_t *out);
extern int	layout_block_hash(const uint8_t *previous_hash, int64_t number,
							  const uint8_t *merkle_root, uint8_t *out);

/* One step of a Merkle path: the sibling, and whether it is on the left. */
typedef struct ProofStep
{
	int			left;
	uint8_t		hash[LAYOUT_HASH_LEN];
} ProofStep;

typedef struct ChainDigest
{
	int64_t		block;
	uint8_t		hash[LAYOUT_HASH_LEN];	/* the block's hash */
	uint8_t		root[LAYOUT_HASH_LEN];	/* the tree over blocks 0 .. block */
} ChainDigest;

typedef struct RevisionProof
{
	int64_t		table_id;
	int64_t		doc_id;
	int32_t		version;
	char		op;				/* 'I', 'U' or 'D' */
	uint8_t		data_hash[LAYOUT_HASH_LEN];	/* zeros for 'D' */
	int64_t		seq;
	int64_t		committed_at_us;
	int32_t		revision_count;
	int			ntx;
	ProofStep	tx_path[PROOF_MAX_PATH];
	int64_t		block_number;
	uint8_t		previous_hash[LAYOUT_HASH_LEN];
	int			nblock;
	ProofStep	block_path[PROOF_MAX_PATH];
	int64_t		tree_size;		/* leaves of the block tree: digest block + 1 */
	int			ntree;
	ProofStep	tree_path[PROOF_MAX_PATH];
} RevisionProof;

/* A consistency path has at most one hash more than an audit path. */
#define PROOF_MAX_CONSISTENCY	(PROOF_MAX_PATH + 1)

typedef struct ConsistencyProof
{
	ChainDigest old;
	int			npath;
	uint8_t		path[PROOF_MAX_CONSISTENCY][LAYOUT_HASH_LEN];
} ConsistencyProof;

/*
 * RFC 6962 PATH(index, D[n]), leaf first, from a source of subtree hashes;
 * returns its length, or -1 if index is out of range or a hash cannot be
 * had.  With a NULL source only the sides are filled in: they are a
 * function of index and n alone.
 */
extern int	merkle_path(merkle_subtree_fn fn, void *arg, uint64_t n,
						uint64_t index, ProofStep *path);

/*
 * RFC 6962 PROOF(m, D[n]): the hashes that show the tree of the first m
 * leaves is a prefix of the tree of n; returns their number, or -1.
 */
extern int	merkle_consistency(merkle_subtree_fn fn, void *arg, uint64_t m,
							   uint64_t n, uint8_t (*out)[MERKLE_HASH_LEN]);

/* NULL if the proof leads to the digest, or a sentence saying why not. */
extern const char *proof_check_revision(const RevisionProof *p,
										const ChainDigest *digest);
extern const char *proof_check_consistency(const ConsistencyProof *p,
										   const ChainDigest *digest);

#endif							/* LEDGER_LAYOUT_H */
