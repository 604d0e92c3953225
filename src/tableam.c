/*-------------------------------------------------------------------------
 *
 * tableam.c
 *	  The "ledger" table access method: heap storage with sealed payloads.
 *
 * Every physical tuple is a heap tuple of the table's own descriptor (see
 * payload.c), so heap does MVCC, WAL, VACUUM, freezing, locking and
 * EvalPlanQual for us.  This file keeps two promises to heap:
 *
 *	- writes never hand an executor slot to heap: we build the physical
 *	  tuple and call heap_insert, heap_multi_insert, heap_update and
 *	  heap_delete ourselves, and journal the revision once heap says yes;
 *	- reads go through private buffer slots: heap's callbacks fill a slot
 *	  of ours, and the opened row goes into the caller's slot.
 *
 * Callbacks are laid out in TableAmRoutine order.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "executor/executor.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(ledger_tableam_handler);

static TableAmRoutine ledger_methods;
static const TableAmRoutine *heapam;

typedef struct LedgerIndexFetch
{
	IndexFetchTableData base;
	IndexFetchTableData *heap;
	TupleTableSlot *hslot;
} LedgerIndexFetch;

/* Speculative insertions whose revisions wait for the outcome. */
typedef struct PendingRevision
{
	Oid			relid;
	ItemPointerData tid;
	LedgerRevision rev;
} PendingRevision;

static List *pending = NIL;

/*
 * Sealing and journalling allocate per row; the executor may call us in
 * its per-query context for millions of rows, so each write works in a
 * context of its own that is emptied when the write is done.
 */
static MemoryContext write_cxt = NULL;

static MemoryContext
begin_write(void)
{
	ledger_check_use();
	/* Blocks stay below malloc's mmap threshold, so resets are cheap. */
	if (write_cxt == NULL)
		write_cxt = AllocSetContextCreate(TopMemoryContext, "ledger write",
										  0, 8 * 1024, 64 * 1024);
	return MemoryContextSwitchTo(write_cxt);
}

static void
end_write(MemoryContext old)
{
	MemoryContextSwitchTo(old);
	MemoryContextReset(write_cxt);
}

TupleTableSlot *
ledger_private_slot(Relation rel)
{
	return MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsBufferHeapTuple);
}

/* Open the physical tuple in a private slot into the caller's slot. */
static void
open_into(Relation rel, TupleTableSlot *hslot, TupleTableSlot *slot)
{
	bool		shouldFree;
	HeapTuple	phys = ExecFetchSlotHeapTuple(hslot, false, &shouldFree);

	ledger_open(rel, phys, slot);
	if (shouldFree)
		heap_freetuple(phys);
}

/*
 * After heap wrote tup, give the executor's slot its TID and, where the
 * slot can hold them, its system columns.
 */
static void
finish_write(Relation rel, TupleTableSlot *slot, HeapTuple tup)
{
	slot->tts_tableOid = RelationGetRelid(rel);
	slot->tts_tid = tup->t_self;
	if (TTS_IS_HEAPTUPLE(slot))
	{
		HeapTupleTableSlot *hs = (HeapTupleTableSlot *) slot;

		ExecMaterializeSlot(slot);
		ledger_copy_xact_fields(hs->tuple->t_data, tup->t_data);
		hs->tuple->t_self = tup->t_self;
		hs->tuple->t_tableOid = tup->t_tableOid;
	}
}

/* The payload header of the tuple at tid; false if there is none. */
bool
ledger_header_at(Relation rel, ItemPointer tid, LedgerHeader *hdr)
{
	Buffer		buf = ReadBuffer(rel, ItemPointerGetBlockNumber(tid));
	Page		page;
	ItemId		lp;
	HeapTupleData tup;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	lp = PageGetItemId(page, ItemPointerGetOffsetNumber(tid));
	if (ItemPointerGetOffsetNumber(tid) > PageGetMaxOffsetNumber(page) ||
		!ItemIdIsNormal(lp))
	{
		UnlockReleaseBuffer(buf);
		return false;
	}
	tup.t_data = (HeapTupleHeader) PageGetItem(page, lp);
	tup.t_len = ItemIdGetLength(lp);
	tup.t_self = *tid;
	tup.t_tableOid = RelationGetRelid(rel);
	PG_TRY();
	{
		ledger_read_header(rel, &tup, hdr);
	}
	PG_FINALLY();
	{
		UnlockReleaseBuffer(buf);
	}
	PG_END_TRY();
	return true;
}

