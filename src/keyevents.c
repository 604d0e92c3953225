/*-------------------------------------------------------------------------
 *
 * keyevents.c
 *	  ledger.key_events: the audit trail of every use of a provider key
 *	  and every key change.
 *
 * A use of the provider key happens in any session, often in a read-only
 * transaction that may also roll back, and the record of it must stay
 * either way.  So events go first into a ring in shared memory, and the
 * ledger worker of the database moves them into ledger.key_events (an
 * insert-only table) in its own transactions, in every round: at least
 * every ledger.key_check_interval or ledger.seal_interval, whichever is
 * shorter.  When the ring is full, the oldest event is dropped and
 * counted, and the count is recorded as an event of its own.  A standby cannot
 * write: there, events go to the server log instead.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define KEY_EVENT_SLOTS		1024
#define KEY_EVENTS_TRANCHE	"ledger key events"
#define EVENT_TEXT_LEN		200

typedef struct KeyEvent
{
	Oid			dboid;			/* InvalidOid: free */
	TimestampTz at;
	char		event[32];
	char		provider[NAMEDATALEN];	/* "": none */
	char		provider_key_id[LEDGER_PROVIDER_KEY_ID_LEN + 1];
	int32		provider_key_version;
	int32		node_id;		/* the encryption context: the root key */
	int32		node_version;
	Oid			role;
	int64		change_id;		/* 0: none */
	char		outcome[EVENT_TEXT_LEN];
} KeyEvent;

typedef struct KeyEventRing
{
	LWLock	   *lock;
	int64		lost;			/* events dropped from a full ring */
	KeyEvent	events[KEY_EVENT_SLOTS];
} KeyEventRing;

static KeyEventRing *ring = NULL;

/* Columns of ledger.key_events (sql/ledger--0.1.sql). */
enum
{
	Anum_event_id = 1,
	Anum_event_at,
	Anum_event_event,
	Anum_event_provider,
	Anum_event_provider_key_id,
	Anum_event_provider_key_version,
	Anum_event_node_id,
	Anum_event_node_version,
	Anum_event_role,
	Anum_event_change_id,
	Anum_event_outcome,
	Natts_events = Anum_event_outcome
};

Size
ledger_key_events_shmem_size(void)
{
	return sizeof(KeyEventRing);
}

void
ledger_key_events_shmem_init(void)
{
	bool		found;

	ring = ShmemInitStruct("ledger key events", sizeof(KeyEventRing), &found);
	if (!found)
	{
		ring->lock = &(GetNamedLWLockTranche(KEY_EVENTS_TRANCHE))->lock;
		ring->lost = 0;
		memset(ring->events, 0, sizeof(ring->events));
	}
}

void
ledger_key_events_shmem_request(void)
{
	RequestNamedLWLockTranche(KEY_EVENTS_TRANCHE, 1);
}

/*
 * Record a key event.  Safe in error recovery: no catalog access, no
 * allocation.  "ref" and "change_id" may be NULL and 0; "outcome" is
 * "ok" or why it failed, never key material.
 */
void
ledger_key_event(const char *event, const LedgerProviderRef *ref,
				 int32 node_id, int32 node_version, int64 change_id,
				 const char *outcome)
{
	KeyEvent	e;
	KeyEvent   *slot = NULL;

	memset(&e, 0, sizeof(e));
	e.dboid = MyDatabaseId;
	e.at = GetCurrentTimestamp();
	strlcpy(e.event, event, sizeof(e.event));
	if (ref != NULL)
	{
		strlcpy(e.provider, ref->provider, sizeof(e.provider));
		strlcpy(e.provider_key_id, ref->key_id, sizeof(e.provider_key_id));
		e.provider_key_version = ref->version;
	}
	e.node_id = node_id;
	e.node_version = node_version;
	e.role = GetOuterUserId();
	e.change_id = change_id;
	strlcpy(e.outcome, outcome, sizeof(e.outcome));

	if (RecoveryInProgress() || ring == NULL)
	{
		ereport(LOG,
				(errmsg("ledger key event: %s of provider key %s version %d of provider \"%s\" for root key %d version %d by role %u: %s",
						event, e.provider_key_id, e.provider_key_version, e.provider,
						node_id, node_version, e.role, outcome)));
		return;
	}
	/*
	 * A free slot, or else the oldest event, which is dropped and counted:
	 * events of a database whose worker does not run must not keep every
	 * other database's out.
	 */
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	for (int i = 0; i < KEY_EVENT_SLOTS; i++)
	{
		KeyEvent   *s = &ring->events[i];

		if (slot == NULL || (slot->dboid != InvalidOid &&
							 (s->dboid == InvalidOid || s->at < slot->at)))
			slot = s;
	}
	if (slot->dboid != InvalidOid)
		ring->lost++;
	*slot = e;
	LWLockRelease(ring->lock);
}

