/*-------------------------------------------------------------------------
 *
 * ledger_verify.c
 *	  ledger-verify: the offline auditor.  Checks an export of the journal
 *	  against a digest, and a proof against a digest, with no database;
 *	  given the keyring file, it also opens every sealed revision and
 *	  checks its data hash.
 *
 *	  ledger-verify export EXPORT.jsonl DIGEST [--keyring FILE]
 *	  ledger-verify proof PROOF DIGEST
 *
 * DIGEST and PROOF are files or JSON text.  Exit status: 0 the input
 * checks, 1 it does not (the first failure is printed), 2 the input
 * could not be read.  docs/verification.md gives every layout checked.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keyring.h"
#include "layout.h"
#include "proofjson.h"

#define KEY_LEN		32
#define NONCE_LEN	12
#define TAG_LEN		16
#define WRAPPED_LEN	(NONCE_LEN + KEY_LEN + TAG_LEN)
#define HDR_FIXED	32
#define MAX_KEYS	4096

typedef struct Leaf
{
	int64_t		table_id;
	int64_t		doc_id;
	int32_t		version;
	uint8_t		hash[LAYOUT_HASH_LEN];
} Leaf;

typedef struct Key
{
	int64_t		key_id;
	int64_t		version;
	char		kind;			/* 'R' root, 'D' data */
	int64_t		parent_id;
	int64_t		parent_version;
	char		provider[64];
	char		provider_key_id[256];
	int64_t		provider_key_version;
	int			foreign;		/* a root key a keyring file did not wrap */
	uint8_t		wrapped[WRAPPED_LEN];
	int			open;			/* key[] holds the unwrapped key */
	uint8_t		key[KEY_LEN];
} Key;

typedef struct Audit
{
	const char *keyring;		/* NULL: hashes only */
	Key			keys[MAX_KEYS];
	int			nkeys;
	int			in_block;
	int64_t		block_number;
	int64_t		first_seq;
	int64_t		last_seq;
	int64_t		entry_count;
	uint8_t		block_root[LAYOUT_HASH_LEN];
	uint8_t		block_hash[LAYOUT_HASH_LEN];
	uint8_t		previous[LAYOUT_HASH_LEN];
	int			have_previous;
	MerkleFrontier tree;		/* over every block up to the last one read */
	uint8_t		(*entries)[LAYOUT_HASH_LEN];
	int64_t		nentries;
	int64_t		maxentries;
	int			in_txn;
	int64_t		seq;
	int64_t		committed_at;
	int64_t		revision_count;
	uint8_t		txn_root[LAYOUT_HASH_LEN];
	Leaf	   *leaves;
	int64_t		nleaves;
	int64_t		maxleaves;
	int64_t		revisions;
	int64_t		blocks;
	int64_t		opened;
	char	   *redacted;		/* JSON text of every redaction event */
	size_t		redacted_len;
	Leaf	   *missing;		/* revisions without a payload */
	int64_t		nmissing;
	int64_t		maxmissing;
} Audit;

/* The audit in progress, whose unwrapped keys are wiped at any exit. */
static Audit *current = NULL;

static void
wipe_keys(void)
{
	if (current != NULL)
		for (int i = 0; i < current->nkeys; i++)
			OPENSSL_cleanse(current->keys[i].key, KEY_LEN);
}

static void
die(int code, const char *fmt, const char *a, const char *b)
{
	printf(code == 1 ? "FAILED: " : "ledger-verify: ");
	printf(fmt, a ? a : "", b ? b : "");
	printf("\n");
	exit(code);
}

static void
failed(const char *place, const char *what)
{
	die(1, "%s: %s", place, what);
}

static char *
place(const char *fmt, long long a, long long b, long long c)
{
	static char buf[160];

	snprintf(buf, sizeof(buf), fmt, a, b, c);
	return buf;
}

static void *
grow(void *p, int64_t *max, size_t size)
{
	*max = *max ? *max * 2 : 64;
	p = realloc(p, (size_t) *max * size);
	if (p == NULL)
		die(2, "out of memory%s%s", NULL, NULL);
	return p;
}

