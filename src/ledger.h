/*-------------------------------------------------------------------------
 *
 * ledger.h
 *	  Declarations shared by the ledger extension's source files.
 *
 * Each .c file in src/ owns one responsibility; this header only names the
 * entry points they offer one another.  See docs/internals.md for the
 * physical tuple format and the guard rails.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LEDGER_H
#define LEDGER_H

#include "postgres.h"

#include "access/htup.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "utils/rel.h"

#define LEDGER_KEY_LEN		32	/* AES-256 */
#define LEDGER_NONCE_LEN	12	/* GCM, random */
#define LEDGER_TAG_LEN		16
#define LEDGER_SALT_LEN		16
#define LEDGER_HASH_LEN		32	/* SHA-256 */

/* A wrapped key: nonce, ciphertext of the key, tag. */
#define LEDGER_WRAPPED_LEN	(LEDGER_NONCE_LEN + LEDGER_KEY_LEN + LEDGER_TAG_LEN)

/* Our own SQLSTATEs live in class "LD" so clients can tell them apart. */
#define ERRCODE_LEDGER_KEY_INACCESSIBLE	MAKE_SQLSTATE('L','D','0','0','1')

/* ledger.c */
extern bool ledger_loaded_in_database(void);
extern Oid	ledger_am_oid(void);
extern Oid	ledger_schema_oid(void);
extern Oid	ledger_relation_oid(const char *relname);
extern bool ledger_is_ledger_relation(Relation rel);
extern bool ledger_is_ledger_relid(Oid relid);

/* guc.c */
extern char *ledger_keyring_file;
extern bool ledger_analyze_sealed_columns;
extern bool ledger_default_deletion_protection;
extern void ledger_define_gucs(void);

/* crypto.c */
extern void ledger_random_bytes(uint8 *buf, int len);
typedef struct LedgerCipher LedgerCipher;
extern LedgerCipher *ledger_cipher_create(const uint8 *key);
extern void ledger_cipher_destroy(LedgerCipher *c);
extern void ledger_cipher_seal(LedgerCipher *c, const uint8 *nonce,
							   const uint8 *aad, int aadlen,
							   const uint8 *plain, int len, uint8 *out);
extern bool ledger_cipher_open(LedgerCipher *c, const uint8 *nonce,
							   const uint8 *aad, int aadlen,
							   const uint8 *sealed, int len, uint8 *out);
extern void ledger_aead_seal(const uint8 *key, const uint8 *nonce,
							 const uint8 *aad, int aadlen,
							 const uint8 *plain, int len, uint8 *out);
extern bool ledger_aead_open(const uint8 *key, const uint8 *nonce,
							 const uint8 *aad, int aadlen,
							 const uint8 *sealed, int len, uint8 *out);
extern void ledger_sha256(const uint8 *data, size_t len, uint8 *out);
extern void ledger_wipe(void *buf, size_t len);

/* provider_file.c: the embedded keyring-file provider */
#define LEDGER_PROVIDER_KEY_ID_LEN 36
typedef struct LedgerProviderRef
{
	char		key_id[LEDGER_PROVIDER_KEY_ID_LEN + 1];
	int32		version;
} LedgerProviderRef;
extern void ledger_provider_wrap(const uint8 *key, const uint8 *aad, int aadlen,
								 bool may_create, uint8 *wrapped,
								 LedgerProviderRef *ref);
extern void ledger_provider_unwrap(const uint8 *wrapped,
								   const LedgerProviderRef *ref,
								   const uint8 *aad, int aadlen, uint8 *key);

/* keys.c: the key hierarchy */
extern void ledger_keys_bootstrap(void);
extern int32 ledger_create_data_key(int64 table_id);
extern LedgerCipher *ledger_data_cipher(int32 key_id);

/* catalog.c: ledger.tables, the plaintext set and per-table caches */
typedef struct LedgerColumn
{
	Oid			typoid;			/* base type (domains resolved) */
	int32		typmod;
	Oid			typioparam;
	int16		typlen;
	bool		typbyval;
	bool		dropped;
	bool		text_io;		/* no binary I/O: output/input functions */
	FmgrInfo	send;			/* send, or output if text_io */
	FmgrInfo	recv;			/* receive, or input if text_io */
} LedgerColumn;

typedef struct LedgerTable
{
	Oid			relid;			/* hash key */
	bool		valid;
	int64		table_id;		/* stable across dump/restore */
	int32		data_key_id;
	bool		deletion_protection;
	Bitmapset  *plainset;		/* attnums kept in the clear */
	int8		indexes_plain;	/* indexes only use plainset: 1/0, -1 unknown */
	int			natts;
	LedgerColumn *columns;		/* natts entries */
} LedgerTable;