/* The header of a tuple the executor is about to change. */
static void
header_for_change(Relation rel, ItemPointer tid, LedgerHeader *hdr)
{
	if (!ledger_header_at(rel, tid, hdr))
		elog(ERROR, "ledger: no tuple at (%u,%u) of \"%s\"",
			 ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid),
			 RelationGetRelationName(rel));
}

/*
 * A parallel bitmap scan's worker swaps in the leader's snapshot with
 * table_scan_update_snapshot(), which registers it and writes our fields
 * only; heap's scan must see it, and release it at its end.
 */
static void
sync_snapshot(LedgerScanDesc scan)
{
	TableScanDesc inner = scan->heap;

	if (inner->rs_snapshot == scan->rs_base.rs_snapshot)
		return;
	if (inner->rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(inner->rs_snapshot);
	inner->rs_snapshot = scan->rs_base.rs_snapshot;
	inner->rs_flags = (inner->rs_flags & ~SO_TEMP_SNAPSHOT) |
		(scan->rs_base.rs_flags & SO_TEMP_SNAPSHOT);
}

/* Scan keys are tested on opened rows; heap would see sealed NULLs. */
static bool
keys_match(TableScanDesc scan, TupleTableSlot *slot)
{
	for (int i = 0; i < scan->rs_nkeys; i++)
	{
		ScanKey		key = &scan->rs_key[i];
		bool		isnull;
		Datum		v;

		if (key->sk_flags & SK_ISNULL)
			return false;
		v = slot_getattr(slot, key->sk_attno, &isnull);
		if (isnull ||
			!DatumGetBool(FunctionCall2Coll(&key->sk_func, key->sk_collation,
											v, key->sk_argument)))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Slot related callbacks
 * ------------------------------------------------------------------------
 */

/* Opened rows are heap tuples, so system columns can be read from them. */
static const TupleTableSlotOps *
ledger_slot_callbacks(Relation rel)
{
	return &TTSOpsHeapTuple;
}

/* ------------------------------------------------------------------------
 * Table scan callbacks
 * ------------------------------------------------------------------------
 */

static TableScanDesc
ledger_scan_begin(Relation rel, Snapshot snapshot, int nkeys,
				  struct ScanKeyData *key, ParallelTableScanDesc pscan,
				  uint32 flags)
{
	LedgerScanDesc scan;

	ledger_check_use();
	scan = palloc0(sizeof(LedgerScanDescData));
	scan->heap = heapam->scan_begin(rel, snapshot, 0, NULL, pscan, flags);
	scan->rs_base = *scan->heap;
	scan->rs_base.rs_nkeys = nkeys;
	if (nkeys > 0)
	{
		scan->rs_base.rs_key = palloc(sizeof(ScanKeyData) * nkeys);
		memcpy(scan->rs_base.rs_key, key, sizeof(ScanKeyData) * nkeys);
	}
	else
		scan->rs_base.rs_key = NULL;
	scan->hslot = ledger_private_slot(rel);
	return &scan->rs_base;
}

static void
ledger_scan_end(TableScanDesc sscan)
{
	LedgerScanDesc scan = (LedgerScanDesc) sscan;

	ExecDropSingleTupleTableSlot(scan->hslot);
	sync_snapshot(scan);		/* even a worker that got no block */
	heapam->scan_end(scan->heap);
	if (sscan->rs_key)
		pfree(sscan->rs_key);
	pfree(scan);
}

static void
ledger_scan_rescan(TableScanDesc sscan, struct ScanKeyData *key,
				   bool set_params, bool allow_strat, bool allow_sync,
				   bool allow_pagemode)
{
	LedgerScanDesc scan = (LedgerScanDesc) sscan;

	ExecClearTuple(scan->hslot);
	heapam->scan_rescan(scan->heap, NULL, set_params, allow_strat,
						allow_sync, allow_pagemode);
	if (key && sscan->rs_nkeys > 0)
		memcpy(sscan->rs_key, key, sizeof(ScanKeyData) * sscan->rs_nkeys);
	sscan->rs_flags = scan->heap->rs_flags;
}

/* The next row heap's next() finds that matches the scan keys, opened. */
static bool
next_opened(TableScanDesc sscan, ScanDirection direction, TupleTableSlot *slot,
			bool (*next) (TableScanDesc, ScanDirection, TupleTableSlot *))
{
	LedgerScanDesc scan = (LedgerScanDesc) sscan;

	while (next(scan->heap, direction, scan->hslot))
	{
		open_into(sscan->rs_rd, scan->hslot, slot);
		if (keys_match(sscan, slot))
			return true;
	}
	ExecClearTuple(slot);
	return false;
}

static bool
ledger_scan_getnextslot(TableScanDesc sscan, ScanDirection direction,
						TupleTableSlot *slot)
{
	return next_opened(sscan, direction, slot, heapam->scan_getnextslot);
}

static void
ledger_scan_set_tidrange(TableScanDesc sscan, ItemPointer mintid,
						 ItemPointer maxtid)
{
	LedgerScanDesc scan = (LedgerScanDesc) sscan;

	heapam->scan_set_tidrange(scan->heap, mintid, maxtid);
}

static bool
ledger_scan_getnextslot_tidrange(TableScanDesc sscan, ScanDirection direction,
								 TupleTableSlot *slot)
{
	return next_opened(sscan, direction, slot, heapam->scan_getnextslot_tidrange);
}

/* Parallel scans share heap's block allocator unchanged. */

/* ------------------------------------------------------------------------
 * Index scan callbacks
 * ------------------------------------------------------------------------
 */

static struct IndexFetchTableData *
ledger_index_fetch_begin(Relation rel)
{
	LedgerIndexFetch *fetch;

	ledger_check_use();
	fetch = palloc0(sizeof(LedgerIndexFetch));
	fetch->heap = heapam->index_fetch_begin(rel);
	fetch->base.rel = rel;
	fetch->hslot = ledger_private_slot(rel);
	return &fetch->base;
}

static void
ledger_index_fetch_reset(struct IndexFetchTableData *scan)
{
	LedgerIndexFetch *fetch = (LedgerIndexFetch *) scan;

	ExecClearTuple(fetch->hslot);
	heapam->index_fetch_reset(fetch->heap);
}

static void
ledger_index_fetch_end(struct IndexFetchTableData *scan)
{
	LedgerIndexFetch *fetch = (LedgerIndexFetch *) scan;

	ExecDropSingleTupleTableSlot(fetch->hslot);
	heapam->index_fetch_end(fetch->heap);
	pfree(fetch);
}

static bool
ledger_index_fetch_tuple(struct IndexFetchTableData *scan, ItemPointer tid,
						 Snapshot snapshot, TupleTableSlot *slot,
						 bool *call_again, bool *all_dead)
{
	LedgerIndexFetch *fetch = (LedgerIndexFetch *) scan;

	if (!heapam->index_fetch_tuple(fetch->heap, tid, snapshot, fetch->hslot,
								   call_again, all_dead))
		return false;
	open_into(scan->rel, fetch->hslot, slot);
	return true;
}

/* ------------------------------------------------------------------------
 * Callbacks for non-modifying operations on individual tuples
 * ------------------------------------------------------------------------
 */

static bool
ledger_tuple_fetch_row_version(Relation rel, ItemPointer tid,
							   Snapshot snapshot, TupleTableSlot *slot)
{
	TupleTableSlot *hslot = ledger_private_slot(rel);
	bool		found = heapam->tuple_fetch_row_version(rel, tid, snapshot, hslot);

	if (found)
		open_into(rel, hslot, slot);
	ExecDropSingleTupleTableSlot(hslot);
	return found;
}

static bool
ledger_tuple_tid_valid(TableScanDesc sscan, ItemPointer tid)
{
	return heapam->tuple_tid_valid(((LedgerScanDesc) sscan)->heap, tid);
}

static void
ledger_tuple_get_latest_tid(TableScanDesc sscan, ItemPointer tid)
{
	heapam->tuple_get_latest_tid(((LedgerScanDesc) sscan)->heap, tid);
}

/* Heap decides visibility; it needs the physical tuple, so re-fetch it. */
static bool
ledger_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
								Snapshot snapshot)
{
	TupleTableSlot *hslot = ledger_private_slot(rel);
	bool		res = false;

	if (heapam->tuple_fetch_row_version(rel, &slot->tts_tid, SnapshotAny, hslot))
		res = heapam->tuple_satisfies_snapshot(rel, hslot, snapshot);
	ExecDropSingleTupleTableSlot(hslot);
	return res;
}

/* ------------------------------------------------------------------------
 * Manipulations of physical tuples
 * ------------------------------------------------------------------------
 */

static void
ledger_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid,
					int options, struct BulkInsertStateData *bistate)
{
	MemoryContext old = begin_write();
	LedgerRevision rev;
	HeapTuple	tup = ledger_seal(rel, slot, ledger_next_document_id(), 0,
								  LEDGER_OP_INSERT, &rev);

	heap_insert(rel, tup, cid, options, bistate);
	finish_write(rel, slot, tup);
	ledger_journal_append(&rev);
	end_write(old);
}

/*
 * A speculative insertion journals its revision only once it is confirmed,
 * so an insertion that ON CONFLICT aborts leaves no revision behind.
 */
static void
ledger_tuple_insert_speculative(Relation rel, TupleTableSlot *slot,
								CommandId cid, int options,
								struct BulkInsertStateData *bistate,
								uint32 specToken)
{
	MemoryContext old = begin_write();
	PendingRevision *p;
	LedgerRevision rev;
	HeapTuple	tup = ledger_seal(rel, slot, ledger_next_document_id(), 0,
								  LEDGER_OP_INSERT, &rev);

	HeapTupleHeaderSetSpeculativeToken(tup->t_data, specToken);
	heap_insert(rel, tup, cid, options | HEAP_INSERT_SPECULATIVE, bistate);
	finish_write(rel, slot, tup);

	MemoryContextSwitchTo(TopTransactionContext);
	p = palloc(sizeof(PendingRevision));
	p->relid = RelationGetRelid(rel);
	p->tid = tup->t_self;
	p->rev = rev;
	p->rev.payload = (bytea *) pg_detoast_datum_copy((struct varlena *) rev.payload);
	pending = lappend(pending, p);
	end_write(old);
}

static void
ledger_tuple_complete_speculative(Relation rel, TupleTableSlot *slot,
								  uint32 specToken, bool succeeded)
{
	MemoryContext old = begin_write();
	ListCell   *lc;

	if (succeeded)
		heap_finish_speculative(rel, &slot->tts_tid);
	else
		heap_abort_speculative(rel, &slot->tts_tid);
	foreach(lc, pending)
	{
		PendingRevision *p = lfirst(lc);

		if (p->relid != RelationGetRelid(rel) ||
			!ItemPointerEquals(&p->tid, &slot->tts_tid))
			continue;
		if (succeeded)
			ledger_journal_append(&p->rev);
		pending = foreach_delete_current(pending, lc);
		pfree(p->rev.payload);
		pfree(p);
		break;
	}
	end_write(old);
}

/* Forget unconfirmed speculative insertions when the transaction ends. */
void
ledger_tableam_xact_end(void)
{
	pending = NIL;				/* memory goes with TopTransactionContext */
}

static void
ledger_multi_insert(Relation rel, TupleTableSlot **slots, int nslots,
					CommandId cid, int options,
					struct BulkInsertStateData *bistate)
{
	MemoryContext old = begin_write();
	TupleTableSlot **own = palloc(sizeof(TupleTableSlot *) * nslots);
	LedgerRevision *revs = palloc(sizeof(LedgerRevision) * nslots);
	/* An unpinned copy: a thousand pins would cost a thousand linear forgets */
	TupleDesc	desc = CreateTupleDescCopy(RelationGetDescr(rel));

	for (int i = 0; i < nslots; i++)
	{
		HeapTuple	tup = ledger_seal(rel, slots[i], ledger_next_document_id(),
									  0, LEDGER_OP_INSERT, &revs[i]);

		own[i] = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
		ExecStoreHeapTuple(tup, own[i], true);
	}
	heap_multi_insert(rel, own, nslots, cid, options, bistate);
	for (int i = 0; i < nslots; i++)
	{
		finish_write(rel, slots[i], ((HeapTupleTableSlot *) own[i])->tuple);
		ExecDropSingleTupleTableSlot(own[i]);
	}
	ledger_journal_append_many(revs, nslots);
	end_write(old);
}

static TM_Result
ledger_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
					Snapshot snapshot, Snapshot crosscheck, bool wait,
					TM_FailureData *tmfd, bool changingPart)
{
	MemoryContext old = begin_write();
	LedgerHeader hdr;
	LedgerRevision rev;
	TM_Result	result;

	header_for_change(rel, tid, &hdr);
	result = heap_delete(rel, tid, cid, crosscheck, wait, tmfd, changingPart);
	if (result == TM_Ok)
	{
		ledger_tombstone(rel, &hdr, &rev);
		ledger_journal_append(&rev);
	}
	end_write(old);
	return result;
}

