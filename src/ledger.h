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
#include "access/transam.h"
#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "keyring.h"
#include "layout.h"
#include "lib/stringinfo.h"
#include "nodes/bitmapset.h"
#include "port/pg_bswap.h"
#include "storage/dsm.h"
#include "storage/shm_toc.h"
#include "utils/acl.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#define LEDGER_KEY_LEN		32	/* AES-256 */
#define LEDGER_NONCE_LEN	12	/* GCM, random */
#define LEDGER_TAG_LEN		16
#define LEDGER_SALT_LEN		16
#define LEDGER_HASH_LEN		32	/* SHA-256 */

/* A wrapped key: nonce, ciphertext of the key, tag. */
#define LEDGER_WRAPPED_LEN	(LEDGER_NONCE_LEN + LEDGER_KEY_LEN + LEDGER_TAG_LEN)

/* Big-endian integers, the byte order of every layout we hash or seal. */
static inline void
put_be16(uint8 *p, uint16 v)
{
	v = pg_hton16(v);
	memcpy(p, &v, 2);
}

static inline void
put_be32(uint8 *p, uint32 v)
{
	v = pg_hton32(v);
	memcpy(p, &v, 4);
}

static inline void
put_be64(uint8 *p, uint64 v)
{
	v = pg_hton64(v);
	memcpy(p, &v, 8);
}

static inline uint16
get_be16(const uint8 *p)
{
	uint16		v;

	memcpy(&v, p, 2);
	return pg_ntoh16(v);
}

static inline uint32
get_be32(const uint8 *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return pg_ntoh32(v);
}

static inline uint64
get_be64(const uint8 *p)
{
	uint64		v;

	memcpy(&v, p, 8);
	return pg_ntoh64(v);
}

/* Our own SQLSTATEs live in class "LD" so clients can tell them apart. */
#define ERRCODE_LEDGER_KEY_INACCESSIBLE	MAKE_SQLSTATE('L','D','0','0','1')

/* ledger.c */
extern bool ledger_loaded_in_database(void);
extern Oid	ledger_am_oid(void);
extern Oid	ledger_schema_oid(void);
extern Oid	ledger_relation_oid(const char *relname);
extern bool ledger_is_ledger_relation(Relation rel);
extern bool ledger_is_ledger_relid(Oid relid);
typedef struct LedgerUserSave
{
	Oid			userid;
	int			sec_context;
	int			guc_nest_level;
} LedgerUserSave;
extern void ledger_become_owner(LedgerUserSave *save);
extern Snapshot ledger_lookup_snapshot(Relation rel);
extern void ledger_restore_user(const LedgerUserSave *save);

/* guc.c */
extern char *ledger_keyring_file;
extern bool ledger_analyze_sealed_columns;
extern bool ledger_default_deletion_protection;
extern int	ledger_seal_interval;
extern int	ledger_key_check_interval;
extern bool ledger_require_secure_transport;
extern bool ledger_require_key_grant;
extern int	ledger_key_change_batch;
extern int	ledger_root_key_rotation_period;
extern int	ledger_provider_key_rotation_period;
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

/* provider.c: key providers, configured in ledger.providers */
#define LEDGER_PROVIDER_KEY_ID_LEN 255
#define LEDGER_PROVIDER_ALIAS_LEN 255
#define LEDGER_PROVIDER_WRAPPED_MAX 4096	/* a root key wrapped by a provider */
#define LEDGER_KEY_ADMIN_ROLE	"ledger_key_admin"

/* Which provider key wrapped a root key, as ledger.keys records it. */
typedef struct LedgerProviderRef
{
	char		provider[NAMEDATALEN];	/* the provider's name */
	char		key_id[LEDGER_PROVIDER_KEY_ID_LEN + 1];
	char		alias[LEDGER_PROVIDER_ALIAS_LEN + 1];	/* named by, or "" */
	int32		version;		/* 0: the provider keeps it in its ciphertext */
} LedgerProviderRef;

/* The node a provider wraps, which is its encryption context. */
typedef struct LedgerKeyContext
{
	int32		node_id;
	int32		node_version;
	const uint8 *aad;
	int			aadlen;
} LedgerKeyContext;

