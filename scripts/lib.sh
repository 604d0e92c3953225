# shellcheck shell=bash
# scripts/lib.sh -- helpers shared by setup.sh, playground.sh and test.sh.
#
# Source it (". scripts/lib.sh"); it only defines variables and functions.
# Everything that more than one script needs lives here, so that the three
# scripts never disagree about packages, users, paths or build commands.

# Repository root: the directory above this file (the caller's copy of it).
LEDGER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Always use PostgreSQL 15's tools, even where another major version is
# installed too: Debian's /usr/bin/pg_config and psql follow the newest one.
PG_MAJOR=15
: "${PG_CONFIG:=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}"
export PG_CONFIG

# Debian packages the build, the suites and the playground need.  libasan8
# and libubsan1 are the gcc-12 sanitizer runtimes that test.sh's sanitizer
# pass preloads; build-essential pulls them in too, naming them documents it.
# libkrb5-dev: the server's libpq-be.h (the connection's transport) includes
# gssapi.h, since Debian builds the server with GSSAPI.
# libp11-kit-dev: the pkcs11 key provider loads modules through p11-kit.
# The provider tests play a KMS in Python (python3-cryptography), an HSM
# with SoftHSM2, set up with opensc's pkcs11-tool and driven with PyKCS11
# (python3-pykcs11), and a KMIP server with PyKMIP's (python3-pykmip).
LEDGER_APT_PACKAGES=(
	build-essential pkg-config libssl-dev libjansson-dev libkrb5-dev python3 openssl
	libp11-kit-dev
	postgresql-15 postgresql-server-dev-15
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	libipc-run-perl libasan8 libubsan1
	python3-cryptography softhsm2 opensc python3-pykcs11 python3-pykmip
)

# ---------------------------------------------------------------- messages

# Messages go to stderr so that stdout stays free for results.
log() { printf '[%s] %s\n' "${LEDGER_LOG_TAG:-ledger}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${LEDGER_LOG_TAG:-ledger}" "$*" >&2; exit 1; }
section() { printf '\n===== %s =====\n' "$*" >&2; }

# ------------------------------------------------------------------- users

is_root() { [[ $EUID -eq 0 ]]; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
	if is_root; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -- "$@"
	else
		die "this step needs root and sudo is not installed: $*"
	fi
}

# initdb and postgres refuse to run as root, so servers and suites run as
# the "postgres" OS user when we are root, and as the caller otherwise.
pg_os_user() {
	if is_root; then echo postgres; else id -un; fi
}

# The command prefix that runs a program as pg_os_user, in PG_USER_PREFIX.
# As root it is setpriv, which execs the program directly: no PAM session,
# no new process group, the environment kept (PATH, PG_CONFIG...) apart
# from the identity variables set here.  So a program started with it in
# the background has the program's own pid in $!.
set_pg_user_prefix() {
	if ! is_root; then
		PG_USER_PREFIX=(env)
		return
	fi
	local home
	home=$(getent passwd postgres | cut -d: -f6) ||
		die "no 'postgres' OS user (is postgresql-$PG_MAJOR installed?)"
	PG_USER_PREFIX=(setpriv --reuid=postgres --regid=postgres --init-groups --
		env HOME="$home" USER=postgres LOGNAME=postgres)
}

# Run a program (not a shell function) as pg_os_user.
as_pg_user() {
	set_pg_user_prefix
	"${PG_USER_PREFIX[@]}" "$@"
}

# Give a directory tree to pg_os_user (a no-op unless we are root).
give_to_pg_user() {
	if is_root; then chown -R postgres:postgres "$@"; fi
}

# -------------------------------------------------------------- packages

missing_packages() {
	local pkg
	for pkg in "${LEDGER_APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^ii' ||
			echo "$pkg"
	done
}

