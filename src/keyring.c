/*-------------------------------------------------------------------------
 *
 * keyring.c
 *	  The keyring file's format: parsing, formatting and lookups.
 *
 * One entry per line:
 *
 *		key <key-id> <version> <state> <64 hex digits of key material>
 *		alias alias/<name> <key-id>
 *
 * The state is "enabled", "disabled" or "pending-deletion:<Unix time>".
 * A key has one line per version; rotating its material adds a version,
 * and old versions stay so that what they wrapped can be unwrapped.  An
 * alias names a key (all its versions) and can be pointed elsewhere.
 * Lines starting with '#' and blank lines are ignored; anything else makes
 * the whole file malformed, so a damaged keyring is never half-read.
 *
 * No server dependency (no palloc, no ereport): the file provider,
 * ledger-keyring and ledger-verify share this code.  Callers wipe the
 * buffers that held key material.
 *
 *-------------------------------------------------------------------------
 */
#include "keyring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 9999-12-31 23:59:59 UTC: a deletion date any gmtime() can show. */
#define KEYRING_MAX_TIME	253402300799LL

#define HEADER \
	"# ledger keyring, format 1.  Keep this file secret and back it up:\n" \
	"# without it the ledger's data cannot be read.\n"

static const char id_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz-";
static const char alias_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz-_/";

bool
keyring_valid_id(const char *s)
{
	size_t		n = strlen(s);

	return n > 0 && n <= KEYRING_ID_LEN && strspn(s, id_chars) == n;
}

bool
keyring_valid_alias(const char *s)
{
	size_t		n = strlen(s);

	return n > 6 && n <= KEYRING_ALIAS_LEN && strncmp(s, "alias/", 6) == 0 &&
		strspn(s, alias_chars) == n;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
parse_long(const char *s, long long min, long long max, long long *out)
{
	char	   *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *out >= min && *out <= max;
}

static bool
parse_state(const char *s, KeyringKey *key)
{
	long long	t;

	key->delete_at = 0;
	if (strcmp(s, "enabled") == 0)
		key->state = KEYRING_ENABLED;
	else if (strcmp(s, "disabled") == 0)
		key->state = KEYRING_DISABLED;
	else if (strncmp(s, "pending-deletion:", 17) == 0 &&
			 parse_long(s + 17, 0, KEYRING_MAX_TIME, &t))
	{
		key->state = KEYRING_PENDING_DELETION;
		key->delete_at = t;
	}
	else
		return false;
	return true;
}

static bool
parse_material(const char *hex, uint8_t *out)
{
	if (strlen(hex) != 2 * KEYRING_MATERIAL_LEN)
		return false;
	for (int i = 0; i < KEYRING_MATERIAL_LEN; i++)
	{
		int			hi = hexval(hex[2 * i]);
		int			lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t) (hi << 4 | lo);
	}
	return true;
}

static bool
parse_key(char **w, int nw, Keyring *ring)
{
	KeyringKey *k;
	long long	v;

	if (nw != 5 || ring->nkeys >= KEYRING_MAX_KEYS || !keyring_valid_id(w[1]) ||
		!parse_long(w[2], 1, INT32_MAX, &v) ||
		keyring_find(ring, w[1], (int32_t) v) != NULL)
		return false;
	k = &ring->keys[ring->nkeys];
	if (!parse_state(w[3], k) || !parse_material(w[4], k->material))
		return false;
	strcpy(k->id, w[1]);
	k->version = (int32_t) v;
	ring->nkeys++;
	return true;
}

static bool
parse_alias(char **w, int nw, Keyring *ring)
{
	KeyringAlias *a;

	if (nw != 3 || ring->naliases >= KEYRING_MAX_ALIASES ||
		!keyring_valid_alias(w[1]) || !keyring_valid_id(w[2]) ||
		keyring_resolve(ring, w[1]) != NULL)
		return false;
	a = &ring->aliases[ring->naliases++];
	strcpy(a->name, w[1]);
	strcpy(a->id, w[2]);
	return true;
}

/*
 * Parse a keyring's text of len bytes (modified in place; text[len] must
 * be writable) into ring.  Returns false, without saying what a line held,
 * if any line is malformed, if the text holds a NUL byte (which would hide
 * what follows it), or if an alias names a key the keyring lacks: a
 * keyring is read whole or not at all.
 */