/*
 * The new version keeps the document id and takes the next version.  The
 * header is read at otid; if heap_update succeeds, otid was the newest
 * version, so that number is right.
 */
static TM_Result
ledger_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
					CommandId cid, Snapshot snapshot, Snapshot crosscheck,
					bool wait, TM_FailureData *tmfd, LockTupleMode *lockmode,
					bool *update_indexes)
{
	MemoryContext old = begin_write();
	LedgerHeader hdr;
	LedgerRevision rev;
	HeapTuple	tup;
	TM_Result	result;

	header_for_change(rel, otid, &hdr);
	tup = ledger_seal(rel, slot, hdr.doc_id, hdr.version + 1,
					  LEDGER_OP_UPDATE, &rev);
	result = heap_update(rel, otid, tup, cid, crosscheck, wait, tmfd, lockmode);
	*update_indexes = (result == TM_Ok && !HeapTupleIsHeapOnly(tup));
	if (result == TM_Ok)
	{
		finish_write(rel, slot, tup);
		ledger_journal_append(&rev);
	}
	end_write(old);
	return result;
}

static TM_Result
ledger_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot,
				  TupleTableSlot *slot, CommandId cid, LockTupleMode mode,
				  LockWaitPolicy wait_policy, uint8 flags,
				  TM_FailureData *tmfd)
{
	TupleTableSlot *hslot = ledger_private_slot(rel);
	TM_Result	result;

	/* heap follows the update chain and moves tid to the version it locked */
	result = heapam->tuple_lock(rel, tid, snapshot, hslot, cid, mode,
								wait_policy, flags, tmfd);
	if (!TTS_EMPTY(hslot))
		open_into(rel, hslot, slot);
	else
		ExecClearTuple(slot);
	ExecDropSingleTupleTableSlot(hslot);
	return result;
}

