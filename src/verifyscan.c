/*-------------------------------------------------------------------------
 *
 * verifyscan.c
 *	  ledger_verify()'s first pass: every journal revision checked and
 *	  turned into a record for the chain's order, by parallel workers
 *	  where the journal is large.
 *
 * Each journal row's revision hash is recomputed from its stored fields
 * (and at level full its data hash from its opened payload), and the row
 * becomes a LedgerRevRecord under its transaction entry, found by xid.
 * The records go to revsort.c, which hands them to verify.c in the
 * chain's order.
 *
 * The pass is per row and independent of every other row, so it shares
 * out like a parallel sequential scan: the leader and its workers take
 * blocks of the journal from one parallel scan, each worker sorts its
 * records in runs and sends them to the leader through a message queue,
 * and the leader merges them with its own (revsort.c).  Every participant
 * keeps the first failure and the first revision without an entry in key
 * order, and the leader keeps the first of those; so the error reported
 * does not depend on who read which block.  The workers then stay, to
 * hash subtrees of large transactions for the leader's walk of the
 * chain.  Only level chain runs in parallel: level full opens payloads,
 * and a worker would have to unwrap the root key through the key
 * provider again (docs/internals.md).
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "optimizer/paths.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/bufmgr.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

#define PROGRESS_SECS		10
#define QUEUE_SIZE			(64 * 1024)
#define RUN_MAX_BYTES		(8 * 1024 * 1024)
#define SHARE_EVERY			256		/* rows between the leader's reads */
#define DETAIL_MAX			512

#define KEY_SHARED			UINT64CONST(0x4C45444745520001)
#define KEY_SCAN			UINT64CONST(0x4C45444745520002)
#define KEY_QUEUES			UINT64CONST(0x4C45444745520003)
#define KEY_JOBS			UINT64CONST(0x4C45444745520004)

/*
 * A transaction's tree is shared out from this many leaves, in the
 * subtrees TREE_DEPTH levels down: 8, for a backend and two workers that
 * finish at different times.
 */
#define TREE_PARALLEL_MIN	8192
#define TREE_DEPTH			3

#define MSG_RUN				'S'
#define MSG_DONE			'D'
#define MSG_TREE			'T'
#define MSG_ROOT			'O'

/*
 * Revisions name their entry by xid.  Every entry's (xid, seq), sorted,
 * resolves them: 16 bytes per transaction entry.  A hash table cost more
 * to build than the whole scan saved (perf: a cache miss per insert), and
 * journal rows come in nearly the order of their xids, so a lookup mostly
 * ends at the hint, the place of the last one.
 */
typedef struct XidSeq
{
	uint64		xid;
	int64		seq;
} XidSeq;

typedef struct XidMap
{
	XidSeq	   *entries;
	int64		n;
	int64		hint;			/* first of the last xid found */
} XidMap;

static inline int
xidseq_cmp(const XidSeq *a, const XidSeq *b)
{
	if (a->xid != b->xid)
		return a->xid < b->xid ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

#define ST_SORT sort_xidseq
#define ST_ELEMENT_TYPE XidSeq
#define ST_COMPARE(a, b) xidseq_cmp(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* In the DSM segment: what every participant needs. */
typedef struct VerifyShared
{
	Oid			journal;
	Oid			transactions;
	int64		run_records;	/* the most records a worker sorts at once */
	pg_atomic_uint64 scanned;	/* rows read by all, for progress */
} VerifyShared;

/* A worker's last message: what it found besides its records. */
typedef struct WorkerResult
{
	char		type;			/* MSG_DONE */
	bool		orphan_found;
	LedgerRevRecord orphan;
	bool		failure_found;
	LedgerRevRecord failure;
	char		detail[DETAIL_MAX];
} WorkerResult;

/* A run of records a worker has sorted. */
typedef struct RunMessage
{
	char		type;			/* MSG_RUN */
	LedgerRevRecord recs[FLEXIBLE_ARRAY_MEMBER];
} RunMessage;

/* A subtree for a worker to hash, and its answer. */
typedef struct TreeJob
{
	char		type;			/* MSG_TREE */
	int			subtree;
	uint8		leaves[FLEXIBLE_ARRAY_MEMBER][LEDGER_HASH_LEN];
} TreeJob;

typedef struct TreeRoot
{
	char		type;			/* MSG_ROOT */
	int			subtree;
	uint8		root[LEDGER_HASH_LEN];
} TreeRoot;

/* One participant's scan. */
typedef struct Scanner
{
	bool		full;
	XidMap		entries;
	LedgerJournalPass *pass;	/* its own findings */
	shm_mq_handle *out;			/* a worker's queue, or NULL in the leader */
	RunMessage *run;			/* a worker's run being collected */
	int64		nrun;
	int64		run_max;
	MemoryContext cxt;			/* outlives the scan */
	MemoryContext row_cxt;		/* emptied after every revision */
	VerifyShared *shared;		/* NULL without workers */
	int64		unshared;		/* rows not yet added to shared->scanned */
	TimestampTz reported;
} Scanner;

/*
 * The leader's side of the workers.  They stay after their scan, to hash
 * subtrees of large transactions for the walk of the chain.
 */
struct LedgerVerifyWorkers
{
	ParallelContext *pcxt;
	int			n;				/* launched */
	shm_mq_handle **in;			/* from each worker */
	shm_mq_handle **jobs;		/* to each */
	bool	   *done;
	int			ndone;
	VerifyShared *shared;
	TimestampTz reported;		/* progress, while the leader only waits */
};

/*
 * Whether a progress report is due, "count" rows or revisions into a pass;
 * a negative count reads the clock in any case.
 */
bool
ledger_progress_due(TimestampTz *reported, int64 count)
{
	TimestampTz now;

	CHECK_FOR_INTERRUPTS();
	if (count >= 0 && count % 4096 != 0)
		return false;			/* the clock is read now and then only */
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(*reported, now, PROGRESS_SECS * 1000))
		return false;
	*reported = now;
	return true;
}

