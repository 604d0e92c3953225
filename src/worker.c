/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background workers: a starter at server start, and one worker
 *	  per ledger database that checks the provider key, seals, and carries
 *	  out key changes.
 *
 * A ledger is one database, so each needs its own connected worker.  The
 * starter runs once when the server accepts writes and starts a worker
 * for every database; a worker whose database has no ledger leaves at
 * once.  A transaction that writes revisions starts its database's worker
 * if none is running, so a worker that stopped comes back with the next
 * write.  Workers never run during recovery: a standby never writes.
 *
 * Commands that need a database to themselves (DROP, RENAME, a copy from
 * it as template) stop its worker first; see guard.c.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PGDLLEXPORT void ledger_starter_main(Datum arg);
PGDLLEXPORT void ledger_worker_main(Datum arg);

/* Ledger databases served at once; documented in docs/reference.md. */
#define MAX_LEDGER_WORKERS	64

/* A claimed slot whose worker never showed up is given up after this. */
#define START_TIMEOUT_MS	60000

typedef struct WorkerSlot
{
	Oid			dboid;			/* InvalidOid: free */
	pid_t		pid;			/* 0 while starting */
	TimestampTz claimed_at;
} WorkerSlot;

typedef struct WorkerShared
{
	slock_t		mutex;
	WorkerSlot	slots[MAX_LEDGER_WORKERS];
} WorkerShared;

static WorkerShared *workers = NULL;

Size
ledger_worker_shmem_size(void)
{
	return sizeof(WorkerShared);
}

void
ledger_worker_shmem_init(void)
{
	bool		found;

	workers = ShmemInitStruct("ledger workers", sizeof(WorkerShared), &found);
	if (!found)
	{
		SpinLockInit(&workers->mutex);
		memset(workers->slots, 0, sizeof(workers->slots));
	}
}

static void
fill_worker(BackgroundWorker *w, const char *name, const char *func)
{
	memset(w, 0, sizeof(BackgroundWorker));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	w->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w->bgw_library_name, BGW_MAXLEN, "ledger");
	snprintf(w->bgw_function_name, BGW_MAXLEN, "%s", func);
	snprintf(w->bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(w->bgw_type, BGW_MAXLEN, "%s", name);
}

void
ledger_worker_register_launcher(void)
{
	BackgroundWorker w;

	/* pg_upgrade's servers must not have workers connect to databases. */
	if (IsBinaryUpgrade)
		return;

	fill_worker(&w, "ledger starter", "ledger_starter_main");
	RegisterBackgroundWorker(&w);
}

/*
 * Claim the slot of a database, or return false if it has a live or
 * starting worker already (or there is no room).
 */
static bool
claim_slot(Oid dboid)
{
	TimestampTz now = GetCurrentTimestamp();
	int			free_slot = -1;
	bool		claimed = false;

	SpinLockAcquire(&workers->mutex);
	for (int i = 0; i < MAX_LEDGER_WORKERS; i++)
	{
		WorkerSlot *s = &workers->slots[i];

		if (s->dboid == dboid && s->pid == 0 &&
			TimestampDifferenceExceeds(s->claimed_at, now, START_TIMEOUT_MS))
			s->dboid = InvalidOid;	/* its worker never started */
		if (s->dboid == dboid)
		{
			free_slot = -1;
			break;
		}
		if (s->dboid == InvalidOid && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		workers->slots[free_slot].dboid = dboid;
		workers->slots[free_slot].pid = 0;
		workers->slots[free_slot].claimed_at = now;
		claimed = true;
	}
	SpinLockRelease(&workers->mutex);
	return claimed;
}

/* Free the slot of a database held by worker "pid" (0: not started yet). */
static void
release_slot(Oid dboid, pid_t pid)
{
	SpinLockAcquire(&workers->mutex);
	for (int i = 0; i < MAX_LEDGER_WORKERS; i++)
		if (workers->slots[i].dboid == dboid &&
			(workers->slots[i].pid == pid || workers->slots[i].pid == 0))
			workers->slots[i].dboid = InvalidOid;
	SpinLockRelease(&workers->mutex);
}

static void
start_worker(Oid dboid)
{
	BackgroundWorker w;

	if (!claim_slot(dboid))
		return;
	fill_worker(&w, "ledger worker", "ledger_worker_main");
	w.bgw_main_arg = ObjectIdGetDatum(dboid);
	if (!RegisterDynamicBackgroundWorker(&w, NULL))
	{
		release_slot(dboid, 0);
		ereport(LOG,
				(errmsg("could not start the ledger worker of database %u", dboid),
				 errhint("Raise max_worker_processes; until then, ledger_digest() seals on demand.")));
	}
}

/*
 * Whether a database's worker is running.  A claim whose worker has not
 * shown up yet does not count: claim_slot() decides whether it is stale.
 */
static bool
has_worker(Oid dboid)
{
	bool		running = false;

	SpinLockAcquire(&workers->mutex);
	for (int i = 0; i < MAX_LEDGER_WORKERS; i++)
		if (workers->slots[i].dboid == dboid && workers->slots[i].pid != 0)
			running = true;
	SpinLockRelease(&workers->mutex);
	return running;
}

/*
 * Start this database's worker if it has none; called at every ledger
 * commit, so the common case is one pass over the slots.
 */
void
ledger_worker_ensure(void)
{
	HeapTuple	tup;
	bool		is_template = false;

	if (IsBinaryUpgrade || !IsUnderPostmaster || RecoveryInProgress() ||
		has_worker(MyDatabaseId))
		return;
	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (HeapTupleIsValid(tup))
	{
		is_template = ((Form_pg_database) GETSTRUCT(tup))->datistemplate;
		ReleaseSysCache(tup);
	}
	/* A worker in a template would keep CREATE DATABASE from copying it. */
	if (!is_template)
		start_worker(MyDatabaseId);
}

static void
signal_worker(Oid dboid, int sig)
{
	pid_t		pid = 0;

	if (workers == NULL || !OidIsValid(dboid))
		return;
	SpinLockAcquire(&workers->mutex);
	for (int i = 0; i < MAX_LEDGER_WORKERS; i++)
		if (workers->slots[i].dboid == dboid)
			pid = workers->slots[i].pid;
	SpinLockRelease(&workers->mutex);
	if (pid != 0)
		kill(pid, sig);
}

/* Ask a database's worker to leave, for commands that need it alone. */
void
ledger_worker_stop(Oid dboid)
{
	signal_worker(dboid, SIGTERM);
}

/*
 * Wake a database's worker at once, e.g. for a key change just queued:
 * its SIGUSR1 handler sets its latch.
 */
void
ledger_worker_wake(Oid dboid)
{
	signal_worker(dboid, SIGUSR1);
}

/* ------------------------------------------------------------------------
 * The starter
 * ------------------------------------------------------------------------
 */

void
ledger_starter_main(Datum arg)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
			start_worker(db->oid);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	proc_exit(0);
}

