/*-------------------------------------------------------------------------
 *
 * proofjson.h
 *	  Reading digests and proofs from JSON text, for the server, the
 *	  ledger-verify tool and the fuzz harness alike.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LEDGER_PROOFJSON_H
#define LEDGER_PROOFJSON_H

#include "layout.h"

typedef enum ProofKind
{
	PROOF_REVISION = 1,
	PROOF_CONSISTENCY
} ProofKind;

typedef struct ParsedProof
{
	ProofKind	kind;
	RevisionProof rev;			/* PROOF_REVISION */
	ConsistencyProof cons;		/* PROOF_CONSISTENCY */
} ParsedProof;

/*
 * Each returns NULL on success, or a sentence saying what is wrong (valid
 * until the next call).
 */
extern const char *digest_parse(const char *text, size_t len, ChainDigest *out);
extern const char *proof_parse(const char *text, size_t len, ParsedProof *out);

/* Check a parsed proof against a digest: NULL if it leads there. */
extern const char *proof_check(const ParsedProof *p, const ChainDigest *digest);

#endif							/* LEDGER_PROOFJSON_H */
