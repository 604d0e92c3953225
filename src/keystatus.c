/*-------------------------------------------------------------------------
 *
 * keystatus.c
 *	  Whether ledger data may be used now: the key status of each ledger,
 *	  the generation counter, the key grant and the transport rule.
 *
 * A ledger's status is ENABLED until a use or a check of its provider key
 * fails, and KMS_KEY_INACCESSIBLE from then until a check succeeds.  The
 * worker checks every ledger.key_check_interval; a backend refused while
 * the key is inaccessible checks too, at most once per interval for the
 * whole cluster, so a ledger without a running worker (a standby) also
 * recovers by itself.
 *
 * Every change of status bumps one cluster-wide generation counter.  Each
 * access to ledger data reads it (one atomic read); a backend that sees it
 * move drops every unwrapped key it holds and re-reads its ledger's status.
 * Unwrapped keys live only in backends (keys.c), never in shared memory,
 * so this is all it takes for the whole cluster to stop using a key.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <sys/socket.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ledger_status);

/* Ledgers whose status is kept; as many as there can be workers. */
#define MAX_KEY_STATES	64
#define REASON_LEN		256

#define INACCESSIBLE_MSG "ledger does not have access to its provider key"

typedef struct KeyState
{
	Oid			dboid;			/* InvalidOid: free */
	bool		inaccessible;
	TimestampTz since;			/* when the status began; 0: unknown */
	TimestampTz last_check;		/* last check, by anyone */
	TimestampTz last_ok;		/* last successful check */
	char		reason[REASON_LEN]; /* why the key is inaccessible */
	char		hint[REASON_LEN];	/* the failing provider's hint */
} KeyState;

typedef struct KeyStatusShared
{
	pg_atomic_uint64 generation;
	slock_t		mutex;
	KeyState	states[MAX_KEY_STATES];
} KeyStatusShared;

static KeyStatusShared *shared = NULL;

/* What this backend last read of its own ledger's status. */
static uint64 seen_generation = 0;
static bool refused = false;

/*
 * The key grant of the two users checked (see check_grant()), cached
 * until role memberships change.
 */
typedef struct GrantCache
{
	Oid			user;			/* InvalidOid: empty */
	bool		held;
} GrantCache;
static GrantCache grants[2];

Size
ledger_key_status_shmem_size(void)
{
	return sizeof(KeyStatusShared);
}

void
ledger_key_status_shmem_init(void)
{
	bool		found;

	shared = ShmemInitStruct("ledger key status", sizeof(KeyStatusShared), &found);
	if (!found)
	{
		pg_atomic_init_u64(&shared->generation, 1);
		SpinLockInit(&shared->mutex);
		memset(shared->states, 0, sizeof(shared->states));
	}
}

/*
 * The state of this database, claimed if it has none and "claim": a free
 * entry, or else the one checked longest ago.  A live ledger is checked
 * every interval by its worker, so that is a dropped database's.  Called
 * with the mutex held.
 */
static KeyState *
my_state_locked(bool claim)
{
	KeyState   *victim = NULL;

	for (int i = 0; i < MAX_KEY_STATES; i++)
	{
		KeyState   *s = &shared->states[i];

		if (s->dboid == MyDatabaseId)
			return s;
		if (victim == NULL ||
			(victim->dboid != InvalidOid &&
			 (s->dboid == InvalidOid || s->last_check < victim->last_check)))
			victim = s;
	}
	if (!claim)
		return NULL;
	memset(victim, 0, sizeof(KeyState));
	victim->dboid = MyDatabaseId;
	return victim;
}

/*
 * Record the outcome of a use or check of the provider key, and log a
 * change of status once.  Called from error recovery too: no catalog
 * access here.
 */
static void
record_outcome(bool ok, const char *reason, const char *hint)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		changed;
	KeyState   *s;

	SpinLockAcquire(&shared->mutex);
	s = my_state_locked(true);
	changed = (s->inaccessible == ok);
	if (changed || s->since == 0)
		s->since = now;
	s->inaccessible = !ok;
	s->last_check = now;
	if (ok)
	{
		s->last_ok = now;
		s->reason[0] = s->hint[0] = '\0';
	}
	else
	{
		strlcpy(s->reason, reason, REASON_LEN);
		strlcpy(s->hint, hint ? hint : "", REASON_LEN);
	}
	SpinLockRelease(&shared->mutex);
	/* This backend knows the outcome before it sees the generation move. */
	refused = !ok;
	if (!changed)
		return;
	pg_atomic_fetch_add_u64(&shared->generation, 1);
	if (ok)
		ereport(LOG,
				(errmsg("the ledger of database %u has access to its provider key again",
						MyDatabaseId)));
	else
		ereport(LOG,
				(errmsg("the ledger of database %u lost access to its provider key",
						MyDatabaseId),
				 errdetail_internal("%s", reason),
				 errhint("Reads and writes of its ledger data are refused until the key works again.")));
}

