/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  ledger_verify(): recompute the history from what is stored.
 *
 * Level "chain" recomputes every revision hash, every transaction's Merkle
 * root and every block, from the stored values alone; it needs no key.
 * Level "full" also opens every revision to recompute its data hash, and
 * checks that the current rows of every ledger table are exactly the
 * newest revisions of their documents.  The first failure is an error that
 * names its place.
 *
 * The journal is read once in physical order, without SPI: each revision
 * is checked there, and becomes a small record that revsort.c regroups by
 * transaction.  Cursors then walk blocks and entries in order, each entry
 * taking its records, so the first failure reported is the first in the
 * chain's order, wherever the journal keeps it.  docs/internals.md says
 * why, and what memory it takes.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"
#include "proofjson.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/datetime.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(ledger_verify);
PG_FUNCTION_INFO_V1(ledger_verify_digest);

#define FETCH_ROWS			1000
#define PROGRESS_SECS		10

/* An SPI cursor read one row at a time. */
typedef struct Cursor
{
	Portal		portal;
	SPITupleTable *tt;
	uint64		n;
	uint64		pos;
} Cursor;

/*
 * Revisions name their entry by xid: a hash table of every entry resolves
 * it, one element of 24 bytes per transaction entry.
 */
typedef struct XidEntry
{
	uint64		xid;
	int64		seq;
	bool		shared;			/* more entries have this xid: shared_xids */
	char		status;
} XidEntry;

#define SH_PREFIX xidmap
#define SH_ELEMENT_TYPE XidEntry
#define SH_KEY_TYPE uint64
#define SH_KEY xid
#define SH_HASH_KEY(tb, key) murmurhash32((uint32) ((key) ^ ((key) >> 32)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct Verify
{
	bool		full;
	int64		scanned;		/* journal rows read */
	int64		revisions;
	int64		transactions;
	int64		blocks;
	int64		unsealed;
	int64		rows;
	int64		redacted;
	TimestampTz started;
	TimestampTz reported;
	LedgerBlock last;			/* newest block checked */
	MerkleFrontier tree;		/* over the blocks checked */
	ChainDigest digest;			/* block -1: no digest given */
	bool		digest_found;
	Cursor		blocks_c;
	Cursor		entries_c;
	xidmap_hash *entries_by_xid;
	List	   *shared_xids;	/* XidEntry of each entry after the first */
	LedgerRevSort *revs;
	bool		orphan_found;	/* a revision no entry covers */
	LedgerRevRecord orphan;		/* the first such, in key order */
	bool		failure_found;
	LedgerRevRecord failure;	/* the first failed revision, in key order */
	char	   *failure_detail;
	MemoryContext cxt;			/* of the whole run */
	MemoryContext row_cxt;		/* emptied after every revision */
} Verify;

static void
cursor_open(Cursor *c, const char *sql)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);

	if (plan == NULL)
		elog(ERROR, "ledger_verify: could not prepare \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	c->portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	c->tt = NULL;
	c->n = c->pos = 0;
}

/* The current row, or NULL at the end. */
static HeapTuple
cursor_peek(Cursor *c)
{
	if (c->pos >= c->n)
	{
		if (c->tt != NULL)
			SPI_freetuptable(c->tt);
		SPI_cursor_fetch(c->portal, true, FETCH_ROWS);
		c->tt = SPI_tuptable;
		c->n = SPI_processed;
		c->pos = 0;
	}
	return c->pos < c->n ? c->tt->vals[c->pos] : NULL;
}

static Datum
cursor_value(Cursor *c, int col, bool *isnull)
{
	return SPI_getbinval(c->tt->vals[c->pos], c->tt->tupdesc, col, isnull);
}

static pg_attribute_noreturn() void
fail(const char *place, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("ledger verification failed at %s", place),
			 errdetail("%s", detail),
			 errhint("The history was changed outside the ledger. Restore the damaged place from a backup or an export, or compare with a digest kept outside the database.")));
}

