/*-------------------------------------------------------------------------
 *
 * index_build.c
 *	  Building and validating indexes on ledger tables.
 *
 * heap_getnext() refuses any access method but heap, so heap's build and
 * validate scans cannot be reused.  These walk the physical tuples through
 * heap's own scan, decide what to index as heap does (SnapshotAny with
 * HeapTupleSatisfiesVacuum, or an MVCC snapshot for concurrent builds),
 * open every row, and form index tuples from the opened row.
 *
 * The internal access method of the extension's own tables (journal.c)
 * stores plain heap tuples and uses these scans too, without opening.
 *
 * They also enforce the first guard rail: an index may only reference
 * columns whose physical values are the rows' true values.  Every row to
 * be indexed must agree on them; then the plaintext set grows to cover the
 * index, inside the same transaction, before any later write.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"

typedef struct BuildState
{
	Relation	table;
	bool		sealed;			/* a ledger table, whose rows we open */
	HeapScanDesc hscan;			/* heap's scan of the physical tuples */
	TupleTableSlot *hslot;		/* the physical tuple */
	IndexInfo  *info;
	Bitmapset  *attnums;		/* columns the index references */
	EState	   *estate;
	ExprContext *econtext;
	ExprState  *predicate;
	TupleTableSlot *slot;		/* the row the index sees */
	BlockNumber root_blkno;
	OffsetNumber root_offsets[MaxHeapTuplesPerPage];
} BuildState;

/* Columns an index references; whole-row references show up as 0. */
static Bitmapset *
index_attnums(IndexInfo *info)
{
	Bitmapset  *raw = NULL;
	Bitmapset  *out;

	pull_varattnos((Node *) info->ii_Expressions, 1, &raw);
	pull_varattnos((Node *) info->ii_Predicate, 1, &raw);
	out = ledger_attnums(raw);
	for (int i = 0; i < info->ii_NumIndexAttrs; i++)
		if (info->ii_IndexAttrNumbers[i] != 0)
			out = bms_add_member(out, info->ii_IndexAttrNumbers[i]);
	return out;
}

/*
 * Refuse an index that references a whole row: it would need every column
 * in the clear.  Other columns may join the plaintext set.
 */
void
ledger_check_index_columns(Relation rel, Bitmapset *attnums, const char *what)
{
	if (bms_is_member(0, attnums))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s on ledger table \"%s\" cannot reference a whole row",
						what, RelationGetRelationName(rel)),
				 errdetail("Indexed values are kept in the clear; a whole-row value would expose every column."),
				 errhint("Index the columns you need instead.")));
}

static void
refuse_sealed(BuildState *bs, Relation index)
{
	Bitmapset  *sealed = bms_difference(bs->attnums, ledger_table(bs->table)->plainset);
	int			attnum = bms_next_member(sealed, -1);

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot build index \"%s\": column \"%s\" of ledger table \"%s\" is sealed in existing rows",
					RelationGetRelationName(index),
					attnum > 0 ? NameStr(TupleDescAttr(RelationGetDescr(bs->table), attnum - 1)->attname) : "?",
					RelationGetRelationName(bs->table)),
			 errdetail("Indexed columns must be kept in the clear in every row, and these rows were sealed before the column was indexed."),
			 errhint("Create the index on this table with CREATE INDEX, which re-seals its rows first, then retry.")));
}

static void
build_state_init(BuildState *bs, Relation table, IndexInfo *info,
				 TableScanDesc scan)
{
	memset(bs, 0, sizeof(BuildState));
	bs->table = table;
	bs->sealed = ledger_is_ledger_relation(table);
	bs->info = info;
	bs->attnums = index_attnums(info);
	if (bs->sealed)
	{
		ledger_check_index_columns(table, bs->attnums, "index");
		bs->hscan = (HeapScanDesc) ((LedgerScanDesc) scan)->heap;
		bs->hslot = ((LedgerScanDesc) scan)->hslot;
		bs->slot = table_slot_create(table, NULL);
	}
	else
	{
		bs->hscan = (HeapScanDesc) scan;
		bs->hslot = bs->slot = table_slot_create(table, NULL);
	}
	bs->estate = CreateExecutorState();
	bs->econtext = GetPerTupleExprContext(bs->estate);
	bs->econtext->ecxt_scantuple = bs->slot;
	bs->predicate = ExecPrepareQual(info->ii_Predicate, bs->estate);
	bs->root_blkno = InvalidBlockNumber;
}

static bool
next_physical(BuildState *bs)
{
	return GetHeapamTableAmRoutine()->scan_getnextslot(&bs->hscan->rs_base,
													   ForwardScanDirection,
													   bs->hslot);
}

