/*-------------------------------------------------------------------------
 *
 * chain.c
 *	  Transaction entries, the in-flight registry, sealing into blocks,
 *	  the stored tree of blocks, and digests.
 *
 * A transaction that wrote revisions inserts one entry at pre-commit: a
 * sequence number from a shared counter, its commit time, its revision
 * count and the Merkle root of its revision hashes.  Taking the number
 * and registering it as in flight happen under one spinlock, and the
 * registration is cleared once the transaction's fate is visible, so the
 * sealer can chain every entry below the lowest number in flight without
 * ever skipping one or sealing one out of order.  Writers never wait on
 * the sealer, or on one another, beyond that spinlock.
 *
 * docs/verification.md gives every byte layout hashed here.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"
#include "layout.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

/* Entries per block at most; a backlog is sealed as several blocks. */
#define BLOCK_MAX_ENTRIES	10000

/* Columns of ledger.transactions and ledger.blocks (sql/ledger--0.1.sql). */
enum
{
	Anum_block_number = 1,
	Anum_block_first_seq,
	Anum_block_last_seq,
	Anum_block_entry_count,
	Anum_block_merkle_root,
	Anum_block_previous_hash,
	Anum_block_hash,
	Anum_block_tree_nodes,
	Anum_block_tree_root,
	Anum_block_sealed_at,
	Natts_block = Anum_block_sealed_at
};

typedef struct InflightSlot
{
	Oid			dboid;
	uint64		seq;			/* 0: none */
} InflightSlot;

typedef struct ChainShared
{
	slock_t		mutex;
	uint64		next_seq;
	int			nslots;
	InflightSlot inflight[FLEXIBLE_ARRAY_MEMBER];	/* by pgprocno */
} ChainShared;

static ChainShared *chain = NULL;

/* Revision hashes written by this transaction, with the subtransaction. */
typedef struct PendingLeaf
{
	int64		table_id;
	int64		doc_id;
	int32		version;
	SubTransactionId subid;
	uint8		hash[LEDGER_HASH_LEN];
} PendingLeaf;

static PendingLeaf *pending = NULL;
static int64 npending = 0;
static int64 maxpending = 0;
static bool registered = false;
static bool seq_floor_done = false;
static bool entry_written = false;	/* this transaction's chain work is done */

/* ------------------------------------------------------------------------
 * Shared memory
 * ------------------------------------------------------------------------
 */

static int
slot_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS;
}

Size
ledger_chain_shmem_size(void)
{
	return add_size(offsetof(ChainShared, inflight),
					mul_size(slot_count(), sizeof(InflightSlot)));
}

void
ledger_chain_shmem_init(void)
{
	bool		found;

	chain = ShmemInitStruct("ledger chain", ledger_chain_shmem_size(), &found);
	if (!found)
	{
		SpinLockInit(&chain->mutex);
		chain->next_seq = 1;
		chain->nslots = slot_count();
		memset(chain->inflight, 0, sizeof(InflightSlot) * chain->nslots);
	}
}

/*
 * The counter lives in shared memory only, so after a restart it starts
 * low again.  Before a backend takes its first number it lifts the
 * counter above every number its database ever used; every process does
 * so before its first use, so no number is ever reused.
 */
static void
ensure_seq_floor(void)
{
	Relation	rel;
	Relation	index;
	SysScanDesc scan;
	HeapTuple	tup;
	uint64		floor = 1;

	if (seq_floor_done)
		return;
	rel = table_open(ledger_relation_oid("transactions"), AccessShareLock);
	index = index_open(ledger_relation_oid("transactions_seq_idx"), AccessShareLock);
	scan = systable_beginscan_ordered(rel, index, SnapshotAny, 0, NULL);
	tup = systable_getnext_ordered(scan, BackwardScanDirection);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;

		floor = (uint64) DatumGetInt64(heap_getattr(tup, Anum_txn_seq,
													RelationGetDescr(rel),
													&isnull)) + 1;
	}
	systable_endscan_ordered(scan);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);

	SpinLockAcquire(&chain->mutex);
	if (chain->next_seq < floor)
		chain->next_seq = floor;
	SpinLockRelease(&chain->mutex);
	seq_floor_done = true;
}