static int
hex_bytes(const char *s, uint8_t *out, size_t len)
{
	if (s == NULL || strlen(s) != 2 * len || strspn(s, "0123456789abcdef") != 2 * len)
		return 0;
	for (size_t i = 0; i < len; i++)
	{
		unsigned int byte;

		sscanf(s + 2 * i, "%2x", &byte);
		out[i] = (uint8_t) byte;
	}
	return 1;
}

static int64_t
int_of(json_t *obj, const char *key, const char *what)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		failed(what, "a field is missing or not an integer");
	return json_integer_value(v);
}

static void
hash_of(json_t *obj, const char *key, uint8_t *out, const char *what)
{
	if (!hex_bytes(json_string_value(json_object_get(obj, key)), out, LAYOUT_HASH_LEN))
		failed(what, "a hash is missing or not 64 lower-case hex digits");
}

/* Read a file whole, or take the argument itself as the JSON text. */
static char *
json_text(const char *arg, size_t *len)
{
	FILE	   *f = fopen(arg, "rb");
	char	   *buf;
	long		n;

	if (f == NULL)
	{
		*len = strlen(arg);
		return strdup(arg);
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
		(buf = malloc((size_t) n + 1)) == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n)
		die(2, "could not read %s%s", arg, NULL);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t) n;
	return buf;
}

static ChainDigest
read_digest(const char *arg)
{
	size_t		len;
	char	   *text = json_text(arg, &len);
	ChainDigest d;
	const char *problem = digest_parse(text, len, &d);

	if (problem != NULL)
		die(2, "invalid digest: %s%s", problem, NULL);
	free(text);
	return d;
}

/* ------------------------------------------------------------------------
 * Keys: the keyring's provider key opens the root key, which opens the
 * data keys (docs/verification.md, "Keys and payloads").
 * ------------------------------------------------------------------------
 */

static int
gcm_open(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, int aadlen,
		 const uint8_t *sealed, int len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int			n,
				ok;

	ok = ctx != NULL && len >= TAG_LEN &&
		EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
		EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
		EVP_DecryptUpdate(ctx, NULL, &n, aad, aadlen) == 1 &&
		EVP_DecryptUpdate(ctx, out, &n, sealed, len - TAG_LEN) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
							(void *) (sealed + len - TAG_LEN)) == 1 &&
		EVP_DecryptFinal_ex(ctx, out + n, &n) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* The provider key material of (id, version) from a keyring file. */
static int
provider_key(const char *path, const char *id, int64_t version, uint8_t *out)
{
	FILE	   *f = fopen(path, "r");
	static char text[KEYRING_MAX_FILE_SIZE + 1];
	static Keyring ring;
	size_t		n;
	KeyringKey *k;
	int			found;

	if (f == NULL)
		die(2, "could not open keyring %s: %s", path, strerror(errno));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	if (!keyring_parse(text, n, &ring))
	{
		OPENSSL_cleanse(text, sizeof(text));
		OPENSSL_cleanse(&ring, sizeof(ring));
		die(2, "keyring %s is malformed%s", path, "");
	}
	k = (version > 0 && version <= INT32_MAX) ? keyring_find(&ring, id, (int32_t) version) : NULL;
	found = k != NULL;
	if (found)
		memcpy(out, k->material, KEY_LEN);
	OPENSSL_cleanse(text, sizeof(text));
	OPENSSL_cleanse(&ring, sizeof(ring));
	return found;
}

static Key *
find_key(Audit *a, int64_t id, int64_t version)
{
	for (int i = 0; i < a->nkeys; i++)
		if (a->keys[i].key_id == id && a->keys[i].version == version)
			return &a->keys[i];
	return NULL;
}

