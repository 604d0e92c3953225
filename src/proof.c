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
#include "layout.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

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
append_chain(StringInfo out, const ProofLink *chain, int64 n)
{
	appendStringInfoString(out, "\"chain\": [");
	for (int64 i = 0; i < n; i++)
	{
		appendStringInfo(out, "%s{\"number\": %lld, \"merkle_root\": ", i ? ", " : "",
						 (long long) chain[i].number);
		append_hex(out, chain[i].merkle_root);
		appendStringInfoChar(out, '}');
	}
	appendStringInfoChar(out, ']');
}

static void
append_digest(StringInfo out, const char *key, const ChainDigest *d)
{
	appendStringInfo(out, "\"%s\": {\"version\": 1, \"block\": %lld, \"hash\": ",
					 key, (long long) d->block);
	append_hex(out, d->hash);
	appendStringInfoChar(out, '}');
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
	bytea	   *b = isnull ? NULL : DatumGetByteaPP(d);

	if (b == NULL || VARSIZE_ANY_EXHDR(b) != LEDGER_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ledger chain is damaged: a stored hash is missing or not 32 bytes long"),
				 errhint("Run ledger_verify() to locate the damage.")));
	memcpy(out, VARDATA_ANY(b), LEDGER_HASH_LEN);
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

static pg_attribute_noreturn() void
not_provable(const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s", msg),
			 errhint("%s", hint)));
}

/*
 * The digest's block must be stored with the digest's hash: a proof can
 * only lead to a digest of this ledger's own history.
 */
static void
require_digest_block(const ChainDigest *d)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(d->block)};
	SPITupleTable *tt = query("SELECT block_hash FROM ledger.blocks WHERE block_number = $1",
							  1, types, args);
	uint8		stored[LEDGER_HASH_LEN];

	if (SPI_processed != 1)
		not_provable("the digest's block is not in this ledger",
					 "Take the digest with ledger_digest() in this database.");
	hash_at(tt, 0, 1, stored);
	if (memcmp(stored, d->hash, LEDGER_HASH_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the digest does not match this ledger"),
				 errdetail("Block %lld has another hash: the history up to the digest has changed, or the digest is from another ledger.",
						   (long long) d->block),
				 errhint("Run ledger_verify() with the digest.")));
}

