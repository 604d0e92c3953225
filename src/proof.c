/*-------------------------------------------------------------------------
 *
 * proof.c
 *	  Inclusion and consistency proofs: building them from the stored
 *	  chain, and reading them back from JSON to check them.
 *
 * A proof is self-contained JSON (docs/verification.md, "Proofs"): the
 * revision's fields, the Merkle paths up through its transaction and its
 * block, and the blocks from there to a digest.  Checking uses nothing
 * but the proof and the digest (layout.c), so an auditor can do it
 * anywhere; ledger_verify_proof() is the same check inside the server.
 * Every proof this file builds is checked before it is returned.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"
#include "proofjson.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(ledger_proof);
PG_FUNCTION_INFO_V1(ledger_consistency_proof);
PG_FUNCTION_INFO_V1(ledger_verify_proof);

/* ------------------------------------------------------------------------
 * Building
 * ------------------------------------------------------------------------
 */

static void
append_hex(StringInfo out, const uint8 *hash)
{
	char		hex[LEDGER_HASH_LEN * 2 + 1];

	hex[hex_encode((const char *) hash, LEDGER_HASH_LEN, hex)] = '\0';
	appendStringInfo(out, "\"%s\"", hex);
}

static void
append_path(StringInfo out, const ProofStep *path, int len)
{
	appendStringInfoChar(out, '[');
	for (int i = 0; i < len; i++)
	{
		appendStringInfo(out, "%s{\"side\": \"%s\", \"hash\": ", i ? ", " : "",
						 path[i].left ? "left" : "right");
		append_hex(out, path[i].hash);
		appendStringInfoChar(out, '}');
	}
	appendStringInfoChar(out, ']');
}

static void
append_digest(StringInfo out, const char *key, const ChainDigest *d)
{
	if (key != NULL)
		appendStringInfo(out, "\"%s\": ", key);
	appendStringInfo(out, "{\"version\": 1, \"block\": %lld, \"hash\": ",
					 (long long) d->block);
	append_hex(out, d->hash);
	appendStringInfoString(out, ", \"root\": ");
	append_hex(out, d->root);
	appendStringInfoChar(out, '}');
}

/* A block's digest as JSON, the form docs/verification.md gives. */
void
ledger_append_digest(StringInfo out, const LedgerBlock *b)
{
	ChainDigest d;

	d.block = b->number;
	memcpy(d.hash, b->hash, LEDGER_HASH_LEN);
	memcpy(d.root, b->tree_root, LEDGER_HASH_LEN);
	append_digest(out, NULL, &d);
}

static Datum
jsonb_of(StringInfo out)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(out->data));
}

/* Run a query of the extension's own; the caller is connected to SPI. */
static SPITupleTable *
query(const char *sql, int nargs, Oid *types, Datum *args)
{
	if (SPI_execute_with_args(sql, nargs, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "ledger proof query failed: %s", sql);
	return SPI_tuptable;
}

static void
hash_at(SPITupleTable *tt, uint64 row, int col, uint8 *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tt->vals[row], tt->tupdesc, col, &isnull);

	if (!ledger_hash_from_datum(d, isnull, out))
		ledger_damaged_stored_hash();
}

static int64
int_at(SPITupleTable *tt, uint64 row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tt->vals[row], tt->tupdesc, col, &isnull);

	if (isnull)
		return 0;
	return SPI_gettypeid(tt->tupdesc, col) == INT4OID ? DatumGetInt32(d) : DatumGetInt64(d);
}

/*
 * The digest's block must be stored with the digest's hash and root: a
 * proof can only lead to a digest of this ledger's own history.
 */
static void
require_digest_block(const ChainDigest *d)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(d->block)};
	SPITupleTable *tt = query("SELECT block_hash, tree_root FROM ledger.blocks WHERE block_number = $1",
							  1, types, args);
	uint8		hash[LEDGER_HASH_LEN];
	uint8		root[LEDGER_HASH_LEN];

	if (SPI_processed != 1)
		ledger_not_possible("the digest's block is not in this ledger",
					 "Take the digest with ledger_digest() in this database.");
	hash_at(tt, 0, 1, hash);
	hash_at(tt, 0, 2, root);
	if (memcmp(hash, d->hash, LEDGER_HASH_LEN) != 0 ||
		memcmp(root, d->root, LEDGER_HASH_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the digest does not match this ledger"),
				 errdetail("Block %lld has another hash: the history up to the digest has changed, or the digest is from another ledger.",
						   (long long) d->block),
				 errhint("Run ledger_verify() with the digest.")));
}

