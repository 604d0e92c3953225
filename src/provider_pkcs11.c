/*-------------------------------------------------------------------------
 *
 * provider_pkcs11.c
 *	  The pkcs11 key provider: an HSM wraps the root key with a
 *	  non-extractable AES key on its token.
 *
 * The provider names a PKCS#11 module (loaded with p11-kit), a token by
 * its label and a file that holds the user PIN; the ledger names the key
 * by its CKA_LABEL.  Wrapping is CKM_AES_GCM on the token with a random
 * 96-bit IV, a 128-bit tag and the node's encryption context as AAD; the
 * wrapped bytes are IV || ciphertext || tag.  A key that is extractable,
 * or that the token does not allow to encrypt and decrypt, is refused.
 *
 * PKCS#11 state does not survive fork, and a module can hang: every use
 * runs in a child process of its own (provider_call.c) that loads the
 * module, opens a session, logs in, does one operation and exits.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <unistd.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#define PKCS11_HINT "Check that the token is present, the key is on it and allowed to encrypt and decrypt, and that the PIN file holds the user PIN."
#define PIN_MAX 256
#define TOKEN_ATTEMPTS 10

static const LedgerProviderOption pkcs11_options[] = {
	{"module", 's', true},
	{"token_label", 's', true},
	{"pin_file", 's', true},
	{"timeout_ms", 'p', false},
	{NULL}
};

typedef struct Pkcs11Args
{
	const char *module;
	const char *token;
	char		pin[PIN_MAX];
	int			pinlen;
	LedgerGcmOp *op;
} Pkcs11Args;

/* In the child: report a PKCS#11 failure and pick the exit code. */
static int
fail(const char *what, CK_RV rv, int code)
{
	fprintf(stderr, "%s: %s (0x%lx)\n", what, p11_kit_strerror(rv), (unsigned long) rv);
	return code;
}

static int
rv_code(CK_RV rv)
{
	switch (rv)
	{
		case CKR_KEY_FUNCTION_NOT_PERMITTED:
		case CKR_KEY_TYPE_INCONSISTENT:
			return 2;
		case CKR_PIN_INCORRECT:
		case CKR_PIN_LOCKED:
		case CKR_PIN_EXPIRED:
			return 4;
		case CKR_ENCRYPTED_DATA_INVALID:
		case CKR_ENCRYPTED_DATA_LEN_RANGE:
			return 5;
		default:
			return 1;
	}
}

/* In the child: the slot of the token labelled "token". */
static bool
find_slot(CK_FUNCTION_LIST *m, const char *token, CK_SLOT_ID *slot)
{
	CK_SLOT_ID	slots[64];
	CK_ULONG	n = lengthof(slots);
	char		padded[32];
	size_t		len = strlen(token);

	if (len > sizeof(padded) || m->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return false;
	memset(padded, ' ', sizeof(padded));
	memcpy(padded, token, len);
	for (CK_ULONG i = 0; i < n; i++)
	{
		CK_TOKEN_INFO info;

		if (m->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
			memcmp(info.label, padded, sizeof(padded)) == 0)
		{
			*slot = slots[i];
			return true;
		}
	}
	return false;
}

/* In the child: the one AES secret key labelled "label", usable as such. */
static int
find_key(CK_FUNCTION_LIST *m, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *key)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_AES;
	CK_ATTRIBUTE find[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &type, sizeof(type)},
		{CKA_LABEL, (void *) label, strlen(label)},
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG	n = 0;
	CK_BBOOL	extractable = CK_TRUE;
	CK_ATTRIBUTE attr = {CKA_EXTRACTABLE, &extractable, sizeof(extractable)};
	CK_RV		rv;

	if ((rv = m->C_FindObjectsInit(s, find, lengthof(find))) != CKR_OK)
		return fail("C_FindObjectsInit", rv, 1);
	rv = m->C_FindObjects(s, found, lengthof(found), &n);
	m->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return fail("C_FindObjects", rv, 1);
	if (n != 1)
	{
		fprintf(stderr, n == 0 ? "no AES key labelled \"%s\" on the token\n" :
				"more than one AES key is labelled \"%s\" on the token\n", label);
		return n == 0 ? 3 : 1;
	}
	if ((rv = m->C_GetAttributeValue(s, found[0], &attr, 1)) != CKR_OK)
		return fail("C_GetAttributeValue", rv, 1);
	if (extractable != CK_FALSE)
	{
		fprintf(stderr, "key \"%s\" is extractable; the provider key must never leave the token\n", label);
		return 1;
	}
	*key = found[0];
	return 0;
}

