#!/usr/bin/env bash
# PostgreSQL's own regression and isolation suites as the ledger conformance
# test.  See test/conformance/README.md.
set -euo pipefail
umask 022   # the cache and results must stay readable by the postgres user

PG_SRC_VERSION=15.18-0+deb12u1
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${LEDGER_CACHE:-/var/cache/ledger}
SRC=$CACHE/postgresql-15-${PG_SRC_VERSION%%-*}
PGBIN=${LEDGER_PGBIN:-/usr/lib/postgresql/15/bin}   # the installed server
OUT=${LEDGER_CONFORMANCE_OUT:-$HERE/out}
# What the "ledger" run uses: ledger (the extension), heap (the default AM
# left as is: checks the mechanics only) or heap-alias (an AM named ledger
# that is heap's handler: shows what an AM's name alone changes).
AM=${LEDGER_CONFORMANCE_AM:-ledger}
JOBS=${LEDGER_CONFORMANCE_JOBS:-2}         # tests at once (pg_regress --max-connections)
TIMEOUT=${LEDGER_CONFORMANCE_TIMEOUT:-3600}  # seconds per suite run
# A cell of a psql listing that names one of the extension's access methods
# or handler functions (as in \dA, pg_am, or pg_depend's descriptions).
AM_CELL_RE=${LEDGER_CONFORMANCE_AM_CELL_RE:-'^(access method )?ledger(_[a-z]+)?$|^ledger[._a-z0-9]*handler$'}
SUITES="regress isolation"
WORK=""      # temporary directory, removed on exit
DATA=""      # data directory of the running cluster, if any
RUNNING=""   # pid of the running test driver, if any
log() { printf '[conformance %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

# --- 1. source --------------------------------------------------------------

# The deb-src URIs: those of the existing "deb" entries for this release's
# main suite, so that whatever mirror the machine uses is reused (no host name
# is written into any file of ours).
apt_uris() {
  local codename=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    # one-line format: deb [opts] URI SUITE COMPONENTS...
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
      awk -v s="$codename" '$1 == "deb" && $3 == s { print $2 }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    # deb822 format: paragraphs separated by blank lines
    awk -v s="$codename" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ")) print uris
        types = suites = uris = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^Types:/  { sub(/^Types:[ \t]*/, "");  types = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      /^URIs:/   { sub(/^URIs:[ \t]*/, "");   uris = $0 }
      END { flush() }' "$f" | tr ' ' '\n'
  done
}

SRC_LIST=/etc/apt/sources.list.d/ledger-conformance-src.sources

add_deb_src() {
  local codename uris
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  uris=$(apt_uris "$codename" | grep -v '^$' | sort -u | tr '\n' ' ')
  [[ -n $uris ]] || die "no 'deb' entry for $codename in the apt sources"
  log "adding deb-src for $codename from: $uris"
  cat > "$SRC_LIST" <<SRC
# Added by ledger's test/conformance/run.sh to fetch PostgreSQL's source.
Types: deb-src
URIs: ${uris% }
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq >&2
}

fetch_source() {
  if [[ -f $SRC/src/test/regress/parallel_schedule ]]; then
    log "source: reusing $SRC"; return
  fi
  [[ $(id -u) == 0 ]] || die "fetching the source needs root (apt); or set LEDGER_CACHE"
  command -v dpkg-source >/dev/null || { apt-get update -q >&2; apt-get install -y -q dpkg-dev >&2; }
  add_deb_src
  mkdir -p "$CACHE"
  # apt-get source runs as root here; the _apt sandbox warning is harmless.
  local rc=0
  (cd "$CACHE" && apt-get source -qq "postgresql-15=$PG_SRC_VERSION") \
    >"$CACHE/fetch.log" 2>&1 || { rc=$?; cat "$CACHE/fetch.log" >&2; }
  # The entry is only needed for this download: removed, so that later
  # "apt-get update"s do not fetch source indexes for nothing.
  rm -f "$SRC_LIST"
  [[ $rc == 0 ]] || die "apt-get source postgresql-15=$PG_SRC_VERSION failed"
  [[ -f $SRC/src/test/regress/parallel_schedule ]] || die "no source tree at $SRC"
}

# --- 2. build ---------------------------------------------------------------

# Only psql (with its libpq), pg_regress + regress.so and pg_isolation_regress
# + isolationtester: the server under test is the installed one.
build_tools() {
  if [[ -x $SRC/src/bin/psql/psql && -f $SRC/src/test/regress/regress.so \
        && -x $SRC/src/test/isolation/pg_isolation_regress ]]; then
    log "build: reusing $SRC"; return
  fi
  local jobs; jobs=$(nproc)
  log "build: configure + make in $SRC (log: $SRC/build.log)"
  (
    cd "$SRC"
    [[ -f config.status ]] ||
      ./configure -q --without-icu --without-readline --without-zlib
    # Generated catalog headers first: with -j, psql's objects would
    # otherwise race the implicit submake that creates them.
    make -s -C src/backend generated-headers
    make -s -j"$jobs" -C src/bin/psql
    make -s -j"$jobs" -C src/test/regress
    make -s -j"$jobs" -C src/test/isolation
  ) >"$SRC/build.log" 2>&1 || { tail -30 "$SRC/build.log" >&2; die "build failed"; }
}

# --- 3. clusters and runs ---------------------------------------------------

# initdb and postgres refuse to run as root: then everything that touches the
# cluster, pg_regress included (it writes results the server reads back), runs
# as the postgres OS user inside a directory it owns.
as_pg() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A test driver runs in the background so that a signal reaches our trap at
# once (bash defers traps while a foreground command runs, and timeout(1)
# puts pg_regress in its own process group, out of reach of a Ctrl-C).
run_waited() {
  local rc=0
  "$@" & RUNNING=$!
  wait "$RUNNING" || rc=$?
  RUNNING=""
  return "$rc"
}

# The pids of $1's descendants: the driver's psql and diff processes would
# otherwise go on writing into the directory being removed.
descendants() {
  local p
  for p in $(pgrep -P "$1" || true); do echo "$p"; descendants "$p"; done
}

cleanup() {
  if [[ -n $RUNNING ]]; then
    local pids; mapfile -t pids < <(descendants "$RUNNING")
    kill "${pids[@]}" "$RUNNING" 2>/dev/null || true
    wait "$RUNNING" 2>/dev/null || true
  fi
  if [[ -n $DATA && -f $DATA/postmaster.pid ]]; then
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [[ -z $WORK ]] || rm -rf "$WORK"
}

make_workdir() {
  WORK=$(mktemp -d /tmp/ledger-conformance.XXXXXX)
  [[ $(id -u) != 0 ]] || chown postgres: "$WORK"
  chmod 700 "$WORK"
}

# Only the unix socket in our private directory is used (no TCP), so any
# port works; still avoid one that is listening, to keep logs unambiguous.
free_port() {
  local p
  for ((p = 54400 + RANDOM % 500; ; p++)); do
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}

# $1 = mode (heap|ledger).  Settings mirror what pg_regress gives a
# temporary instance (`make check`), so expected outputs match.
start_cluster() {
  local mode=$1 dir=$WORK/$1
  DATA=$dir/data
  as_pg mkdir -p "$dir/sock"
  as_pg "$PGBIN/initdb" -D "$DATA" --no-sync -E UTF8 --locale=C -A trust \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<CONF
listen_addresses = ''
unix_socket_directories = '$dir/sock'
port = $(free_port)
fsync = off
log_autovacuum_min_duration = 0
log_checkpoints = on
log_line_prefix = '%m %b[%p] %q%a '
log_lock_waits = on
log_temp_files = 128kB
max_prepared_transactions = 2
CONF
  # analyze_sealed_columns: so that planner statistics, and so plans, match
  # heap's.  default_deletion_protection off: protection is a feature of its
  # own (docs/reference.md); left on, every DROP TABLE of the suites fails,
  # and then every later CREATE of the same name.  require_key_grant off:
  # the suites read and write as roles of their own, which hold table
  # privileges only; the key grant is tested by ledger's own suites.
  if [[ $mode == ledger && $AM == ledger ]]; then
    as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<'CONF'
shared_preload_libraries = 'ledger'
ledger.keyring_file = '../ledger.keyring'
ledger.analyze_sealed_columns = on
ledger.default_deletion_protection = off
ledger.require_key_grant = off
CONF
  fi
  # Extra settings for a run, e.g. to see one of ledger's defaults at work.
  if [[ $mode == ledger && -n ${LEDGER_CONFORMANCE_CONF:-} ]]; then
    printf '%s\n' "$LEDGER_CONFORMANCE_CONF" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
  fi
  as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$dir/server.log" -w start >/dev/null ||
    { tail -20 "$dir/server.log" >&2; die "the $mode cluster did not start"; }
}

stop_cluster() {
  as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  DATA=""
}

sql() {
  as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(sock)" -p "$(port)" "$@"
}
sock() { echo "$(dirname "$DATA")/sock"; }
port() { sed -n 's/^port = //p' "$DATA/postgresql.conf" | tail -1; }

# $1 = suite, rest = extra options.  The 15.18 client programs must run on
# 15.18's libpq (their rpath points to an install that does not exist).
pg_regress_cmd() {
  local suite=$1; shift
  local prog=$SRC/src/test/regress/pg_regress dir=$SRC/src/test/regress
  if [[ $suite == isolation ]]; then
    prog=$SRC/src/test/isolation/pg_isolation_regress dir=$SRC/src/test/isolation
  fi
  as_pg env LD_LIBRARY_PATH="$SRC/src/interfaces/libpq" \
    timeout "$TIMEOUT" "$prog" --inputdir="$dir" --bindir="$SRC/src/bin/psql" \
    --dlpath="$SRC/src/test/regress" --host="$(sock)" --port="$(port)" \
    --max-connections="$JOBS" "$@"
}

# pg_regress makes its database from template0, so it must create the
# extension itself (--load-extension), with default_table_access_method still
# heap so that the install script's own objects are unaffected.  Only then is
# the default switched, cluster-wide, and the suites run on those databases
# (--use-existing).
prepare_ledger_dbs() {
  local suite db load=() default=ledger
  [[ $AM != ledger ]] || load=(--load-extension=ledger)
  [[ $AM != heap ]] || default=heap
  for suite in $SUITES; do
    db=$(dbname "$suite")
    run_waited pg_regress_cmd "$suite" --outputdir="$WORK/ledger/prep-$suite" \
      --dbname="$db" "${load[@]}" >"$WORK/ledger/prep-$suite.log" 2>&1 ||
      { cat "$WORK/ledger/prep-$suite.log" >&2; die "could not create the $suite database with the extension"; }
    [[ $AM != heap-alias ]] ||
      sql -d "$db" -c 'CREATE ACCESS METHOD ledger TYPE TABLE HANDLER heap_tableam_handler'
  done
  sql -d regression -c "ALTER SYSTEM SET default_table_access_method = '$default'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  # A reload is asynchronous; wait until new sessions see it.
  local i
  for ((i = 0; i < 50; i++)); do
    [[ $(sql -d regression -Atc 'SHOW default_table_access_method') == "$default" ]] && return
    sleep 0.1
  done
  die "default_table_access_method did not become $default"
}
dbname() { [[ $1 == isolation ]] && echo isolation_regression || echo regression; }

# $1 = mode, $2 = suite.  Leaves regression.out/.diffs and results/ in
# $OUT/$mode/$suite; a failing suite is not an error here.
run_suite() {
  local mode=$1 suite=$2 schedule extra=() rc=0
  local out=$WORK/$mode/$suite
  schedule=$SRC/src/test/regress/parallel_schedule
  [[ $suite == regress ]] || schedule=$SRC/src/test/isolation/isolation_schedule
  [[ $mode == heap ]] || extra=(--use-existing)
  run_waited pg_regress_cmd "$suite" --outputdir="$out" --schedule="$schedule" \
    "${extra[@]}" >"$WORK/$mode/$suite.log" 2>&1 || rc=$?
  case $rc in
    0|1) ;;
    124) log "$mode/$suite: timed out after $TIMEOUT s; unfinished tests count as failed" ;;
    *) log "$mode/$suite: pg_regress exited $rc"; tail -5 "$WORK/$mode/$suite.log" >&2 ;;
  esac
  rm -rf "${OUT:?}/$mode/$suite"; mkdir -p "$OUT/$mode/$suite"
  cp "$WORK/$mode/$suite.log" "$OUT/$mode/$suite/pg_regress.log"
  cp -r "$out/results" "$out/regression.out" "$out/regression.diffs" "$OUT/$mode/$suite/" 2>/dev/null || true
}