extern LedgerTable *ledger_table(Relation rel);
extern void ledger_register_table(Oid relid);
extern void ledger_forget_table(Oid relid);
extern void ledger_column_added(Oid relid, AttrNumber attnum);
extern void ledger_extend_plainset(Relation rel, Bitmapset *attnums);
extern void ledger_set_protection(Oid relid, bool on);
extern void ledger_extend_plainset_soon(Relation rel, Bitmapset *attnums);
extern void ledger_apply_pending_plainsets(void);
extern void ledger_forget_pending_plainsets(void);
extern void ledger_catalog_init(void);
extern Bitmapset *ledger_attnums(const Bitmapset *offset_attnos);
extern Bitmapset *ledger_index_attnums(Relation rel);
extern Bitmapset *ledger_plainset_of(Oid relid);

/* payload.c: canonical rows, sealing and opening */
#define LEDGER_OP_INSERT	'I'
#define LEDGER_OP_UPDATE	'U'
#define LEDGER_OP_DELETE	'D'

typedef struct LedgerRevision
{
	int64		table_id;
	int64		doc_id;
	int32		version;
	char		op;
	int32		key_id;			/* 0 for a tombstone */
	bytea	   *payload;		/* header + ciphertext; NULL for a tombstone */
	uint8		data_hash[LEDGER_HASH_LEN];
	uint8		revision_hash[LEDGER_HASH_LEN];
} LedgerRevision;

typedef struct LedgerHeader
{
	int64		doc_id;
	int32		version;
	int32		key_id;
	bool		external;
} LedgerHeader;

extern HeapTuple ledger_seal(Relation rel, TupleTableSlot *slot,
							 int64 doc_id, int32 version, char op,
							 LedgerRevision *rev);
extern void ledger_open(Relation rel, HeapTuple phys, TupleTableSlot *dst);
extern void ledger_read_header(Relation rel, HeapTuple phys, LedgerHeader *hdr);
extern void ledger_tombstone(Relation rel, const LedgerHeader *old,
							 LedgerRevision *rev);
extern void ledger_copy_xact_fields(HeapTupleHeader dst, HeapTupleHeader src);
extern HeapTuple ledger_rewrite_tuple(Relation rel, HeapTuple phys,
									  const Bitmapset *plainset,
									  TupleTableSlot *scratch);
extern bool ledger_plain_values_match(Relation rel, HeapTuple phys,
									  TupleTableSlot *opened,
									  const Bitmapset *attnums);

/* journal.c */
extern void ledger_journal_append(const LedgerRevision *rev);
extern void ledger_journal_append_many(const LedgerRevision *revs, int n);
extern bytea *ledger_journal_payload(int64 table_id, int64 doc_id, int32 version,
									 bool (*match) (bytea *payload, void *arg),
									 void *arg);
extern int64 ledger_next_document_id(void);
extern bool ledger_xact_wrote_journal(void);
extern void ledger_journal_xact_end(void);

/* tableam.c: our scan wraps heap's, with a private buffer slot. */
typedef struct LedgerScanDescData
{
	TableScanDescData rs_base;	/* what the executor sees */
	TableScanDesc heap;			/* heap's own scan */
	TupleTableSlot *hslot;		/* private buffer slot */
} LedgerScanDescData;
typedef LedgerScanDescData *LedgerScanDesc;

extern const TableAmRoutine *ledger_routine(void);
extern TupleTableSlot *ledger_private_slot(Relation rel);
extern void ledger_tableam_xact_end(void);
extern bool ledger_header_at(Relation rel, ItemPointer tid, LedgerHeader *hdr);

/* index_build.c */
extern double ledger_index_build_range_scan(Relation table_rel,
											Relation index_rel,
											struct IndexInfo *index_info,
											bool allow_sync,
											bool anyvisible,
											bool progress,
											BlockNumber start_blockno,
											BlockNumber numblocks,
											IndexBuildCallback callback,
											void *callback_state,
											TableScanDesc scan);
extern void ledger_index_validate_scan(Relation table_rel,
									   Relation index_rel,
									   struct IndexInfo *index_info,
									   Snapshot snapshot,
									   struct ValidateIndexState *state);
extern void ledger_check_index_columns(Relation rel, Bitmapset *attnums,
									   const char *what);

/* rewrite.c */
extern bool ledger_rewrite_allowed(void);
extern void ledger_allow_rewrites(bool allow);
extern void ledger_relation_copy_for_cluster(Relation OldTable,
											 Relation NewTable,
											 Relation OldIndex, bool use_sort,
											 TransactionId OldestXmin,
											 TransactionId *xid_cutoff,
											 MultiXactId *multi_cutoff,
											 double *num_tuples,
											 double *tups_vacuumed,
											 double *tups_recently_dead);
extern bool ledger_table_holds_rows(Relation rel);
extern void ledger_reseal(Oid relid, Bitmapset *plainset);

/* guard.c */
extern void ledger_guard_init(void);

#endif							/* LEDGER_H */
