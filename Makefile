# ledger: PGXS build.  See README.md for the two commands that set up
# everything; this file only builds, installs and runs the suites.

MODULE_big = ledger
OBJS = \
	src/ledger.o \
	src/guc.o \
	src/crypto.o \
	src/provider.o \
	src/provider_call.o \
	src/provider_file.o \
	src/provider_command.o \
	src/provider_pkcs11.o \
	src/provider_kmip.o \
	src/kmip.o \
	src/keyring.o \
	src/keys.o \
	src/keystatus.o \
	src/keychange.o \
	src/keyevents.o \
	src/catalog.o \
	src/payload.o \
	src/journal.o \
	src/tableam.o \
	src/index_build.o \
	src/rewrite.o \
	src/guard.o \
	src/sqlfuncs.o \
	src/merkle.o \
	src/layout.o \
	src/proofjson.o \
	src/chain.o \
	src/worker.o \
	src/verify.o \
	src/verifyscan.o \
	src/revsort.o \
	src/history.o \
	src/proof.o \
	src/events.o

EXTENSION = ledger
DATA = sql/ledger--0.1.sql
PGFILEDESC = "ledger - verifiable, always-encrypted ledger tables"

# pg_regress: inputs in sql/, outputs in expected/, on a temporary instance
# that preloads the library (see test/ledger.conf).
REGRESS = $(patsubst sql/%.sql,%,$(filter-out sql/ledger--%,$(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-instance=$(CURDIR)/tmp_check_regress \
	--temp-config=$(srcdir)/test/ledger.conf --load-extension=ledger
ISOLATION = $(patsubst test/specs/%.spec,%,$(wildcard test/specs/*.spec))
ISOLATION_OPTS = --inputdir=$(srcdir)/test \
	--temp-instance=$(CURDIR)/tmp_check_iso \
	--temp-config=$(srcdir)/test/ledger.conf --load-extension=ledger
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

P11KIT_CFLAGS := $(shell pkg-config --cflags p11-kit-1)
P11KIT_LIBS := $(shell pkg-config --libs p11-kit-1)
PG_CPPFLAGS = -I$(srcdir)/src $(P11KIT_CFLAGS) -Wall -Wextra -Werror \
	-Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
SHLIB_LINK = -lssl -lcrypto -ljansson $(P11KIT_LIBS)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object depends on every header,
# or a changed struct would leave stale objects disagreeing on its layout.
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# A second build with assertions and sanitizers; see scripts/test.sh.
.PHONY: bench
bench:
	$(srcdir)/scripts/bench.sh

# The tools: ledger-verify, the offline auditor, and ledger-keyring, the
# file provider's console.  Server-independent code only.
TOOL_SRCS = tools/ledger_verify.c src/merkle.c src/layout.c src/proofjson.c src/keyring.c
KEYRING_TOOL_SRCS = tools/ledger_keyring.c src/keyring.c
TOOL_CFLAGS = -O2 -Wall -Wextra -Werror -Wno-unused-parameter -I$(srcdir)/src
EXTRA_CLEAN = ledger-verify ledger-keyring fuzz-proof fuzz-keyring fuzz-kmip fuzz-work \
	fuzz-keyring-work fuzz-kmip-work

all: ledger-verify ledger-keyring

ledger-verify: $(TOOL_SRCS) src/merkle.h src/layout.h src/proofjson.h src/keyring.h
	$(CC) $(TOOL_CFLAGS) -o $@ $(TOOL_SRCS) -lcrypto -ljansson

ledger-keyring: $(KEYRING_TOOL_SRCS) src/keyring.h
	$(CC) $(TOOL_CFLAGS) -o $@ $(KEYRING_TOOL_SRCS) -lcrypto

install: install-tools
.PHONY: install-tools
install-tools: ledger-verify ledger-keyring
	$(INSTALL_PROGRAM) ledger-verify '$(DESTDIR)$(bindir)/ledger-verify'
	$(INSTALL_PROGRAM) ledger-keyring '$(DESTDIR)$(bindir)/ledger-keyring'

# The fuzz harness of the proof reader and checker (clang's libFuzzer).
FUZZ_SECONDS ?= 60
FUZZ_SRCS = tools/fuzz_proof.c src/merkle.c src/layout.c src/proofjson.c
fuzz-proof: $(FUZZ_SRCS) src/merkle.h src/layout.h src/proofjson.h
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-I$(srcdir)/src -o $@ $(FUZZ_SRCS) -lcrypto -ljansson

fuzz-keyring: tools/fuzz_keyring.c src/keyring.c src/keyring.h
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-I$(srcdir)/src -o $@ tools/fuzz_keyring.c src/keyring.c

fuzz-kmip: tools/fuzz_kmip.c src/kmip.c src/kmip.h
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-I$(srcdir)/src -o $@ tools/fuzz_kmip.c src/kmip.c

.PHONY: fuzz
fuzz: fuzz-proof fuzz-keyring fuzz-kmip
	rm -rf fuzz-work && mkdir -p fuzz-work && cp $(srcdir)/tools/fuzz-corpus/* fuzz-work/
	./fuzz-proof -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
		-dict=$(srcdir)/tools/fuzz-proof.dict fuzz-work
	rm -rf fuzz-keyring-work && mkdir -p fuzz-keyring-work
	./fuzz-keyring -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
		-dict=$(srcdir)/tools/fuzz-keyring.dict fuzz-keyring-work
	rm -rf fuzz-kmip-work && mkdir -p fuzz-kmip-work && cp $(srcdir)/tools/fuzz-kmip-corpus/* fuzz-kmip-work/
	./fuzz-kmip -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 fuzz-kmip-work
