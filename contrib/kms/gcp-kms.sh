#!/bin/sh
# ledger command provider for Google Cloud KMS, through gcloud.
#
#   SELECT ledger_create_provider('gcp', 'command',
#       '{"command": "/usr/local/lib/ledger/gcp-kms.sh", "timeout_ms": 15000}');
#   SELECT ledger_rotate_key('provider_key',
#       'projects/P/locations/L/keyRings/R/cryptoKeys/K', 'gcp');
#
# The key is the full resource name of a symmetric CryptoKey; the server's
# OS user needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it.  Cloud
# KMS keeps the key version inside its ciphertext, so a rotation of the
# CryptoKey needs no change here until the next provider key change
# re-wraps with the primary version.  The encryption context is the
# additional authenticated data.  The contract is in
# docs/key-management.md; this script is an example that was not run
# against Google Cloud in ledger's own tests.
set -eu

op=$1
key=$2
aad=$(mktemp)
err=$(mktemp)
trap 'rm -f "$aad" "$err"' EXIT
printf '%s' "$LEDGER_CONTEXT" >"$aad"

fail() {
	case $(cat "$err") in
	*"is not enabled"* | *DISABLED* | *DESTROYED*) code=2 ;;
	*NOT_FOUND*) code=3 ;;
	*PERMISSION_DENIED*) code=4 ;;
	*"Decryption failed"*) code=5 ;;
	*) code=1 ;;
	esac
	head -n 1 "$err" >&2
	exit "$code"
}

case $op in
wrap)
	gcloud kms encrypt --key "$key" --plaintext-file - --ciphertext-file - \
		--additional-authenticated-data-file "$aad" 2>"$err" || fail
	;;
unwrap)
	gcloud kms decrypt --key "$key" --ciphertext-file - --plaintext-file - \
		--additional-authenticated-data-file "$aad" 2>"$err" || fail
	;;
*)
	echo "unknown operation $op" >&2
	exit 1
	;;
esac
