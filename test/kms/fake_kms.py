#!/usr/bin/python3
"""A local stand-in for a KMS, for testing the command key provider.

It speaks the command provider's contract (docs/key-management.md):

    fake_kms.py wrap KEY      stdin: the 32-byte key, stdout: the ciphertext
    fake_kms.py unwrap KEY    stdin: the ciphertext, stdout: the key

with the encryption context in LEDGER_CONTEXT (hex), bound to the
ciphertext as AES-GCM AAD, and the documented exit codes: 2 the key is
disabled, 3 no such key, 5 the ciphertext does not open.  KEY is a key id
or "alias/NAME".

Like a KMS console it also manages its keys, for the tests to drive:

    fake_kms.py create ID | rotate ID | disable ID | enable ID
    fake_kms.py alias NAME ID
    fake_kms.py hang on|off     make wrap and unwrap hang (timeouts)
    fake_kms.py garble on|off   make unwrap print the wrong number of bytes

The state lives in the JSON file named by FAKE_KMS_STATE.  Every key
version keeps its material, so old ciphertexts still open after a rotate.
The ciphertext names its key id and version: b"FKMS1", the id's length,
the id, the version (4 bytes, big endian), a 12-byte nonce, then the
AES-GCM ciphertext and tag.
"""
import fcntl
import json
import os
import struct
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"FKMS1"


def state_path():
    path = os.environ.get("FAKE_KMS_STATE")
    if not path:
        fail(1, "FAKE_KMS_STATE is not set")
    return path


def fail(code, message):
    sys.stderr.write(message + "\n")
    sys.exit(code)


def load():
    try:
        with open(state_path()) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"keys": {}, "aliases": {}, "hang": False, "garble": False}


def save(state):
    tmp = state_path() + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, state_path())


def resolve(state, name):
    key_id = state["aliases"].get(name, name)
    if key_id not in state["keys"]:
        fail(3, "no such key: %s" % name)
    return key_id


def context():
    return bytes.fromhex(os.environ.get("LEDGER_CONTEXT", ""))


def wrap(state, name):
    key_id = resolve(state, name)
    key = state["keys"][key_id]
    if not key["enabled"]:
        fail(2, "key %s is disabled" % key_id)
    plain = sys.stdin.buffer.read()
    version = len(key["versions"])
    nonce = os.urandom(12)
    sealed = AESGCM(bytes.fromhex(key["versions"][-1])).encrypt(nonce, plain, context())
    ident = key_id.encode()
    sys.stdout.buffer.write(MAGIC + bytes([len(ident)]) + ident +
                            struct.pack(">I", version) + nonce + sealed)


def unwrap(state, name):
    blob = sys.stdin.buffer.read()
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 1:
        fail(5, "not a ciphertext of this KMS")
    n = blob[len(MAGIC)]
    rest = blob[len(MAGIC) + 1:]
    key_id, rest = rest[:n].decode(errors="replace"), rest[n:]
    if key_id not in state["keys"] or len(rest) < 4 + 12 + 16:
        fail(3, "no such key: %s" % key_id)
    key = state["keys"][key_id]
    if not key["enabled"]:
        fail(2, "key %s is disabled" % key_id)
    version = struct.unpack(">I", rest[:4])[0]
    if version < 1 or version > len(key["versions"]):
        fail(5, "key %s has no version %d" % (key_id, version))
    try:
        plain = AESGCM(bytes.fromhex(key["versions"][version - 1])).decrypt(
            rest[4:16], rest[16:], context())
    except Exception:
        fail(5, "the ciphertext does not open under key %s and this context" % key_id)
    if state["garble"]:
        plain = plain[:7]
    sys.stdout.buffer.write(plain)


def admin(state, op, args):
    if op == "create":
        state["keys"][args[0]] = {"enabled": True, "versions": [os.urandom(32).hex()]}
    elif op == "rotate":
        state["keys"][resolve(state, args[0])]["versions"].append(os.urandom(32).hex())
    elif op in ("disable", "enable"):
        state["keys"][resolve(state, args[0])]["enabled"] = (op == "enable")
    elif op == "alias":
        state["aliases"][args[0]] = resolve(state, args[1])
    elif op in ("hang", "garble"):
        state[op] = (args[0] == "on")
    else:
        fail(1, "unknown operation %s" % op)
    save(state)


def main():
    if len(sys.argv) < 3:
        fail(1, "usage: fake_kms.py OPERATION ARG...")
    op, args = sys.argv[1], sys.argv[2:]
    with open(state_path() + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = load()
    if op in ("wrap", "unwrap") and state["hang"]:
        time.sleep(3600)
    if op == "wrap":
        wrap(state, args[0])
    elif op == "unwrap":
        unwrap(state, args[0])
    else:
        with open(state_path() + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            admin(load(), op, args)


if __name__ == "__main__":
    main()