static bool
hash_value(const Datum *values, const bool *isnull, int attnum,
		   bool zero_if_null, uint8 *out)
{
	if (isnull[attnum - 1] && zero_if_null)
	{
		memset(out, 0, LEDGER_HASH_LEN);
		return true;
	}
	return ledger_hash_from_datum(values[attnum - 1], isnull[attnum - 1], out);
}

/*
 * The data hash from the payload: SHA-256 of the opened plaintext, or of
 * the JSON of a catalog event, which is not sealed.
 */
static const char *
data_hash_problem(const LedgerRevision *r, bytea *payload)
{
	uint8		data_hash[LEDGER_HASH_LEN];
	const char *problem = NULL;

	if (r->table_id == LEDGER_CATALOG_TABLE_ID)
		ledger_sha256((uint8 *) VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload), data_hash);
	else
		problem = ledger_revision_data_hash(r->table_id, r->doc_id, r->version,
											payload, data_hash);
	if (problem != NULL)
		return problem;
	if (memcmp(data_hash, r->data_hash, LEDGER_HASH_LEN) != 0)
		return "Its data hash does not match its payload.";
	return NULL;
}

/* A revision without its payload must have a redaction event naming it. */
static bool
redaction_recorded(const LedgerRevision *r)
{
	Oid			types[3] = {INT8OID, INT8OID, INT4OID};
	Datum		args[3] = {Int64GetDatum(r->table_id), Int64GetDatum(r->doc_id),
	Int32GetDatum(r->version)};
	int			ret;
	bool		found;

	ret = SPI_execute_with_args("SELECT 1 FROM ledger.journal WHERE table_id = 0 AND doc_id = $1 "
								"AND convert_from(payload, 'UTF8')::jsonb -> 'redacted' @> "
								"jsonb_build_array(jsonb_build_object('doc_id', $2, 'version', $3)) LIMIT 1",
								3, types, args, NULL, true, 1);
	found = (ret == SPI_OK_SELECT && SPI_processed == 1);
	if (SPI_tuptable != NULL)
		SPI_freetuptable(SPI_tuptable);
	return found;
}

/*
 * One revision's own checks: its revision hash from its stored fields and,
 * at level full, its data hash from its payload.  Returns what is wrong,
 * or NULL; sets the record's leaf and flags.
 */