/* In the child: one encryption or decryption, written to stdout. */
static int
token_crypt(CK_FUNCTION_LIST *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, LedgerGcmOp *op)
{
	CK_GCM_PARAMS gcm = {op->iv, sizeof(op->iv), sizeof(op->iv) * 8,
	(CK_BYTE_PTR) op->aad, op->aadlen, LEDGER_TAG_LEN * 8};
	CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
	CK_BYTE		out[LEDGER_KEY_LEN + LEDGER_TAG_LEN];
	CK_ULONG	outlen = sizeof(out);
	CK_RV		rv;
	int			code = 0;

	if (op->wrap)
	{
		if ((rv = m->C_EncryptInit(s, &mech, key)) != CKR_OK)
			return fail("C_EncryptInit", rv, rv_code(rv));
		rv = m->C_Encrypt(s, (CK_BYTE_PTR) op->in, LEDGER_KEY_LEN, out, &outlen);
		if (rv != CKR_OK || outlen != sizeof(out))
			return fail("C_Encrypt", rv, rv_code(rv));
		if (write(1, out, outlen) != (ssize_t) outlen)
			code = 1;
	}
	else
	{
		if ((rv = m->C_DecryptInit(s, &mech, key)) != CKR_OK)
			return fail("C_DecryptInit", rv, rv_code(rv));
		rv = m->C_Decrypt(s, (CK_BYTE_PTR) op->in, LEDGER_KEY_LEN + LEDGER_TAG_LEN, out, &outlen);
		if (rv != CKR_OK || outlen != LEDGER_KEY_LEN)
			return fail("C_Decrypt", rv, rv == CKR_OK ? 5 : rv_code(rv));
		if (write(1, out, outlen) != (ssize_t) outlen)
			code = 1;
	}
	ledger_wipe(out, sizeof(out));
	return code;
}

/* The child: load the module, log in, find the key, do one operation. */
static int
pkcs11_child(void *arg)
{
	Pkcs11Args *a = arg;
	CK_FUNCTION_LIST *m = p11_kit_module_load(a->module, 0);
	CK_SLOT_ID	slot;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_RV		rv;
	int			code;

	if (m == NULL)
	{
		fprintf(stderr, "could not load PKCS#11 module %s: %s\n", a->module, p11_kit_message());
		return 1;
	}
	/*
	 * A token can be missing for a moment (SoftHSM2 while another process
	 * rewrites its files, a network HSM while it reconnects): look again
	 * a few times, from a fresh initialisation, before saying so.
	 */
	for (int attempt = 0;; attempt++)
	{
		if ((rv = p11_kit_module_initialize(m)) != CKR_OK)
			return fail("C_Initialize", rv, 1);
		if (find_slot(m, a->token, &slot))
			break;
		p11_kit_module_finalize(m);
		if (attempt == TOKEN_ATTEMPTS - 1)
		{
			fprintf(stderr, "no token labelled \"%s\" is present\n", a->token);
			return 3;
		}
		usleep(50 * 1000);
	}
	if ((rv = m->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK)
		return fail("C_OpenSession", rv, 1);
	rv = m->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) a->pin, a->pinlen);
	ledger_wipe(a->pin, sizeof(a->pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		code = fail("C_Login", rv, rv_code(rv) == 1 ? 4 : rv_code(rv));
	else if ((code = find_key(m, s, a->op->key, &key)) == 0)
		code = token_crypt(m, s, key, a->op);
	m->C_Logout(s);
	m->C_CloseSession(s);
	p11_kit_module_finalize(m);
	p11_kit_module_release(m);
	return code;
}

static void
pkcs11_validate(const LedgerProvider *p)
{
	char	   *module = ledger_provider_path_option(p, "module");

	(void) ledger_provider_path_option(p, "pin_file");
	if (access(module, R_OK) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("PKCS#11 module \"%s\" of key provider \"%s\" cannot be read by the server: %m",
						module, p->name)));
	if (strlen(ledger_provider_option(p, "token_label")) > 32)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a PKCS#11 token label has at most 32 characters")));
}

/* One operation on the token, in a child; the result lands in out. */
static void
pkcs11_run(const LedgerProvider *p, LedgerGcmOp *op, uint8 *out, int outlen)
{
	LedgerCall	call = {0};
	Pkcs11Args	a = {0};
	char	   *path = ledger_provider_path_option(p, "pin_file");
	int			len;
	char	   *pin = ledger_provider_read_secret_file(p, "PIN file", path, &len);

	if (pin == NULL)
		ledger_provider_inaccessible(p, PKCS11_HINT, "PIN file \"%s\" does not exist", path);
	while (len > 0 && (pin[len - 1] == '\n' || pin[len - 1] == '\r'))
		len--;
	if (len == 0 || len >= PIN_MAX)
	{
		ledger_wipe(pin, len);
		ledger_provider_inaccessible(p, PKCS11_HINT, "PIN file \"%s\" does not hold a PIN of 1 to %d characters",
									 path, PIN_MAX - 1);
	}
	a.module = ledger_provider_path_option(p, "module");
	a.token = ledger_provider_option(p, "token_label");
	memcpy(a.pin, pin, len);
	a.pinlen = len;
	a.op = op;
	ledger_wipe(pin, len);
	pfree(pin);

	call.output = out;
	call.outmin = call.outcap = outlen;
	PG_TRY();
	{
		ledger_call_provider(p, &call, pkcs11_child, &a, PKCS11_HINT,
							 psprintf("token \"%s\", key \"%s\"", a.token, op->key));
	}
	PG_FINALLY();
	{
		ledger_wipe(a.pin, sizeof(a.pin));
	}
	PG_END_TRY();
}

const LedgerProviderType ledger_pkcs11_provider = {
	.name = "pkcs11",
	.options = pkcs11_options,
	.validate = pkcs11_validate,
	.gcm_run = pkcs11_run,
};
