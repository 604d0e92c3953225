/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Hooks that register ledger tables and refuse what would rewrite,
 *	  expose or lose ledger rows.
 *
 * Each refusal is an ereport with an errcode, a message and a hint saying
 * what to do instead (docs/reference.md lists them all):
 *
 *	- creating a ledger relation internally: make_new_heap() does that for
 *	  every table rewrite, so one check covers ALTER TABLE forms that
 *	  rewrite and SET ACCESS METHOD ledger; VACUUM FULL, CLUSTER and our
 *	  own re-sealing are let through, since they copy raw tuples (rewrite.c);
 *	- materialized views and unlogged tables on the ledger access method;
 *	- SET ACCESS METHOD away from ledger;
 *	- DROP of a table under deletion protection (temporary tables excepted:
 *	  the session drops them whatever we say), and DROP EXTENSION while
 *	  such tables exist;
 *	- publications that would include a ledger table, in either order;
 *	- PREPARE TRANSACTION after a ledger write;
 *	- CREATE INDEX CONCURRENTLY over columns that rows hold sealed, before
 *	  it can leave an invalid index behind.
 *
 * Before CREATE INDEX or ADD CONSTRAINT builds an index over columns
 * outside a table's plaintext set, the table is re-sealed (rewrite.c).
 *
 * TRUNCATE is refused by the access method itself (tableam.c).
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "commands/defrem.h"
#include "nodes/nodeFuncs.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "optimizer/optimizer.h"
#include "nodes/makefuncs.h"
#include "parser/parse_type.h"
#include "parser/parse_utilcmd.h"
#include "tcop/utility.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

static object_access_hook_type prev_object_access = NULL;
static ProcessUtility_hook_type prev_utility = NULL;

/*
 * The pg_class row of a relation being created.  SnapshotSelf, because
 * the creating command has not made it visible yet.
 */
static bool
fetch_new_class(Oid relid, Form_pg_class out)
{
	Relation	rel = table_open(RelationRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, ClassOidIndexId, true, SnapshotSelf, 1, &key);
	if ((tup = systable_getnext(scan)) != NULL)
	{
		memcpy(out, GETSTRUCT(tup), sizeof(FormData_pg_class));
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* A column added or anything of a ledger table altered: a schema event. */
static void
relation_altered(Oid relid)
{
	Relation	rel;

	if (ledger_rewrite_allowed() || !ledger_is_ledger_relid(relid) ||
		!OidIsValid(ledger_relation_oid("tables")))
		return;
	rel = relation_open(relid, NoLock);
	ledger_note_event(relid, ledger_table(rel)->table_id, LEDGER_EVENT_ALTER);
	relation_close(rel, NoLock);
}

static void
relation_created(Oid relid, int subId, bool is_internal)
{
	FormData_pg_class cls;

	if (!fetch_new_class(relid, &cls) || cls.relam != ledger_am_oid())
		return;
	if (subId != 0)
	{
		ledger_column_added(relid, subId);
		relation_altered(relid);
		return;
	}
	if (is_internal && ledger_rewrite_allowed())
		return;					/* the transient copy of a raw-copy rewrite */
	if (is_internal)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ledger tables cannot be rewritten"),
				 errdetail("ALTER TABLE forms that rewrite the table, and SET ACCESS METHOD ledger, would insert every row anew, without its document id and history."),
				 errhint("To change a column, add a new column and fill it with UPDATE; to convert a table, create a ledger table and copy the rows with INSERT ... SELECT.")));
	if (cls.relpersistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ledger tables cannot be unlogged"),
				 errdetail("A crash would empty an unlogged table while the journal keeps the revisions of its rows."),
				 errhint("Create the table without UNLOGGED.")));
	if (cls.relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("only tables can use the ledger access method"),
				 errdetail("\"%s\" is not a table.", NameStr(cls.relname)),
				 errhint("Create materialized views with USING heap; they hold derived data in the clear.")));
	ledger_register_table(relid);
}

