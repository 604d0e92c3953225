/*-------------------------------------------------------------------------
 *
 * fuzz_proof.c
 *	  libFuzzer target for the proof and digest reader and the proof check
 *	  (src/proofjson.c, src/layout.c), the code ledger_verify_proof() and
 *	  ledger-verify run on untrusted input.
 *
 *	  make fuzz [FUZZ_SECONDS=60]
 *
 * The input is read both as a digest and as a proof; a proof that parses
 * is checked against a fixed digest.  Crashes, leaks and undefined
 * behaviour are what the sanitizers report.  A proof of anything against
 * an all-zero digest must never check, that would be a forgery, except
 * the empty consistency proof from that very digest to itself.
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "proofjson.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ChainDigest digest;
	ChainDigest zero = {.block = 3};
	ParsedProof proof;

	(void) digest_parse((const char *) data, size, &digest);
	if (proof_parse((const char *) data, size, &proof) == NULL)
	{
		int			to_itself = proof.kind == PROOF_CONSISTENCY &&
			memcmp(&proof.cons.old, &zero, sizeof(zero)) == 0;

		if (proof_check(&proof, &zero) == NULL && !to_itself)
			abort();
	}
	return 0;
}
