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
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static bool preloaded = false;

/* OIDs of the extension's relations, looked up once per invalidation. */
typedef struct OidCacheEntry
{
	const char *name;
	Oid			oid;
} OidCacheEntry;

static OidCacheEntry oid_cache[] = {
	{"journal"}, {"journal_revision_idx"}, {"keys"}, {"tables"},
	{"tables_relid_idx"}, {"table_id_seq"}, {"key_id_seq"},
	{"document_id_seq"}, {NULL}
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
	CacheRegisterRelcacheCallback(reset_oid_cache, (Datum) 0);
	ledger_catalog_init();
	ledger_guard_init();
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
