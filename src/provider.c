/*-------------------------------------------------------------------------
 *
 * provider.c
 *	  Key providers: the registry in ledger.providers, its SQL functions,
 *	  and the dispatch of wraps, unwraps and key checks to a provider type.
 *
 * A provider has a name, a type (file, command, pkcs11, kmip) and options: a
 * JSON object of strings and positive integers, checked against what the
 * type takes.  Options never hold secrets; a PIN lives in a file that the
 * options name, read with the same checks as the keyring file.  The
 * provider key itself never enters the database: each type only wraps
 * and unwraps the root key with it.
 *
 * CREATE EXTENSION registers the embedded provider "file", which reads
 * ledger.keyring_file unless its options name another keyring.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(ledger_create_provider);
PG_FUNCTION_INFO_V1(ledger_alter_provider);
PG_FUNCTION_INFO_V1(ledger_drop_provider);

/* Columns of ledger.providers (sql/ledger--0.1.sql). */
enum
{
	Anum_provider_name = 1,
	Anum_provider_type,
	Anum_provider_options,
	Anum_provider_created_at,
	Anum_provider_created_by,
	Anum_provider_changed_at,
	Natts_providers = Anum_provider_changed_at
};

#define SECRET_FILE_MAX		(64 * 1024)
#define INACCESSIBLE_MSG	"ledger does not have access to its provider key"

static const LedgerProviderType *const provider_types[] = {
	&ledger_file_provider,
	&ledger_command_provider,
	&ledger_pkcs11_provider,
	&ledger_kmip_provider,
};

static const LedgerProviderType *
find_type(const char *name)
{
	for (int i = 0; i < lengthof(provider_types); i++)
		if (strcmp(provider_types[i]->name, name) == 0)
			return provider_types[i];
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown key provider type \"%s\"", name),
			 errhint("Use 'file', 'command', 'pkcs11' or 'kmip'.")));
	return NULL;				/* keep the compiler quiet */
}

static const LedgerProviderOption *
find_option(const LedgerProviderType *type, const char *name)
{
	for (const LedgerProviderOption *o = type->options; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

static char *
option_list(const LedgerProviderType *type)
{
	StringInfoData s;

	initStringInfo(&s);
	for (const LedgerProviderOption *o = type->options; o->name != NULL; o++)
		appendStringInfo(&s, "%s%s", s.len ? ", " : "", o->name);
	return s.len ? s.data : "none";
}

/* Check one option's value against its kind; "value" is its JSON value. */
static void
check_option(const LedgerProviderType *type, const char *name, JsonbValue *value,
			 const char *text)
{
	const LedgerProviderOption *o = find_option(type, name);
	char	   *end;
	long		n;

	if (o == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key provider type \"%s\" has no option \"%s\"", type->name, name),
				 errdetail("Its options are: %s.", option_list(type)),
				 errhint("Secrets such as a PIN are never options: name a file that holds them.")));
	if (o->kind == 's' && (value->type != jbvString || text[0] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" of key provider type \"%s\" must be a non-empty string",
						name, type->name)));
	errno = 0;
	if (o->kind == 'p' &&
		(value->type != jbvNumeric || (n = strtol(text, &end, 10)) <= 0 ||
		 *end != '\0' || errno != 0 || n > INT_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" of key provider type \"%s\" must be a positive integer",
						name, type->name)));
}

/*
 * Read a provider's options out of its JSON object; with "validate", check
 * them against its type first, as CREATE and ALTER do.
 */
static void
parse_options(Jsonb *jb, LedgerProvider *p, bool validate)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	int			cap;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key provider options must be a JSON object")));
	cap = Max(JB_ROOT_COUNT(jb), 1);
	p->option_names = palloc0(sizeof(char *) * cap);
	p->option_values = palloc0(sizeof(char *) * cap);
	p->noptions = 0;
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *text;

		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		if (tok != WJB_VALUE)
			continue;
		if (v.type == jbvString)
			text = pnstrdup(v.val.string.val, v.val.string.len);
		else if (v.type == jbvNumeric)
			text = DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v.val.numeric)));
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" of a key provider must be a string or a number", key)));
		if (validate)
			check_option(p->type, key, &v, text);
		p->option_names[p->noptions] = key;
		p->option_values[p->noptions++] = text;
	}
	if (!validate)
		return;
	for (const LedgerProviderOption *o = p->type->options; o->name != NULL; o++)
		if (o->required && ledger_provider_option(p, o->name) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key provider type \"%s\" needs option \"%s\"", p->type->name, o->name)));
	if (p->type->validate)
		p->type->validate(p);
}

