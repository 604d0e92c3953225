#!/usr/bin/env bash
# scripts/test.sh -- README command #2: set everything up, run every suite.
#
#   scripts/test.sh           all suites (this is what .ci/run runs)
#   scripts/test.sh --quick   skip the sanitizer pass and the conformance suite
#
# Suites, in order:
#   regress      pg_regress (REGRESS: sql/*.sql -> expected/)       } the three
#   isolation    pg_isolation_regress (test/specs/*.spec)           } parts of
#   tap          Perl TAP tests (test/t/*.pl, prove)                } make installcheck
#   pgtap        pgTAP files (test/pgtap/*.sql, pg_prove) on a temporary cluster
#   fuzz         the libFuzzer harnesses of the proof reader, the keyring
#                parser and the KMIP reader (make fuzz), 60 s each; one pass for each
#                that ends without a finding
#   sanitize     REGRESS again with an ASan+UBSan+assertions build (see sanitize.mk)
#   conformance  test/conformance/run.sh, when it exists
#
# What is counted: one per pg_regress test and per isolation spec; one per
# TAP assertion (prove's "Tests=") and per pgTAP assertion; a TAP or pgTAP
# file that fails without failing an assertion (died, bad plan) counts one
# failure; a suite that cannot run or ends without its summary counts one
# failure; each ASan/UBSan report counts one failure; conformance adds the
# counts from its own "conformance: N passed, N failed" line.
#
# The last line of output is exactly "N passed, N failed" (the sum); the
# exit status is non-zero when anything failed or a suite could not run.
#
# initdb and postgres refuse to run as root: as root, suites run as the
# "postgres" OS user; either way they run in a private copy of the tree
# under ${TMPDIR:-/tmp}, so they never write into the working tree.  The
# copy is removed after a green run and kept (its path printed) otherwise.
#
# Environment: LEDGER_SUITE_TIMEOUT (seconds per suite step, default 2400:
# the conformance suite alone takes about 10 minutes on 2 cores), PG_CONFIG
# (default: PostgreSQL 15's).
set -euo pipefail
shopt -s nullglob

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LEDGER_LOG_TAG="test"

SUITE_TIMEOUT=${LEDGER_SUITE_TIMEOUT:-2400}
QUICK=0
WORK=""                  # private work directory
TREE=""                  # copy of the sources the suites run in
LOGS=""                  # one log per suite step
SANITIZED_INSTALLED=0    # the sanitized build is installed right now
CLEANED_UP=0
SUITE_PID=""             # the suite step running in the background
R_NAME=() R_PASS=() R_FAIL=() R_NOTE=()

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

# ----------------------------------------------------------------- results

record() { # NAME PASSED FAILED [NOTE]
	R_NAME+=("$1") R_PASS+=("$2") R_FAIL+=("$3") R_NOTE+=("${4:-}")
}

rc_note() {
	case $1 in
	124 | 137) echo "timed out after ${SUITE_TIMEOUT}s" ;;
	*) echo "exit status $1" ;;
	esac
}

# Record a suite from its parsed counts ("PASSED FAILED", or empty when the
# runner printed no summary) and its exit status.  Returns 1 when the suite
# failed in any way, so that the caller prints diagnostics.
record_counts() { # NAME RC COUNTS
	local name=$1 rc=$2 counts=$3 p f
	if [[ -z $counts ]]; then
		record "$name" 0 1 "did not run to completion ($(rc_note "$rc"))"
		return 1
	fi
	read -r p f <<<"$counts"
	if ((rc != 0 && f == 0)); then
		record "$name" "$p" 1 "$(rc_note "$rc") although no test failed"
		return 1
	fi
	record "$name" "$p" "$f" "$( ((p + f > 0)) || echo "no tests ran")"
	((f == 0))
}

# Run a program as the PostgreSQL OS user (as the caller with --as-caller)
# under the suite timeout; its output is shown as it comes and kept in LOG.
# Returns its exit status.  It runs in the background with its pid in
# SUITE_PID, so that an interrupted run can stop it: `timeout` puts itself
# and everything below it into a process group of its own, which signals
# to our group never reach, and passes on any signal it gets to that group.
run_logged() { # [--as-caller] LOG CMD...
	local prefix=() log rc=0 tailpid
	if [[ $1 == --as-caller ]]; then
		shift
	else
		set_pg_user_prefix
		prefix=("${PG_USER_PREFIX[@]}")
	fi
	log=$1
	shift
	: >"$log"
	"${prefix[@]}" timeout --kill-after=30 "$SUITE_TIMEOUT" "$@" </dev/null >"$log" 2>&1 &
	SUITE_PID=$!
	tail -n +1 -f --pid="$SUITE_PID" "$log" &
	tailpid=$!
	wait "$SUITE_PID" || rc=$?
	SUITE_PID=""
	wait "$tailpid" || true # it prints the rest, then ends within a second
	return "$rc"
}

