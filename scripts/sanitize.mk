# scripts/sanitize.mk -- the Makefile half of test.sh's sanitizer pass.
#
# Kept out of the project Makefile on purpose: it wraps it.  From the top of
# a source tree (test.sh uses a private copy, since `build` cleans first):
#
#   make -f scripts/sanitize.mk build         # make clean, then an ASan+UBSan build
#   make -f scripts/sanitize.mk install       # install that build (root/sudo)
#   make -f scripts/sanitize.mk installcheck  # the REGRESS suite under ASan/UBSan
#
# Then reinstall the normal build (scripts/setup.sh does).
#
# Why the run needs more than the flags: the Debian postgres binary is not
# built with ASan, and the ASan runtime must be the first library in a
# process, so a sanitized ledger.so can only be loaded into a server started
# with the runtime in LD_PRELOAD.  pg_regress starts its temporary server
# itself and passes its environment on, so installcheck preloads the runtime
# for the whole run (pg_regress, initdb, psql too, all harmless with
# detect_leaks=0: those tools leak by design), together with a small stub
# library (asan_preload.c) without which Debian's postgres hangs at start-up
# under a preloaded ASan runtime.  Sanitizer reports and failed assertions
# ("TRAP:") land in the server log, log/postmaster.log, which test.sh
# searches: the tests themselves only see a crashed backend.
#
# Limits worth knowing: memory from palloc is not poisoned (the server's
# allocator is not instrumented), so ASan checks ledger's own accesses to
# its stack, globals and malloc'ed memory, plus the libc calls it
# intercepts (memcpy...).  PostgreSQL compiles with -fwrapv, so UBSan does
# not report signed overflow.

SANITIZE_COPT = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined -DUSE_ASSERT_CHECKING

PG_CONFIG ?= pg_config
SANITIZE_CC := $(shell $(PG_CONFIG) --cc)
ASAN_RUNTIME := $(shell $(SANITIZE_CC) -print-file-name=libasan.so)
# Preloaded after the runtime: without it the server hangs at start-up
# (the reason is in asan_preload.c).
ASAN_PRELOAD_FIX = $(CURDIR)/asan-preload.so

# abort_on_error: a bad backend dies at once and the crash is visible;
# detect_leaks=0: the server and its tools never free on exit.
# Reports go to stderr, i.e. into the server log (log/postmaster.log):
# UBSan ignores log_path in this gcc's combined ASan+UBSan mode anyway.
SANITIZE_ASAN_OPTIONS = detect_leaks=0:abort_on_error=1:print_stacktrace=1:$\
	detect_stack_use_after_return=0:quarantine_size_mb=64
SANITIZE_UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1:abort_on_error=1

SANITIZE_MAKE = $(MAKE) -f Makefile PG_CONFIG='$(PG_CONFIG)' COPT='$(SANITIZE_COPT)'

.PHONY: build install installcheck
build: $(ASAN_PRELOAD_FIX)
	$(SANITIZE_MAKE) clean
	$(SANITIZE_MAKE)

$(ASAN_PRELOAD_FIX): scripts/asan_preload.c
	$(SANITIZE_CC) -shared -fPIC -O1 -Wall -Wextra -o $@ $<

install:
	$(SANITIZE_MAKE) install

# REGRESS only: ISOLATION and TAP_TESTS are emptied for this run.
installcheck: $(ASAN_PRELOAD_FIX)
	@test -f '$(ASAN_RUNTIME)' || { echo 'no ASan runtime ($(ASAN_RUNTIME)); install libasan8' >&2; exit 1; }
	LD_PRELOAD='$(ASAN_RUNTIME) $(ASAN_PRELOAD_FIX)' \
	ASAN_OPTIONS='$(SANITIZE_ASAN_OPTIONS)' \
	UBSAN_OPTIONS='$(SANITIZE_UBSAN_OPTIONS)' \
	$(SANITIZE_MAKE) installcheck ISOLATION= TAP_TESTS=
