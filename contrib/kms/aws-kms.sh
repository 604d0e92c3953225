#!/bin/sh
# ledger command provider for AWS KMS, through the AWS CLI (v2).
#
#   SELECT ledger_create_provider('aws', 'command',
#       '{"command": "/usr/local/lib/ledger/aws-kms.sh", "timeout_ms": 15000}');
#   SELECT ledger_rotate_key('provider_key', 'alias/ledger', 'aws');
#
# The key is a key id, key ARN, alias name or alias ARN of a symmetric
# KMS key.  The server's OS user needs kms:Encrypt and kms:Decrypt on it,
# with credentials the AWS CLI finds (an instance role, AWS_PROFILE...).
# The node id and version are the KMS encryption context, so CloudTrail
# shows which root key each call was for.  The contract is in
# docs/key-management.md; this script is an example that was not run
# against AWS in ledger's own tests.
set -eu

op=$1
key=$2
context="ledger_node=${LEDGER_NODE_ID}.${LEDGER_NODE_VERSION},ledger_context=${LEDGER_CONTEXT}"
err=$(mktemp)
trap 'rm -f "$err"' EXIT

fail() {
	case $(cat "$err") in
	*DisabledException* | *KMSInvalidStateException*) code=2 ;;
	*NotFoundException*) code=3 ;;
	*AccessDenied*) code=4 ;;
	*InvalidCiphertextException* | *IncorrectKeyException*) code=5 ;;
	*) code=1 ;;
	esac
	head -n 1 "$err" >&2
	exit "$code"
}

case $op in
wrap)
	out=$(aws kms encrypt --key-id "$key" --plaintext fileb:///dev/stdin \
		--encryption-context "$context" --query CiphertextBlob --output text 2>"$err") || fail
	printf '%s' "$out" | base64 -d
	;;
unwrap)
	out=$(aws kms decrypt --key-id "$key" --ciphertext-blob fileb:///dev/stdin \
		--encryption-context "$context" --query Plaintext --output text 2>"$err") || fail
	printf '%s' "$out" | base64 -d
	;;
*)
	echo "unknown operation $op" >&2
	exit 1
	;;
esac