static uint64
take_seq(void)
{
	uint64		seq;
	int			me = MyProc->pgprocno;

	Assert(me >= 0 && me < chain->nslots);
	SpinLockAcquire(&chain->mutex);
	seq = chain->next_seq++;
	chain->inflight[me].dboid = MyDatabaseId;
	chain->inflight[me].seq = seq;
	SpinLockRelease(&chain->mutex);
	registered = true;
	return seq;
}

static void
release_seq(void)
{
	if (!registered)
		return;
	SpinLockAcquire(&chain->mutex);
	chain->inflight[MyProc->pgprocno].seq = 0;
	SpinLockRelease(&chain->mutex);
	registered = false;
}

/* Every entry of this database numbered below the result has its fate known. */
static uint64
safe_bound(void)
{
	uint64		bound;

	SpinLockAcquire(&chain->mutex);
	bound = chain->next_seq;
	for (int i = 0; i < chain->nslots; i++)
	{
		InflightSlot *s = &chain->inflight[i];

		if (s->seq != 0 && s->dboid == MyDatabaseId && s->seq < bound)
			bound = s->seq;
	}
	SpinLockRelease(&chain->mutex);
	return bound;
}

/*
 * A database whose extension objects come from an earlier development
 * build has a journal but no chain tables.  Writing there would leave
 * revisions outside the chain, so it is refused, plainly.
 */
void
ledger_require_chain_tables(void)
{
	Oid			blocks = ledger_relation_oid("blocks");
	Oid			transactions = ledger_relation_oid("transactions");

	/*
	 * Builds before the tree of blocks made ledger.blocks without its
	 * nodes, and before stored subtrees ledger.transactions without them.
	 */
	if (!OidIsValid(transactions) || !OidIsValid(blocks) ||
		get_attnum(blocks, "tree_root") != Anum_block_tree_root ||
		get_attnum(transactions, "subtrees") != Anum_txn_subtrees)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the ledger's chain tables are missing in this database"),
				 errdetail("The extension's objects here were made by an earlier build of ledger 0.1, before the hash chain, its tree of blocks or its stored subtrees."),
				 errhint("Copy the data out, then DROP EXTENSION ledger CASCADE and CREATE EXTENSION ledger; there is no upgrade path from development builds.")));
}

/* ------------------------------------------------------------------------
 * Hashes
 * ------------------------------------------------------------------------
 */

/* Leaf data of LEDGER_HASH_LEN bytes each, hashed as leaves in place. */
static void
merkle_leaves(uint8 (*hashes)[LEDGER_HASH_LEN], int64 n)
{
	for (int64 i = 0; i < n; i++)
		if (!merkle_leaf(hashes[i], LEDGER_HASH_LEN, hashes[i]))
			elog(ERROR, "SHA-256 failed");
}

/* A root over leaf data of LEDGER_HASH_LEN bytes each. */
void
ledger_merkle_root(uint8 (*hashes)[LEDGER_HASH_LEN], int64 n, uint8 *root)
{
	merkle_leaves(hashes, n);
	ledger_merkle_root_of_leaves(hashes, n, root);
}

/* The same over leaf hashes already taken. */
void
ledger_merkle_root_of_leaves(const uint8 (*leaves)[LEDGER_HASH_LEN], int64 n,
							 uint8 *root)
{
	if (!merkle_root(leaves, n, root))
		elog(ERROR, "SHA-256 failed");
}

/* (table id, document id, version) order; the hashes are not compared. */
int
ledger_key_cmp(const LedgerKeyedHash *a, const LedgerKeyedHash *b)
{
	if (a->table_id != b->table_id)
		return a->table_id < b->table_id ? -1 : 1;
	if (a->doc_id != b->doc_id)
		return a->doc_id < b->doc_id ? -1 : 1;
	return a->version < b->version ? -1 : a->version > b->version;
}

int64
ledger_subtree_count(int64 revisions)
{
	return (revisions + LEDGER_SUBTREE_LEAVES - 1) / LEDGER_SUBTREE_LEAVES;
}

/* The root of a tree from the roots of its runs of leaves. */
void
ledger_subtrees_root(const LedgerKeyedHash *subtrees, int64 n, uint8 *root)
{
	uint8		(*roots)[LEDGER_HASH_LEN] = palloc(sizeof(*roots) * Max(n, 1));

	for (int64 i = 0; i < n; i++)
		memcpy(roots[i], subtrees[i].hash, LEDGER_HASH_LEN);
	ledger_merkle_root_of_leaves((const uint8 (*)[LEDGER_HASH_LEN]) roots, n, root);
	pfree(roots);
}

