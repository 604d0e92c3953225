/*-------------------------------------------------------------------------
 *
 * keychange.c
 *	  Key changes: ledger_rotate_key() queues one, the worker carries it out.
 *
 * ledger.key_changes holds one row per change.  A change is a sequence of
 * steps, each in a transaction of its own that also records the progress,
 * so a crash or restart resumes after the last committed step:
 *
 *	provider_key	re-wrap the root key with another provider key: 1 step;
 *	root_key		add a new root key version, then re-wrap the data keys
 *					in batches, then retire the old version;
 *	data_keys		give every ledger table a new data key, in batches; old
 *					revisions keep theirs.
 *
 * No step touches a row of data, and every key a reader or writer may hold
 * stays valid: a re-wrapped key has the same material, and until the last
 * step of a root key rotation both root versions are active.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ledger_rotate_key);

/* Columns of ledger.key_changes (sql/ledger--0.1.sql). */
enum
{
	Anum_change_id = 1,
	Anum_change_kind,
	Anum_change_provider_key,
	Anum_change_target,
	Anum_change_state,
	Anum_change_done,
	Anum_change_total,
	Anum_change_requested_at,
	Anum_change_requested_by,
	Anum_change_started_at,
	Anum_change_finished_at,
	Anum_change_error,
	Anum_change_provider,
	Natts_changes = Anum_change_provider
};

static const char *const change_kinds[] = {"provider_key", "root_key", "data_keys"};

static bool wake_worker_at_commit = false;

static int64 insert_change(Relation rel, const char *kind, const char *provider,
							const char *provider_key);

/* The change in progress, or NULL: the oldest one not done or failed. */
static HeapTuple
current_change(Relation rel)
{
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false,
										  GetLatestSnapshot(), 0, NULL);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tup,
				found = NULL;

	while ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		char	   *state = TextDatumGetCString(heap_getattr(tup, Anum_change_state,
															 desc, &isnull));

		if (strcmp(state, "pending") != 0 && strcmp(state, "running") != 0)
			continue;
		if (found == NULL ||
			DatumGetInt64(heap_getattr(tup, Anum_change_id, desc, &isnull)) <
			DatumGetInt64(heap_getattr(found, Anum_change_id, desc, &isnull)))
			found = heap_copytuple(tup);
	}
	systable_endscan(scan);
	return found;
}

static bool
valid_kind(const char *kind)
{
	for (int i = 0; i < lengthof(change_kinds); i++)
		if (strcmp(kind, change_kinds[i]) == 0)
			return true;
	return false;
}

/*
 * ledger_rotate_key(kind text DEFAULT 'root_key', provider_key text
 * DEFAULT NULL, provider text DEFAULT NULL) returns bigint: queue a key
 * change and return its id.  A provider key change stays with the
 * current provider unless "provider" names another.
 */
Datum
ledger_rotate_key(PG_FUNCTION_ARGS)
{
	char	   *kind = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *provider_key = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *provider = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	Relation	rel;
	HeapTuple	busy;
	int64		id;

	if (kind == NULL || !valid_kind(kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown kind of key change \"%s\"", kind ? kind : "(null)"),
				 errhint("Use 'root_key', 'provider_key' or 'data_keys'.")));
	if (strcmp(kind, "provider_key") == 0 && provider_key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a provider key change needs the new provider key"),
				 errhint("Call ledger_rotate_key('provider_key', '<key id>').")));
	if (strcmp(kind, "provider_key") != 0 && (provider_key != NULL || provider != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("only a provider key change takes a provider key or a provider"),
				 errhint("Call ledger_rotate_key('%s') without a key.", kind)));
	if (provider_key != NULL)
	{
		if (provider == NULL)
		{
			LedgerRootInfo root;

			ledger_keys_root_info(&root);
			provider = pstrdup(root.provider);
		}
		ledger_provider_check_key(provider, provider_key);
	}
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot change ledger keys during recovery"),
				 errhint("Change keys on the primary; the standby follows through WAL.")));

	/* One change at a time; the lock makes the check and the insert one. */
	rel = table_open(ledger_relation_oid("key_changes"), ShareRowExclusiveLock);
	busy = current_change(rel);
	if (busy != NULL)
	{
		bool		isnull;

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("key change %lld is still in progress",
						(long long) DatumGetInt64(heap_getattr(busy, Anum_change_id,
															   RelationGetDescr(rel), &isnull))),
				 errhint("Wait until ledger_status() no longer shows it, then ask again.")));
	}
	id = insert_change(rel, kind, provider, provider_key);
	table_close(rel, NoLock);
	ledger_worker_ensure();
	wake_worker_at_commit = true;
	PG_RETURN_INT64(id);
}

