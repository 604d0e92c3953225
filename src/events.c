/*-------------------------------------------------------------------------
 *
 * events.c
 *	  Schema changes and redactions, recorded in the chain.
 *
 * The ledger's own catalog is journaled like a table: table id 0.  Its
 * document for a ledger table has that table's id as document id, and
 * each transaction that changed the table (CREATE, ALTER, deletion
 * protection, DROP, a redaction) appends one revision of it at commit: a
 * JSON description of the table as the transaction leaves it, with the
 * kinds of change and any redacted revisions.  These payloads are not
 * sealed (a schema is no secret, and an auditor must read it without
 * keys); their data hash is SHA-256 of the JSON.  Being revisions, they
 * join the transaction's Merkle tree and the blocks like any other.
 *
 * ledger_redact_revision() lives here too: it destroys one old revision's
 * payload and records that it did.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(ledger_redact_revision);

#define REDACTOR_ROLE	"ledger_redactor"

typedef struct PendingEvent
{
	Oid			relid;
	int64		table_id;
	char	   *name;			/* qualified, as of the last change */
	int			kinds;			/* EVENT_* bits */
	SubTransactionId subid;
	List	   *redacted;		/* "doc_id,version" strings */
} PendingEvent;

static const char *const kind_names[] = {"create", "alter", "protection",
"plaintext set", "drop", "redact", "data key"};

static List *pending = NIL;		/* in TopTransactionContext */

/*
 * The pending event of a table in the current subtransaction, with a
 * change of this kind noted.  One per subtransaction, so that a rollback
 * to a savepoint takes exactly its own changes away.
 */
static PendingEvent *
note(Oid relid, int64 table_id, int kind)
{
	MemoryContext old;
	ListCell   *lc;
	char	   *nsp;
	char	   *rel;
	PendingEvent *e = NULL;

	/*
	 * Past pre-commit, only ON COMMIT DROP of a temporary table can change
	 * a ledger table; it was created in this very transaction, which
	 * recorded it, and it vanishes with the session anyway.
	 */
	if (ledger_chain_entry_written())
	{
		if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
			return NULL;
		elog(ERROR, "ledger table changed after its transaction's entry was made");
	}
	nsp = get_namespace_name(get_rel_namespace(relid));
	rel = get_rel_name(relid);
	old = MemoryContextSwitchTo(TopTransactionContext);
	foreach(lc, pending)
		if (((PendingEvent *) lfirst(lc))->table_id == table_id &&
			((PendingEvent *) lfirst(lc))->subid == GetCurrentSubTransactionId())
			e = lfirst(lc);
	if (e == NULL)
	{
		e = palloc0(sizeof(PendingEvent));
		e->relid = relid;
		e->table_id = table_id;
		e->subid = GetCurrentSubTransactionId();
		pending = lappend(pending, e);
	}
	if (nsp != NULL && rel != NULL)
		e->name = pstrdup(quote_qualified_identifier(nsp, rel));
	e->kinds |= 1 << kind;
	MemoryContextSwitchTo(old);
	return e;
}

void
ledger_note_event(Oid relid, int64 table_id, int kind)
{
	(void) note(relid, table_id, kind);
}

/* A subtransaction that rolls back takes its new events with it. */
void
ledger_events_subxact_abort(SubTransactionId subid)
{
	ListCell   *lc;

	foreach(lc, pending)
		if (((PendingEvent *) lfirst(lc))->subid >= subid)
			pending = foreach_delete_current(pending, lc);
}

bool
ledger_events_pending(void)
{
	return pending != NIL;
}

void
ledger_events_xact_end(void)
{
	pending = NIL;				/* freed with TopTransactionContext */
}

