#!/usr/bin/env bash
# scripts/setup.sh -- make this machine able to build, run and test ledger.
#
# Idempotent; safe to run again and again:
#   1. installs the Debian packages that are missing (as root, or through
#      sudo; without either it fails and lists what to install),
#   2. builds the extension in place (make) as the current user,
#   3. installs it into PostgreSQL 15 (make install, as root or through sudo).
# playground.sh and test.sh run it first, so it is rarely called by hand.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LEDGER_LOG_TAG=setup

main() {
	install_missing_packages
	[[ -x $PG_CONFIG ]] || die "$PG_CONFIG not found after installing packages"
	if is_root; then
		# Servers and suites run as this user when we are root.
		getent passwd postgres >/dev/null ||
			die "no 'postgres' OS user although postgresql-$PG_MAJOR is installed"
	fi
	log "building in $LEDGER_ROOT"
	ledger_build "$LEDGER_ROOT" || die "build failed (make in $LEDGER_ROOT)"
	log "installing into $("$PG_CONFIG" --pkglibdir)"
	ledger_install "$LEDGER_ROOT" || die "make install failed"
	log "done"
}

main "$@"