stop_running_suite() {
	[[ -n $SUITE_PID ]] || return 0
	kill -TERM "$SUITE_PID" 2>/dev/null || true
	wait "$SUITE_PID" 2>/dev/null || true
	SUITE_PID=""
}

show_head() { # FILE LINES
	[[ -s $1 ]] || return 0
	printf -- '----- %s (first %d lines) -----\n' "$1" "$2"
	head -n "$2" "$1"
}

show_tail() { # FILE LINES
	[[ -s $1 ]] || return 0
	printf -- '----- %s (last %d lines) -----\n' "$1" "$2"
	tail -n "$2" "$1"
}

# ------------------------------------------------------- installcheck parts

# `make installcheck` runs pg_regress, then isolation, then prove, and stops
# at the first that fails.  So each part runs as its own make installcheck
# with the other two emptied on the command line: each part always runs and
# is counted.  Parts without test files are recorded as such, not run.

suite_regress() {
	local tests=() f
	for f in "$TREE"/sql/*.sql; do
		[[ $(basename "$f") == ledger--* ]] || tests+=("$f")
	done
	installcheck_part regress pg_regress_counts "${#tests[@]}" ISOLATION= TAP_TESTS= ||
		{
			show_head "$TREE/regression.diffs" 400
			show_tail "$TREE/log/postmaster.log" 80
		}
}

suite_isolation() {
	local specs=("$TREE"/test/specs/*.spec)
	installcheck_part isolation pg_regress_counts "${#specs[@]}" REGRESS= TAP_TESTS= ||
		{
			show_head "$TREE/output_iso/regression.diffs" 400
			show_tail "$TREE/output_iso/log/postmaster.log" 80
		}
}

suite_tap() {
	local files=("$TREE"/test/t/*.pl)
	installcheck_part tap tap_counts "${#files[@]}" REGRESS= ISOLATION= || show_tap_logs
}

# The logs of the TAP files that failed (prove's summary names them), or
# all logs when prove said nothing about files.
show_tap_logs() {
	local names name f logdir="$TREE/tmp_check/log"
	mapfile -t names < <(sed -n -E 's|^test/t/([^ ]+)\.pl +\(Wstat.*|\1|p' "$LOGS/tap.log")
	if ((${#names[@]} == 0)); then
		for f in "$logdir"/*; do show_tail "$f" 60; done
		return 0
	fi
	for name in "${names[@]}"; do
		for f in "$logdir/regress_log_$name" "$logdir/${name}"_*.log; do
			show_tail "$f" 60
		done
	done
}

installcheck_part() { # NAME PARSER NUMBER_OF_TEST_FILES MAKE_ARGS...
	local name=$1 parser=$2 nfiles=$3 rc=0 counts
	shift 3
	section "$name"
	if ((nfiles == 0)); then
		record "$name" 0 0 "no tests"
		return 0
	fi
	run_logged "$LOGS/$name.log" make -C "$TREE" installcheck "$@" || rc=$?
	stop_servers_under "$TREE" # left over only when a runner was killed
	counts=$("$parser" "$LOGS/$name.log") || counts=""
	record_counts "$name" "$rc" "$counts"
}

# ------------------------------------------------------------------ pgTAP

# A throwaway cluster configured like the suites' (test/ledger.conf), on a
# Unix socket in its own directory only (listen_addresses = ''), so it can
# neither clash with nor be reached from anything else.  Its keyring lives
# beside its data directory, never shared with another cluster.
suite_pgtap() {
	local files=("$TREE"/test/pgtap/*.sql) dir="$WORK/pgtap" port rc=0 counts
	section pgtap
	if ((${#files[@]} == 0)); then
		record pgtap 0 0 "no tests"
		return 0
	fi
	if ! port=$(free_port) || ! pgtap_cluster_start "$dir" "$port"; then
		record pgtap 0 1 "could not start a cluster with CREATE EXTENSION pgtap, ledger"
		show_tail "$LOGS/pgtap-setup.log" 60
		show_tail "$dir/postgres.log" 60
		pgtap_cluster_stop "$dir"
		return 0
	fi
	run_logged "$LOGS/pgtap.log" env -C "$TREE" pg_prove --nocolor \
		-h "$dir" -p "$port" -U postgres -d ledger_pgtap \
		"${files[@]#"$TREE"/}" || rc=$?
	counts=$(tap_counts "$LOGS/pgtap.log") || counts=""
	record_counts pgtap "$rc" "$counts" || show_tail "$dir/postgres.log" 80
	pgtap_cluster_stop "$dir"
}

pgtap_cluster_start() { # DIR PORT
	local dir=$1 port=$2 log="$LOGS/pgtap-setup.log"
	as_pg_user mkdir -p "$dir"
	{
		as_pg_user initdb -D "$dir/data" -U postgres -A trust --no-sync \
			-E UTF8 --no-locale &&
			as_pg_user tee -a "$dir/data/postgresql.conf" >/dev/null <<-EOF &&
				include '$TREE/test/ledger.conf'
				ledger.keyring_file = '$dir/ledger.keyring'
				listen_addresses = ''
				unix_socket_directories = '$dir'
				port = $port
				fsync = off
			EOF
			as_pg_user pg_ctl -D "$dir/data" -l "$dir/postgres.log" -w -t 120 start &&
			as_pg_user createdb -h "$dir" -p "$port" -U postgres ledger_pgtap &&
			as_pg_user psql -X -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres \
				-d ledger_pgtap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION ledger'
	} </dev/null >"$log" 2>&1
}

pgtap_cluster_stop() { # DIR
	stop_servers_under "$1"
	rm -rf "$1"
}

# --------------------------------------------------------------- sanitizer

# The fuzz harnesses of the code that reads proofs and digests from
# untrusted JSON (tools/fuzz_proof.c), of the keyring parser
# (tools/fuzz_keyring.c) and of the KMIP response reader
# (tools/fuzz_kmip.c).  They need no server; any crash, sanitizer
# report, accepted forgery or failed round trip stops them with a
# non-zero status.
suite_fuzz() {
	local rc=0
	section fuzz
	run_logged "$LOGS/fuzz.log" make -C "$TREE" fuzz FUZZ_SECONDS="${LEDGER_FUZZ_SECONDS:-60}" || rc=$?
	# One pass per harness (proof reader, keyring parser) that ran to the end.
	if ((rc == 0)) && [[ $(grep -c '^Done [0-9]* runs' "$LOGS/fuzz.log") == 3 ]]; then
		record fuzz 3 0 "$(grep -o '^Done [0-9]* runs' "$LOGS/fuzz.log" | tr '\n' ' ')"
	else
		record fuzz 0 1 "$(rc_note "$rc"); the finding is in $LOGS/fuzz.log"
		show_tail "$LOGS/fuzz.log" 60
	fi
}

# Build with ASan+UBSan+assertions in a second private copy, install that
# build, run REGRESS under it (scripts/sanitize.mk has the why and how),
# then put the normal build back.  Every sanitizer report and failed
# assertion counts as a failure even when every test passed: the tests
# only see a crashed backend, the server log says why.
suite_sanitize() {
	local san="$WORK/sanitize" rc=0 counts reports
	section sanitize
	copy_tree "$LEDGER_ROOT" "$san"
	give_to_pg_user "$san"
	if ! run_logged "$LOGS/sanitize-build.log" make -C "$san" -f scripts/sanitize.mk build; then
		record sanitize 0 1 "the sanitizer build failed"
		return 0
	fi
	SANITIZED_INSTALLED=1
	if ! ledger_install "$san" -f scripts/sanitize.mk install >"$LOGS/sanitize-install.log" 2>&1; then
		show_tail "$LOGS/sanitize-install.log" 30
		record sanitize 0 1 "could not install the sanitizer build"
		reinstall_normal_build || record reinstall 0 1 "could not reinstall the normal build"
		return 0
	fi
	run_logged "$LOGS/sanitize.log" make -C "$san" -f scripts/sanitize.mk installcheck || rc=$?
	counts=$(pg_regress_counts "$LOGS/sanitize.log") || counts=""
	record_counts sanitize "$rc" "$counts" || {
		show_head "$san/regression.diffs" 400
		show_tail "$san/log/postmaster.log" 80
	}
	reports=$(sanitizer_reports "$san"/log/* "$LOGS/sanitize.log")
	if ((reports > 0)); then
		record sanitizer-reports 0 "$reports" "ASan/UBSan reports or failed assertions"
		echo "----- sanitizer reports and failed assertions -----"
		grep -h -E -A12 "$SANITIZER_REPORT_RE" "$san"/log/* "$LOGS/sanitize.log" | head -n 300 || true
	fi
	reinstall_normal_build || record reinstall 0 1 "could not reinstall the normal build"
}

# One line starts each ASan or UBSan report and each failed Assert().
SANITIZER_REPORT_RE='==[0-9]+==ERROR: |runtime error: |^TRAP: |ASan runtime does not come first'

sanitizer_reports() { # FILES...
	cat "$@" 2>/dev/null | grep -c -E "$SANITIZER_REPORT_RE" || true
}

reinstall_normal_build() {
	log "reinstalling the normal build from $LEDGER_ROOT"
	ledger_build "$LEDGER_ROOT" >>"$LOGS/reinstall.log" 2>&1 &&
		ledger_install "$LEDGER_ROOT" >>"$LOGS/reinstall.log" 2>&1 &&
		SANITIZED_INSTALLED=0
}

# ------------------------------------------------------------- conformance

# Another helper's suite; it handles users and servers itself, so it runs
# as the caller, from the private copy (its results go there too), against
# the server of our PG_CONFIG.  Its counts come from its own closing line.
suite_conformance() {
	local script=test/conformance/run.sh rc=0 counts=""
	section conformance
	if [[ ! -f $TREE/$script ]]; then
		record conformance 0 0 "skipped: no $script"
		return 0
	fi
	run_logged --as-caller "$LOGS/conformance.log" env -C "$TREE" \
		LEDGER_PGBIN="${LEDGER_PGBIN:-$(pg_bindir)}" bash "$script" || rc=$?
	counts=$(sed -n -E 's/^conformance: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p' \
		"$LOGS/conformance.log" | tail -n 1)
	record_counts conformance "$rc" "$counts" || true
}

# ---------------------------------------------------------------- plumbing

make_work_copy() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/ledger-test.XXXXXX")
	TREE="$WORK/tree"
	LOGS="$WORK/logs"
	copy_tree "$LEDGER_ROOT" "$TREE"
	mkdir -p "$LOGS"
	# The PostgreSQL OS user must be able to reach and write the copy.
	chmod 755 "$WORK"
	give_to_pg_user "$WORK"
	log "suites run as $(pg_os_user) in $TREE"
}

# Stop leftover servers, put the normal build back if the sanitized one is
# still installed, and remove the work directory unless something failed.
# Quiet, because it runs before the closing line (and again from the trap).
cleanup() {
	local keep=${1:-1}
	((CLEANED_UP == 0)) || return 0
	CLEANED_UP=1
	stop_running_suite
	[[ -n $WORK ]] || return 0
	stop_servers_under "$WORK"
	if ((SANITIZED_INSTALLED)); then reinstall_normal_build || true; fi
	if ((keep)); then
		log "kept $WORK (sources, logs, diffs) for inspection"
	else
		rm -rf "$WORK"
	fi
}

print_summary() {
	local i total_p=0 total_f=0 status
	section summary
	for i in "${!R_NAME[@]}"; do
		status=ok
		((R_PASS[i] + R_FAIL[i] > 0)) || status=-
		((R_FAIL[i] == 0)) || status=FAILED
		printf '  %-18s %-7s %5d passed %5d failed  %s\n' \
			"${R_NAME[i]}" "$status" "${R_PASS[i]}" "${R_FAIL[i]}" "${R_NOTE[i]}"
		total_p=$((total_p + R_PASS[i]))
		total_f=$((total_f + R_FAIL[i]))
	done
	TOTAL_FAILED=$total_f
	cleanup "$((total_f > 0))" 2>&1
	echo "$total_p passed, $total_f failed"
}

main() {
	while (($#)); do
		case $1 in
		--quick) QUICK=1 ;;
		-h | --help) usage; exit 0 ;;
		*) usage >&2; die "unknown argument: $1" ;;
		esac
		shift
	done
	trap 'cleanup 1' EXIT
	trap 'exit 130' INT TERM

	section setup
	if ! bash "$LEDGER_ROOT/scripts/setup.sh"; then
		record setup 0 1 "scripts/setup.sh failed: nothing else can run"
		print_summary
		exit 1
	fi
	use_pg_bindir
	make_work_copy

	suite_regress
	suite_isolation
	suite_tap
	suite_pgtap
	suite_fuzz
	if ((QUICK)); then
		record sanitize 0 0 "skipped (--quick)"
		record conformance 0 0 "skipped (--quick)"
	else
		suite_sanitize
		suite_conformance
	fi

	print_summary
	((TOTAL_FAILED == 0))
}

main "$@"