# $1 = mode: one fresh cluster runs both suites.
run_mode() {
  local mode=$1 suite
  start_cluster "$mode"
  [[ $mode == heap ]] || prepare_ledger_dbs
  for suite in $SUITES; do
    log "$mode: running $suite"
    run_suite "$mode" "$suite"
  done
  stop_cluster
  cp "$WORK/$mode/server.log" "$OUT/$mode/server.log"
  # Crashes show up as failed tests; point at them in the log as well.
  grep -E 'terminated by signal|was terminated by exception' "$OUT/$mode/server.log" |
    head -5 | sed "s/^/[$mode server] /" >&2 || true
}

# --- 4. comparison ----------------------------------------------------------

# "suite/test status" for every test pg_regress reported in $1 (a mode).
# Read from its output: it deletes regression.out when every test passed.
statuses() {
  local suite
  for suite in $SUITES; do
    [[ -f $OUT/$1/$suite/pg_regress.log ]] || continue
    sed -nE 's/^(test |     )([^ ]+) +\.\.\. (ok|FAILED|failed \(ignored\)).*/\2 \3/p' \
      "$OUT/$1/$suite/pg_regress.log" |
      awk -v s="$suite" '{ print s "/" $1, ($2 == "ok" ? "ok" : "FAILED") }'
  done
}