/*
 * What failed, from the error that reported a failing provider: its detail
 * where the message only says that the key is inaccessible, else its
 * message and detail.
 */
const char *
ledger_key_failure_reason(const ErrorData *e)
{
	if (e->detail == NULL)
		return e->message;
	if (strcmp(e->message, INACCESSIBLE_MSG) == 0)
		return e->detail;
	return psprintf("%s: %s", e->message, e->detail);
}

/* Record a failure, so that later refusals can say what failed and hint. */
void
ledger_key_status_failed(const ErrorData *e)
{
	record_outcome(false, ledger_key_failure_reason(e), e->hint);
}

void
ledger_key_status_ok(void)
{
	record_outcome(true, NULL, NULL);
}

/*
 * The worker's periodic check of the provider key.  A failing provider
 * raises an error, which the unwrap has recorded already; it runs in a
 * subtransaction so that it does not end the worker's transaction.  Any
 * other error (a lock timeout, the extension being dropped) says nothing
 * about the key: it is logged, and the status stays as it was.
 */
void
ledger_key_status_check(void)
{
	ErrorData  *e = ledger_worker_try(ledger_keys_check);

	if (e != NULL && e->sqlerrcode != ERRCODE_LEDGER_KEY_INACCESSIBLE)
		ereport(WARNING,
				(errmsg("could not check the ledger's provider key: %s", e->message)));
}

/* Claim the next check if none ran within the interval. */
static bool
check_due(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		due = false;
	KeyState   *s;

	SpinLockAcquire(&shared->mutex);
	s = my_state_locked(true);
	if (TimestampDifferenceExceeds(s->last_check, now, ledger_key_check_interval))
	{
		s->last_check = now;
		due = true;
	}
	SpinLockRelease(&shared->mutex);
	return due;
}

/* Re-read this ledger's status after the generation moved. */
static void
reread_status(uint64 generation)
{
	KeyState   *s;

	ledger_keys_forget();
	SpinLockAcquire(&shared->mutex);
	s = my_state_locked(false);
	refused = (s != NULL && s->inaccessible);
	SpinLockRelease(&shared->mutex);
	seen_generation = generation;
}

static void
refuse(void)
{
	char		reason[REASON_LEN] = "";
	char		hint[REASON_LEN] = "";
	TimestampTz since = 0;
	KeyState   *s;

	SpinLockAcquire(&shared->mutex);
	s = my_state_locked(false);
	if (s != NULL)
	{
		strlcpy(reason, s->reason, REASON_LEN);
		strlcpy(hint, s->hint, REASON_LEN);
		since = s->since;
	}
	SpinLockRelease(&shared->mutex);
	ereport(ERROR,
			(errcode(ERRCODE_LEDGER_KEY_INACCESSIBLE),
			 errmsg(INACCESSIBLE_MSG),
			 errdetail("The provider key has been inaccessible since %s: %s",
					   timestamptz_to_str(since), reason),
			 errhint("%s The ledger serves again within ledger.key_check_interval "
					 "of that, with no action needed.",
					 hint[0] ? hint : "Restore access to the provider key.")));
}

/*
 * Refuse the use of the ledger's keys while they are inaccessible.  While
 * inaccessible, one access per interval in the whole cluster tries the
 * provider itself: its unwrap records the outcome, and a failure reaches
 * the caller with the provider's own error.  So a ledger comes back by
 * itself even where no worker checks (a standby).
 */
void
ledger_check_key_status(void)
{
	uint64		generation = pg_atomic_read_u64(&shared->generation);

	if (generation != seen_generation)
		reread_status(generation);
	if (!refused)
		return;
	if (IsTransactionState() && !IsInParallelMode())
		ledger_worker_ensure();
	if (!check_due())
		refuse();
	/* Our turn to try: a failure raises the provider's own error. */
	ledger_keys_check();
	reread_status(pg_atomic_read_u64(&shared->generation));
	if (refused)
		refuse();
}

static void
grant_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	memset(grants, 0, sizeof(grants));
}

static bool
holds_grant(Oid user, int slot)
{
	if (grants[slot].user != user)
	{
		Oid			role = get_role_oid(LEDGER_KEY_USER_ROLE, true);

		grants[slot].held = superuser_arg(user) ||
			(OidIsValid(role) && has_privs_of_role(user, role));
		grants[slot].user = user;
	}
	return grants[slot].held;
}

