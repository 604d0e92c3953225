/*-------------------------------------------------------------------------
 *
 * provider_file.c
 *	  The embedded key provider: a keyring file outside the data directory.
 *
 * keyring.c defines the file's format: provider keys in versions, each
 * enabled, disabled or pending deletion, and aliases.  A provider key
 * wraps the ledger's root key with AES-256-GCM; the caller's AAD names the
 * node and version being wrapped.  ledger-keyring manages the file the way
 * a KMS console manages keys.
 *
 * The keyring is ledger.keyring_file, or the provider's option
 * "keyring_file".  It is created only when the caller says so (the ledger
 * has no root key yet).  Once a root key exists, a missing, unreadable or different
 * keyring means the provider key is inaccessible.  The file is re-read on
 * every use, so its loss is never hidden by a cache here.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"


#define KEYRING_HINT "Restore the keyring file that holds the ledger's provider key, with mode 0600."

static const LedgerProviderOption file_options[] = {
	{"keyring_file", 's', false},
	{NULL}
};

static void
file_validate(const LedgerProvider *p)
{
	(void) ledger_provider_path_option(p, "keyring_file");
}

static void
keyring_wipe(Keyring *ring)
{
	ledger_wipe(ring, sizeof(Keyring));
	pfree(ring);
}

static char *
keyring_path(const LedgerProvider *p)
{
	char	   *path = ledger_provider_path_option(p, "keyring_file");

	if (path != NULL)
		return path;
	if (ledger_keyring_file == NULL || ledger_keyring_file[0] == '\0')
		ledger_provider_inaccessible(p, "Set ledger.keyring_file to a path outside the data directory and reload the configuration.",
									 "ledger.keyring_file is not set");
	path = pstrdup(ledger_keyring_file);
	if (!is_absolute_path(path))
		path = psprintf("%s/%s", DataDir, ledger_keyring_file);
	canonicalize_path(path);
	return path;
}

static void
inaccessible(const LedgerProvider *p, const char *path, const char *detail)
{
	ledger_provider_inaccessible(p, KEYRING_HINT, "keyring file \"%s\": %s", path, detail);
}

/*
 * Read the keyring.  Returns NULL if the file does not exist; every other
 * problem is an error.
 */
static Keyring *
read_keyring(const LedgerProvider *p, const char *path)
{
	int			len;
	char	   *text = ledger_provider_read_secret_file(p, "keyring file", path, &len);
	Keyring    *ring;
	bool		ok;

	if (text == NULL)
		return NULL;
	ring = palloc(sizeof(Keyring));
	ok = keyring_parse(text, len, ring);
	ledger_wipe(text, len);
	pfree(text);
	if (!ok)
	{
		keyring_wipe(ring);
		inaccessible(p, path, "the file is malformed");
	}
	return ring;
}

/* The keyring, which must exist. */
static Keyring *
existing_keyring(const LedgerProvider *p, const char *path)
{
	Keyring    *ring = read_keyring(p, path);

	if (ring == NULL)
		inaccessible(p, path, "the file does not exist");
	return ring;
}

/*
 * Write a keyring to "path": under a temporary name, synced, then linked
 * into place if it is new (so that a concurrent creator or a crash never
 * leaves a partial keyring) or renamed over the old one, and the directory
 * synced: the root key it wraps is durable at commit, the keyring must be
 * too.  The text is wiped either way.
 */
static void
write_keyring(const char *path, const Keyring *ring, bool replace)
{
	char	   *tmp = psprintf("%s.%d.tmp", path, MyProcPid);
	char	   *text = palloc(KEYRING_MAX_FILE_SIZE);
	char	   *dir = pstrdup(path);
	int			len = (int) keyring_format(ring, text, KEYRING_MAX_FILE_SIZE);
	int			fd;
	int			save;

	if (len >= KEYRING_MAX_FILE_SIZE)
	{
		ledger_wipe(text, KEYRING_MAX_FILE_SIZE);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("keyring file \"%s\" would exceed 64 kB", path),
				 errhint("Purge keys that are pending deletion (ledger-keyring purge).")));
	}
	/* One left by a backend of the same pid that crashed is ours to drop. */
	(void) unlink(tmp);
	fd = OpenTransientFilePerm(tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY,
							   S_IRUSR | S_IWUSR);
	if (fd < 0 || write(fd, text, len) != len || pg_fsync(fd) != 0)
	{
		save = errno;
		ledger_wipe(text, KEYRING_MAX_FILE_SIZE);
		if (fd >= 0)
		{
			CloseTransientFile(fd);
			unlink(tmp);
		}
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write keyring file \"%s\": %m", tmp),
				 errhint("Check that the keyring's directory exists and is writable by the server.")));
	}
	ledger_wipe(text, KEYRING_MAX_FILE_SIZE);
	CloseTransientFile(fd);
	if (replace ? rename(tmp, path) != 0 : (link(tmp, path) != 0 && errno != EEXIST))
	{
		save = errno;
		unlink(tmp);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create keyring file \"%s\": %m", path)));
	}
	if (!replace)
		unlink(tmp);
	get_parent_directory(dir);
	fsync_fname(dir[0] ? dir : ".", true);
}