static bytea *
subtrees_datum(const LedgerKeyedHash *subtrees, int64 n)
{
	bytea	   *b = palloc_extended(VARHDRSZ + LEDGER_SUBTREE_LEN * n, MCXT_ALLOC_HUGE);
	char	   *p = VARDATA(b);

	SET_VARSIZE(b, VARHDRSZ + LEDGER_SUBTREE_LEN * n);
	for (int64 i = 0; i < n; i++)
	{
		uint64		table_id = pg_hton64((uint64) subtrees[i].table_id);
		uint64		doc_id = pg_hton64((uint64) subtrees[i].doc_id);
		uint32		version = pg_hton32((uint32) subtrees[i].version);

		memcpy(p, &table_id, 8);
		memcpy(p + 8, &doc_id, 8);
		memcpy(p + 16, &version, 4);
		memcpy(p + 20, subtrees[i].hash, LEDGER_HASH_LEN);
		p += LEDGER_SUBTREE_LEN;
	}
	return b;
}

/*
 * The stored subtrees of a transaction of this many revisions, or NULL if
 * it has none; false if they are not of the length it needs.
 */
bool
ledger_subtrees_from_datum(Datum d, bool isnull, int64 revisions, LedgerKeyedHash **subtrees)
{
	bytea	   *b;
	int64		n = ledger_subtree_count(revisions);
	const char *p;

	*subtrees = NULL;
	if (isnull)
		return true;
	b = DatumGetByteaPP(d);
	if (revisions < LEDGER_SUBTREE_MIN || VARSIZE_ANY_EXHDR(b) != (Size) (LEDGER_SUBTREE_LEN * n))
		return false;
	*subtrees = palloc_extended(sizeof(LedgerKeyedHash) * n, MCXT_ALLOC_HUGE);
	p = VARDATA_ANY(b);
	for (int64 i = 0; i < n; i++, p += LEDGER_SUBTREE_LEN)
	{
		LedgerKeyedHash *s = &(*subtrees)[i];
		uint64		table_id;
		uint64		doc_id;
		uint32		version;

		memcpy(&table_id, p, 8);
		memcpy(&doc_id, p + 8, 8);
		memcpy(&version, p + 16, 4);
		s->table_id = (int64) pg_ntoh64(table_id);
		s->doc_id = (int64) pg_ntoh64(doc_id);
		s->version = (int32) pg_ntoh32(version);
		memcpy(s->hash, p + 20, LEDGER_HASH_LEN);
	}
	return true;
}