static void
relation_dropped(Oid relid, int subId)
{
	LedgerTable *t;
	Relation	rel;

	/* a rewrite drops its transient copy, which was never registered */
	if (subId != 0 || ledger_rewrite_allowed() ||
		!ledger_is_ledger_relid(relid) ||
		!OidIsValid(ledger_relation_oid("tables")))
		return;
	rel = relation_open(relid, NoLock);
	t = ledger_table(rel);
	/* A temporary table is dropped by the session's end whatever we say. */
	if (t->deletion_protection &&
		rel->rd_rel->relpersistence != RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ledger table \"%s\" has deletion protection", RelationGetRelationName(rel)),
				 errhint("Run SELECT ledger_set_deletion_protection('%s', false) first, if the table really is to be dropped.",
						 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													RelationGetRelationName(rel)))));
	relation_close(rel, NoLock);
	ledger_forget_table(relid);
}

static void
ledger_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					 int subId, void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	if (classId != RelationRelationId || !OidIsValid(ledger_am_oid()))
		return;
	if (access == OAT_POST_CREATE)
		relation_created(objectId, subId,
						 ((ObjectAccessPostCreate *) arg)->is_internal);
	else if (access == OAT_POST_ALTER)
		relation_altered(objectId);
	else if (access == OAT_DROP)
		relation_dropped(objectId, subId);
}

/*
 * The text of the first column of a check query's first row, or NULL if
 * it returns none.  Run with a fresh snapshot, so that it sees what the
 * current statement did.
 */
static char *
first_found(const char *query, int nargs, Oid *argtypes, Datum *args)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *found = NULL;

	SPI_connect();
	if (SPI_execute_with_args(query, nargs, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "ledger: check query failed");
	if (SPI_processed > 0)
		found = MemoryContextStrdup(caller,
									SPI_getvalue(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1));
	SPI_finish();
	return found;
}

/* No publication may include a ledger table, however it came to. */
static void
refuse_published_ledger_tables(void)
{
	/*
	 * A partitioned root published via_root carries its partitions.  A
	 * table that a concurrent session drops between the view's scan and
	 * the name lookup is simply gone: to_regclass(), not a cast, so that
	 * the race cannot fail this command.
	 */
	char	   *found = first_found(
		"SELECT format('%I.%I in publication %I', n.nspname, c.relname, pt.pubname) "
		"FROM pg_catalog.pg_publication_tables pt "
		"CROSS JOIN LATERAL (SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', pt.schemaname, pt.tablename)) AS oid) r "
		"CROSS JOIN LATERAL (SELECT relid FROM pg_catalog.pg_partition_tree(r.oid) "
		"                    UNION SELECT r.oid) pp "
		"JOIN pg_catalog.pg_class c ON c.oid = pp.relid "
		"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
		"JOIN pg_catalog.pg_am a ON a.oid = c.relam AND a.amname = 'ledger'",
		0, NULL, NULL);

	if (found != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ledger tables cannot be published: %s", found),
				 errdetail("Logical replication would send the sealed columns of ledger tables as NULL."),
				 errhint("Publish tables explicitly with FOR TABLE and leave ledger tables out; subscribers can follow the sealed revisions in ledger.journal instead.")));
}

static void
refuse_protected_tables_on_drop_extension(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_EXTENSION || !OidIsValid(ledger_relation_oid("tables")))
		return;
	foreach(lc, stmt->objects)
	{
		char	   *found;

		if (strcmp(strVal(lfirst(lc)), "ledger") != 0)
			continue;
		found = first_found("SELECT format('%s', relid::regclass) FROM ledger.tables "
							"WHERE dropped_at IS NULL AND deletion_protection",
							0, NULL, NULL);
		if (found != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot drop extension ledger while ledger table %s has deletion protection",
							found),
					 errhint("Turn off deletion protection with ledger_set_deletion_protection() for every ledger table first.")));
	}
}

