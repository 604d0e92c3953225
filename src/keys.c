/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  The key hierarchy: provider key -> root key -> data keys.
 *
 * ledger.keys holds one row per key node and version, with the node's
 * wrapped bytes.  The root key is wrapped by the provider key; each data
 * key by the root key.  Wrapping binds the node's kind, id and version as
 * AAD, so a wrapped key cannot be moved to another node.
 *
 * Unwrapped keys live only in this backend's key cache.  The root key sits
 * in one page that is locked in memory and excluded from core dumps where
 * the OS allows, and wiped when dropped.  A data key is turned into an
 * AES-GCM context at once and its plaintext wiped; OpenSSL cleanses the
 * context's key schedule when the context is freed.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <sys/mman.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* Columns of ledger.keys, as created by sql/ledger--0.1.sql. */
enum
{
	Anum_key_id = 1,
	Anum_key_version,
	Anum_key_kind,
	Anum_key_parent_id,
	Anum_key_parent_version,
	Anum_key_provider,
	Anum_key_provider_key_id,
	Anum_key_provider_key_version,
	Anum_key_table_id,
	Anum_key_wrapped,
	Anum_key_state,
	Anum_key_created_at,
	Anum_key_changed_at,
	Anum_key_provider_key_alias,
	Natts_keys = Anum_key_provider_key_alias
};

#define KEY_AAD_TAG		"ledger.key.v1"
#define KEY_AAD_LEN		(sizeof(KEY_AAD_TAG) + 1 + 4 + 4)

typedef struct RootKey
{
	int32		key_id;			/* 0: not loaded */
	int32		version;
	uint8		key[LEDGER_KEY_LEN];
} RootKey;

typedef struct DataKey
{
	int32		key_id;			/* 0: free */
	LedgerCipher *cipher;
} DataKey;

#define KEY_CACHE_SLOTS 64

/* Two root versions: the old and the new one while a rotation runs. */
#define ROOT_CACHE_SLOTS 2

typedef struct KeyCache
{
	Oid			catalog;		/* ledger.keys the keys came from */
	RootKey		root[ROOT_CACHE_SLOTS];
	int			next_root_victim;
	int			next_victim;
	DataKey		data[KEY_CACHE_SLOTS];
} KeyCache;

static KeyCache *cache = NULL;

static List *active_roots(Relation rel, const char *provider);


/*
 * The key cache, emptied if the extension was dropped and created again
 * since it was filled: the new root key may reuse the old one's id.
 */
static KeyCache *
key_cache(void)
{
	Oid			catalog = ledger_relation_oid("keys");

	if (cache != NULL && cache->catalog != catalog)
	{
		ledger_keys_forget();
		cache->catalog = catalog;
	}
	if (cache == NULL)
	{
		void	   *p = mmap(NULL, sizeof(KeyCache), PROT_READ | PROT_WRITE,
							 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not allocate the ledger key cache: %m")));
		/* Best effort: keys stay out of swap and core files if allowed. */
		(void) mlock(p, sizeof(KeyCache));
#ifdef MADV_DONTDUMP
		(void) madvise(p, sizeof(KeyCache), MADV_DONTDUMP);
#endif
		cache = p;
		cache->catalog = catalog;
	}
	return cache;
}

static void
drop_data_key(DataKey *dk)
{
	ledger_cipher_destroy(dk->cipher);
	dk->cipher = NULL;
	dk->key_id = 0;
}

/* Drop every unwrapped key this backend holds. */
void
ledger_keys_forget(void)
{
	if (cache == NULL)
		return;
	for (int i = 0; i < KEY_CACHE_SLOTS; i++)
		drop_data_key(&cache->data[i]);
	ledger_wipe(cache->root, sizeof(cache->root));
}

static void
key_aad(uint8 *aad, char kind, int32 key_id, int32 version)
{
	uint32		v;

	memcpy(aad, KEY_AAD_TAG, sizeof(KEY_AAD_TAG));
	aad[sizeof(KEY_AAD_TAG)] = (uint8) kind;
	v = pg_hton32((uint32) key_id);
	memcpy(aad + sizeof(KEY_AAD_TAG) + 1, &v, 4);
	v = pg_hton32((uint32) version);
	memcpy(aad + sizeof(KEY_AAD_TAG) + 5, &v, 4);
}

static int32
next_key_id(void)
{
	int64		id = nextval_internal(ledger_relation_oid("key_id_seq"), false);

	if (id > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("ledger has run out of key ids")));
	return (int32) id;
}

