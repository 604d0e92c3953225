#!/usr/bin/env bash
# scripts/bench.sh -- `make bench`: a ledger table against an identical heap
# table, in one temporary cluster, in one run.
#
# It builds and installs nothing: it checks that ledger is installed, starts
# a private PostgreSQL 15 cluster in a temporary directory (Unix socket only,
# ledger preloaded, keyring outside the data directory), runs the tests, and
# stops and removes the cluster on exit.
#
# Tests, each on a heap table and on a ledger table of the same shape
# (pgbench_accounts: aid bigint primary key, bid int, abalance int,
# filler char(84)), with pgbench -n -M prepared -T at each client count in
# BENCH_CLIENTS, heap and ledger runs alternating (see BENCH_ROUNDS):
#   insert   1. single-row INSERT into an empty table (aid from an identity)
#   select   2. primary-key SELECT of random rows (BENCH_ROWS rows loaded)
#   update   3. UPDATE of a non-indexed column (abalance) by primary key
#   scan     4. sequential scan with a filter on a sealed column
#               (SELECT count(*) ... WHERE filler LIKE 'x%'), repeated
#               for BENCH_SECONDS per AM
#   copy     5. COPY of BENCH_COPY_ROWS rows from a file into an empty
#               table, timed, one client
#   chain    6. the verifiable history, measured after the tests above:
#               seal lag (commit to sealed block) of every transaction
#               they committed; ledger_verify('chain') and ('full') over
#               the whole journal, in revisions/s and payload MB/s;
#               ledger_verify('full') again in a database of its own that
#               holds BENCH_LARGE_ROWS rows of 4 kB, where per-byte costs
#               are not hidden by per-row ones (each verification timed
#               three times, the median reported); and the time to build
#               and to check BENCH_PROOFS proofs and one consistency proof
#   keys     7. key custody, on BENCH_KEY_TABLES ledger tables: the time of
#               each kind of key change (request to done) on a small ledger
#               and on one with 20 times the rows (the same keys); PK SELECT
#               TPS with the key check at its default interval against no
#               check at all; the time from taking the keyring away to the
#               refusal, and from putting it back to ENABLED; and for each
#               provider (file, command with test/kms/fake_kms.py, pkcs11
#               with SoftHSM2 where installed) the time of a provider key
#               change to it and of a new session's first ledger read,
#               which unwraps the root key through it
# A CHECKPOINT precedes every measurement.  For each test it prints heap's
# figure, ledger's, the ledger/heap ratio (TPS for 1-4, time for COPY), the
# on-disk footprint (table + indexes + TOAST, plus for ledger the growth of
# ledger.journal during that test) and the WAL written, with PASS/MISS
# against the targets.  Timings never fail the script: it exits non-zero
# only when something fails to run.
#
# Environment:
#   BENCH_SECONDS    pgbench seconds per figure (default 15), split into
#   BENCH_ROUNDS     alternating slices (default 3): heap then ledger, ledger
#                    then heap, ... each pgbench -T BENCH_SECONDS/BENCH_ROUNDS
#   BENCH_ROWS       rows loaded for select/scan/update (default 200000)
#   BENCH_COPY_ROWS  rows for the COPY test (default 1000000)
#   BENCH_CLIENTS    client counts (default "1 8")
#   BENCH_TESTS      subset of "insert select update scan copy" (default all)
#   BENCH_DOC        file whose <!-- bench:begin/end --> section receives the
#                    results (default docs/benchmarks.md; empty: write none)
#   BENCH_TMPDIR     where the temporary cluster goes (default $TMPDIR or /tmp)
#   BENCH_KEEP=1     keep the (stopped) cluster and logs for inspection
#   PG_CONFIG        PostgreSQL 15's pg_config (default)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench/lib.sh"
LEDGER_LOG_TAG=bench

: "${BENCH_TESTS:=insert select update scan copy chain keys}"
: "${BENCH_KEY_TABLES:=50}"
: "${BENCH_KEY_ROWS:=2000}"
: "${BENCH_PROOFS:=200}"
: "${BENCH_LARGE_ROWS:=25000}"
BENCH_DOC=${BENCH_DOC-$LEDGER_ROOT/docs/benchmarks.md}

# Targets from the issue: TPS ratios at least, COPY time and size ratios at most.
declare -A TARGET=([insert]=0.8 [select]=0.9 [update]=0.8 [scan]="" [copy]=2.0 [size]=2.5)

declare -A R          # results, keyed "test:clients:am:field"
ROWS_OUT=()           # result table rows, in print order

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

want() { [[ " $BENCH_TESTS " == *" $1 "* ]]; }

# ------------------------------------------------------------- arithmetic

calc() { awk "BEGIN { printf \"%s\", $1 }"; }
fmt() { awk -v v="$2" "BEGIN { printf \"$1\", v }"; }

ratio() { # A B -> A/B with 2 decimals, or n/a
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

verdict() { # RATIO TARGET min|max
	[[ -z $2 ]] && { echo "-"; return; }
	[[ $1 == n/a ]] && { echo "n/a"; return; }
	awk -v r="$1" -v t="$2" -v k="$3" 'BEGIN {
		ok = (k == "min") ? (r >= t) : (r <= t); print ok ? "PASS" : "MISS" }'
}

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }

# ------------------------------------------------------------- measuring

load_now() { cut -d' ' -f1 /proc/loadavg; }

