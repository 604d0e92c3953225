/*-------------------------------------------------------------------------
 *
 * sqlfuncs.c
 *	  SQL-callable functions of the ledger extension.
 *
 * Every function checks its inputs and the caller's rights here, at the
 * SQL boundary; docs/reference.md describes each one.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "catalog/pg_class.h"
#include "storage/itemptr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(ledger_bootstrap);
PG_FUNCTION_INFO_V1(ledger_set_deletion_protection);
PG_FUNCTION_INFO_V1(ledger_document_id);
PG_FUNCTION_INFO_V1(ledger_document_version);
PG_FUNCTION_INFO_V1(ledger_digest);

static void
require_preloaded(void)
{
	if (!ledger_loaded_in_database())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ledger must be loaded via shared_preload_libraries"),
				 errhint("Add ledger to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Open a ledger table named by the caller, or explain why it is not one;
 * with a privilege in "required", the caller must hold it on the table.
 */
Relation
ledger_open_table(Oid relid, LOCKMODE lockmode, AclMode required)
{
	Relation	rel;
	AclResult	acl;

	require_preloaded();
	rel = table_open(relid, lockmode);
	if (!ledger_is_ledger_relation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a ledger table", RelationGetRelationName(rel)),
				 errhint("Ledger tables are created with CREATE TABLE ... USING ledger.")));
	if (required != 0 &&
		(acl = pg_class_aclcheck(relid, GetUserId(), required)) != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, RelationGetRelationName(rel));
	return rel;
}

/* A request the ledger's state does not allow, said plainly. */
void
ledger_not_possible(const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s", msg),
			 errhint("%s", hint)));
}

/* Called once by CREATE EXTENSION: creates the root key. */
Datum
ledger_bootstrap(PG_FUNCTION_ARGS)
{
	require_preloaded();
	ledger_providers_bootstrap();
	ledger_keys_bootstrap();
	ledger_chain_bootstrap();
	PG_RETURN_VOID();
}

Datum
ledger_set_deletion_protection(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bool		on = PG_GETARG_BOOL(1);
	Relation	rel = ledger_open_table(relid, ShareUpdateExclusiveLock, 0);

	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, RelationGetRelationName(rel));
	ledger_set_protection(relid, on);
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

/* The payload header of the row at a TID, for a caller who may read it. */
static void
header_of(FunctionCallInfo fcinfo, LedgerHeader *hdr)
{
	Oid			relid = PG_GETARG_OID(0);
	ItemPointer tid = (ItemPointer) PG_GETARG_POINTER(1);
	Relation	rel = ledger_open_table(relid, AccessShareLock, ACL_SELECT);

	if (!ItemPointerIsValid(tid) ||
		ItemPointerGetBlockNumber(tid) >= RelationGetNumberOfBlocks(rel) ||
		!ledger_header_at(rel, tid, hdr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no row at %s in ledger table \"%s\"",
						DatumGetCString(DirectFunctionCall1(tidout, PointerGetDatum(tid))),
						RelationGetRelationName(rel)),
				 errhint("Pass the ctid of a row you just read from the table.")));
	table_close(rel, AccessShareLock);
}

Datum
ledger_document_id(PG_FUNCTION_ARGS)
{
	LedgerHeader hdr;

	header_of(fcinfo, &hdr);
	PG_RETURN_INT64(hdr.doc_id);
}

Datum
ledger_document_version(PG_FUNCTION_ARGS)
{
	LedgerHeader hdr;

	header_of(fcinfo, &hdr);
	PG_RETURN_INT32(hdr.version);
}

/*
 * A digest names a block and its hash.  It is JSON so that an auditor can
 * keep it anywhere and pass it back to ledger_verify() or ledger-verify.
 */
static Datum
digest_json(const LedgerBlock *b)
{
	StringInfoData out;

	initStringInfo(&out);
	ledger_append_digest(&out, b);
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data));
}

/*
 * Seal at once and return the newest block.  Where nothing may be written
 * (a standby, a read-only transaction) the newest sealed block is the
 * digest.
 */
Datum
ledger_digest(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	LedgerBlock b;
	Datum		values[3];
	bool		nulls[3] = {0};

	require_preloaded();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (RecoveryInProgress() || XactReadOnly)
		ledger_chain_newest(&b);
	else
		(void) ledger_chain_seal(&b, true);
	values[0] = digest_json(&b);
	values[1] = Int64GetDatum(b.number);
	values[2] = TimestampTzGetDatum(b.sealed_at);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