const char *
ledger_provider_option(const LedgerProvider *p, const char *name)
{
	for (int i = 0; i < p->noptions; i++)
		if (strcmp(p->option_names[i], name) == 0)
			return p->option_values[i];
	return NULL;
}

int
ledger_provider_int_option(const LedgerProvider *p, const char *name, int dflt)
{
	const char *v = ledger_provider_option(p, name);

	return v ? atoi(v) : dflt;
}

/* A path option, which must be absolute: the server's cwd is no anchor. */
char *
ledger_provider_path_option(const LedgerProvider *p, const char *name)
{
	const char *v = ledger_provider_option(p, name);
	char	   *path;

	if (v == NULL)
		return NULL;
	if (!is_absolute_path(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" of key provider \"%s\" must be an absolute path", name, p->name)));
	path = pstrdup(v);
	canonicalize_path(path);
	return path;
}

/* The one error of an unusable provider key: LD001, naming the provider. */
void
ledger_provider_inaccessible(const LedgerProvider *p, const char *hint,
							 const char *fmt,...)
{
	char		detail[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(ERRCODE_LEDGER_KEY_INACCESSIBLE),
			 errmsg(INACCESSIBLE_MSG),
			 errdetail("Key provider \"%s\" (%s): %s.", p->name, p->type->name, detail),
			 errhint("%s", hint)));
}

/* A secret inside the data directory would travel with every backup. */
static void
check_outside_data_directory(const char *path)
{
	char		datadir[PATH_MAX];
	char		dir[PATH_MAX];
	char	   *dirpart = pstrdup(path);

	get_parent_directory(dirpart);
	if (realpath(DataDir, datadir) == NULL ||
		realpath(dirpart[0] ? dirpart : ".", dir) == NULL)
		return;					/* reported by the open that follows */
	if (path_is_prefix_of_path(datadir, dir))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file \"%s\" of a key provider is inside the data directory", path),
				 errdetail("A file in the data directory is copied into every base backup along with the data it protects."),
				 errhint("Move the file outside the data directory and point the provider at it.")));
}

/*
 * Read a file that holds a secret ("what": a keyring file, a PIN file),
 * which must lie outside the data directory, be owned by the server's
 * user, have mode 0600 or stricter and hold at most 64 kB.  Returns NULL if it does not exist; every other problem is an
 * error.  The caller wipes and frees what it returns.
 */
char *
ledger_provider_read_secret_file(const LedgerProvider *p, const char *what,
								 const char *path, int *len)
{
	const char *hint = "Restore the file with mode 0600, owned by the server's OS user.";
	int			fd;
	struct stat st;
	char	   *text;
	ssize_t		n;

	check_outside_data_directory(path);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return NULL;
		ledger_provider_inaccessible(p, hint, "%s \"%s\": %s", what, path, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > SECRET_FILE_MAX)
	{
		CloseTransientFile(fd);
		ledger_provider_inaccessible(p, hint, "%s \"%s\" is not a regular file of at most 64 kB",
									 what, path);
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_uid != geteuid())
	{
		CloseTransientFile(fd);
		ereport(ERROR,
				(errcode(ERRCODE_LEDGER_KEY_INACCESSIBLE),
				 errmsg("%s \"%s\" is accessible to other users", what, path),
				 errdetail("It must be owned by the server's OS user and have mode 0600 or stricter."),
				 errhint("Run: chmod 0600 %s", path)));
	}
	text = palloc0(st.st_size + 1);
	n = read(fd, text, st.st_size);
	CloseTransientFile(fd);
	if (n != st.st_size)
	{
		ledger_wipe(text, st.st_size);
		ledger_provider_inaccessible(p, hint, "%s \"%s\" could not be read completely", what, path);
	}
	*len = (int) n;
	return text;
}

/* ------------------------------------------------------------------------
 * The registry
 * ------------------------------------------------------------------------
 */

static HeapTuple
scan_provider(Relation rel, Snapshot snap, const char *name)
{
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, snap, 0, NULL);
	HeapTuple	tup,
				found = NULL;
	bool		isnull;

	while ((tup = systable_getnext(scan)) != NULL)
	{
		Datum		d = heap_getattr(tup, Anum_provider_name, RelationGetDescr(rel), &isnull);

		if (!isnull && strcmp(TextDatumGetCString(d), name) == 0)
		{
			found = heap_copytuple(tup);
			break;
		}
	}
	systable_endscan(scan);
	return found;
}

