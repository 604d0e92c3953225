/*-------------------------------------------------------------------------
 *
 * proofjson.c
 *	  Digests and proofs from JSON text (docs/verification.md).
 *
 * Input may be hostile: every key is looked up with its type, integers
 * must be integral and in range, hashes exactly 64 lower-case hex digits,
 * paths at most PROOF_MAX_PATH steps.  The result has a fixed size and
 * the parsed JSON is freed on every path, so the server can call this
 * between palloc'd work without leaking, and a failure is a sentence,
 * never a longjmp.
 *
 *-------------------------------------------------------------------------
 */
#include "proofjson.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

static char problem[256];

static const char *
fail(const char *fmt, const char *key)
{
	snprintf(problem, sizeof(problem), fmt, key);
	return problem;
}

static const char *
get_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		return fail("The key \"%s\" must be an integer.", key);
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return fail("The key \"%s\" is out of range.", key);
	*out = json_integer_value(v);
	return NULL;
}

static const char *
hex_hash(json_t *v, const char *key, uint8_t *out)
{
	const char *s = json_string_value(v);

	if (s == NULL || json_string_length(v) != 2 * LAYOUT_HASH_LEN ||
		strspn(s, "0123456789abcdef") != 2 * LAYOUT_HASH_LEN)
		return fail("The key \"%s\" must be 64 lower-case hexadecimal digits.", key);
	for (int i = 0; i < LAYOUT_HASH_LEN; i++)
	{
		unsigned int byte;

		sscanf(s + 2 * i, "%2x", &byte);
		out[i] = (uint8_t) byte;
	}
	return NULL;
}

static const char *
get_hash(json_t *obj, const char *key, uint8_t *out)
{
	return hex_hash(json_object_get(obj, key), key, out);
}

static const char *
get_object(json_t *obj, const char *key, json_t **out)
{
	*out = json_object_get(obj, key);
	return json_is_object(*out) ? NULL : fail("The key \"%s\" must hold an object.", key);
}

static const char *
digest_of(json_t *obj, ChainDigest *out)
{
	const char *err;
	int64_t		version;

	if (!json_is_object(obj))
		return "A digest is a JSON object.";
	if ((err = get_int(obj, "version", 1, 1, &version)) != NULL)
		return "Only version 1 digests are known.";
	if ((err = get_int(obj, "block", 0, INT64_MAX - 1, &out->block)) != NULL ||
		(err = get_hash(obj, "hash", out->hash)) != NULL ||
		(err = get_hash(obj, "root", out->root)) != NULL)
		return err;
	return NULL;
}

static const char *
path_of(json_t *obj, ProofStep *steps, int *n)
{
	json_t	   *arr = json_object_get(obj, "path");

	if (!json_is_array(arr))
		return "The key \"path\" must hold an array.";
	if (json_array_size(arr) > PROOF_MAX_PATH)
		return "A Merkle path is too long.";
	*n = (int) json_array_size(arr);
	for (int i = 0; i < *n; i++)
	{
		json_t	   *step = json_array_get(arr, i);
		const char *side = json_string_value(json_object_get(step, "side"));
		const char *err;

		if (!json_is_object(step) || side == NULL)
			return "A step of a Merkle path must be an object with a side.";
		if (strcmp(side, "left") == 0)
			steps[i].left = 1;
		else if (strcmp(side, "right") == 0)
			steps[i].left = 0;
		else
			return "The side of a Merkle path step must be \"left\" or \"right\".";
		if ((err = get_hash(step, "hash", steps[i].hash)) != NULL)
			return err;
	}
	return NULL;
}

/* A consistency path: hashes only, their sides follow from the two sizes. */
static const char *
hashes_of(json_t *obj, ConsistencyProof *c)
{
	json_t	   *arr = json_object_get(obj, "path");

	if (!json_is_array(arr))
		return "The key \"path\" must hold an array.";
	if (json_array_size(arr) > PROOF_MAX_CONSISTENCY)
		return "A consistency path is too long.";
	c->npath = (int) json_array_size(arr);
	for (int i = 0; i < c->npath; i++)
	{
		const char *err = hex_hash(json_array_get(arr, i), "path", c->path[i]);

		if (err != NULL)
			return err;
	}
	return NULL;
}