/* ------------------------------------------------------------------------
 * DDL related callbacks
 * ------------------------------------------------------------------------
 */

static void
refuse_truncate(Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot truncate ledger table \"%s\"", RelationGetRelationName(rel)),
			 errdetail("A ledger never loses history."),
			 errhint("Use DELETE, which records a tombstone revision for each row, or turn off deletion protection and drop the table.")));
}

/*
 * Called when the table is created, with its own relfilenode, and when
 * TRUNCATE gives it another one; only the first is allowed.
 */
static void
ledger_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode,
								 char persistence, TransactionId *freezeXid,
								 MultiXactId *minmulti)
{
	if (!RelFileNodeEquals(*newrnode, rel->rd_node))
		refuse_truncate(rel);
	heapam->relation_set_new_filenode(rel, newrnode, persistence, freezeXid,
									  minmulti);
}

static void
ledger_relation_nontransactional_truncate(Relation rel)
{
	refuse_truncate(rel);
}

static bool
ledger_scan_analyze_next_block(TableScanDesc sscan, BlockNumber blockno,
							   BufferAccessStrategy bstrategy)
{
	return heapam->scan_analyze_next_block(((LedgerScanDesc) sscan)->heap,
										   blockno, bstrategy);
}

/*
 * ANALYZE samples opened rows.  Which sealed columns it may keep statistics
 * for is decided by attstattarget; see ledger.analyze_sealed_columns.
 */