/* The row of provider "name", or NULL; rel is open. */
static HeapTuple
provider_row(Relation rel, const char *name)
{
	HeapTuple	tup = scan_provider(rel, ledger_lookup_snapshot(rel), name);

	return tup ? tup : scan_provider(rel, SnapshotSelf, name);
}

static HeapTuple
existing_provider_row(Relation rel, const char *name)
{
	HeapTuple	tup = provider_row(rel, name);

	if (tup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("key provider \"%s\" does not exist", name),
				 errhint("ledger.providers lists the providers; ledger_create_provider() adds one.")));
	return tup;
}

static LedgerProvider *
provider_from_row(HeapTuple tup, TupleDesc desc)
{
	LedgerProvider *p = palloc0(sizeof(LedgerProvider));
	bool		isnull;

	strlcpy(p->name, TextDatumGetCString(heap_getattr(tup, Anum_provider_name, desc, &isnull)),
			sizeof(p->name));
	p->type = find_type(TextDatumGetCString(heap_getattr(tup, Anum_provider_type, desc, &isnull)));
	parse_options(DatumGetJsonbP(heap_getattr(tup, Anum_provider_options, desc, &isnull)),
				  p, false);
	return p;
}

static LedgerProvider *
lookup_provider(const char *name)
{
	Relation	rel = table_open(ledger_relation_oid("providers"), AccessShareLock);
	LedgerProvider *p = provider_from_row(existing_provider_row(rel, name),
										  RelationGetDescr(rel));
	table_close(rel, NoLock);
	return p;
}

/* ------------------------------------------------------------------------
 * Providers that seal with AES-GCM on their side (pkcs11, kmip): the IV
 * is drawn here, and the wrapped bytes are IV || ciphertext || tag
 * ------------------------------------------------------------------------
 */

static bytea *
gcm_wrap(const LedgerProvider *p, const char *key, const LedgerKeyContext *cxt,
		 const uint8 *plain, LedgerProviderRef *ref)
{
	LedgerGcmOp op = {0};
	bytea	   *wrapped = palloc(VARHDRSZ + LEDGER_GCM_WRAPPED_LEN);
	uint8	   *w = (uint8 *) VARDATA(wrapped);

	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key provider \"%s\" needs a key to wrap with", p->name),
				 errhint("Name the key: ledger_rotate_key('provider_key', '<key>', '%s').", p->name)));
	op.wrap = true;
	op.key = key;
	ledger_random_bytes(op.iv, sizeof(op.iv));
	op.aad = cxt->aad;
	op.aadlen = cxt->aadlen;
	op.in = plain;
	p->type->gcm_run(p, &op, w + LEDGER_NONCE_LEN, LEDGER_KEY_LEN + LEDGER_TAG_LEN);
	memcpy(w, op.iv, LEDGER_NONCE_LEN);
	SET_VARSIZE(wrapped, VARHDRSZ + LEDGER_GCM_WRAPPED_LEN);
	strlcpy(ref->key_id, key, sizeof(ref->key_id));
	return wrapped;
}

static void
gcm_unwrap(const LedgerProvider *p, const LedgerProviderRef *ref,
		   const LedgerKeyContext *cxt, const uint8 *wrapped, int len, uint8 *plain)
{
	LedgerGcmOp op = {0};

	if (len != LEDGER_GCM_WRAPPED_LEN)
		ledger_provider_inaccessible(p, "Restore ledger.keys from a backup.",
									 "the wrapped root key has %d bytes, not %d",
									 len, LEDGER_GCM_WRAPPED_LEN);
	op.key = ref->key_id;
	memcpy(op.iv, wrapped, sizeof(op.iv));
	op.aad = cxt->aad;
	op.aadlen = cxt->aadlen;
	op.in = wrapped + LEDGER_NONCE_LEN;
	p->type->gcm_run(p, &op, plain, LEDGER_KEY_LEN);
}

/* Add a new version of a provider key's material; false if not now. */
bool
ledger_provider_rotate_material(const char *provider, const char *key)
{
	LedgerProvider *p = lookup_provider(provider);

	return p->type->rotate_material != NULL && p->type->rotate_material(p, key);
}

