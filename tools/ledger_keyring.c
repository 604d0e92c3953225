/*-------------------------------------------------------------------------
 *
 * ledger_keyring.c
 *	  ledger-keyring: the console of the file key provider, as a KMS
 *	  console is for its keys.
 *
 *	  ledger-keyring [--keyring FILE] COMMAND [ARGS]
 *
 *	  create [--alias alias/NAME]   a new key; prints its id
 *	  list                          keys, versions, states and aliases
 *	  alias alias/NAME KEY          point an alias at a key (new or moved)
 *	  unalias alias/NAME
 *	  rotate KEY                    new key material, as a new version
 *	  disable KEY | enable KEY      every version of the key
 *	  schedule-deletion KEY [--days N]   N from 7 to 30, default 30
 *	  cancel-deletion KEY           back to disabled, as in a KMS
 *	  purge                         delete keys whose waiting period is over
 *	  import KEY-ID                 64 hex digits of key material from stdin
 *
 * KEY is a key id or an alias.  The keyring is FILE, or $LEDGER_KEYRING.
 * It never prints key material.  Changes are written to a new file, synced
 * and renamed over the old one, so the server, which re-reads the keyring
 * on every use, sees either the old or the new keyring.
 *
 * Exit status: 0 done, 1 refused (bad arguments, unknown key, a rule of
 * the keyring), 2 the keyring could not be read or written.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "keyring.h"

#define DAY_SECONDS			86400

static const char *path;
static Keyring ring;
static char text[KEYRING_MAX_FILE_SIZE + 1];

static void
wipe(void)
{
	OPENSSL_cleanse(&ring, sizeof(ring));
	OPENSSL_cleanse(text, sizeof(text));
}

/* The message is formatted before the wipe: its arguments may point into the keyring. */
static void
fail(int code, const char *fmt,...)
{
	va_list		ap;
	char		msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wipe();
	fprintf(stderr, "ledger-keyring: %s\n", msg);
	exit(code);
}

static void
usage(void)
{
	fail(1, "usage: ledger-keyring [--keyring FILE] "
		 "create [--alias alias/NAME] | list | alias alias/NAME KEY | unalias alias/NAME | "
		 "rotate KEY | disable KEY | enable KEY | schedule-deletion KEY [--days N] | "
		 "cancel-deletion KEY | purge | import KEY-ID");
}

/* Read the keyring; a missing one is empty if "may_be_new". */
static void
load(int may_be_new)
{
	int			fd = open(path, O_RDONLY);
	struct stat st;
	ssize_t		n;

	memset(&ring, 0, sizeof(ring));
	if (fd < 0)
	{
		if (errno == ENOENT && may_be_new)
			return;
		fail(2, "could not open keyring \"%s\": %s", path, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > KEYRING_MAX_FILE_SIZE)
		fail(2, "\"%s\" is not a keyring file of at most 64 kB", path);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_uid != geteuid())
		fail(2, "keyring \"%s\" is accessible to other users; run: chmod 0600 %s", path, path);
	n = read(fd, text, st.st_size);
	close(fd);
	if (n != st.st_size)
		fail(2, "could not read keyring \"%s\"", path);
	if (!keyring_parse(text, (size_t) n, &ring))
		fail(2, "keyring \"%s\" is malformed", path);
	OPENSSL_cleanse(text, sizeof(text));
}

/* Write the keyring: a new file, synced, renamed over the old one. */
static void
save(void)
{
	char		tmp[PATH_MAX];
	char	   *dir;
	size_t		len = keyring_format(&ring, text, sizeof(text));
	int			fd;

	if (len >= sizeof(text))
		fail(1, "the keyring would exceed 64 kB");
	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int) getpid()) >= (int) sizeof(tmp))
		fail(2, "the keyring's path is too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		fail(2, "could not create \"%s\": %s", tmp, strerror(errno));
	if (write(fd, text, len) != (ssize_t) len || fsync(fd) != 0 || close(fd) != 0)
	{
		unlink(tmp);
		fail(2, "could not write \"%s\": %s", tmp, strerror(errno));
	}
	if (rename(tmp, path) != 0)
	{
		unlink(tmp);
		fail(2, "could not rename \"%s\" to \"%s\": %s", tmp, path, strerror(errno));
	}
	dir = strdup(path);
	fd = dir ? open(dirname(dir), O_RDONLY) : -1;
	if (fd >= 0)
	{
		(void) fsync(fd);
		close(fd);
	}
	free(dir);
	OPENSSL_cleanse(text, sizeof(text));
}