# Whitespace-insensitive form of psql output: a longer AM name widens the
# columns of a whole listing.
normalize() {
  sed -E -e 's/[[:space:]]+$//' -e 's/  +/ /g' -e '/^[-+]+$/ s/-+/-/g' "$1"
}

# True if results $1 (heap) and $2 (ledger) differ only by rows of listings
# that name the extension's access methods (added on ledger's side) and the
# "(N rows)" footers of those listings, which must grow by as many rows as
# were added.  A row is a line of "|"-separated cells, one of which matches
# AM_CELL_RE, so messages that merely mention ledger do not qualify.
am_listing_only() {
  [[ -f $1 && -f $2 ]] || return 1
  { diff <(normalize "$1") <(normalize "$2") || true; } | awk -v am="$AM_CELL_RE" '
    function check() { if (dother || aother || drc != arc) bad = 1
                       dother = aother = drc = arc = 0 }
    function am_row(l,   n, c, i) {
      n = split(l, c, "|")
      for (i = 1; i <= n && n > 1; i++) {
        gsub(/^ +| +$/, "", c[i])
        if (c[i] ~ am) return 1
      }
      return 0
    }
    function footer(l) { return l ~ /^\([0-9]+ rows?\)$/ }
    /^[0-9]/  { check(); next }
    /^---$/   { next }
    /^< /     { l = substr($0, 3)
                if (footer(l)) { drc++; grown -= substr(l, 2) + 0 } else dother++
                next }
    /^> /     { l = substr($0, 3)
                if (footer(l)) { arc++; grown += substr(l, 2) + 0 }
                else if (am_row(l)) added++
                else aother++
                next }
    END { check(); exit bad || grown != added }'
}

