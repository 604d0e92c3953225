/*-------------------------------------------------------------------------
 *
 * rewrite.c
 *	  Rewriting ledger tables: VACUUM FULL, CLUSTER, and re-sealing a table
 *	  for a larger plaintext set.
 *
 * heap's copy_for_cluster re-forms every tuple from its attributes, which
 * would drop the sealed payload.  Ours copies physical tuples as they are
 * (rewrite_heap_tuple keeps HOT chains, update chains and freezing right),
 * so VACUUM FULL and CLUSTER keep every payload byte for byte.
 *
 * Re-sealing is the same copy with one change: each live or recently dead
 * tuple gets a new attribute area holding the row's values for the larger
 * plaintext set, and keeps its payload.  It runs under AccessExclusiveLock
 * before CREATE INDEX or ADD CONSTRAINT builds an index over columns that
 * existing rows hold sealed (guard.c).  Table-rewriting ALTER TABLE forms
 * stay refused: they would insert rows anew, with new document ids.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/heapam.h"
#include "access/rewriteheap.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "commands/cluster.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/tuplesort.h"

/* Set while a command that may rewrite ledger tables runs. */
static bool rewrites_allowed = false;

/* The plaintext set a running re-seal gives every tuple, or NULL. */
static Bitmapset *reseal_plainset = NULL;

bool
ledger_rewrite_allowed(void)
{
	return rewrites_allowed;
}

void
ledger_allow_rewrites(bool allow)
{
	rewrites_allowed = allow;
}

typedef struct CopyState
{
	Relation	old;
	RewriteState rw;
	TupleTableSlot *scratch;	/* for opening rows when re-sealing */
	MemoryContext tuple_cxt;
} CopyState;

/* Write one kept tuple into the new heap, re-sealed if asked to. */
static void
copy_tuple(CopyState *cs, HeapTuple tup)
{
	MemoryContext old = MemoryContextSwitchTo(cs->tuple_cxt);
	HeapTuple	copy;

	copy = ledger_rewrite_tuple(cs->old, tup, reseal_plainset, cs->scratch);
	rewrite_heap_tuple(cs->rw, tup, copy);
	MemoryContextSwitchTo(old);
	MemoryContextReset(cs->tuple_cxt);
}

/*
 * Whether to keep a tuple, counting it as heap does.  We hold
 * AccessExclusiveLock, so tuples of running transactions are our own.
 */
static bool
keep_tuple(HeapTuple tup, Buffer buf, TransactionId oldest_xmin,
		   double *num_tuples, double *tups_vacuumed,
		   double *tups_recently_dead)
{
	bool		keep = true;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	switch (HeapTupleSatisfiesVacuum(tup, oldest_xmin, buf))
	{
		case HEAPTUPLE_DEAD:
			keep = false;
			break;
		case HEAPTUPLE_RECENTLY_DEAD:
		case HEAPTUPLE_DELETE_IN_PROGRESS:
			*tups_recently_dead += 1;
			break;
		case HEAPTUPLE_LIVE:
		case HEAPTUPLE_INSERT_IN_PROGRESS:
			break;
	}
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	if (keep)
		*num_tuples += 1;
	else
		*tups_vacuumed += 1;
	return keep;
}