# One pgbench slice; adds to R[key:tx|time|wal] and R[key:loads].
run_slice() { # KEY SCRIPT CLIENTS SECONDS
	local key=$1 script=$2 c=$3 secs=$4 j lsn0 lsn1 log tps tx n
	j=$((c < $(nproc) ? c : $(nproc)))
	n=$((${R[$key:slices]:-0} + 1))
	R[$key:slices]=$n
	mkdir -p "$BWORK/logs"
	log="$BWORK/logs/${key//:/_}.$n.pgbench.log"
	bq "CHECKPOINT" >/dev/null
	R[$key:loads]="${R[$key:loads]:-} $(load_now)"
	lsn0=$(bench_wal_lsn)
	if ! "$BPGBIN/pgbench" -n -M prepared -T "$secs" -c "$c" -j "$j" \
		-D rows="$BENCH_ROWS" -f "$script" \
		-h "$BWORK" -p "$BPORT" -U postgres "$BDB" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		tail -n 30 "$BWORK/postgres.log" >&2
		die "pgbench failed for $key"
	fi
	lsn1=$(bench_wal_lsn)
	tps=$(awk '/^tps = / { print $3; exit }' "$log")
	tx=$(awk -F': *' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$log")
	[[ -n $tps && -n $tx ]] || {
		cat "$log" >&2
		die "could not read pgbench's result for $key"
	}
	if grep -q '^number of failed transactions: [1-9]' "$log"; then
		log "warning: $key: $(grep '^number of failed transactions' "$log")"
	fi
	# pgbench's tps excludes connection set-up; keep its measured time.
	R[$key:tx]=$((${R[$key:tx]:-0} + tx))
	R[$key:time]=$(calc "${R[$key:time]:-0} + ($tps > 0 ? $tx / $tps : 0)")
	R[$key:wal]=$((${R[$key:wal]:-0} + $(bench_wal_diff "$lsn0" "$lsn1")))
	log "$(printf '%-18s slice %d: %10.1f tps %8d tx  (load %s)' "$key" "$n" "$tps" "$tx" "$(load_now)")"
}

# A figure for each AM: BENCH_ROUNDS alternating slices (heap, ledger;
# ledger, heap; ...) that add up to BENCH_SECONDS per AM, so that a change
# of background load hits both alike.  Sets R[test:c:am:tps|tx|wal|load].
measure() { # TEST CLIENTS HEAP_TABLE LEDGER_TABLE
	local t=$1 c=$2 r am order secs key
	local -A tbl=([heap]=$3 [ledger]=$4)
	secs=$((BENCH_SECONDS / BENCH_ROUNDS))
	((secs >= 1)) || secs=1
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		order="heap ledger"
		((r % 2)) || order="ledger heap"
		for am in $order; do
			run_slice "$t:$c:$am" "$(bench_script "$t" "${tbl[$am]}")" "$c" "$secs"
		done
	done
	for am in heap ledger; do
		key="$t:$c:$am"
		R[$key:tps]=$(calc "${R[$key:tx]} / ${R[$key:time]}")
		R[$key:load]=$(awk -v l="${R[$key:loads]}" 'BEGIN { n = split(l, a, " "); s = 0; for (i = 1; i <= n; i++) s += a[i]; printf "%.1f", s / n }')
		log "$(printf '%-18s %10.1f tps %8d tx %6d WAL B/tx' "$key" "${R[$key:tps]}" \
			"${R[$key:tx]}" "$((${R[$key:wal]} / (${R[$key:tx]} > 0 ? ${R[$key:tx]} : 1)))")"
	done
}

# Journal growth around a command: sets JDELTA.
JDELTA=0
with_journal_delta() {
	local j0
	j0=$(bench_journal_size)
	"$@"
	JDELTA=$(($(bench_journal_size) - j0))
}

# ------------------------------------------------------------- the tests

load_accounts() {
	local am file="$BWORK/accounts.copy"
	log "loading $BENCH_ROWS rows into acc_heap and acc_ledger (COPY)"
	bench_make_copy_file "$BENCH_ROWS" "$file"
	for am in heap ledger; do
		bench_create_table "acc_$am" "$am"
		with_journal_delta bq "COPY acc_$am FROM '$file'" >/dev/null
		bq "VACUUM (ANALYZE) acc_$am" >/dev/null
		R[load:$am:table]=$(bench_relsize "acc_$am")
		R[load:$am:journal]=$JDELTA
	done
	R[journal:acc]=${R[load:ledger:journal]}
	rm -f "$file"
}

# The journal grows only while ledger tables are written, and the tests
# write one ledger table at a time: its growth is that table's.
test_insert() {
	local c am j0
	for c in $BENCH_CLIENTS; do
		for am in heap ledger; do
			bench_create_table "ins_${am}_c$c" "$am" identity
		done
		j0=$(bench_journal_size)
		measure insert "$c" "ins_heap_c$c" "ins_ledger_c$c"
		R[insert:$c:heap:journal]=0
		R[insert:$c:ledger:journal]=$(($(bench_journal_size) - j0))
		for am in heap ledger; do
			R[insert:$c:$am:table]=$(bench_relsize "ins_${am}_c$c")
			R[insert:$c:$am:rows]=$(bq "SELECT count(*) FROM ins_${am}_c$c")
		done
	done
}

test_simple() { # select|scan
	local c
	for c in $BENCH_CLIENTS; do
		measure "$1" "$c" acc_heap acc_ledger
	done
}

test_update() {
	local c am j0
	for c in $BENCH_CLIENTS; do
		j0=$(bench_journal_size)
		for am in heap ledger; do R[update:$c:$am:table0]=$(bench_relsize "acc_$am"); done
		measure update "$c" acc_heap acc_ledger
		R[update:$c:ledger:jgrowth]=$(($(bench_journal_size) - j0))
		R[journal:acc]=$((${R[journal:acc]} + ${R[update:$c:ledger:jgrowth]}))
		R[update:$c:heap:journal]=0
		R[update:$c:ledger:journal]=${R[journal:acc]}
		for am in heap ledger; do R[update:$c:$am:table]=$(bench_relsize "acc_$am"); done
	done
}

test_copy() {
	local am file="$BWORK/copy.copy" out ms lsn0 lsn1 j0 jh0 ji0
	log "writing $BENCH_COPY_ROWS rows to a COPY file"
	bench_make_copy_file "$BENCH_COPY_ROWS" "$file"
	for am in heap ledger; do
		bench_create_table "copy_$am" "$am"
		bq "CHECKPOINT" >/dev/null
		R[copy:1:$am:load]=$(load_now)
		R[copy:1:$am:loads]=${R[copy:1:$am:load]}
		j0=$(bench_journal_size)
		jh0=$(bq "SELECT pg_relation_size('ledger.journal')")
		ji0=$(bq "SELECT pg_indexes_size('ledger.journal')")
		lsn0=$(bench_wal_lsn)
		out=$(bpsql -c '\timing on' -c "COPY copy_$am FROM '$file'") ||
			die "COPY into copy_$am failed"
		lsn1=$(bench_wal_lsn)
		ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -n 1)
		[[ -n $ms ]] || die "could not read the COPY time: $out"
		R[copy:1:$am:secs]=$(calc "$ms / 1000")
		R[copy:1:$am:tx]=$BENCH_COPY_ROWS
		R[copy:1:$am:wal]=$(bench_wal_diff "$lsn0" "$lsn1")
		R[copy:1:$am:journal]=$(($(bench_journal_size) - j0))
		R[copy:1:$am:table]=$(bench_relsize "copy_$am")
		log "$(printf '%-16s %10.2f s  (load %s)' "copy:1:$am" "${R[copy:1:$am:secs]}" "${R[copy:1:$am:load]}")"
		# Where the bytes go, per row.
		R[bytes:$am:table]=$(bq "SELECT pg_relation_size('copy_$am')")
		R[bytes:$am:index]=$(bq "SELECT pg_indexes_size('copy_$am')")
		R[bytes:$am:jheap]=$(($(bq "SELECT pg_relation_size('ledger.journal')") - jh0))
		R[bytes:$am:jindex]=$(($(bq "SELECT pg_indexes_size('ledger.journal')") - ji0))
	done
	# Average sizes of the stored values (pg_column_size of a whole row is
	# its tuple's header and data, without the 4-byte line pointer).
	R[bytes:heap:tuple]=$(bq "SELECT round(avg(pg_column_size(t.*)), 1) FROM copy_heap t")
	R[bytes:journal:tuple]=$(bq "SELECT round(avg(pg_column_size(j.*)), 1) FROM ledger.journal j
		WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'copy_ledger'::regclass)")
	R[bytes:journal:payload]=$(bq "SELECT round(avg(pg_column_size(payload)), 1) FROM ledger.journal j
		WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'copy_ledger'::regclass)")
	rm -f "$file"
}

