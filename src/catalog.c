/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  ledger.tables: the registry of ledger tables, their stable ids, data
 *	  keys, deletion protection and plaintext sets, plus the per-table
 *	  cache that the read and write paths consult.
 *
 * The plaintext set P of a table is the set of columns kept in the clear
 * in its physical tuples.  It only ever grows.  Stored P always covers
 * every column an index references; see ledger_check_index_columns().
 *
 * The cache is keyed by relation OID and is invalidated through relcache
 * invalidation, which every change here sends.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* Columns of ledger.tables, as created by sql/ledger--0.1.sql. */
enum
{
	Anum_tables_table_id = 1,
	Anum_tables_relid,
	Anum_tables_data_key_id,
	Anum_tables_plainset,
	Anum_tables_deletion_protection,
	Anum_tables_created_at,
	Anum_tables_dropped_at,
	Natts_tables = Anum_tables_dropped_at
};

static HTAB *table_cache = NULL;

static void
invalidate_table(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	LedgerTable *t;

	if (table_cache == NULL)
		return;
	hash_seq_init(&status, table_cache);
	while ((t = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || t->relid == relid)
			t->valid = false;
}

void
ledger_catalog_init(void)
{
	CacheRegisterRelcacheCallback(invalidate_table, (Datum) 0);
}

static HeapTuple
scan_table_row(Relation tables, Oid relid, Snapshot snap)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup,
				found = NULL;

	ScanKeyInit(&key, Anum_tables_relid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(tables, ledger_relation_oid("tables_relid_idx"),
							  true, snap, 1, &key);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;

		(void) heap_getattr(tup, Anum_tables_dropped_at,
							RelationGetDescr(tables), &isnull);
		if (isnull)
		{
			found = heap_copytuple(tup);
			break;
		}
	}
	systable_endscan(scan);
	return found;
}

/*
 * The registry row of a table, or NULL.  A fresh MVCC snapshot sees
 * either the old or the new row of a table whose data key the worker is
 * replacing, never neither; SnapshotSelf then also sees rows this
 * transaction wrote in the current command (CREATE TABLE AS registers the
 * table and fills it in one command).
 */
static HeapTuple
find_table_row(Relation tables, Oid relid)
{
	HeapTuple	found = scan_table_row(tables, relid, ledger_lookup_snapshot(tables));

	return found != NULL ? found : scan_table_row(tables, relid, SnapshotSelf);
}

static Bitmapset *
plainset_from_datum(Datum d)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Datum	   *elems;
	int			n;
	Bitmapset  *set = NULL;

	deconstruct_array(arr, INT2OID, 2, true, TYPALIGN_SHORT, &elems, NULL, &n);
	for (int i = 0; i < n; i++)
		set = bms_add_member(set, DatumGetInt16(elems[i]));
	return set;
}

static Datum
plainset_to_datum(const Bitmapset *set)
{
	int			n = bms_num_members(set);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0,
				x = -1;

	while ((x = bms_next_member(set, x)) >= 0)
		elems[i++] = Int16GetDatum((int16) x);
	return PointerGetDatum(construct_array(elems, n, INT2OID, 2, true,
										   TYPALIGN_SHORT));
}

/*
 * Whether values of a type have binary send/receive all the way down: an
 * array's, range's or composite's binary form calls its members'.
 */
