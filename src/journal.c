/*-------------------------------------------------------------------------
 *
 * journal.c
 *	  ledger.journal: one immutable sealed revision per change, forever.
 *
 * Revisions are appended in the writing transaction, so a rolled-back
 * (sub)transaction leaves none behind.  The extension writes the journal
 * and its other tables through heap directly; SQL reaches them through
 * the "ledger_internal" access method, which refuses every change, so the
 * journal is append-only even for superusers.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"
#include "executor/tuptable.h"

PG_FUNCTION_INFO_V1(ledger_internal_handler);

static bool xact_wrote_journal = false;

static HeapTuple
form_revision(Relation rel, const LedgerRevision *rev)
{
	Datum		values[Natts_journal];
	bool		nulls[Natts_journal];
	bool		tombstone = (rev->payload == NULL);

	memset(nulls, false, sizeof(nulls));
	values[Anum_journal_table_id - 1] = Int64GetDatum(rev->table_id);
	values[Anum_journal_doc_id - 1] = Int64GetDatum(rev->doc_id);
	values[Anum_journal_version - 1] = Int32GetDatum(rev->version);
	values[Anum_journal_op - 1] = CharGetDatum(rev->op);
	values[Anum_journal_xid - 1] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[Anum_journal_key_id - 1] = Int32GetDatum(rev->key_id);
	values[Anum_journal_payload - 1] = PointerGetDatum(rev->payload);
	values[Anum_journal_data_hash - 1] = ledger_hash_datum(rev->data_hash);
	values[Anum_journal_revision_hash - 1] = ledger_hash_datum(rev->revision_hash);
	values[Anum_journal_written_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	nulls[Anum_journal_key_id - 1] = tombstone || rev->key_id == 0;
	nulls[Anum_journal_payload - 1] = tombstone;
	nulls[Anum_journal_data_hash - 1] = tombstone;
	return heap_form_tuple(RelationGetDescr(rel), values, nulls);
}

/*
 * Append revisions in one go: heap_multi_insert writes one WAL record per
 * page instead of one per row, which is most of what a bulk load costs.
 * Index entries take each row's TID from its slot: when heap moves a large
 * payload out of line it inserts a copy, and only the slot learns the TID.
 */
void
ledger_journal_append_many(const LedgerRevision *revs, int n)
{
	Relation	rel = table_open(ledger_relation_oid("journal"), RowExclusiveLock);
	CatalogIndexState indstate = CatalogOpenIndexes(rel);
	TupleTableSlot **slots = palloc(sizeof(TupleTableSlot *) * Max(n, 1));
	/* unpinned, as in ledger_multi_insert */
	TupleDesc	desc = CreateTupleDescCopy(RelationGetDescr(rel));

	for (int i = 0; i < n; i++)
	{
		slots[i] = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
		ExecStoreHeapTuple(form_revision(rel, &revs[i]), slots[i], true);
		ledger_chain_note_revision(&revs[i]);
	}
	heap_multi_insert(rel, slots, n, GetCurrentCommandId(true), 0, NULL);
	for (int i = 0; i < n; i++)
	{
		for (int k = 0; k < indstate->ri_NumIndices; k++)
		{
			Relation	index = indstate->ri_IndexRelationDescs[k];
			IndexInfo  *info = indstate->ri_IndexRelationInfo[k];
			Datum		values[INDEX_MAX_KEYS];
			bool		isnull[INDEX_MAX_KEYS];

			FormIndexDatum(info, slots[i], NULL, values, isnull);
			index_insert(index, values, isnull, &slots[i]->tts_tid, rel,
						 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
						 false, info);
		}
		ExecDropSingleTupleTableSlot(slots[i]);
	}
	pfree(slots);
	CatalogCloseIndexes(indstate);
	table_close(rel, RowExclusiveLock);
	xact_wrote_journal = true;
}

void
ledger_journal_append(const LedgerRevision *rev)
{
	ledger_journal_append_many(rev, 1);
}

/*
 * The sealed payload of a revision, for rows that keep only a reference.
 * Any version of the journal row is considered, even one whose inserter
 * is still running (a dirty-snapshot uniqueness check may open such a
 * row); match() picks the one whose header is the row's.
 */