static void
read_key(Audit *a, json_t *rec)
{
	Key		   *k;
	const char *kind = json_string_value(json_object_get(rec, "kind"));
	const char *pk = json_string_value(json_object_get(rec, "provider_key_id"));

	if (a->nkeys == MAX_KEYS)
		die(2, "the export holds too many keys%s%s", NULL, NULL);
	k = &a->keys[a->nkeys++];
	memset(k, 0, sizeof(*k));
	k->key_id = int_of(rec, "key_id", "a key");
	k->version = int_of(rec, "version", "a key");
	k->kind = (kind && strcmp(kind, "root") == 0) ? 'R' : 'D';
	if (k->kind == 'D')
	{
		k->parent_id = int_of(rec, "parent_id", "a data key");
		k->parent_version = int_of(rec, "parent_version", "a data key");
	}
	else
	{
		const char *provider = json_string_value(json_object_get(rec, "provider"));
		const char *wrapped = json_string_value(json_object_get(rec, "wrapped"));

		/*
		 * A KMS's ciphertext has its own length and no key version: such a
		 * root key is never opened here, only named.
		 */
		snprintf(k->provider, sizeof(k->provider), "%s", provider ? provider : "file");
		snprintf(k->provider_key_id, sizeof(k->provider_key_id), "%s", pk ? pk : "");
		k->provider_key_version = json_is_integer(json_object_get(rec, "provider_key_version")) ?
			int_of(rec, "provider_key_version", "the root key") : 0;
		k->foreign = k->provider_key_version == 0 ||
			(wrapped != NULL && strlen(wrapped) != 2 * WRAPPED_LEN &&
			 strlen(wrapped) <= 2 * 4096 && strspn(wrapped, "0123456789abcdef") == strlen(wrapped));
		if (k->foreign)
			return;
	}
	if (!hex_bytes(json_string_value(json_object_get(rec, "wrapped")), k->wrapped, WRAPPED_LEN))
		failed("a key", "its wrapped bytes are malformed");
}

static const uint8_t *
open_key(Audit *a, int64_t id, int64_t version)
{
	Key		   *k = find_key(a, id, version);
	uint8_t		aad[sizeof("ledger.key.v1") + 9];
	uint8_t		wrapping[KEY_LEN];
	int			ok;

	if (k == NULL)
		failed(place("key %lld version %lld", id, version, 0), "the export does not hold it");
	if (k->open)
		return k->key;
	memcpy(aad, "ledger.key.v1", sizeof("ledger.key.v1"));
	aad[sizeof("ledger.key.v1")] = (uint8_t) k->kind;
	put_be32(aad + sizeof("ledger.key.v1") + 1, (uint32_t) k->key_id);
	put_be32(aad + sizeof("ledger.key.v1") + 5, (uint32_t) k->version);
	if (k->kind == 'R')
	{
		if (k->foreign)
			die(2, "the root key is wrapped by key provider \"%s\", whose key is not in a keyring file: "
				"check data hashes in the database with ledger_verify('full')%s", k->provider, NULL);
		if (!provider_key(a->keyring, k->provider_key_id, k->provider_key_version, wrapping))
			die(2, "the keyring does not hold provider key %s of key provider \"%s\"",
				k->provider_key_id, k->provider);
	}
	else
		memcpy(wrapping, open_key(a, k->parent_id, k->parent_version), KEY_LEN);
	ok = gcm_open(wrapping, k->wrapped, aad, sizeof(aad), k->wrapped + NONCE_LEN,
				  KEY_LEN + TAG_LEN, k->key);
	OPENSSL_cleanse(wrapping, sizeof(wrapping));
	if (!ok)
		failed(place("key %lld version %lld", id, version, 0), "it does not unwrap");
	k->open = 1;
	return k->key;
}