static const char *
check_revision(bool full, const Datum *values, const bool *isnull,
			   LedgerRevRecord *rec)
{
	LedgerRevision r;

	memset(&r, 0, sizeof(r));
	r.table_id = rec->table_id;
	r.doc_id = rec->doc_id;
	r.version = rec->version;
	r.op = DatumGetChar(values[Anum_journal_op - 1]);
	if (!hash_value(values, isnull, Anum_journal_data_hash,
					r.op == LEDGER_OP_DELETE, r.data_hash))
		return "Its data hash is missing or not 32 bytes long.";
	if (!hash_value(values, isnull, Anum_journal_revision_hash, false, rec->leaf))
		return "Its revision hash is missing or not 32 bytes long.";
	ledger_revision_hash(&r);
	if (memcmp(rec->leaf, r.revision_hash, LEDGER_HASH_LEN) != 0)
		return "Its revision hash does not match its table id, document id, version, operation and data hash.";
	/* here, where the work is shared out, rather than in the chain's walk */
	if (!merkle_leaf(r.revision_hash, LEDGER_HASH_LEN, rec->leaf))
		elog(ERROR, "SHA-256 failed");
	if (!full)
		return NULL;
	if (!isnull[Anum_journal_payload - 1])
		return data_hash_problem(&r, DatumGetByteaPP(values[Anum_journal_payload - 1]));
	if (r.op != LEDGER_OP_DELETE)
	{
		if (!redaction_recorded(&r))
			return "It has no payload, and no redaction of it is recorded in the chain.";
		rec->flags |= LEDGER_REV_REDACTED;
	}
	return NULL;
}

/* Keep a failure if it comes first in the chain's order. */
static void
note_failure(LedgerJournalPass *pass, const LedgerRevRecord *rec,
			 const char *problem, MemoryContext cxt)
{
	if (pass->failure_found && ledger_rev_record_cmp(rec, &pass->failure) >= 0)
		return;
	if (pass->failure_found)
		pfree(pass->failure_detail);
	pass->failure = *rec;
	pass->failure_detail = MemoryContextStrdup(cxt, problem);
	pass->failure_found = true;
}

static void
note_orphan(LedgerJournalPass *pass, const LedgerRevRecord *rec)
{
	if (!pass->orphan_found || ledger_rev_record_cmp(rec, &pass->orphan) < 0)
	{
		pass->orphan = *rec;
		pass->orphan_found = true;
	}
}

/* A worker's records, sorted, to the leader as one run. */
static void
send_run(Scanner *s)
{
	if (s->nrun == 0)
		return;
	ledger_rev_records_sort(s->run->recs, s->nrun);
	if (shm_mq_send(s->out, offsetof(RunMessage, recs) +
					sizeof(LedgerRevRecord) * s->nrun,
					s->run, false, true) != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("ledger_verify: the leader stopped reading a parallel worker's revisions")));
	s->nrun = 0;
}

/* A revision's record under one entry: to the sort, or to the leader. */
static void
put_record(Scanner *s, int64 seq, LedgerRevRecord *rec, const char *problem)
{
	rec->seq = seq;
	if (problem != NULL)
		note_failure(s->pass, rec, problem, s->cxt);
	if (s->out == NULL)
	{
		ledger_revsort_put(s->pass->revs, rec);
		return;
	}
	s->run->recs[s->nrun++] = *rec;
	if (s->nrun == s->run_max)
		send_run(s);
}

/*
 * The place of the first entry with this xid, or -1: a binary search
 * within the span that galloping from the hint finds, since concurrent
 * writers leave the xids of neighbouring rows close, not equal.
 */
static int64
xidmap_find(XidMap *m, uint64 xid)
{
	int64		lo = 0;			/* every entry below lo has a lower xid */
	int64		hi = m->n;		/* every entry from hi on has xid or above */
	int64		step = 1;

	if (m->n == 0)
		return -1;
	if (m->entries[m->hint].xid < xid)
	{
		lo = m->hint + 1;
		while (lo + step - 1 < m->n && m->entries[lo + step - 1].xid < xid)
		{
			lo += step;
			step *= 2;
		}
		hi = Min(lo + step - 1, m->n);
	}
	else
	{
		hi = m->hint;
		while (hi - step >= 0 && m->entries[hi - step].xid >= xid)
		{
			hi -= step;
			step *= 2;
		}
		lo = Max(hi - step + 1, 0);
	}
	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (m->entries[mid].xid < xid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == m->n || m->entries[lo].xid != xid)
		return -1;
	return m->hint = lo;
}

/*
 * One journal row.  Like the join it replaces, a revision whose xid no
 * entry has is noted, and one whose xid several entries have is put under
 * each.  Once a revision without an entry is found, that is what will be
 * reported, and the rest is only searched for an earlier one.
 */