static void
refuse_set_access_method(AlterTableStmt *stmt)
{
	ListCell   *lc;
	Oid			relid;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);

		if (cmd->subtype != AT_SetAccessMethod)
			continue;
		relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		if (OidIsValid(relid) &&
			(ledger_is_ledger_relid(relid) ||
			 get_rel_namespace(relid) == ledger_schema_oid()))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot change the access method of \"%s\"",
							stmt->relation->relname),
					 errdetail("The rows would be rewritten in the clear and their history left behind."),
					 errhint("Create a table with the other access method and copy the rows with INSERT ... SELECT.")));
	}
}

/* Collect the column names an expression refers to, as raw parse trees. */
static bool
collect_columns(Node *node, List **names)
{
	if (node == NULL)
		return false;
	if (IsA(node, ColumnRef))
	{
		ColumnRef  *ref = (ColumnRef *) node;
		Node	   *last = llast(ref->fields);

		/* "t.*", or a bare "t", is the whole row: a name no column has */
		*names = lappend(*names, IsA(last, A_Star) ? "*" : strVal(last));
		return false;
	}
	return raw_expression_tree_walker(node, collect_columns, (void *) names);
}

static List *
index_elem_columns(List *elems, List *names)
{
	ListCell   *lc;

	foreach(lc, elems)
	{
		IndexElem  *elem = lfirst(lc);

		if (elem->name)
			names = lappend(names, elem->name);
		else
			collect_columns(elem->expr, &names);
	}
	return names;
}

/* Names of the columns a cooked expression refers to ("*": whole row). */
static List *
cooked_columns(Node *expr, Oid relid, List *names)
{
	Bitmapset  *attnos = NULL;
	int			attnum = -1;

	pull_varattnos(expr, 1, &attnos);
	attnos = ledger_attnums(attnos);
	while ((attnum = bms_next_member(attnos, attnum)) >= 0)
		names = lappend(names, attnum == 0 ? "*" : get_attname(relid, attnum, false));
	return names;
}

/*
 * Columns a new index of CREATE INDEX refers to, by name.  Statements that
 * commands generate (LIKE ... INCLUDING INDEXES) arrive transformed, with
 * cooked expressions.
 */
static List *
index_stmt_columns(IndexStmt *stmt)
{
	List	   *names = NIL;
	ListCell   *lc;
	Oid			relid;

	if (!stmt->transformed)
	{
		names = index_elem_columns(stmt->indexParams, names);
		names = index_elem_columns(stmt->indexIncludingParams, names);
		collect_columns(stmt->whereClause, &names);
		return names;
	}
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return NIL;
	foreach(lc, list_concat_copy(stmt->indexParams, stmt->indexIncludingParams))
	{
		IndexElem  *elem = lfirst(lc);

		if (elem->name)
			names = lappend(names, elem->name);
		else
			names = cooked_columns(elem->expr, relid, names);
	}
	return cooked_columns(stmt->whereClause, relid, names);
}

/* Columns an index-backed constraint refers to, or NIL for other ones. */
static List *
constraint_columns(Constraint *con)
{
	List	   *names = NIL;
	ListCell   *lc;

	if ((con->contype != CONSTR_PRIMARY && con->contype != CONSTR_UNIQUE &&
		 con->contype != CONSTR_EXCLUSION) || con->indexname != NULL)
		return NIL;
	foreach(lc, con->keys)
		names = lappend(names, strVal(lfirst(lc)));
	foreach(lc, con->including)
		names = lappend(names, strVal(lfirst(lc)));
	foreach(lc, con->exclusions)
		names = index_elem_columns(list_make1(linitial((List *) lfirst(lc))), names);
	collect_columns(con->where_clause, &names);
	return names;
}

/*
 * Make sure a ledger table keeps the named columns in the clear before an
 * index over them is built.  A table without rows needs nothing: the build
 * grows its plaintext set.  Otherwise CREATE INDEX re-seals the table,
 * under AccessExclusiveLock; CONCURRENTLY cannot, so it is refused.  For
 * CONCURRENTLY on an empty table the set grows here, under a ShareLock
 * that keeps writers out until the index is in the catalog.
 */