static bool
type_has_binary_io(Oid typoid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typoid));
	Form_pg_type typ;
	bool		binary;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typoid);
	typ = (Form_pg_type) GETSTRUCT(tup);
	binary = OidIsValid(typ->typsend) && OidIsValid(typ->typreceive);
	if (binary && typ->typtype == TYPTYPE_DOMAIN)
		binary = type_has_binary_io(typ->typbasetype);
	else if (binary && OidIsValid(typ->typelem) && IsTrueArrayType(typ))
		binary = type_has_binary_io(typ->typelem);
	else if (binary && typ->typtype == TYPTYPE_RANGE)
		binary = type_has_binary_io(get_range_subtype(typoid));
	else if (binary && typ->typtype == TYPTYPE_COMPOSITE && OidIsValid(typ->typrelid))
	{
		Relation	rel = relation_open(typ->typrelid, AccessShareLock);
		TupleDesc	desc = RelationGetDescr(rel);

		for (int i = 0; binary && i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped)
				binary = type_has_binary_io(TupleDescAttr(desc, i)->atttypid);
		relation_close(rel, AccessShareLock);
	}
	ReleaseSysCache(tup);
	return binary;
}

static void
load_columns(LedgerTable *t, TupleDesc desc)
{
	t->natts = desc->natts;
	t->columns = MemoryContextAllocZero(CacheMemoryContext,
										sizeof(LedgerColumn) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		LedgerColumn *col = &t->columns[i];
		Oid			sendfn,
					recvfn;
		bool		isvarlena;

		col->dropped = att->attisdropped;
		col->typlen = att->attlen;
		col->typbyval = att->attbyval;
		if (col->dropped)
			continue;
		/* A domain travels as its base type, as in COPY BINARY. */
		col->typmod = att->atttypmod;
		col->typoid = getBaseTypeAndTypmod(att->atttypid, &col->typmod);
		/* Types without binary I/O travel as text, as COPY would send them */
		col->text_io = !type_has_binary_io(col->typoid);
		if (col->text_io)
		{
			getTypeOutputInfo(col->typoid, &sendfn, &isvarlena);
			getTypeInputInfo(col->typoid, &recvfn, &col->typioparam);
		}
		else
		{
			getTypeBinaryOutputInfo(col->typoid, &sendfn, &isvarlena);
			getTypeBinaryInputInfo(col->typoid, &recvfn, &col->typioparam);
		}
		fmgr_info_cxt(sendfn, &col->send, CacheMemoryContext);
		fmgr_info_cxt(recvfn, &col->recv, CacheMemoryContext);
	}
}

/* The cache entry of a ledger table; an error if it is not registered. */
LedgerTable *
ledger_table(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	LedgerTable *t;
	bool		found;
	Relation	tables;
	HeapTuple	tup;
	TupleDesc	tdesc;
	bool		isnull;

	if (table_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(LedgerTable);
		ctl.hcxt = CacheMemoryContext;
		table_cache = hash_create("ledger tables", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	t = hash_search(table_cache, &relid, HASH_ENTER, &found);
	if (found && t->valid)
		return t;
	if (found)
	{
		bms_free(t->plainset);
		pfree(t->columns);
	}
	t->valid = false;
	t->plainset = NULL;
	t->columns = NULL;
	t->natts = 0;
	t->indexes_plain = -1;

	tables = table_open(ledger_relation_oid("tables"), AccessShareLock);
	tdesc = RelationGetDescr(tables);
	tup = find_table_row(tables, relid);
	if (tup == NULL)
	{
		table_close(tables, AccessShareLock);
		hash_search(table_cache, &relid, HASH_REMOVE, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not registered as a ledger table",
						RelationGetRelationName(rel)),
				 errdetail("ledger.tables has no entry for it."),
				 errhint("Ledger tables must be created while the ledger extension is installed in the database.")));
	}
	t->table_id = DatumGetInt64(heap_getattr(tup, Anum_tables_table_id, tdesc, &isnull));
	t->data_key_id = DatumGetInt32(heap_getattr(tup, Anum_tables_data_key_id, tdesc, &isnull));
	t->deletion_protection = DatumGetBool(heap_getattr(tup, Anum_tables_deletion_protection, tdesc, &isnull));
	{
		MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);

		t->plainset = plainset_from_datum(heap_getattr(tup, Anum_tables_plainset, tdesc, &isnull));
		MemoryContextSwitchTo(old);
	}
	table_close(tables, AccessShareLock);
	load_columns(t, RelationGetDescr(rel));
	t->valid = true;
	return t;
}

