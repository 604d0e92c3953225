# shellcheck shell=bash
# scripts/bench/lib.sh -- helpers shared by scripts/bench.sh and
# scripts/bench/profile.sh: a private, temporary PostgreSQL 15 cluster with
# ledger preloaded, psql/pgbench wrappers, and the benchmark tables.
#
# Source it after scripts/lib.sh.  It defines variables and functions only.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

: "${BENCH_SECONDS:=15}"
: "${BENCH_ROUNDS:=3}"
: "${BENCH_ROWS:=200000}"
: "${BENCH_COPY_ROWS:=1000000}"
: "${BENCH_CLIENTS:=1 8}"
: "${BENCH_KEEP:=0}"

BWORK=""        # temporary directory: data/, keyring, socket, logs, files
BPORT=""
BDB=bench
BPGBIN=""

# -------------------------------------------------------------- checks

# The benchmark measures what is installed; it never builds or installs.
bench_check_installed() {
	[[ -x $PG_CONFIG ]] || die "PostgreSQL $PG_MAJOR is not installed ($PG_CONFIG missing); run scripts/setup.sh"
	BPGBIN=$("$PG_CONFIG" --bindir)
	local lib share
	lib=$("$PG_CONFIG" --pkglibdir)/ledger.so
	share=$("$PG_CONFIG" --sharedir)/extension
	[[ -f $lib ]] || die "the ledger extension is not installed: $lib is missing.
  Build and install it first: make && make install (or scripts/setup.sh)"
	[[ -f $share/ledger.control ]] || die "the ledger extension is not installed: $share/ledger.control is missing.
  Build and install it first: make && make install (or scripts/setup.sh)"
	[[ -x $BPGBIN/pgbench ]] || die "pgbench not found in $BPGBIN"
	if is_root; then
		getent passwd postgres >/dev/null || die "no 'postgres' OS user to run the server as"
	fi
	local v
	for v in BENCH_SECONDS BENCH_ROUNDS BENCH_ROWS BENCH_COPY_ROWS; do
		[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
	done
	for v in $BENCH_CLIENTS; do
		[[ $v =~ ^[1-9][0-9]*$ ]] || die "BENCH_CLIENTS must list positive integers, not '$BENCH_CLIENTS'"
	done
}

# -------------------------------------------------------------- cluster

# psql into the benchmark database; extra arguments follow.
bpsql() {
	"$BPGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$BWORK" -p "$BPORT" -U postgres -d "$BDB" "$@"
}

# One value from one query.
bq() {
	bpsql -Atc "$1"
}

bench_stop_cluster() {
	[[ -n $BWORK && -d $BWORK ]] || return 0
	if [[ -f $BWORK/data/postmaster.pid ]]; then
		pg_ctl_as_pg_user -D "$BWORK/data" stop -m fast -w -t 60 >/dev/null 2>&1 ||
			pg_ctl_as_pg_user -D "$BWORK/data" stop -m immediate -w -t 30 >/dev/null 2>&1 || true
	fi
	if [[ $BENCH_KEEP == 1 ]]; then
		log "kept $BWORK (BENCH_KEEP=1; the cluster is stopped)"
	else
		rm -rf "$BWORK"
	fi
	BWORK=""
}

# initdb + start a private cluster in a new temporary directory.
bench_start_cluster() {
	local base=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
	BWORK=$(mktemp -d "$base/ledger-bench.XXXXXX")
	# The socket path must fit in 107 bytes.
	((${#BWORK} + 20 <= 107)) || die "temporary directory path too long for a Unix socket: $BWORK"
	[[ $BWORK != *[\'\"\\[:space:]]* ]] || die "temporary directory path must not contain quotes or spaces: $BWORK"
	chmod 700 "$BWORK"
	give_to_pg_user "$BWORK"
	BPORT=$(free_port) || die "no free port found"

	log "creating a temporary cluster in $BWORK/data (port $BPORT, Unix socket only)"
	as_pg_user "$BPGBIN/initdb" -D "$BWORK/data" -U postgres --auth-local=trust \
		-E UTF8 --no-locale >"$BWORK/initdb.log" 2>&1 || {
		tail -n 20 "$BWORK/initdb.log" >&2
		die "initdb failed"
	}
	as_pg_user tee -a "$BWORK/data/postgresql.conf" >/dev/null <<-EOF

		# ---- scripts/bench.sh ----
		port = $BPORT
		listen_addresses = ''
		unix_socket_directories = '$BWORK'
		shared_preload_libraries = 'ledger'
		ledger.keyring_file = '$BWORK/ledger.keyring'
		ledger.default_deletion_protection = off
		shared_buffers = 256MB
		max_wal_size = 4GB
		# ledger and heap are compared process for process: no parallel scans.
		max_parallel_workers_per_gather = 0
	EOF
	# An HSM for the key custody test, where SoftHSM2 is installed: its
	# module finds the token through the server's environment.
	export SOFTHSM2_CONF="$BWORK/softhsm2.conf"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$BWORK" | as_pg_user tee "$SOFTHSM2_CONF" >/dev/null
	as_pg_user mkdir "$BWORK/tokens"
	as_pg_user "$BPGBIN/pg_ctl" -D "$BWORK/data" -l "$BWORK/postgres.log" -w -t 60 start >/dev/null || {
		tail -n 30 "$BWORK/postgres.log" >&2
		die "the temporary server did not start; see above"
	}
	"$BPGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$BWORK" -p "$BPORT" -U postgres -d postgres \
		-c "CREATE DATABASE $BDB" >/dev/null || die "CREATE DATABASE failed"
	bpsql -c 'CREATE EXTENSION ledger' >/dev/null || {
		tail -n 20 "$BWORK/postgres.log" >&2
		die "CREATE EXTENSION ledger failed"
	}
}

# -------------------------------------------------------------- data

# A text-format COPY file of N pgbench_accounts-like rows (filler blank,
# as pgbench -i writes it), written by the server into the work directory.
bench_make_copy_file() { # N FILE
	bq "COPY (SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, $1) g) TO '$2'" >/dev/null
}

# The pgbench_accounts shape.  $1 table name, $2 access method, $3 "identity"
# for a key drawn from an identity sequence (the INSERT test).
bench_create_table() { # NAME AM [identity]
	local key="aid bigint PRIMARY KEY"
	[[ ${3:-} == identity ]] && key="aid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
	bq "CREATE TABLE $1 ($key, bid int, abalance int, filler char(84)) USING $2" >/dev/null
}

# A pgbench script from a template in scripts/bench/, table name filled in.
bench_script() { # TEMPLATE TABLE -> path
	local out="$BWORK/scripts/$1.$2.sql"
	mkdir -p "$BWORK/scripts"
	sed "s/@TABLE@/$2/g" "$BENCH_DIR/$1.sql" >"$out"
	echo "$out"
}

# Size of table + indexes + TOAST, in bytes.
bench_relsize() { bq "SELECT pg_total_relation_size('$1')"; }
bench_journal_size() { bq "SELECT pg_total_relation_size('ledger.journal')"; }
bench_wal_lsn() { bq "SELECT pg_current_wal_lsn()"; }
bench_wal_diff() { bq "SELECT pg_wal_lsn_diff('$2', '$1')::bigint"; }
