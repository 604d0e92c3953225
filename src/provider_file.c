/*-------------------------------------------------------------------------
 *
 * provider_file.c
 *	  The embedded key provider: a keyring file outside the data directory.
 *
 * The file holds provider keys, one per line:
 *
 *		key <key-id> <version> <state> <64 hex digits of key material>
 *
 * Lines starting with '#' and blank lines are ignored; anything else is an
 * error, so a damaged keyring is never half-read.  The provider key wraps
 * the ledger's root key with AES-256-GCM; the caller's AAD names the node
 * and version being wrapped.
 *
 * The keyring is created only when the caller says so (the ledger has no
 * root key yet).  Once a root key exists, a missing, unreadable or different
 * keyring means the provider key is inaccessible.  The file is re-read on
 * every use, so its loss is never hidden by a cache here.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"

#define KEYRING_MAX_SIZE	(64 * 1024)
#define KEYRING_MAX_KEYS	256

typedef struct ProviderKey
{
	LedgerProviderRef ref;
	bool		enabled;
	uint8		material[LEDGER_KEY_LEN];
} ProviderKey;

typedef struct Keyring
{
	int			nkeys;
	ProviderKey keys[KEYRING_MAX_KEYS];
} Keyring;

static void
keyring_wipe(Keyring *ring)
{
	ledger_wipe(ring, sizeof(Keyring));
	pfree(ring);
}

static char *
keyring_path(void)
{
	char	   *path;

	if (ledger_keyring_file == NULL || ledger_keyring_file[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_LEDGER_KEY_INACCESSIBLE),
				 errmsg("ledger does not have access to its provider key"),
				 errdetail("ledger.keyring_file is not set."),
				 errhint("Set ledger.keyring_file to a path outside the data directory and reload the configuration.")));
	path = pstrdup(ledger_keyring_file);
	if (!is_absolute_path(path))
		path = psprintf("%s/%s", DataDir, ledger_keyring_file);
	canonicalize_path(path);
	return path;
}

/* A keyring inside the data directory would travel with every backup. */
static void
check_outside_data_directory(const char *path)
{
	char		datadir[PATH_MAX];
	char		dir[PATH_MAX];
	char	   *dirpart = pstrdup(path);

	get_parent_directory(dirpart);
	if (realpath(DataDir, datadir) == NULL ||
		realpath(dirpart[0] ? dirpart : ".", dir) == NULL)
		return;					/* reported by the open that follows */
	if (path_is_prefix_of_path(datadir, dir))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keyring file \"%s\" is inside the data directory", path),
				 errdetail("A keyring in the data directory would be copied into every base backup along with the data it protects."),
				 errhint("Move the keyring outside the data directory and point ledger.keyring_file at it.")));
}

static void
inaccessible(const char *path, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_LEDGER_KEY_INACCESSIBLE),
			 errmsg("ledger does not have access to its provider key"),
			 errdetail("Keyring file \"%s\": %s", path, detail),
			 errhint("Restore the keyring file that holds the ledger's provider key, with mode 0600.")));
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

/*
 * Parse one "key" line.  Returns false, without saying what the line held,
 * if it is malformed: a keyring line carries key material.
 */
static bool
parse_key_line(char *line, ProviderKey *key)
{
	char	   *save = NULL;
	char	   *word = strtok_r(line, " \t", &save);
	char	   *id,
			   *ver,
			   *state,
			   *hex,
			   *end;
	long		v;

	if (word == NULL || strcmp(word, "key") != 0)
		return false;
	id = strtok_r(NULL, " \t", &save);
	ver = strtok_r(NULL, " \t", &save);
	state = strtok_r(NULL, " \t", &save);
	hex = strtok_r(NULL, " \t", &save);
	if (id == NULL || ver == NULL || state == NULL || hex == NULL ||
		strtok_r(NULL, " \t", &save) != NULL)
		return false;
	if (strlen(id) == 0 || strlen(id) > LEDGER_PROVIDER_KEY_ID_LEN ||
		strspn(id, "0123456789abcdefghijklmnopqrstuvwxyz-") != strlen(id))
		return false;
	errno = 0;
	v = strtol(ver, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > PG_INT32_MAX)
		return false;
	if (strcmp(state, "enabled") == 0)
		key->enabled = true;
	else if (strcmp(state, "disabled") == 0)
		key->enabled = false;
	else
		return false;
	if (strlen(hex) != 2 * LEDGER_KEY_LEN)
		return false;
	for (int i = 0; i < LEDGER_KEY_LEN; i++)
	{
		int			hi = hexval(hex[2 * i]);
		int			lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		key->material[i] = (uint8) (hi << 4 | lo);
	}
	strlcpy(key->ref.key_id, id, sizeof(key->ref.key_id));
	key->ref.version = (int32) v;
	return true;
}