static void
scan_revision(Scanner *s, TupleTableSlot *slot)
{
	const Datum *values = slot->tts_values;
	LedgerRevRecord rec;
	uint64		xid;
	int64		i;
	const char *problem;

	slot_getsomeattrs(slot, Anum_journal_revision_hash);
	memset(&rec, 0, sizeof(rec));
	rec.table_id = DatumGetInt64(values[Anum_journal_table_id - 1]);
	rec.doc_id = DatumGetInt64(values[Anum_journal_doc_id - 1]);
	rec.version = DatumGetInt32(values[Anum_journal_version - 1]);
	xid = U64FromFullTransactionId(DatumGetFullTransactionId(values[Anum_journal_xid - 1]));
	i = xidmap_find(&s->entries, xid);
	if (i < 0)
		note_orphan(s->pass, &rec);
	if (s->pass->orphan_found)
		return;
	problem = check_revision(s->full, values, slot->tts_isnull, &rec);
	if (problem != NULL)
		rec.flags |= LEDGER_REV_FAILED;
	for (; i < s->entries.n && s->entries.entries[i].xid == xid; i++)
		put_record(s, s->entries.entries[i].seq, &rec, problem);
}

/*
 * The walk of the chain takes the entries in order from the same sort as
 * the revisions, each as a record that sorts before its revisions
 * (ledger_rev_record_cmp() orders by the entry flag after seq).
 */
static void
entry_record(const LedgerTxnEntry *e, bool damaged, LedgerRevRecord *r)
{
	memset(r, 0, sizeof(*r));
	r->seq = e->seq;
	r->doc_id = e->committed_at;
	r->version = e->revision_count;
	r->flags = LEDGER_REV_ENTRY | (damaged ? LEDGER_REV_DAMAGED : 0);
	memcpy(r->leaf, e->merkle_root, LEDGER_HASH_LEN);
}

void
ledger_rev_record_entry(const LedgerRevRecord *r, LedgerTxnEntry *e)
{
	Assert(r->flags & LEDGER_REV_ENTRY);
	if (r->flags & LEDGER_REV_DAMAGED)
		ledger_damaged_hash("transaction", r->seq);
	memset(e, 0, sizeof(*e));
	e->seq = r->seq;
	e->committed_at = r->doc_id;
	e->revision_count = r->version;
	memcpy(e->merkle_root, r->leaf, LEDGER_HASH_LEN);
}

/*
 * Every transaction entry by xid, from a scan of ledger.transactions; in
 * the leader, each entry also goes to the sort as a record.
 */
static void
map_entries(Scanner *s, Oid relid, LedgerRevSort *entries)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	XidMap	   *m = &s->entries;
	int64		size = 1024;

	m->entries = palloc(sizeof(XidSeq) * size);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		const Datum *values = slot->tts_values;

		if (m->n == size)
		{
			size *= 2;
			m->entries = repalloc_huge(m->entries, sizeof(XidSeq) * size);
		}
		/* a worker needs only the xid and seq, the leader the whole entry */
		slot_getsomeattrs(slot, entries != NULL ? Anum_txn_merkle_root : Anum_txn_xid);
		m->entries[m->n].xid = U64FromFullTransactionId(DatumGetFullTransactionId(values[Anum_txn_xid - 1]));
		m->entries[m->n].seq = DatumGetInt64(values[Anum_txn_seq - 1]);
		m->n++;
		if (entries != NULL)
		{
			LedgerTxnEntry e;
			LedgerRevRecord r;
			bool		damaged;

			e.seq = DatumGetInt64(values[Anum_txn_seq - 1]);
			e.committed_at = DatumGetTimestampTz(values[Anum_txn_committed_at - 1]);
			e.revision_count = DatumGetInt32(values[Anum_txn_revision_count - 1]);
			damaged = !ledger_hash_from_datum(values[Anum_txn_merkle_root - 1],
											  slot->tts_isnull[Anum_txn_merkle_root - 1],
											  e.merkle_root);
			entry_record(&e, damaged, &r);
			ledger_revsort_put(entries, &r);
		}
		CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	sort_xidseq(m->entries, m->n);
}

static void
scanner_init(Scanner *s, bool full, LedgerJournalPass *pass,
			 VerifyShared *shared, Oid transactions, LedgerRevSort *entries)
{
	memset(s, 0, sizeof(Scanner));
	s->full = full;
	s->pass = pass;
	s->cxt = CurrentMemoryContext;
	s->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "ledger_verify row",
									   ALLOCSET_DEFAULT_SIZES);
	s->shared = shared;
	s->reported = GetCurrentTimestamp();
	map_entries(s, transactions, entries);
}

static void
report_scanned(uint64 rows)
{
	ereport(NOTICE,
			(errmsg("ledger_verify: %llu revisions read from the journal so far",
					(unsigned long long) rows)));
}