bytea *
ledger_journal_payload(int64 table_id, int64 doc_id, int32 version,
					   bool (*match) (bytea *payload, void *arg), void *arg)
{
	Relation	rel = table_open(ledger_relation_oid("journal"), AccessShareLock);
	ScanKeyData key[3];
	SysScanDesc scan;
	HeapTuple	tup;
	bytea	   *found = NULL;

	ScanKeyInit(&key[0], Anum_journal_table_id, BTEqualStrategyNumber,
				F_INT8EQ, Int64GetDatum(table_id));
	ScanKeyInit(&key[1], Anum_journal_doc_id, BTEqualStrategyNumber,
				F_INT8EQ, Int64GetDatum(doc_id));
	ScanKeyInit(&key[2], Anum_journal_version, BTEqualStrategyNumber,
				F_INT4EQ, Int32GetDatum(version));
	scan = systable_beginscan(rel, ledger_relation_oid("journal_revision_idx"),
							  true, SnapshotAny, 3, key);
	while (found == NULL && (tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_journal_payload,
									 RelationGetDescr(rel), &isnull);
		bytea	   *payload;

		if (isnull)
			continue;
		payload = DatumGetByteaPCopy(d);
		if (match(payload, arg))
			found = payload;
		else
			pfree(payload);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Up to n revisions of transaction xid, from the key "from" on in key
 * order, each as its key and revision hash; returns how many there were.
 * An index scan of journal_revision_idx that steps over other
 * transactions' revisions: proofs need it fast whatever the planner's
 * statistics, which a fresh bulk load does not have yet.
 */
int64
ledger_journal_revisions_from(FullTransactionId xid, const LedgerKeyedHash *from,
							  int64 n, LedgerKeyedHash *out)
{
	Relation	rel = table_open(ledger_relation_oid("journal"), AccessShareLock);
	Relation	index = index_open(ledger_relation_oid("journal_revision_idx"), AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ScanKeyData row[3];
	ScanKeyData key;
	IndexScanDesc scan;
	int64		found = 0;

	/* (table_id, doc_id, version) >= from, as btree takes a row comparison */
	ScanKeyEntryInitialize(&row[0], SK_ROW_MEMBER, 1, BTGreaterEqualStrategyNumber,
						   INT8OID, InvalidOid, F_BTINT8CMP, Int64GetDatum(from->table_id));
	ScanKeyEntryInitialize(&row[1], SK_ROW_MEMBER, 2, BTGreaterEqualStrategyNumber,
						   INT8OID, InvalidOid, F_BTINT8CMP, Int64GetDatum(from->doc_id));
	ScanKeyEntryInitialize(&row[2], SK_ROW_MEMBER | SK_ROW_END, 3, BTGreaterEqualStrategyNumber,
						   INT4OID, InvalidOid, F_BTINT4CMP, Int32GetDatum(from->version));
	/* set by hand, as the executor does: the header has no function */
	MemSet(&key, 0, sizeof(key));
	key.sk_flags = SK_ROW_HEADER;
	key.sk_attno = 1;
	key.sk_strategy = BTGreaterEqualStrategyNumber;
	key.sk_argument = PointerGetDatum(row);
	scan = index_beginscan(rel, index, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (found < n && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		LedgerKeyedHash *r = &out[found];

		CHECK_FOR_INTERRUPTS();
		if (!FullTransactionIdEquals(DatumGetFullTransactionId(slot_getattr(slot, Anum_journal_xid, &isnull)),
									 xid))
			continue;
		r->table_id = DatumGetInt64(slot_getattr(slot, Anum_journal_table_id, &isnull));
		r->doc_id = DatumGetInt64(slot_getattr(slot, Anum_journal_doc_id, &isnull));
		r->version = DatumGetInt32(slot_getattr(slot, Anum_journal_version, &isnull));
		if (!ledger_hash_from_datum(slot_getattr(slot, Anum_journal_revision_hash, &isnull), isnull,
									r->hash))
			ledger_damaged_stored_hash();
		found++;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Document ids come from a sequence, which parallel mode forbids; the
 * leader of a parallel CREATE TABLE AS inserts in parallel mode.  There an
 * id is made of the top transaction id and a counter, in a range the
 * sequence never reaches (bit 62 set): unique, though not ordered.
 */
#define PARALLEL_DOC_ID_BASE	(INT64CONST(1) << 62)
#define PARALLEL_DOC_ID_BITS	24

static uint32 parallel_doc_ids = 0;

int64
ledger_next_document_id(void)
{
	FullTransactionId fxid;

	if (!IsInParallelMode())
		return nextval_internal(ledger_relation_oid("document_id_seq"), false);
	fxid = GetTopFullTransactionIdIfAny();
	if (!FullTransactionIdIsValid(fxid) ||
		U64FromFullTransactionId(fxid) >= (UINT64CONST(1) << (62 - PARALLEL_DOC_ID_BITS)) ||
		parallel_doc_ids >= (1U << PARALLEL_DOC_ID_BITS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot assign ledger document ids during this parallel operation"),
				 errhint("Set max_parallel_workers_per_gather to 0 for this statement.")));
	return PARALLEL_DOC_ID_BASE |
		(int64) (U64FromFullTransactionId(fxid) << PARALLEL_DOC_ID_BITS) |
		parallel_doc_ids++;
}

bool
ledger_xact_wrote_journal(void)
{
	return xact_wrote_journal;
}

void
ledger_journal_xact_end(void)
{
	xact_wrote_journal = false;
	parallel_doc_ids = 0;
}

/* ------------------------------------------------------------------------
 * The access method of ledger.journal and the extension's catalogs
 * ------------------------------------------------------------------------
 */

static TableAmRoutine internal_methods;

static void
refuse_change(Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot change \"%s\": it is written only by the ledger extension",
					RelationGetRelationName(rel)),
			 errdetail("The ledger's journal and key catalogs are append-only records."),
			 errhint("Change ledger tables instead; each change appends its revision here.")));
}

static void
ao_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid,
				int options, struct BulkInsertStateData *bistate)
{
	refuse_change(rel);
}

static void
ao_tuple_insert_speculative(Relation rel, TupleTableSlot *slot, CommandId cid,
							int options, struct BulkInsertStateData *bistate,
							uint32 specToken)
{
	refuse_change(rel);
}

static void
ao_multi_insert(Relation rel, TupleTableSlot **slots, int nslots,
				CommandId cid, int options, struct BulkInsertStateData *bistate)
{
	refuse_change(rel);
}

static TM_Result
ao_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
				Snapshot snapshot, Snapshot crosscheck, bool wait,
				TM_FailureData *tmfd, bool changingPart)
{
	refuse_change(rel);
	return TM_Invisible;		/* not reached */
}

static TM_Result
ao_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
				CommandId cid, Snapshot snapshot, Snapshot crosscheck,
				bool wait, TM_FailureData *tmfd, LockTupleMode *lockmode,
				bool *update_indexes)
{
	refuse_change(rel);
	return TM_Invisible;		/* not reached */
}