/* Open a sealed payload and compare its plaintext's hash with data_hash. */
static void
check_payload(Audit *a, json_t *rec, int64_t table_id, const uint8_t *data_hash,
			  const char *where)
{
	const char *hex = json_string_value(json_object_get(rec, "payload"));
	size_t		len = hex ? strlen(hex) / 2 : 0;
	uint8_t    *p = malloc(len + 1);
	uint8_t    *plain = malloc(len + 1);
	uint8_t    *aad;
	uint8_t		hash[LAYOUT_HASH_LEN];
	size_t		hdrlen;
	uint32_t	key_id;

	if (p == NULL || plain == NULL)
		die(2, "out of memory%s%s", NULL, NULL);
	if (!hex_bytes(hex, p, len) || len < HDR_FIXED || p[0] != 1)
		failed(where, "the payload is malformed");
	hdrlen = HDR_FIXED + (((size_t) p[2] << 8 | p[3]) + 7) / 8;
	if (len < hdrlen + 16 + TAG_LEN)
		failed(where, "the payload is truncated");
	key_id = (uint32_t) p[4] << 24 | p[5] << 16 | p[6] << 8 | p[7];
	aad = malloc(sizeof("ledger.row.v1") + 8 + hdrlen);
	memcpy(aad, "ledger.row.v1", sizeof("ledger.row.v1"));
	for (int i = 0; i < 8; i++)
		aad[sizeof("ledger.row.v1") + i] = (uint8_t) ((uint64_t) table_id >> (56 - 8 * i));
	memcpy(aad + sizeof("ledger.row.v1") + 8, p, hdrlen);
	aad[sizeof("ledger.row.v1") + 8 + 1] = 0;	/* the flags are not bound */
	if (!gcm_open(open_key(a, key_id, 1), p + 20, aad, (int) (sizeof("ledger.row.v1") + 8 + hdrlen),
				  p + hdrlen, (int) (len - hdrlen), plain))
		failed(where, "the payload fails authentication");
	merkle_sha256(plain, len - hdrlen - TAG_LEN, hash);
	OPENSSL_cleanse(plain, len);
	if (memcmp(hash, data_hash, LAYOUT_HASH_LEN) != 0)
		failed(where, "the data hash does not match the opened payload");
	a->opened++;
	free(p);
	free(plain);
	free(aad);
}

/* A catalog event's payload is its JSON, in the clear: no key needed. */
static void
check_event(Audit *a, json_t *rec, const uint8_t *data_hash, const char *where)
{
	const char *hex = json_string_value(json_object_get(rec, "payload"));
	size_t		len = hex ? strlen(hex) / 2 : 0;
	uint8_t    *p = malloc(len + 1);
	uint8_t		hash[LAYOUT_HASH_LEN];

	if (p == NULL)
		die(2, "out of memory%s%s", NULL, NULL);
	if (!hex_bytes(hex, p, len))
		failed(where, "the payload is malformed");
	merkle_sha256(p, len, hash);
	if (memcmp(hash, data_hash, LAYOUT_HASH_LEN) != 0)
		failed(where, "the data hash does not match the event's payload");
	/* Keep the redactions it records, as canonical text to search. */
	{
		json_t	   *event = json_loadb((const char *) p, len, 0, NULL);
		json_t	   *list = json_object_get(event, "redacted");
		size_t		i;
		json_t	   *r;
		int64_t		table_id = json_integer_value(json_object_get(event, "table_id"));

		json_array_foreach(list, i, r)
		{
			char		item[96];
			int			n = snprintf(item, sizeof(item), "|%lld,%lld,%lld|",
									 (long long) table_id,
									 (long long) json_integer_value(json_object_get(r, "doc_id")),
									 (long long) json_integer_value(json_object_get(r, "version")));

			a->redacted = realloc(a->redacted, a->redacted_len + n + 1);
			if (a->redacted == NULL)
				die(2, "out of memory%s%s", NULL, NULL);
			memcpy(a->redacted + a->redacted_len, item, n + 1);
			a->redacted_len += n;
		}
		json_decref(event);
	}
	free(p);
}

/* With the keyring: every revision without a payload was redacted. */
static void
check_redactions(Audit *a)
{
	for (int64_t i = 0; i < a->nmissing; i++)
	{
		char		item[96];
		Leaf	   *m = &a->missing[i];

		snprintf(item, sizeof(item), "|%lld,%lld,%d|", (long long) m->table_id,
				 (long long) m->doc_id, m->version);
		if (a->redacted == NULL || strstr(a->redacted, item) == NULL)
			failed(place("table id %lld document %lld version %lld", m->table_id,
						 m->doc_id, m->version),
				   "it has no payload, and no redaction of it is recorded in the export");
	}
}