/* Unix epoch microseconds, the time format of every hashed layout. */
int64
ledger_unix_micros(TimestampTz t)
{
	return t + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

void
ledger_entry_hash(const LedgerTxnEntry *e, uint8 *out)
{
	if (!layout_entry_hash(e->seq, ledger_unix_micros(e->committed_at),
						   e->revision_count, e->merkle_root, out))
		elog(ERROR, "SHA-256 failed");
}

void
ledger_block_hash(const LedgerBlock *b, uint8 *out)
{
	if (!layout_block_hash(b->previous_hash, b->number, b->merkle_root, out))
		elog(ERROR, "SHA-256 failed");
}

/* ------------------------------------------------------------------------
 * Transaction entries
 * ------------------------------------------------------------------------
 */

void
ledger_chain_note_revision(const LedgerRevision *rev)
{
	PendingLeaf *leaf;

	if (entry_written)
		elog(ERROR, "ledger revision written after its transaction's entry");
	if (npending == maxpending)
	{
		int64		newmax = Max(64, maxpending * 2);

		/* Assigned only once allocated: a failure leaves the list intact. */
		pending = pending == NULL ?
			MemoryContextAllocHuge(TopTransactionContext,
								   sizeof(PendingLeaf) * newmax) :
			repalloc_huge(pending, sizeof(PendingLeaf) * newmax);
		maxpending = newmax;
	}
	leaf = &pending[npending++];
	leaf->table_id = rev->table_id;
	leaf->doc_id = rev->doc_id;
	leaf->version = rev->version;
	leaf->subid = GetCurrentSubTransactionId();
	memcpy(leaf->hash, rev->revision_hash, LEDGER_HASH_LEN);
}

static int
leaf_cmp(const void *a, const void *b)
{
	const PendingLeaf *x = a;
	const PendingLeaf *y = b;

	if (x->table_id != y->table_id)
		return x->table_id < y->table_id ? -1 : 1;
	if (x->doc_id != y->doc_id)
		return x->doc_id < y->doc_id ? -1 : 1;
	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	return 0;
}

/*
 * The leaves of a transaction, in (table id, document id, version) order,
 * and their root.  A large transaction's root is taken over its subtrees,
 * which it returns to be stored: the same root, since the tree splits at
 * powers of two and a run's leaves are one.
 */
static bytea *
pending_root(uint8 *root)
{
	uint8		(*hashes)[LEDGER_HASH_LEN];
	LedgerKeyedHash *subtrees;
	int64		n;
	bytea	   *stored;

	qsort(pending, npending, sizeof(PendingLeaf), leaf_cmp);
	hashes = MemoryContextAllocHuge(CurrentMemoryContext,
									(Size) LEDGER_HASH_LEN * npending);
	for (int64 i = 0; i < npending; i++)
		memcpy(hashes[i], pending[i].hash, LEDGER_HASH_LEN);
	if (npending < LEDGER_SUBTREE_MIN)
	{
		ledger_merkle_root(hashes, npending, root);
		pfree(hashes);
		return NULL;
	}
	merkle_leaves(hashes, npending);
	n = ledger_subtree_count(npending);
	subtrees = palloc(sizeof(LedgerKeyedHash) * n);
	for (int64 i = 0; i < n; i++)
	{
		int64		first = i * LEDGER_SUBTREE_LEAVES;

		subtrees[i].table_id = pending[first].table_id;
		subtrees[i].doc_id = pending[first].doc_id;
		subtrees[i].version = pending[first].version;
		ledger_merkle_root_of_leaves((const uint8 (*)[LEDGER_HASH_LEN]) hashes + first,
									 Min(LEDGER_SUBTREE_LEAVES, npending - first),
									 subtrees[i].hash);
	}
	ledger_subtrees_root(subtrees, n, root);
	stored = subtrees_datum(subtrees, n);
	pfree(subtrees);
	pfree(hashes);
	return stored;
}

/* A stored hash as a bytea datum. */
Datum
ledger_hash_datum(const uint8 *hash)
{
	bytea	   *b = palloc(VARHDRSZ + LEDGER_HASH_LEN);

	SET_VARSIZE(b, VARHDRSZ + LEDGER_HASH_LEN);
	memcpy(VARDATA(b), hash, LEDGER_HASH_LEN);
	return PointerGetDatum(b);
}

/*
 * A hash read back from a bytea datum; false if it is NULL or not 32
 * bytes long, for the caller to report where.
 */
bool
ledger_hash_from_datum(Datum d, bool isnull, uint8 *out)
{
	bytea	   *b = isnull ? NULL : DatumGetByteaPP(d);

	if (b == NULL || VARSIZE_ANY_EXHDR(b) != LEDGER_HASH_LEN)
		return false;
	memcpy(out, VARDATA_ANY(b), LEDGER_HASH_LEN);
	return true;
}

/*
 * A stored hash, or an error naming where a damaged one was found: the
 * transaction or block ("kind") with this number.
 */
static void
stored_hash(Datum d, bool isnull, uint8 *out, const char *kind, int64 number)
{
	if (!ledger_hash_from_datum(d, isnull, out))
		ledger_damaged_hash(kind, number);
}

/* A revision hash, or another read while building a proof, is no hash. */
void
ledger_damaged_stored_hash(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("ledger chain is damaged: a stored hash is missing or not 32 bytes long"),
			 errhint("Run ledger_verify() to locate the damage.")));
}

/* A row of ledger.transactions ("transaction") or ledger.blocks lacks a hash. */
void
ledger_damaged_hash(const char *kind, int64 number)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("ledger chain is damaged: %s %lld has no valid hash",
					kind, (long long) number),
			 errhint("Run ledger_verify() to locate the damage.")));
}