/*
 * Rows of ledger.keys are written under a RowExclusiveLock kept to the end
 * of the transaction: the last step of a root key rotation waits on it for
 * transactions that made a key under the old root version.
 */
static void
insert_key_row(Datum *values, bool *nulls)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), RowExclusiveLock);
	HeapTuple	tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);

	CatalogTupleInsert(rel, tup);
	heap_freetuple(tup);
	table_close(rel, NoLock);
}

static bytea *
wrapped_datum(const uint8 *wrapped)
{
	bytea	   *w = palloc(VARHDRSZ + LEDGER_WRAPPED_LEN);

	SET_VARSIZE(w, VARHDRSZ + LEDGER_WRAPPED_LEN);
	memcpy(VARDATA(w), wrapped, LEDGER_WRAPPED_LEN);
	return w;
}

static void
fill_common(Datum *values, bool *nulls, int32 key_id, int32 version,
			const char *kind, bytea *wrapped)
{
	memset(nulls, true, sizeof(bool) * Natts_keys);
	values[Anum_key_id - 1] = Int32GetDatum(key_id);
	values[Anum_key_version - 1] = Int32GetDatum(version);
	values[Anum_key_kind - 1] = CStringGetTextDatum(kind);
	values[Anum_key_wrapped - 1] = PointerGetDatum(wrapped);
	values[Anum_key_state - 1] = CStringGetTextDatum("active");
	values[Anum_key_created_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	nulls[Anum_key_id - 1] = nulls[Anum_key_version - 1] = false;
	nulls[Anum_key_kind - 1] = nulls[Anum_key_wrapped - 1] = false;
	nulls[Anum_key_state - 1] = nulls[Anum_key_created_at - 1] = false;
}

static void
set_provider_ref(Datum *values, bool *nulls, const LedgerProviderRef *ref)
{
	values[Anum_key_provider - 1] = CStringGetTextDatum(ref->provider);
	values[Anum_key_provider_key_id - 1] = CStringGetTextDatum(ref->key_id);
	values[Anum_key_provider_key_version - 1] = Int32GetDatum(ref->version);
	values[Anum_key_provider_key_alias - 1] = CStringGetTextDatum(ref->alias);
	nulls[Anum_key_provider - 1] = false;
	nulls[Anum_key_provider_key_id - 1] = false;
	nulls[Anum_key_provider_key_version - 1] = (ref->version == 0);
	nulls[Anum_key_provider_key_alias - 1] = (ref->alias[0] == '\0');
}

static int32
int_column(HeapTuple tup, TupleDesc desc, int attnum)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, desc, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

static bool
text_column_is(HeapTuple tup, TupleDesc desc, int attnum, const char *value)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, desc, &isnull);

	return !isnull && strcmp(TextDatumGetCString(d), value) == 0;
}

/*
 * Does a row of ledger.keys match?  key_id 0 means the root key; version
 * 0 the newest active version, which the caller picks among the matches.
 */
static bool
key_row_matches(HeapTuple tup, TupleDesc desc, int32 key_id, int32 version)
{
	if (key_id == 0 ? !text_column_is(tup, desc, Anum_key_kind, "root")
		: int_column(tup, desc, Anum_key_id) != key_id)
		return false;
	if (version == 0)
		return text_column_is(tup, desc, Anum_key_state, "active");
	return int_column(tup, desc, Anum_key_version) == version;
}

static HeapTuple
scan_key_rows(Relation rel, Snapshot snap, int32 key_id, int32 version)
{
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, snap, 0, NULL);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tup,
				found = NULL;

	while ((tup = systable_getnext(scan)) != NULL)
	{
		if (!key_row_matches(tup, desc, key_id, version))
			continue;
		if (found == NULL || int_column(tup, desc, Anum_key_version) >
			int_column(found, desc, Anum_key_version))
			found = heap_copytuple(tup);
		if (version != 0)
			break;
	}
	systable_endscan(scan);
	return found;
}