/* ------------------------------------------------------------------------
 * The export
 * ------------------------------------------------------------------------
 */

static int
leaf_cmp(const void *x, const void *y)
{
	const Leaf *a = x,
			   *b = y;

	if (a->table_id != b->table_id)
		return a->table_id < b->table_id ? -1 : 1;
	if (a->doc_id != b->doc_id)
		return a->doc_id < b->doc_id ? -1 : 1;
	return (a->version > b->version) - (a->version < b->version);
}

static void
end_txn(Audit *a)
{
	uint8_t		(*hashes)[LAYOUT_HASH_LEN];
	uint8_t		root[LAYOUT_HASH_LEN];
	char	   *where = place("transaction %lld", a->seq, 0, 0);

	if (!a->in_txn)
		return;
	if (a->nleaves != a->revision_count)
		failed(where, "its revision count does not match the revisions exported");
	qsort(a->leaves, a->nleaves, sizeof(Leaf), leaf_cmp);
	hashes = malloc(LAYOUT_HASH_LEN * (a->nleaves + 1));
	for (int64_t i = 0; i < a->nleaves; i++)
		merkle_leaf(a->leaves[i].hash, LAYOUT_HASH_LEN, hashes[i]);
	merkle_root((const uint8_t (*)[MERKLE_HASH_LEN]) hashes, a->nleaves, root);
	free(hashes);
	if (memcmp(root, a->txn_root, LAYOUT_HASH_LEN) != 0)
		failed(where, "its Merkle root does not match its revisions");
	if (a->nentries == a->maxentries)
		a->entries = grow(a->entries, &a->maxentries, LAYOUT_HASH_LEN);
	layout_entry_hash(a->seq, a->committed_at, (int32_t) a->revision_count, root,
					  a->entries[a->nentries++]);
	a->in_txn = 0;
}

static void
end_block(Audit *a)
{
	uint8_t		root[LAYOUT_HASH_LEN];
	uint8_t		hash[LAYOUT_HASH_LEN];
	uint8_t		nodes[MERKLE_MAX_LEVELS][LAYOUT_HASH_LEN];
	char	   *where = place("block %lld", a->block_number, 0, 0);

	end_txn(a);
	if (!a->in_block)
		return;
	if (a->nentries != a->entry_count)
		failed(where, "its transaction count does not match the transactions exported");
	for (int64_t i = 0; i < a->nentries; i++)
		merkle_leaf(a->entries[i], LAYOUT_HASH_LEN, a->entries[i]);
	merkle_root((const uint8_t (*)[MERKLE_HASH_LEN]) a->entries, a->nentries, root);
	if (memcmp(root, a->block_root, LAYOUT_HASH_LEN) != 0)
		failed(where, "its Merkle root does not match its transactions");
	layout_block_hash(a->previous, a->block_number, root, hash);
	if (memcmp(hash, a->block_hash, LAYOUT_HASH_LEN) != 0)
		failed(where, "its block hash does not match its contents");
	if (a->tree.size != (uint64_t) a->block_number)
		failed(where, "the tree of the blocks before it is not in the export's header");
	if (!merkle_leaf(hash, LAYOUT_HASH_LEN, root) ||
		merkle_frontier_push(&a->tree, root, nodes) < 0)
		failed(where, "SHA-256 failed");
	memcpy(a->previous, hash, LAYOUT_HASH_LEN);
	a->nentries = 0;
	a->in_block = 0;
	a->blocks++;
}

static void
start_block(Audit *a, json_t *rec)
{
	uint8_t		previous[LAYOUT_HASH_LEN];
	int64_t		number;
	char		where[64];

	end_block(a);				/* before "where": place() reuses its buffer */
	number = int_of(rec, "number", "a block");
	snprintf(where, sizeof(where), "block %lld", (long long) number);
	hash_of(rec, "previous_hash", previous, where);
	if (a->have_previous && number != a->block_number + 1)
		failed(where, "the block before it is missing");
	if (a->have_previous && memcmp(previous, a->previous, LAYOUT_HASH_LEN) != 0)
		failed(where, "its previous hash is not the hash of the block before it");
	memcpy(a->previous, previous, LAYOUT_HASH_LEN);
	a->have_previous = 1;
	a->in_block = 1;
	a->block_number = number;
	a->first_seq = int_of(rec, "first_seq", where);
	a->last_seq = int_of(rec, "last_seq", where);
	a->entry_count = int_of(rec, "entry_count", where);
	hash_of(rec, "merkle_root", a->block_root, where);
	hash_of(rec, "block_hash", a->block_hash, where);
}

