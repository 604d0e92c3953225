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
import re
import struct
import sys

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
MAX_PATH = 63        # a Merkle path: trees hold fewer than 2^63 leaves
MAX_CONSISTENCY = 64


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
    if not isinstance(value, str) or not re.fullmatch("[0-9a-f]{64}", value):
        raise Failure(f"{what}: not 64 lower-case hex digits")
    return bytes.fromhex(value)


def num(obj, key, lo, hi):
    """An integer member (not a boolean, not a float) within [lo, hi]."""
    v = obj.get(key) if isinstance(obj, dict) else None
    if type(v) is not int or not lo <= v <= hi:
        raise Failure(f"{key}: not an integer from {lo} to {hi}")
    return v


def unique_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise Failure("a JSON object repeats a key")
    return dict(pairs)


def load_json(arg):
    if os.path.exists(arg):
        with open(arg) as f:
            return json.load(f, object_pairs_hook=unique_keys)
    return json.loads(arg, object_pairs_hook=unique_keys)


def digest_of(d):
    if num(d, "version", 1, 1) != 1:
        raise Failure("only version 1 digests are known")
    return num(d, "block", 0, INT64_MAX - 1), unhex(d.get("hash"), "digest hash"), \
        unhex(d.get("root"), "digest root")


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
            rec = json.loads(line, object_pairs_hook=unique_keys)
            kind = rec.get("type")
            if kind == "header":
                if lineno != 1:
                    raise Failure(f"line {lineno}: the header must be the first line, and the only one")
                header = rec
            elif kind == "block":
                blocks.append(rec)
            elif kind == "transaction":
                txns[rec["seq"]] = rec
            elif kind == "revision":
                revs.setdefault(rec["seq"], []).append(rec)
    if not blocks:
        raise Failure("the export holds no blocks")
    tree = Tree(num(header, "from_block", 0, INT64_MAX), [unhex(p, "tree peak") for p in header["tree"]])

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
    if (last, previous, tree.root()) != digest_of(digest):
        raise Failure(f"the export ends at block {last}, which does not match the digest (block {digest['block']})")
    return f"{nrev} revisions in {len(blocks)} blocks lead to the digest of block {last}"


def fold(leaf, path):
    if not isinstance(path, list) or len(path) > MAX_PATH:
        raise Failure("a Merkle path is not a list of at most 63 steps")
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
    if not 1 <= m <= n:
        raise Failure("the old digest is newer than the new one")
    if len(path) > MAX_CONSISTENCY:
        raise Failure("the consistency path is too long")
    if m == n:
        if path or old_root != new_root:
            raise Failure("two digests of one block differ")
        return
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
    block, dhash, droot = digest_of(digest)
    if num(proof, "version", 1, 1) != 1:
        raise Failure("only version 1 proofs are known")
    if proof.get("kind") == "consistency":
        oblock, ohash, oroot = digest_of(proof["old"])
        if oblock == block and ohash != dhash:
            raise Failure("two digests of one block differ")
        if not isinstance(proof["path"], list):
            raise Failure("the consistency path is not a list")
        check_consistency(oblock + 1, block + 1, oroot, droot,
                          [unhex(h, "path") for h in proof["path"]])
        return f"block {oblock} extends to block {block}"
    if proof.get("kind") != "revision":
        raise Failure("the kind is neither revision nor consistency")
    r, t, b, tree = proof["revision"], proof["transaction"], proof["block"], proof["tree"]
    op = r["operation"]
    if op not in ("I", "U", "D"):
        raise Failure("the operation is not I, U or D")
    if (op == "D") != (r["data_hash"] is None):
        raise Failure("a deletion, and only a deletion, has a null data hash")
    data_hash = bytes(32) if op == "D" else unhex(r["data_hash"], "data hash")
    rh = revision_hash(num(r, "table_id", 1, INT64_MAX), num(r, "doc_id", 0, INT64_MAX),
                       num(r, "version", 0, INT32_MAX), op, data_hash)
    root = fold(H(b"\x00" + rh), t["path"])
    eh = entry_hash(num(t, "seq", 1, INT64_MAX), num(t, "committed_at", -INT64_MAX - 1, INT64_MAX),
                    num(t, "revision_count", 1, INT32_MAX), root)
    broot = fold(H(b"\x00" + eh), b["path"])
    number = num(b, "number", 1, INT64_MAX)
    h = block_hash(unhex(b["previous_hash"], "previous hash"), number, broot)
    size = block + 1
    if num(tree, "size", 1, INT64_MAX) != size or number >= size:
        raise Failure("the proof's tree is not the digest's")
    if [s.get("side") for s in tree["path"]] != sides(number, size):
        raise Failure("the tree path does not lead up from the block's place")
    if fold(H(b"\x00" + h), tree["path"]) != droot:
        raise Failure("the proof does not lead to the digest")
    return f"document {r['doc_id']} version {r['version']} is in the history of block {block}"


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        digest = load_json(argv[2])
        print("ok: " + check_export(argv[1], digest))
        for arg in argv[3:]:
            print("ok: " + check_proof(load_json(arg), digest))
    except (Failure, KeyError, TypeError, ValueError, AttributeError) as e:
        print(f"FAILED: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
