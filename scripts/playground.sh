#!/usr/bin/env bash
# scripts/playground.sh -- README command #1: a local ledger playground.
#
#   scripts/playground.sh [start]  set up (packages, build, install), create the
#                                  playground if missing, start it, print how
#                                  to connect
#   scripts/playground.sh stop     stop it
#   scripts/playground.sh status   say whether it runs (exit status 3 if not)
#   scripts/playground.sh restart  stop, then start (loads a rebuilt ledger.so)
#   scripts/playground.sh destroy  stop it and delete it, keyring included
#
# The playground lives in ${LEDGER_PLAYGROUND:-/var/tmp/ledger-playground},
# port ${LEDGER_PLAYGROUND_PORT:-5499}:
#   data/            the cluster (PostgreSQL 15), run by the "postgres" OS user
#                    when this script runs as root, else by the caller
#   ledger.keyring   the file provider's keyring: outside the data directory,
#                    as the design requires; ledger creates it (mode 0600)
#   postgres.log     the server log
#   .s.PGSQL.5499    the Unix socket; TCP listens on loopback only
# Local socket logins are trusted but the socket is private to its owner
# (root can use it too); TCP logins need a password, which no role has until
# you set one.  The sample database "ledger" holds the extension and a
# table "accounts" USING ledger.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LEDGER_LOG_TAG=playground

PLAYGROUND=${LEDGER_PLAYGROUND:-/var/tmp/ledger-playground}
PORT=${LEDGER_PLAYGROUND_PORT:-5499}
DB=ledger
DATA=$PLAYGROUND/data
SERVER_LOG=$PLAYGROUND/postgres.log
KEYRING=$PLAYGROUND/ledger.keyring
MARKER=$PLAYGROUND/.ledger-playground   # says "this directory is ours"

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

# How to call this script again, with the settings of this call.
self_command() {
	local env=()
	[[ -z ${LEDGER_PLAYGROUND:-} ]] || env+=("LEDGER_PLAYGROUND=$(printf %q "$PLAYGROUND")")
	[[ -z ${LEDGER_PLAYGROUND_PORT:-} ]] || env+=("LEDGER_PLAYGROUND_PORT=$PORT")
	echo "${env[*]}${env[*]:+ }$0 $*"
}

# What a person types to connect (printed, never run).
connect_command() {
	printf 'psql -h %q -p %s -U postgres %s' "$PLAYGROUND" "$PORT" "$DB"
}

# psql into the playground as its owner, stopping at the first error,
# without NOTICEs ("extension already exists, skipping" on every start).
pg_psql() {
	as_pg_user env PGOPTIONS='-c client_min_messages=warning' \
		psql -X -q -v ON_ERROR_STOP=1 -h "$PLAYGROUND" -p "$PORT" -U postgres "$@"
}

is_running() {
	[[ -f $DATA/PG_VERSION ]] && pg_ctl_as_pg_user -D "$DATA" status >/dev/null 2>&1
}

