/*-------------------------------------------------------------------------
 *
 * ledger.c
 *	  Module entry point, and lookups of the extension's own objects.
 *
 * The library must be preloaded: it installs hooks and callbacks that
 * every backend needs before it touches a ledger table.  Loaded any other
 * way it only defines its settings, and every entry point refuses to work.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_MODULE_MAGIC;

void		_PG_init(void);
static void ledger_shmem_request(void);
static void ledger_shmem_startup(void);

static bool preloaded = false;
static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* OIDs of the extension's relations, looked up once per invalidation. */
typedef struct OidCacheEntry
{
	const char *name;
	Oid			oid;
} OidCacheEntry;

static OidCacheEntry oid_cache[] = {
	{"journal"}, {"journal_revision_idx"}, {"keys"}, {"tables"},
	{"tables_relid_idx"}, {"table_id_seq"}, {"key_id_seq"},
	{"document_id_seq"}, {"journal_xid_idx"}, {"transactions"}, {"transactions_seq_idx"},
	{"blocks"}, {"blocks_number_idx"}, {NULL}
};

static void
reset_oid_cache(Datum arg, Oid relid)
{
	for (OidCacheEntry *e = oid_cache; e->name != NULL; e++)
		e->oid = InvalidOid;
}

void
_PG_init(void)
{
	ledger_define_gucs();
	if (!process_shared_preload_libraries_in_progress)
		return;
	preloaded = true;
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = ledger_shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = ledger_shmem_startup;
	CacheRegisterRelcacheCallback(reset_oid_cache, (Datum) 0);
	ledger_catalog_init();
	ledger_chain_init();
	ledger_guard_init();
	ledger_key_status_init();
	ledger_keychange_init();
	ledger_worker_register_launcher();
}

static void
ledger_shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	ledger_key_events_shmem_request();
	RequestAddinShmemSpace(add_size(add_size(ledger_chain_shmem_size(),
											 ledger_worker_shmem_size()),
									add_size(ledger_key_status_shmem_size(),
											 ledger_key_events_shmem_size())));
}

static void
ledger_shmem_startup(void)
{
	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ledger_chain_shmem_init();
	ledger_worker_shmem_init();
	ledger_key_status_shmem_init();
	ledger_key_events_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

bool
ledger_loaded_in_database(void)
{
	return preloaded;
}

/* The OID of the "ledger" table AM, or InvalidOid where it is not installed. */
Oid
ledger_am_oid(void)
{
	return get_table_am_oid("ledger", true);
}

Oid
ledger_schema_oid(void)
{
	return get_namespace_oid("ledger", true);
}

/*
 * The OID of one of the extension's relations in schema "ledger", or
 * InvalidOid if it does not exist (the extension is not installed, or is
 * being dropped).
 */
Oid
ledger_relation_oid(const char *relname)
{
	OidCacheEntry *e;

	for (e = oid_cache; e->name != NULL; e++)
		if (strcmp(e->name, relname) == 0)
			break;
	if (e->name != NULL && OidIsValid(e->oid))
		return e->oid;
	{
		Oid			nsp = ledger_schema_oid();
		Oid			oid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;

		if (e->name != NULL)
			e->oid = oid;
		return oid;
	}
}

/* Whether a relation is a ledger table, by OID. */
bool
ledger_is_ledger_relid(Oid relid)
{
	Oid			am = ledger_am_oid();
	HeapTuple	tup;
	bool		result = false;

	if (!OidIsValid(am))
		return false;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		result = ((Form_pg_class) GETSTRUCT(tup))->relam == am;
		ReleaseSysCache(tup);
	}
	return result;
}

bool
ledger_is_ledger_relation(Relation rel)
{
	return rel->rd_tableam == ledger_routine();
}

/*
 * Run the extension's own queries on schema "ledger" as its owner, after
 * the caller's rights were checked: a role may read a table's history or
 * verify the ledger without privileges on the extension's tables.  The
 * search path is pinned to pg_catalog, so that no operator or function a
 * caller created can run with the owner's rights.  An error restores the
 * caller's identity and settings with the transaction's abort.
 */
void
ledger_become_owner(LedgerUserSave *save)
{
	HeapTuple	tup;
	Oid			owner = BOOTSTRAP_SUPERUSERID;

	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(ledger_schema_oid()));
	if (HeapTupleIsValid(tup))
	{
		owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
	}
	SetUserIdAndSecContext(owner, save->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save->guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

void
ledger_restore_user(const LedgerUserSave *save)
{
	AtEOXact_GUC(true, save->guc_nest_level);
	SetUserIdAndSecContext(save->userid, save->sec_context);
}

/*
 * A snapshot to look up a row of the extension's tables that the worker
 * may be updating: an MVCC snapshot sees either the old or the new row,
 * never neither.  The newest one, except in a parallel worker, which may
 * not take one: the catalog snapshot is as consistent, if older.
 */
Snapshot
ledger_lookup_snapshot(Relation rel)
{
	if (IsInParallelMode())
		return GetCatalogSnapshot(RelationGetRelid(rel));
	return GetLatestSnapshot();
}