/*
 * A copy of the row of key key_id (0: the root key) in version "version"
 * (0: the newest active one), or NULL.  A fresh MVCC snapshot sees either
 * the old or the new row of a key the worker is re-wrapping, never
 * neither; SnapshotSelf then finds keys this transaction created in the
 * current command, which a table created in this command needs.
 */
static HeapTuple
find_key_row(int32 key_id, int32 version, TupleDesc *desc)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), AccessShareLock);
	HeapTuple	found;

	found = scan_key_rows(rel, ledger_lookup_snapshot(rel), key_id, version);
	if (found == NULL)
		found = scan_key_rows(rel, SnapshotSelf, key_id, version);
	*desc = CreateTupleDescCopy(RelationGetDescr(rel));
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The wrapped bytes of a key row, and their length: a data key's are
 * ours, a root key's are whatever its provider made of it.
 */
static const uint8 *
wrapped_bytes(HeapTuple tup, TupleDesc desc, int *len)
{
	bool		isnull;
	bytea	   *w = DatumGetByteaPP(heap_getattr(tup, Anum_key_wrapped, desc, &isnull));
	bool		root = text_column_is(tup, desc, Anum_key_kind, "root");

	*len = isnull ? 0 : VARSIZE_ANY_EXHDR(w);
	if (isnull || (root ? *len == 0 || *len > LEDGER_PROVIDER_WRAPPED_MAX :
				   *len != LEDGER_WRAPPED_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger key catalog entry is damaged"),
				 errdetail("A wrapped key in ledger.keys has the wrong length.")));
	return (const uint8 *) VARDATA_ANY(w);
}

static void
row_provider_ref(HeapTuple tup, TupleDesc desc, LedgerProviderRef *ref)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, Anum_key_provider_key_id, desc, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger key catalog entry is damaged"),
				 errdetail("A root key in ledger.keys names no provider key.")));
	strlcpy(ref->key_id, TextDatumGetCString(d), sizeof(ref->key_id));
	d = heap_getattr(tup, Anum_key_provider, desc, &isnull);
	strlcpy(ref->provider, isnull ? "file" : TextDatumGetCString(d), sizeof(ref->provider));
	ref->version = int_column(tup, desc, Anum_key_provider_key_version);
	d = heap_getattr(tup, Anum_key_provider_key_alias, desc, &isnull);
	strlcpy(ref->alias, isnull ? "" : TextDatumGetCString(d), sizeof(ref->alias));
}

/*
 * Unwrap the root key of a catalog row, which provider key "ref" wraps,
 * into "out": through provider "p" as given, or the one the row names if
 * p is NULL.
 */
static void
unwrap_row(HeapTuple tup, TupleDesc desc, const LedgerProvider *p,
		   const LedgerProviderRef *ref, uint8 *out)
{
	uint8		aad[KEY_AAD_LEN];
	int32		id = int_column(tup, desc, Anum_key_id);
	int32		version = int_column(tup, desc, Anum_key_version);
	LedgerKeyContext kcxt = {id, version, aad, sizeof(aad)};
	int			len;
	const uint8 *wrapped = wrapped_bytes(tup, desc, &len);

	key_aad(aad, 'R', id, version);
	if (p != NULL)
		ledger_provider_unwrap_with(p, ref, &kcxt, wrapped, len, out);
	else
		ledger_provider_unwrap(ref, &kcxt, wrapped, len, out);
}

/*
 * Unwrap the root key of a catalog row into "out" through its provider,
 * and record the outcome in the ledger's key status: a failure is
 * recorded before it is raised, so every backend stops using its cached
 * keys.
 */