/* The table as the transaction leaves it, for the event's payload. */
static void
describe_table(StringInfo out, PendingEvent *e)
{
	Relation	rel = (e->kinds & (1 << LEDGER_EVENT_DROP)) ? NULL :
		try_relation_open(e->relid, AccessShareLock);

	appendStringInfoString(out, "\"table\": ");
	escape_json(out, e->name ? e->name : "");
	if (rel == NULL)
		return;
	appendStringInfoString(out, ", \"columns\": [");
	for (int i = 0, n = 0; i < RelationGetNumberOfAttributes(rel); i++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);

		if (att->attisdropped)
			continue;
		appendStringInfo(out, "%s{\"attnum\": %d, \"name\": ", n++ ? ", " : "", att->attnum);
		escape_json(out, NameStr(att->attname));
		appendStringInfoString(out, ", \"type\": ");
		escape_json(out, format_type_with_typemod(att->atttypid, att->atttypmod));
		appendStringInfo(out, ", \"not_null\": %s}", att->attnotnull ? "true" : "false");
	}
	appendStringInfoString(out, "], \"plaintext_set\": [");
	{
		LedgerTable *t = ledger_table(rel);
		int			x = -1;
		int			n = 0;

		while ((x = bms_next_member(t->plainset, x)) >= 0)
			appendStringInfo(out, "%s%d", n++ ? ", " : "", x);
		appendStringInfo(out, "], \"deletion_protection\": %s",
						 t->deletion_protection ? "true" : "false");
	}
	relation_close(rel, AccessShareLock);
}

/* The next version of a table's document in the catalog's journal. */
static int32
next_version(Relation journal, int64 table_id)
{
	Relation	index = index_open(ledger_relation_oid("journal_revision_idx"), AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	int32		version = 0;
	bool		isnull;

	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(0));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(table_id));
	scan = systable_beginscan_ordered(journal, index, SnapshotAny, 2, key);
	tup = systable_getnext_ordered(scan, BackwardScanDirection);
	if (HeapTupleIsValid(tup))
		version = DatumGetInt32(heap_getattr(tup, Anum_journal_version,
											 RelationGetDescr(journal), &isnull)) + 1;
	systable_endscan_ordered(scan);
	index_close(index, AccessShareLock);
	return version;
}

static void
append_event(PendingEvent *e)
{
	Relation	journal = table_open(ledger_relation_oid("journal"), AccessShareLock);
	StringInfoData json;
	LedgerRevision rev;
	ListCell   *lc;
	int			n = 0;

	/* Changes of one table take turns for its version numbers. */
	LockDatabaseObject(ledger_relation_oid("tables"), (Oid) e->table_id, 0, ExclusiveLock);
	initStringInfo(&json);
	appendStringInfoString(&json, "{\"events\": [");
	for (int k = 0; k < lengthof(kind_names); k++)
		if (e->kinds & (1 << k))
			appendStringInfo(&json, "%s\"%s\"", n++ ? ", " : "", kind_names[k]);
	appendStringInfo(&json, "], \"table_id\": %lld, ", (long long) e->table_id);
	describe_table(&json, e);
	if (e->redacted != NIL)
	{
		appendStringInfoString(&json, ", \"redacted\": [");
		foreach(lc, e->redacted)
			appendStringInfo(&json, "%s%s", foreach_current_index(lc) ? ", " : "",
							 (char *) lfirst(lc));
		appendStringInfoChar(&json, ']');
	}
	appendStringInfoChar(&json, '}');

	memset(&rev, 0, sizeof(rev));
	rev.table_id = LEDGER_CATALOG_TABLE_ID;
	rev.doc_id = e->table_id;
	rev.version = next_version(journal, e->table_id);
	rev.op = rev.version == 0 ? LEDGER_OP_INSERT : LEDGER_OP_UPDATE;
	rev.payload = palloc(VARHDRSZ + json.len);
	SET_VARSIZE(rev.payload, VARHDRSZ + json.len);
	memcpy(VARDATA(rev.payload), json.data, json.len);
	ledger_sha256((uint8 *) json.data, json.len, rev.data_hash);
	ledger_revision_hash(&rev);
	table_close(journal, AccessShareLock);
	ledger_journal_append(&rev);
}

static int
event_cmp(const ListCell *a, const ListCell *b)
{
	const PendingEvent *x = lfirst(a);
	const PendingEvent *y = lfirst(b);

	if (x->table_id != y->table_id)
		return x->table_id < y->table_id ? -1 : 1;
	return x->subid < y->subid ? -1 : x->subid > y->subid;
}