bool
keyring_parse(char *text, size_t len, Keyring *ring)
{
	char	   *save = NULL;

	memset(ring, 0, sizeof(Keyring));
	if (memchr(text, '\0', len) != NULL)
		return false;
	text[len] = '\0';
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
		 line = strtok_r(NULL, "\n", &save))
	{
		char	   *w[6];
		char	   *wsave = NULL;
		int			nw = 0;
		size_t		n = strlen(line);

		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		for (char *t = strtok_r(line, " \t", &wsave); t != NULL && nw < 6;
			 t = strtok_r(NULL, " \t", &wsave))
			w[nw++] = t;
		if (nw == 0)
			continue;
		if (strcmp(w[0], "key") == 0 ? !parse_key(w, nw, ring) :
			strcmp(w[0], "alias") == 0 ? !parse_alias(w, nw, ring) : true)
			return false;
	}
	for (int i = 0; i < ring->naliases; i++)
		if (keyring_resolve(ring, ring->aliases[i].id) == NULL)
			return false;
	return true;
}

const char *
keyring_state_name(KeyringState state)
{
	return state == KEYRING_ENABLED ? "enabled" :
		state == KEYRING_DISABLED ? "disabled" : "pending-deletion";
}

/*
 * Write the keyring's text into buf (at most cap bytes, NUL included).
 * Returns the length the whole text needs; the caller wipes buf.
 */
size_t
keyring_format(const Keyring *ring, char *buf, size_t cap)
{
	size_t		n = 0;

#define PUT(...) \
	do { \
		int			r_ = snprintf(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, __VA_ARGS__); \
		n += r_ > 0 ? (size_t) r_ : 0; \
	} while (0)

	PUT("%s", HEADER);
	for (int i = 0; i < ring->nkeys; i++)
	{
		const KeyringKey *k = &ring->keys[i];

		PUT("key %s %d %s", k->id, (int) k->version, keyring_state_name(k->state));
		if (k->state == KEYRING_PENDING_DELETION)
			PUT(":%lld", (long long) k->delete_at);
		PUT(" ");
		for (int j = 0; j < KEYRING_MATERIAL_LEN; j++)
			PUT("%02x", k->material[j]);
		PUT("\n");
	}
	for (int i = 0; i < ring->naliases; i++)
		PUT("alias %s %s\n", ring->aliases[i].name, ring->aliases[i].id);
#undef PUT
	return n;
}

/* A key id as a version 4 UUID, from 16 random bytes. */
void
keyring_format_id(const uint8_t random[16], char *out)
{
	uint8_t		r[16];

	memcpy(r, random, 16);
	r[6] = (r[6] & 0x0f) | 0x40;
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(out, KEYRING_ID_LEN + 1,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
			 r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

/*
 * The key id that "name" means: the target of an alias, or the name itself
 * if the keyring has a key of that id.  NULL if neither.
 */
const char *
keyring_resolve(const Keyring *ring, const char *name)
{
	if (strncmp(name, "alias/", 6) == 0)
	{
		for (int i = 0; i < ring->naliases; i++)
			if (strcmp(ring->aliases[i].name, name) == 0)
				return ring->aliases[i].id;
		return NULL;
	}
	for (int i = 0; i < ring->nkeys; i++)
		if (strcmp(ring->keys[i].id, name) == 0)
			return ring->keys[i].id;
	return NULL;
}

KeyringKey *
keyring_find(Keyring *ring, const char *id, int32_t version)
{
	for (int i = 0; i < ring->nkeys; i++)
		if (strcmp(ring->keys[i].id, id) == 0 && ring->keys[i].version == version)
			return &ring->keys[i];
	return NULL;
}

/*
 * The version of key "id" (NULL: of any key) with the highest number, only
 * among enabled ones if enabled_only; NULL if there is none.
 */
KeyringKey *
keyring_newest(Keyring *ring, const char *id, bool enabled_only)
{
	KeyringKey *best = NULL;

	for (int i = 0; i < ring->nkeys; i++)
	{
		KeyringKey *k = &ring->keys[i];

		if ((id == NULL || strcmp(k->id, id) == 0) &&
			(!enabled_only || k->state == KEYRING_ENABLED) &&
			(best == NULL || k->version > best->version))
			best = k;
	}
	return best;
}