/* A configured provider: a row of ledger.providers, options parsed. */
typedef struct LedgerProviderType LedgerProviderType;
typedef struct LedgerProvider
{
	char		name[NAMEDATALEN];
	const LedgerProviderType *type;
	int			noptions;
	char	  **option_names;
	char	  **option_values;	/* numbers as their text */
} LedgerProvider;

/* An option a provider type takes: 's' a string, 'p' a positive integer. */
typedef struct LedgerProviderOption
{
	const char *name;
	char		kind;
	bool		required;
} LedgerProviderOption;

/*
 * Providers that seal with AES-GCM on their side (pkcs11, kmip): the
 * wrapped bytes are IV || ciphertext || tag, with the IV drawn by
 * provider.c.  The type's gcm_run() does one operation in a child and
 * writes "outlen" bytes: the ciphertext and tag of a wrap, the key of an
 * unwrap.
 */
#define LEDGER_GCM_WRAPPED_LEN (LEDGER_NONCE_LEN + LEDGER_KEY_LEN + LEDGER_TAG_LEN)
typedef struct LedgerGcmOp
{
	bool		wrap;
	const char *key;			/* the provider's name of its key */
	uint8		iv[LEDGER_NONCE_LEN];
	const uint8 *aad;
	int			aadlen;
	const uint8 *in;			/* the key, or the ciphertext and tag */
} LedgerGcmOp;
typedef void (*LedgerGcmRun) (const LedgerProvider *p, LedgerGcmOp *op,
							  uint8 *out, int outlen);

/*
 * What a provider type does.  wrap returns the wrapped bytes (at most
 * LEDGER_PROVIDER_WRAPPED_MAX) and fills ref but for ref->provider;
 * unwrap writes LEDGER_KEY_LEN bytes.  A type that seals with AES-GCM on
 * its side gives gcm_run instead of both.  Each raises LD001 through
 * ledger_provider_inaccessible() when the provider key cannot be used.
 * Without check_key, a key is checked by wrapping a throwaway key.
 * rotate_material, where the provider holds its key material (file), adds
 * a new version of a key; it returns false if it cannot now, to be tried
 * again later.
 */
struct LedgerProviderType
{
	const char *name;
	const LedgerProviderOption *options;	/* ends with a NULL name */
	void		(*validate) (const LedgerProvider *p);
	void		(*check_key) (const LedgerProvider *p, const char *key);
	bool		(*rotate_material) (const LedgerProvider *p, const char *key);
	bytea	   *(*wrap) (const LedgerProvider *p, const char *key, bool may_create,
						 const LedgerKeyContext *cxt, const uint8 *plain,
						 LedgerProviderRef *ref);
	void		(*unwrap) (const LedgerProvider *p, const LedgerProviderRef *ref,
						   const LedgerKeyContext *cxt, const uint8 *wrapped,
						   int len, uint8 *plain);
	LedgerGcmRun gcm_run;
};

extern const LedgerProviderType ledger_file_provider;
extern const LedgerProviderType ledger_command_provider;
extern const LedgerProviderType ledger_pkcs11_provider;
extern const LedgerProviderType ledger_kmip_provider;

extern const char *ledger_provider_option(const LedgerProvider *p, const char *name);
extern int	ledger_provider_int_option(const LedgerProvider *p, const char *name,
									   int dflt);
extern char *ledger_provider_path_option(const LedgerProvider *p, const char *name);
extern void ledger_provider_inaccessible(const LedgerProvider *p, const char *hint,
										 const char *fmt,...)
			pg_attribute_printf(3, 4) pg_attribute_noreturn();
extern char *ledger_provider_read_secret_file(const LedgerProvider *p, const char *what,
											  const char *path, int *len);
extern void ledger_provider_check_key(const char *provider, const char *key);
extern bytea *ledger_provider_wrap(const char *provider, const char *key,
								   bool may_create, const LedgerKeyContext *cxt,
								   const uint8 *plain, LedgerProviderRef *ref);