/* At pre-commit, before the transaction's entry is made. */
void
ledger_events_flush(void)
{
	ListCell   *lc;

	if (pending == NIL || !OidIsValid(ledger_relation_oid("journal")))
		return;					/* nothing, or DROP EXTENSION */
	/* In table order, so that two committing transactions never deadlock. */
	list_sort(pending, event_cmp);
	foreach(lc, pending)
		append_event(lfirst(lc));
	pending = NIL;
}

/* ------------------------------------------------------------------------
 * Redaction
 * ------------------------------------------------------------------------
 */

/*
 * The journal row of a revision, and whether a newer one exists.  The
 * caller holds a lock that keeps other redactions of the table away.
 */
static HeapTuple
find_revision(Relation journal, int64 table_id, int64 doc_id, int32 version,
			  bool *newest)
{
	Relation	index = index_open(ledger_relation_oid("journal_revision_idx"), AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	HeapTuple	found = NULL;
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());

	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(table_id));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(doc_id));
	scan = systable_beginscan_ordered(journal, index, snap, 2, key);
	*newest = true;
	while ((tup = systable_getnext_ordered(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		int32		v = DatumGetInt32(heap_getattr(tup, Anum_journal_version,
												   RelationGetDescr(journal), &isnull));

		if (v == version)
			found = heap_copytuple(tup);
		else if (v > version)
			*newest = false;
	}
	systable_endscan_ordered(scan);
	index_close(index, AccessShareLock);
	UnregisterSnapshot(snap);
	return found;
}

Datum
ledger_redact_revision(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int64		doc_id = PG_GETARG_INT64(1);
	int32		version = PG_GETARG_INT32(2);
	Oid			redactor = get_role_oid(REDACTOR_ROLE, true);
	Relation	rel;
	Relation	journal;
	HeapTuple	tup;
	HeapTuple	newtup;
	bool		newest;
	bool		isnull;
	Datum		values[10];
	bool		nulls[10];
	bool		replace[10] = {0};
	int64		table_id;
	PendingEvent *event;
	MemoryContext old;

	if (!OidIsValid(redactor) || !has_privs_of_role(GetUserId(), redactor))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to redact ledger revisions"),
				 errdetail("Only members of role \"%s\" may redact.", REDACTOR_ROLE),
				 errhint("A superuser runs CREATE ROLE %s NOLOGIN and grants it to the roles that handle erasure requests.",
						 REDACTOR_ROLE)));
	/* Self-conflicting: redactions of one table take turns. */
	rel = ledger_open_table(relid, ShareUpdateExclusiveLock, 0);
	table_id = ledger_table(rel)->table_id;

	journal = table_open(ledger_relation_oid("journal"), RowExclusiveLock);
	tup = find_revision(journal, table_id, doc_id, version, &newest);
	if (tup == NULL)
		ledger_not_possible("the revision does not exist",
					  "Name a revision by its document id and version, as ledger_history() shows them.");
	if (DatumGetChar(heap_getattr(tup, Anum_journal_op, RelationGetDescr(journal), &isnull)) == LEDGER_OP_DELETE)
		ledger_not_possible("a deletion has no data to redact",
					  "Redact the revisions before the deletion.");
	if (newest)
		ledger_not_possible("the current revision of a document cannot be redacted",
					  "Delete or update the row first; its older revisions can then be redacted.");
	(void) heap_getattr(tup, Anum_journal_payload, RelationGetDescr(journal), &isnull);
	if (isnull)
		ledger_not_possible("the revision is already redacted",
					  "Nothing is left to remove.");

	/* The payload goes; every hash stays, so digests and proofs hold. */
	nulls[Anum_journal_payload - 1] = true;
	values[Anum_journal_payload - 1] = (Datum) 0;
	replace[Anum_journal_payload - 1] = true;
	newtup = heap_modify_tuple(tup, RelationGetDescr(journal), values, nulls, replace);
	CatalogTupleUpdate(journal, &tup->t_self, newtup);
	table_close(journal, RowExclusiveLock);

	event = note(relid, table_id, LEDGER_EVENT_REDACT);
	old = MemoryContextSwitchTo(TopTransactionContext);
	event->redacted = lappend(event->redacted,
							  psprintf("{\"doc_id\": %lld, \"version\": %d}",
									   (long long) doc_id, version));
	MemoryContextSwitchTo(old);
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}