/* Parse the whole file; false if any line is malformed. */
static bool
parse_keyring(char *text, Keyring *ring)
{
	char	   *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line != NULL;
		 line = strtok_r(NULL, "\n", &save))
	{
		size_t		len = strlen(line);

		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (ring->nkeys >= KEYRING_MAX_KEYS ||
			!parse_key_line(line, &ring->keys[ring->nkeys]))
			return false;
		ring->nkeys++;
	}
	return true;
}

/*
 * Read the keyring.  Returns NULL if the file does not exist; every other
 * problem is an error.
 */
static Keyring *
read_keyring(const char *path)
{
	int			fd;
	struct stat st;
	char	   *text;
	ssize_t		n;
	Keyring    *ring;
	bool		ok;

	check_outside_data_directory(path);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return NULL;
		inaccessible(path, strerror(errno));
	}
	if (fstat(fd, &st) != 0)
	{
		CloseTransientFile(fd);
		inaccessible(path, strerror(errno));
	}
	if (!S_ISREG(st.st_mode) || st.st_size > KEYRING_MAX_SIZE)
	{
		CloseTransientFile(fd);
		inaccessible(path, "not a regular keyring file of at most 64 kB");
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_uid != geteuid())
	{
		CloseTransientFile(fd);
		ereport(ERROR,
				(errcode(ERRCODE_LEDGER_KEY_INACCESSIBLE),
				 errmsg("keyring file \"%s\" is accessible to other users", path),
				 errdetail("The keyring must be owned by the server's OS user and have mode 0600 or stricter."),
				 errhint("Run: chmod 0600 %s", path)));
	}
	text = palloc0(st.st_size + 1);
	n = read(fd, text, st.st_size);
	CloseTransientFile(fd);
	if (n != st.st_size)
	{
		ledger_wipe(text, st.st_size);
		inaccessible(path, "could not be read completely");
	}
	ring = palloc0(sizeof(Keyring));
	ok = parse_keyring(text, ring);
	ledger_wipe(text, st.st_size);
	pfree(text);
	if (!ok)
	{
		keyring_wipe(ring);
		inaccessible(path, "the file is malformed");
	}
	return ring;
}

static void
generate_key_id(char *out)
{
	uint8		r[16];

	ledger_random_bytes(r, sizeof(r));
	r[6] = (r[6] & 0x0f) | 0x40;	/* a version 4 UUID */
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(out, LEDGER_PROVIDER_KEY_ID_LEN + 1,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
			 r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

/*
 * Create a keyring with one fresh key.  It is written under a temporary
 * name and linked into place, so a concurrent creator or a crash never
 * leaves a partial keyring at the configured path.
 */
static void
create_keyring(const char *path)
{
	char	   *tmp = psprintf("%s.%d.tmp", path, MyProcPid);
	char		id[LEDGER_PROVIDER_KEY_ID_LEN + 1];
	uint8		material[LEDGER_KEY_LEN];
	char		line[512];
	int			len;
	int			fd;

	generate_key_id(id);
	ledger_random_bytes(material, sizeof(material));
	len = snprintf(line, sizeof(line),
				   "# ledger keyring, format 1.  Keep this file secret and back it up:\n"
				   "# without it the ledger's data cannot be read.\n"
				   "key %s 1 enabled ", id);
	for (int i = 0; i < LEDGER_KEY_LEN; i++)
		len += snprintf(line + len, sizeof(line) - len, "%02x", material[i]);
	len += snprintf(line + len, sizeof(line) - len, "\n");
	ledger_wipe(material, sizeof(material));

	fd = OpenTransientFilePerm(tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY,
							   S_IRUSR | S_IWUSR);
	if (fd < 0)
	{
		ledger_wipe(line, sizeof(line));
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create keyring file \"%s\": %m", tmp),
				 errhint("Check that the directory of ledger.keyring_file exists and is writable by the server.")));
	}
	if (write(fd, line, len) != len || pg_fsync(fd) != 0)
	{
		int			save = errno;

		ledger_wipe(line, sizeof(line));
		CloseTransientFile(fd);
		unlink(tmp);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write keyring file \"%s\": %m", tmp)));
	}
	ledger_wipe(line, sizeof(line));
	CloseTransientFile(fd);
	if (link(tmp, path) != 0 && errno != EEXIST)
	{
		int			save = errno;

		unlink(tmp);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create keyring file \"%s\": %m", path)));
	}
	unlink(tmp);
	ereport(LOG,
			(errmsg("ledger created keyring file \"%s\" with provider key %s", path, id)));
}