# Timed SQL: milliseconds of the last statement, via psql's \timing.
timed_ms() { # SQL
	local out
	out=$(bpsql -c '\timing on' -c "$1") || die "failed: $1"
	sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -n 1
}

# The median of three timings of SQL, then the range as "MIN to MAX ms".
# One run of a few seconds moves by a third with this machine's load, and
# the first run after a load also sets the new rows' hint bits.
median3_ms() { # SQL
	local runs=()
	for _ in 1 2 3; do runs+=("$(timed_ms "$1")"); done
	mapfile -t runs < <(printf '%s\n' "${runs[@]}" | sort -g)
	echo "${runs[1]} $(fmt '%.0f' "${runs[0]}") to $(fmt '%.0f' "${runs[2]}") ms"
}

test_chain() {
	local ms m revs bytes
	bq "SELECT ledger_digest()" >/dev/null
	# Seal lag of every transaction the write tests committed.
	R[chain:lag]=$(bq "SELECT round(avg(lag)::numeric, 3) || ' s avg, ' ||
		round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag)::numeric, 3) || ' s p99, ' ||
		round(max(lag)::numeric, 3) || ' s max over ' || count(*) || ' transactions'
		FROM (SELECT extract(epoch FROM b.sealed_at - t.committed_at) AS lag
		      FROM ledger.transactions t JOIN ledger.blocks b
		        ON t.seq BETWEEN b.first_seq AND b.last_seq AND b.block_number > 0) s")
	R[chain:lagmax]=$(bq "SELECT max(extract(epoch FROM b.sealed_at - t.committed_at))
		FROM ledger.transactions t JOIN ledger.blocks b
		  ON t.seq BETWEEN b.first_seq AND b.last_seq AND b.block_number > 0
		WHERE t.revision_count < 1000")
	revs=$(bq "SELECT count(*) FROM ledger.journal")
	bytes=$(bq "SELECT coalesce(sum(length(payload)), 0) FROM ledger.journal")
	R[chain:revs]=$revs
	bq "CHECKPOINT" >/dev/null
	m=$(median3_ms "SELECT revisions FROM ledger_verify('chain')")
	ms=${m%% *}
	R[chain:chainrange]=${m#* }
	R[chain:chain]=$(calc "$revs / ($ms / 1000)")
	R[chain:chainms]=$ms
	R[chain:workers]=$(bq "SELECT least(current_setting('max_parallel_maintenance_workers')::int,
		current_setting('max_parallel_workers')::int)")
	m=$(median3_ms "SELECT revisions FROM ledger_verify('full')")
	ms=${m%% *}
	R[chain:fullrange]=${m#* }
	R[chain:full]=$(calc "$revs / ($ms / 1000)")
	R[chain:fullmb]=$(calc "$bytes / 1048576 / ($ms / 1000)")
	R[chain:fullms]=$ms
	# Proofs of random revisions against the newest digest.
	bq "CREATE TABLE bench_proofs (p jsonb, d jsonb)" >/dev/null
	ms=$(timed_ms "INSERT INTO bench_proofs
		SELECT ledger_proof(t.relid::regclass, j.doc_id, j.version, g.d), g.d
		FROM (SELECT digest AS d FROM ledger_digest()) g,
		     (SELECT * FROM ledger.journal TABLESAMPLE SYSTEM (1) LIMIT $BENCH_PROOFS) j
		JOIN ledger.tables t USING (table_id) WHERE t.dropped_at IS NULL")
	R[chain:proofs]=$(bq "SELECT count(*) FROM bench_proofs")
	R[chain:proofms]=$(calc "$ms / ${R[chain:proofs]}")
	ms=$(timed_ms "SELECT count(*) FILTER (WHERE ledger_verify_proof(p, d)) FROM bench_proofs")
	R[chain:checkms]=$(calc "$ms / ${R[chain:proofs]}")
	R[chain:proofbytes]=$(bq "SELECT round(avg(length(p::text))) FROM bench_proofs")
	# A consistency proof across the whole history: from block 1 to the newest.
	R[chain:blocks]=$(bq "SELECT max(block_number) + 1 FROM ledger.blocks")
	ms=$(timed_ms "SELECT length(ledger_consistency_proof(
		(SELECT jsonb_build_object('version', 1, 'block', block_number, 'hash', encode(block_hash, 'hex'),
		                           'root', encode(tree_root, 'hex'))
		 FROM ledger.blocks WHERE block_number = 1),
		(SELECT digest FROM ledger_digest()))::text)")
	R[chain:consms]=$ms
	large_full
	log "seal lag ${R[chain:lag]}; verify chain $(fmt '%.0f' "${R[chain:chain]}") rev/s, full $(fmt '%.0f' "${R[chain:full]}") rev/s"
}

# ledger_verify('full') on rows of 4 kB (random hex text), in a database
# that holds nothing else.
large_full() {
	local ms m bytes
	bq "CREATE DATABASE bench_large" >/dev/null
	BDB=bench_large bq "CREATE EXTENSION ledger" >/dev/null
	BDB=bench_large bq "CREATE TABLE docs (id int, body text) USING ledger" >/dev/null
	BDB=bench_large bq "INSERT INTO docs SELECT g, (SELECT string_agg(md5(g::text || i::text), '')
		FROM generate_series(1, 128) i) FROM generate_series(1, $BENCH_LARGE_ROWS) g" >/dev/null
	bytes=$(BDB=bench_large bq "SELECT coalesce(sum(length(payload)), 0) FROM ledger.journal")
	BDB=bench_large bq "CHECKPOINT" >/dev/null
	m=$(BDB=bench_large median3_ms "SELECT revisions FROM ledger_verify('full')")
	ms=${m%% *}
	R[chain:largerange]=${m#* }
	R[chain:largemb]=$(calc "$bytes / 1048576 / ($ms / 1000)")
	R[chain:largems]=$ms
	R[chain:largebytes]=$bytes
	bq "DROP DATABASE bench_large" >/dev/null
}

# Milliseconds from ledger_rotate_key(ARGS) to the change being done.
change_ms() { # SQL-ARGS
	local id state i
	id=$(bq "SELECT ledger_rotate_key($1)")
	for ((i = 0; i < 12000; i++)); do
		state=$(bq "SELECT state FROM ledger.key_changes WHERE change_id = $id")
		[[ $state == "done" ]] && break
		[[ $state != failed ]] || die "key change $id failed"
		sleep 0.01
	done
	[[ $state == "done" ]] || die "key change $id did not finish"
	bq "SELECT round(extract(epoch FROM finished_at - requested_at)::numeric * 1000, 1)
		FROM ledger.key_changes WHERE change_id = $id"
}

# Every key table grows to $1 rows.
fill_key_tables() { # ROWS
	bq "DO \$\$ BEGIN FOR i IN 1..$BENCH_KEY_TABLES LOOP
		EXECUTE format('INSERT INTO bench_k%s SELECT g, repeat(''k'', 100)
		  FROM generate_series((SELECT coalesce(max(id), 0) + 1 FROM bench_k%s), %s) g', i, i, $1);
		END LOOP; END \$\$" >/dev/null
}

# A provider key line for the keyring: a fresh id and fresh material.
new_provider_key() {
	local id
	id=$(bq "SELECT gen_random_uuid()")
	echo "key $id 1 enabled $(openssl rand -hex 32)" |
		as_pg_user tee -a "$BWORK/ledger.keyring" >/dev/null
	echo "$id"
}

# Milliseconds until ledger_status() shows STATUS.
ms_until_status() { # STATUS
	local t0 i
	t0=$(date +%s%N)
	for ((i = 0; i < 6000; i++)); do
		[[ $(bq "SELECT status FROM ledger_status()") == "$1" ]] && break
		sleep 0.01
	done
	echo $((($(date +%s%N) - t0) / 1000000))
}

set_check_interval() { # VALUE
	bq "ALTER SYSTEM SET ledger.key_check_interval = '$1'" >/dev/null
	bq "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
}

test_keys() {
	local size script r
	bq "DO \$\$ BEGIN FOR i IN 1..$BENCH_KEY_TABLES LOOP
		EXECUTE format('CREATE TABLE bench_k%s (id int PRIMARY KEY, v text) USING ledger', i);
		END LOOP; END \$\$" >/dev/null
	for size in small large; do
		if [[ $size == small ]]; then fill_key_tables "$BENCH_KEY_ROWS"; else fill_key_tables $((20 * BENCH_KEY_ROWS)); fi
		R[keys:$size:rows]=$(bq "SELECT sum(n_live_tup) FROM pg_stat_user_tables WHERE relname LIKE 'bench_k%'")
		R[keys:$size:keys]=$(bq "SELECT count(*) FROM ledger.keys WHERE kind = 'data'")
		R[keys:$size:root]=$(change_ms "")
		R[keys:$size:provider]=$(change_ms "'provider_key', '$(new_provider_key)'")
		R[keys:$size:data]=$(change_ms "'data_keys'")
		log "keys $size (${R[keys:$size:rows]} rows): root ${R[keys:$size:root]} ms, provider ${R[keys:$size:provider]} ms, data ${R[keys:$size:data]} ms"
	done
	# The key check's cost to readers: checks every 10 s (the default)
	# against none at all, slices alternating.
	script="$BWORK/keys-select.sql"
	printf '\\set id random(1, %d)\nSELECT v FROM bench_k1 WHERE id = :id;\n' \
		$((20 * BENCH_KEY_ROWS)) >"$script"
	chmod 644 "$script"
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		set_check_interval 1h
		run_slice keys:nocheck "$script" 8 $((BENCH_SECONDS / BENCH_ROUNDS > 0 ? BENCH_SECONDS / BENCH_ROUNDS : 1))
		set_check_interval 10s
		run_slice keys:check "$script" 8 $((BENCH_SECONDS / BENCH_ROUNDS > 0 ? BENCH_SECONDS / BENCH_ROUNDS : 1))
	done
	R[keys:checkratio]=$(ratio "$(calc "${R[keys:check:tx]} / ${R[keys:check:time]}")" \
		"$(calc "${R[keys:nocheck:tx]} / ${R[keys:nocheck:time]}")")
	# Refusal and recovery at the default interval.
	as_pg_user mv "$BWORK/ledger.keyring" "$BWORK/ledger.keyring.away"
	R[keys:refuse]=$(ms_until_status KMS_KEY_INACCESSIBLE)
	as_pg_user mv "$BWORK/ledger.keyring.away" "$BWORK/ledger.keyring"
	R[keys:recover]=$(ms_until_status ENABLED)
	log "key check cost ratio ${R[keys:checkratio]}; refused after ${R[keys:refuse]} ms, recovered after ${R[keys:recover]} ms"
	test_providers
}

# Average milliseconds of a new session running SQL, over 20 sessions.
session_ms() { # SQL
	local t0 i
	t0=$(date +%s%N)
	for ((i = 0; i < 20; i++)); do bq "$1" >/dev/null; done
	echo $((($(date +%s%N) - t0) / 20000000))
}

# Where the provider key lives: a provider key change to each provider,
# and a new session's first ledger read, which unwraps the root key
# through the provider; a new session that reads a heap table is the
# baseline.
test_providers() {
	local kms="$BWORK/kms.sh" read="SELECT v FROM bench_k1 WHERE id = 1" p
	R[prov:baseline]=$(session_ms "SELECT count(*) FROM pg_class WHERE oid = 1")
	R[prov:file:read]=$(session_ms "$read")
	R[prov:file:change]=${R[keys:small:provider]}
	as_pg_user cp "$LEDGER_ROOT/test/kms/fake_kms.py" "$BWORK/fake_kms.py"
	printf '#!/bin/sh\nFAKE_KMS_STATE=%s/kms.json exec /usr/bin/python3 %s/fake_kms.py "$@"\n' \
		"$BWORK" "$BWORK" | as_pg_user tee "$kms" >/dev/null
	as_pg_user chmod 700 "$kms"
	as_pg_user "$kms" create k1
	bq "SELECT ledger_create_provider('kms', 'command', '{\"command\": \"$kms\"}')" >/dev/null
	R[prov:command:change]=$(change_ms "'provider_key', 'k1', 'kms'")
	R[prov:command:read]=$(session_ms "$read")
	if command -v softhsm2-util >/dev/null && [[ -r /usr/lib/softhsm/libsofthsm2.so ]]; then
		as_pg_user softhsm2-util --init-token --free --label bench --so-pin 5678 --pin 1234 >/dev/null
		as_pg_user pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label bench \
			--login --pin 1234 --keygen --key-type AES:32 --label root --sensitive >/dev/null 2>&1
		echo 1234 | as_pg_user tee "$BWORK/hsm.pin" >/dev/null
		as_pg_user chmod 600 "$BWORK/hsm.pin"
		bq "SELECT ledger_create_provider('hsm', 'pkcs11', '{\"module\": \"/usr/lib/softhsm/libsofthsm2.so\",
			\"token_label\": \"bench\", \"pin_file\": \"$BWORK/hsm.pin\"}')" >/dev/null
		R[prov:pkcs11:change]=$(change_ms "'provider_key', 'root', 'hsm'")
		R[prov:pkcs11:read]=$(session_ms "$read")
	fi
	for p in file command pkcs11; do
		if [[ -n ${R[prov:$p:read]:-} ]]; then
			log "provider $p: change ${R[prov:$p:change]} ms, new session's first read ${R[prov:$p:read]} ms (baseline ${R[prov:baseline]} ms)"
		fi
	done
}

keys_table() {
	local flat
	flat=$(awk -v s="${R[keys:small:root]}" -v l="${R[keys:large:root]}" \
		'BEGIN { print (l < 1000 && l < 3 * s + 50) ? "PASS" : "MISS" }')
	echo "| key custody | small ledger (${R[keys:small:rows]} rows) | 20x rows (${R[keys:large:rows]} rows) | target | |"
	echo "|---|---|---|---|---|"
	echo "| root key rotation, request to done (${R[keys:small:keys]} / ${R[keys:large:keys]} data keys) | ${R[keys:small:root]} ms | ${R[keys:large:root]} ms | flat in data size, well under 1 s | $flat |"
	echo "| provider key change | ${R[keys:small:provider]} ms | ${R[keys:large:provider]} ms | same | - |"
	echo "| data key rotation | ${R[keys:small:data]} ms | ${R[keys:large:data]} ms | same | - |"
	echo
	echo "| key check and key loss (ledger.key_check_interval = 10 s) | figure |"
	echo "|---|---|"
	echo "| PK SELECT, 8 clients, checks every 10 s / no checks | $(fmt '%.2f' "${R[keys:checkratio]}")x |"
	echo "| keyring taken away → status KMS_KEY_INACCESSIBLE, every access refused | ${R[keys:refuse]} ms |"
	echo "| keyring put back → status ENABLED | ${R[keys:recover]} ms |"
	echo
	echo "| where the provider key lives | provider key change to it, request to done | new session's first ledger read (a new session's heap read: ${R[prov:baseline]} ms) |"
	echo "|---|---|---|"
	for p in file command pkcs11; do
		if [[ -n ${R[prov:$p:read]:-} ]]; then
			echo "| $p | ${R[prov:$p:change]} ms | ${R[prov:$p:read]} ms |"
		fi
	done
}

chain_table() {
	local lagv chainv fullv largev
	lagv=$(awk -v m="${R[chain:lagmax]:-0}" 'BEGIN { print (m + 0 < 2.0) ? "PASS" : "MISS" }')
	chainv=$(awk -v r="${R[chain:chain]}" 'BEGIN { print (r >= 1000000) ? "PASS" : "MISS" }')
	fullv=$(awk -v r="${R[chain:fullmb]}" 'BEGIN { print (r >= 512) ? "PASS" : "MISS" }')
	largev=$(awk -v r="${R[chain:largemb]}" 'BEGIN { print (r >= 512) ? "PASS" : "MISS" }')
	echo "| verifiable history | figure | target | |"
	echo "|---|---|---|---|"
	echo "| seal lag, commit to sealed block (ledger.seal_interval = 1 s) | ${R[chain:lag]} | max < 2 s (transactions under 1000 revisions: $(fmt '%.3f' "${R[chain:lagmax]:-0}") s) | $lagv |"
	echo "| \`ledger_verify('chain')\`, ${R[chain:revs]} revisions | $(fmt '%.0f' "${R[chain:chain]}") revisions/s (median of 3 runs: $(fmt '%.0f' "${R[chain:chainms]}") ms, all ${R[chain:chainrange]}; the backend and up to ${R[chain:workers]} parallel workers) | ≥ 1,000,000/s | $chainv |"
	echo "| \`ledger_verify('full')\`, same | $(fmt '%.0f' "${R[chain:full]}") revisions/s, $(fmt '%.1f' "${R[chain:fullmb]}") MB/s of payload (median of 3 runs: $(fmt '%.0f' "${R[chain:fullms]}") ms, all ${R[chain:fullrange]}; one core) | ≥ 512 MB/s per core | $fullv |"
	echo "| \`ledger_verify('full')\`, $BENCH_LARGE_ROWS rows of 4 kB in a database of their own ($(fmt '%.0f' "$(calc "${R[chain:largebytes]} / 1048576")") MB of payload) | $(fmt '%.1f' "${R[chain:largemb]}") MB/s of payload (median of 3 runs: $(fmt '%.0f' "${R[chain:largems]}") ms, all ${R[chain:largerange]}; one core) | ≥ 512 MB/s per core | $largev |"
	echo "| \`ledger_proof()\`, ${R[chain:proofs]} random revisions | $(fmt '%.2f' "${R[chain:proofms]}") ms per proof, $(fmt '%.0f' "${R[chain:proofbytes]}") B of JSON on average | none | - |"
	echo "| \`ledger_verify_proof()\`, same proofs | $(fmt '%.3f' "${R[chain:checkms]}") ms per proof | none | - |"
	echo "| \`ledger_consistency_proof()\`, block 1 to the newest of ${R[chain:blocks]} blocks | $(fmt '%.2f' "${R[chain:consms]}") ms | none | - |"
}

bytes_table() {
	local n=$BENCH_COPY_ROWS
	per() { awk -v b="$1" -v n="$n" 'BEGIN { printf "%.0f", b / n }'; }
	echo "| per row, COPY test | heap | ledger |"
	echo "|---|---:|---:|"
	echo "| table (heap pages) | $(per "${R[bytes:heap:table]}") B | $(per "${R[bytes:ledger:table]}") B |"
	echo "| primary key index | $(per "${R[bytes:heap:index]}") B | $(per "${R[bytes:ledger:index]}") B |"
	echo "| ledger.journal (heap pages) | - | $(per "${R[bytes:ledger:jheap]}") B |"
	echo "| ledger.journal index | - | $(per "${R[bytes:ledger:jindex]}") B |"
	echo "| **total** | **$(per $((${R[bytes:heap:table]} + ${R[bytes:heap:index]}))) B** | **$(per $((${R[bytes:ledger:table]} + ${R[bytes:ledger:index]} + ${R[bytes:ledger:jheap]} + ${R[bytes:ledger:jindex]}))) B** |"
	echo
	echo "Average tuple (header + data, as \`pg_column_size(row)\` gives it): heap row ${R[bytes:heap:tuple]} B; journal row ${R[bytes:journal:tuple]} B, of which sealed payload ${R[bytes:journal:payload]} B."
}

# ------------------------------------------------------------- reporting

# One markdown row: test | clients | heap | ledger | ratio | target | result
#   | size heap | size ledger (journal) | size ratio | result | WAL/tx heap | ledger
add_row() { # TEST CLIENTS
	local t=$1 c=$2 k="$1:$2" label h l r target kind v
	local sh sl sj sr sv hs ls wh wl per
	case $t in
	insert) label="1. INSERT" ;;
	select) label="2. PK SELECT" ;;
	update) label="3. UPDATE" ;;
	scan) label="4. seq scan, sealed filter" ;;
	copy) label="5. COPY $BENCH_COPY_ROWS rows" ;;
	esac
	local goal=${TARGET[$t]}
	if [[ $t == copy ]]; then
		h=${R[$k:heap:secs]} l=${R[$k:ledger:secs]}
		r=$(ratio "$l" "$h") kind=max target="≤ ${goal}x time"
		hs="$(fmt '%.2f' "$h") s" ls="$(fmt '%.2f' "$l") s"
	else
		h=${R[$k:heap:tps]} l=${R[$k:ledger:tps]}
		r=$(ratio "$l" "$h") kind=min target="≥ ${goal}x TPS"
		hs="$(fmt '%.0f' "$h") tps" ls="$(fmt '%.0f' "$l") tps"
	fi
	v=$(verdict "$r" "$goal" "$kind")
	[[ -z $goal ]] && target="none"

	# Footprint.  insert: per row inserted (the two tables get different
	# row counts); update: the table after this run, journal since its
	# creation, plus the growth per update; select/scan: the loaded table;
	# copy: the copied table.
	local note=""
	case $t in
	insert)
		local rh=${R[$k:heap:rows]} rl=${R[$k:ledger:rows]}
		sh=$(calc "${R[$k:heap:table]} / ($rh > 0 ? $rh : 1)")
		sl=$(calc "(${R[$k:ledger:table]} + ${R[$k:ledger:journal]}) / ($rl > 0 ? $rl : 1)")
		sj=$(calc "${R[$k:ledger:journal]} / ($rl > 0 ? $rl : 1)")
		per=" B/row"
		;;
	update)
		sh=${R[$k:heap:table]}
		sl=$((${R[$k:ledger:table]} + ${R[$k:ledger:journal]}))
		sj=${R[$k:ledger:journal]}
		per=""
		local gh gl
		gh=$(calc "(${R[$k:heap:table]} - ${R[$k:heap:table0]}) / ${R[$k:heap:tx]}")
		gl=$(calc "(${R[$k:ledger:table]} - ${R[$k:ledger:table0]} + ${R[$k:ledger:jgrowth]}) / ${R[$k:ledger:tx]}")
		note="; growth per update: heap $(fmt '%.0f' "$gh") B, ledger $(fmt '%.0f' "$gl") B"
		;;
	select | scan)
		sh=${R[load:heap:table]}
		sl=$((${R[load:ledger:table]} + ${R[load:ledger:journal]}))
		sj=${R[load:ledger:journal]}
		per=""
		;;
	copy)
		sh=${R[$k:heap:table]}
		sl=$((${R[$k:ledger:table]} + ${R[$k:ledger:journal]}))
		sj=${R[$k:ledger:journal]}
		per=""
		;;
	esac
	sr=$(ratio "$sl" "$sh")
	sv=$(verdict "$sr" "${TARGET[size]}" max)
	if [[ -n $per ]]; then
		sh="$(fmt '%.0f' "$sh")$per" sj="$(fmt '%.0f' "$sj")"
		sl="$(fmt '%.0f' "$sl")$per"
	else
		sh=$(mb "$sh") sj=$(mb "$sj") sl=$(mb "$sl")
	fi
	if [[ $t == select || $t == scan ]]; then
		wh="-" wl="-"   # read-only: only background WAL
	else
		wh=$(fmt '%.0f' "$(calc "${R[$k:heap:wal]} / ${R[$k:heap:tx]}")")
		wl=$(fmt '%.0f' "$(calc "${R[$k:ledger:wal]} / ${R[$k:ledger:tx]}")")
	fi
	ROWS_OUT+=("| $label | $c | $hs | $ls | **${r}x** | $target | $v | $sh | $sl (journal $sj$note) | ${sr}x | $sv | $wh | $wl | ${R[$k:heap:load]} / ${R[$k:ledger:load]} |")
}