static void read_workers(LedgerVerifyWorkers *w, LedgerJournalPass *pass, MemoryContext cxt,
						 bool wait);

/*
 * A participant's share of the journal.  The leader passes its workers,
 * to read what they sent now and then.
 */
static void
scan_rows(Scanner *s, TableScanDesc scan, LedgerVerifyWorkers *w)
{
	TupleTableSlot *slot = table_slot_create(scan->rs_rd, NULL);

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old = MemoryContextSwitchTo(s->row_cxt);

		scan_revision(s, slot); /* detoasts the payload here */
		MemoryContextSwitchTo(old);
		MemoryContextReset(s->row_cxt);
		s->pass->scanned++;
		CHECK_FOR_INTERRUPTS();
		if (s->shared != NULL && ++s->unshared == SHARE_EVERY)
		{
			pg_atomic_fetch_add_u64(&s->shared->scanned, s->unshared);
			s->unshared = 0;
			if (w != NULL)
				read_workers(w, s->pass, s->cxt, false);
		}
		if (s->out == NULL && ledger_progress_due(&s->reported, s->pass->scanned))
			report_scanned(s->shared == NULL ? s->pass->scanned :
						   pg_atomic_read_u64(&s->shared->scanned) + s->unshared);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------
 */

/*
 * Like a parallel sequential scan: one worker from min_parallel_table_scan_size
 * of journal, one more for each tripling, up to
 * max_parallel_maintenance_workers, as this is a maintenance job.
 */
static int
plan_workers(Relation journal, bool full)
{
	uint64		pages = RelationGetNumberOfBlocks(journal);
	uint64		threshold = Max(min_parallel_table_scan_size, 1);
	int			n = 1;

	if (full || IsInParallelMode() || max_parallel_maintenance_workers == 0 ||
		pages < threshold)
		return 0;
	for (threshold *= 3; pages >= threshold && n < max_parallel_maintenance_workers;
		 threshold *= 3)
		n++;
	return n;
}

/*
 * A worker's queue was detached before it was done: it failed, and its
 * error, if it sent one, is raised here; or it was terminated.  Waiting
 * for the workers instead could wait for ever on one blocked sending.
 */
static pg_attribute_noreturn() void
worker_lost(void)
{
	CHECK_FOR_INTERRUPTS();
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("ledger_verify: a parallel worker stopped before it was done"),
			 errhint("Run it again; with max_parallel_maintenance_workers = 0 it runs without workers.")));
}

/* The end of a worker's findings, merged into the leader's. */
static void
take_result(LedgerJournalPass *pass, const WorkerResult *r, MemoryContext cxt)
{
	if (r->orphan_found)
		note_orphan(pass, &r->orphan);
	if (r->failure_found)
		note_failure(pass, &r->failure, r->detail, cxt);
}

/* Whatever the workers have sent; with wait, until all are done. */
static void
read_workers(LedgerVerifyWorkers *w, LedgerJournalPass *pass, MemoryContext cxt, bool wait)
{
	while (w->ndone < w->n)
	{
		bool		got = false;

		for (int i = 0; i < w->n; i++)
		{
			Size		len;
			void	   *data;
			shm_mq_result res;

			if (w->done[i])
				continue;
			while ((res = shm_mq_receive(w->in[i], &len, &data, true)) == SHM_MQ_SUCCESS)
			{
				const char *msg = data;

				got = true;
				if (len == sizeof(WorkerResult) && msg[0] == MSG_DONE)
				{
					take_result(pass, data, cxt);
					w->done[i] = true;
					w->ndone++;
					break;
				}
				if (len < offsetof(RunMessage, recs) || msg[0] != MSG_RUN ||
					(len - offsetof(RunMessage, recs)) % sizeof(LedgerRevRecord) != 0)
					elog(ERROR, "ledger_verify: unexpected message from a parallel worker");
				ledger_revsort_put_run(pass->revs, ((const RunMessage *) data)->recs,
									   (len - offsetof(RunMessage, recs)) / sizeof(LedgerRevRecord));
			}
			if (res == SHM_MQ_DETACHED && !w->done[i])
				worker_lost();
		}
		if (!wait)
			return;
		if (!got)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			if (ledger_progress_due(&w->reported, -1))
				report_scanned(pg_atomic_read_u64(&w->shared->scanned));
		}
	}
}