/* The path of a block up the tree of blocks of the digest. */
static int
tree_path(const ChainDigest *d, int64 block, ProofStep *path)
{
	LedgerTree	t;
	int			len;

	ledger_tree_open(&t, GetActiveSnapshot());
	len = merkle_path(ledger_tree_subtree, &t, (uint64) d->block + 1, (uint64) block, path);
	ledger_tree_close(&t);
	if (len < 0)
		elog(ERROR, "ledger proof: no path for block %lld in the tree of %lld blocks",
			 (long long) block, (long long) d->block + 1);
	return len;
}

/*
 * The Merkle path of the row whose (col) value equals "key" among the
 * rows of tt, hashing column hashcol of each (a leaf's data).
 */
static int
merkle_path_of(SPITupleTable *tt, uint64 nrows, int hashcol, uint64 index,
		ProofStep *path, bool entries)
{
	uint8		(*leaves)[LEDGER_HASH_LEN] = palloc_extended(sizeof(*leaves) * Max(nrows, 1),
															 MCXT_ALLOC_HUGE);
	int			len;

	for (uint64 i = 0; i < nrows; i++)
	{
		uint8		data[LEDGER_HASH_LEN];

		if (entries)
		{
			LedgerTxnEntry e;

			ledger_deform_entry(tt->tupdesc, tt->vals[i], &e);
			ledger_entry_hash(&e, data);
		}
		else
			hash_at(tt, i, hashcol, data);
		if (!merkle_leaf(data, LEDGER_HASH_LEN, leaves[i]))
			elog(ERROR, "SHA-256 failed");
	}
	len = merkle_path(merkle_array_subtree, leaves, nrows, index, path);
	if (len < 0)
		elog(ERROR, "ledger proof: no Merkle path for leaf %llu of %llu",
			 (unsigned long long) index, (unsigned long long) nrows);
	pfree(leaves);
	return len;
}

/*
 * A large transaction's tree as its stored runs' roots, and the leaves of
 * the one run that holds the revision: every subtree a path needs lies
 * within that run or is made of whole runs.
 */
typedef struct RunTree
{
	const LedgerKeyedHash *subtrees;
	uint64		n;				/* leaves of the tree */
	uint64		first;			/* the run at hand, from this leaf */
	uint8		(*leaves)[LEDGER_HASH_LEN];
	uint64		nleaves;
} RunTree;

static int
run_tree_subtree(void *arg, uint64_t start, uint64_t end, uint8_t *out)
{
	RunTree    *t = arg;
	uint64		a = start / LEDGER_SUBTREE_LEAVES;
	uint64		b = (end + LEDGER_SUBTREE_LEAVES - 1) / LEDGER_SUBTREE_LEAVES;

	if (start >= t->first && end <= t->first + t->nleaves)
		return merkle_array_subtree(t->leaves, start - t->first, end - t->first, out);
	if (start % LEDGER_SUBTREE_LEAVES != 0 ||
		(end % LEDGER_SUBTREE_LEAVES != 0 && end != t->n) || end > t->n)
		return 0;
	ledger_subtrees_root(t->subtrees + a, (int64) (b - a), out);
	return 1;
}

static void pg_attribute_noreturn()
subtrees_damaged(int64 seq)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("ledger chain is damaged: the stored subtrees of transaction %lld do not match its revisions",
					(long long) seq),
			 errhint("Run ledger_verify() to locate the damage.")));
}