static void
prepare_table_columns(Oid relid, const char *relname, List *names,
					  bool concurrent)
{
	Relation	rel;
	Bitmapset  *attnums = NULL;
	Bitmapset  *needed;
	ListCell   *lc;

	rel = table_open(relid, NoLock);
	foreach(lc, names)
	{
		char	   *name = lfirst(lc);
		AttrNumber	attnum = get_attnum(relid, name);

		if (attnum > 0)
			attnums = bms_add_member(attnums, attnum);
		else if (strcmp(name, "*") == 0 || strcmp(name, relname) == 0)
			attnums = bms_add_member(attnums, 0);
	}
	/* refused here, before CONCURRENTLY commits an index to the catalog */
	ledger_check_index_columns(rel, attnums, "index");
	needed = bms_difference(attnums, ledger_table(rel)->plainset);
	table_close(rel, NoLock);
	if (bms_is_empty(needed))
		return;

	rel = table_open(relid, concurrent ? ShareLock : AccessExclusiveLock);
	if (!ledger_table_holds_rows(rel))
	{
		if (concurrent)
			ledger_extend_plainset(rel, needed);
		table_close(rel, NoLock);
		return;
	}
	if (concurrent)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot index columns of ledger table \"%s\" concurrently while its rows hold them sealed",
						RelationGetRelationName(rel)),
				 errdetail("Indexed columns must be kept in the clear in every row; making them so re-seals the table under an exclusive lock."),
				 errhint("Use CREATE INDEX without CONCURRENTLY, which re-seals the table first.")));
	table_close(rel, NoLock);
	ledger_reseal(relid, bms_union(ledger_plainset_of(relid), needed));
}

/* The same, for a table and, if partitioned, all its ledger partitions. */
static void
prepare_index_columns(RangeVar *rv, List *names, bool concurrent)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);
	List	   *rels;
	ListCell   *lc;

	if (!OidIsValid(relid) || names == NIL)
		return;
	/* ON ONLY a partitioned table builds nothing on its partitions yet */
	rels = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE && rv->inh ?
		find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
	foreach(lc, rels)
		if (ledger_is_ledger_relid(lfirst_oid(lc)))
			prepare_table_columns(lfirst_oid(lc), rv->relname, names, concurrent);
}

static void
prepare_alter_table(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);

		if (cmd->subtype == AT_AddConstraint && IsA(cmd->def, Constraint))
			prepare_index_columns(stmt->relation,
								  constraint_columns((Constraint *) cmd->def),
								  false);
	}
}

/*
 * Sealed rows hold values in their type's binary form, which some catalog
 * changes reinterpret: an enum label renamed, a composite type's
 * attributes changed, a domain constraint that nested values of existing
 * rows may not meet (top-level domain columns travel as their base type).
 * Refuse those changes while a ledger table stores values of the type.
 */
static void
refuse_sealed_type_change(Oid typid, bool nested_only, const char *what)
{
	Oid			argtypes[2] = {OIDOID, BOOLOID};
	Datum		args[2] = {ObjectIdGetDatum(typid), BoolGetDatum(nested_only)};
	char	   *found = first_found(
		"WITH RECURSIVE edge(inner_t, outer_t, direct) AS ("
		"  SELECT typbasetype, oid, true FROM pg_catalog.pg_type WHERE typbasetype <> 0"
		"  UNION ALL SELECT typelem, oid, false FROM pg_catalog.pg_type"
		"    WHERE typcategory = 'A' AND typelem <> 0"
		"  UNION ALL SELECT a.atttypid, ty.oid, false FROM pg_catalog.pg_type ty"
		"    JOIN pg_catalog.pg_attribute a ON a.attrelid = ty.typrelid"
		"    WHERE ty.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped"
		"  UNION ALL SELECT rngsubtype, rngtypid, false FROM pg_catalog.pg_range"
		"  UNION ALL SELECT rngsubtype, rngmultitypid, false FROM pg_catalog.pg_range"
		"), t(oid, direct) AS ("
		"  SELECT $1, true"
		"  UNION SELECT e.outer_t, t.direct AND e.direct FROM t JOIN edge e ON e.inner_t = t.oid"
		") "
		"SELECT format('column %I of %s', a.attname, c.oid::regclass) "
		"FROM t JOIN pg_catalog.pg_attribute a ON a.atttypid = t.oid AND NOT a.attisdropped "
		"JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
		"JOIN pg_catalog.pg_am am ON am.oid = c.relam AND am.amname = 'ledger' "
		"WHERE NOT ($2 AND t.direct) LIMIT 1",
		2, argtypes, args);

	if (found != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot %s type %s: ledger rows store its values",
						what, format_type_be(typid)),
				 errdetail("Sealed rows in %s hold values in the type's binary form, which the change would make unreadable.",
						   found),
				 errhint("Create a new type and move the column to it with ADD COLUMN and UPDATE.")));
}