static void
unwrap_root(HeapTuple tup, TupleDesc desc, const char *event, uint8 *out)
{
	LedgerProviderRef ref;
	MemoryContext cxt = CurrentMemoryContext;
	int32		id = int_column(tup, desc, Anum_key_id);
	int32		version = int_column(tup, desc, Anum_key_version);

	row_provider_ref(tup, desc, &ref);
	PG_TRY();
	{
		unwrap_row(tup, desc, NULL, &ref, out);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		ledger_key_event(event, &ref, id, version, 0, ledger_key_failure_reason(e));
		if (e->sqlerrcode == ERRCODE_LEDGER_KEY_INACCESSIBLE)
			ledger_key_status_failed(e);
		FreeErrorData(e);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ledger_key_event(event, &ref, id, version, 0, "ok");
	ledger_key_status_ok();
}

/*
 * Wrap a root key version with the provider key named "provider_key" of
 * "provider" (NULL: the provider's default), recording the use either way.
 */
static bytea *
wrap_root(const uint8 *key, int32 key_id, int32 version, const char *provider,
		  const char *provider_key, bool may_create, LedgerProviderRef *ref)
{
	uint8		aad[KEY_AAD_LEN];
	MemoryContext cxt = CurrentMemoryContext;
	LedgerKeyContext kcxt = {key_id, version, aad, sizeof(aad)};
	bytea	   *wrapped = NULL;

	key_aad(aad, 'R', key_id, version);
	PG_TRY();
	{
		wrapped = ledger_provider_wrap(provider, provider_key, may_create, &kcxt,
									   key, ref);
	}
	PG_CATCH();
	{
		ErrorData  *e;
		LedgerProviderRef named = {{0}};

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		strlcpy(named.provider, provider, sizeof(named.provider));
		strlcpy(named.key_id, provider_key ? provider_key : "", sizeof(named.key_id));
		ledger_key_event("wrap", &named, key_id, version, 0, ledger_key_failure_reason(e));
		FreeErrorData(e);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ledger_key_event("wrap", ref, key_id, version, 0, "ok");
	return wrapped;
}

static HeapTuple
root_row(int32 key_id, int32 version, TupleDesc *desc)
{
	HeapTuple	tup = find_key_row(key_id, version, desc);

	if (tup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ledger has no root key"),
				 errhint("Drop and re-create the ledger extension in this database.")));
	return tup;
}

/* A root key version, unwrapped through the provider on first use. */
static const RootKey *
root_key(int32 key_id, int32 version)
{
	KeyCache   *kc = key_cache();
	TupleDesc	desc;
	HeapTuple	tup;
	RootKey    *slot;

	for (int i = 0; i < ROOT_CACHE_SLOTS; i++)
		if (kc->root[i].key_id == key_id && kc->root[i].version == version)
			return &kc->root[i];
	tup = root_row(key_id, version, &desc);
	slot = &kc->root[kc->next_root_victim];
	kc->next_root_victim = (kc->next_root_victim + 1) % ROOT_CACHE_SLOTS;
	ledger_wipe(slot, sizeof(RootKey));
	unwrap_root(tup, desc, "unwrap", slot->key);
	slot->key_id = key_id;
	slot->version = version;
	return slot;
}

/* The newest active root key version, which wraps new data keys. */
static const RootKey *
current_root_key(void)
{
	TupleDesc	desc;
	HeapTuple	tup = root_row(0, 0, &desc);

	return root_key(int_column(tup, desc, Anum_key_id),
					int_column(tup, desc, Anum_key_version));
}

/*
 * Prove that the provider key still opens the newest root key, without
 * keeping what it opened; nothing to prove if this database has no ledger.
 */
void
ledger_keys_check(void)
{
	TupleDesc	desc;
	HeapTuple	tup;
	uint8		key[LEDGER_KEY_LEN];

	if (!OidIsValid(get_extension_oid("ledger", true)) ||
		(tup = find_key_row(0, 0, &desc)) == NULL)
		return;
	PG_TRY();
	{
		unwrap_root(tup, desc, "check", key);
	}
	PG_FINALLY();
	{
		ledger_wipe(key, sizeof(key));
	}
	PG_END_TRY();
}


/* What ledger_status() shows of the newest root key. */
void
ledger_keys_root_info(LedgerRootInfo *info)
{
	TupleDesc	desc;
	HeapTuple	tup = root_row(0, 0, &desc);
	LedgerProviderRef ref;
	bool		isnull;
	Datum		d;

	row_provider_ref(tup, desc, &ref);
	strlcpy(info->provider,
			TextDatumGetCString(heap_getattr(tup, Anum_key_provider, desc, &isnull)),
			sizeof(info->provider));
	strlcpy(info->provider_key_id, ref.key_id, sizeof(info->provider_key_id));
	strlcpy(info->provider_key_alias, ref.alias, sizeof(info->provider_key_alias));
	info->provider_key_version = ref.version;
	info->version = int_column(tup, desc, Anum_key_version);
	info->created_at = DatumGetTimestampTz(heap_getattr(tup, Anum_key_created_at, desc, &isnull));
	d = heap_getattr(tup, Anum_key_changed_at, desc, &isnull);
	info->wrapped_at = isnull ? info->created_at : DatumGetTimestampTz(d);
}

/* Wrap a new root key version with a provider key and store it. */
static void
store_root(int32 key_id, int32 version, const uint8 *key, const char *provider,
		   const char *provider_key, bool may_create)
{
	Datum		values[Natts_keys];
	bool		nulls[Natts_keys];
	LedgerProviderRef ref;
	bytea	   *wrapped = wrap_root(key, key_id, version, provider, provider_key,
									may_create, &ref);

	fill_common(values, nulls, key_id, version, "root", wrapped);
	set_provider_ref(values, nulls, &ref);
	insert_key_row(values, nulls);
}

/*
 * Create the ledger's root key, and with it the keyring if there is none
 * yet.  Called once, by CREATE EXTENSION.
 */
void
ledger_keys_bootstrap(void)
{
	TupleDesc	desc;
	uint8		key[LEDGER_KEY_LEN];

	if (find_key_row(0, 0, &desc) != NULL)
		return;
	ledger_random_bytes(key, LEDGER_KEY_LEN);
	PG_TRY();
	{
		store_root(next_key_id(), 1, key, "file", NULL, true);
	}
	PG_FINALLY();
	{
		ledger_wipe(key, sizeof(key));
	}
	PG_END_TRY();
}

/* The cache slot of a data key, or a free one (evicting the oldest). */
static DataKey *
cache_slot(int32 key_id)
{
	KeyCache   *kc = key_cache();
	DataKey    *victim;

	for (int i = 0; i < KEY_CACHE_SLOTS; i++)
		if (kc->data[i].key_id == key_id)
			return &kc->data[i];
	victim = &kc->data[kc->next_victim];
	kc->next_victim = (kc->next_victim + 1) % KEY_CACHE_SLOTS;
	drop_data_key(victim);
	return victim;
}

/* Wrap a data key under a root key version into "wrapped". */
static void
wrap_data_key(const RootKey *root, int32 key_id, int32 version,
			  const uint8 *key, uint8 *wrapped)
{
	uint8		aad[KEY_AAD_LEN];

	key_aad(aad, 'D', key_id, version);
	ledger_random_bytes(wrapped, LEDGER_NONCE_LEN);
	ledger_aead_seal(root->key, wrapped, aad, sizeof(aad), key, LEDGER_KEY_LEN,
					 wrapped + LEDGER_NONCE_LEN);
}

/* Unwrap the data key of a catalog row with the root key that wraps it. */
static void
unwrap_data_key(HeapTuple tup, TupleDesc desc, uint8 *key)
{
	int32		key_id = int_column(tup, desc, Anum_key_id);
	const RootKey *root = root_key(int_column(tup, desc, Anum_key_parent_id),
								   int_column(tup, desc, Anum_key_parent_version));
	int			len;
	const uint8 *wrapped = wrapped_bytes(tup, desc, &len);
	uint8		aad[KEY_AAD_LEN];

	key_aad(aad, 'D', key_id, int_column(tup, desc, Anum_key_version));
	if (!ledger_aead_open(root->key, wrapped, aad, sizeof(aad),
						  wrapped + LEDGER_NONCE_LEN,
						  LEDGER_KEY_LEN + LEDGER_TAG_LEN, key))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger data key %d cannot be unwrapped", key_id),
				 errdetail("The root key does not authenticate the wrapped data key; ledger.keys has been altered.")));
}