/* The revision's path up its transaction's tree, through the stored runs. */
static int
path_through_subtrees(RevisionProof *p, FullTransactionId xid, const LedgerKeyedHash *subtrees)
{
	int64		nruns = ledger_subtree_count(p->revision_count);
	int64		lo = 0;
	int64		hi = nruns;
	LedgerKeyedHash want = {p->table_id, p->doc_id, p->version};
	LedgerKeyedHash *run;
	uint8		run_root[LEDGER_HASH_LEN];
	RunTree		t;
	int64		index = -1;
	int			len;

	/* the last run whose first revision is not after this one */
	while (hi - lo > 1)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (ledger_key_cmp(&want, &subtrees[mid]) >= 0)
			lo = mid;
		else
			hi = mid;
	}
	t.subtrees = subtrees;
	t.n = (uint64) p->revision_count;
	t.first = (uint64) lo * LEDGER_SUBTREE_LEAVES;
	t.nleaves = Min(LEDGER_SUBTREE_LEAVES, t.n - t.first);
	run = palloc(sizeof(LedgerKeyedHash) * t.nleaves);
	if (ledger_journal_revisions_from(xid, &subtrees[lo], (int64) t.nleaves, run) != (int64) t.nleaves ||
		ledger_key_cmp(&run[0], &subtrees[lo]) != 0)
		subtrees_damaged(p->seq);
	t.leaves = palloc(sizeof(*t.leaves) * t.nleaves);
	for (uint64 i = 0; i < t.nleaves; i++)
	{
		if (!merkle_leaf(run[i].hash, LEDGER_HASH_LEN, t.leaves[i]))
			elog(ERROR, "SHA-256 failed");
		if (ledger_key_cmp(&want, &run[i]) == 0)
			index = (int64) i;
	}
	if (!merkle_array_subtree(t.leaves, 0, t.nleaves, run_root) || index < 0 ||
		memcmp(run_root, subtrees[lo].hash, LEDGER_HASH_LEN) != 0)
		subtrees_damaged(p->seq);
	len = merkle_path(run_tree_subtree, &t, t.n, t.first + (uint64) index, p->tx_path);
	if (len < 0)
		subtrees_damaged(p->seq);
	pfree(t.leaves);
	pfree(run);
	return len;
}

static void
append_revision_proof(StringInfo out, const RevisionProof *p, const ChainDigest *d)
{
	appendStringInfo(out, "{\"version\": 1, \"kind\": \"revision\", "
					 "\"revision\": {\"table_id\": %lld, \"doc_id\": %lld, \"version\": %d, "
					 "\"operation\": \"%c\", \"data_hash\": ",
					 (long long) p->table_id, (long long) p->doc_id, p->version, p->op);
	if (p->op == 'D')
		appendStringInfoString(out, "null");
	else
		append_hex(out, p->data_hash);
	appendStringInfo(out, "}, \"transaction\": {\"seq\": %lld, \"committed_at\": %lld, "
					 "\"revision_count\": %d, \"path\": ",
					 (long long) p->seq, (long long) p->committed_at_us, p->revision_count);
	append_path(out, p->tx_path, p->ntx);
	appendStringInfo(out, "}, \"block\": {\"number\": %lld, \"previous_hash\": ",
					 (long long) p->block_number);
	append_hex(out, p->previous_hash);
	appendStringInfoString(out, ", \"path\": ");
	append_path(out, p->block_path, p->nblock);
	appendStringInfo(out, "}, \"tree\": {\"size\": %lld, \"path\": ",
					 (long long) p->tree_size);
	append_path(out, p->tree_path, p->ntree);
	appendStringInfoString(out, "}, ");
	append_digest(out, "digest", d);
	appendStringInfoChar(out, '}');
}