/* Set up the segment and launch up to n workers; w->n says how many came. */
static void
launch_workers(LedgerVerifyWorkers *w, Relation journal, int n,
			   ParallelTableScanDesc *pscan)
{
	Snapshot	snapshot = GetActiveSnapshot();
	Size		scan_size = table_parallelscan_estimate(journal, snapshot);
	VerifyShared *shared;
	char	   *queues;
	char	   *jobs;

	EnterParallelMode();
	w->pcxt = CreateParallelContext("ledger", "ledger_verify_worker", n);
	shm_toc_estimate_chunk(&w->pcxt->estimator, sizeof(VerifyShared));
	shm_toc_estimate_chunk(&w->pcxt->estimator, scan_size);
	shm_toc_estimate_chunk(&w->pcxt->estimator, mul_size(QUEUE_SIZE, n));
	shm_toc_estimate_chunk(&w->pcxt->estimator, mul_size(QUEUE_SIZE, n));
	shm_toc_estimate_keys(&w->pcxt->estimator, 4);
	InitializeParallelDSM(w->pcxt);

	shared = shm_toc_allocate(w->pcxt->toc, sizeof(VerifyShared));
	shared->journal = RelationGetRelid(journal);
	shared->transactions = ledger_relation_oid("transactions");
	/*
	 * The leader holds the runs: a worker sorts half its share at a time,
	 * but no more than the leader would take in one message.
	 */
	shared->run_records = Max(Min((int64) maintenance_work_mem * 1024 / (2 * (n + 1)),
								  RUN_MAX_BYTES - offsetof(RunMessage, recs)) /
							  (int64) sizeof(LedgerRevRecord), 1024);
	pg_atomic_init_u64(&shared->scanned, 0);
	shm_toc_insert(w->pcxt->toc, KEY_SHARED, shared);
	w->shared = shared;
	w->reported = GetCurrentTimestamp();
	*pscan = shm_toc_allocate(w->pcxt->toc, scan_size);
	table_parallelscan_initialize(journal, *pscan, snapshot);
	shm_toc_insert(w->pcxt->toc, KEY_SCAN, *pscan);
	queues = shm_toc_allocate(w->pcxt->toc, mul_size(QUEUE_SIZE, n));
	shm_toc_insert(w->pcxt->toc, KEY_QUEUES, queues);
	jobs = shm_toc_allocate(w->pcxt->toc, mul_size(QUEUE_SIZE, n));
	shm_toc_insert(w->pcxt->toc, KEY_JOBS, jobs);

	w->in = palloc0(sizeof(shm_mq_handle *) * n);
	w->jobs = palloc0(sizeof(shm_mq_handle *) * n);
	w->done = palloc0(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		shm_mq	   *in = shm_mq_create(queues + (Size) i * QUEUE_SIZE, QUEUE_SIZE);
		shm_mq	   *job = shm_mq_create(jobs + (Size) i * QUEUE_SIZE, QUEUE_SIZE);

		shm_mq_set_receiver(in, MyProc);
		w->in[i] = shm_mq_attach(in, w->pcxt->seg, NULL);
		shm_mq_set_sender(job, MyProc);
		w->jobs[i] = shm_mq_attach(job, w->pcxt->seg, NULL);
	}
	LaunchParallelWorkers(w->pcxt);
	/* as nbtsort does: one that cannot start is an error now, not a hang later */
	WaitForParallelWorkersToAttach(w->pcxt);
	w->n = w->pcxt->nworkers_launched;
	for (int i = 0; i < w->n; i++)
	{
		shm_mq_set_handle(w->in[i], w->pcxt->worker[i].bgwhandle);
		shm_mq_set_handle(w->jobs[i], w->pcxt->worker[i].bgwhandle);
	}
}

/* The walk is done: the workers' wait for subtrees ends. */
void
ledger_verify_workers_end(LedgerVerifyWorkers *w)
{
	if (w == NULL)
		return;
	for (int i = 0; i < w->n; i++)
		shm_mq_detach(w->jobs[i]);
	WaitForParallelWorkersToFinish(w->pcxt);
	DestroyParallelContext(w->pcxt);
	ExitParallelMode();
}