/* Cache a data key's cipher; the plaintext key is wiped either way. */
static LedgerCipher *
cache_cipher(DataKey *slot, int32 key_id, uint8 *key)
{
	PG_TRY();
	{
		slot->cipher = ledger_cipher_create(key);
	}
	PG_CATCH();
	{
		ledger_wipe(key, LEDGER_KEY_LEN);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ledger_wipe(key, LEDGER_KEY_LEN);
	slot->key_id = key_id;
	return slot->cipher;
}

/* Create a data key for a table, wrapped by the newest root key. */
int32
ledger_create_data_key(int64 table_id)
{
	const RootKey *root;
	Datum		values[Natts_keys];
	bool		nulls[Natts_keys];
	uint8		key[LEDGER_KEY_LEN];
	uint8		wrapped[LEDGER_WRAPPED_LEN];
	int32		key_id;

	/* A new key exposes no data: it needs a usable key, not the grant. */
	ledger_check_key_status();
	/*
	 * Lock before reading which root version is current: the last step of
	 * a root key rotation waits on this lock for keys made under the old
	 * version (see ledger_keys_finish_root_rotation).
	 */
	LockRelationOid(ledger_relation_oid("keys"), RowExclusiveLock);
	root = current_root_key();
	key_id = next_key_id();
	ledger_random_bytes(key, LEDGER_KEY_LEN);
	PG_TRY();
	{
		wrap_data_key(root, key_id, 1, key, wrapped);
	}
	PG_CATCH();
	{
		ledger_wipe(key, sizeof(key));
		PG_RE_THROW();
	}
	PG_END_TRY();
	(void) cache_cipher(cache_slot(key_id), key_id, key);

	fill_common(values, nulls, key_id, 1, "data", wrapped_datum(wrapped));
	values[Anum_key_parent_id - 1] = Int32GetDatum(root->key_id);
	values[Anum_key_parent_version - 1] = Int32GetDatum(root->version);
	values[Anum_key_table_id - 1] = Int64GetDatum(table_id);
	nulls[Anum_key_parent_id - 1] = false;
	nulls[Anum_key_parent_version - 1] = false;
	nulls[Anum_key_table_id - 1] = false;
	insert_key_row(values, nulls);
	return key_id;
}

/* The cipher of a data key, unwrapped with its root key on first use. */
LedgerCipher *
ledger_data_cipher(int32 key_id)
{
	DataKey    *slot;
	TupleDesc	desc;
	HeapTuple	tup;
	uint8		key[LEDGER_KEY_LEN];

	ledger_check_access();
	slot = cache_slot(key_id);
	if (slot->key_id == key_id)
		return slot->cipher;
	tup = find_key_row(key_id, 0, &desc);
	if (tup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger data key %d does not exist", key_id),
				 errdetail("A sealed row names a data key that ledger.keys does not hold.")));
	unwrap_data_key(tup, desc, key);
	return cache_cipher(slot, key_id, key);
}