extern void ledger_provider_unwrap_with(const LedgerProvider *p,
										const LedgerProviderRef *ref,
										const LedgerKeyContext *cxt,
										const uint8 *wrapped, int len, uint8 *plain);
extern void ledger_provider_unwrap(const LedgerProviderRef *ref,
								   const LedgerKeyContext *cxt,
								   const uint8 *wrapped, int len, uint8 *plain);
extern void ledger_providers_bootstrap(void);
extern bool ledger_provider_rotate_material(const char *provider, const char *key);

/* provider_call.c: a provider's work in a child process, with a deadline */
typedef struct LedgerCall
{
	const uint8 *input;			/* written to the child's stdin */
	int			inlen;
	uint8	   *output;			/* read from its stdout */
	int			outmin;			/* it must print outmin to outcap bytes */
	int			outcap;
	int			outlen;
	int			timeout_ms;
	int			exit_code;		/* -1: timed out or killed by a signal */
	bool		timed_out;
	char		message[256];	/* the first line of its stderr */
} LedgerCall;
typedef int (*LedgerCallChild) (void *arg);
extern void ledger_call(LedgerCall *call, LedgerCallChild child, void *arg);
extern void ledger_call_provider(const LedgerProvider *p, LedgerCall *call,
								 LedgerCallChild child, void *arg,
								 const char *hint, const char *what);


/* keys.c: the key hierarchy */
typedef struct LedgerRootInfo
{
	char		provider[NAMEDATALEN];
	char		provider_key_id[LEDGER_PROVIDER_KEY_ID_LEN + 1];
	char		provider_key_alias[LEDGER_PROVIDER_ALIAS_LEN + 1];
	int32		provider_key_version;
	int32		version;
	TimestampTz created_at;
	TimestampTz wrapped_at;		/* when the provider key last wrapped it */
} LedgerRootInfo;
extern void ledger_keys_bootstrap(void);
extern void ledger_keys_check(void);
extern void ledger_keys_forget(void);
extern void ledger_keys_root_info(LedgerRootInfo *info);
extern void ledger_keys_rewrap_root(const char *provider, const char *provider_key);
extern void ledger_keys_probe_provider(const LedgerProvider *p);
extern bool ledger_keys_provider_in_use(const char *provider);
extern int32 ledger_keys_add_root_version(void);
extern int	ledger_keys_rewrap_data(int32 version, int limit);
extern void ledger_keys_count_data(int32 version, int64 *total, int64 *wrapped_by);
extern bool ledger_keys_finish_root_rotation(int32 version, int64 *done);
extern int32 ledger_create_data_key(int64 table_id);
extern LedgerCipher *ledger_data_cipher(int32 key_id);

/* keystatus.c: key status, generation counter, key grant, transport */
#define LEDGER_KEY_USER_ROLE	"ledger_key_user"
extern Size ledger_key_status_shmem_size(void);
extern void ledger_key_status_shmem_init(void);
extern void ledger_key_status_init(void);
extern const char *ledger_key_failure_reason(const ErrorData *e);
extern void ledger_key_status_failed(const ErrorData *e);
extern void ledger_key_status_ok(void);
extern void ledger_key_status_check(void);
extern void ledger_check_key_status(void);
extern void ledger_check_use(void);
extern void ledger_check_access(void);

/* keyevents.c: ledger.key_events, through a shared ring */
extern Size ledger_key_events_shmem_size(void);
extern void ledger_key_events_shmem_init(void);
extern void ledger_key_events_shmem_request(void);
extern void ledger_key_event(const char *event, const LedgerProviderRef *ref,
							 int32 node_id, int32 node_version, int64 change_id,
							 const char *outcome);
extern void ledger_key_events_flush(void);

/* keychange.c: the key change queue, worked off by the worker */
extern void ledger_keychange_init(void);
extern void ledger_key_changes_run(void);
extern void ledger_key_rotation_policy(void);
extern bool ledger_key_change_progress(char **kind, int64 *done, int64 *total);

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
extern int32 ledger_tables_to_rekey(int64 *count);
extern int	ledger_rekey_tables(int32 floor, int limit, int *busy);

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