/* Key material in memory must not end up in a core file. */
static void
protect_process(void)
{
	struct rlimit none = {0, 0};

	(void) setrlimit(RLIMIT_CORE, &none);
#ifdef PR_SET_DUMPABLE
	(void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

/*
 * Work on the file a symbolic link names, so that the rename replaces the
 * keyring itself, and hold an exclusive lock on "<keyring>.lock" until
 * exit, so that two runs never lose each other's changes.
 */
static void
lock_keyring(void)
{
	static char real[PATH_MAX];
	char		lockpath[PATH_MAX + 8];
	int			fd;

	if (realpath(path, real) != NULL)
		path = real;
	else if (errno != ENOENT)
		fail(2, "could not resolve \"%s\": %s", path, strerror(errno));
	snprintf(lockpath, sizeof(lockpath), "%s.lock", path);
	fd = open(lockpath, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		fail(2, "could not open lock file \"%s\": %s", lockpath, strerror(errno));
	if (flock(fd, LOCK_EX) != 0)
		fail(2, "could not lock \"%s\": %s", lockpath, strerror(errno));
}

static void
random_bytes(uint8_t *out, int n)
{
	if (RAND_bytes(out, n) != 1)
		fail(2, "could not generate random bytes");
}

/* The key id that KEY (an id or an alias) names, or fail. */
static const char *
key_named(const char *name)
{
	const char *id = keyring_resolve(&ring, name);

	if (id == NULL || keyring_newest(&ring, id, 0) == NULL)
		fail(1, "the keyring has no key %s", name);
	return id;
}

static KeyringKey *
add_version(const char *id, int32_t version)
{
	KeyringKey *k;

	if (ring.nkeys >= KEYRING_MAX_KEYS)
		fail(1, "the keyring holds %d key versions already", KEYRING_MAX_KEYS);
	k = &ring.keys[ring.nkeys++];
	memset(k, 0, sizeof(*k));
	strcpy(k->id, id);
	k->version = version;
	k->state = KEYRING_ENABLED;
	return k;
}

static void
set_alias(const char *name, const char *id)
{
	KeyringAlias *a = NULL;

	if (!keyring_valid_alias(name))
		fail(1, "\"%s\" is not an alias: use alias/NAME, with a-z, 0-9, -, _ and /", name);
	for (int i = 0; i < ring.naliases; i++)
		if (strcmp(ring.aliases[i].name, name) == 0)
			a = &ring.aliases[i];
	if (a == NULL)
	{
		if (ring.naliases >= KEYRING_MAX_ALIASES)
			fail(1, "the keyring holds %d aliases already", KEYRING_MAX_ALIASES);
		a = &ring.aliases[ring.naliases++];
		strcpy(a->name, name);
	}
	strcpy(a->id, id);
}

/* Every version of a key in state "from" (-1: any) goes to "to". */
static int
set_state(const char *id, int from, KeyringState to, int64_t delete_at)
{
	int			n = 0;

	for (int i = 0; i < ring.nkeys; i++)
		if (strcmp(ring.keys[i].id, id) == 0 &&
			(from < 0 || ring.keys[i].state == (KeyringState) from))
		{
			ring.keys[i].state = to;
			ring.keys[i].delete_at = delete_at;
			n++;
		}
	return n;
}

static void
cmd_create(const char *alias)
{
	uint8_t		r[16];
	char		id[KEYRING_ID_LEN + 1];
	KeyringKey *k;

	load(1);
	if (alias && keyring_resolve(&ring, alias) != NULL)
		fail(1, "alias %s exists already; move it with: ledger-keyring alias %s KEY", alias, alias);
	random_bytes(r, sizeof(r));
	keyring_format_id(r, id);
	k = add_version(id, 1);
	random_bytes(k->material, KEYRING_MATERIAL_LEN);
	if (alias)
		set_alias(alias, id);
	save();
	printf("%s\n", id);
}

static void
cmd_list(void)
{
	load(0);
	printf("%-36s  %7s  %-16s  %s\n", "key", "version", "state", "aliases");
	for (int i = 0; i < ring.nkeys; i++)
	{
		const KeyringKey *k = &ring.keys[i];
		char		when[64] = "";

		if (k->state == KEYRING_PENDING_DELETION)
		{
			time_t		t = (time_t) k->delete_at;
			struct tm  *tm = gmtime(&t);

			if (tm != NULL)
				strftime(when, sizeof(when), " (deletion %Y-%m-%d %H:%M UTC)", tm);
		}
		printf("%-36s  %7d  %-16s", k->id, (int) k->version, keyring_state_name(k->state));
		for (int j = 0; j < ring.naliases; j++)
			if (strcmp(ring.aliases[j].id, k->id) == 0)
				printf("  %s", ring.aliases[j].name);
		printf("%s\n", when);
	}
}

static void
cmd_rotate(const char *name)
{
	const char *id;
	KeyringKey *newest;
	KeyringKey *k;

	load(0);
	id = key_named(name);
	newest = keyring_newest(&ring, id, 0);
	if (newest->state != KEYRING_ENABLED)
		fail(1, "key %s is %s; enable it before rotating it", id, keyring_state_name(newest->state));
	k = add_version(id, newest->version + 1);
	random_bytes(k->material, KEYRING_MATERIAL_LEN);
	save();
	printf("%s %d\n", id, (int) k->version);
}

static void
cmd_state(const char *name, KeyringState from, KeyringState to, const char *verb)
{
	const char *id;

	load(0);
	id = key_named(name);
	if (keyring_newest(&ring, id, 0)->state != (KeyringState) from)
		fail(1, "key %s is %s, not %s", id,
			 keyring_state_name(keyring_newest(&ring, id, 0)->state),
			 keyring_state_name((KeyringState) from));
	set_state(id, from, to, 0);
	save();
	printf("%s %s\n", id, verb);
}

static void
cmd_schedule_deletion(const char *name, int days)
{
	const char *id;
	int64_t		when = (int64_t) time(NULL) + (int64_t) days * DAY_SECONDS;
	time_t		t = (time_t) when;
	char		buf[64];

	if (days < 7 || days > 30)
		fail(1, "the waiting period is 7 to 30 days");
	load(0);
	id = key_named(name);
	if (keyring_newest(&ring, id, 0)->state == KEYRING_PENDING_DELETION)
		fail(1, "key %s is pending deletion already", id);
	set_state(id, -1, KEYRING_PENDING_DELETION, when);
	save();
	if (gmtime(&t) == NULL)
		fail(2, "the deletion date cannot be shown");
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	printf("%s pending deletion on %s; until then: ledger-keyring cancel-deletion %s\n",
		   id, buf, id);
}

static void
cmd_purge(void)
{
	time_t		now = time(NULL);
	int			kept = 0;
	int			purged = 0;

	load(0);
	for (int i = 0; i < ring.nkeys; i++)
	{
		KeyringKey *k = &ring.keys[i];

		if (k->state == KEYRING_PENDING_DELETION && k->delete_at <= now)
		{
			printf("deleted %s version %d\n", k->id, (int) k->version);
			purged++;
			continue;
		}
		ring.keys[kept++] = *k;
	}
	OPENSSL_cleanse(&ring.keys[kept], sizeof(KeyringKey) * (ring.nkeys - kept));
	ring.nkeys = kept;
	/* An alias of a deleted key goes with it. */
	kept = 0;
	for (int i = 0; i < ring.naliases; i++)
		if (keyring_resolve(&ring, ring.aliases[i].id) != NULL)
			ring.aliases[kept++] = ring.aliases[i];
	ring.naliases = kept;
	if (purged > 0)
		save();
	printf("%d key versions deleted\n", purged);
}

static void
cmd_import(const char *id)
{
	char		hex[2 * KEYRING_MATERIAL_LEN + 2];
	KeyringKey *newest;
	KeyringKey *k;
	size_t		n;

	if (!keyring_valid_id(id))
		fail(1, "\"%s\" is not a key id: 1 to %d characters of a-z, 0-9 and -", id, KEYRING_ID_LEN);
	load(1);
	/* read(), not stdio: no copy of the material stays in a buffer. */
	{
		ssize_t		r = read(0, hex, sizeof(hex) - 1);

		n = r > 0 ? (size_t) r : 0;
	}
	while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r'))
		n--;
	hex[n] = '\0';
	newest = keyring_newest(&ring, id, 0);
	if (newest != NULL && newest->state != KEYRING_ENABLED)
		fail(1, "key %s is %s; enable it first", id, keyring_state_name(newest->state));
	k = add_version(id, newest ? newest->version + 1 : 1);
	/* Parse it as a keyring line would be: one rule for material. */
	{
		char		line[160];
		Keyring    *one = calloc(1, sizeof(Keyring));
		int			ok;

		if (one == NULL)
			fail(2, "out of memory");
		int			len = snprintf(line, sizeof(line), "key %s 1 enabled %s\n", id, hex);

		ok = n == 2 * KEYRING_MATERIAL_LEN && len < (int) sizeof(line) &&
			keyring_parse(line, (size_t) len, one) && one->nkeys == 1;
		if (ok)
			memcpy(k->material, one->keys[0].material, KEYRING_MATERIAL_LEN);
		OPENSSL_cleanse(line, sizeof(line));
		OPENSSL_cleanse(hex, sizeof(hex));
		OPENSSL_cleanse(one, sizeof(Keyring));
		free(one);
		if (!ok)
			fail(1, "key material must be 64 hex digits on standard input");
	}
	save();
	printf("%s %d\n", id, (int) k->version);
}

int
main(int argc, char **argv)
{
	int			i = 1;
	const char *cmd;

	path = getenv("LEDGER_KEYRING");
	if (i + 1 < argc && strcmp(argv[i], "--keyring") == 0)
	{
		path = argv[i + 1];
		i += 2;
	}
	if (path == NULL || path[0] == '\0' || i >= argc)
		usage();
	umask(077);
	protect_process();
	lock_keyring();
	cmd = argv[i++];
#define ARGS(n) do { if (argc - i != (n)) usage(); } while (0)
	if (strcmp(cmd, "create") == 0)
	{
		if (argc - i == 2 && strcmp(argv[i], "--alias") == 0)
		{
			if (!keyring_valid_alias(argv[i + 1]))
				fail(1, "\"%s\" is not an alias: use alias/NAME", argv[i + 1]);
			cmd_create(argv[i + 1]);
		}
		else
		{
			ARGS(0);
			cmd_create(NULL);
		}
	}
	else if (strcmp(cmd, "list") == 0)
	{
		ARGS(0);
		cmd_list();
	}
	else if (strcmp(cmd, "alias") == 0)
	{
		ARGS(2);
		load(0);
		set_alias(argv[i], key_named(argv[i + 1]));
		save();
		printf("%s -> %s\n", argv[i], keyring_resolve(&ring, argv[i]));
	}
	else if (strcmp(cmd, "unalias") == 0)
	{
		int			kept = 0;

		ARGS(1);
		load(0);
		key_named(argv[i]);
		for (int j = 0; j < ring.naliases; j++)
			if (strcmp(ring.aliases[j].name, argv[i]) != 0)
				ring.aliases[kept++] = ring.aliases[j];
		ring.naliases = kept;
		save();
		printf("%s removed\n", argv[i]);
	}
	else if (strcmp(cmd, "rotate") == 0)
	{
		ARGS(1);
		cmd_rotate(argv[i]);
	}
	else if (strcmp(cmd, "disable") == 0)
	{
		ARGS(1);
		cmd_state(argv[i], KEYRING_ENABLED, KEYRING_DISABLED, "disabled");
	}
	else if (strcmp(cmd, "enable") == 0)
	{
		ARGS(1);
		cmd_state(argv[i], KEYRING_DISABLED, KEYRING_ENABLED, "enabled");
	}
	else if (strcmp(cmd, "schedule-deletion") == 0)
	{
		int			days = 30;

		if (argc - i == 3 && strcmp(argv[i + 1], "--days") == 0)
		{
			char	   *end;
			long		d = strtol(argv[i + 2], &end, 10);

			if (*argv[i + 2] == '\0' || *end != '\0' || d < 0 || d > 1000)
				fail(1, "--days takes a whole number of days");
			days = (int) d;
		}
		else
			ARGS(1);
		cmd_schedule_deletion(argv[i], days);
	}
	else if (strcmp(cmd, "cancel-deletion") == 0)
	{
		ARGS(1);
		cmd_state(argv[i], KEYRING_PENDING_DELETION, KEYRING_DISABLED, "disabled (deletion cancelled)");
	}
	else if (strcmp(cmd, "purge") == 0)
	{
		ARGS(0);
		cmd_purge();
	}
	else if (strcmp(cmd, "import") == 0)
	{
		ARGS(1);
		cmd_import(argv[i]);
	}
	else
		usage();
	wipe();
	return 0;
}
