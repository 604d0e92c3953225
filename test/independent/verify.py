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


def node(left, right):
    return H(b"\x01" + left + right)


class Tree:
    """The tree of blocks, held as its peaks (largest first)."""

    def __init__(self, size, peaks):
        if len(peaks) != bin(size).count("1"):
            raise Failure("the export header's tree does not have one peak per one bit of from_block")
        self.size, self.peaks = size, list(peaks)

    def append(self, block_hash):
        h, s = H(b"\x00" + block_hash), self.size
        while s & 1:
            h = node(self.peaks.pop(), h)
            s >>= 1
        self.peaks.append(h)
        self.size += 1

    def root(self):
        if not self.peaks:
            return H(b"")
        r = self.peaks[-1]
        for p in reversed(self.peaks[:-1]):
            r = node(p, r)
        return r


def check_export(path, digest):
    blocks, txns, revs, header = [], {}, {}, {"from_block": 0, "tree": []}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            kind = rec.get("type")
            if kind == "header":
                header = rec
            elif kind == "block":
                blocks.append(rec)
            elif kind == "transaction":
                txns[rec["seq"]] = rec
            elif kind == "revision":
                revs.setdefault(rec["seq"], []).append(rec)
    if not blocks:
        raise Failure("the export holds no blocks")
    tree = Tree(header["from_block"], [unhex(p, "tree peak") for p in header["tree"]])

    nrev = 0
    previous = unhex(blocks[0]["previous_hash"], "first block's previous hash")
    for i, b in enumerate(blocks):
        number = b["number"]
        if number != tree.size:
            raise Failure(f"block {number}: block {tree.size} should come next")
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
        tree.append(previous)
    last = blocks[-1]["number"]
    if last != digest["block"] or previous != unhex(digest["hash"], "digest hash") \
            or tree.root() != unhex(digest["root"], "digest root"):
        raise Failure(f"the export ends at block {last}, which does not match the digest (block {digest['block']})")
    return f"{nrev} revisions in {len(blocks)} blocks lead to the digest of block {last}"


def fold(leaf, path):
    h = leaf
    for step in path:
        sibling = unhex(step["hash"], "path step")
        if step["side"] == "left":
            h = node(sibling, h)
        elif step["side"] == "right":
            h = node(h, sibling)
        else:
            raise Failure("a path step's side is neither left nor right")
    return h


def sides(index, size):
    """The sides of the audit path of leaf index in a tree of size leaves, leaf first."""
    if size == 1:
        return []
    k = 1
    while k * 2 < size:
        k *= 2
    if index < k:
        return sides(index, k) + ["right"]
    return sides(index - k, size - k) + ["left"]


def check_consistency(m, n, old_root, new_root, path):
    """RFC 9162, section 2.1.4.2, for trees of m and n leaves."""
    if m == n:
        if path or old_root != new_root:
            raise Failure("two digests of one block differ")
        return
    if m > n:
        raise Failure("the old digest is newer than the new one")
    if m & (m - 1) == 0:
        path = [old_root] + path
    if not path:
        raise Failure("the consistency path is empty")
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Failure("the consistency path is too long")
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise Failure("the consistency proof does not lead from the old digest to the digest")


def check_proof(proof, digest):
    if proof.get("kind") == "consistency":
        old = proof["old"]
        if old["block"] == digest["block"] and old["hash"] != digest["hash"]:
            raise Failure("two digests of one block differ")
        check_consistency(old["block"] + 1, digest["block"] + 1, unhex(old["root"], "old root"),
                          unhex(digest["root"], "digest root"), [unhex(h, "path") for h in proof["path"]])
        return f"block {old['block']} extends to block {digest['block']}"
    r, t, b, tree = proof["revision"], proof["transaction"], proof["block"], proof["tree"]
    data_hash = bytes(32) if r["data_hash"] is None else unhex(r["data_hash"], "data hash")
    rh = revision_hash(r["table_id"], r["doc_id"], r["version"], r["operation"], data_hash)
    root = fold(H(b"\x00" + rh), t["path"])
    eh = entry_hash(t["seq"], t["committed_at"], t["revision_count"], root)
    broot = fold(H(b"\x00" + eh), b["path"])
    h = block_hash(unhex(b["previous_hash"], "previous hash"), b["number"], broot)
    size = digest["block"] + 1
    if tree["size"] != size or not 0 <= b["number"] < size:
        raise Failure("the proof's tree is not the digest's")
    if [s["side"] for s in tree["path"]] != sides(b["number"], size):
        raise Failure("the tree path does not lead up from the block's place")
    if fold(H(b"\x00" + h), tree["path"]) != unhex(digest["root"], "digest root"):
        raise Failure("the proof does not lead to the digest")
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