results_table() {
	echo "| test | clients | heap | ledger | ledger/heap | target | | heap size | ledger size (of which journal) | size ratio | ≤ ${TARGET[size]}x | WAL B/tx heap | WAL B/tx ledger | load avg heap / ledger |"
	echo "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---|---:|---:|---:|"
	printf '%s\n' "${ROWS_OUT[@]}"
}

machine_line() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "$(nproc) CPUs (${cpu:-unknown model}), $mem RAM, $(uname -sr)"
}

ledger_line() {
	local so rev dirty="" sha same=""
	so=$("$PG_CONFIG" --pkglibdir)/ledger.so
	sha=$(sha256sum "$so" | cut -c1-12)
	rev=$(git -C "$LEDGER_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [[ -n $(git -C "$LEDGER_ROOT" status --porcelain -- src sql 2>/dev/null) ]]; then
		dirty=" with uncommitted changes in src/ or sql/"
	fi
	if [[ -f $LEDGER_ROOT/ledger.so ]]; then
		if cmp -s "$so" "$LEDGER_ROOT/ledger.so"; then
			same=", identical to the work tree's ledger.so"
		else
			same=", not the work tree's ledger.so (installed from another tree or build)"
		fi
	fi
	echo "installed ledger.so of $(date -u -r "$so" '+%Y-%m-%d %H:%M UTC'), sha256 $sha$same; work tree at $rev$dirty"
}

report() {
	local when=$1 load0=$2 load1=$3 pgver=$4
	cat <<-EOF
		Run of $when by \`make bench\` (scripts/bench.sh).

		| | |
		|---|---|
		| machine | $(machine_line); shared with other engineers' test runs (1-minute load average $load0 at the start, $load1 at the end) |
		| PostgreSQL | $pgver |
		| ledger | $LEDGER_LINE |
		| benchmark | BENCH_SECONDS=$BENCH_SECONDS, BENCH_ROUNDS=$BENCH_ROUNDS, BENCH_ROWS=$BENCH_ROWS, BENCH_COPY_ROWS=$BENCH_COPY_ROWS, BENCH_CLIENTS="$BENCH_CLIENTS": each TPS figure is $BENCH_ROUNDS slices of \`pgbench -n -M prepared -T $((BENCH_SECONDS / BENCH_ROUNDS > 0 ? BENCH_SECONDS / BENCH_ROUNDS : 1)) -c N -j min(N, $(nproc))\`, heap and ledger alternating (heap first in odd slices, ledger first in even ones); CHECKPOINT before every slice and before each COPY; COPY runs once per AM, heap first |
		| server | temporary cluster, Unix socket only; shared_buffers=256MB, max_wal_size=4GB, synchronous_commit=on, fsync=on, max_parallel_workers_per_gather=0, ledger.default_deletion_protection=off; everything else initdb's default (autovacuum on) |

		$(results_table)

		Sizes are table + indexes + TOAST (\`pg_total_relation_size\`); ledger's
		add the growth of \`ledger.journal\` caused by that table.  INSERT: bytes
		per row inserted; PK SELECT and seq scan: the $BENCH_ROWS loaded rows;
		UPDATE: the loaded table after that run (its journal since it was
		created) and the growth per update; COPY: the $BENCH_COPY_ROWS copied
		rows.  WAL B/tx: WAL bytes per transaction (per row for COPY).  Load
		avg: mean 1-minute load average at the start of the slices, a
		measure of how busy the shared machine was.
	EOF
	if want copy; then
		printf '\nWhere the bytes go:\n\n'
		bytes_table
	fi
	if want chain; then
		printf '\nThe verifiable history, measured after the tests above (the INSERT and UPDATE rows are write throughput with history on):\n\n'
		chain_table
	fi
	if want keys; then
		printf '\nKey custody, on %s ledger tables (each has its own data key):\n\n' "$BENCH_KEY_TABLES"
		keys_table
	fi
}

# Replace the marked section of the doc (or add one) with stdin.
write_doc() { # FILE
	local doc=$1 body tmp
	body=$(cat)
	mkdir -p "$(dirname "$doc")"
	[[ -f $doc ]] || printf '# Benchmarks\n' >"$doc"
	if ! grep -q '^<!-- bench:begin -->' "$doc" || ! grep -q '^<!-- bench:end -->' "$doc"; then
		printf '\n<!-- bench:begin -->\n<!-- bench:end -->\n' >>"$doc"
	fi
	tmp=$(mktemp "$doc.XXXXXX")
	BODY=$body awk '
		/^<!-- bench:begin -->/ { print; print ENVIRON["BODY"]; skip = 1; next }
		/^<!-- bench:end -->/ { skip = 0 }
		!skip { print }
	' "$doc" >"$tmp"
	chmod 644 "$tmp"
	mv "$tmp" "$doc"
}

main() {
	case ${1:-} in
	-h | --help) usage; exit 0 ;;
	"") ;;
	*) usage >&2; exit 2 ;;
	esac
	bench_check_installed
	trap bench_stop_cluster EXIT
	trap 'exit 130' INT TERM

	local load0 load1 when pgver t c
	load0=$(load_now)
	when=$(date -u '+%Y-%m-%d %H:%M UTC')
	LEDGER_LINE=$(ledger_line)   # before the server loads the library
	bench_start_cluster
	# The server loaded the library as it started; make sure it is the one
	# described (other test runs reinstall ledger.so now and then).
	if [[ $(ledger_line) != "$LEDGER_LINE" ]]; then
		LEDGER_LINE="$LEDGER_LINE (replaced while the server started: which build ran is uncertain)"
		log "warning: ledger.so was reinstalled while the server started"
	fi
	pgver=$(bq "SELECT version()")
	log "$pgver"

	if want select || want scan || want update; then load_accounts; fi
	want select && test_simple select
	want scan && test_simple scan
	want update && test_update
	want insert && test_insert
	want copy && test_copy
	want chain && test_chain
	want keys && test_keys
	load1=$(load_now)

	for t in insert select update scan; do
		want $t || continue
		for c in $BENCH_CLIENTS; do add_row "$t" "$c"; done
	done
	want copy && add_row copy 1

	section "ledger vs heap"
	local out
	out=$(report "$when" "$load0" "$load1" "$pgver")
	printf '%s\n' "$out"
	if [[ -n $BENCH_DOC ]]; then
		write_doc "$BENCH_DOC" <<<"$out"
		log "results written to $BENCH_DOC (between <!-- bench:begin --> and <!-- bench:end -->)"
	fi
}

main "$@"