/* The blocks after "from" up to the digest's block, in order. */
static ProofLink *
chain_links(int64 from, int64 to, int64 *n)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(from), Int64GetDatum(to)};
	SPITupleTable *tt = query("SELECT block_number, merkle_root FROM ledger.blocks "
							  "WHERE block_number > $1 AND block_number <= $2 "
							  "ORDER BY block_number", 2, types, args);
	ProofLink  *links = palloc_extended(sizeof(ProofLink) * Max(SPI_processed, 1),
										MCXT_ALLOC_HUGE);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		links[i].number = int_at(tt, i, 1);
		hash_at(tt, i, 2, links[i].merkle_root);
	}
	*n = SPI_processed;
	return links;
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
	len = merkle_path((const uint8_t (*)[MERKLE_HASH_LEN]) leaves, nrows, index, path);
	if (len < 0)
		elog(ERROR, "ledger proof: no Merkle path for leaf %llu of %llu",
			 (unsigned long long) index, (unsigned long long) nrows);
	pfree(leaves);
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
	appendStringInfoString(out, "}, ");
	append_chain(out, p->chain, p->nchain);
	appendStringInfoString(out, ", ");
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

	tt = query("SELECT j.op, j.data_hash, t.seq, t.committed_at, t.revision_count, j.xid "
			   "FROM ledger.journal j JOIN ledger.transactions t ON t.xid = j.xid "
			   "WHERE j.table_id = $1 AND j.doc_id = $2 AND j.version = $3",
			   3, types, args);
	if (SPI_processed != 1)
		not_provable("the revision does not exist or has not committed",
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

	/* The transaction's tree. */
	types[0] = XID8OID;
	args[0] = xid;
	tt = query("SELECT table_id, doc_id, version, revision_hash FROM ledger.journal "
			   "WHERE xid = $1 ORDER BY table_id, doc_id, version", 1, types, args);
	n = SPI_processed;
	while (index < n && !(int_at(tt, index, 1) == table_id && int_at(tt, index, 2) == doc_id &&
						  int_at(tt, index, 3) == version))
		index++;
	p->ntx = merkle_path_of(tt, n, 4, index, p->tx_path, false);

	/* The block that sealed it, and its tree of entries. */
	types[0] = INT8OID;
	args[0] = Int64GetDatum(p->seq);
	tt = query("SELECT block_number, first_seq, last_seq, previous_hash FROM ledger.blocks "
			   "WHERE last_seq >= $1 AND block_number > 0 ORDER BY last_seq LIMIT 1",
			   1, types, args);
	if (SPI_processed != 1 || int_at(tt, 0, 1) > d->block || int_at(tt, 0, 2) > p->seq)
		not_provable("the revision is not covered by the digest",
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

	p->chain = chain_links(p->block_number, d->block, &p->nchain);
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

	ledger_parse_digest(jb, &d.block, d.hash);
	return d;
}

Datum
ledger_proof(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int64		doc_id = PG_GETARG_INT64(1);
	int32		version = PG_GETARG_INT32(2);
	ChainDigest d = digest_arg(PG_GETARG_JSONB_P(3));
	Relation	rel = table_open(relid, AccessShareLock);
	AclResult	acl;
	LedgerUserSave save;
	RevisionProof p;
	StringInfoData out;
	int64		table_id;

	if (!ledger_is_ledger_relation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a ledger table", RelationGetRelationName(rel)),
				 errhint("Ledger tables are created with CREATE TABLE ... USING ledger.")));
	acl = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, RelationGetRelationName(rel));
	table_id = ledger_table(rel)->table_id;
	table_close(rel, AccessShareLock);

	ledger_become_owner(&save);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ledger_proof: SPI_connect failed");
	require_digest_block(&d);
	build_revision_proof(&p, table_id, doc_id, version, &d);
	self_check(proof_check_revision(&p, &d));
	initStringInfo(&out);
	append_revision_proof(&out, &p, &d);
	SPI_finish();
	ledger_restore_user(&save);
	PG_RETURN_DATUM(jsonb_of(&out));
}

Datum
ledger_consistency_proof(PG_FUNCTION_ARGS)
{
	ChainDigest old = digest_arg(PG_GETARG_JSONB_P(0));
	ChainDigest new = digest_arg(PG_GETARG_JSONB_P(1));
	LedgerUserSave save;
	ProofLink  *chain;
	int64		n;
	StringInfoData out;

	if (old.block > new.block)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the old digest is newer than the new one"),
				 errhint("Pass the earlier digest first.")));
	ledger_become_owner(&save);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ledger_consistency_proof: SPI_connect failed");
	require_digest_block(&old);
	require_digest_block(&new);
	chain = chain_links(old.block, new.block, &n);
	self_check(proof_check_consistency(&old, chain, n, &new));
	initStringInfo(&out);
	appendStringInfoString(&out, "{\"version\": 1, \"kind\": \"consistency\", ");
	append_digest(&out, "old", &old);
	appendStringInfoString(&out, ", ");
	append_digest(&out, "new", &new);
	appendStringInfoString(&out, ", ");
	append_chain(&out, chain, n);
	appendStringInfoChar(&out, '}');
	SPI_finish();
	ledger_restore_user(&save);
	PG_RETURN_DATUM(jsonb_of(&out));
}

/* ------------------------------------------------------------------------
 * Reading a proof back
 * ------------------------------------------------------------------------
 */

static pg_attribute_noreturn() void
bad_proof(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid ledger proof"),
			 errdetail("%s", detail),
			 errhint("Pass the proof exactly as ledger_proof() or ledger_consistency_proof() returned it.")));
}