/* A block's tree nodes: a whole number of hashes, at most one per level. */
static void
stored_nodes(Datum d, bool isnull, LedgerBlock *b)
{
	bytea	   *nodes = isnull ? NULL : DatumGetByteaPP(d);
	Size		len = nodes == NULL ? 0 : VARSIZE_ANY_EXHDR(nodes);

	if (nodes == NULL || len == 0 || len % LEDGER_HASH_LEN != 0 ||
		len > sizeof(b->tree_nodes))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger chain is damaged: block %lld has no valid tree nodes",
						(long long) b->number),
				 errhint("Run ledger_verify() to locate the damage.")));
	b->ntree_nodes = len / LEDGER_HASH_LEN;
	memcpy(b->tree_nodes, VARDATA_ANY(nodes), len);
}

static void
insert_entry(uint64 seq, int64 count, const uint8 *root, bytea *subtrees)
{
	Relation	rel = table_open(ledger_relation_oid("transactions"), RowExclusiveLock);
	Datum		values[Natts_txn];
	bool		nulls[Natts_txn] = {0};

	values[Anum_txn_seq - 1] = Int64GetDatum((int64) seq);
	values[Anum_txn_xid - 1] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[Anum_txn_committed_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[Anum_txn_revision_count - 1] = Int32GetDatum((int32) count);
	values[Anum_txn_merkle_root - 1] = ledger_hash_datum(root);
	values[Anum_txn_subtrees - 1] = PointerGetDatum(subtrees);
	nulls[Anum_txn_subtrees - 1] = subtrees == NULL;
	CatalogTupleInsert(rel, heap_form_tuple(RelationGetDescr(rel), values, nulls));
	table_close(rel, RowExclusiveLock);
}

/*
 * At pre-commit: the transaction's entry.  The number is taken last, so a
 * transaction stays in flight only for the insertion and the commit.
 */
static void
write_entry(void)
{
	uint8		root[LEDGER_HASH_LEN];
	bytea	   *subtrees;

	entry_written = true;
	if (npending == 0)
		return;
	ledger_require_chain_tables();
	if (npending > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("transaction wrote too many ledger revisions"),
				 errdetail("A transaction may write at most %d revisions.", PG_INT32_MAX),
				 errhint("Split the change into several transactions.")));
	ensure_seq_floor();
	subtrees = pending_root(root);
	insert_entry(take_seq(), npending, root, subtrees);
	ledger_worker_ensure();
}

static void
forget_pending(void)
{
	pending = NULL;				/* freed with TopTransactionContext */
	npending = maxpending = 0;
	entry_written = false;
}

/*
 * Whether the transaction's chain work is done: ON COMMIT actions run
 * after the pre-commit callbacks.
 */
bool
ledger_chain_entry_written(void)
{
	return entry_written;
}

static void
chain_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			ledger_events_flush();
			write_entry();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			release_seq();
			forget_pending();
			ledger_events_xact_end();
			break;
		default:
			break;
	}
}

/* Revisions of a subtransaction that rolls back leave the set. */
static void
chain_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	ledger_events_subxact_abort(mySubid);
	while (npending > 0 && pending[npending - 1].subid >= mySubid)
		npending--;
}

void
ledger_chain_init(void)
{
	RegisterXactCallback(chain_xact_callback, NULL);
	RegisterSubXactCallback(chain_subxact_callback, NULL);
}

/* ------------------------------------------------------------------------
 * Blocks
 * ------------------------------------------------------------------------
 */

/* Rows of ledger.transactions, or of a query with its columns in order. */
void
ledger_deform_entry(TupleDesc desc, HeapTuple tup, LedgerTxnEntry *e)
{
	bool		isnull;

	e->seq = DatumGetInt64(heap_getattr(tup, Anum_txn_seq, desc, &isnull));
	e->xid = DatumGetFullTransactionId(heap_getattr(tup, Anum_txn_xid, desc, &isnull));
	e->committed_at = DatumGetTimestampTz(heap_getattr(tup, Anum_txn_committed_at, desc, &isnull));
	e->revision_count = DatumGetInt32(heap_getattr(tup, Anum_txn_revision_count, desc, &isnull));
	stored_hash(heap_getattr(tup, Anum_txn_merkle_root, desc, &isnull), isnull,
				e->merkle_root, "transaction", e->seq);
}