/* Queue a change: its row, and the event that records the request. */
static int64
insert_change(Relation rel, const char *kind, const char *provider,
			  const char *provider_key)
{
	Datum		values[Natts_changes];
	bool		nulls[Natts_changes];
	int64		id = nextval_internal(ledger_relation_oid("key_change_id_seq"), false);

	memset(nulls, true, sizeof(nulls));
	values[Anum_change_id - 1] = Int64GetDatum(id);
	values[Anum_change_kind - 1] = CStringGetTextDatum(kind);
	values[Anum_change_state - 1] = CStringGetTextDatum("pending");
	values[Anum_change_done - 1] = Int64GetDatum(0);
	values[Anum_change_requested_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[Anum_change_requested_by - 1] =
		DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	nulls[Anum_change_id - 1] = nulls[Anum_change_kind - 1] = false;
	nulls[Anum_change_state - 1] = nulls[Anum_change_done - 1] = false;
	nulls[Anum_change_requested_at - 1] = nulls[Anum_change_requested_by - 1] = false;
	if (provider_key != NULL)
	{
		values[Anum_change_provider_key - 1] = CStringGetTextDatum(provider_key);
		nulls[Anum_change_provider_key - 1] = false;
		values[Anum_change_provider - 1] = CStringGetTextDatum(provider);
		nulls[Anum_change_provider - 1] = false;
	}
	CatalogTupleInsert(rel, heap_form_tuple(RelationGetDescr(rel), values, nulls));
	ledger_key_event(psprintf("%s requested", kind), NULL, 0, 0, id,
					 provider_key ? provider_key : "ok");
	return id;
}

static bool
older_than(TimestampTz t, int period_s)
{
	return period_s > 0 && GetCurrentTimestamp() - t >= (int64) period_s * USECS_PER_SEC;
}

/*
 * The automatic rotation policies, run by the worker in its transaction,
 * each queueing the change a DBA would: a root key rotation once the
 * newest root key version is older than ledger.root_key_rotation_period;
 * a provider key change to a new version of the same provider key once
 * the root key has been wrapped by the current one for longer than
 * ledger.provider_key_rotation_period, where the provider holds its
 * material (file) and could add the version.  Nothing while a change is in
 * progress or a session is queueing one: the worker never waits on the
 * lock.
 */
void
ledger_key_rotation_policy(void)
{
	LedgerRootInfo root;
	bool		rotate_root;
	bool		rotate_provider;
	Relation	rel;
	HeapTuple	busy;

	ledger_keys_root_info(&root);
	rotate_root = older_than(root.created_at, ledger_root_key_rotation_period);
	rotate_provider = !rotate_root &&
		older_than(root.wrapped_at, ledger_provider_key_rotation_period);
	if ((!rotate_root && !rotate_provider) ||
		!ConditionalLockRelationOid(ledger_relation_oid("key_changes"), ShareRowExclusiveLock))
		return;
	rel = table_open(ledger_relation_oid("key_changes"), NoLock);
	busy = current_change(rel);
	if (busy == NULL && rotate_root)
		(void) insert_change(rel, "root_key", NULL, NULL);
	else if (busy == NULL)
	{
		/* Named as before: a change through an alias keeps following it. */
		const char *key = root.provider_key_alias[0] ? root.provider_key_alias
			: root.provider_key_id;

		if (ledger_provider_rotate_material(root.provider, key))
			(void) insert_change(rel, "provider_key", root.provider, key);
	}
	table_close(rel, NoLock);
}

/* Write the columns marked in repl back into the change's row. */
static void
update_change(Relation rel, HeapTuple old, Datum *values, bool *nulls, bool *repl)
{
	HeapTuple	tup = heap_modify_tuple(old, RelationGetDescr(rel), values, nulls, repl);

	CatalogTupleUpdate(rel, &old->t_self, tup);
}

static int64
int64_column(HeapTuple tup, TupleDesc desc, int attnum, bool *isnull)
{
	Datum		d = heap_getattr(tup, attnum, desc, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

/*
 * One step of the change in progress, in the caller's transaction: the
 * step and the progress it records commit together.  Returns false when
 * there is nothing to do now.
 */
static bool
change_step(void)
{
	Relation	rel = table_open(ledger_relation_oid("key_changes"), RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tup = current_change(rel);
	Datum		values[Natts_changes];
	bool		nulls[Natts_changes] = {0};
	bool		repl[Natts_changes] = {0};
	bool		isnull;
	bool		started;
	char	   *kind;
	int64		target;
	int64		done = 0;
	bool		finished = false;
	bool		again = true;

	if (tup == NULL)
	{
		table_close(rel, NoLock);
		return false;
	}
	/*
	 * No provider may change or go while a step wraps with it (see
	 * ledger_create_provider); the worker does not wait for a session that
	 * is altering one, it comes back in a later round.
	 */
	if (!ConditionalLockRelationOid(ledger_relation_oid("providers"), RowExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("a key provider is being changed; the key change goes on later")));
	kind = TextDatumGetCString(heap_getattr(tup, Anum_change_kind, desc, &isnull));
	target = int64_column(tup, desc, Anum_change_target, &isnull);
	started = !isnull;
	if (strcmp(kind, "provider_key") == 0)
	{
		char	   *target_key = TextDatumGetCString(heap_getattr(tup, Anum_change_provider_key,
																  desc, &isnull));
		char	   *target_provider = TextDatumGetCString(heap_getattr(tup, Anum_change_provider,
																	   desc, &isnull));

		/* A target that has gone or is disabled fails the change. */
		ledger_provider_check_key(target_provider, target_key);
		ledger_keys_rewrap_root(target_provider, target_key);
		done = 1;
		finished = true;
	}
	else if (!started)
	{
		/* The first step fixes the target: a root version, a key id floor. */
		int64		total;
		int64		ignored;

		if (strcmp(kind, "root_key") == 0)
		{
			target = ledger_keys_add_root_version();
			ledger_keys_count_data((int32) target, &total, &ignored);
		}
		else
			target = ledger_tables_to_rekey(&total);
		values[Anum_change_total - 1] = Int64GetDatum(total);
		repl[Anum_change_total - 1] = true;
		values[Anum_change_started_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
		repl[Anum_change_started_at - 1] = true;
	}
	else if (strcmp(kind, "root_key") == 0)
	{
		done = ledger_keys_rewrap_data((int32) target, ledger_key_change_batch);
		if (done == 0)
		{
			finished = ledger_keys_finish_root_rotation((int32) target, &done);
			again = finished;	/* else another round tries again */
		}
	}
	else
	{
		int			busy;

		done = ledger_rekey_tables((int32) target, ledger_key_change_batch, &busy);
		if (done == 0)
		{
			finished = (busy == 0);
			again = finished;	/* else another round tries again */
		}
	}
	values[Anum_change_target - 1] = Int64GetDatum(target);
	repl[Anum_change_target - 1] = true;
	values[Anum_change_done - 1] =
		Int64GetDatum(int64_column(tup, desc, Anum_change_done, &isnull) + done);
	repl[Anum_change_done - 1] = true;
	values[Anum_change_state - 1] = CStringGetTextDatum(finished ? "done" : "running");
	repl[Anum_change_state - 1] = true;
	if (finished)
	{
		values[Anum_change_finished_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
		repl[Anum_change_finished_at - 1] = true;
		ledger_key_event(psprintf("%s done", kind), NULL, 0, 0,
						 int64_column(tup, desc, Anum_change_id, &isnull), "ok");
	}
	update_change(rel, tup, values, nulls, repl);
	table_close(rel, NoLock);
	return again;
}

/*
 * A step that failed for another reason than an inaccessible provider key
 * will fail again: mark the change failed, with the reason, so that the
 * next one may run.  An inaccessible key is retried in a later round.
 */
static void
change_failed(const ErrorData *e)
{
	Relation	rel;
	HeapTuple	tup;
	Datum		values[Natts_changes];
	bool		nulls[Natts_changes] = {0};
	bool		repl[Natts_changes] = {0};

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(ledger_relation_oid("key_changes"), RowExclusiveLock);
	tup = current_change(rel);
	if (tup != NULL)
	{
		bool		isnull;

		ledger_key_event(psprintf("%s failed",
								  TextDatumGetCString(heap_getattr(tup, Anum_change_kind,
																   RelationGetDescr(rel), &isnull))),
						 NULL, 0, 0,
						 int64_column(tup, RelationGetDescr(rel), Anum_change_id, &isnull),
						 e->message);
		values[Anum_change_state - 1] = CStringGetTextDatum("failed");
		values[Anum_change_error - 1] = CStringGetTextDatum(e->message);
		values[Anum_change_finished_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
		repl[Anum_change_state - 1] = repl[Anum_change_error - 1] = true;
		repl[Anum_change_finished_at - 1] = true;
		update_change(rel, tup, values, nulls, repl);
	}
	table_close(rel, NoLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	ereport(LOG,
			(errmsg("ledger key change failed: %s", e->message)));
}

/*
 * Errors after which a step is worth trying again in a later round: the
 * provider key is inaccessible, or a conflict with a concurrent session.
 * Anything else would fail again.
 */
static bool
retryable(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_LEDGER_KEY_INACCESSIBLE ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE;
}

/* Steps stop for this round after this long, so the worker also seals. */
#define CHANGE_ROUND_MS		500

/*
 * Run the queued key change, one transaction per step, for at most
 * CHANGE_ROUND_MS; the worker comes back to it in its next round.  Called
 * by the worker, outside a transaction.  A step that met a retryable
 * error is tried again in a later round.
 */
void
ledger_key_changes_run(void)
{
	TimestampTz start = GetCurrentTimestamp();

	while (!TimestampDifferenceExceeds(start, GetCurrentTimestamp(), CHANGE_ROUND_MS))
	{
		MemoryContext cxt = CurrentMemoryContext;
		volatile bool more = false;

		CHECK_FOR_INTERRUPTS();
		PG_TRY();
		{
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			more = OidIsValid(ledger_relation_oid("key_changes")) && change_step();
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		PG_CATCH();
		{
			ErrorData  *e;

			MemoryContextSwitchTo(cxt);
			e = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			if (e->sqlerrcode == ERRCODE_QUERY_CANCELED ||
				e->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
				ReThrowError(e);
			if (!retryable(e->sqlerrcode))
			{
				change_failed(e);
				more = true;
			}
			FreeErrorData(e);
		}
		PG_END_TRY();
		if (!more)
			return;
	}
	/* More to do: come back at once after the worker's other duties. */
	SetLatch(MyLatch);
}

/* The change in progress, for ledger_status(); false if there is none. */
bool
ledger_key_change_progress(char **kind, int64 *done, int64 *total)
{
	Relation	rel = table_open(ledger_relation_oid("key_changes"), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tup = current_change(rel);
	bool		isnull;

	if (tup != NULL)
	{
		*kind = TextDatumGetCString(heap_getattr(tup, Anum_change_kind, desc, &isnull));
		*done = int64_column(tup, desc, Anum_change_done, &isnull);
		*total = int64_column(tup, desc, Anum_change_total, &isnull);
		if (isnull)
			*total = -1;
	}
	table_close(rel, AccessShareLock);
	return tup != NULL;
}

static void
keychange_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_worker_at_commit)
		ledger_worker_wake(MyDatabaseId);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		wake_worker_at_commit = false;
}

void
ledger_keychange_init(void)
{
	RegisterXactCallback(keychange_xact_callback, NULL);
}