/* A payload header is at most this long: a bit per column of the widest table. */
#define LEDGER_HEADER_MAX	(32 + (MaxTupleAttributeNumber + 7) / 8)
#define LEDGER_FINGERPRINT_LEN	8

extern HeapTuple ledger_seal(Relation rel, TupleTableSlot *slot,
							 int64 doc_id, int32 version, char op,
							 LedgerRevision *rev);
extern void ledger_open(Relation rel, HeapTuple phys, TupleTableSlot *dst);
extern void ledger_check_row(Relation rel, HeapTuple phys, TupleTableSlot *scratch,
							 LedgerHeader *hdr, uint8 *fingerprint);
extern bool ledger_header_fingerprint(bytea *start, uint8 *fingerprint);
extern int	ledger_header_len(Relation rel);
extern void ledger_read_header(Relation rel, HeapTuple phys, LedgerHeader *hdr);
extern void ledger_revision_hash(LedgerRevision *rev);
extern void ledger_tombstone(Relation rel, const LedgerHeader *old,
							 LedgerRevision *rev);
extern void ledger_copy_xact_fields(HeapTupleHeader dst, HeapTupleHeader src);
extern HeapTuple ledger_rewrite_tuple(Relation rel, HeapTuple phys,
									  const Bitmapset *plainset,
									  TupleTableSlot *scratch);
extern const char *ledger_revision_data_hash(int64 table_id, int64 doc_id,
											 int32 version, bytea *payload,
											 uint8 *hash);
extern Datum ledger_open_revision(Relation rel, TupleDesc rowdesc, int64 doc_id,
								  int32 version, bytea *payload);
extern bool ledger_plain_values_match(Relation rel, HeapTuple phys,
									  TupleTableSlot *opened,
									  const Bitmapset *attnums);

/*
 * A revision's key and a hash: its revision hash, or, for a stored
 * subtree, the root of the run of leaves that the revision starts.
 */
typedef struct LedgerKeyedHash
{
	int64		table_id;
	int64		doc_id;
	int32		version;
	uint8		hash[LEDGER_HASH_LEN];
} LedgerKeyedHash;

/* journal.c */
/* Columns of ledger.journal, as created by sql/ledger--0.1.sql. */
enum
{
	Anum_journal_table_id = 1,
	Anum_journal_doc_id,
	Anum_journal_version,
	Anum_journal_op,
	Anum_journal_xid,
	Anum_journal_key_id,
	Anum_journal_payload,
	Anum_journal_data_hash,
	Anum_journal_revision_hash,
	Anum_journal_written_at,
	Natts_journal = Anum_journal_written_at
};
extern void ledger_journal_append(const LedgerRevision *rev);
extern void ledger_journal_append_many(const LedgerRevision *revs, int n);
extern bytea *ledger_journal_payload(int64 table_id, int64 doc_id, int32 version,
									 bool (*match) (bytea *payload, void *arg),
									 void *arg);
extern int64 ledger_journal_revisions_from(FullTransactionId xid, const LedgerKeyedHash *from,
										   int64 n, LedgerKeyedHash *out);
extern int64 ledger_next_document_id(void);
extern bool ledger_xact_wrote_journal(void);
extern void ledger_journal_xact_end(void);

/* chain.c: transaction entries, blocks and digests */
/* Columns of ledger.transactions. */
enum
{
	Anum_txn_seq = 1,
	Anum_txn_xid,
	Anum_txn_committed_at,
	Anum_txn_revision_count,
	Anum_txn_merkle_root,
	Anum_txn_subtrees,
	Natts_txn = Anum_txn_subtrees
};

/*
 * A transaction of LEDGER_SUBTREE_MIN revisions or more also stores, for
 * each run of LEDGER_SUBTREE_LEAVES leaves of its tree in order, the key
 * of the run's first revision and the root of its subtree: a proof then
 * hashes one run instead of the whole tree.  Not hashed; ledger_verify()
 * checks them against the revisions and the entry's root.
 */