/* ------------------------------------------------------------------------
 * Key changes, one step each, run by the worker (keychange.c)
 * ------------------------------------------------------------------------
 */

/* Replace a row of ledger.keys with its modified copy. */
static void
update_key_row(HeapTuple old, Datum *values, bool *nulls, bool *repl)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), RowExclusiveLock);
	HeapTuple	tup;

	values[Anum_key_changed_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	nulls[Anum_key_changed_at - 1] = false;
	repl[Anum_key_changed_at - 1] = true;
	tup = heap_modify_tuple(old, RelationGetDescr(rel), values, nulls, repl);
	CatalogTupleUpdate(rel, &old->t_self, tup);
	table_close(rel, NoLock);
}

/*
 * Copies of the active root key versions, in a fresh snapshot; only those
 * that provider "provider" wraps, unless it is NULL.
 */
static List *
active_roots(Relation rel, const char *provider)
{
	TupleDesc	desc = RelationGetDescr(rel);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false,
										  GetLatestSnapshot(), 0, NULL);
	HeapTuple	tup;
	List	   *roots = NIL;

	while ((tup = systable_getnext(scan)) != NULL)
		if (key_row_matches(tup, desc, 0, 0) &&
			(provider == NULL || text_column_is(tup, desc, Anum_key_provider, provider)))
			roots = lappend(roots, heap_copytuple(tup));
	systable_endscan(scan);
	return roots;
}

