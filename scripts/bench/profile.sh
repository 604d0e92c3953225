#!/usr/bin/env bash
# scripts/bench/profile.sh -- where the time of one benchmark case goes.
#
#   scripts/bench/profile.sh TEST AM [SECONDS]
#
# TEST is insert, select, update, scan or copy (as in scripts/bench.sh), AM
# is heap or ledger, SECONDS (default 10) how long perf samples.  It starts
# its own temporary cluster exactly as scripts/bench.sh does, prepares the
# table, runs the case with one pgbench client (COPY: one psql), attaches
# `perf record -g -p <backend pid>` to the backend that runs the statements,
# and writes to ${BENCH_PROFILE_OUT:-/tmp/ledger-profile-TEST-AM}/:
#   perf.data           the samples (perf report -i ... to browse)
#   flat.txt            self time by symbol
#   inclusive.txt       time including callees, by symbol
#   dso.txt             self time by shared object (postgres, ledger.so,
#                       libcrypto, kernel, libc)
#   callers.txt         call graphs of the hottest symbols
#   wal.txt             pg_waldump --stats over the WAL the run wrote
#   cpu.txt             CPU time (user + system, from /proc/PID/stat) of
#                       the profiled backend and of all server processes,
#                       and the transactions completed during the sampled
#                       window, per transaction; perf's sampling adds a few
#                       per cent to the profiled backend's
#   pgbench.log         the client's output
# Needs root (or perf_event_paranoid <= 1) and linux-perf.  The cluster is
# removed at the end.  PERF_CALLGRAPH=dwarf gives better stacks through the
# frame-pointer-less libcrypto (postgres and ledger.so keep frame pointers),
# at a much larger perf.data.  PERF_FREQ: samples per second (default 999).
# BENCH_PROFILE_CLIENTS=N runs N pgbench clients (default 1; not for copy)
# and profiles one of their backends.  Environment as for scripts/bench.sh:
# BENCH_ROWS, BENCH_COPY_ROWS, BENCH_TMPDIR, BENCH_KEEP.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LEDGER_LOG_TAG=profile

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

TEST=${1:-}
AM=${2:-}
SECS=${3:-10}
[[ $TEST =~ ^(insert|select|update|scan|copy)$ && $AM =~ ^(heap|ledger)$ && $SECS =~ ^[1-9][0-9]*$ ]] || {
	usage >&2
	exit 2
}
OUT=${BENCH_PROFILE_OUT:-/tmp/ledger-profile-$TEST-$AM}
CALLGRAPH=${PERF_CALLGRAPH:-fp}
FREQ=${PERF_FREQ:-999}
CLIENTS=${BENCH_PROFILE_CLIENTS:-1}
[[ $CLIENTS =~ ^[1-9][0-9]*$ ]] || die "BENCH_PROFILE_CLIENTS must be a positive integer"