/*
 * The header gives the peaks of the tree over the blocks before the
 * export's first: what the digest's root covers besides the export.
 */
static void
read_header(Audit *a, json_t *rec, long lineno)
{
	json_t	   *peaks = json_object_get(rec, "tree");
	int64_t		from = int_of(rec, "from_block", "the header");

	if (lineno != 1)
		failed("the header", "it must be the first line of the export, and the only one");
	if (from < 0 || !json_is_array(peaks) ||
		json_array_size(peaks) != (size_t) __builtin_popcountll((unsigned long long) from))
		failed("the header", "its tree does not have one peak per one bit of from_block");
	memset(&a->tree, 0, sizeof(a->tree));
	a->tree.size = (uint64_t) from;
	for (size_t i = 0; i < json_array_size(peaks); i++)
		if (!hex_bytes(json_string_value(json_array_get(peaks, i)),
					   a->tree.peaks[a->tree.npeaks++], LAYOUT_HASH_LEN))
			failed("the header", "a peak of its tree is not 64 lower-case hex digits");
}

static void
start_txn(Audit *a, json_t *rec)
{
	int64_t		seq;
	char		where[64];

	end_txn(a);					/* before "where": place() reuses its buffer */
	seq = int_of(rec, "seq", "a transaction");
	snprintf(where, sizeof(where), "transaction %lld", (long long) seq);
	if (!a->in_block || a->block_number == 0 || seq < a->first_seq || seq > a->last_seq)
		failed(where, "no exported block covers it");
	if (a->nentries > 0 && seq <= a->seq)
		failed(where, "transactions are out of order");
	a->in_txn = 1;
	a->seq = seq;
	a->committed_at = int_of(rec, "committed_at", where);
	a->revision_count = int_of(rec, "revision_count", where);
	hash_of(rec, "merkle_root", a->txn_root, where);
	a->nleaves = 0;
}

static void
add_revision(Audit *a, json_t *rec)
{
	Leaf		leaf;
	uint8_t		data_hash[LAYOUT_HASH_LEN] = {0};
	uint8_t		stored[LAYOUT_HASH_LEN];
	const char *op = json_string_value(json_object_get(rec, "operation"));
	char		where[160];

	leaf.table_id = int_of(rec, "table_id", "a revision");
	leaf.doc_id = int_of(rec, "doc_id", "a revision");
	leaf.version = (int32_t) int_of(rec, "version", "a revision");
	snprintf(where, sizeof(where), "table id %lld document %lld version %d",
			 (long long) leaf.table_id, (long long) leaf.doc_id, leaf.version);
	if (!a->in_txn || int_of(rec, "seq", where) != a->seq)
		failed(where, "it does not follow its transaction");
	if (op == NULL || strlen(op) != 1 || strchr("IUD", op[0]) == NULL)
		failed(where, "its operation is not I, U or D");
	if (op[0] != 'D')
		hash_of(rec, "data_hash", data_hash, where);
	hash_of(rec, "revision_hash", stored, where);
	layout_revision_hash(leaf.table_id, leaf.doc_id, leaf.version, op[0], data_hash, leaf.hash);
	if (memcmp(stored, leaf.hash, LAYOUT_HASH_LEN) != 0)
		failed(where, "its revision hash does not match its fields");
	if (leaf.table_id == 0 && !json_is_null(json_object_get(rec, "payload")))
		check_event(a, rec, data_hash, where);
	else if (a->keyring != NULL && op[0] != 'D' && !json_is_null(json_object_get(rec, "payload")))
		check_payload(a, rec, leaf.table_id, data_hash, where);
	else if (a->keyring != NULL && op[0] != 'D')
	{
		if (a->nmissing == a->maxmissing)
			a->missing = grow(a->missing, &a->maxmissing, sizeof(Leaf));
		a->missing[a->nmissing++] = leaf;
	}
	if (a->nleaves == a->maxleaves)
		a->leaves = grow(a->leaves, &a->maxleaves, sizeof(Leaf));
	a->leaves[a->nleaves++] = leaf;
	a->revisions++;
}