/* Re-wrap one root key version with another provider key. */
static void
rewrap_root(HeapTuple tup, TupleDesc desc, const char *provider,
			const char *provider_key)
{
	Datum		values[Natts_keys];
	bool		nulls[Natts_keys] = {0};
	bool		repl[Natts_keys] = {0};
	uint8		key[LEDGER_KEY_LEN];
	bytea	   *wrapped = NULL;
	LedgerProviderRef ref;

	PG_TRY();
	{
		unwrap_root(tup, desc, "unwrap", key);
		wrapped = wrap_root(key, int_column(tup, desc, Anum_key_id),
							int_column(tup, desc, Anum_key_version), provider,
							provider_key, false, &ref);
	}
	PG_CATCH();
	{
		ledger_wipe(key, sizeof(key));
		PG_RE_THROW();
	}
	PG_END_TRY();
	ledger_wipe(key, sizeof(key));
	values[Anum_key_wrapped - 1] = PointerGetDatum(wrapped);
	repl[Anum_key_wrapped - 1] = true;
	set_provider_ref(values, nulls, &ref);
	repl[Anum_key_provider - 1] = true;
	repl[Anum_key_provider_key_id - 1] = true;
	repl[Anum_key_provider_key_version - 1] = true;
	repl[Anum_key_provider_key_alias - 1] = true;
	update_key_row(tup, values, nulls, repl);
}

/*
 * Re-wrap the root key with another provider key: an id or alias that
 * "provider" knows, or NULL for its default.  Every active version, so
 * that the old provider key is needed by nothing afterwards, even if a
 * root key rotation failed halfway.  O(1): the data keys stay as they are.
 */
void
ledger_keys_rewrap_root(const char *provider, const char *provider_key)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), RowExclusiveLock);
	ListCell   *lc;

	foreach(lc, active_roots(rel, NULL))
		rewrap_root((HeapTuple) lfirst(lc), RelationGetDescr(rel), provider, provider_key);
	table_close(rel, NoLock);
}

/* Does an active root key version need provider "provider"? */
bool
ledger_keys_provider_in_use(const char *provider)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), AccessShareLock);
	bool		used = active_roots(rel, provider) != NIL;

	table_close(rel, AccessShareLock);
	return used;
}

/*
 * Prove that provider "p", as configured, opens every active root key
 * version it wraps, keeping nothing; errors say what it could not open.
 * It bypasses the key status: a configuration being tried out must not
 * cut the ledger off.
 */
void
ledger_keys_probe_provider(const LedgerProvider *p)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext cxt = CurrentMemoryContext;
	ListCell   *lc;

	foreach(lc, active_roots(rel, p->name))
	{
		HeapTuple	tup = (HeapTuple) lfirst(lc);
		LedgerProviderRef ref;
		uint8		key[LEDGER_KEY_LEN];
		volatile int32 version = int_column(tup, desc, Anum_key_version);

		row_provider_ref(tup, desc, &ref);
		PG_TRY();
		{
			unwrap_row(tup, desc, p, &ref, key);
		}
		PG_CATCH();
		{
			ErrorData  *e;

			ledger_wipe(key, sizeof(key));
			MemoryContextSwitchTo(cxt);
			e = CopyErrorData();
			FlushErrorState();
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key provider \"%s\" could not open root key version %d with these options",
							p->name, version),
					 errdetail("%s", ledger_key_failure_reason(e)),
					 errhint("Fix the options; the provider keeps its old ones until it can open the root key.")));
		}
		PG_END_TRY();
		ledger_wipe(key, sizeof(key));
	}
	table_close(rel, AccessShareLock);
}

/*
 * Add a new version of the root key, with new key material, wrapped by
 * the newest version of the provider key that wraps the current one.
 * Returns the new version; until the data keys are re-wrapped, both
 * versions are active.
 */
int32
ledger_keys_add_root_version(void)
{
	TupleDesc	desc;
	HeapTuple	tup = root_row(0, 0, &desc);
	int32		version = int_column(tup, desc, Anum_key_version) + 1;
	LedgerProviderRef ref;
	uint8		key[LEDGER_KEY_LEN];

	row_provider_ref(tup, desc, &ref);
	ledger_random_bytes(key, LEDGER_KEY_LEN);
	PG_TRY();
	{
		/* Named as before: the new version keeps following an alias. */
		store_root(int_column(tup, desc, Anum_key_id), version, key, ref.provider,
				   ref.alias[0] != '\0' ? ref.alias : ref.key_id, false);
	}
	PG_FINALLY();
	{
		ledger_wipe(key, sizeof(key));
	}
	PG_END_TRY();
	return version;
}