/* Create a keyring with one fresh key. */
static void
create_keyring(const char *path)
{
	Keyring    *ring = palloc0(sizeof(Keyring));
	uint8		random[16];
	char		id[KEYRING_ID_LEN + 1];

	ledger_random_bytes(random, sizeof(random));
	keyring_format_id(random, id);
	strlcpy(ring->keys[0].id, id, sizeof(ring->keys[0].id));
	ring->keys[0].version = 1;
	ring->keys[0].state = KEYRING_ENABLED;
	ledger_random_bytes(ring->keys[0].material, KEYRING_MATERIAL_LEN);
	ring->nkeys = 1;
	PG_TRY();
	{
		write_keyring(path, ring, false);
	}
	PG_FINALLY();
	{
		keyring_wipe(ring);
	}
	PG_END_TRY();
	ereport(LOG,
			(errmsg("ledger created keyring file \"%s\" with provider key %s", path, id)));
}

/*
 * Add a version with new material to provider key "name", as
 * "ledger-keyring rotate" does, under the same lock: "<keyring>.lock"
 * beside the file a symbolic link names.  False, with nothing done, if
 * ledger-keyring holds the lock now.
 */
static bool
file_rotate_material(const LedgerProvider *p, const char *name)
{
	char	   *path = keyring_path(p);
	char		real[PATH_MAX];
	char	   *lock;
	int			fd;
	Keyring    *ring;
	const char *id;
	KeyringKey *newest;
	KeyringKey *k;

	if (realpath(path, real) != NULL)
		path = pstrdup(real);
	lock = psprintf("%s.lock", path);
	if ((fd = OpenTransientFilePerm(lock, O_RDWR | O_CREAT, S_IRUSR | S_IWUSR)) < 0)
		inaccessible(p, path, psprintf("its lock file cannot be opened: %s", strerror(errno)));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
	{
		CloseTransientFile(fd);
		return false;
	}
	ring = existing_keyring(p, path);
	id = keyring_resolve(ring, name);
	newest = id ? keyring_newest(ring, id, false) : NULL;
	if (newest == NULL || newest->state != KEYRING_ENABLED || ring->nkeys == KEYRING_MAX_KEYS)
	{
		keyring_wipe(ring);
		CloseTransientFile(fd);
		inaccessible(p, path, psprintf("provider key %s has no enabled newest version to rotate, or the keyring is full", name));
	}
	k = &ring->keys[ring->nkeys++];
	memset(k, 0, sizeof(*k));
	strlcpy(k->id, id, sizeof(k->id));
	k->version = newest->version + 1;
	k->state = KEYRING_ENABLED;
	ledger_random_bytes(k->material, KEYRING_MATERIAL_LEN);
	PG_TRY();
	{
		write_keyring(path, ring, true);
	}
	PG_CATCH();
	{
		keyring_wipe(ring);
		CloseTransientFile(fd);
		PG_RE_THROW();
	}
	PG_END_TRY();
	CloseTransientFile(fd);
	ereport(LOG,
			(errmsg("ledger added version %d of provider key %s to keyring file \"%s\"",
					k->version, k->id, path)));
	keyring_wipe(ring);
	return true;
}