/* ALTER TYPE on a composite, or ALTER TABLE changing its row type's shape */
static bool
changes_row_type(AlterTableStmt *stmt)
{
	ListCell   *lc;

	if (stmt->objtype == OBJECT_TYPE)
		return true;
	foreach(lc, stmt->cmds)
	{
		AlterTableType t = ((AlterTableCmd *) lfirst(lc))->subtype;

		if (t == AT_AddColumn || t == AT_DropColumn || t == AT_AlterColumnType)
			return true;
	}
	return false;
}

static void
refuse_type_changes(Node *parsetree)
{
	if (IsA(parsetree, AlterEnumStmt) && ((AlterEnumStmt *) parsetree)->oldVal != NULL)
		refuse_sealed_type_change(typenameTypeId(NULL, makeTypeNameFromNameList(((AlterEnumStmt *) parsetree)->typeName)),
								  false, "rename a value of");
	else if (IsA(parsetree, AlterDomainStmt) && ((AlterDomainStmt *) parsetree)->subtype == 'C')
		refuse_sealed_type_change(typenameTypeId(NULL, makeTypeNameFromNameList(((AlterDomainStmt *) parsetree)->typeName)),
								  true, "add a constraint to");
	else if (IsA(parsetree, AlterTableStmt) && changes_row_type((AlterTableStmt *) parsetree))
	{
		Oid			relid = RangeVarGetRelid(((AlterTableStmt *) parsetree)->relation, NoLock, true);

		if (OidIsValid(relid))
			refuse_sealed_type_change(get_rel_type_id(relid), false, "alter the attributes of");
	}
}

/*
 * Extended statistics keep sample values in the clear, like ANALYZE: on a
 * ledger table they may cover sealed columns only where
 * ledger.analyze_sealed_columns allows it.
 */
static void
refuse_sealed_statistics(CreateStatsStmt *stmt)
{
	List	   *names = NIL;
	ListCell   *lc;
	Oid			relid;
	Relation	rel;

	if (ledger_analyze_sealed_columns || list_length(stmt->relations) != 1 ||
		!IsA(linitial(stmt->relations), RangeVar))
		return;
	relid = RangeVarGetRelid(linitial(stmt->relations), NoLock, true);
	if (!OidIsValid(relid) || !ledger_is_ledger_relid(relid))
		return;
	foreach(lc, stmt->exprs)
	{
		StatsElem  *elem = lfirst(lc);

		if (elem->name)
			names = lappend(names, elem->name);
		else
			collect_columns(elem->expr, &names);
	}
	rel = table_open(relid, AccessShareLock);
	foreach(lc, names)
	{
		AttrNumber	attnum = get_attnum(relid, (char *) lfirst(lc));

		if (attnum > 0 && !bms_is_member(attnum, ledger_table(rel)->plainset))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot collect statistics on sealed column \"%s\" of ledger table \"%s\"",
							(char *) lfirst(lc), RelationGetRelationName(rel)),
					 errdetail("Statistics keep sample values in the clear."),
					 errhint("Set ledger.analyze_sealed_columns to on if these values may be stored in the clear.")));
	}
	table_close(rel, AccessShareLock);
}