/*
 * Both the current user and the session's role (SET ROLE counts) need the
 * key grant.  The current user alone would let a grant holder's session
 * run code of a role without it (a SECURITY DEFINER trigger, an index
 * expression evaluated by ANALYZE); the session's role alone would let the
 * extension's own queries, which run as its owner, read for anyone.
 */
static void
check_grant(void)
{
	if (!ledger_require_key_grant)
		return;
	if (!holds_grant(GetUserId(), 0) || !holds_grant(GetOuterUserId(), 1))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to use the keys of the ledger"),
				 errdetail("Reading or writing rows of ledger tables needs the key grant, "
						   "membership in role \"%s\", besides privileges on the table, "
						   "for the session's role and for the role that code runs as.",
						   LEDGER_KEY_USER_ROLE),
				 errhint("An administrator can grant it with GRANT %s TO the role.",
						 LEDGER_KEY_USER_ROLE)));
}

/* TCP without TLS or GSSAPI encryption; Unix sockets are local. */
static bool
insecure_transport(void)
{
	if (MyProcPort == NULL || MyProcPort->laddr.addr.ss_family == AF_UNIX)
		return false;
	if (MyProcPort->ssl_in_use)
		return false;
#ifdef ENABLE_GSS
	if (be_gssapi_get_enc(MyProcPort))
		return false;
#endif
	return true;
}

static void
check_transport(void)
{
	if (ledger_require_secure_transport && insecure_transport())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("ledger data cannot be used over an unencrypted connection"),
				 errdetail("This session is a TCP connection without TLS, and "
						   "ledger.require_secure_transport is on."),
				 errhint("Connect with sslmode=require (or stronger) or over a Unix-domain socket.")));
}

/*
 * Refuse any use of a ledger table's data, rows or not, unless the
 * connection and the ledger's key allow it: called as a scan, an index
 * fetch or a write begins, so that even a read of the plaintext set, or
 * of an empty table, is refused while the key is inaccessible.
 */
void
ledger_check_use(void)
{
	check_transport();
	ledger_check_key_status();
}

/*
 * Refuse the use of a data key unless the connection, the key grant and
 * the ledger's key all allow it.  Every read and write of a sealed row
 * uses one; what opens no sealed row (VACUUM FULL copying sealed tuples,
 * an index build on an empty table) needs no grant.  The common case is
 * three cached comparisons.
 */
void
ledger_check_access(void)
{
	check_transport();
	check_grant();
	ledger_check_key_status();
}

void
ledger_key_status_init(void)
{
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, grant_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, grant_invalidate, (Datum) 0);
}

/*
 * ledger_status(): the ledger's encryption description, like QLDB's
 * DescribeLedger.
 */
Datum
ledger_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[12];
	bool		nulls[12] = {0};
	LedgerRootInfo root;
	KeyState	s = {0};
	KeyState   *p;
	char	   *change;
	int64		done;
	int64		total;
	bool		changing = ledger_key_change_progress(&change, &done, &total);
	const char *status;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	ledger_keys_root_info(&root);
	SpinLockAcquire(&shared->mutex);
	p = my_state_locked(false);
	if (p != NULL)
		s = *p;
	SpinLockRelease(&shared->mutex);

	values[0] = CStringGetTextDatum(root.provider);
	values[1] = CStringGetTextDatum(root.provider_key_id);
	values[2] = CStringGetTextDatum(root.provider_key_alias);
	nulls[2] = (root.provider_key_alias[0] == '\0');
	values[3] = Int32GetDatum(root.provider_key_version);
	nulls[3] = (root.provider_key_version == 0);
	values[4] = Int32GetDatum(root.version);
	status = s.inaccessible ? "KMS_KEY_INACCESSIBLE" : changing ? "UPDATING" : "ENABLED";
	values[5] = CStringGetTextDatum(status);
	values[6] = TimestampTzGetDatum(s.since);
	nulls[6] = !s.inaccessible;
	values[7] = TimestampTzGetDatum(s.last_check);
	nulls[7] = (s.last_check == 0);
	values[8] = TimestampTzGetDatum(s.last_ok);
	nulls[8] = (s.last_ok == 0);
	values[9] = changing ? CStringGetTextDatum(change) : (Datum) 0;
	values[10] = Int64GetDatum(done);
	values[11] = Int64GetDatum(total);
	nulls[9] = nulls[10] = !changing;
	nulls[11] = !changing || total < 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