static int
check_export(const char *path, const ChainDigest *digest, const char *keyring)
{
	Audit	   *a = calloc(1, sizeof(Audit));
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	long		lineno = 0;
	uint8_t		root[LAYOUT_HASH_LEN];

	if (a == NULL || f == NULL)
		die(2, "could not read %s%s", path, NULL);
	current = a;
	atexit(wipe_keys);
	a->keyring = keyring;
	while (getline(&line, &cap, f) > 0)
	{
		json_t	   *rec = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
		const char *type = json_string_value(json_object_get(rec, "type"));

		lineno++;
		if (!json_is_object(rec) || type == NULL)
			failed(place("line %lld", lineno, 0, 0), "not a JSON object with a type");
		if (strcmp(type, "header") == 0)
			read_header(a, rec, lineno);
		else if (strcmp(type, "key") == 0)
			read_key(a, rec);
		else if (strcmp(type, "block") == 0)
			start_block(a, rec);
		else if (strcmp(type, "transaction") == 0)
			start_txn(a, rec);
		else if (strcmp(type, "revision") == 0)
			add_revision(a, rec);
		json_decref(rec);
	}
	free(line);
	fclose(f);
	end_block(a);
	if (a->blocks == 0)
		failed("the export", "it holds no blocks");
	if (keyring != NULL)
		check_redactions(a);
	if (!merkle_frontier_root(&a->tree, root))
		failed("the export", "SHA-256 failed");
	if (a->block_number != digest->block || memcmp(a->previous, digest->hash, LAYOUT_HASH_LEN) != 0 ||
		memcmp(root, digest->root, LAYOUT_HASH_LEN) != 0)
		failed(place("block %lld", a->block_number, 0, 0), "the export does not end at the digest");
	printf("ok: %lld revisions in %lld blocks lead to the digest of block %lld",
		   (long long) a->revisions, (long long) a->blocks, (long long) digest->block);
	if (keyring != NULL)
		printf("; %lld payloads opened and their data hashes match, %lld redacted",
			   (long long) a->opened, (long long) a->nmissing);
	printf("\n");
	return 0;					/* wipe_keys() runs at exit */
}

static int
check_proof(const char *arg, const ChainDigest *digest)
{
	size_t		len;
	char	   *text = json_text(arg, &len);
	ParsedProof p;
	const char *problem = proof_parse(text, len, &p);

	if (problem != NULL)
		die(2, "invalid proof: %s%s", problem, NULL);
	problem = proof_check(&p, digest);
	free(text);
	if (problem != NULL)
		failed("the proof", problem);
	printf("ok: the proof leads to the digest of block %lld\n", (long long) digest->block);
	return 0;
}

int
main(int argc, char **argv)
{
	ChainDigest digest;

	if (argc == 4 && strcmp(argv[1], "proof") == 0)
	{
		digest = read_digest(argv[3]);
		return check_proof(argv[2], &digest);
	}
	if ((argc == 4 || (argc == 6 && strcmp(argv[4], "--keyring") == 0)) &&
		strcmp(argv[1], "export") == 0)
	{
		digest = read_digest(argv[3]);
		return check_export(argv[2], &digest, argc == 6 ? argv[5] : NULL);
	}
	fprintf(stderr,
			"usage: ledger-verify export EXPORT.jsonl DIGEST [--keyring FILE]\n"
			"       ledger-verify proof PROOF DIGEST\n"
			"DIGEST and PROOF are files or JSON text.  Exit status: 0 it checks,\n"
			"1 it does not, 2 the input could not be read.\n");
	return 2;
}