/* Refuse a provider key that the keyring cannot wrap with now. */
static void
file_check_key(const LedgerProvider *p, const char *name)
{
	char	   *path;
	Keyring    *ring;
	const char *id;
	bool		usable;

	if (!keyring_valid_id(name) && !keyring_valid_alias(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a valid provider key id or alias", name),
				 errdetail("A key id of the file provider has 1 to %d characters out of a-z, 0-9 and \"-\"; "
						   "an alias is \"alias/\" and a name of a-z, 0-9, \"-\", \"_\" and \"/\", %d characters in all at most.",
						   KEYRING_ID_LEN, KEYRING_ALIAS_LEN)));
	path = keyring_path(p);
	ring = existing_keyring(p, path);
	id = keyring_resolve(ring, name);
	usable = id != NULL && keyring_newest(ring, id, true) != NULL;
	keyring_wipe(ring);
	if (!usable)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("provider key %s has no enabled version in keyring file \"%s\"",
						name, path),
				 errhint("Add the key to the keyring, or enable it, first (ledger-keyring create, enable, alias).")));
}

/*
 * Wrap a key with the newest enabled version of provider key "name", an
 * id or an alias (NULL: of any key), creating the keyring first if
 * may_create and there is none.
 */
static bytea *
file_wrap(const LedgerProvider *p, const char *name, bool may_create,
		  const LedgerKeyContext *cxt, const uint8 *key, LedgerProviderRef *ref)
{
	char	   *path = keyring_path(p);
	Keyring    *ring = read_keyring(p, path);
	const char *id = NULL;
	KeyringKey *pk;
	bytea	   *wrapped = palloc(VARHDRSZ + LEDGER_WRAPPED_LEN);
	uint8	   *w = (uint8 *) VARDATA(wrapped);

	if (ring == NULL && may_create)
		create_keyring(path);
	if (ring == NULL)
		ring = existing_keyring(p, path);
	if (name != NULL && (id = keyring_resolve(ring, name)) == NULL)
	{
		keyring_wipe(ring);
		inaccessible(p, path, psprintf("it holds no provider key %s", name));
	}
	pk = keyring_newest(ring, id, true);
	if (pk == NULL)
	{
		keyring_wipe(ring);
		inaccessible(p, path, name == NULL ? "it holds no enabled key" :
					 psprintf("it holds no enabled version of provider key %s", name));
	}
	ledger_random_bytes(w, LEDGER_NONCE_LEN);
	ledger_aead_seal(pk->material, w, cxt->aad, cxt->aadlen, key, LEDGER_KEY_LEN,
					 w + LEDGER_NONCE_LEN);
	SET_VARSIZE(wrapped, VARHDRSZ + LEDGER_WRAPPED_LEN);
	strlcpy(ref->key_id, pk->id, sizeof(ref->key_id));
	ref->version = pk->version;
	if (name != NULL && keyring_valid_alias(name))
		strlcpy(ref->alias, name, sizeof(ref->alias));
	keyring_wipe(ring);
	return wrapped;
}

static void
file_unwrap(const LedgerProvider *p, const LedgerProviderRef *ref,
			const LedgerKeyContext *cxt, const uint8 *wrapped, int len, uint8 *key)
{
	char	   *path = keyring_path(p);
	Keyring    *ring = existing_keyring(p, path);
	KeyringKey *pk;
	bool		ok;

	pk = keyring_find(ring, ref->key_id, ref->version);
	if (pk == NULL || pk->state != KEYRING_ENABLED)
	{
		KeyringState state = pk ? pk->state : KEYRING_ENABLED;

		keyring_wipe(ring);
		inaccessible(p, path, pk == NULL ?
					 psprintf("it does not hold provider key %s version %d", ref->key_id, ref->version) :
					 state == KEYRING_DISABLED ?
					 psprintf("provider key %s version %d is disabled", ref->key_id, ref->version) :
					 psprintf("provider key %s version %d is pending deletion", ref->key_id, ref->version));
	}
	ok = len == LEDGER_WRAPPED_LEN &&
		ledger_aead_open(pk->material, wrapped, cxt->aad, cxt->aadlen,
						 wrapped + LEDGER_NONCE_LEN,
						 LEDGER_KEY_LEN + LEDGER_TAG_LEN, key);
	keyring_wipe(ring);
	if (!ok)
		inaccessible(p, path, psprintf("provider key %s version %d does not open the ledger's root key", ref->key_id, ref->version));
}

const LedgerProviderType ledger_file_provider = {
	.name = "file",
	.options = file_options,
	.validate = file_validate,
	.check_key = file_check_key,
	.rotate_material = file_rotate_material,
	.wrap = file_wrap,
	.unwrap = file_unwrap,
};
