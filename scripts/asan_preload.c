/*
 * scripts/asan_preload.c -- preloaded after the ASan runtime by
 * scripts/sanitize.mk; nothing else uses it.
 *
 * Why: with the ASan runtime in LD_PRELOAD, Debian's postgres, initdb and
 * psql hang before main().  A library constructor (libgpg-error's) calls
 * bindtextdomain(), which holds glibc's gettext lock while it calls
 * malloc(); that first malloc initialises ASan, whose start-up looks up the
 * optional symbol swift_demangle with dlsym() and then calls dlerror(),
 * which translates its message and so takes and releases the same lock.
 * The lock ends up released twice and the next bindtextdomain() waits
 * forever.  Defining the symbol means the lookup succeeds and dlerror()
 * has no message to translate.
 *
 * ASan calls it only for Swift symbol names ("_T..."); returning NULL means
 * "not demangled", as if the symbol were absent.
 */
#include <stddef.h>
#include <stdint.h>

char	   *swift_demangle(const char *mangled, size_t mangled_len,
						   char *out, size_t *out_len, uint32_t flags);

char *
swift_demangle(const char *mangled, size_t mangled_len,
			   char *out, size_t *out_len, uint32_t flags)
{
	(void) mangled;
	(void) mangled_len;
	(void) out;
	(void) out_len;
	(void) flags;
	return NULL;
}