/* ------------------------------------------------------------------------
 * The per-database worker
 * ------------------------------------------------------------------------
 */

static void
worker_exit(int code, Datum arg)
{
	release_slot(DatumGetObjectId(arg), MyProcPid);
}

static void
announce(Oid dboid)
{
	SpinLockAcquire(&workers->mutex);
	for (int i = 0; i < MAX_LEDGER_WORKERS; i++)
		if (workers->slots[i].dboid == dboid)
			workers->slots[i].pid = MyProcPid;
	SpinLockRelease(&workers->mutex);
}

/* When the worker last did its periodic duties. */
typedef struct WorkerClock
{
	TimestampTz last_check;		/* of the provider key */
	TimestampTz last_seal;
} WorkerClock;

static bool
due(TimestampTz last, int interval_ms, TimestampTz now)
{
	return now >= TimestampTzPlusMilliseconds(last, interval_ms);
}

/* Milliseconds until the next periodic duty, at the intervals in force. */
static long
ms_to_next_duty(const WorkerClock *clock)
{
	TimestampTz now = GetCurrentTimestamp();

	return Min(TimestampDifferenceMilliseconds(now,
											   TimestampTzPlusMilliseconds(clock->last_check,
																		   ledger_key_check_interval)),
			   TimestampDifferenceMilliseconds(now,
											   TimestampTzPlusMilliseconds(clock->last_seal,
																		   ledger_seal_interval)));
}

/*
 * Run "fn" in a subtransaction of the worker's, so that its error does
 * not end the worker (an error is FATAL in a background worker) nor roll
 * back the round's other work.  Returns the error, or NULL; a cancel or a
 * shutdown is raised again.
 */
ErrorData *
ledger_worker_try(void (*fn) (void))
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile e = NULL;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		fn();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (e->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			e->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(e);
	}
	PG_END_TRY();
	return e;
}

/*
 * One round of work in its own transaction: check the provider key and
 * apply the rotation policies, and seal, when each is due, and record the
 * key events waiting in shared memory.  A wake-up (a key change or a key event) does not seal early:
 * sealing keeps its interval.  Returns false once there is no ledger.
 */
static bool
work_once(WorkerClock *clock)
{
	LedgerBlock newest;
	bool		installed;
	TimestampTz now = GetCurrentTimestamp();

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	installed = OidIsValid(get_extension_oid("ledger", true)) &&
		OidIsValid(ledger_relation_oid("blocks"));
	if (installed && due(clock->last_check, ledger_key_check_interval, now))
	{
		ErrorData  *e;

		pgstat_report_activity(STATE_RUNNING, "checking the provider key");
		ledger_key_status_check();
		if ((e = ledger_worker_try(ledger_key_rotation_policy)) != NULL)
			ereport(WARNING,
					(errmsg("could not apply the ledger's key rotation policy: %s", e->message),
					 e->detail ? errdetail("%s", e->detail) : 0));
		clock->last_check = now;
	}
	if (installed && due(clock->last_seal, ledger_seal_interval, now))
	{
		pgstat_report_activity(STATE_RUNNING, "sealing");
		(void) ledger_chain_seal(&newest, false);
		clock->last_seal = now;
	}
	if (installed)
		ledger_key_events_flush();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return installed;
}

void
ledger_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	WorkerClock clock = {0};

	before_shmem_exit(worker_exit, arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	announce(dboid);

	while (work_once(&clock))
	{
		pgstat_report_activity(STATE_RUNNING, "changing keys");
		ledger_key_changes_run();
		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms_to_next_duty(&clock), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	proc_exit(0);
}