static void
build_state_end(BuildState *bs)
{
	ExecDropSingleTupleTableSlot(bs->slot);
	FreeExecutorState(bs->estate);
	/* Every indexed row agreed, so from now on writes keep these columns. */
	if (bs->sealed &&
		!bms_is_subset(bs->attnums, ledger_table(bs->table)->plainset))
		ledger_extend_plainset_soon(bs->table, bs->attnums);
}

/*
 * The TID an index entry must carry: a heap-only tuple is reached through
 * the root of its HOT chain.
 */
static void
entry_tid(BuildState *bs, HeapTuple tup, ItemPointer tid)
{
	HeapScanDesc hscan = bs->hscan;
	OffsetNumber off = ItemPointerGetOffsetNumber(&tup->t_self);

	if (hscan->rs_cblock != bs->root_blkno)
	{
		LockBuffer(hscan->rs_cbuf, BUFFER_LOCK_SHARE);
		heap_get_root_tuples(BufferGetPage(hscan->rs_cbuf), bs->root_offsets);
		LockBuffer(hscan->rs_cbuf, BUFFER_LOCK_UNLOCK);
		bs->root_blkno = hscan->rs_cblock;
	}
	*tid = tup->t_self;
	if (HeapTupleIsHeapOnly(tup))
	{
		if (!OffsetNumberIsValid(bs->root_offsets[off - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg_internal("failed to find parent tuple for heap-only tuple at (%u,%u) in table \"%s\"",
									 ItemPointerGetBlockNumber(tid), off,
									 RelationGetRelationName(bs->table))));
		ItemPointerSetOffsetNumber(tid, bs->root_offsets[off - 1]);
	}
}

/*
 * Open the row and check that it holds the index's columns in the clear:
 * any snapshot that can still see it will read it with them in the
 * plaintext set.
 */
static void
check_row(BuildState *bs, Relation index, HeapTuple tup)
{
	if (!bs->sealed)
		return;
	ledger_open(bs->table, tup, bs->slot);
	if (!ledger_plain_values_match(bs->table, tup, bs->slot, bs->attnums))
		refuse_sealed(bs, index);
}

/*
 * Form the index values of a checked row.  False if the index's predicate
 * excludes it.
 */
static bool
form_entry(BuildState *bs, Datum *values, bool *isnull)
{
	ResetExprContext(bs->econtext);
	if (bs->predicate != NULL && !ExecQual(bs->predicate, bs->econtext))
		return false;
	FormIndexDatum(bs->info, bs->slot, bs->estate, values, isnull);
	return true;
}

/* What to do with a tuple the build scan meets. */
typedef enum BuildAction
{
	BUILD_SKIP,					/* dead to everyone */
	BUILD_CHECK,				/* visible to someone, but not indexed */
	BUILD_INDEX
} BuildAction;

/*
 * With SnapshotAny, which tuples to index and whether they are alive, as
 * heap decides it.  Builds hold ShareLock, so tuples of transactions still
 * running can only be our own, or (for catalogs, never ledger tables) come
 * from before the lock; they are indexed, as heap does.
 */
static BuildAction
decide(BuildState *bs, HeapTuple tup, TransactionId oldest_xmin,
	   bool anyvisible, bool *alive, double *reltuples)
{
	HeapScanDesc hscan = bs->hscan;
	BuildAction action = BUILD_INDEX;

	LockBuffer(hscan->rs_cbuf, BUFFER_LOCK_SHARE);
	switch (HeapTupleSatisfiesVacuum(tup, oldest_xmin, hscan->rs_cbuf))
	{
		case HEAPTUPLE_DEAD:
			action = BUILD_SKIP;
			*alive = false;
			break;
		case HEAPTUPLE_LIVE:
		case HEAPTUPLE_INSERT_IN_PROGRESS:
			*alive = true;
			*reltuples += 1;
			break;
		case HEAPTUPLE_RECENTLY_DEAD:
		case HEAPTUPLE_DELETE_IN_PROGRESS:
			if (anyvisible)
			{
				*alive = true;
				*reltuples += 1;
				break;
			}
			*alive = false;
			if (HeapTupleIsHotUpdated(tup))
			{
				/* its chain's live member carries the entry */
				action = BUILD_CHECK;
				bs->info->ii_BrokenHotChain = true;
			}
			break;
	}
	LockBuffer(hscan->rs_cbuf, BUFFER_LOCK_UNLOCK);
	return action;
}

double
ledger_index_build_range_scan(Relation table_rel, Relation index_rel,
							  IndexInfo *index_info, bool allow_sync,
							  bool anyvisible, bool progress,
							  BlockNumber start_blockno, BlockNumber numblocks,
							  IndexBuildCallback callback,
							  void *callback_state, TableScanDesc scan)
{
	BuildState	bs;
	Snapshot	snapshot;
	bool		own_snapshot = false;
	TransactionId oldest_xmin = InvalidTransactionId;
	double		reltuples = 0;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];

	if (scan == NULL)
	{
		own_snapshot = index_info->ii_Concurrent;
		snapshot = own_snapshot ?
			RegisterSnapshot(GetTransactionSnapshot()) : SnapshotAny;
		scan = table_beginscan_strat(table_rel, snapshot, 0, NULL, true, allow_sync);
	}
	else
		snapshot = scan->rs_snapshot;
	build_state_init(&bs, table_rel, index_info, scan);
	if (!allow_sync)
		heap_setscanlimits(&bs.hscan->rs_base, start_blockno, numblocks);
	if (snapshot == SnapshotAny)
		oldest_xmin = GetOldestNonRemovableTransactionId(table_rel);

	while (next_physical(&bs))
	{
		HeapTuple	tup = ExecFetchSlotHeapTuple(bs.hslot, false, NULL);
		ItemPointerData tid;
		bool		alive = true;
		BuildAction action = BUILD_INDEX;

		CHECK_FOR_INTERRUPTS();
		if (snapshot == SnapshotAny)
			action = decide(&bs, tup, oldest_xmin, anyvisible, &alive, &reltuples);
		else
			reltuples += 1;
		if (action == BUILD_SKIP)
			continue;
		check_row(&bs, index_rel, tup);
		if (action == BUILD_CHECK)
			continue;
		entry_tid(&bs, tup, &tid);
		if (form_entry(&bs, values, isnull))
			callback(index_rel, &tid, values, isnull, alive, callback_state);
	}

	build_state_end(&bs);
	/* As heap does: the caller's scan (a parallel build's) ends here too. */
	table_endscan(scan);
	if (own_snapshot)
		UnregisterSnapshot(snapshot);
	return reltuples;
}