check_location() {
	[[ $PLAYGROUND == /* ]] || die "LEDGER_PLAYGROUND must be an absolute path: $PLAYGROUND"
	# The path goes into postgresql.conf unescaped.
	[[ $PLAYGROUND != *[\'\"\\[:space:]]* ]] ||
		die "LEDGER_PLAYGROUND must not contain quotes, backslashes or spaces"
	# A Unix socket path holds at most 107 bytes.
	local socket="$PLAYGROUND/.s.PGSQL.$PORT"
	((${#socket} <= 107)) || die "LEDGER_PLAYGROUND is too long for a Unix socket path"
}

# Create the directory, owned by the server's OS user, private to it.
make_playground_dir() {
	if [[ -d $PLAYGROUND && ! -f $MARKER && -n $(ls -A "$PLAYGROUND") ]]; then
		die "$PLAYGROUND exists, is not empty and is not a ledger playground"
	fi
	mkdir -p "$PLAYGROUND"
	touch "$MARKER"
	chmod 700 "$PLAYGROUND"
	give_to_pg_user "$PLAYGROUND"
	as_pg_user test -w "$PLAYGROUND" ||
		die "user $(pg_os_user) cannot write to $PLAYGROUND (check its parent directories)"
}

init_cluster() {
	[[ -f $DATA/PG_VERSION ]] && return 0
	log "creating a PostgreSQL $PG_MAJOR cluster in $DATA"
	as_pg_user initdb -D "$DATA" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 -E UTF8 --no-locale \
		>"$PLAYGROUND/initdb.log" 2>&1 || {
		tail -n 30 "$PLAYGROUND/initdb.log" >&2
		die "initdb failed; full output in $PLAYGROUND/initdb.log"
	}
	echo "include_if_exists 'ledger_playground.conf'" |
		as_pg_user tee -a "$DATA/postgresql.conf" >/dev/null
}

# Rewritten on every start, so the settings always match this script.
write_config() {
	as_pg_user tee "$DATA/ledger_playground.conf" >/dev/null <<-EOF
		# Written by scripts/playground.sh on every start: edit that script instead.
		listen_addresses = 'localhost'
		port = $PORT
		unix_socket_directories = '$PLAYGROUND'
		unix_socket_permissions = 0700
		shared_preload_libraries = 'ledger'
		ledger.keyring_file = '$KEYRING'
	EOF
}

start_server() {
	if is_running; then
		log "already running (after a rebuild, '$(self_command restart)' loads the new ledger.so)"
		return 0
	fi
	if port_in_use "$PORT"; then
		die "port $PORT on 127.0.0.1 is taken by another server; stop that one,
  or give the playground another port, e.g. LEDGER_PLAYGROUND_PORT=5599 $0"
	fi
	log "starting the server (log: $SERVER_LOG)"
	pg_ctl_as_pg_user -D "$DATA" -l "$SERVER_LOG" -w -t 60 start >/dev/null || {
		tail -n 30 "$SERVER_LOG" >&2
		die "the server did not start; see $SERVER_LOG"
	}
}

create_sample() {
	if [[ -z $(pg_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB'") ]]; then
		as_pg_user createdb -h "$PLAYGROUND" -p "$PORT" -U postgres "$DB"
	fi
	pg_psql -d "$DB" -c 'CREATE EXTENSION IF NOT EXISTS ledger' ||
		die "CREATE EXTENSION ledger failed (error above; is the C code complete?).
  The server is still running; stop it with: $(self_command stop)"
	# A playground made by a development build before the hash chain, or
	# before its tree of blocks, has the extension's old objects, which
	# this build refuses to write.
	if [[ $(pg_psql -d "$DB" -Atc "SELECT NOT EXISTS (SELECT FROM pg_attribute
	        WHERE attrelid = to_regclass('ledger.blocks') AND attname = 'tree_root'
	          AND NOT attisdropped)") == t ]]; then
		die "the playground's database was made by an earlier build of ledger, before the hash chain
  or its tree of blocks, and there is no upgrade path from development builds.  Start a new playground:
  $(self_command destroy) && $(self_command)"
	fi
	if [[ $(pg_psql -d "$DB" -Atc "SELECT to_regclass('public.accounts') IS NULL") == t ]]; then
		log "creating the sample table accounts"
		pg_psql -d "$DB" <<-'SQL' || die "could not create the sample table accounts (error above)"
			BEGIN;
			CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
			INSERT INTO accounts VALUES (1, 'alice', 100.00), (2, 'bob', 250.50), (3, 'carol', 0);
			COMMIT;
		SQL
	fi
}

print_info() {
	cat <<-EOF

		ledger playground is running: PostgreSQL $PG_MAJOR, port $PORT, socket in $PLAYGROUND
		  connect:  $(connect_command)
		  then try: SELECT * FROM accounts;
		  stop:     $(self_command stop)
		  files:    $DATA (data), $KEYRING (keyring), $SERVER_LOG (log)
	EOF
}

cmd_start() {
	check_location
	bash "$LEDGER_ROOT/scripts/setup.sh"
	use_pg_bindir
	make_playground_dir
	init_cluster
	write_config
	start_server
	create_sample
	print_info
}

cmd_stop() {
	if ! [[ -x $PG_CONFIG ]] || ! is_running; then
		log "not running"
		return 0
	fi
	pg_ctl_as_pg_user -D "$DATA" stop -m fast -w >/dev/null
	log "stopped"
}

cmd_status() {
	if [[ -x $PG_CONFIG ]] && is_running; then
		print_info
		return 0
	fi
	if [[ -f $DATA/PG_VERSION ]]; then
		log "not running (start it with: $(self_command start))"
	else
		log "no playground in $PLAYGROUND (create it with: $(self_command start))"
	fi
	return 3
}

cmd_destroy() {
	cmd_stop
	[[ -e $PLAYGROUND ]] || { log "nothing to delete"; return 0; }
	[[ -f $MARKER ]] || die "$PLAYGROUND is not a ledger playground; not deleting it"
	rm -rf "$PLAYGROUND"
	log "deleted $PLAYGROUND"
}

main() {
	case ${1:-start} in
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	restart) cmd_stop && cmd_start ;;
	destroy) cmd_destroy ;;
	-h | --help) usage ;;
	*) usage >&2; exit 2 ;;
	esac
}

main "$@"