/* Subtrees from the leader, hashed, until it lets go of the queue. */
static void
serve_subtrees(shm_mq_handle *jobs, shm_mq_handle *out)
{
	Size		len;
	void	   *data;

	while (shm_mq_receive(jobs, &len, &data, false) == SHM_MQ_SUCCESS)
	{
		const TreeJob *job = data;
		TreeRoot	r = {0};

		if (len < offsetof(TreeJob, leaves) || job->type != MSG_TREE ||
			(len - offsetof(TreeJob, leaves)) % LEDGER_HASH_LEN != 0)
			elog(ERROR, "ledger_verify: unexpected message from the leader");
		r.type = MSG_ROOT;
		r.subtree = job->subtree;
		ledger_merkle_root_of_leaves(job->leaves,
									 (len - offsetof(TreeJob, leaves)) / LEDGER_HASH_LEN,
									 r.root);
		if (shm_mq_send(out, sizeof(r), &r, false, true) != SHM_MQ_SUCCESS)
			return;
	}
}

/*
 * A parallel worker's share of the journal; its findings go to the
 * leader.  Then it hashes subtrees for the leader's walk.
 */
void
ledger_verify_worker(dsm_segment *seg, shm_toc *toc)
{
	VerifyShared *shared = shm_toc_lookup(toc, KEY_SHARED, false);
	ParallelTableScanDesc pscan = shm_toc_lookup(toc, KEY_SCAN, false);
	char	   *queues = shm_toc_lookup(toc, KEY_QUEUES, false);
	shm_mq	   *mq = (shm_mq *) (queues + (Size) ParallelWorkerNumber * QUEUE_SIZE);
	char	   *jobs = shm_toc_lookup(toc, KEY_JOBS, false);
	shm_mq	   *jobmq = (shm_mq *) (jobs + (Size) ParallelWorkerNumber * QUEUE_SIZE);
	LedgerJournalPass pass;
	Scanner    *s = palloc(sizeof(Scanner));
	Relation	journal;
	TableScanDesc scan;
	WorkerResult r;
	shm_mq_handle *out;

	shm_mq_set_sender(mq, MyProc);
	shm_mq_set_receiver(jobmq, MyProc);
	/* attached first: should anything below fail, the leader sees us detach */
	out = shm_mq_attach(mq, seg, NULL);
	memset(&pass, 0, sizeof(pass));
	scanner_init(s, false, &pass, shared, shared->transactions, NULL);	/* chain */
	s->out = out;
	s->run_max = shared->run_records;
	s->run = palloc(offsetof(RunMessage, recs) + sizeof(LedgerRevRecord) * s->run_max);
	s->run->type = MSG_RUN;

	journal = table_open(shared->journal, AccessShareLock);
	scan = table_beginscan_parallel(journal, pscan);
	scan_rows(s, scan, NULL);
	table_endscan(scan);
	table_close(journal, AccessShareLock);
	send_run(s);

	memset(&r, 0, sizeof(r));
	r.type = MSG_DONE;
	r.orphan_found = pass.orphan_found;
	r.orphan = pass.orphan;
	r.failure_found = pass.failure_found;
	r.failure = pass.failure;
	if (pass.failure_found)
		strlcpy(r.detail, pass.failure_detail, sizeof(r.detail));
	if (shm_mq_send(s->out, sizeof(r), &r, false, true) == SHM_MQ_SUCCESS)
		serve_subtrees(shm_mq_attach(jobmq, seg, NULL), s->out);
}

/*
 * Every revision, checked and recorded for the chain's order.  A failed
 * check is only noted: the chain's order decides which failure is
 * reported, and where the chain itself fails first, that is.
 */
void
ledger_read_journal(bool full, LedgerJournalPass *pass)
{
	Relation	journal = table_open(ledger_relation_oid("journal"), AccessShareLock);
	int			planned = plan_workers(journal, full);
	LedgerVerifyWorkers *w = NULL;
	ParallelTableScanDesc pscan = NULL;
	bool		leader_scans;
	Scanner    *s = palloc(sizeof(Scanner));

	memset(pass, 0, sizeof(*pass));
	pass->revs = ledger_revsort_begin(maintenance_work_mem);
	if (planned > 0)
	{
		w = palloc0(sizeof(LedgerVerifyWorkers));
		launch_workers(w, journal, planned, &pscan);
	}
	pass->workers = w;
	/* as in a parallel index build, the leader may leave the scan to them */
	leader_scans = (w == NULL || w->n == 0 || parallel_leader_participation);
	ereport(DEBUG1,
			(errmsg_internal("ledger_verify: the journal is read by %s%d of %d planned parallel workers",
							 leader_scans ? "the leader and " : "", w ? w->n : 0, planned)));
	/* the entries go to the sort here, whoever reads the journal */
	scanner_init(s, full, pass, w ? w->shared : NULL, ledger_relation_oid("transactions"),
				 pass->revs);
	if (leader_scans)
	{
		TableScanDesc scan = pscan != NULL ? table_beginscan_parallel(journal, pscan) :
			table_beginscan(journal, GetActiveSnapshot(), 0, NULL);

		scan_rows(s, scan, w && w->n > 0 ? w : NULL);
		table_endscan(scan);
	}
	MemoryContextDelete(s->row_cxt);
	pfree(s->entries.entries);
	pfree(s);
	if (w != NULL)
		read_workers(w, pass, CurrentMemoryContext, true);
	table_close(journal, AccessShareLock);
}