#define LEDGER_SUBTREE_LEAVES	8192
#define LEDGER_SUBTREE_MIN		(2 * LEDGER_SUBTREE_LEAVES)
#define LEDGER_SUBTREE_LEN		(8 + 8 + 4 + LEDGER_HASH_LEN)	/* stored, big-endian */

typedef struct LedgerTxnEntry
{
	int64		seq;
	FullTransactionId xid;		/* joins the entry to its revisions; not hashed */
	TimestampTz committed_at;
	int32		revision_count;
	uint8		merkle_root[LEDGER_HASH_LEN];
} LedgerTxnEntry;

typedef struct LedgerBlock
{
	int64		number;
	int64		first_seq;		/* 0 in block 0, which holds no entries */
	int64		last_seq;
	int32		entry_count;
	uint8		merkle_root[LEDGER_HASH_LEN];
	uint8		previous_hash[LEDGER_HASH_LEN];
	uint8		hash[LEDGER_HASH_LEN];
	int			ntree_nodes;
	uint8		tree_nodes[MERKLE_MAX_LEVELS][LEDGER_HASH_LEN];	/* level 0 first */
	uint8		tree_root[LEDGER_HASH_LEN]; /* over blocks 0 .. number */
	TimestampTz sealed_at;
} LedgerBlock;

/* Reads the stored nodes of the tree of blocks (chain.c). */
typedef struct LedgerTree
{
	Relation	blocks;
	Relation	index;
	Snapshot	snap;
} LedgerTree;

extern Size ledger_chain_shmem_size(void);
extern void ledger_chain_shmem_init(void);
extern void ledger_chain_init(void);
extern void ledger_chain_note_revision(const LedgerRevision *rev);
extern bool ledger_chain_entry_written(void);
extern void ledger_merkle_root(uint8 (*hashes)[LEDGER_HASH_LEN], int64 n,
							   uint8 *root);
extern void ledger_merkle_root_of_leaves(const uint8 (*leaves)[LEDGER_HASH_LEN],
										 int64 n, uint8 *root);
extern int	ledger_key_cmp(const LedgerKeyedHash *a, const LedgerKeyedHash *b);
extern int64 ledger_subtree_count(int64 revisions);
extern bool ledger_subtrees_from_datum(Datum d, bool isnull, int64 revisions,
									   LedgerKeyedHash **subtrees);
extern void ledger_subtrees_root(const LedgerKeyedHash *subtrees, int64 n, uint8 *root);
extern int64 ledger_unix_micros(TimestampTz t);
extern void ledger_damaged_hash(const char *kind, int64 number) pg_attribute_noreturn();
extern void ledger_damaged_stored_hash(void) pg_attribute_noreturn();
extern Datum ledger_hash_datum(const uint8 *hash);
extern bool ledger_hash_from_datum(Datum d, bool isnull, uint8 *out);
extern void ledger_entry_hash(const LedgerTxnEntry *e, uint8 *out);
extern void ledger_block_hash(const LedgerBlock *b, uint8 *out);
extern void ledger_deform_entry(TupleDesc desc, HeapTuple tup, LedgerTxnEntry *e);
extern void ledger_deform_block(TupleDesc desc, HeapTuple tup, LedgerBlock *b);
extern void ledger_require_chain_tables(void);
extern void ledger_chain_bootstrap(void);
extern bool ledger_chain_seal(LedgerBlock *newest, bool wait);
extern void ledger_chain_newest(LedgerBlock *newest);
extern void ledger_tree_open(LedgerTree *t, Snapshot snap);
extern void ledger_tree_close(LedgerTree *t);
extern int	ledger_tree_subtree(void *arg, uint64_t start, uint64_t end, uint8_t *out);

/* events.c: schema changes and redactions, journaled as table id 0 */
#define LEDGER_CATALOG_TABLE_ID		0
enum
{
	LEDGER_EVENT_CREATE,
	LEDGER_EVENT_ALTER,
	LEDGER_EVENT_PROTECTION,
	LEDGER_EVENT_PLAINSET,
	LEDGER_EVENT_DROP,
	LEDGER_EVENT_REDACT,
	LEDGER_EVENT_DATA_KEY
};
extern void ledger_note_event(Oid relid, int64 table_id, int kind);
extern void ledger_events_flush(void);
extern void ledger_events_subxact_abort(SubTransactionId subid);
extern void ledger_events_xact_end(void);
extern bool ledger_events_pending(void);