command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"
bench_check_installed
mkdir -p "$OUT"
rm -f "$OUT"/perf.data "$OUT"/*.txt
trap bench_stop_cluster EXIT
trap 'exit 130' INT TERM
bench_start_cluster

TABLE=prof_$AM
case $TEST in
insert)
	bench_create_table "$TABLE" "$AM" identity
	;;
select | update | scan)
	log "loading $BENCH_ROWS rows"
	bench_make_copy_file "$BENCH_ROWS" "$BWORK/rows.copy"
	bench_create_table "$TABLE" "$AM"
	bq "COPY $TABLE FROM '$BWORK/rows.copy'" >/dev/null
	bq "VACUUM (ANALYZE) $TABLE" >/dev/null
	;;
copy)
	log "writing $BENCH_COPY_ROWS rows to a COPY file"
	bench_make_copy_file "$BENCH_COPY_ROWS" "$BWORK/rows.copy"
	bench_create_table "$TABLE" "$AM"
	;;
esac

# The pid of one client backend whose application_name is $1, once $2 of
# them are connected (pgbench's own first connection comes and goes).
backend_pid() {
	local pids="" _
	for _ in $(seq 1 200); do
		pids=$(bq "SELECT pid FROM pg_stat_activity WHERE application_name = '$1' AND backend_type = 'client backend' ORDER BY pid")
		[[ -n $pids && $(wc -l <<<"$pids") -eq $2 ]] && break
		pids=""
		sleep 0.05
	done
	[[ -n $pids ]] || die "the $2 backend(s) with application_name $1 did not show up"
	head -n 1 <<<"$pids"
}

# utime + stime of a process, in seconds.
cpu_of() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# "pid seconds" for the postmaster and each of its children (backends,
# WAL writer, checkpointer, autovacuum...).
server_cpu() {
	local pm p
	pm=$(head -n 1 "$BWORK/data/postmaster.pid")
	for p in $pm $(ps --ppid "$pm" -o pid=); do
		echo "$p $(cpu_of "$p" 2>/dev/null || echo gone)"
	done
}

# CPU the server used between two server_cpu snapshots, over the
# processes alive at both (a process that exits in between is lost).
server_cpu_delta() { # BEFORE AFTER
	awk 'NR == FNR { if ($2 != "gone") a[$1] = $2; next }
		($1 in a) && $2 != "gone" { d += $2 - a[$1] }
		END { printf "%.2f", d }' <(echo "$1") <(echo "$2")
}

bq "CHECKPOINT" >/dev/null
LSN0=$(bench_wal_lsn)
if [[ $TEST == copy ]]; then
	PGAPPNAME=bench_profile "$BPGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$BWORK" -p "$BPORT" \
		-U postgres -d "$BDB" -c '\timing on' -c "COPY $TABLE FROM '$BWORK/rows.copy'" \
		>"$OUT/pgbench.log" 2>&1 &
	CLIENT=$!
	PID=$(backend_pid bench_profile 1)
	log "perf record -g -p $PID (COPY backend) until the COPY ends"
	perf record -F "$FREQ" --call-graph "$CALLGRAPH" -p "$PID" -o "$OUT/perf.data" >"$OUT/perf-record.log" 2>&1 &
	PERF=$!
	# The backend exits with the client: keep its last CPU reading.
	CPU1=0
	while kill -0 "$CLIENT" 2>/dev/null; do
		c=$(cpu_of "$PID" 2>/dev/null) && CPU1=$c
		sleep 0.05
	done
	wait "$CLIENT" || die "COPY failed: $(cat "$OUT/pgbench.log")"
	kill -INT "$PERF" 2>/dev/null || true
	wait "$PERF" || true
	NTX=$BENCH_COPY_ROWS
	echo "backend CPU ${CPU1} s for $NTX rows (whole COPY, from connection): $(awk -v c="$CPU1" -v n="$NTX" 'BEGIN { printf "%.2f", c * 1e6 / n }') us/row" >"$OUT/cpu.txt"
else
	SCRIPT=$(bench_script "$TEST" "$TABLE")
	PGAPPNAME=bench_profile "$BPGBIN/pgbench" -n -M prepared -T $((SECS + 12)) \
		-c "$CLIENTS" -j $((CLIENTS < $(nproc) ? CLIENTS : $(nproc))) \
		-D rows="$BENCH_ROWS" -f "$SCRIPT" -l --log-prefix="$BWORK/txlog" \
		-h "$BWORK" -p "$BPORT" -U postgres "$BDB" >"$OUT/pgbench.log" 2>&1 &
	CLIENT=$!
	sleep 1
	PID=$(backend_pid bench_profile "$CLIENTS")
	sleep 1
	kill -0 "$PID" 2>/dev/null || die "backend $PID went away; see $BWORK/postgres.log (BENCH_KEEP=1 keeps it)"
	log "perf record -g -p $PID for ${SECS}s"
	T0=$(date +%s.%N) CPU0=$(cpu_of "$PID") SCPU0=$(server_cpu)
	perf record -F "$FREQ" --call-graph "$CALLGRAPH" -p "$PID" -o "$OUT/perf.data" -- sleep "$SECS" \
		>"$OUT/perf-record.log" 2>&1 || die "perf record failed: $(cat "$OUT/perf-record.log")"
	T1=$(date +%s.%N) SCPU1=$(server_cpu)
	CPU1=$(cpu_of "$PID") || die "backend $PID went away during the profile; see $BWORK/postgres.log (BENCH_KEEP=1 keeps it)"
	wait "$CLIENT" || die "pgbench failed: $(cat "$OUT/pgbench.log")"
	# pgbench -l: field 5.6 is when each transaction ended.
	NTX=$(cat "$BWORK"/txlog* | awk -v t0="$T0" -v t1="$T1" '{ t = $5 + $6 / 1e6; if (t >= t0 && t <= t1) n++ } END { print n + 0 }')
	awk -v c0="$CPU0" -v c1="$CPU1" -v s0=0 -v s1="$(server_cpu_delta "$SCPU0" "$SCPU1")" -v t0="$T0" -v t1="$T1" \
		-v n="$NTX" -v k="$CLIENTS" 'BEGIN {
		printf "window %.2f s, %d client(s): %d transactions; profiled backend CPU %.2f s (%.0f%% of the window), all server processes %.2f s\n", t1 - t0, k, n, c1 - c0, 100 * (c1 - c0) / (t1 - t0), s1 - s0
		if (n > 0) printf "per transaction: %.1f us wall, %.1f us CPU in the server (all processes)%s\n", (t1 - t0) * 1e6 / n, (s1 - s0) * 1e6 / n, k == 1 ? sprintf(", %.1f us in the backend", (c1 - c0) * 1e6 / n) : ""
	}' >"$OUT/cpu.txt"
fi
LSN1=$(bench_wal_lsn)

log "writing reports to $OUT"
perf report -i "$OUT/perf.data" --stdio --no-children --sort symbol -g none \
	--percent-limit 0.5 >"$OUT/flat.txt" 2>/dev/null
perf report -i "$OUT/perf.data" --stdio --children --sort symbol -g none \
	--percent-limit 2 >"$OUT/inclusive.txt" 2>/dev/null
perf report -i "$OUT/perf.data" --stdio --no-children --sort dso -g none \
	>"$OUT/dso.txt" 2>/dev/null
perf report -i "$OUT/perf.data" --stdio --no-children --sort symbol \
	-g caller,0.5,callee --percent-limit 3 >"$OUT/callers.txt" 2>/dev/null
{
	echo "WAL from $LSN0 to $LSN1: $(bench_wal_diff "$LSN0" "$LSN1") bytes"
	as_pg_user "$BPGBIN/pg_waldump" -p "$BWORK/data/pg_wal" -s "$LSN0" -e "$LSN1" --stats=record 2>&1 || true
} >"$OUT/wal.txt"
grep -E '^(tps|number of transactions actually)|^Time:' "$OUT/pgbench.log" || true
cat "$OUT/cpu.txt"
head -n 1 "$OUT/wal.txt"
sed -n '/^#.*Overhead/,$p' "$OUT/flat.txt" | grep -v '^#' | grep -v '^$' | head -n 25