void
ledger_relation_copy_for_cluster(Relation OldTable, Relation NewTable,
								 Relation OldIndex, bool use_sort,
								 TransactionId OldestXmin,
								 TransactionId *xid_cutoff,
								 MultiXactId *multi_cutoff,
								 double *num_tuples, double *tups_vacuumed,
								 double *tups_recently_dead)
{
	const TableAmRoutine *heapam = GetHeapamTableAmRoutine();
	CopyState	cs;
	Tuplesortstate *sort = NULL;
	TableScanDesc scan;
	TupleTableSlot *hslot;

	/* Order comes from a sort on the index's plaintext columns. */
	if (OldIndex != NULL)
	{
		if (OldIndex->rd_rel->relam != BTREE_AM_OID)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("ledger tables can only be clustered on a btree index"),
					 errhint("Choose a btree index for CLUSTER.")));
		sort = tuplesort_begin_cluster(RelationGetDescr(OldTable), OldIndex,
									   maintenance_work_mem, NULL, TUPLESORT_NONE);
	}

	cs.old = OldTable;
	cs.rw = begin_heap_rewrite(OldTable, NewTable, OldestXmin, *xid_cutoff,
							   *multi_cutoff);
	cs.scratch = MakeSingleTupleTableSlot(RelationGetDescr(OldTable), &TTSOpsHeapTuple);
	cs.tuple_cxt = AllocSetContextCreate(CurrentMemoryContext, "ledger rewrite",
										 ALLOCSET_DEFAULT_SIZES);
	*num_tuples = *tups_vacuumed = *tups_recently_dead = 0;

	/* heap's own scan: we want physical tuples, not opened rows */
	scan = heapam->scan_begin(OldTable, SnapshotAny, 0, NULL, NULL,
							  SO_TYPE_SEQSCAN);
	hslot = MakeSingleTupleTableSlot(RelationGetDescr(OldTable), &TTSOpsBufferHeapTuple);
	while (heapam->scan_getnextslot(scan, ForwardScanDirection, hslot))
	{
		BufferHeapTupleTableSlot *bslot = (BufferHeapTupleTableSlot *) hslot;
		HeapTuple	tup = ExecFetchSlotHeapTuple(hslot, false, NULL);

		CHECK_FOR_INTERRUPTS();
		if (!keep_tuple(tup, bslot->buffer, OldestXmin, num_tuples,
						tups_vacuumed, tups_recently_dead))
		{
			rewrite_heap_dead_tuple(cs.rw, tup);
			continue;
		}
		if (sort != NULL)
			tuplesort_putheaptuple(sort, tup);
		else
			copy_tuple(&cs, tup);
	}
	ExecDropSingleTupleTableSlot(hslot);
	heapam->scan_end(scan);

	if (sort != NULL)
	{
		HeapTuple	tup;

		tuplesort_performsort(sort);
		while ((tup = tuplesort_getheaptuple(sort, true)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			copy_tuple(&cs, tup);
		}
		tuplesort_end(sort);
	}

	end_heap_rewrite(cs.rw);
	ExecDropSingleTupleTableSlot(cs.scratch);
	MemoryContextDelete(cs.tuple_cxt);
}

/* Whether any tuple of the table is still visible to some snapshot. */
bool
ledger_table_holds_rows(Relation rel)
{
	const TableAmRoutine *heapam = GetHeapamTableAmRoutine();
	TransactionId oldest_xmin = GetOldestNonRemovableTransactionId(rel);
	TableScanDesc scan = heapam->scan_begin(rel, SnapshotAny, 0, NULL, NULL,
											SO_TYPE_SEQSCAN);
	TupleTableSlot *hslot = MakeSingleTupleTableSlot(RelationGetDescr(rel),
													 &TTSOpsBufferHeapTuple);
	bool		found = false;

	while (!found && heapam->scan_getnextslot(scan, ForwardScanDirection, hslot))
	{
		Buffer		buf = ((BufferHeapTupleTableSlot *) hslot)->buffer;
		HeapTuple	tup = ExecFetchSlotHeapTuple(hslot, false, NULL);

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		found = HeapTupleSatisfiesVacuum(tup, oldest_xmin, buf) != HEAPTUPLE_DEAD;
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	}
	ExecDropSingleTupleTableSlot(hslot);
	heapam->scan_end(scan);
	return found;
}

/*
 * Re-seal a ledger table for a larger plaintext set: copy it into new
 * storage with the set's columns in the clear, record the set, and swap.
 * The swap rebuilds every index from the new tuples.
 */
void
ledger_reseal(Oid relid, Bitmapset *plainset)
{
	Relation	rel = table_open(relid, AccessExclusiveLock);
	Relation	newrel;
	Oid			newrelid;
	TransactionId frozen = rel->rd_rel->relfrozenxid;
	MultiXactId minmulti = rel->rd_rel->relminmxid;
	TransactionId oldest_xmin = GetOldestNonRemovableTransactionId(rel);
	char		persistence = rel->rd_rel->relpersistence;
	double		ntuples,
				nvacuumed,
				nrecent;

	ereport(DEBUG1,
			(errmsg_internal("re-sealing ledger table \"%s\" to keep newly indexed columns in the clear",
					RelationGetRelationName(rel))));
	PG_TRY();
	{
		rewrites_allowed = true;
		reseal_plainset = plainset;
		newrelid = make_new_heap(relid, rel->rd_rel->reltablespace,
								 rel->rd_rel->relam, persistence,
								 AccessExclusiveLock);
		newrel = table_open(newrelid, AccessExclusiveLock);
		ledger_relation_copy_for_cluster(rel, newrel, NULL, false, oldest_xmin,
										 &frozen, &minmulti, &ntuples,
										 &nvacuumed, &nrecent);
		table_close(newrel, NoLock);
		reseal_plainset = NULL;
		/* From here on, rows are read with the new set in the clear. */
		ledger_extend_plainset(rel, plainset);
		table_close(rel, NoLock);
		finish_heap_swap(relid, newrelid, false, false, false, true,
						 frozen, minmulti, persistence);
	}
	PG_FINALLY();
	{
		rewrites_allowed = false;
		reseal_plainset = NULL;
	}
	PG_END_TRY();
}