/* The key (id, version) that ref names, or NULL. */
static ProviderKey *
find_key(Keyring *ring, const LedgerProviderRef *ref)
{
	for (int i = 0; i < ring->nkeys; i++)
		if (strcmp(ring->keys[i].ref.key_id, ref->key_id) == 0 &&
			ring->keys[i].ref.version == ref->version)
			return &ring->keys[i];
	return NULL;
}

/*
 * The enabled key with the highest version, among the versions of key_id
 * or, if that is NULL, among all keys; or NULL.
 */
static ProviderKey *
newest_enabled(Keyring *ring, const char *key_id)
{
	ProviderKey *best = NULL;

	for (int i = 0; i < ring->nkeys; i++)
	{
		ProviderKey *k = &ring->keys[i];

		if (k->enabled && (key_id == NULL || strcmp(k->ref.key_id, key_id) == 0) &&
			(best == NULL || k->ref.version > best->ref.version))
			best = k;
	}
	return best;
}

/* Refuse a provider key that the keyring cannot wrap with now. */
void
ledger_provider_check_key(const char *key_id)
{
	char	   *path = keyring_path();
	Keyring    *ring;
	bool		usable;

	if (strlen(key_id) == 0 || strlen(key_id) > LEDGER_PROVIDER_KEY_ID_LEN ||
		strspn(key_id, "0123456789abcdefghijklmnopqrstuvwxyz-") != strlen(key_id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a valid provider key id", key_id),
				 errdetail("A key id of the file provider has 1 to %d characters out of a-z, 0-9 and \"-\".",
						   LEDGER_PROVIDER_KEY_ID_LEN)));
	ring = read_keyring(path);
	if (ring == NULL)
		inaccessible(path, "the file does not exist");
	usable = newest_enabled(ring, key_id) != NULL;
	keyring_wipe(ring);
	if (!usable)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("provider key %s has no enabled version in keyring file \"%s\"",
						key_id, path),
				 errhint("Add the key to the keyring, or enable it, first.")));
}

/*
 * Wrap a key with the newest enabled version of provider key "key_id"
 * (NULL: of any key), creating the keyring first if may_create and there
 * is none.
 */
void
ledger_provider_wrap(const uint8 *key, const uint8 *aad, int aadlen,
					 const char *key_id, bool may_create,
					 uint8 *wrapped, LedgerProviderRef *ref)
{
	char	   *path = keyring_path();
	Keyring    *ring = read_keyring(path);
	ProviderKey *pk;

	if (ring == NULL && may_create)
	{
		create_keyring(path);
		ring = read_keyring(path);
	}
	if (ring == NULL)
		inaccessible(path, "the file does not exist");
	pk = newest_enabled(ring, key_id);
	if (pk == NULL)
	{
		keyring_wipe(ring);
		inaccessible(path, key_id == NULL ? "it holds no enabled key" :
					 psprintf("it holds no enabled version of provider key %s", key_id));
	}
	ledger_random_bytes(wrapped, LEDGER_NONCE_LEN);
	ledger_aead_seal(pk->material, wrapped, aad, aadlen, key, LEDGER_KEY_LEN,
					 wrapped + LEDGER_NONCE_LEN);
	*ref = pk->ref;
	keyring_wipe(ring);
}

void
ledger_provider_unwrap(const uint8 *wrapped, const LedgerProviderRef *ref,
					   const uint8 *aad, int aadlen, uint8 *key)
{
	char	   *path = keyring_path();
	Keyring    *ring = read_keyring(path);
	ProviderKey *pk;
	bool		ok;

	if (ring == NULL)
		inaccessible(path, "the file does not exist");
	pk = find_key(ring, ref);
	if (pk == NULL || !pk->enabled)
	{
		bool		missing = (pk == NULL);

		keyring_wipe(ring);
		inaccessible(path, missing ?
					 psprintf("it does not hold provider key %s version %d", ref->key_id, ref->version) :
					 psprintf("provider key %s version %d is disabled", ref->key_id, ref->version));
	}
	ok = ledger_aead_open(pk->material, wrapped, aad, aadlen,
						  wrapped + LEDGER_NONCE_LEN,
						  LEDGER_KEY_LEN + LEDGER_TAG_LEN, key);
	keyring_wipe(ring);
	if (!ok)
		inaccessible(path, psprintf("provider key %s version %d does not open the ledger's root key", ref->key_id, ref->version));
}
