#!/bin/sh
# ledger command provider for HashiCorp Vault's Transit secrets engine.
#
#   SELECT ledger_create_provider('vault', 'command',
#       '{"command": "/usr/local/lib/ledger/vault-transit.sh", "timeout_ms": 15000}');
#   SELECT ledger_rotate_key('provider_key', 'ledger-root', 'vault');
#
# The key is the name of an aes256-gcm96 Transit key (mounted at
# transit/, or at VAULT_TRANSIT_MOUNT).  The server's OS user needs
# VAULT_ADDR and a token (VAULT_TOKEN, or the token helper) whose policy
# allows update on transit/encrypt/<key> and transit/decrypt/<key>.  The
# encryption context is the associated data.  The key travels on stdin
# ("plaintext=-"), never on a command line.  The contract is in
# docs/key-management.md; this script is an example that was not run
# against Vault in ledger's own tests.
set -eu

op=$1
key=$2
mount=${VAULT_TRANSIT_MOUNT:-transit}
ad=$(printf '%s' "$LEDGER_CONTEXT" | base64 -w0)
err=$(mktemp)
trap 'rm -f "$err"' EXIT

fail() {
	case $(cat "$err") in
	*"permission denied"*) code=4 ;;
	*"not found"* | *"no existing key"*) code=3 ;;
	*"message authentication failed"* | *"invalid ciphertext"*) code=5 ;;
	*"min_decryption_version"* | *disabled*) code=2 ;;
	*) code=1 ;;
	esac
	head -n 1 "$err" >&2
	exit "$code"
}

case $op in
wrap)
	# Transit takes the plaintext in base64: encode on the way in.
	base64 -w0 | vault write -field=ciphertext "$mount/encrypt/$key" \
		plaintext=- associated_data="$ad" 2>"$err" || fail
	;;
unwrap)
	out=$(vault write -field=plaintext "$mount/decrypt/$key" \
		ciphertext=- associated_data="$ad" 2>"$err") || fail
	printf '%s' "$out" | base64 -d
	;;
*)
	echo "unknown operation $op" >&2
	exit 1
	;;
esac