static bytea *
type_wrap(const LedgerProvider *p, const char *key, bool may_create,
		  const LedgerKeyContext *cxt, const uint8 *plain, LedgerProviderRef *ref)
{
	if (p->type->gcm_run)
		return gcm_wrap(p, key, cxt, plain, ref);
	return p->type->wrap(p, key, may_create, cxt, plain, ref);
}

/* Unwrap with a provider as given, configured or about to be. */
void
ledger_provider_unwrap_with(const LedgerProvider *p, const LedgerProviderRef *ref,
							const LedgerKeyContext *cxt, const uint8 *wrapped,
							int len, uint8 *plain)
{
	if (p->type->gcm_run)
		gcm_unwrap(p, ref, cxt, wrapped, len, plain);
	else
		p->type->unwrap(p, ref, cxt, wrapped, len, plain);
}

void
ledger_provider_check_key(const char *provider, const char *key)
{
	LedgerProvider *p = lookup_provider(provider);

	if (strlen(key) == 0 || strlen(key) > LEDGER_PROVIDER_KEY_ID_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a provider key is named by 1 to %d characters", LEDGER_PROVIDER_KEY_ID_LEN)));
	if (p->type->check_key)
		p->type->check_key(p, key);
	else
	{
		/* Usable if the provider wraps with it now: wrap a throwaway key. */
		uint8		aad[] = "ledger.check";
		LedgerKeyContext cxt = {0, 0, aad, sizeof(aad) - 1};
		uint8		throwaway[LEDGER_KEY_LEN];
		LedgerProviderRef ref;

		ledger_random_bytes(throwaway, sizeof(throwaway));
		pfree(type_wrap(p, key, false, &cxt, throwaway, &ref));
		ledger_wipe(throwaway, sizeof(throwaway));
	}
}

bytea *
ledger_provider_wrap(const char *provider, const char *key, bool may_create,
					 const LedgerKeyContext *cxt, const uint8 *plain,
					 LedgerProviderRef *ref)
{
	LedgerProvider *p = lookup_provider(provider);
	bytea	   *wrapped;

	memset(ref, 0, sizeof(*ref));
	wrapped = type_wrap(p, key, may_create, cxt, plain, ref);
	strlcpy(ref->provider, p->name, sizeof(ref->provider));
	Assert(VARSIZE(wrapped) - VARHDRSZ <= LEDGER_PROVIDER_WRAPPED_MAX);
	return wrapped;
}

void
ledger_provider_unwrap(const LedgerProviderRef *ref, const LedgerKeyContext *cxt,
					   const uint8 *wrapped, int len, uint8 *plain)
{
	ledger_provider_unwrap_with(lookup_provider(ref->provider), ref, cxt, wrapped, len, plain);
}

static void
insert_provider(const char *name, const char *type, Jsonb *options)
{
	Relation	rel = table_open(ledger_relation_oid("providers"), RowExclusiveLock);
	Datum		values[Natts_providers];
	bool		nulls[Natts_providers] = {0};

	values[Anum_provider_name - 1] = CStringGetTextDatum(name);
	values[Anum_provider_type - 1] = CStringGetTextDatum(type);
	values[Anum_provider_options - 1] = JsonbPGetDatum(options);
	values[Anum_provider_created_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[Anum_provider_created_by - 1] =
		DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	nulls[Anum_provider_changed_at - 1] = true;
	CatalogTupleInsert(rel, heap_form_tuple(RelationGetDescr(rel), values, nulls));
	table_close(rel, NoLock);
	CommandCounterIncrement();
}

/* Called by CREATE EXTENSION: the embedded provider, before the root key. */
void
ledger_providers_bootstrap(void)
{
	insert_provider("file", "file",
					DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"))));
}

/* ------------------------------------------------------------------------
 * SQL functions, for superusers and ledger_key_admin
 * ------------------------------------------------------------------------
 */

static char *
provider_name_arg(FunctionCallInfo fcinfo, int n)
{
	char	   *name;

	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a key provider needs a name")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (strlen(name) == 0 || strlen(name) >= NAMEDATALEN ||
		strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("\"%s\" is not a valid key provider name", name),
				 errdetail("A provider name has 1 to %d characters out of a-z, 0-9, \"_\" and \"-\".",
						   NAMEDATALEN - 1)));
	return name;
}

static Jsonb *
options_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	return PG_GETARG_JSONB_P(n);
}