/* Keep ANALYZE away from a sealed column, or let it in again. */
static void
set_column_statistics(Oid relid, AttrNumber attnum, bool sealed)
{
	Relation	attrel;
	HeapTuple	tup;
	Form_pg_attribute att;

	if (!sealed && ledger_analyze_sealed_columns)
		return;
	attrel = table_open(AttributeRelationId, RowExclusiveLock);
	tup = SearchSysCacheCopy2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
	if (HeapTupleIsValid(tup))
	{
		att = (Form_pg_attribute) GETSTRUCT(tup);
		if (!att->attisdropped && (sealed ? !ledger_analyze_sealed_columns : att->attstattarget == 0))
		{
			att->attstattarget = sealed ? 0 : -1;
			CatalogTupleUpdate(attrel, &tup->t_self, tup);
		}
	}
	table_close(attrel, RowExclusiveLock);
}

/* Called when a column is added to a registered ledger table. */
void
ledger_column_added(Oid relid, AttrNumber attnum)
{
	CommandCounterIncrement();	/* the new pg_attribute row */
	set_column_statistics(relid, attnum, true);
}

/*
 * Register a new ledger table: a stable id, a data key, deletion
 * protection as configured, and an empty plaintext set.
 */
void
ledger_register_table(Oid relid)
{
	Relation	tables = table_open(ledger_relation_oid("tables"), RowExclusiveLock);
	Datum		values[Natts_tables];
	bool		nulls[Natts_tables];
	HeapTuple	tup;
	int64		table_id = nextval_internal(ledger_relation_oid("table_id_seq"), false);
	Relation	rel;
	int			natts;

	memset(nulls, false, sizeof(nulls));
	values[Anum_tables_table_id - 1] = Int64GetDatum(table_id);
	values[Anum_tables_relid - 1] = ObjectIdGetDatum(relid);
	values[Anum_tables_data_key_id - 1] = Int32GetDatum(ledger_create_data_key(table_id));
	values[Anum_tables_plainset - 1] = plainset_to_datum(NULL);
	values[Anum_tables_deletion_protection - 1] = BoolGetDatum(ledger_default_deletion_protection);
	values[Anum_tables_created_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	nulls[Anum_tables_dropped_at - 1] = true;
	tup = heap_form_tuple(RelationGetDescr(tables), values, nulls);
	CatalogTupleInsert(tables, tup);
	table_close(tables, RowExclusiveLock);
	ledger_note_event(relid, table_id, LEDGER_EVENT_CREATE);

	/* The creating command's pg_attribute rows become visible here. */
	CommandCounterIncrement();
	rel = relation_open(relid, NoLock);
	natts = RelationGetNumberOfAttributes(rel);
	relation_close(rel, NoLock);
	for (AttrNumber a = 1; a <= natts; a++)
		set_column_statistics(relid, a, true);
	CommandCounterIncrement();
}

/*
 * Modify the registry row of relid through fn, then invalidate caches.
 * Every change of the registry is a schema event of this kind.
 */
static void
update_table_row(Oid relid, Datum (*fn) (HeapTuple, TupleDesc, int *, void *),
				 void *arg, int kind)
{
	Relation	tables = table_open(ledger_relation_oid("tables"), RowExclusiveLock);
	TupleDesc	tdesc = RelationGetDescr(tables);
	HeapTuple	tup = find_table_row(tables, relid);
	Datum		values[Natts_tables];
	bool		nulls[Natts_tables];
	bool		repl[Natts_tables];
	int			attnum;
	Datum		value;
	HeapTuple	newtup;
	bool		isnull;

	if (tup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation with OID %u is not a ledger table", relid)));
	memset(repl, false, sizeof(repl));
	memset(nulls, false, sizeof(nulls));
	ledger_note_event(relid, DatumGetInt64(heap_getattr(tup, Anum_tables_table_id, tdesc, &isnull)),
					  kind);
	value = fn(tup, tdesc, &attnum, arg);
	values[attnum - 1] = value;
	repl[attnum - 1] = true;
	newtup = heap_modify_tuple(tup, tdesc, values, nulls, repl);
	CatalogTupleUpdate(tables, &newtup->t_self, newtup);
	table_close(tables, RowExclusiveLock);
	CacheInvalidateRelcacheByRelid(relid);
	CommandCounterIncrement();
}

static Datum
grow_plainset(HeapTuple tup, TupleDesc tdesc, int *attnum, void *arg)
{
	bool		isnull;
	Bitmapset  *set = plainset_from_datum(heap_getattr(tup, Anum_tables_plainset, tdesc, &isnull));

	*attnum = Anum_tables_plainset;
	return plainset_to_datum(bms_union(set, (Bitmapset *) arg));
}

void
ledger_extend_plainset(Relation rel, Bitmapset *attnums)
{
	int			x = -1;

	update_table_row(RelationGetRelid(rel), grow_plainset, attnums, LEDGER_EVENT_PLAINSET);
	while ((x = bms_next_member(attnums, x)) >= 0)
		set_column_statistics(RelationGetRelid(rel), x, false);
}

/*
 * A parallel index build's leader may not write catalogs; its plaintext
 * set grows when the utility statement ends (guard.c), before any later
 * statement can write rows.
 */
typedef struct PendingPlainset
{
	Oid			relid;
	Bitmapset  *attnums;
} PendingPlainset;

static List *pending_plainsets = NIL;

void
ledger_extend_plainset_soon(Relation rel, Bitmapset *attnums)
{
	MemoryContext old;
	PendingPlainset *p;

	if (!IsInParallelMode())
	{
		ledger_extend_plainset(rel, attnums);
		return;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	p = palloc(sizeof(PendingPlainset));
	p->relid = RelationGetRelid(rel);
	p->attnums = bms_copy(attnums);
	pending_plainsets = lappend(pending_plainsets, p);
	MemoryContextSwitchTo(old);
}

void
ledger_apply_pending_plainsets(void)
{
	while (pending_plainsets != NIL)
	{
		PendingPlainset *p = linitial(pending_plainsets);
		Relation	rel = table_open(p->relid, NoLock);

		pending_plainsets = list_delete_first(pending_plainsets);
		ledger_extend_plainset(rel, p->attnums);
		table_close(rel, NoLock);
	}
}

/* At transaction end; the memory goes with TopTransactionContext. */
void
ledger_forget_pending_plainsets(void)
{
	pending_plainsets = NIL;
}

static Datum
set_protection(HeapTuple tup, TupleDesc tdesc, int *attnum, void *arg)
{
	*attnum = Anum_tables_deletion_protection;
	return BoolGetDatum(*(bool *) arg);
}

void
ledger_set_protection(Oid relid, bool on)
{
	update_table_row(relid, set_protection, &on, LEDGER_EVENT_PROTECTION);
}

static Datum
mark_dropped(HeapTuple tup, TupleDesc tdesc, int *attnum, void *arg)
{
	*attnum = Anum_tables_dropped_at;
	return TimestampTzGetDatum(GetCurrentTimestamp());
}

/*
 * A dropped table keeps its registry row, marked dropped: its revisions
 * stay in the journal under its table id forever.
 */
void
ledger_forget_table(Oid relid)
{
	update_table_row(relid, mark_dropped, NULL, LEDGER_EVENT_DROP);
}

/*
 * A data key rotation: the key ids from which on a table's data key is
 * new (the keys of tables below it are replaced), and how many live
 * tables there are.
 */
int32
ledger_tables_to_rekey(int64 *count)
{
	Relation	tables = table_open(ledger_relation_oid("tables"), AccessShareLock);
	SysScanDesc scan = systable_beginscan(tables, InvalidOid, false,
										  GetLatestSnapshot(), 0, NULL);
	HeapTuple	tup;
	int64		floor = nextval_internal(ledger_relation_oid("key_id_seq"), false);

	*count = 0;
	while ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;

		(void) heap_getattr(tup, Anum_tables_dropped_at, RelationGetDescr(tables), &isnull);
		if (isnull)
			(*count)++;
	}
	systable_endscan(scan);
	table_close(tables, AccessShareLock);
	return (int32) floor;
}

static Datum
new_data_key(HeapTuple tup, TupleDesc tdesc, int *attnum, void *arg)
{
	bool		isnull;

	*attnum = Anum_tables_data_key_id;
	return Int32GetDatum(ledger_create_data_key(
		DatumGetInt64(heap_getattr(tup, Anum_tables_table_id, tdesc, &isnull))));
}

/*
 * Give up to "limit" live tables whose data key is older than "floor" a
 * new one; new writes use it once sessions see the invalidation, old
 * revisions keep theirs.  A table that a session is altering or dropping
 * is skipped for now (*busy counts them): the worker never waits on a
 * session.  Returns how many tables it handled (one dropped meanwhile
 * counts too); 0 with none busy means there are none left.
 */
int
ledger_rekey_tables(int32 floor, int limit, int *busy)
{
	Relation	tables = table_open(ledger_relation_oid("tables"), AccessShareLock);
	TupleDesc	tdesc = RelationGetDescr(tables);
	SysScanDesc scan = systable_beginscan(tables, InvalidOid, false,
										  GetLatestSnapshot(), 0, NULL);
	HeapTuple	tup;
	List	   *relids = NIL;
	ListCell   *lc;

	*busy = 0;
	while (list_length(relids) < limit && (tup = systable_getnext(scan)) != NULL)
	{
		bool		live;		/* no dropped_at */
		bool		isnull;
		Oid			relid;

		(void) heap_getattr(tup, Anum_tables_dropped_at, tdesc, &live);
		if (!live ||
			DatumGetInt32(heap_getattr(tup, Anum_tables_data_key_id, tdesc, &isnull)) >= floor)
			continue;
		relid = DatumGetObjectId(heap_getattr(tup, Anum_tables_relid, tdesc, &isnull));
		if (ConditionalLockRelationOid(relid, ShareUpdateExclusiveLock))
			relids = lappend_oid(relids, relid);
		else
			(*busy)++;
	}
	systable_endscan(scan);
	foreach(lc, relids)
	{
		/* Dropped before the lock was granted: nothing to do. */
		if (find_table_row(tables, lfirst_oid(lc)) != NULL)
			update_table_row(lfirst_oid(lc), new_data_key, NULL, LEDGER_EVENT_DATA_KEY);
	}
	table_close(tables, AccessShareLock);
	return list_length(relids);
}

/*
 * Attribute numbers from a set as pull_varattnos() and the relcache give
 * them (offset by FirstLowInvalidHeapAttributeNumber).  System columns
 * are left out; a whole-row reference shows up as attribute number 0.
 */
Bitmapset *
ledger_attnums(const Bitmapset *offset_attnos)
{
	Bitmapset  *out = NULL;
	int			x = -1;

	while ((x = bms_next_member(offset_attnos, x)) >= 0)
		if (x + FirstLowInvalidHeapAttributeNumber >= 0)
			out = bms_add_member(out, x + FirstLowInvalidHeapAttributeNumber);
	return out;
}

/*
 * Every column any index of rel references, including expression and
 * predicate columns.
 */
Bitmapset *
ledger_index_attnums(Relation rel)
{
	return ledger_attnums(RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_ALL));
}

/* The stored plaintext set of a ledger table, freshly read. */
Bitmapset *
ledger_plainset_of(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	Bitmapset  *set = bms_copy(ledger_table(rel)->plainset);

	table_close(rel, NoLock);
	return set;
}