/*
 * Mark which offsets of block blk the index already points at.  The
 * tuplesort yields the index's TIDs in order; cursor holds the next one.
 */
static void
load_block_entries(ValidateIndexState *state, BlockNumber blk,
				   ItemPointer cursor, bool *more, bool *in_index)
{
	memset(in_index, 0, sizeof(bool) * MaxHeapTuplesPerPage);
	for (;;)
	{
		Datum		ts_val;
		bool		ts_isnull;

		if (ItemPointerIsValid(cursor))
		{
			if (ItemPointerGetBlockNumber(cursor) > blk)
				return;
			if (ItemPointerGetBlockNumber(cursor) == blk)
				in_index[ItemPointerGetOffsetNumber(cursor) - 1] = true;
		}
		if (!*more ||
			!(*more = tuplesort_getdatum(state->tuplesort, true, &ts_val,
										 &ts_isnull, NULL)))
		{
			ItemPointerSetInvalid(cursor);
			return;
		}
		itemptr_decode(cursor, DatumGetInt64(ts_val));
	}
}

/*
 * Phase three of CREATE INDEX CONCURRENTLY: insert every row visible to
 * the snapshot that the index does not hold yet.  An entry points at the
 * root of a HOT chain, whose offset may be lower than the visible member's,
 * so the index's entries are gathered a block at a time, as heap does.
 */
void
ledger_index_validate_scan(Relation table_rel, Relation index_rel,
						   IndexInfo *index_info, Snapshot snapshot,
						   ValidateIndexState *state)
{
	BuildState	bs;
	TableScanDesc scan;
	ItemPointerData cursor;
	bool		more = true;
	BlockNumber blk = InvalidBlockNumber;
	bool		in_index[MaxHeapTuplesPerPage];
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];

	ItemPointerSetInvalid(&cursor);
	scan = table_beginscan_strat(table_rel, snapshot, 0, NULL, true, false);
	build_state_init(&bs, table_rel, index_info, scan);

	while (next_physical(&bs))
	{
		HeapTuple	tup = ExecFetchSlotHeapTuple(bs.hslot, false, NULL);
		ItemPointerData tid;

		CHECK_FOR_INTERRUPTS();
		state->htups += 1;
		if (ItemPointerGetBlockNumber(&tup->t_self) != blk)
		{
			blk = ItemPointerGetBlockNumber(&tup->t_self);
			load_block_entries(state, blk, &cursor, &more, in_index);
		}
		entry_tid(&bs, tup, &tid);
		if (in_index[ItemPointerGetOffsetNumber(&tid) - 1])
			continue;
		check_row(&bs, index_rel, tup);
		if (!form_entry(&bs, values, isnull))
			continue;
		index_insert(index_rel, values, isnull, &tid, table_rel,
					 index_info->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, index_info);
		in_index[ItemPointerGetOffsetNumber(&tid) - 1] = true;
		state->tups_inserted += 1;
	}
	build_state_end(&bs);
	table_endscan(scan);
}