static bool
ledger_scan_analyze_next_tuple(TableScanDesc sscan, TransactionId OldestXmin,
							   double *liverows, double *deadrows,
							   TupleTableSlot *slot)
{
	LedgerScanDesc scan = (LedgerScanDesc) sscan;

	if (!heapam->scan_analyze_next_tuple(scan->heap, OldestXmin, liverows,
										 deadrows, scan->hslot))
		return false;
	open_into(sscan->rs_rd, scan->hslot, slot);
	return true;
}

/* ------------------------------------------------------------------------
 * Miscellaneous callbacks
 * ------------------------------------------------------------------------
 */

/* Ledger tuples never hold external values, so they need no TOAST table. */
static bool
ledger_relation_needs_toast_table(Relation rel)
{
	return false;
}

static Oid
ledger_relation_toast_am(Relation rel)
{
	return HEAP_TABLE_AM_OID;
}

/* ------------------------------------------------------------------------
 * Executor related callbacks
 * ------------------------------------------------------------------------
 */

static bool
ledger_scan_bitmap_next_block(TableScanDesc sscan, struct TBMIterateResult *tbmres)
{
	sync_snapshot((LedgerScanDesc) sscan);
	return heapam->scan_bitmap_next_block(((LedgerScanDesc) sscan)->heap, tbmres);
}