# Prints "suite/test<TAB>reason" for each exception; bare names match either suite.
exceptions() {
  local f=$HERE/exceptions.txt
  [[ -f $f ]] || return 0
  { grep -vE '^[[:space:]]*(#|$)' "$f" || true; } | while IFS=$'\t' read -r name reason; do
    if [[ $name == */* ]]; then printf '%s\t%s\n' "$name" "$reason"
    else for s in $SUITES; do printf '%s/%s\t%s\n' "$s" "$name" "$reason"; done; fi
  done
}

# Prints "suite/test heap ledger verdict" for every test seen on heap.
# Verdicts: pass, am-listing, same-as-heap (fails on heap too, identical
# output), excused, FAIL, heap-fail (fails on both, not counted).
verdicts() {
  local -A led exc
  local t h l v
  while read -r t l; do led[$t]=$l; done < <(statuses ledger)
  while IFS=$'\t' read -r t v; do exc[$t]=$v; done < <(exceptions)
  while read -r t h; do
    l=${led[$t]:-missing}
    local hres=$OUT/heap/${t%%/*}/results/${t#*/}.out
    local lres=$OUT/ledger/${t%%/*}/results/${t#*/}.out
    if [[ $l == ok && $h == ok ]]; then v=pass
    elif [[ $l != missing ]] && cmp -s "$hres" "$lres"; then
      if [[ $h == ok ]]; then v=pass; else v=same-as-heap; fi
    elif [[ $l != missing ]] && am_listing_only "$hres" "$lres"; then v=am-listing
    elif [[ $h != ok ]]; then v=heap-fail
    elif [[ -n ${exc[$t]+x} ]]; then v=excused
    else v=FAIL
    fi
    echo "$t $h $l $v"
  done < <(statuses heap)
}

# Writes the heap-vs-ledger diff of each test that is not a plain pass.
keep_diffs() {
  local t h l v
  rm -rf "${OUT:?}/diffs"
  while read -r t h l v; do
    [[ $v != pass && $v != same-as-heap ]] || continue
    mkdir -p "$OUT/diffs/${t%%/*}"
    diff -u "$OUT/heap/${t%%/*}/results/${t#*/}.out" \
            "$OUT/ledger/${t%%/*}/results/${t#*/}.out" \
      >"$OUT/diffs/$t.diff" 2>&1 || true
  done
}

# Notes an exception ($1) that names no test, or whose test no longer fails.
stale_exception() {
  awk -v n="$1" '
    { t = $1; sub(/^[^\/]*\//, "", t) }
    $1 == n || t == n { seen = 1; if ($4 == "excused") used = 1 }
    END { if (!seen) print "names no test"; else if (!used) print "is no longer needed" }' |
    while read -r why; do log "note: exception $1 $why"; done
}

# The kept directory may not outlive the run (CI): print the start of each
# unexcused diff.
show_failures() {
  local t h l v
  while read -r t h l v; do
    [[ $v == FAIL ]] || continue
    echo; echo "--- $t: heap vs ledger (first 60 lines)"
    head -60 "$OUT/diffs/$t.diff"
  done
}

report() {
  local v_file=$OUT/verdicts.txt passed failed n
  verdicts >"$v_file"
  keep_diffs <"$v_file"
  printf '\n%-42s %-8s %-8s %s\n' TEST HEAP LEDGER VERDICT
  awk '$4 != "pass" { printf "%-42s %-8s %-8s %s\n", $1, $2, $3, $4 }' "$v_file"
  passed=$(awk '$4 ~ /^(pass|am-listing|same-as-heap)$/' "$v_file" | wc -l)
  failed=$(awk '$4 == "FAIL"' "$v_file" | wc -l)
  n=$(awk '$2 == "ok"' "$v_file" | wc -l)
  local name
  { grep -vE '^[[:space:]]*(#|$)' "$HERE/exceptions.txt" 2>/dev/null || true; } | cut -f1 |
    while read -r name; do stale_exception "$name" <"$v_file"; done
  show_failures <"$v_file"
  echo
  echo "heap passes $n tests; excused on ledger: $(awk '$4 == "excused"' "$v_file" | wc -l);" \
       "diffs (heap vs ledger results) in $OUT/diffs"
  echo "conformance: $passed passed, $failed failed"
  [[ $failed == 0 ]]
}

main() {
  local t0=$SECONDS times=()
  fetch_source; times+=("source $((SECONDS - t0)) s"); t0=$SECONDS
  build_tools;  times+=("build $((SECONDS - t0)) s"); t0=$SECONDS
  if [[ $AM == ledger && ! -f $("$PGBIN/pg_config" --sharedir)/extension/ledger.control ]]; then
    die "the ledger extension is not installed (make install), or set LEDGER_CONFORMANCE_AM=heap"
  fi
  mkdir -p "$OUT"
  make_workdir
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  if [[ ${LEDGER_CONFORMANCE_REUSE_BASELINE:-0} == 1 && -f $OUT/heap/regress/pg_regress.log ]]; then
    log "heap: reusing the baseline in $OUT/heap"
  else
    run_mode heap
  fi
  times+=("heap run $((SECONDS - t0)) s"); t0=$SECONDS
  run_mode ledger; times+=("$AM run $((SECONDS - t0)) s")
  log "times: ${times[*]}"
  report || exit 1
}

# On one line: bash reads a script as it runs, so an edit made meanwhile
# must not be reached.
main "$@"; exit
