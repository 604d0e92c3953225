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
	Natts_keys = Anum_key_changed_at
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

typedef struct KeyCache
{
	Oid			catalog;		/* ledger.keys the keys came from */
	RootKey		root;
	int			next_victim;
	DataKey		data[KEY_CACHE_SLOTS];
} KeyCache;

static KeyCache *cache = NULL;


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
	ledger_wipe(&cache->root, sizeof(RootKey));
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

static void
insert_key_row(Datum *values, bool *nulls)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), RowExclusiveLock);
	HeapTuple	tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);

	CatalogTupleInsert(rel, tup);
	heap_freetuple(tup);
	table_close(rel, RowExclusiveLock);
}

static void
fill_common(Datum *values, bool *nulls, int32 key_id, const char *kind,
			const uint8 *wrapped)
{
	bytea	   *w = palloc(VARHDRSZ + LEDGER_WRAPPED_LEN);

	SET_VARSIZE(w, VARHDRSZ + LEDGER_WRAPPED_LEN);
	memcpy(VARDATA(w), wrapped, LEDGER_WRAPPED_LEN);
	memset(nulls, true, sizeof(bool) * Natts_keys);
	values[Anum_key_id - 1] = Int32GetDatum(key_id);
	values[Anum_key_version - 1] = Int32GetDatum(1);
	values[Anum_key_kind - 1] = CStringGetTextDatum(kind);
	values[Anum_key_wrapped - 1] = PointerGetDatum(w);
	values[Anum_key_state - 1] = CStringGetTextDatum("active");
	values[Anum_key_created_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	nulls[Anum_key_id - 1] = nulls[Anum_key_version - 1] = false;
	nulls[Anum_key_kind - 1] = nulls[Anum_key_wrapped - 1] = false;
	nulls[Anum_key_state - 1] = nulls[Anum_key_created_at - 1] = false;
}

/*
 * Find the active row of a key (the root key if key_id is 0) and return a
 * copy of it, or NULL.  SnapshotSelf sees rows this transaction wrote in
 * the current command too, which a table created in this command needs.
 */
static HeapTuple
find_key_row(int32 key_id, TupleDesc *desc)
{
	Relation	rel = table_open(ledger_relation_oid("keys"), AccessShareLock);
	SysScanDesc scan;
	HeapTuple	tup,
				found = NULL;

	scan = systable_beginscan(rel, InvalidOid, false, SnapshotSelf, 0, NULL);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Datum		d;
		char	   *state;

		if (key_id != 0)
		{
			d = heap_getattr(tup, Anum_key_id, RelationGetDescr(rel), &isnull);
			if (DatumGetInt32(d) != key_id)
				continue;
		}
		else
		{
			d = heap_getattr(tup, Anum_key_kind, RelationGetDescr(rel), &isnull);
			if (strcmp(TextDatumGetCString(d), "root") != 0)
				continue;
		}
		d = heap_getattr(tup, Anum_key_state, RelationGetDescr(rel), &isnull);
		state = TextDatumGetCString(d);
		if (strcmp(state, "active") == 0 || key_id != 0)
		{
			found = heap_copytuple(tup);
			break;
		}
	}
	systable_endscan(scan);
	*desc = CreateTupleDescCopy(RelationGetDescr(rel));
	table_close(rel, AccessShareLock);
	return found;
}

static const uint8 *
wrapped_bytes(HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	bytea	   *w = DatumGetByteaPP(heap_getattr(tup, Anum_key_wrapped, desc, &isnull));

	if (isnull || VARSIZE_ANY_EXHDR(w) != LEDGER_WRAPPED_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger key catalog entry is damaged"),
				 errdetail("A wrapped key in ledger.keys has the wrong length.")));
	return (const uint8 *) VARDATA_ANY(w);
}

/*
 * Unwrap the root key named by its catalog row into "out" through the
 * provider, and record the outcome in the ledger's key status: a failure
 * is recorded before it is raised, so every backend stops using its
 * cached keys.
 */
