/*-------------------------------------------------------------------------
 *
 * history.c
 *	  ledger_history(): every revision of a ledger table, oldest first,
 *	  opened as rows of the table.
 *
 * History is read from the journal alone, joined to the transaction
 * entries (commit order and time) and the blocks that sealed them.
 * Reading it needs SELECT on the table, like reading the table.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "parser/parse_type.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/varlena.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(ledger_history);
PG_FUNCTION_INFO_V1(ledger_history_json);

/* Output columns, as declared in sql/ledger--0.1.sql. */
enum
{
	Out_doc_id,
	Out_version,
	Out_operation,
	Out_seq,
	Out_committed_at,
	Out_block_number,
	Out_revision_hash,
	Out_data,
	Natts_out
};

#define HISTORY_SQL \
	"SELECT j.doc_id, j.version, j.op, t.seq, t.committed_at, " \
	"       (SELECT b.block_number FROM ledger.blocks b " \
	"         WHERE b.last_seq >= t.seq AND b.block_number > 0 " \
	"         ORDER BY b.last_seq LIMIT 1), " \
	"       j.revision_hash, j.payload " \
	"  FROM ledger.journal j " \
	"  LEFT JOIN ledger.transactions t ON t.xid = j.xid " \
	" WHERE j.table_id = $1 AND ($2 IS NULL OR j.doc_id = $2) " \
	"   AND ($3 IS NULL OR t.committed_at >= $3) " \
	"   AND ($4 IS NULL OR t.committed_at < $4) " \
	" ORDER BY t.seq, j.doc_id, j.version"

/*
 * Fill the tuplestore.  as_json: the data column is jsonb instead of the
 * table's row type.
 */
static void
history(FunctionCallInfo fcinfo, Oid relid, bool as_json)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel = ledger_open_table(relid, AccessShareLock, ACL_SELECT);
	Oid			argtypes[4] = {INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[4];
	char		argnulls[4] = {' ', ' ', ' ', ' '};
	LedgerUserSave save;
	SPITupleTable *tt;
	TupleDesc	rowdesc = lookup_rowtype_tupdesc(RelationGetForm(rel)->reltype, -1);

	InitMaterializedSRF(fcinfo, 0);
	args[0] = Int64GetDatum(ledger_table(rel)->table_id);
	for (int i = 1; i < 4; i++)
	{
		args[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		argnulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	ledger_become_owner(&save);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ledger_history: SPI_connect failed");
	if (SPI_execute_with_args(HISTORY_SQL, 4, argtypes, args, argnulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "ledger_history: the history query failed");
	tt = SPI_tuptable;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		values[Natts_out];
		bool		nulls[Natts_out];

		for (int c = 0; c < Out_data; c++)
			values[c] = SPI_getbinval(tt->vals[r], tt->tupdesc, c + 1, &nulls[c]);
		values[Out_operation] = CStringGetTextDatum(
			DatumGetChar(values[Out_operation]) == LEDGER_OP_INSERT ? "INSERT" :
			DatumGetChar(values[Out_operation]) == LEDGER_OP_UPDATE ? "UPDATE" : "DELETE");
		values[Out_data] = SPI_getbinval(tt->vals[r], tt->tupdesc, Out_data + 1,
										 &nulls[Out_data]);
		if (!nulls[Out_data])
		{
			values[Out_data] = ledger_open_revision(rel, rowdesc,
													DatumGetInt64(values[Out_doc_id]),
													DatumGetInt32(values[Out_version]),
													DatumGetByteaPP(values[Out_data]));
			if (as_json)
				values[Out_data] = DirectFunctionCall1(jsonb_in,
													   CStringGetDatum(text_to_cstring(DatumGetTextPP(DirectFunctionCall1(row_to_json, values[Out_data])))));
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	ledger_restore_user(&save);
	ReleaseTupleDesc(rowdesc);
	table_close(rel, AccessShareLock);
}

/* ledger_history(anyelement, ...): data typed as the table's row type. */
Datum
ledger_history(PG_FUNCTION_ARGS)
{
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			relid = typeOrDomainTypeRelid(rowtype);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("ledger_history() needs a ledger table's row type"),
				 errhint("Call it as ledger_history(NULL::my_table), or ledger_history('my_table') for the data as jsonb.")));
	history(fcinfo, relid, false);
	return (Datum) 0;
}

/*
 * ledger_history(text, ...): data as jsonb.  The table is named by text,
 * not regclass, so that a quoted name resolves to this variant rather than
 * being ambiguous with the row-type one.
 */
Datum
ledger_history_json(PG_FUNCTION_ARGS)
{
	Oid			relid;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ledger_history() needs a table"),
				 errhint("Pass the ledger table, for example ledger_history('my_table').")));
	relid = RangeVarGetRelid(makeRangeVarFromNameList(textToQualifiedNameList(PG_GETARG_TEXT_PP(0))),
							 AccessShareLock, false);
	history(fcinfo, relid, true);
	return (Datum) 0;
}