/* Fill p from the stored chain; the caller is connected to SPI. */
static void
build_revision_proof(RevisionProof *p, int64 table_id, int64 doc_id, int32 version,
					 const ChainDigest *d)
{
	Oid			types[3] = {INT8OID, INT8OID, INT4OID};
	Datum		args[3] = {Int64GetDatum(table_id), Int64GetDatum(doc_id), Int32GetDatum(version)};
	SPITupleTable *tt;
	uint64		n;
	uint64		index = 0;
	int64		first_seq;
	int64		last_seq;
	bool		isnull;
	Datum		xid;
	Datum		stored;
	LedgerKeyedHash *subtrees;

	tt = query("SELECT j.op, j.data_hash, t.seq, t.committed_at, t.revision_count, j.xid, t.subtrees "
			   "FROM ledger.journal j JOIN ledger.transactions t ON t.xid = j.xid "
			   "WHERE j.table_id = $1 AND j.doc_id = $2 AND j.version = $3",
			   3, types, args);
	if (SPI_processed != 1)
		ledger_not_possible("the revision does not exist or has not committed",
					 "Name a committed revision by its document id and version, as ledger_history() shows them.");
	memset(p, 0, sizeof(*p));
	p->table_id = table_id;
	p->doc_id = doc_id;
	p->version = version;
	p->op = DatumGetChar(SPI_getbinval(tt->vals[0], tt->tupdesc, 1, &isnull));
	if (p->op != LEDGER_OP_DELETE)
		hash_at(tt, 0, 2, p->data_hash);
	p->seq = int_at(tt, 0, 3);
	p->committed_at_us = ledger_unix_micros(DatumGetTimestampTz(SPI_getbinval(tt->vals[0], tt->tupdesc, 4, &isnull)));
	p->revision_count = (int32) int_at(tt, 0, 5);
	xid = SPI_getbinval(tt->vals[0], tt->tupdesc, 6, &isnull);
	stored = SPI_getbinval(tt->vals[0], tt->tupdesc, 7, &isnull);
	if (p->revision_count < LEDGER_SUBTREE_MIN)
		isnull = true;			/* never stored for so few */
	if (!ledger_subtrees_from_datum(stored, isnull, p->revision_count, &subtrees))
		subtrees_damaged(p->seq);

	/* The transaction's tree: one run of it, or all of it. */
	if (subtrees != NULL)
		p->ntx = path_through_subtrees(p, DatumGetFullTransactionId(xid), subtrees);
	else
	{
		types[0] = XID8OID;
		args[0] = xid;
		tt = query("SELECT table_id, doc_id, version, revision_hash FROM ledger.journal "
				   "WHERE xid = $1 ORDER BY table_id, doc_id, version", 1, types, args);
		n = SPI_processed;
		while (index < n && !(int_at(tt, index, 1) == table_id && int_at(tt, index, 2) == doc_id &&
							  int_at(tt, index, 3) == version))
			index++;
		p->ntx = merkle_path_of(tt, n, 4, index, p->tx_path, false);
	}

	/* The block that sealed it, and its tree of entries. */
	types[0] = INT8OID;
	args[0] = Int64GetDatum(p->seq);
	tt = query("SELECT block_number, first_seq, last_seq, previous_hash FROM ledger.blocks "
			   "WHERE last_seq >= $1 AND block_number > 0 ORDER BY last_seq LIMIT 1",
			   1, types, args);
	if (SPI_processed != 1 || int_at(tt, 0, 1) > d->block || int_at(tt, 0, 2) > p->seq)
		ledger_not_possible("the revision is not covered by the digest",
					 "Take a newer digest with ledger_digest(), which seals every committed transaction.");
	p->block_number = int_at(tt, 0, 1);
	first_seq = int_at(tt, 0, 2);
	last_seq = int_at(tt, 0, 3);
	hash_at(tt, 0, 4, p->previous_hash);
	types[1] = INT8OID;
	args[0] = Int64GetDatum(first_seq);
	args[1] = Int64GetDatum(last_seq);
	tt = query("SELECT * FROM ledger.transactions WHERE seq BETWEEN $1 AND $2 ORDER BY seq",
			   2, types, args);
	n = SPI_processed;
	for (index = 0; index < n && int_at(tt, index, 1) != p->seq; index++)
		;
	p->nblock = merkle_path_of(tt, n, 0, index, p->block_path, true);

	p->tree_size = d->block + 1;
	p->ntree = tree_path(d, p->block_number, p->tree_path);
}

/* A proof that fails its own check means the stored chain is damaged. */
static void
self_check(const char *problem)
{
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger chain is damaged: the proof built from it does not check"),
				 errdetail("%s", problem),
				 errhint("Run ledger_verify() to locate the damage.")));
}

static ChainDigest
digest_arg(Jsonb *jb)
{
	ChainDigest d;

	ledger_parse_digest(jb, &d);
	return d;
}