/* Rows of ledger.blocks, or of a query with its columns in order. */
void
ledger_deform_block(TupleDesc desc, HeapTuple tup, LedgerBlock *b)
{
	bool		isnull;

	b->number = DatumGetInt64(heap_getattr(tup, Anum_block_number, desc, &isnull));
	b->first_seq = DatumGetInt64(heap_getattr(tup, Anum_block_first_seq, desc, &isnull));
	b->last_seq = DatumGetInt64(heap_getattr(tup, Anum_block_last_seq, desc, &isnull));
	b->entry_count = DatumGetInt32(heap_getattr(tup, Anum_block_entry_count, desc, &isnull));
	b->sealed_at = DatumGetTimestampTz(heap_getattr(tup, Anum_block_sealed_at, desc, &isnull));
	stored_hash(heap_getattr(tup, Anum_block_merkle_root, desc, &isnull), isnull,
				b->merkle_root, "block", b->number);
	stored_hash(heap_getattr(tup, Anum_block_previous_hash, desc, &isnull), isnull,
				b->previous_hash, "block", b->number);
	stored_hash(heap_getattr(tup, Anum_block_hash, desc, &isnull), isnull,
				b->hash, "block", b->number);
	stored_hash(heap_getattr(tup, Anum_block_tree_root, desc, &isnull), isnull,
				b->tree_root, "block", b->number);
	stored_nodes(heap_getattr(tup, Anum_block_tree_nodes, desc, &isnull), isnull, b);
}

static void
insert_block(Relation rel, const LedgerBlock *b)
{
	Datum		values[Natts_block];
	bool		nulls[Natts_block] = {0};
	bytea	   *nodes;

	values[Anum_block_number - 1] = Int64GetDatum(b->number);
	values[Anum_block_first_seq - 1] = Int64GetDatum(b->first_seq);
	values[Anum_block_last_seq - 1] = Int64GetDatum(b->last_seq);
	values[Anum_block_entry_count - 1] = Int32GetDatum(b->entry_count);
	values[Anum_block_merkle_root - 1] = ledger_hash_datum(b->merkle_root);
	values[Anum_block_previous_hash - 1] = ledger_hash_datum(b->previous_hash);
	values[Anum_block_hash - 1] = ledger_hash_datum(b->hash);
	nodes = palloc(VARHDRSZ + LEDGER_HASH_LEN * b->ntree_nodes);
	SET_VARSIZE(nodes, VARHDRSZ + LEDGER_HASH_LEN * b->ntree_nodes);
	memcpy(VARDATA(nodes), b->tree_nodes, LEDGER_HASH_LEN * b->ntree_nodes);
	values[Anum_block_tree_nodes - 1] = PointerGetDatum(nodes);
	values[Anum_block_tree_root - 1] = ledger_hash_datum(b->tree_root);
	values[Anum_block_sealed_at - 1] = TimestampTzGetDatum(b->sealed_at);
	CatalogTupleInsert(rel, heap_form_tuple(RelationGetDescr(rel), values, nulls));
}

/* The newest block visible to a snapshot; false if there is none. */
static bool
newest_block(Relation rel, Snapshot snap, LedgerBlock *b)
{
	Relation	index = index_open(ledger_relation_oid("blocks_number_idx"), AccessShareLock);
	SysScanDesc scan = systable_beginscan_ordered(rel, index, snap, 0, NULL);
	HeapTuple	tup = systable_getnext_ordered(scan, BackwardScanDirection);
	bool		found = HeapTupleIsValid(tup);

	if (found)
		ledger_deform_block(RelationGetDescr(rel), tup, b);
	systable_endscan_ordered(scan);
	index_close(index, AccessShareLock);
	return found;
}

static void
no_blocks(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("ledger chain is damaged: it has no blocks"),
			 errhint("Run ledger_verify() to locate the damage.")));
}

/*
 * Chain a block after prev over the given entry hashes, add it to the
 * tree of blocks held in "tree", and store it.
 */
