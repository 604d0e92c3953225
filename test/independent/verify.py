#!/usr/bin/env python3
"""An auditor's check of a ledger export, written from docs/verification.md.

It shares no code with the extension: only Python's hashlib, json and
struct.  Usage:

    verify.py EXPORT.jsonl DIGEST_JSON [PROOF_JSON ...]

EXPORT.jsonl is the output of ledger_export(); DIGEST_JSON is a digest the
auditor kept (a file or the JSON text).  Every hash in the export is
recomputed, the chain must end at the digest, and every proof given must
lead to the digest.  Prints "ok: ..." and exits 0, or prints the first
failure and exits 1.
"""
import hashlib
import json
import os
import struct
import sys


def H(data):
    return hashlib.sha256(data).digest()


def tag(text):
    return text.encode("ascii") + b"\x00"


def mth(items):
    """RFC 6962 Merkle tree hash over 32-byte items."""
    n = len(items)
    if n == 0:
        return H(b"")
    if n == 1:
        return H(b"\x00" + items[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return H(b"\x01" + mth(items[:k]) + mth(items[k:]))


def revision_hash(table_id, doc_id, version, op, data_hash):
    return H(tag("ledger.revision.v1") + struct.pack(">qqi", table_id, doc_id, version)
             + op.encode("ascii") + data_hash)


def entry_hash(seq, committed_at, count, root):
    return H(tag("ledger.txn.v1") + struct.pack(">qqi", seq, committed_at, count) + root)


def block_hash(previous, number, root):
    return H(tag("ledger.block.v1") + previous + struct.pack(">q", number) + root)


class Failure(Exception):
    pass


def unhex(value, what):
    if not isinstance(value, str) or len(value) != 64:
        raise Failure(f"{what}: not a 64-digit hex hash")
    return bytes.fromhex(value)


def load_json(arg):
    if os.path.exists(arg):
        with open(arg) as f:
            return json.load(f)
    return json.loads(arg)


def check_export(path, digest):
    blocks, txns, revs = [], {}, {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            kind = rec.get("type")
            if kind == "block":
                blocks.append(rec)
            elif kind == "transaction":
                txns[rec["seq"]] = rec
            elif kind == "revision":
                revs.setdefault(rec["seq"], []).append(rec)
    if not blocks:
        raise Failure("the export holds no blocks")

    nrev = 0
    previous = unhex(blocks[0]["previous_hash"], "first block's previous hash")
    for i, b in enumerate(blocks):
        number = b["number"]
        if i > 0 and number != blocks[i - 1]["number"] + 1:
            raise Failure(f"block {number}: block {blocks[i - 1]['number'] + 1} should come next")
        if unhex(b["previous_hash"], f"block {number}") != previous:
            raise Failure(f"block {number}: previous hash is not the hash of the block before")
        entries = [t for s, t in sorted(txns.items()) if b["first_seq"] <= s <= b["last_seq"]] \
            if number > 0 else []
        if len(entries) != b["entry_count"]:
            raise Failure(f"block {number}: counts {b['entry_count']} transactions, export holds {len(entries)}")
        entry_hashes = []
        for t in entries:
            seq = t["seq"]
            leaves = []
            for r in sorted(revs.get(seq, []), key=lambda r: (r["table_id"], r["doc_id"], r["version"])):
                data_hash = bytes(32) if r["data_hash"] is None else unhex(r["data_hash"], "data hash")
                rh = revision_hash(r["table_id"], r["doc_id"], r["version"], r["operation"], data_hash)
                if rh != unhex(r["revision_hash"], "revision hash"):
                    raise Failure(f"table id {r['table_id']} document {r['doc_id']} version {r['version']}: "
                                  "revision hash does not match")
                leaves.append(rh)
                nrev += 1
            if len(leaves) != t["revision_count"]:
                raise Failure(f"transaction {seq}: counts {t['revision_count']} revisions, export holds {len(leaves)}")
            root = mth(leaves)
            if root != unhex(t["merkle_root"], "transaction root"):
                raise Failure(f"transaction {seq}: Merkle root does not match its revisions")
            entry_hashes.append(entry_hash(seq, t["committed_at"], t["revision_count"], root))
        root = mth(entry_hashes)
        if root != unhex(b["merkle_root"], "block root"):
            raise Failure(f"block {number}: Merkle root does not match its transactions")
        previous = block_hash(previous, number, root)
        if previous != unhex(b["block_hash"], "block hash"):
            raise Failure(f"block {number}: block hash does not match")
    last = blocks[-1]["number"]
    if last != digest["block"] or previous != unhex(digest["hash"], "digest hash"):
        raise Failure(f"the export ends at block {last}, which does not match the digest (block {digest['block']})")
    return f"{nrev} revisions in {len(blocks)} blocks lead to the digest of block {last}"


def fold(leaf, path):
    node = leaf
    for step in path:
        sibling = unhex(step["hash"], "path step")
        if step["side"] == "left":
            node = H(b"\x01" + sibling + node)
        elif step["side"] == "right":
            node = H(b"\x01" + node + sibling)
        else:
            raise Failure("a path step's side is neither left nor right")
    return node


def follow(number, h, chain, digest):
    for i, link in enumerate(chain):
        if link["number"] != number + 1 + i:
            raise Failure("the chain skips or repeats a block")
        h = block_hash(h, link["number"], unhex(link["merkle_root"], "chain root"))
    if number + len(chain) != digest["block"] or h != unhex(digest["hash"], "digest hash"):
        raise Failure("the proof does not lead to the digest")


def check_proof(proof, digest):
    if proof.get("kind") == "consistency":
        old = proof["old"]
        follow(old["block"], unhex(old["hash"], "old digest"), proof["chain"], digest)
        return f"block {old['block']} extends to block {digest['block']}"
    r, t, b = proof["revision"], proof["transaction"], proof["block"]
    data_hash = bytes(32) if r["data_hash"] is None else unhex(r["data_hash"], "data hash")
    rh = revision_hash(r["table_id"], r["doc_id"], r["version"], r["operation"], data_hash)
    root = fold(H(b"\x00" + rh), t["path"])
    eh = entry_hash(t["seq"], t["committed_at"], t["revision_count"], root)
    broot = fold(H(b"\x00" + eh), b["path"])
    h = block_hash(unhex(b["previous_hash"], "previous hash"), b["number"], broot)
    follow(b["number"], h, proof["chain"], digest)
    return f"document {r['doc_id']} version {r['version']} is in the history of block {digest['block']}"


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        digest = load_json(argv[2])
        print("ok: " + check_export(argv[1], digest))
        for arg in argv[3:]:
            print("ok: " + check_proof(load_json(arg), digest))
    except (Failure, KeyError, TypeError, ValueError) as e:
        print(f"FAILED: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