/* VACUUM FULL and CLUSTER copy raw tuples; let their rewrites through. */
static bool
is_raw_copy_rewrite(Node *parsetree)
{
	ListCell   *lc;

	if (IsA(parsetree, ClusterStmt))
		return true;
	if (!IsA(parsetree, VacuumStmt))
		return false;
	foreach(lc, ((VacuumStmt *) parsetree)->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "full") == 0 && defGetBoolean(opt))
			return true;
	}
	return false;
}

/*
 * Commands that need a database to themselves would find its ledger
 * worker connected; ask the worker to leave first.  A later ledger write
 * in that database starts it again.
 */
static void
free_database_for(Node *parsetree)
{
	const char *dbname = NULL;
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			dbname = ((DropdbStmt *) parsetree)->dbname;
			break;
		case T_AlterDatabaseStmt:
			dbname = ((AlterDatabaseStmt *) parsetree)->dbname;
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				dbname = ((RenameStmt *) parsetree)->subname;
			break;
		case T_CreatedbStmt:
			foreach(lc, ((CreatedbStmt *) parsetree)->options)
			{
				DefElem    *opt = lfirst(lc);

				if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
					dbname = defGetString(opt);
			}
			break;
		default:
			break;
	}
	if (dbname != NULL)
	{
		Oid			dboid = get_database_oid(dbname, true);

		/* Only for those who may run the command: anyone else fails anyway. */
		if (OidIsValid(dboid) && pg_database_ownercheck(dboid, GetUserId()))
			ledger_worker_stop(dboid);
	}
}

static void
ledger_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			   ProcessUtilityContext context, ParamListInfo params,
			   QueryEnvironment *queryEnv, DestReceiver *dest,
			   QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		installed = OidIsValid(ledger_am_oid());

	free_database_for(parsetree);
	if (installed)
	{
		switch (nodeTag(parsetree))
		{
			case T_IndexStmt:
				prepare_index_columns(((IndexStmt *) parsetree)->relation,
									  index_stmt_columns((IndexStmt *) parsetree),
									  ((IndexStmt *) parsetree)->concurrent);
				break;
			case T_AlterTableStmt:
				refuse_set_access_method((AlterTableStmt *) parsetree);
				prepare_alter_table((AlterTableStmt *) parsetree);
				break;
			case T_DropStmt:
				refuse_protected_tables_on_drop_extension((DropStmt *) parsetree);
				break;
			case T_CreateStatsStmt:
				refuse_sealed_statistics((CreateStatsStmt *) parsetree);
				break;
			default:
				break;
		}
		refuse_type_changes(parsetree);
	}

	PG_TRY();
	{
		ledger_allow_rewrites(installed && is_raw_copy_rewrite(parsetree));
		if (prev_utility)
			prev_utility(pstmt, queryString, readOnlyTree, context, params,
						 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		ledger_allow_rewrites(false);
	}
	PG_END_TRY();

	if (installed && IsTransactionState())
	{
		ledger_apply_pending_plainsets();
		switch (nodeTag(parsetree))
		{
			case T_CreateStmt:
			case T_CreateTableAsStmt:
			case T_CreatePublicationStmt:
			case T_AlterPublicationStmt:
			case T_AlterObjectSchemaStmt:
			case T_AlterTableStmt:
				refuse_published_ledger_tables();
				break;
			default:
				break;
		}
	}
}

static void
ledger_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			/* Revisions and schema events are chained at commit only. */
			if (ledger_xact_wrote_journal() || ledger_events_pending())
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that wrote to or changed a ledger table"),
						 errhint("Commit the transaction instead of using PREPARE TRANSACTION.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			ledger_journal_xact_end();
			ledger_tableam_xact_end();
			ledger_forget_pending_plainsets();
			break;
		default:
			break;
	}
}

void
ledger_guard_init(void)
{
	prev_object_access = object_access_hook;
	object_access_hook = ledger_object_access;
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = ledger_utility;
	RegisterXactCallback(ledger_xact_callback, NULL);
}