static JsonbValue *
field(JsonbContainer *obj, const char *key, enum jbvType type)
{
	JsonbValue *v = getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);

	if (v == NULL || v->type != type)
		bad_proof(psprintf("The key \"%s\" is missing or of the wrong type.", key));
	return v;
}

static JsonbContainer *
object(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = field(obj, key, jbvBinary);

	if (!JsonContainerIsObject(v->val.binary.data))
		bad_proof(psprintf("The key \"%s\" must hold an object.", key));
	return v->val.binary.data;
}

static JsonbContainer *
array(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		bad_proof(psprintf("The key \"%s\" must hold an array.", key));
	return v->val.binary.data;
}

static int64
integer(JsonbContainer *obj, const char *key, int64 min, int64 max)
{
	JsonbValue *v = field(obj, key, jbvNumeric);
	char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
														   NumericGetDatum(v->val.numeric)));
	char	   *end;
	long long	n;

	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		bad_proof(psprintf("The key \"%s\" must be an integer from %lld to %lld.",
						   key, (long long) min, (long long) max));
	return n;
}

static void
hex_value(JsonbValue *v, const char *key, uint8 *out)
{
	if (v == NULL || v->type != jbvString || v->val.string.len != 2 * LEDGER_HASH_LEN ||
		strspn(pnstrdup(v->val.string.val, v->val.string.len), "0123456789abcdef") !=
		2 * LEDGER_HASH_LEN)
		bad_proof(psprintf("The key \"%s\" must be 64 lower-case hexadecimal digits.", key));
	hex_decode(v->val.string.val, v->val.string.len, (char *) out);
}

static void
read_hash(JsonbContainer *obj, const char *key, uint8 *out)
{
	hex_value(getKeyJsonValueFromContainer(obj, key, strlen(key), NULL), key, out);
}

static int
read_path(JsonbContainer *obj, ProofStep *steps)
{
	JsonbContainer *arr = array(obj, "path");
	uint32		n = JsonContainerSize(arr);

	if (n > PROOF_MAX_PATH)
		bad_proof(psprintf("A Merkle path has more than %d steps.", PROOF_MAX_PATH));
	for (uint32 i = 0; i < n; i++)
	{
		JsonbValue *step = getIthJsonbValueFromContainer(arr, i);
		JsonbValue *side;

		if (step == NULL || step->type != jbvBinary || !JsonContainerIsObject(step->val.binary.data))
			bad_proof("A step of a Merkle path must be an object.");
		side = field(step->val.binary.data, "side", jbvString);
		if (side->val.string.len == 4 && memcmp(side->val.string.val, "left", 4) == 0)
			steps[i].left = 1;
		else if (side->val.string.len == 5 && memcmp(side->val.string.val, "right", 5) == 0)
			steps[i].left = 0;
		else
			bad_proof("The side of a Merkle path step must be \"left\" or \"right\".");
		read_hash(step->val.binary.data, "hash", steps[i].hash);
	}
	return (int) n;
}

static ProofLink *
read_chain(JsonbContainer *obj, int64 *n)
{
	JsonbContainer *arr = array(obj, "chain");
	uint32		count = JsonContainerSize(arr);
	ProofLink  *links = palloc_extended(sizeof(ProofLink) * Max(count, 1), MCXT_ALLOC_HUGE);

	for (uint32 i = 0; i < count; i++)
	{
		JsonbValue *link = getIthJsonbValueFromContainer(arr, i);

		if (link == NULL || link->type != jbvBinary || !JsonContainerIsObject(link->val.binary.data))
			bad_proof("A link of the chain must be an object.");
		links[i].number = integer(link->val.binary.data, "number", 1, PG_INT64_MAX);
		read_hash(link->val.binary.data, "merkle_root", links[i].merkle_root);
	}
	*n = count;
	return links;
}