static void
append_block(Relation rel, LedgerBlock *prev, MerkleFrontier *tree,
			 uint8 (*hashes)[LEDGER_HASH_LEN], int n, int64 first_seq, int64 last_seq)
{
	LedgerBlock *b = palloc(sizeof(LedgerBlock));
	uint8		leaf[LEDGER_HASH_LEN];

	b->number = prev->number + 1;
	b->first_seq = first_seq;
	b->last_seq = last_seq;
	b->entry_count = n;
	b->sealed_at = GetCurrentTimestamp();
	memcpy(b->previous_hash, prev->hash, LEDGER_HASH_LEN);
	ledger_merkle_root(hashes, n, b->merkle_root);
	ledger_block_hash(b, b->hash);
	if ((uint64) b->number != tree->size)
		elog(ERROR, "ledger tree holds %llu blocks, not %lld",
			 (unsigned long long) tree->size, (long long) b->number);
	if (!merkle_leaf(b->hash, LEDGER_HASH_LEN, leaf) ||
		(b->ntree_nodes = merkle_frontier_push(tree, leaf, b->tree_nodes)) < 0 ||
		!merkle_frontier_root(tree, b->tree_root))
		elog(ERROR, "SHA-256 failed");
	insert_block(rel, b);
	*prev = *b;
	pfree(b);
}

/* ------------------------------------------------------------------------
 * The tree of blocks
 *
 * Block n is leaf n.  A perfect subtree of 2^k leaves that starts at a
 * multiple of 2^k is stored, as level k, in the row of its last block; any
 * other subtree the RFC 6962 algorithms ask for splits into such ones.  So
 * a path or a consistency proof costs a few index lookups per level, and
 * no block is ever hashed again.
 * ------------------------------------------------------------------------
 */

void
ledger_tree_open(LedgerTree *t, Snapshot snap)
{
	t->blocks = table_open(ledger_relation_oid("blocks"), AccessShareLock);
	t->index = index_open(ledger_relation_oid("blocks_number_idx"), AccessShareLock);
	t->snap = snap;
}

void
ledger_tree_close(LedgerTree *t)
{
	index_close(t->index, AccessShareLock);
	table_close(t->blocks, AccessShareLock);
}

/* The stored node of the given level whose subtree ends at block "last". */
static void
stored_node(LedgerTree *t, int64 last, int level, uint8 *out)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	LedgerBlock *b = palloc(sizeof(LedgerBlock));
	bool		found;

	ScanKeyInit(&key, Anum_block_number, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(last));
	scan = systable_beginscan(t->blocks, RelationGetRelid(t->index), true,
							  t->snap, 1, &key);
	tup = systable_getnext(scan);
	found = HeapTupleIsValid(tup);
	if (found)
		ledger_deform_block(RelationGetDescr(t->blocks), tup, b);
	systable_endscan(scan);
	if (!found || b->ntree_nodes <= level)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger chain is damaged: block %lld lacks its tree node of level %d",
						(long long) last, level),
				 errhint("Run ledger_verify() to locate the damage.")));
	memcpy(out, b->tree_nodes[level], LEDGER_HASH_LEN);
	pfree(b);
}

/* A merkle_subtree_fn over the stored tree; arg is a LedgerTree. */
int
ledger_tree_subtree(void *arg, uint64_t start, uint64_t end, uint8_t *out)
{
	uint64		n = end - start;
	uint64		k;
	uint8		left[LEDGER_HASH_LEN];
	uint8		right[LEDGER_HASH_LEN];

	if (start >= end)
		return 0;
	if ((n & (n - 1)) == 0 && start % n == 0)
	{
		stored_node(arg, (int64) end - 1, pg_rightmost_one_pos64(n), out);
		return 1;
	}
	k = merkle_split(n);
	return ledger_tree_subtree(arg, start, start + k, left) &&
		ledger_tree_subtree(arg, start + k, end, right) &&
		merkle_node(left, right, out);
}

/* The tree of blocks 0 .. size - 1, as the peaks a sealer appends to. */
static void
load_frontier(LedgerTree *t, int64 size, MerkleFrontier *f)
{
	uint64		start = 0;

	memset(f, 0, sizeof(*f));
	for (int level = 62; level >= 0; level--)
	{
		uint64		width = UINT64CONST(1) << level;

		if (((uint64) size & width) == 0)
			continue;
		stored_node(t, (int64) (start + width) - 1, level, f->peaks[f->npeaks++]);
		start += width;
	}
	f->size = (uint64) size;
}

