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

/* A block after the proven one, on the way to the digest. */
typedef struct ProofLink
{
	int64_t		number;
	uint8_t		merkle_root[LAYOUT_HASH_LEN];
} ProofLink;

typedef struct ChainDigest
{
	int64_t		block;
	uint8_t		hash[LAYOUT_HASH_LEN];
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
	int64_t		nchain;
	const ProofLink *chain;
} RevisionProof;

/*
 * The audit path of leaf "index" in the tree over n leaf hashes, leaf
 * first; returns its length, or -1 if index is out of range.
 */
extern int	merkle_path(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n,
						size_t index, ProofStep *path);

/* NULL if the proof leads to the digest, or a sentence saying why not. */
extern const char *proof_check_revision(const RevisionProof *p,
										const ChainDigest *digest);
extern const char *proof_check_consistency(const ChainDigest *old,
										   const ProofLink *chain, int64_t n,
										   const ChainDigest *digest);

#endif							/* LEDGER_LAYOUT_H */