/* ------------------------------------------------------------------------
 * Trees
 * ------------------------------------------------------------------------
 */

static void
send_subtree(LedgerVerifyWorkers *w, int i, const uint8 (*leaves)[LEDGER_HASH_LEN],
			 const uint64 *range, int subtree)
{
	TreeJob		job;
	shm_mq_iovec iov[2];

	job.type = MSG_TREE;
	job.subtree = subtree;
	iov[0].data = (const char *) &job;
	iov[0].len = offsetof(TreeJob, leaves);
	iov[1].data = (const char *) leaves[range[0]];
	iov[1].len = (range[1] - range[0]) * LEDGER_HASH_LEN;
	if (shm_mq_sendv(w->jobs[i], iov, 2, false, true) != SHM_MQ_SUCCESS)
		worker_lost();
}

/* A shm_mq message is at most MaxAllocSize: the leader hashes larger subtrees. */
static bool
job_fits(const uint64 *range)
{
	return (range[1] - range[0]) <= (MaxAllocSize - offsetof(TreeJob, leaves)) / LEDGER_HASH_LEN;
}

/* A worker's answer, if it has one. */
static bool
take_subtree(LedgerVerifyWorkers *w, int i, uint8 (*roots)[LEDGER_HASH_LEN])
{
	Size		len;
	void	   *data;
	const TreeRoot *r;

	switch (shm_mq_receive(w->in[i], &len, &data, true))
	{
		case SHM_MQ_WOULD_BLOCK:
			return false;
		case SHM_MQ_DETACHED:
			worker_lost();
		case SHM_MQ_SUCCESS:
			break;
	}
	r = data;
	if (len != sizeof(TreeRoot) || r->type != MSG_ROOT ||
		r->subtree < 0 || r->subtree >= (1 << TREE_DEPTH))
		elog(ERROR, "ledger_verify: unexpected message from a parallel worker");
	memcpy(roots[r->subtree], r->root, LEDGER_HASH_LEN);
	return true;
}

/*
 * A transaction's Merkle root over its leaves.  A large one is cut into
 * subtrees that idle workers hash while the leader hashes others.
 */
void
ledger_verify_tree_root(LedgerVerifyWorkers *w, const uint8 (*leaves)[LEDGER_HASH_LEN],
						int64 n, uint8 *root)
{
	uint64		ranges[1 << TREE_DEPTH][2];
	uint8		roots[1 << TREE_DEPTH][LEDGER_HASH_LEN];
	bool	   *busy;
	int			nsub;
	int			next = 0;
	int			pending = 0;
	int			sent = 0;

	if (w == NULL || w->n == 0 || n < TREE_PARALLEL_MIN)
	{
		ledger_merkle_root_of_leaves(leaves, n, root);
		return;
	}
	nsub = merkle_subtrees(n, TREE_DEPTH, ranges);
	busy = palloc0(sizeof(bool) * w->n);
	while (next < nsub || pending > 0)
	{
		for (int i = 0; i < w->n; i++)
		{
			if (busy[i] && take_subtree(w, i, roots))
			{
				busy[i] = false;
				pending--;
			}
			if (!busy[i] && next < nsub && job_fits(ranges[next]))
			{
				send_subtree(w, i, leaves, ranges[next], next);
				next++;
				busy[i] = true;
				pending++;
				sent++;
			}
		}
		if (next < nsub)
		{
			ledger_merkle_root_of_leaves(leaves + ranges[next][0],
										 ranges[next][1] - ranges[next][0], roots[next]);
			next++;
		}
		else if (pending > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	pfree(busy);
	if (!merkle_root_of_subtrees(n, TREE_DEPTH, roots, root))
		elog(ERROR, "SHA-256 failed");
	ereport(DEBUG1,
			(errmsg_internal("ledger_verify: a tree of %lld revisions is hashed in %d subtrees, %d of them by parallel workers",
							 (long long) n, nsub, sent)));
}