/* Block 0 chains from 32 zero bytes over no entries. */
void
ledger_chain_bootstrap(void)
{
	Relation	rel;
	LedgerBlock before;

	MerkleFrontier tree = {0};

	ledger_require_chain_tables();
	rel = table_open(ledger_relation_oid("blocks"), ExclusiveLock);
	memset(&before, 0, sizeof(before));
	before.number = -1;
	append_block(rel, &before, &tree, NULL, 0, 0, 0);
	table_close(rel, ExclusiveLock);
}

/*
 * Seal every entry whose fate is known into blocks, and return the newest
 * block.  Sealers take turns through a self-conflicting lock on
 * ledger.blocks that writers never take; it is held until commit.  The
 * worker does not wait for it (a session may hold it for a while), so
 * without "wait" this returns false when another sealer is at work.  The
 * safe bound is read before the snapshot, so every committed entry below
 * it is visible.
 */
bool
ledger_chain_seal(LedgerBlock *newest, bool wait)
{
	Oid			blocks_oid = ledger_relation_oid("blocks");
	Relation	blocks;
	Relation	txns;
	Relation	index;
	LedgerTree	reader;
	MerkleFrontier *tree;
	uint8		root[LEDGER_HASH_LEN];
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	Snapshot	snap;
	uint64		bound;
	uint8		(*hashes)[LEDGER_HASH_LEN];
	int			n = 0;
	int64		first_seq = 0;
	int64		last_seq = 0;

	ledger_require_chain_tables();
	if (wait)
		LockRelationOid(blocks_oid, ExclusiveLock);
	else if (!ConditionalLockRelationOid(blocks_oid, ExclusiveLock))
		return false;
	blocks = table_open(blocks_oid, NoLock);
	ensure_seq_floor();
	bound = safe_bound();
	snap = RegisterSnapshot(GetLatestSnapshot());
	if (!newest_block(blocks, snap, newest))
		no_blocks();
	/* New nodes are built on the stored ones: they must give the stored root. */
	tree = palloc(sizeof(MerkleFrontier));
	ledger_tree_open(&reader, snap);
	load_frontier(&reader, newest->number + 1, tree);
	ledger_tree_close(&reader);
	if (!merkle_frontier_root(tree, root))
		elog(ERROR, "SHA-256 failed");
	if (memcmp(root, newest->tree_root, LEDGER_HASH_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger chain is damaged: the tree nodes stored up to block %lld do not give its tree root",
						(long long) newest->number),
				 errhint("Run ledger_verify() to locate the damage.")));

	txns = table_open(ledger_relation_oid("transactions"), AccessShareLock);
	index = index_open(ledger_relation_oid("transactions_seq_idx"), AccessShareLock);
	ScanKeyInit(&key, Anum_txn_seq, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(newest->last_seq));
	scan = systable_beginscan_ordered(txns, index, snap, 1, &key);
	hashes = palloc(sizeof(*hashes) * BLOCK_MAX_ENTRIES);
	while ((tup = systable_getnext_ordered(scan, ForwardScanDirection)) != NULL)
	{
		LedgerTxnEntry e;

		ledger_deform_entry(RelationGetDescr(txns), tup, &e);
		if ((uint64) e.seq >= bound)
			break;
		if (n == 0)
			first_seq = e.seq;
		last_seq = e.seq;
		ledger_entry_hash(&e, hashes[n++]);
		if (n == BLOCK_MAX_ENTRIES)
		{
			append_block(blocks, newest, tree, hashes, n, first_seq, last_seq);
			n = 0;
		}
	}
	if (n > 0)
		append_block(blocks, newest, tree, hashes, n, first_seq, last_seq);
	pfree(hashes);
	pfree(tree);
	systable_endscan_ordered(scan);
	index_close(index, AccessShareLock);
	table_close(txns, AccessShareLock);
	UnregisterSnapshot(snap);
	table_close(blocks, NoLock);	/* held to commit: sealers take turns */
	return true;
}

/* The newest block without sealing, as a standby or read-only caller sees it. */
void
ledger_chain_newest(LedgerBlock *newest)
{
	Relation	blocks;
	Snapshot	snap;
	bool		found;

	ledger_require_chain_tables();
	blocks = table_open(ledger_relation_oid("blocks"), AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	found = newest_block(blocks, snap, newest);

	UnregisterSnapshot(snap);
	table_close(blocks, AccessShareLock);
	if (!found)
		no_blocks();
}