/* proof.c */
extern void ledger_append_digest(StringInfo out, const LedgerBlock *b);

/* verify.c */
extern void ledger_parse_digest(Jsonb *jb, ChainDigest *d);

/* revsort.c: ledger_verify()'s revisions in the order of the chain */
#define LEDGER_REV_FAILED	0x01	/* its check failed: see verify.c */
#define LEDGER_REV_REDACTED	0x02	/* its payload was redacted */
#define LEDGER_REV_ENTRY	0x04	/* not a revision: its transaction's entry */
#define LEDGER_REV_DAMAGED	0x08	/* an entry whose stored root is no hash */
typedef struct LedgerRevRecord
{
	int64		seq;			/* of its transaction entry */
	int64		table_id;
	int64		doc_id;
	int32		version;
	uint8		flags;
	uint8		leaf[LEDGER_HASH_LEN];	/* the Merkle leaf of its revision hash */
} LedgerRevRecord;
typedef struct LedgerRevSort LedgerRevSort;
extern int	ledger_rev_record_cmp(const LedgerRevRecord *a, const LedgerRevRecord *b);
extern void ledger_rev_records_sort(LedgerRevRecord *recs, int64 n);
extern LedgerRevSort *ledger_revsort_begin(int mem_kb);
extern void ledger_revsort_put(LedgerRevSort *s, const LedgerRevRecord *r);
extern void ledger_revsort_put_run(LedgerRevSort *s, const LedgerRevRecord *recs,
								   int64 n);
extern void ledger_revsort_done(LedgerRevSort *s);
extern const LedgerRevRecord *ledger_revsort_peek(LedgerRevSort *s);
extern void ledger_revsort_next(LedgerRevSort *s);
extern void ledger_revsort_end(LedgerRevSort *s);

/* verifyscan.c: ledger_verify()'s read of the journal */
typedef struct LedgerVerifyWorkers LedgerVerifyWorkers;
typedef struct LedgerJournalPass
{
	LedgerRevSort *revs;		/* every revision's record */
	int64		scanned;		/* journal rows this process read */
	LedgerVerifyWorkers *workers;	/* kept for the walk, or NULL */
	bool		orphan_found;	/* a revision no entry covers */
	LedgerRevRecord orphan;		/* the first such, in key order */
	bool		failure_found;
	LedgerRevRecord failure;	/* the first failed revision, in key order */
	char	   *failure_detail;
} LedgerJournalPass;
extern void ledger_read_journal(bool full, LedgerJournalPass *pass);
extern void ledger_rev_record_entry(const LedgerRevRecord *r, LedgerTxnEntry *e);
extern void ledger_verify_tree_root(LedgerVerifyWorkers *w,
									const uint8 (*leaves)[LEDGER_HASH_LEN],
									int64 n, uint8 *root);
extern void ledger_verify_workers_end(LedgerVerifyWorkers *w);
extern bool ledger_progress_due(TimestampTz *reported, int64 count);
extern PGDLLEXPORT void ledger_verify_worker(dsm_segment *seg, shm_toc *toc);

/* worker.c: the launcher and one sealing worker per ledger database */
extern Size ledger_worker_shmem_size(void);
extern void ledger_worker_shmem_init(void);
extern void ledger_worker_register_launcher(void);
extern void ledger_worker_ensure(void);
extern void ledger_worker_stop(Oid dboid);
extern void ledger_worker_wake(Oid dboid);
extern ErrorData *ledger_worker_try(void (*fn) (void));

/* sqlfuncs.c: the SQL boundary */
extern Relation ledger_open_table(Oid relid, LOCKMODE lockmode, AclMode required);
extern void ledger_not_possible(const char *msg, const char *hint) pg_attribute_noreturn();

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