static char *
table_name(int64 table_id)
{
	char	   *name = NULL;
	int			ret;
	Datum		arg = Int64GetDatum(table_id);
	Oid			argtype = INT8OID;

	ret = SPI_execute_with_args("SELECT relid::regclass::text FROM ledger.tables "
								"WHERE table_id = $1 AND dropped_at IS NULL",
								1, &argtype, &arg, NULL, true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
		name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (table_id == LEDGER_CATALOG_TABLE_ID)
		return pstrdup("the ledger catalog (table id 0)");
	if (name == NULL)
		return psprintf("table id %lld", (long long) table_id);
	return psprintf("table %s (table id %lld)", name, (long long) table_id);
}

static char *
revision_place(const LedgerRevRecord *r)
{
	return psprintf("%s document %lld version %d", table_name(r->table_id),
					(long long) r->doc_id, r->version);
}

/* Whether a progress report is due, "count" revisions into a pass. */
static bool
progress_due(Verify *v, int64 count)
{
	TimestampTz now;

	CHECK_FOR_INTERRUPTS();
	if (count % 4096 != 0)
		return false;			/* the clock is read now and then only */
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(v->reported, now, PROGRESS_SECS * 1000))
		return false;
	v->reported = now;
	return true;
}

static void
report_progress(Verify *v)
{
	if (!progress_due(v, v->revisions))
		return;
	ereport(NOTICE,
			(errmsg("ledger_verify: %lld revisions in %lld transactions and %lld blocks checked so far",
					(long long) v->revisions, (long long) v->transactions,
					(long long) v->blocks)));
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
check_revision(Verify *v, const Datum *values, const bool *isnull,
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
	if (!v->full)
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

/*
 * A revision's record under one entry.  Only the failure first in the
 * chain's order can be the one reported, so only its detail is kept.
 */
static void
put_record(Verify *v, int64 seq, LedgerRevRecord *rec, const char *problem)
{
	rec->seq = seq;
	if (problem != NULL &&
		(!v->failure_found || ledger_rev_record_cmp(rec, &v->failure) < 0))
	{
		if (v->failure_found)
			pfree(v->failure_detail);
		v->failure = *rec;
		v->failure_detail = MemoryContextStrdup(v->cxt, problem);
		v->failure_found = true;
	}
	ledger_revsort_put(v->revs, rec);
}

/*
 * One journal row.  Like the join it replaces, a revision whose xid no
 * entry has is noted, and one whose xid several entries have is put under
 * each.  Once a revision without an entry is found, that is what will be
 * reported, and the rest is only searched for an earlier one.
 */
static void
scan_revision(Verify *v, TupleTableSlot *slot)
{
	const Datum *values = slot->tts_values;
	LedgerRevRecord rec;
	XidEntry   *e;
	const char *problem;
	ListCell   *lc;

	slot_getsomeattrs(slot, Anum_journal_revision_hash);
	memset(&rec, 0, sizeof(rec));
	rec.table_id = DatumGetInt64(values[Anum_journal_table_id - 1]);
	rec.doc_id = DatumGetInt64(values[Anum_journal_doc_id - 1]);
	rec.version = DatumGetInt32(values[Anum_journal_version - 1]);
	e = xidmap_lookup(v->entries_by_xid,
					  U64FromFullTransactionId(DatumGetFullTransactionId(values[Anum_journal_xid - 1])));
	if (e == NULL && (!v->orphan_found || ledger_rev_record_cmp(&rec, &v->orphan) < 0))
	{
		v->orphan = rec;
		v->orphan_found = true;
	}
	if (v->orphan_found)
		return;
	problem = check_revision(v, values, slot->tts_isnull, &rec);
	if (problem != NULL)
		rec.flags |= LEDGER_REV_FAILED;
	put_record(v, e->seq, &rec, problem);
	if (!e->shared)
		return;
	foreach(lc, v->shared_xids)
	{
		const XidEntry *more = lfirst(lc);

		if (more->xid == e->xid)
			put_record(v, more->seq, &rec, problem);
	}
}

/* Every transaction entry by xid, from a scan of ledger.transactions. */
static void
map_entries(Verify *v)
{
	Relation	rel = table_open(ledger_relation_oid("transactions"), AccessShareLock);
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	v->entries_by_xid = xidmap_create(CurrentMemoryContext, 1024, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		uint64		xid;
		XidEntry   *e;
		bool		found;

		slot_getsomeattrs(slot, Anum_txn_xid);
		xid = U64FromFullTransactionId(DatumGetFullTransactionId(slot->tts_values[Anum_txn_xid - 1]));
		e = xidmap_insert(v->entries_by_xid, xid, &found);
		e->shared = found;
		if (found)
		{
			e = palloc(sizeof(XidEntry));
			e->xid = xid;
			v->shared_xids = lappend(v->shared_xids, e);
		}
		e->seq = DatumGetInt64(slot->tts_values[Anum_txn_seq - 1]);
		CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * Every revision, in physical order, checked and recorded for the chain's
 * order.  A failed check is only noted: the chain's order decides which
 * failure is reported, and where the chain itself fails first, that is.
 */
static void
scan_journal(Verify *v)
{
	Relation	rel = table_open(ledger_relation_oid("journal"), AccessShareLock);
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	v->revs = ledger_revsort_begin(maintenance_work_mem);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old = MemoryContextSwitchTo(v->row_cxt);

		scan_revision(v, slot);		/* detoasts the payload here */
		MemoryContextSwitchTo(old);
		MemoryContextReset(v->row_cxt);
		if (progress_due(v, ++v->scanned))
			ereport(NOTICE,
					(errmsg("ledger_verify: %lld revisions read from the journal so far",
							(long long) v->scanned)));
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	if (v->orphan_found)
		fail(revision_place(&v->orphan), "No transaction entry covers this revision.");
	ledger_revsort_done(v->revs);
}

/* A revision taken in the chain's order. */
static void
take_revision(Verify *v, const LedgerRevRecord *rec, uint8 *leaf)
{
	if (rec->flags & LEDGER_REV_FAILED)
	{
		/* records arrive in key order: this is the first failure */
		Assert(ledger_rev_record_cmp(rec, &v->failure) == 0);
		fail(revision_place(&v->failure), v->failure_detail);
	}
	if (rec->flags & LEDGER_REV_REDACTED)
		v->redacted++;
	memcpy(leaf, rec->leaf, LEDGER_HASH_LEN);
	v->revisions++;
}

/* One transaction entry and its revisions; returns its entry hash. */
static void
check_entry(Verify *v, const LedgerTxnEntry *e, uint8 *entry_hash)
{
	const LedgerRevRecord *rec;
	uint8		(*leaves)[LEDGER_HASH_LEN] = NULL;
	int64		n = 0;
	int64		max = 0;
	uint8		root[LEDGER_HASH_LEN];

	while ((rec = ledger_revsort_peek(v->revs)) != NULL && rec->seq == e->seq)
	{
		if (n == max)
		{
			max = Max(64, max * 2);
			leaves = leaves == NULL ? palloc(sizeof(*leaves) * max) :
				repalloc_huge(leaves, sizeof(*leaves) * max);
		}
		take_revision(v, rec, leaves[n++]);
		ledger_revsort_next(v->revs);
		report_progress(v);
	}
	if (n != e->revision_count)
		fail(psprintf("transaction %lld", (long long) e->seq),
			 psprintf("The entry counts %d revisions, the journal holds %lld.",
					  e->revision_count, (long long) n));
	ledger_merkle_root(leaves, n, root);
	if (memcmp(root, e->merkle_root, LEDGER_HASH_LEN) != 0)
		fail(psprintf("transaction %lld", (long long) e->seq),
			 "The Merkle root of its revisions does not match the entry.");
	if (leaves != NULL)
		pfree(leaves);
	ledger_entry_hash(e, entry_hash);
	v->transactions++;
}

/* The next entry if its number is at most max_seq. */
static bool
next_entry(Verify *v, int64 max_seq, LedgerTxnEntry *e)
{
	HeapTuple	tup = cursor_peek(&v->entries_c);

	if (tup == NULL)
		return false;
	ledger_deform_entry(v->entries_c.tt->tupdesc, tup, e);
	if (e->seq > max_seq)
		return false;
	v->entries_c.pos++;
	return true;
}

/*
 * Add the block to the tree of blocks, and require the nodes and root
 * stored with it to be the ones its leaf completes.
 */
static void
check_tree(Verify *v, const LedgerBlock *b, const char *place)
{
	uint8		leaf[LEDGER_HASH_LEN];
	uint8		nodes[MERKLE_MAX_LEVELS][LEDGER_HASH_LEN];
	uint8		root[LEDGER_HASH_LEN];
	int			n;

	if (!merkle_leaf(b->hash, LEDGER_HASH_LEN, leaf) ||
		(n = merkle_frontier_push(&v->tree, leaf, nodes)) < 0 ||
		!merkle_frontier_root(&v->tree, root))
		elog(ERROR, "SHA-256 failed");
	if (n != b->ntree_nodes ||
		memcmp(nodes, b->tree_nodes, (Size) n * LEDGER_HASH_LEN) != 0)
		fail(place, "Its tree nodes do not match the hashes of the blocks up to it.");
	if (memcmp(root, b->tree_root, LEDGER_HASH_LEN) != 0)
		fail(place, "Its tree root does not match the hashes of the blocks up to it.");
}

static void
check_block(Verify *v, const LedgerBlock *b)
{
	char	   *place = psprintf("block %lld", (long long) b->number);
	uint8		(*hashes)[LEDGER_HASH_LEN] = NULL;
	int64		n = 0;
	int64		max = 0;
	uint8		hash[LEDGER_HASH_LEN];
	LedgerTxnEntry e;
	int64		prev_number = v->blocks == 0 ? -1 : v->last.number;

	if (b->number != prev_number + 1)
		fail(place, psprintf("Block %lld should come next.", (long long) prev_number + 1));
	if (memcmp(b->previous_hash, v->last.hash, LEDGER_HASH_LEN) != 0)
		fail(place, "Its previous hash is not the hash of the block before it.");
	if (b->number > 0 &&
		(b->first_seq <= v->last.last_seq || b->last_seq < b->first_seq))
		fail(place, "Its range of transactions overlaps the block before it.");

	while (next_entry(v, b->last_seq, &e))
	{
		if (e.seq < b->first_seq)
			fail(psprintf("transaction %lld", (long long) e.seq),
				 "The entry lies between two blocks: no block covers it.");
		if (n == max)
		{
			max = Max(64, max * 2);
			hashes = hashes == NULL ? palloc(sizeof(*hashes) * max) :
				repalloc_huge(hashes, sizeof(*hashes) * max);
		}
		check_entry(v, &e, hashes[n++]);
	}
	if (n != b->entry_count)
		fail(place, psprintf("The block counts %d transactions, ledger.transactions holds %lld in its range.",
							 b->entry_count, (long long) n));
	ledger_merkle_root(hashes, n, hash);
	if (memcmp(hash, b->merkle_root, LEDGER_HASH_LEN) != 0)
		fail(place, "The Merkle root of its transactions does not match the block.");
	ledger_block_hash(b, hash);
	if (memcmp(hash, b->hash, LEDGER_HASH_LEN) != 0)
		fail(place, "Its block hash does not match its contents.");
	check_tree(v, b, place);
	if (b->number == v->digest.block)
	{
		if (memcmp(b->hash, v->digest.hash, LEDGER_HASH_LEN) != 0 ||
			memcmp(b->tree_root, v->digest.root, LEDGER_HASH_LEN) != 0)
			fail(place, "Its hash differs from the digest: the history up to the digest has changed.");
		v->digest_found = true;
	}
	if (hashes != NULL)
		pfree(hashes);
	v->last = *b;
	v->blocks++;
}

/* The chain, from block 0 to the newest block, then the unsealed entries. */
static void
check_chain(Verify *v)
{
	HeapTuple	tup;
	LedgerTxnEntry e;

	cursor_open(&v->blocks_c, "SELECT * FROM ledger.blocks ORDER BY block_number");
	cursor_open(&v->entries_c, "SELECT * FROM ledger.transactions ORDER BY seq");
	map_entries(v);
	scan_journal(v);

	memset(&v->last, 0, sizeof(v->last));
	while ((tup = cursor_peek(&v->blocks_c)) != NULL)
	{
		LedgerBlock b;

		ledger_deform_block(v->blocks_c.tt->tupdesc, tup, &b);
		v->blocks_c.pos++;
		if (b.number == 0 && (b.entry_count != 0 || b.first_seq != 0 || b.last_seq != 0))
			fail("block 0", "Block 0 must cover no transactions.");
		check_block(v, &b);
	}
	if (v->blocks == 0)
		fail("block 0", "The ledger has no blocks.");
	while (next_entry(v, PG_INT64_MAX, &e))
	{
		uint8		hash[LEDGER_HASH_LEN];

		check_entry(v, &e, hash);
		v->unsealed++;
	}
}

/* ------------------------------------------------------------------------
 * Current rows (level full)
 * ------------------------------------------------------------------------
 */

typedef struct DocVersion
{
	int64		doc_id;
	int32		version;
	uint8		fingerprint[LEDGER_FINGERPRINT_LEN];	/* which sealing of it */
} DocVersion;

static int
doc_cmp(const void *a, const void *b)
{
	const DocVersion *x = a;
	const DocVersion *y = b;

	if (x->doc_id != y->doc_id)
		return x->doc_id < y->doc_id ? -1 : 1;
	return 0;
}

typedef struct RowContext
{
	const char *table;
} RowContext;

static void
row_context(void *arg)
{
	errcontext("verifying the current rows of %s", ((RowContext *) arg)->table);
}

/*
 * Every current row, opened (which checks its payload and its plaintext
 * columns), with its document id and version; sorted by document.
 */
static DocVersion *
current_rows(Relation rel, int64 *nrows)
{
	const TableAmRoutine *heapam = GetHeapamTableAmRoutine();
	Snapshot	snap = GetActiveSnapshot();
	TableScanDesc scan = heapam->scan_begin(rel, snap, 0, NULL, NULL,
											SO_TYPE_SEQSCAN | SO_ALLOW_STRAT |
											SO_ALLOW_PAGEMODE);
	TupleTableSlot *phys = MakeSingleTupleTableSlot(RelationGetDescr(rel),
													&TTSOpsBufferHeapTuple);
	TupleTableSlot *scratch = table_slot_create(rel, NULL);
	DocVersion *rows = NULL;
	int64		n = 0;
	int64		max = 0;

	/*
	 * The physical tuples: opening them through the access method would
	 * build every row only to look at its header.
	 */
	while (heapam->scan_getnextslot(scan, ForwardScanDirection, phys))
	{
		LedgerHeader hdr;
		uint8		fingerprint[LEDGER_FINGERPRINT_LEN];
		bool		should_free;
		HeapTuple	tup = ExecFetchSlotHeapTuple(phys, false, &should_free);

		ledger_check_row(rel, tup, scratch, &hdr, fingerprint);
		if (should_free)
			heap_freetuple(tup);
		if (n == max)
		{
			max = Max(64, max * 2);
			rows = rows == NULL ? palloc(sizeof(DocVersion) * max) :
				repalloc_huge(rows, sizeof(DocVersion) * max);
		}
		rows[n].doc_id = hdr.doc_id;
		rows[n].version = hdr.version;
		memcpy(rows[n].fingerprint, fingerprint, LEDGER_FINGERPRINT_LEN);
		n++;
		CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(scratch);
	ExecDropSingleTupleTableSlot(phys);
	heapam->scan_end(scan);
	if (n > 0)
		qsort(rows, n, sizeof(DocVersion), doc_cmp);
	*nrows = n;
	return rows;
}

/*
 * A row must be the very sealing of its committed revision: not the row of
 * a transaction that rolled back after sealing the same version, authentic
 * as that is, nor a header-only row whose header reading would not find.
 */
static bool
same_sealing(Relation rel, Relation journal, Cursor *newest, const uint8 *fingerprint)
{
	bool		isnull;
	HeapTupleData tup;
	Buffer		buf;
	Datum		payload;
	bytea	   *start;
	uint8		theirs[LEDGER_FINGERPRINT_LEN];
	bool		same = false;

	tup.t_self = *(ItemPointer) DatumGetPointer(cursor_value(newest, 4, &isnull));
	if (!heap_fetch(journal, GetActiveSnapshot(), &tup, &buf, false))
		return false;
	payload = heap_getattr(&tup, Anum_journal_payload, RelationGetDescr(journal), &isnull);
	if (!isnull)
	{
		/* One slice per current row: freed, or a large table's would pile up. */
		start = DatumGetByteaPSlice(payload, 0, ledger_header_len(rel));
		same = ledger_header_fingerprint(start, theirs) &&
			memcmp(theirs, fingerprint, LEDGER_FINGERPRINT_LEN) == 0;
		pfree(start);
	}
	ReleaseBuffer(buf);
	return same;
}

/* Merge the current rows with the newest revision of each document. */
static void
check_table(Verify *v, int64 table_id, Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	char	   *name = table_name(table_id);
	RowContext rc = {name};
	ErrorContextCallback cb = {error_context_stack, row_context, &rc};
	DocVersion *rows;
	int64		nrows;
	int64		i = 0;
	Cursor		newest;
	HeapTuple	tup;
	Relation	journal;

	error_context_stack = &cb;
	rows = current_rows(rel, &nrows);
	error_context_stack = cb.previous;

	/*
	 * The newest revisions' places, not their headers: the sort carries a
	 * value for every revision of the table, and a slice of each payload
	 * made it spill.
	 */
	cursor_open(&newest, psprintf("SELECT DISTINCT ON (doc_id) doc_id, version, op, ctid "
								  "FROM ledger.journal WHERE table_id = %lld "
								  "ORDER BY doc_id, version DESC", (long long) table_id));
	journal = table_open(ledger_relation_oid("journal"), AccessShareLock);
	while ((tup = cursor_peek(&newest)) != NULL || i < nrows)
	{
		bool		isnull;
		int64		doc = tup ? DatumGetInt64(cursor_value(&newest, 1, &isnull)) : PG_INT64_MAX;
		int32		version = tup ? DatumGetInt32(cursor_value(&newest, 2, &isnull)) : 0;
		bool		deleted = tup ? DatumGetChar(cursor_value(&newest, 3, &isnull)) == LEDGER_OP_DELETE : true;

		if (i < nrows && rows[i].doc_id < doc)
			fail(psprintf("%s document %lld", name, (long long) rows[i].doc_id),
				 "The table holds a row whose document has no revision in the journal.");
		if (i < nrows && rows[i].doc_id == doc)
		{
			if (deleted)
				fail(psprintf("%s document %lld", name, (long long) doc),
					 "The table holds a row of a document that was deleted.");
			if (rows[i].version != version)
				fail(psprintf("%s document %lld version %d", name, (long long) doc, rows[i].version),
					 psprintf("The current row is version %d, the newest revision is version %d.",
							  rows[i].version, version));
			if (!same_sealing(rel, journal, &newest, rows[i].fingerprint))
				fail(psprintf("%s document %lld version %d", name, (long long) doc, version),
					 "The current row is not the sealing of its newest revision: its payload header differs from the journal's, so it was replaced or changed.");
			if (i + 1 < nrows && rows[i + 1].doc_id == doc)
				fail(psprintf("%s document %lld", name, (long long) doc),
					 "The table holds more than one row of this document.");
			i++;
			v->rows++;
		}
		else if (!deleted)
			fail(psprintf("%s document %lld version %d", name, (long long) doc, version),
				 "The newest revision is not a deletion, but the table has no row of this document.");
		newest.pos++;
	}
	SPI_cursor_close(newest.portal);
	table_close(journal, AccessShareLock);
	table_close(rel, AccessShareLock);
}

static void
check_current_rows(Verify *v)
{
	int			ret;
	SPITupleTable *tables;
	uint64		ntables;

	/* Temporary tables are their sessions' own; their revisions are checked. */
	ret = SPI_execute("SELECT t.table_id, t.relid FROM ledger.tables t "
					  "JOIN pg_class c ON c.oid = t.relid "
					  "WHERE t.dropped_at IS NULL AND c.relpersistence <> 't' "
					  "ORDER BY t.table_id", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "ledger_verify: could not list ledger tables");
	tables = SPI_tuptable;
	ntables = SPI_processed;
	for (uint64 i = 0; i < ntables; i++)
	{
		bool		isnull;
		int64		table_id = DatumGetInt64(SPI_getbinval(tables->vals[i], tables->tupdesc, 1, &isnull));
		Oid			relid = DatumGetObjectId(SPI_getbinval(tables->vals[i], tables->tupdesc, 2, &isnull));

		check_table(v, table_id, relid);
	}
}

/* ------------------------------------------------------------------------
 * SQL entry points
 * ------------------------------------------------------------------------
 */

static Datum
summary(FunctionCallInfo fcinfo, Verify *v)
{
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {0};
	Interval   *elapsed = palloc0(sizeof(Interval));

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	elapsed->time = GetCurrentTimestamp() - v->started;
	values[0] = Int64GetDatum(v->revisions);
	values[1] = Int64GetDatum(v->transactions);
	values[2] = Int64GetDatum(v->blocks);
	values[3] = Int64GetDatum(v->unsealed);
	values[4] = Int64GetDatum(v->rows);
	nulls[4] = !v->full;
	values[5] = Int64GetDatum(v->redacted);
	nulls[5] = !v->full;
	values[6] = Int64GetDatum(v->last.number);
	values[7] = IntervalPGetDatum(elapsed);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

/* Verify everything; with a digest, also check its block. */
static void
run(Verify *v, bool full, const ChainDigest *digest)
{
	LedgerUserSave save;

	memset(v, 0, sizeof(Verify));
	v->full = full;
	v->digest.block = -1;
	if (digest != NULL)
		v->digest = *digest;
	v->started = v->reported = GetCurrentTimestamp();
	if (!OidIsValid(ledger_relation_oid("blocks")))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"ledger\" is not installed in this database")));
	ledger_require_chain_tables();
	ledger_become_owner(&save);
	/* A maintenance job: its sorts may use maintenance_work_mem. */
	(void) set_config_option("work_mem", psprintf("%d", maintenance_work_mem),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	/* Compiling the queries costs more than it saves on a full scan. */
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ledger_verify: SPI_connect failed");
	v->cxt = CurrentMemoryContext;
	v->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "ledger_verify row",
									   ALLOCSET_DEFAULT_SIZES);
	check_chain(v);
	ledger_revsort_end(v->revs);
	if (full)
		check_current_rows(v);
	SPI_finish();
	ledger_restore_user(&save);
}

/* A digest in the form docs/verification.md gives. */
void
ledger_parse_digest(Jsonb *jb, ChainDigest *d)
{
	char	   *text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	const char *problem = digest_parse(text, strlen(text), d);

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid ledger digest"),
				 errdetail("%s", problem),
				 errhint("Pass the digest exactly as ledger_digest() returned it: {\"version\": 1, \"block\": N, \"hash\": \"<64 hex digits>\", \"root\": \"<64 hex digits>\"}.")));
}

static Datum
verify_digest(FunctionCallInfo fcinfo, Jsonb *digest)
{
	Verify		v;
	ChainDigest d;

	ledger_parse_digest(digest, &d);
	run(&v, false, &d);
	if (!v.digest_found)
		fail(psprintf("block %lld", (long long) d.block),
			 "The ledger has no block with the digest's number: blocks were removed, or the digest is not from this ledger.");
	return summary(fcinfo, &v);
}

Datum
ledger_verify_digest(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(verify_digest(fcinfo, PG_GETARG_JSONB_P(0)));
}

/*
 * A quoted literal resolves to the text variant, so a digest written as a
 * string literal arrives here; it is taken as the digest it spells.
 */
Datum
ledger_verify(PG_FUNCTION_ARGS)
{
	char	   *level = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Verify		v;

	if (level[0] == '{')
		PG_RETURN_DATUM(verify_digest(fcinfo,
									  DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																		 CStringGetDatum(level)))));
	if (strcmp(level, "chain") != 0 && strcmp(level, "full") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid verification level \"%s\"", level),
				 errhint("Use \"chain\" (hashes only, no key needed), \"full\" (also opens every revision) or a digest.")));
	run(&v, strcmp(level, "full") == 0, NULL);
	PG_RETURN_DATUM(summary(fcinfo, &v));
}
