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
	if (!S_ISREG(st.st_mode) || st.st_size > KEYRING_MAX_FILE_SIZE)
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
	ring = palloc(sizeof(Keyring));
	ok = keyring_parse(text, n, ring);
	ledger_wipe(text, st.st_size);
	pfree(text);
	if (!ok)
	{
		keyring_wipe(ring);
		inaccessible(path, "the file is malformed");
	}
	return ring;
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
	Keyring    *ring = palloc0(sizeof(Keyring));
	uint8		random[16];
	char		id[KEYRING_ID_LEN + 1];
	char		line[1024];
	int			len;
	int			fd;

	ledger_random_bytes(random, sizeof(random));
	keyring_format_id(random, id);
	strlcpy(ring->keys[0].id, id, sizeof(ring->keys[0].id));
	ring->keys[0].version = 1;
	ring->keys[0].state = KEYRING_ENABLED;
	ledger_random_bytes(ring->keys[0].material, KEYRING_MATERIAL_LEN);
	ring->nkeys = 1;
	len = (int) keyring_format(ring, line, sizeof(line));
	keyring_wipe(ring);
	Assert(len < (int) sizeof(line));

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
	/* The root key it wraps is durable at commit; the keyring must be too. */
	{
		char	   *dir = pstrdup(path);

		get_parent_directory(dir);
		fsync_fname(dir[0] ? dir : ".", true);
	}
	ereport(LOG,
			(errmsg("ledger created keyring file \"%s\" with provider key %s", path, id)));
}

/* Refuse a provider key that the keyring cannot wrap with now. */
void
ledger_provider_check_key(const char *name)
{
	char	   *path = keyring_path();
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
	ring = read_keyring(path);
	if (ring == NULL)
		inaccessible(path, "the file does not exist");
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
void
ledger_provider_wrap(const uint8 *key, const uint8 *aad, int aadlen,
					 const char *name, bool may_create,
					 uint8 *wrapped, LedgerProviderRef *ref)
{
	char	   *path = keyring_path();
	Keyring    *ring = read_keyring(path);
	const char *id = NULL;
	KeyringKey *pk;

	if (ring == NULL && may_create)
	{
		create_keyring(path);
		ring = read_keyring(path);
	}
	if (ring == NULL)
		inaccessible(path, "the file does not exist");
	if (name != NULL && (id = keyring_resolve(ring, name)) == NULL)
	{
		keyring_wipe(ring);
		inaccessible(path, psprintf("it holds no provider key %s", name));
	}
	pk = keyring_newest(ring, id, true);
	if (pk == NULL)
	{
		keyring_wipe(ring);
		inaccessible(path, name == NULL ? "it holds no enabled key" :
					 psprintf("it holds no enabled version of provider key %s", name));
	}
	ledger_random_bytes(wrapped, LEDGER_NONCE_LEN);
	ledger_aead_seal(pk->material, wrapped, aad, aadlen, key, LEDGER_KEY_LEN,
					 wrapped + LEDGER_NONCE_LEN);
	memset(ref, 0, sizeof(*ref));
	strlcpy(ref->key_id, pk->id, sizeof(ref->key_id));
	ref->version = pk->version;
	if (name != NULL && keyring_valid_alias(name))
		strlcpy(ref->alias, name, sizeof(ref->alias));
	keyring_wipe(ring);
}

void
ledger_provider_unwrap(const uint8 *wrapped, const LedgerProviderRef *ref,
					   const uint8 *aad, int aadlen, uint8 *key)
{
	char	   *path = keyring_path();
	Keyring    *ring = read_keyring(path);
	KeyringKey *pk;
	bool		ok;

	if (ring == NULL)
		inaccessible(path, "the file does not exist");
	pk = keyring_find(ring, ref->key_id, ref->version);
	if (pk == NULL || pk->state != KEYRING_ENABLED)
	{
		KeyringState state = pk ? pk->state : KEYRING_ENABLED;

		keyring_wipe(ring);
		inaccessible(path, pk == NULL ?
					 psprintf("it does not hold provider key %s version %d", ref->key_id, ref->version) :
					 state == KEYRING_DISABLED ?
					 psprintf("provider key %s version %d is disabled", ref->key_id, ref->version) :
					 psprintf("provider key %s version %d is pending deletion", ref->key_id, ref->version));
	}
	ok = ledger_aead_open(pk->material, wrapped, aad, aadlen,
						  wrapped + LEDGER_NONCE_LEN,
						  LEDGER_KEY_LEN + LEDGER_TAG_LEN, key);
	keyring_wipe(ring);
	if (!ok)
		inaccessible(path, psprintf("provider key %s version %d does not open the ledger's root key", ref->key_id, ref->version));
}