# Install whatever is missing: apt-get update once, then install, as root
# or through sudo.  Without either, say exactly what to install.
install_missing_packages() {
	local missing
	mapfile -t missing < <(missing_packages)
	if ((${#missing[@]} == 0)); then
		log "all required Debian packages are installed"
		return 0
	fi
	if ! is_root && ! command -v sudo >/dev/null 2>&1; then
		die "missing Debian packages: ${missing[*]}
  not root and no sudo; as root run:
  apt-get update && apt-get install -y ${missing[*]}"
	fi
	log "installing missing Debian packages: ${missing[*]}"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
		--no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}"
}

# ------------------------------------------------------------ build/install

pg_bindir() { "$PG_CONFIG" --bindir; }

# Put PostgreSQL 15's programs (initdb, pg_ctl, psql...) first on PATH.
use_pg_bindir() {
	PATH="$(pg_bindir):$PATH"
	export PATH
}

# make in a tree (default: the repository), as the current user.
ledger_build() {
	make -C "${1:-$LEDGER_ROOT}" -j"$(nproc)" PG_CONFIG="$PG_CONFIG"
}

# make install in a tree (default: the repository; further arguments replace
# "install", e.g. "-f scripts/sanitize.mk install").  It writes to
# PostgreSQL's lib and share directories: use root/sudo unless those are
# writable for the current user anyway.
ledger_install() {
	local tree=${1:-$LEDGER_ROOT} libdir sharedir
	shift || true
	(($#)) || set -- install
	libdir=$("$PG_CONFIG" --pkglibdir)
	sharedir=$("$PG_CONFIG" --sharedir)
	if [[ -w $libdir && -w $sharedir/extension ]]; then
		make -C "$tree" PG_CONFIG="$PG_CONFIG" "$@"
	else
		as_root make -C "$tree" PG_CONFIG="$PG_CONFIG" "$@"
	fi
}

# ---------------------------------------------------------- local servers

# Whether something listens on TCP port $1 of the loopback interface.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A random TCP port on which nothing listens on the loopback interface.
free_port() {
	local port _
	for _ in $(seq 1 100); do
		port=$((20000 + RANDOM % 40000))
		if ! port_in_use "$port"; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# pg_ctl as pg_os_user, from PostgreSQL 15's bindir.
pg_ctl_as_pg_user() {
	as_pg_user "$(pg_bindir)/pg_ctl" "$@"
}

# Stop every server whose data directory lies under $1 (left behind by an
# interrupted or failed suite).  Only servers of ours: found by their
# postmaster.pid files inside our own directory.
stop_servers_under() {
	local pidfile datadir
	[[ -d $1 ]] || return 0
	while IFS= read -r pidfile; do
		datadir=$(dirname "$pidfile")
		pg_ctl_as_pg_user -D "$datadir" stop -m immediate -w -t 30 >/dev/null 2>&1 || true
	done < <(find "$1" -name postmaster.pid -type f 2>/dev/null)
}

# ------------------------------------------------------------ tree copies

# Copy the source tree $1 to $2 without VCS data and build/test products,
# so a suite runs on exactly the sources and cannot dirty the original.
copy_tree() {
	mkdir -p "$2"
	tar -C "$1" \
		--exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--anchored --exclude=./results --exclude='./tmp_check*' \
		--exclude=./output_iso --exclude=./log --exclude='./regression.*' \
		-cf - . | tar -C "$2" -xf -
}

# ---------------------------------------------------------- result parsing

# Counts from a pg_regress / pg_isolation_regress log: prints "PASSED FAILED"
# from its closing summary, or fails when there is none (it did not run).
# Failures that a schedule marks "ignore" count as passed, as pg_regress's
# own exit status does.
pg_regress_counts() {
	awk '
		/^ *All [0-9]+ tests passed\./ { p = $2; f = 0; found = 1 }
		/^ *[0-9]+ of [0-9]+ tests passed, [0-9]+ failed test\(s\) ignored\./ {
			p = $3; f = 0; found = 1 }
		/^ *[0-9]+ of [0-9]+ tests failed\./ { f = $1; p = $3 - $1; found = 1 }
		/^ *[0-9]+ of [0-9]+ tests failed, [0-9]+ of these failures ignored\./ {
			f = $1 - $6; p = $3 - f; found = 1 }
		END { if (!found) exit 1; print p, f }
	' "$1"
}

# Counts from a prove / pg_prove (TAP::Harness) log: prints "PASSED FAILED"
# in assertions, or fails when the harness printed no "Files=, Tests=" line.
# A failing file that failed no assertion (died, bad plan, non-zero exit)
# counts as one failed assertion, so it can never pass unnoticed.
tap_counts() {
	sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
		function close_file() {
			if (!infile) return
			if (failed > 0) nfail += failed
			else if (wstat != 0 || bad) nfail += 1
			nfailed_asserts += failed
			infile = 0
		}
		/\(Wstat: [0-9]+/ && /Tests: [0-9]+ Failed: [0-9]+\)/ {
			close_file()
			s = $0; sub(/.*\(Wstat: /, "", s); wstat = s + 0
			s = $0; sub(/.*Failed: /, "", s); failed = s + 0
			infile = 1; bad = 0
			next
		}
		infile && /^ +(Parse errors|Non-zero exit status|Non-zero wait status):/ { bad = 1 }
		/^Files=[0-9]+, Tests=[0-9]+/ {
			close_file()
			s = $0; sub(/.*Tests=/, "", s); total = s + 0; found = 1
		}
		END {
			close_file()
			if (!found) exit 1
			print total - nfailed_asserts, nfail
		}
	'
}
