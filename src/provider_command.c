/*-------------------------------------------------------------------------
 *
 * provider_command.c
 *	  The command key provider: a configured program wraps and unwraps.
 *
 * This is how AWS KMS, Google Cloud KMS, Vault Transit or any other KMS
 * plug in through their own CLIs (examples in contrib/kms/).  The program
 * is run without a shell as
 *
 *		<command> wrap|unwrap <key>
 *
 * with the bytes on stdin and the result on stdout: wrap reads the 32-byte
 * root key and prints the KMS's ciphertext (1 to 4096 bytes); unwrap reads
 * that ciphertext and prints the 32-byte key.  The environment names the
 * encryption context, which the KMS must bind to the ciphertext:
 * LEDGER_NODE_ID, LEDGER_NODE_VERSION and LEDGER_CONTEXT (the same, as the
 * hex AAD), with LEDGER_OPERATION, LEDGER_KEY_ID, LEDGER_KEY_VERSION (if
 * known) and LEDGER_PROVIDER.  Exit codes: 0 done, 2 the key is disabled,
 * 3 no such key, 4 access denied, 5 the ciphertext does not open under
 * this key and context, anything else a failure.  The first line of
 * stderr goes into the error.  docs/key-management.md has the contract.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <unistd.h>

#include "utils/builtins.h"

#define COMMAND_HINT "Check the KMS, the key's state and the credentials of the server's OS user; run the command by hand as that user to see what it says."

static const LedgerProviderOption command_options[] = {
	{"command", 's', true},
	{"timeout_ms", 'p', false},
	{NULL}
};

typedef struct CommandArgs
{
	const char *path;
	const char *operation;
	const char *key;
	char	   *env[8];			/* NAME=value, NULL-terminated */
} CommandArgs;

static int
exec_command(void *arg)
{
	CommandArgs *a = arg;
	char	   *argv[] = {(char *) a->path, (char *) a->operation, (char *) a->key, NULL};

	for (int i = 0; a->env[i] != NULL; i++)
		putenv(a->env[i]);
	execv(a->path, argv);
	fprintf(stderr, "could not run %s: %s\n", a->path, strerror(errno));
	return 127;
}

static void
command_validate(const LedgerProvider *p)
{
	char	   *path = ledger_provider_path_option(p, "command");

	if (access(path, X_OK) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("command \"%s\" of key provider \"%s\" cannot be run by the server: %m",
						path, p->name),
				 errhint("Install the program where the server's OS user can run it.")));
}

/*
 * Run the command; its output, outmin to outcap bytes, lands in out.
 * Returns its length.
 */
static int
run(const LedgerProvider *p, const char *operation, const char *key, int32 version,
	const LedgerKeyContext *cxt, const uint8 *in, int inlen, uint8 *out, int outmin,
	int outcap)
{
	CommandArgs a = {0};
	LedgerCall call = {0};
	char	   *hex = palloc(cxt->aadlen * 2 + 1);
	int			n = 0;

	hex_encode((const char *) cxt->aad, cxt->aadlen, hex);
	hex[cxt->aadlen * 2] = '\0';
	a.path = ledger_provider_path_option(p, "command");
	a.operation = operation;
	a.key = key;
	a.env[n++] = psprintf("LEDGER_OPERATION=%s", operation);
	a.env[n++] = psprintf("LEDGER_PROVIDER=%s", p->name);
	a.env[n++] = psprintf("LEDGER_KEY_ID=%s", key);
	a.env[n++] = psprintf("LEDGER_NODE_ID=%d", cxt->node_id);
	a.env[n++] = psprintf("LEDGER_NODE_VERSION=%d", cxt->node_version);
	a.env[n++] = psprintf("LEDGER_CONTEXT=%s", hex);
	if (version != 0)
		a.env[n++] = psprintf("LEDGER_KEY_VERSION=%d", version);
	call.input = in;
	call.inlen = inlen;
	call.output = out;
	call.outmin = outmin;
	call.outcap = outcap;
	ledger_call_provider(p, &call, exec_command, &a, COMMAND_HINT,
						 psprintf("%s %s of key %s", a.path, operation, key));
	return call.outlen;
}

static bytea *
command_wrap(const LedgerProvider *p, const char *key, bool may_create,
			 const LedgerKeyContext *cxt, const uint8 *plain, LedgerProviderRef *ref)
{
	bytea	   *wrapped = palloc(VARHDRSZ + LEDGER_PROVIDER_WRAPPED_MAX);
	int			len;

	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key provider \"%s\" needs a key to wrap with", p->name),
				 errhint("Name the KMS key: ledger_rotate_key('provider_key', '<key>', '%s').", p->name)));
	len = run(p, "wrap", key, 0, cxt, plain, LEDGER_KEY_LEN,
			  (uint8 *) VARDATA(wrapped), 1, LEDGER_PROVIDER_WRAPPED_MAX);
	SET_VARSIZE(wrapped, VARHDRSZ + len);
	strlcpy(ref->key_id, key, sizeof(ref->key_id));
	return wrapped;
}

static void
command_unwrap(const LedgerProvider *p, const LedgerProviderRef *ref,
			   const LedgerKeyContext *cxt, const uint8 *wrapped, int len, uint8 *plain)
{
	(void) run(p, "unwrap", ref->key_id, ref->version, cxt, wrapped, len, plain,
			   LEDGER_KEY_LEN, LEDGER_KEY_LEN);
}

const LedgerProviderType ledger_command_provider = {
	.name = "command",
	.options = command_options,
	.validate = command_validate,
	.wrap = command_wrap,
	.unwrap = command_unwrap,
};