/* Unwrap a data key and wrap it again under another root key version. */
static void
rewrap_data_key(HeapTuple tup, TupleDesc desc, int32 version, uint8 *wrapped)
{
	uint8		key[LEDGER_KEY_LEN];

	PG_TRY();
	{
		unwrap_data_key(tup, desc, key);
		/* Looked up only now: the unwrap may have evicted it. */
		wrap_data_key(root_key(int_column(tup, desc, Anum_key_parent_id), version),
					  int_column(tup, desc, Anum_key_id),
					  int_column(tup, desc, Anum_key_version), key, wrapped);
	}
	PG_CATCH();
	{
		ledger_wipe(key, sizeof(key));
		PG_RE_THROW();
	}
	PG_END_TRY();
	ledger_wipe(key, sizeof(key));
}

/*
 * Re-wrap up to "limit" data keys that are wrapped by another version
 * than "version" of the root key with that version.  Returns how many it
 * re-wrapped: 0 once there are none left.
 */
int
ledger_keys_rewrap_data(int32 version, int limit)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false,
										  GetLatestSnapshot(), 0, NULL);
	HeapTuple	tup;
	int			done = 0;

	while (done < limit && (tup = systable_getnext(scan)) != NULL)
	{
		Datum		values[Natts_keys];
		bool		nulls[Natts_keys] = {0};
		bool		repl[Natts_keys] = {0};
		uint8		wrapped[LEDGER_WRAPPED_LEN];

		if (!text_column_is(tup, desc, Anum_key_kind, "data") ||
			int_column(tup, desc, Anum_key_parent_version) == version)
			continue;
		rewrap_data_key(tup, desc, version, wrapped);
		values[Anum_key_wrapped - 1] = PointerGetDatum(wrapped_datum(wrapped));
		values[Anum_key_parent_version - 1] = Int32GetDatum(version);
		repl[Anum_key_wrapped - 1] = repl[Anum_key_parent_version - 1] = true;
		update_key_row(tup, values, nulls, repl);
		done++;
	}
	systable_endscan(scan);
	table_close(rel, NoLock);
	return done;
}

/* Data keys, and how many of them the given root key version wraps. */
void
ledger_keys_count_data(int32 version, int64 *total, int64 *wrapped_by)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false,
										  GetLatestSnapshot(), 0, NULL);
	HeapTuple	tup;

	*total = *wrapped_by = 0;
	while ((tup = systable_getnext(scan)) != NULL)
	{
		if (!text_column_is(tup, desc, Anum_key_kind, "data"))
			continue;
		(*total)++;
		if (int_column(tup, desc, Anum_key_parent_version) == version)
			(*wrapped_by)++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

static void retire_roots(int32 keep);

/*
 * The last step of a root key rotation.  A transaction that created a data
 * key under the old version before the new one existed may commit after
 * the batches passed.  The lock is granted once no such transaction is in
 * progress and keeps new ones out until this step commits; the keys they
 * made are re-wrapped here.  Then nothing is wrapped by the old versions
 * any more, and they are retired.  Returns false, doing nothing, while
 * such a transaction is still open: the worker must not wait on a
 * session that may stay idle in its transaction.  *done counts the late
 * keys.
 */
bool
ledger_keys_finish_root_rotation(int32 version, int64 *done)
{
	if (!ConditionalLockRelationOid(ledger_relation_oid("keys"), ShareRowExclusiveLock))
		return false;
	*done = ledger_keys_rewrap_data(version, INT_MAX);
	retire_roots(version);
	return true;
}

/* Retire every root key version but "keep". */
static void
retire_roots(int32 keep)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	ListCell   *lc;

	foreach(lc, active_roots(rel, NULL))
	{
		HeapTuple	tup = (HeapTuple) lfirst(lc);
		Datum		values[Natts_keys];
		bool		nulls[Natts_keys] = {0};
		bool		repl[Natts_keys] = {0};

		if (int_column(tup, desc, Anum_key_version) == keep)
			continue;
		values[Anum_key_state - 1] = CStringGetTextDatum("retired");
		repl[Anum_key_state - 1] = true;
		update_key_row(tup, values, nulls, repl);
	}
	table_close(rel, NoLock);
}
