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

/*
 * Root over n leaf hashes (not data), split RFC 6962 style: the left
 * subtree holds the largest power of two below n.  The empty tree is
 * SHA-256 of nothing.
 */
extern int	merkle_root(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n,
						uint8_t *out);

#endif							/* LEDGER_MERKLE_H */