static void
ao_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode,
							 char persistence, TransactionId *freezeXid,
							 MultiXactId *minmulti)
{
	if (!RelFileNodeEquals(*newrnode, rel->rd_node))
		refuse_change(rel);		/* TRUNCATE, not creation */
	GetHeapamTableAmRoutine()->relation_set_new_filenode(rel, newrnode,
														 persistence,
														 freezeXid, minmulti);
}

static void
ao_relation_nontransactional_truncate(Relation rel)
{
	refuse_change(rel);
}

Datum
ledger_internal_handler(PG_FUNCTION_ARGS)
{
	if (internal_methods.type == 0)
	{
		internal_methods = *GetHeapamTableAmRoutine();
		internal_methods.tuple_insert = ao_tuple_insert;
		internal_methods.tuple_insert_speculative = ao_tuple_insert_speculative;
		internal_methods.multi_insert = ao_multi_insert;
		internal_methods.tuple_delete = ao_tuple_delete;
		internal_methods.tuple_update = ao_tuple_update;
		internal_methods.relation_set_new_filenode = ao_relation_set_new_filenode;
		internal_methods.relation_nontransactional_truncate = ao_relation_nontransactional_truncate;
		/* heap's own build scans accept no routine but heap's */
		internal_methods.index_build_range_scan = ledger_index_build_range_scan;
		internal_methods.index_validate_scan = ledger_index_validate_scan;
	}
	PG_RETURN_POINTER(&internal_methods);
}