static void
parse_revision_proof(JsonbContainer *root, RevisionProof *p)
{
	JsonbContainer *rev = object(root, "revision");
	JsonbContainer *tx = object(root, "transaction");
	JsonbContainer *block = object(root, "block");
	JsonbValue *op = field(rev, "operation", jbvString);
	JsonbValue *data_hash = getKeyJsonValueFromContainer(rev, "data_hash", 9, NULL);

	memset(p, 0, sizeof(*p));
	p->table_id = integer(rev, "table_id", 1, PG_INT64_MAX);
	p->doc_id = integer(rev, "doc_id", 0, PG_INT64_MAX);
	p->version = (int32) integer(rev, "version", 0, PG_INT32_MAX);
	if (op->val.string.len != 1 || strchr("IUD", op->val.string.val[0]) == NULL)
		bad_proof("The operation must be \"I\", \"U\" or \"D\".");
	p->op = op->val.string.val[0];
	if (p->op == 'D')
	{
		if (data_hash == NULL || data_hash->type != jbvNull)
			bad_proof("A deletion has a null data hash.");
	}
	else
		hex_value(data_hash, "data_hash", p->data_hash);
	p->seq = integer(tx, "seq", 1, PG_INT64_MAX);
	p->committed_at_us = integer(tx, "committed_at", PG_INT64_MIN, PG_INT64_MAX);
	p->revision_count = (int32) integer(tx, "revision_count", 1, PG_INT32_MAX);
	p->ntx = read_path(tx, p->tx_path);
	p->block_number = integer(block, "number", 1, PG_INT64_MAX);
	read_hash(block, "previous_hash", p->previous_hash);
	p->nblock = read_path(block, p->block_path);
	p->chain = read_chain(root, &p->nchain);
}

static ChainDigest
digest_in(JsonbContainer *root, const char *key)
{
	JsonbValue *v = field(root, key, jbvBinary);
	Jsonb	   *jb = JsonbValueToJsonb(v);

	return digest_arg(jb);
}

static bool
same_digest(const ChainDigest *a, const ChainDigest *b)
{
	return a->block == b->block && memcmp(a->hash, b->hash, LEDGER_HASH_LEN) == 0;
}

/*
 * True if the proof leads to the digest.  A proof that is not even well
 * formed is an error; one that is well formed but wrong is false, with
 * the reason as a NOTICE.
 */
Datum
ledger_verify_proof(PG_FUNCTION_ARGS)
{
	Jsonb	   *proof;
	ChainDigest d;
	JsonbContainer *root;
	JsonbValue *kind;
	const char *problem;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	proof = PG_GETARG_JSONB_P(0);
	d = digest_arg(PG_GETARG_JSONB_P(1));
	root = &proof->root;
	if (!JB_ROOT_IS_OBJECT(proof))
		bad_proof("A proof is a JSON object.");
	if (integer(root, "version", 1, 1) != 1)
		bad_proof("Only version 1 proofs are known.");
	kind = field(root, "kind", jbvString);
	if (kind->val.string.len == 8 && memcmp(kind->val.string.val, "revision", 8) == 0)
	{
		RevisionProof p;

		parse_revision_proof(root, &p);
		problem = proof_check_revision(&p, &d);
	}
	else if (kind->val.string.len == 11 && memcmp(kind->val.string.val, "consistency", 11) == 0)
	{
		ChainDigest old = digest_in(root, "old");
		ProofLink  *links;
		int64		n;

		links = read_chain(root, &n);
		problem = proof_check_consistency(&old, links, n, &d);
		if (problem == NULL && !PG_ARGISNULL(2))
		{
			ChainDigest kept = digest_arg(PG_GETARG_JSONB_P(2));

			if (!same_digest(&kept, &old))
				problem = "The proof starts from another digest than the one given.";
		}
	}
	else
		bad_proof("The kind must be \"revision\" or \"consistency\".");
	if (problem != NULL)
		ereport(NOTICE,
				(errmsg("the ledger proof does not check"),
				 errdetail("%s", problem)));
	PG_RETURN_BOOL(problem == NULL);
}
