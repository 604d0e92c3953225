/*-------------------------------------------------------------------------
 *
 * fuzz_keyring.c
 *	  libFuzzer harness of the keyring parser (src/keyring.c).
 *
 * Any input must parse or be refused without a crash or a sanitizer
 * report; what parses must format back to text that parses to the same
 * keyring, and every lookup of what it holds must find it.
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "keyring.h"

static Keyring a,
			b;
static char text[16384];
static char out[KEYRING_MAX_KEYS * 160 + KEYRING_MAX_ALIASES * 120 + 256];

int			LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	size_t		n;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	if (!keyring_parse(text, size, &a))
		return 0;
	n = keyring_format(&a, out, sizeof(out));
	if (n >= sizeof(out) || !keyring_parse(out, n, &b) || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	for (int i = 0; i < a.nkeys; i++)
		if (keyring_find(&a, a.keys[i].id, a.keys[i].version) != &a.keys[i] ||
			keyring_resolve(&a, a.keys[i].id) == NULL ||
			keyring_newest(&a, a.keys[i].id, false) == NULL)
			abort();
	for (int i = 0; i < a.naliases; i++)
		if (strcmp(keyring_resolve(&a, a.aliases[i].name), a.aliases[i].id) != 0)
			abort();
	return 0;
}