static void
insert_event(Relation rel, const KeyEvent *e)
{
	Datum		values[Natts_events];
	bool		nulls[Natts_events] = {0};
	char	   *role = OidIsValid(e->role) ? GetUserNameFromId(e->role, true) : NULL;

	values[Anum_event_id - 1] =
		Int64GetDatum(nextval_internal(ledger_relation_oid("key_event_id_seq"), false));
	values[Anum_event_at - 1] = TimestampTzGetDatum(e->at);
	values[Anum_event_event - 1] = CStringGetTextDatum(e->event);
	values[Anum_event_provider - 1] = CStringGetTextDatum(e->provider);
	nulls[Anum_event_provider - 1] = (e->provider[0] == '\0');
	values[Anum_event_provider_key_id - 1] = CStringGetTextDatum(e->provider_key_id);
	nulls[Anum_event_provider_key_id - 1] = (e->provider_key_id[0] == '\0');
	values[Anum_event_provider_key_version - 1] = Int32GetDatum(e->provider_key_version);
	nulls[Anum_event_provider_key_version - 1] = (e->provider_key_version == 0);
	values[Anum_event_node_id - 1] = Int32GetDatum(e->node_id);
	values[Anum_event_node_version - 1] = Int32GetDatum(e->node_version);
	nulls[Anum_event_node_id - 1] = nulls[Anum_event_node_version - 1] = (e->node_id == 0);
	values[Anum_event_role - 1] = role ? DirectFunctionCall1(namein, CStringGetDatum(role)) : (Datum) 0;
	nulls[Anum_event_role - 1] = (role == NULL);
	values[Anum_event_change_id - 1] = Int64GetDatum(e->change_id);
	nulls[Anum_event_change_id - 1] = (e->change_id == 0);
	values[Anum_event_outcome - 1] = CStringGetTextDatum(e->outcome);
	CatalogTupleInsert(rel, heap_form_tuple(RelationGetDescr(rel), values, nulls));
}

static int
event_time_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const KeyEvent *) a)->at;
	TimestampTz y = ((const KeyEvent *) b)->at;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Move this database's events from the ring into ledger.key_events, in the
 * caller's transaction (the worker's).  An event leaves the ring when it
 * is copied; if the transaction then fails, it is lost with it, which the
 * worker's transaction, doing nothing else that can fail, makes rare.
 */
void
ledger_key_events_flush(void)
{
	Relation	rel;
	KeyEvent   *batch = palloc(sizeof(KeyEvent) * KEY_EVENT_SLOTS);
	int			n = 0;
	int64		lost;

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	for (int i = 0; i < KEY_EVENT_SLOTS; i++)
		if (ring->events[i].dboid == MyDatabaseId)
		{
			batch[n++] = ring->events[i];
			ring->events[i].dboid = InvalidOid;
		}
	lost = ring->lost;
	ring->lost = 0;
	LWLockRelease(ring->lock);
	if (n == 0 && lost == 0)
		return;
	qsort(batch, n, sizeof(KeyEvent), event_time_cmp);
	rel = table_open(ledger_relation_oid("key_events"), RowExclusiveLock);
	for (int i = 0; i < n; i++)
		insert_event(rel, &batch[i]);
	if (lost > 0)
	{
		KeyEvent	e;

		memset(&e, 0, sizeof(e));
		e.at = GetCurrentTimestamp();
		strlcpy(e.event, "events lost", sizeof(e.event));
		snprintf(e.outcome, sizeof(e.outcome),
				 "%lld key events of the cluster found the event ring full", (long long) lost);
		insert_event(rel, &e);
	}
	table_close(rel, NoLock);
}
