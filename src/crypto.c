/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  The only place that calls OpenSSL: AES-256-GCM sealing and opening,
 *	  SHA-256, random bytes, and wiping secrets.
 *
 * Nothing here keeps key material: callers own their buffers and wipe them.
 * One cipher context per backend is reused, since creating a context costs
 * more than sealing a small row.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static EVP_CIPHER_CTX *cipher_ctx = NULL;

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

static EVP_CIPHER_CTX *
get_cipher_ctx(void)
{
	if (cipher_ctx == NULL)
	{
		cipher_ctx = EVP_CIPHER_CTX_new();
		if (cipher_ctx == NULL)
			crypto_fail("cipher context allocation");
	}
	return cipher_ctx;
}

void
ledger_random_bytes(uint8 *buf, int len)
{
	if (RAND_bytes(buf, len) != 1)
		crypto_fail("random number generation");
}

/*
 * Seal len bytes of plain into out, which must hold len + LEDGER_TAG_LEN.
 */
void
ledger_aead_seal(const uint8 *key, const uint8 *nonce,
				 const uint8 *aad, int aadlen,
				 const uint8 *plain, int len, uint8 *out)
{
	EVP_CIPHER_CTX *ctx = get_cipher_ctx();
	int			n = 0;

	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
		EVP_EncryptUpdate(ctx, NULL, &n, aad, aadlen) != 1 ||
		EVP_EncryptUpdate(ctx, out, &n, plain, len) != 1 ||
		EVP_EncryptFinal_ex(ctx, out + n, &n) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, LEDGER_TAG_LEN,
							out + len) != 1)
		crypto_fail("AES-256-GCM encryption");
}

/*
 * Open len bytes (ciphertext followed by tag) into out, which must hold
 * len - LEDGER_TAG_LEN bytes.  Returns false when authentication fails;
 * out then holds nothing the caller may use.
 */
bool
ledger_aead_open(const uint8 *key, const uint8 *nonce,
				 const uint8 *aad, int aadlen,
				 const uint8 *sealed, int len, uint8 *out)
{
	EVP_CIPHER_CTX *ctx = get_cipher_ctx();
	int			clen = len - LEDGER_TAG_LEN;
	int			n = 0;

	if (clen < 0)
		return false;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
		EVP_DecryptUpdate(ctx, NULL, &n, aad, aadlen) != 1 ||
		EVP_DecryptUpdate(ctx, out, &n, sealed, clen) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, LEDGER_TAG_LEN,
							(void *) (sealed + clen)) != 1)
		crypto_fail("AES-256-GCM decryption");
	if (EVP_DecryptFinal_ex(ctx, out + n, &n) != 1)
	{
		ERR_clear_error();
		ledger_wipe(out, clen);
		return false;
	}
	return true;
}

struct LedgerHash
{
	EVP_MD_CTX *ctx;
};

LedgerHash *
ledger_hash_begin(void)
{
	LedgerHash *h = palloc(sizeof(LedgerHash));

	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		crypto_fail("SHA-256 initialization");
	return h;
}

void
ledger_hash_update(LedgerHash *h, const void *data, size_t len)
{
	if (len > 0 && EVP_DigestUpdate(h->ctx, data, len) != 1)
		crypto_fail("SHA-256 update");
}

void
ledger_hash_final(LedgerHash *h, uint8 *out)
{
	unsigned int n;

	if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1)
		crypto_fail("SHA-256 finalization");
	EVP_MD_CTX_free(h->ctx);
	pfree(h);
}

void
ledger_sha256(const uint8 *data, size_t len, uint8 *out)
{
	if (EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) != 1)
		crypto_fail("SHA-256");
}

/* Wipe a secret in a way the compiler cannot optimise away. */
void
ledger_wipe(void *buf, size_t len)
{
	OPENSSL_cleanse(buf, len);
}