Datum
ledger_proof(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int64		doc_id = PG_GETARG_INT64(1);
	int32		version = PG_GETARG_INT32(2);
	ChainDigest d = digest_arg(PG_GETARG_JSONB_P(3));
	Relation	rel = ledger_open_table(relid, AccessShareLock, ACL_SELECT);
	LedgerUserSave save;
	RevisionProof p;
	StringInfoData out;
	int64		table_id;

	table_id = ledger_table(rel)->table_id;
	table_close(rel, AccessShareLock);
	ledger_require_chain_tables();	/* its queries read every column */

	initStringInfo(&out);		/* outlives SPI's memory */
	ledger_become_owner(&save);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ledger_proof: SPI_connect failed");
	require_digest_block(&d);
	build_revision_proof(&p, table_id, doc_id, version, &d);
	self_check(proof_check_revision(&p, &d));
	append_revision_proof(&out, &p, &d);
	SPI_finish();
	ledger_restore_user(&save);
	PG_RETURN_DATUM(jsonb_of(&out));
}

Datum
ledger_consistency_proof(PG_FUNCTION_ARGS)
{
	ConsistencyProof c;
	ChainDigest new = digest_arg(PG_GETARG_JSONB_P(1));
	LedgerUserSave save;
	LedgerTree	t;
	StringInfoData out;

	c.old = digest_arg(PG_GETARG_JSONB_P(0));
	if (c.old.block > new.block)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the old digest is newer than the new one"),
				 errhint("Pass the earlier digest first.")));
	initStringInfo(&out);		/* outlives SPI's memory */
	ledger_become_owner(&save);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ledger_consistency_proof: SPI_connect failed");
	require_digest_block(&c.old);
	require_digest_block(&new);
	ledger_tree_open(&t, GetActiveSnapshot());
	c.npath = merkle_consistency(ledger_tree_subtree, &t, (uint64) c.old.block + 1,
								 (uint64) new.block + 1, c.path);
	ledger_tree_close(&t);
	if (c.npath < 0)
		elog(ERROR, "ledger proof: no consistency path from block %lld to %lld",
			 (long long) c.old.block, (long long) new.block);
	self_check(proof_check_consistency(&c, &new));
	appendStringInfoString(&out, "{\"version\": 1, \"kind\": \"consistency\", ");
	append_digest(&out, "old", &c.old);
	appendStringInfoString(&out, ", ");
	append_digest(&out, "new", &new);
	appendStringInfoString(&out, ", \"path\": [");
	for (int i = 0; i < c.npath; i++)
	{
		appendStringInfoString(&out, i ? ", " : "");
		append_hex(&out, c.path[i]);
	}
	appendStringInfoString(&out, "]}");
	SPI_finish();
	ledger_restore_user(&save);
	PG_RETURN_DATUM(jsonb_of(&out));
}

/* ------------------------------------------------------------------------
 * Checking
 * ------------------------------------------------------------------------
 */

/*
 * True if the proof leads to the digest.  A proof that is not even well
 * formed is an error; one that is well formed but wrong is false, with
 * the reason as a NOTICE.  The proof is read by proofjson.c, the same
 * code the offline tool and the fuzz harness run.
 */
Datum
ledger_verify_proof(PG_FUNCTION_ARGS)
{
	Jsonb	   *proof;
	ChainDigest d;
	ChainDigest kept = {0};
	ParsedProof p;
	char	   *text;
	const char *problem;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	proof = PG_GETARG_JSONB_P(0);
	d = digest_arg(PG_GETARG_JSONB_P(1));
	if (!PG_ARGISNULL(2))
		kept = digest_arg(PG_GETARG_JSONB_P(2));	/* before anything is malloc'ed */
	text = JsonbToCString(NULL, &proof->root, VARSIZE(proof));
	problem = proof_parse(text, strlen(text), &p);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid ledger proof"),
				 errdetail("%s", problem),
				 errhint("Pass the proof exactly as ledger_proof() or ledger_consistency_proof() returned it.")));
	problem = proof_check(&p, &d);
	if (problem == NULL && p.kind == PROOF_CONSISTENCY && !PG_ARGISNULL(2) &&
		(kept.block != p.cons.old.block ||
		 memcmp(kept.hash, p.cons.old.hash, LEDGER_HASH_LEN) != 0 ||
		 memcmp(kept.root, p.cons.old.root, LEDGER_HASH_LEN) != 0))
		problem = "The proof starts from another digest than the one given.";
	if (problem != NULL)
		ereport(NOTICE,
				(errmsg("the ledger proof does not check"),
				 errdetail("%s", problem)));
	PG_RETURN_BOOL(problem == NULL);
}
