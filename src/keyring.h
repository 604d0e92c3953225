/*-------------------------------------------------------------------------
 *
 * keyring.h
 *	  The keyring file's format: parsing, formatting and lookups.
 *
 * No server dependency: the file provider, ledger-keyring and
 * ledger-verify share it.  See keyring.c for the format.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LEDGER_KEYRING_H
#define LEDGER_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYRING_ID_LEN			36	/* a UUID */
#define KEYRING_ALIAS_LEN		64	/* "alias/" and a name */
#define KEYRING_MATERIAL_LEN	32
#define KEYRING_MAX_KEYS		256
#define KEYRING_MAX_ALIASES		64
#define KEYRING_MAX_FILE_SIZE	(64 * 1024)	/* a keyring file is refused above */

typedef enum KeyringState
{
	KEYRING_ENABLED,
	KEYRING_DISABLED,
	KEYRING_PENDING_DELETION
} KeyringState;

typedef struct KeyringKey
{
	char		id[KEYRING_ID_LEN + 1];
	int32_t		version;
	KeyringState state;
	int64_t		delete_at;		/* Unix time, if pending deletion */
	uint8_t		material[KEYRING_MATERIAL_LEN];
} KeyringKey;

typedef struct KeyringAlias
{
	char		name[KEYRING_ALIAS_LEN + 1];
	char		id[KEYRING_ID_LEN + 1];
} KeyringAlias;

typedef struct Keyring
{
	int			nkeys;
	KeyringKey	keys[KEYRING_MAX_KEYS];
	int			naliases;
	KeyringAlias aliases[KEYRING_MAX_ALIASES];
} Keyring;

extern bool keyring_parse(char *text, size_t len, Keyring *ring);
extern size_t keyring_format(const Keyring *ring, char *buf, size_t cap);
extern bool keyring_valid_id(const char *s);
extern bool keyring_valid_alias(const char *s);
extern void keyring_format_id(const uint8_t random[16], char *out);
extern const char *keyring_resolve(const Keyring *ring, const char *name);
extern KeyringKey *keyring_find(Keyring *ring, const char *id, int32_t version);
extern KeyringKey *keyring_newest(Keyring *ring, const char *id, bool enabled_only);
extern const char *keyring_state_name(KeyringState state);

#endif							/* LEDGER_KEYRING_H */