static const char *
revision_of(json_t *root, RevisionProof *r)
{
	json_t	   *rev,
			   *tx,
			   *block,
			   *tree;
	const char *err;
	const char *op;
	int64_t		v;

	if ((err = get_object(root, "revision", &rev)) != NULL ||
		(err = get_object(root, "transaction", &tx)) != NULL ||
		(err = get_object(root, "block", &block)) != NULL ||
		(err = get_object(root, "tree", &tree)) != NULL)
		return err;
	if ((err = get_int(rev, "table_id", 1, INT64_MAX, &r->table_id)) != NULL ||
		(err = get_int(rev, "doc_id", 0, INT64_MAX, &r->doc_id)) != NULL ||
		(err = get_int(rev, "version", 0, INT32_MAX, &v)) != NULL)
		return err;
	r->version = (int32_t) v;
	op = json_string_value(json_object_get(rev, "operation"));
	if (op == NULL || strlen(op) != 1 || strchr("IUD", op[0]) == NULL)
		return "The operation must be \"I\", \"U\" or \"D\".";
	r->op = op[0];
	memset(r->data_hash, 0, LAYOUT_HASH_LEN);
	if (r->op == 'D' ? !json_is_null(json_object_get(rev, "data_hash")) :
		(err = get_hash(rev, "data_hash", r->data_hash)) != NULL)
		return err ? err : "A deletion has a null data hash.";
	if ((err = get_int(tx, "seq", 1, INT64_MAX, &r->seq)) != NULL ||
		(err = get_int(tx, "committed_at", INT64_MIN, INT64_MAX, &r->committed_at_us)) != NULL ||
		(err = get_int(tx, "revision_count", 1, INT32_MAX, &v)) != NULL)
		return err;
	r->revision_count = (int32_t) v;
	if ((err = path_of(tx, r->tx_path, &r->ntx)) != NULL ||
		(err = get_int(block, "number", 1, INT64_MAX, &r->block_number)) != NULL ||
		(err = get_hash(block, "previous_hash", r->previous_hash)) != NULL ||
		(err = path_of(block, r->block_path, &r->nblock)) != NULL ||
		(err = get_int(tree, "size", 1, INT64_MAX, &r->tree_size)) != NULL ||
		(err = path_of(tree, r->tree_path, &r->ntree)) != NULL)
		return err;
	return NULL;
}

const char *
digest_parse(const char *text, size_t len, ChainDigest *out)
{
	json_t	   *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	const char *err = root == NULL ? "The digest is not valid JSON." : digest_of(root, out);

	json_decref(root);
	return err;
}

const char *
proof_parse(const char *text, size_t len, ParsedProof *p)
{
	json_t	   *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	const char *err = NULL;
	const char *kind;
	int64_t		version;

	memset(p, 0, sizeof(*p));
	if (root == NULL)
		return "The proof is not valid JSON.";
	kind = json_string_value(json_object_get(root, "kind"));
	if (!json_is_object(root))
		err = "A proof is a JSON object.";
	else if (get_int(root, "version", 1, 1, &version) != NULL)
		err = "Only version 1 proofs are known.";
	else if (kind != NULL && strcmp(kind, "revision") == 0)
	{
		p->kind = PROOF_REVISION;
		err = revision_of(root, &p->rev);
	}
	else if (kind != NULL && strcmp(kind, "consistency") == 0)
	{
		p->kind = PROOF_CONSISTENCY;
		err = digest_of(json_object_get(root, "old"), &p->cons.old);
		if (err == NULL)
			err = hashes_of(root, &p->cons);
	}
	else
		err = "The kind must be \"revision\" or \"consistency\".";
	json_decref(root);
	return err;
}

const char *
proof_check(const ParsedProof *p, const ChainDigest *digest)
{
	if (p->kind == PROOF_REVISION)
		return proof_check_revision(&p->rev, digest);
	return proof_check_consistency(&p->cons, digest);
}
