/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  The only place that calls OpenSSL: AES-256-GCM sealing and opening,
 *	  SHA-256, random bytes, and wiping secrets.
 *
 * A LedgerCipher is an AES-256-GCM context with its key schedule already
 * computed; the key cache keeps one per data key, so sealing a row costs a
 * nonce change, not a key setup.  Algorithms are fetched from OpenSSL's
 * provider once per backend: fetching them per call costs more than
 * sealing a small row.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "utils/memutils.h"

struct LedgerCipher
{
	EVP_CIPHER_CTX *ctx;
};

typedef struct LedgerHash
{
	EVP_MD_CTX *ctx;
	bool		in_use;
} LedgerHash;

static EVP_CIPHER *aes_gcm = NULL;
static EVP_MD *sha256 = NULL;
static LedgerHash shared_hash;

static void crypto_fail(const char *what) pg_attribute_noreturn();

static void
crypto_fail(const char *what)
{
	unsigned long code = ERR_get_error();
	char		buf[256];

	ERR_error_string_n(code, buf, sizeof(buf));
	ERR_clear_error();
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("ledger: OpenSSL %s failed", what),
			 errdetail("%s", buf)));
}

static void
fetch_algorithms(void)
{
	if (aes_gcm == NULL &&
		(aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL)
		crypto_fail("AES-256-GCM lookup");
	if (sha256 == NULL &&
		(sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		crypto_fail("SHA-256 lookup");
}

void
ledger_random_bytes(uint8 *buf, int len)
{
	if (RAND_bytes(buf, len) != 1)
		crypto_fail("random number generation");
}

LedgerCipher *
ledger_cipher_create(const uint8 *key)
{
	LedgerCipher *c;

	fetch_algorithms();
	c = MemoryContextAlloc(TopMemoryContext, sizeof(LedgerCipher));
	c->ctx = EVP_CIPHER_CTX_new();
	if (c->ctx == NULL ||
		EVP_CipherInit_ex2(c->ctx, aes_gcm, key, NULL, 1, NULL) != 1)
	{
		EVP_CIPHER_CTX_free(c->ctx);
		pfree(c);
		crypto_fail("AES-256-GCM key setup");
	}
	return c;
}

/* EVP_CIPHER_CTX_free cleanses the key schedule. */
void
ledger_cipher_destroy(LedgerCipher *c)
{
	if (c == NULL)
		return;
	EVP_CIPHER_CTX_free(c->ctx);
	pfree(c);
}

/*
 * Seal len bytes of plain into out, which must hold len + LEDGER_TAG_LEN.
 */
void
ledger_cipher_seal(LedgerCipher *c, const uint8 *nonce,
				   const uint8 *aad, int aadlen,
				   const uint8 *plain, int len, uint8 *out)
{
	int			n = 0;

	if (EVP_CipherInit_ex2(c->ctx, NULL, NULL, nonce, 1, NULL) != 1 ||
		EVP_CipherUpdate(c->ctx, NULL, &n, aad, aadlen) != 1 ||
		EVP_CipherUpdate(c->ctx, out, &n, plain, len) != 1 ||
		EVP_CipherFinal_ex(c->ctx, out + n, &n) != 1 ||
		EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_GET_TAG, LEDGER_TAG_LEN,
							out + len) != 1)
		crypto_fail("AES-256-GCM encryption");
}

/*
 * Open len bytes (ciphertext followed by tag) into out, which must hold
 * len - LEDGER_TAG_LEN bytes.  Returns false when authentication fails;
 * out is then wiped.
 */
bool
ledger_cipher_open(LedgerCipher *c, const uint8 *nonce,
				   const uint8 *aad, int aadlen,
				   const uint8 *sealed, int len, uint8 *out)
{
	int			clen = len - LEDGER_TAG_LEN;
	int			n = 0;

	if (clen < 0)
		return false;
	if (EVP_CipherInit_ex2(c->ctx, NULL, NULL, nonce, 0, NULL) != 1 ||
		EVP_CipherUpdate(c->ctx, NULL, &n, aad, aadlen) != 1 ||
		EVP_CipherUpdate(c->ctx, out, &n, sealed, clen) != 1 ||
		EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_TAG, LEDGER_TAG_LEN,
							(void *) (sealed + clen)) != 1)
		crypto_fail("AES-256-GCM decryption");
	if (EVP_CipherFinal_ex(c->ctx, out + n, &n) != 1)
	{
		ERR_clear_error();
		ledger_wipe(out, clen);
		return false;
	}
	return true;
}

/* One-shot sealing, for the rare wrapping of keys. */
void
ledger_aead_seal(const uint8 *key, const uint8 *nonce,
				 const uint8 *aad, int aadlen,
				 const uint8 *plain, int len, uint8 *out)
{
	LedgerCipher *c = ledger_cipher_create(key);

	PG_TRY();
	{
		ledger_cipher_seal(c, nonce, aad, aadlen, plain, len, out);
	}
	PG_FINALLY();
	{
		ledger_cipher_destroy(c);
	}
	PG_END_TRY();
}

bool
ledger_aead_open(const uint8 *key, const uint8 *nonce,
				 const uint8 *aad, int aadlen,
				 const uint8 *sealed, int len, uint8 *out)
{
	LedgerCipher *c = ledger_cipher_create(key);
	volatile bool ok = false;

	PG_TRY();
	{
		ok = ledger_cipher_open(c, nonce, aad, aadlen, sealed, len, out);
	}
	PG_FINALLY();
	{
		ledger_cipher_destroy(c);
	}
	PG_END_TRY();
	return ok;
}

/*
 * Incremental SHA-256.  Hashes are never nested, so one context serves
 * them all; a nested use gets a context of its own.
 */
static LedgerHash *
hash_begin(void)
{
	LedgerHash *h = &shared_hash;

	fetch_algorithms();
	if (h->in_use)
	{
		h = palloc0(sizeof(LedgerHash));
		h->ctx = EVP_MD_CTX_new();
	}
	else if (h->ctx == NULL)
		h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || EVP_DigestInit_ex2(h->ctx, sha256, NULL) != 1)
		crypto_fail("SHA-256 initialization");
	h->in_use = true;
	return h;
}

static void
hash_update(LedgerHash *h, const void *data, size_t len)
{
	if (len > 0 && EVP_DigestUpdate(h->ctx, data, len) != 1)
		crypto_fail("SHA-256 update");
}

static void
hash_final(LedgerHash *h, uint8 *out)
{
	unsigned int n;

	h->in_use = false;
	if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1)
		crypto_fail("SHA-256 finalization");
	if (h != &shared_hash)
	{
		EVP_MD_CTX_free(h->ctx);
		pfree(h);
	}
}

void
ledger_sha256(const uint8 *data, size_t len, uint8 *out)
{
	LedgerHash *h = hash_begin();

	hash_update(h, data, len);
	hash_final(h, out);
}

/* Wipe a secret in a way the compiler cannot optimise away. */
void
ledger_wipe(void *buf, size_t len)
{
	OPENSSL_cleanse(buf, len);
}