static void
unwrap_root(HeapTuple tup, TupleDesc desc, int32 *key_id, int32 *version,
			uint8 *out)
{
	LedgerProviderRef ref;
	uint8		aad[KEY_AAD_LEN];
	bool		isnull;
	MemoryContext cxt = CurrentMemoryContext;

	*key_id = DatumGetInt32(heap_getattr(tup, Anum_key_id, desc, &isnull));
	*version = DatumGetInt32(heap_getattr(tup, Anum_key_version, desc, &isnull));
	strlcpy(ref.key_id,
			TextDatumGetCString(heap_getattr(tup, Anum_key_provider_key_id, desc, &isnull)),
			sizeof(ref.key_id));
	ref.version = DatumGetInt32(heap_getattr(tup, Anum_key_provider_key_version, desc, &isnull));
	key_aad(aad, 'R', *key_id, *version);
	PG_TRY();
	{
		ledger_provider_unwrap(wrapped_bytes(tup, desc), &ref, aad, sizeof(aad), out);
		ledger_key_status_ok();
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		if (e->sqlerrcode == ERRCODE_LEDGER_KEY_INACCESSIBLE)
			ledger_key_status_failed(e);
		FreeErrorData(e);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

static HeapTuple
root_row(TupleDesc *desc)
{
	HeapTuple	tup = find_key_row(0, desc);

	if (tup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ledger has no root key"),
				 errhint("Drop and re-create the ledger extension in this database.")));
	return tup;
}

/* The root key, unwrapped through the provider on first use. */
static const uint8 *
root_key(void)
{
	KeyCache   *kc = key_cache();
	TupleDesc	desc;
	HeapTuple	tup;
	int32		key_id;

	if (kc->root.key_id != 0)
		return kc->root.key;
	tup = root_row(&desc);
	unwrap_root(tup, desc, &key_id, &kc->root.version, kc->root.key);
	kc->root.key_id = key_id;
	return kc->root.key;
}

/*
 * Prove that the provider key still opens the root key, without keeping
 * what it opened; nothing to prove if this database has no ledger.
 */
void
ledger_keys_check(void)
{
	TupleDesc	desc;
	HeapTuple	tup;
	int32		key_id;
	int32		version;
	uint8		key[LEDGER_KEY_LEN];

	if (!OidIsValid(get_extension_oid("ledger", true)) ||
		(tup = find_key_row(0, &desc)) == NULL)
		return;
	PG_TRY();
	{
		unwrap_root(tup, desc, &key_id, &version, key);
	}
	PG_FINALLY();
	{
		ledger_wipe(key, sizeof(key));
	}
	PG_END_TRY();
}

/* What ledger_status() shows of the root key. */
void
ledger_keys_root_info(LedgerRootInfo *info)
{
	TupleDesc	desc;
	HeapTuple	tup = root_row(&desc);
	bool		isnull;

	strlcpy(info->provider,
			TextDatumGetCString(heap_getattr(tup, Anum_key_provider, desc, &isnull)),
			sizeof(info->provider));
	strlcpy(info->provider_key_id,
			TextDatumGetCString(heap_getattr(tup, Anum_key_provider_key_id, desc, &isnull)),
			sizeof(info->provider_key_id));
	info->provider_key_version =
		DatumGetInt32(heap_getattr(tup, Anum_key_provider_key_version, desc, &isnull));
	info->version = DatumGetInt32(heap_getattr(tup, Anum_key_version, desc, &isnull));
}

/*
 * Create the ledger's root key, and with it the keyring if there is none
 * yet.  Called once, by CREATE EXTENSION.
 */
void
ledger_keys_bootstrap(void)
{
	KeyCache   *kc = key_cache();
	TupleDesc	desc;
	Datum		values[Natts_keys];
	bool		nulls[Natts_keys];
	uint8		wrapped[LEDGER_WRAPPED_LEN];
	uint8		aad[KEY_AAD_LEN];
	LedgerProviderRef ref;
	int32		key_id;

	if (find_key_row(0, &desc) != NULL)
		return;
	key_id = next_key_id();
	ledger_wipe(&kc->root, sizeof(kc->root));
	ledger_random_bytes(kc->root.key, LEDGER_KEY_LEN);
	key_aad(aad, 'R', key_id, 1);
	ledger_provider_wrap(kc->root.key, aad, sizeof(aad), true, wrapped, &ref);
	kc->root.key_id = key_id;
	kc->root.version = 1;

	fill_common(values, nulls, key_id, "root", wrapped);
	values[Anum_key_provider - 1] = CStringGetTextDatum("file");
	values[Anum_key_provider_key_id - 1] = CStringGetTextDatum(ref.key_id);
	values[Anum_key_provider_key_version - 1] = Int32GetDatum(ref.version);
	nulls[Anum_key_provider - 1] = false;
	nulls[Anum_key_provider_key_id - 1] = false;
	nulls[Anum_key_provider_key_version - 1] = false;
	insert_key_row(values, nulls);
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

static void
wrap_aad_data(uint8 *aad, int32 key_id, int32 version)
{
	key_aad(aad, 'D', key_id, version);
}

/* Create a data key for a table and return its id. */
int32
ledger_create_data_key(int64 table_id)
{
	const uint8 *root;
	KeyCache   *kc = key_cache();
	Datum		values[Natts_keys];
	bool		nulls[Natts_keys];
	uint8		key[LEDGER_KEY_LEN];
	uint8		wrapped[LEDGER_WRAPPED_LEN];
	uint8		aad[KEY_AAD_LEN];
	int32		key_id;
	DataKey    *slot;

	/* A new key exposes no data: it needs a usable key, not the grant. */
	ledger_check_key_status();
	root = root_key();
	key_id = next_key_id();
	slot = cache_slot(key_id);
	ledger_random_bytes(key, LEDGER_KEY_LEN);
	wrap_aad_data(aad, key_id, 1);
	ledger_random_bytes(wrapped, LEDGER_NONCE_LEN);
	PG_TRY();
	{
		ledger_aead_seal(root, wrapped, aad, sizeof(aad), key,
						 LEDGER_KEY_LEN, wrapped + LEDGER_NONCE_LEN);
		slot->cipher = ledger_cipher_create(key);
	}
	PG_FINALLY();
	{
		ledger_wipe(key, sizeof(key));
	}
	PG_END_TRY();
	slot->key_id = key_id;

	fill_common(values, nulls, key_id, "data", wrapped);
	values[Anum_key_parent_id - 1] = Int32GetDatum(kc->root.key_id);
	values[Anum_key_parent_version - 1] = Int32GetDatum(kc->root.version);
	values[Anum_key_table_id - 1] = Int64GetDatum(table_id);
	nulls[Anum_key_parent_id - 1] = false;
	nulls[Anum_key_parent_version - 1] = false;
	nulls[Anum_key_table_id - 1] = false;
	insert_key_row(values, nulls);
	return key_id;
}

/* The cipher of a data key, unwrapped with the root key on first use. */
LedgerCipher *
ledger_data_cipher(int32 key_id)
{
	DataKey    *slot;
	TupleDesc	desc;
	HeapTuple	tup;
	uint8		aad[KEY_AAD_LEN];
	uint8		key[LEDGER_KEY_LEN];
	const uint8 *root;
	const uint8 *wrapped;
	bool		isnull;
	bool		ok;

	ledger_check_access();
	slot = cache_slot(key_id);
	if (slot->key_id == key_id)
		return slot->cipher;
	tup = find_key_row(key_id, &desc);
	if (tup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger data key %d does not exist", key_id),
				 errdetail("A sealed row names a data key that ledger.keys does not hold.")));
	root = root_key();
	wrapped = wrapped_bytes(tup, desc);
	wrap_aad_data(aad, key_id,
				  DatumGetInt32(heap_getattr(tup, Anum_key_version, desc, &isnull)));
	ok = ledger_aead_open(root, wrapped, aad, sizeof(aad),
						  wrapped + LEDGER_NONCE_LEN,
						  LEDGER_KEY_LEN + LEDGER_TAG_LEN, key);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger data key %d cannot be unwrapped", key_id),
				 errdetail("The root key does not authenticate the wrapped data key; ledger.keys has been altered.")));
	PG_TRY();
	{
		slot->cipher = ledger_cipher_create(key);
	}
	PG_FINALLY();
	{
		ledger_wipe(key, sizeof(key));
	}
	PG_END_TRY();
	slot->key_id = key_id;
	return slot->cipher;
}