static bool
ledger_scan_bitmap_next_tuple(TableScanDesc sscan, struct TBMIterateResult *tbmres,
							  TupleTableSlot *slot)
{
	LedgerScanDesc scan = (LedgerScanDesc) sscan;

	if (!heapam->scan_bitmap_next_tuple(scan->heap, tbmres, scan->hslot))
		return false;
	open_into(sscan->rs_rd, scan->hslot, slot);
	return true;
}

static bool
ledger_scan_sample_next_block(TableScanDesc sscan, struct SampleScanState *scanstate)
{
	return heapam->scan_sample_next_block(((LedgerScanDesc) sscan)->heap, scanstate);
}

static bool
ledger_scan_sample_next_tuple(TableScanDesc sscan, struct SampleScanState *scanstate,
							  TupleTableSlot *slot)
{
	LedgerScanDesc scan = (LedgerScanDesc) sscan;

	if (!heapam->scan_sample_next_tuple(scan->heap, scanstate, scan->hslot))
		return false;
	open_into(sscan->rs_rd, scan->hslot, slot);
	return true;
}

const TableAmRoutine *
ledger_routine(void)
{
	if (heapam == NULL)
	{
		heapam = GetHeapamTableAmRoutine();
		/* Start from heap's; what is not replaced below is heap's own. */
		ledger_methods = *heapam;

		ledger_methods.slot_callbacks = ledger_slot_callbacks;

		ledger_methods.scan_begin = ledger_scan_begin;
		ledger_methods.scan_end = ledger_scan_end;
		ledger_methods.scan_rescan = ledger_scan_rescan;
		ledger_methods.scan_getnextslot = ledger_scan_getnextslot;
		ledger_methods.scan_set_tidrange = ledger_scan_set_tidrange;
		ledger_methods.scan_getnextslot_tidrange = ledger_scan_getnextslot_tidrange;

		ledger_methods.index_fetch_begin = ledger_index_fetch_begin;
		ledger_methods.index_fetch_reset = ledger_index_fetch_reset;
		ledger_methods.index_fetch_end = ledger_index_fetch_end;
		ledger_methods.index_fetch_tuple = ledger_index_fetch_tuple;

		ledger_methods.tuple_fetch_row_version = ledger_tuple_fetch_row_version;
		ledger_methods.tuple_tid_valid = ledger_tuple_tid_valid;
		ledger_methods.tuple_get_latest_tid = ledger_tuple_get_latest_tid;
		ledger_methods.tuple_satisfies_snapshot = ledger_tuple_satisfies_snapshot;

		ledger_methods.tuple_insert = ledger_tuple_insert;
		ledger_methods.tuple_insert_speculative = ledger_tuple_insert_speculative;
		ledger_methods.tuple_complete_speculative = ledger_tuple_complete_speculative;
		ledger_methods.multi_insert = ledger_multi_insert;
		ledger_methods.tuple_delete = ledger_tuple_delete;
		ledger_methods.tuple_update = ledger_tuple_update;
		ledger_methods.tuple_lock = ledger_tuple_lock;

		ledger_methods.relation_set_new_filenode = ledger_relation_set_new_filenode;
		ledger_methods.relation_nontransactional_truncate = ledger_relation_nontransactional_truncate;
		ledger_methods.relation_copy_for_cluster = ledger_relation_copy_for_cluster;
		ledger_methods.scan_analyze_next_block = ledger_scan_analyze_next_block;
		ledger_methods.scan_analyze_next_tuple = ledger_scan_analyze_next_tuple;
		ledger_methods.index_build_range_scan = ledger_index_build_range_scan;
		ledger_methods.index_validate_scan = ledger_index_validate_scan;

		ledger_methods.relation_needs_toast_table = ledger_relation_needs_toast_table;
		ledger_methods.relation_toast_am = ledger_relation_toast_am;

		ledger_methods.scan_bitmap_next_block = ledger_scan_bitmap_next_block;
		ledger_methods.scan_bitmap_next_tuple = ledger_scan_bitmap_next_tuple;
		ledger_methods.scan_sample_next_block = ledger_scan_sample_next_block;
		ledger_methods.scan_sample_next_tuple = ledger_scan_sample_next_tuple;
	}
	return &ledger_methods;
}

Datum
ledger_tableam_handler(PG_FUNCTION_ARGS)
{
	if (!ledger_loaded_in_database())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ledger must be loaded via shared_preload_libraries"),
				 errhint("Add ledger to shared_preload_libraries in postgresql.conf and restart the server.")));
	PG_RETURN_POINTER(ledger_routine());
}