/*
 * A provider names programs, modules, files and hosts that the server's OS
 * user will run, load, read or reach, and receives the root key: only a
 * superuser says which.  ledger_key_admin moves keys among them.
 */
static void
require_superuser(const char *name)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to define key provider \"%s\"", name),
				 errdetail("A key provider runs programs, loads modules, reads files and reaches hosts as the server's OS user, and receives the root key."),
				 errhint("A superuser must create or alter it; members of ledger_key_admin may then move the root key to its keys.")));
}

static void
require_primary(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot change key providers during recovery"),
				 errhint("Change providers on the primary; the standby follows through WAL.")));
}

static void
provider_event(const char *event, const char *name)
{
	LedgerProviderRef ref = {{0}};

	strlcpy(ref.provider, name, sizeof(ref.provider));
	ledger_key_event(event, &ref, 0, 0, 0, "ok");
}

/*
 * ledger_create_provider(name text, type text, options jsonb DEFAULT '{}'),
 * for superusers.  Creating, altering and dropping take ShareRowExclusive
 * on ledger.providers, which conflicts with the RowExclusive lock that each
 * step of a key change takes: a provider never changes or goes under a
 * change that is wrapping with it.
 */
Datum
ledger_create_provider(PG_FUNCTION_ARGS)
{
	char	   *name = provider_name_arg(fcinfo, 0);
	Jsonb	   *options = options_arg(fcinfo, 2);
	LedgerProvider p = {{0}};
	Relation	rel;

	require_superuser(name);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a key provider needs a type"),
				 errhint("Use 'file', 'command', 'pkcs11' or 'kmip'.")));
	require_primary();
	strlcpy(p.name, name, sizeof(p.name));
	p.type = find_type(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	parse_options(options, &p, true);

	rel = table_open(ledger_relation_oid("providers"), ShareRowExclusiveLock);
	if (provider_row(rel, name) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("key provider \"%s\" already exists", name)));
	insert_provider(name, p.type->name, options);
	table_close(rel, NoLock);
	provider_event("create provider", name);
	PG_RETURN_VOID();
}

/*
 * ledger_alter_provider(name text, options jsonb): replace a provider's
 * options.  Refused if the provider could no longer open a root key it
 * wraps, so that a typo never locks the ledger out.
 */
Datum
ledger_alter_provider(PG_FUNCTION_ARGS)
{
	char	   *name = provider_name_arg(fcinfo, 0);
	Jsonb	   *options = options_arg(fcinfo, 1);
	Relation	rel;
	HeapTuple	tup;
	LedgerProvider *p;
	Datum		values[Natts_providers] = {0};
	bool		nulls[Natts_providers] = {0};
	bool		repl[Natts_providers] = {0};

	require_superuser(name);
	require_primary();
	rel = table_open(ledger_relation_oid("providers"), ShareRowExclusiveLock);
	tup = existing_provider_row(rel, name);
	p = provider_from_row(tup, RelationGetDescr(rel));
	parse_options(options, p, true);
	ledger_keys_probe_provider(p);

	values[Anum_provider_options - 1] = JsonbPGetDatum(options);
	values[Anum_provider_changed_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	repl[Anum_provider_options - 1] = repl[Anum_provider_changed_at - 1] = true;
	CatalogTupleUpdate(rel, &tup->t_self,
					   heap_modify_tuple(tup, RelationGetDescr(rel), values, nulls, repl));
	table_close(rel, NoLock);
	provider_event("alter provider", name);
	PG_RETURN_VOID();
}

/* ledger_drop_provider(name text): only once no root key needs it. */
Datum
ledger_drop_provider(PG_FUNCTION_ARGS)
{
	char	   *name = provider_name_arg(fcinfo, 0);
	Relation	rel;
	HeapTuple	tup;

	require_primary();
	rel = table_open(ledger_relation_oid("providers"), ShareRowExclusiveLock);
	tup = existing_provider_row(rel, name);
	if (ledger_keys_provider_in_use(name))
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("key provider \"%s\" wraps the ledger's root key", name),
				 errhint("Move the root key to another provider first: ledger_rotate_key('provider_key', '<key>', '<provider>').")));
	CatalogTupleDelete(rel, &tup->t_self);
	table_close(rel, NoLock);
	provider_event("drop provider", name);
	PG_RETURN_VOID();
}
