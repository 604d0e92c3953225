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
 * verifyscan.c reads the journal once, in physical order and in parallel
 * where it is large: each revision is checked there, and becomes a small
 * record that revsort.c regroups by transaction, with a record for each
 * transaction entry just before its revisions.  A cursor then walks the
 * blocks in order, each taking its entries and each entry its records
 * from the sort, so the first failure reported is the first in the
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

PG_FUNCTION_INFO_V1(ledger_verify);
PG_FUNCTION_INFO_V1(ledger_verify_digest);

#define FETCH_ROWS			1000

/* An SPI cursor read one row at a time. */
typedef struct Cursor
{
	Portal		portal;
	SPITupleTable *tt;
	uint64		n;
	uint64		pos;
} Cursor;

typedef struct Verify
{
	bool		full;
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
	LedgerJournalPass journal;	/* every revision's record, and findings */
	uint8		(*leaves)[LEDGER_HASH_LEN];	/* of one entry; kept for the next */
	int64		max_leaves;
	LedgerKeyedHash *run_keys;	/* the first revision of each run of them */
	int64		max_run_keys;
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

static void
report_progress(Verify *v)
{
	if (!ledger_progress_due(&v->reported, v->revisions))
		return;
	ereport(NOTICE,
			(errmsg("ledger_verify: %lld revisions in %lld transactions and %lld blocks checked so far",
					(long long) v->revisions, (long long) v->transactions,
					(long long) v->blocks)));
}

/* A revision taken in the chain's order. */
static void
take_revision(Verify *v, const LedgerRevRecord *rec, uint8 *leaf)
{
	if (rec->flags & LEDGER_REV_FAILED)
	{
		/* records arrive in key order: this is the first failure */
		Assert(ledger_rev_record_cmp(rec, &v->journal.failure) == 0);
		fail(revision_place(&v->journal.failure), v->journal.failure_detail);
	}
	if (rec->flags & LEDGER_REV_REDACTED)
		v->redacted++;
	memcpy(leaf, rec->leaf, LEDGER_HASH_LEN);
	v->revisions++;
}

static void
note_run_key(Verify *v, int64 run, const LedgerRevRecord *rec)
{
	if (run == v->max_run_keys)
	{
		v->max_run_keys = Max(16, v->max_run_keys * 2);
		v->run_keys = v->run_keys == NULL ? palloc(sizeof(LedgerKeyedHash) * v->max_run_keys) :
			repalloc_huge(v->run_keys, sizeof(LedgerKeyedHash) * v->max_run_keys);
	}
	v->run_keys[run].table_id = rec->table_id;
	v->run_keys[run].doc_id = rec->doc_id;
	v->run_keys[run].version = rec->version;
}

/*
 * A large transaction's stored subtrees, which proofs use: each run must
 * start at the revision it names, and their roots must make the entry's
 * root, which its revisions have just made (two sets of roots cannot both
 * make it short of a SHA-256 collision).
 */
static void
check_subtrees(Verify *v, const LedgerTxnEntry *e)
{
	Datum		arg = Int64GetDatum(e->seq);
	Oid			argtype = INT8OID;
	bool		isnull = true;
	Datum		stored = (Datum) 0;
	LedgerKeyedHash *subtrees;
	int64		n = ledger_subtree_count(e->revision_count);
	uint8		root[LEDGER_HASH_LEN];
	char	   *place = psprintf("transaction %lld", (long long) e->seq);

	if (SPI_execute_with_args("SELECT subtrees FROM ledger.transactions WHERE seq = $1",
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ledger_verify: could not read the subtrees of transaction %lld",
			 (long long) e->seq);
	if (SPI_processed == 1)
		stored = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		fail(place, "Its stored subtrees are missing.");
	if (!ledger_subtrees_from_datum(stored, false, e->revision_count, &subtrees))
		fail(place, "Its stored subtrees are not of the length its revisions need.");
	for (int64 i = 0; i < n; i++)
		if (ledger_key_cmp(&subtrees[i], &v->run_keys[i]) != 0)
			fail(place, psprintf("Its stored subtree %lld does not start at the revision that starts that run of its leaves.",
								 (long long) i));
	ledger_subtrees_root(subtrees, n, root);
	if (memcmp(root, e->merkle_root, LEDGER_HASH_LEN) != 0)
		fail(place, "The roots of its stored subtrees do not make the Merkle root of its revisions.");
	pfree(subtrees);
	pfree(place);
	SPI_freetuptable(SPI_tuptable);
}

/* One transaction entry and its revisions; returns its entry hash. */
static void
check_entry(Verify *v, const LedgerTxnEntry *e, uint8 *entry_hash)
{
	const LedgerRevRecord *rec;
	int64		n = 0;
	uint8		root[LEDGER_HASH_LEN];

	while ((rec = ledger_revsort_peek(v->journal.revs)) != NULL && rec->seq == e->seq &&
		   !(rec->flags & LEDGER_REV_ENTRY))
	{
		if (n == v->max_leaves)
		{
			v->max_leaves = Max(64, v->max_leaves * 2);
			v->leaves = v->leaves == NULL ? palloc(sizeof(*v->leaves) * v->max_leaves) :
				repalloc_huge(v->leaves, sizeof(*v->leaves) * v->max_leaves);
		}
		if (e->revision_count >= LEDGER_SUBTREE_MIN && n % LEDGER_SUBTREE_LEAVES == 0)
			note_run_key(v, n / LEDGER_SUBTREE_LEAVES, rec);
		take_revision(v, rec, v->leaves[n++]);
		ledger_revsort_next(v->journal.revs);
		report_progress(v);
	}
	if (n != e->revision_count)
		fail(psprintf("transaction %lld", (long long) e->seq),
			 psprintf("The entry counts %d revisions, the journal holds %lld.",
					  e->revision_count, (long long) n));
	ledger_verify_tree_root(v->journal.workers, (const uint8 (*)[LEDGER_HASH_LEN]) v->leaves,
							n, root);
	if (memcmp(root, e->merkle_root, LEDGER_HASH_LEN) != 0)
		fail(psprintf("transaction %lld", (long long) e->seq),
			 "The Merkle root of its revisions does not match the entry.");
	if (n >= LEDGER_SUBTREE_MIN)
		check_subtrees(v, e);
	ledger_entry_hash(e, entry_hash);
	v->transactions++;
}

/*
 * The next entry if its number is at most max_seq: entries come in the
 * sort of the revisions, each just before its own.
 */
static bool
next_entry(Verify *v, int64 max_seq, LedgerTxnEntry *e)
{
	const LedgerRevRecord *rec = ledger_revsort_peek(v->journal.revs);

	if (rec == NULL || rec->seq > max_seq)
		return false;
	if (!(rec->flags & LEDGER_REV_ENTRY))
		elog(ERROR, "ledger_verify: revision records of transaction %lld come without its entry",
			 (long long) rec->seq);
	ledger_rev_record_entry(rec, e);
	ledger_revsort_next(v->journal.revs);
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
	pfree(place);
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
	ledger_read_journal(v->full, &v->journal);
	if (v->journal.orphan_found)
		fail(revision_place(&v->journal.orphan), "No transaction entry covers this revision.");
	ledger_revsort_done(v->journal.revs);

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
	check_chain(v);
	ledger_verify_workers_end(v->journal.workers);
	ledger_revsort_end(v->journal.revs);
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
