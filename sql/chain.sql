--
-- chain: every committed transaction that wrote revisions gets exactly one
-- entry, and sealing chains the entries into blocks.  Every hash is
-- recomputed here in SQL, from docs/verification.md alone, and compared
-- with what the extension stored.
--
\set SHOW_CONTEXT never
CREATE SCHEMA chain;
SET search_path = chain, public;

-- RFC 6962 Merkle tree hash over leaf data (already 32-byte hashes).
CREATE FUNCTION mth(leaves bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  n int := coalesce(array_length(leaves, 1), 0);
  k int := 1;
BEGIN
  IF n = 0 THEN RETURN sha256(''::bytea); END IF;
  IF n = 1 THEN RETURN sha256('\x00'::bytea || leaves[1]); END IF;
  WHILE k * 2 < n LOOP k := k * 2; END LOOP;
  RETURN sha256('\x01'::bytea || mth(leaves[1:k]) || mth(leaves[k + 1:n]));
END $$;

CREATE FUNCTION tag(t text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT convert_to(t, 'UTF8') || '\x00'::bytea $$;

CREATE FUNCTION entry_hash(e ledger.transactions) RETURNS bytea
LANGUAGE sql AS $$
  SELECT sha256(tag('ledger.txn.v1') || int8send(e.seq)
                || int8send((extract(epoch FROM e.committed_at) * 1000000)::bigint)
                || int4send(e.revision_count) || e.merkle_root)
$$;

-- What is wrong with each transaction entry, if anything.
CREATE VIEW entry_check AS
  SELECT t.seq,
         CASE WHEN t.revision_count <> count(j.*) THEN 'wrong count'
              WHEN t.merkle_root <> mth(array_agg(j.revision_hash
                                  ORDER BY j.table_id, j.doc_id, j.version))
                THEN 'wrong root'
              ELSE 'ok' END AS status
  FROM ledger.transactions t LEFT JOIN ledger.journal j ON j.xid = t.xid
  GROUP BY t.seq, t.revision_count, t.merkle_root;

-- What is wrong with each block, if anything.
CREATE VIEW block_check AS
  SELECT b.block_number,
         CASE WHEN b.previous_hash <> coalesce(lag(b.block_hash) OVER w, '\x'::bytea || decode(repeat('00', 32), 'hex'))
                THEN 'broken link'
              WHEN b.block_hash <> sha256(tag('ledger.block.v1') || b.previous_hash
                                          || int8send(b.block_number) || b.merkle_root)
                THEN 'wrong hash'
              WHEN b.merkle_root <> (SELECT mth(coalesce(array_agg(entry_hash(t) ORDER BY t.seq), '{}'))
                                     FROM ledger.transactions t
                                     WHERE t.seq BETWEEN b.first_seq AND b.last_seq)
                THEN 'wrong root'
              WHEN b.entry_count <> (SELECT count(*) FROM ledger.transactions t
                                     WHERE t.seq BETWEEN b.first_seq AND b.last_seq)
                THEN 'wrong count'
              WHEN b.tree_root <> (SELECT mth(array_agg(p.block_hash ORDER BY p.block_number))
                                   FROM ledger.blocks p WHERE p.block_number <= b.block_number)
                THEN 'wrong tree root'
              -- Level l: the tree over the 2^l blocks ending here, when
              -- block_number + 1 is a multiple of 2^l.
              WHEN b.tree_nodes <> (SELECT string_agg(mth(ARRAY(
                                             SELECT p.block_hash FROM ledger.blocks p
                                             WHERE p.block_number BETWEEN b.block_number + 1 - (1::bigint << l)
                                                                      AND b.block_number
                                             ORDER BY p.block_number)), ''::bytea ORDER BY l)
                                    FROM generate_series(0, 62) l
                                    WHERE (b.block_number + 1) % (1::bigint << l) = 0)
                THEN 'wrong tree nodes'
              ELSE 'ok' END AS status
  FROM ledger.blocks b
  WINDOW w AS (ORDER BY b.block_number);

-- Block 0 exists from CREATE EXTENSION on and covers nothing.
SELECT block_number, first_seq, last_seq, entry_count,
       merkle_root = sha256(''::bytea) AS empty_root,
       previous_hash = decode(repeat('00', 32), 'hex') AS zero_link
FROM ledger.blocks WHERE block_number = 0;

CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
CREATE TABLE other (id int, note text) USING ledger;

-- The baseline, so that only this test's entries are counted.
SELECT coalesce(max(seq), 0) AS seq0 FROM ledger.transactions \gset

INSERT INTO acct VALUES (1, 'ann', 100), (2, 'bob', 50);
BEGIN;
INSERT INTO acct VALUES (3, 'cyd', 10);
SAVEPOINT s1;
INSERT INTO acct VALUES (4, 'dan', 1);
UPDATE acct SET balance = 0 WHERE id = 1;
ROLLBACK TO s1;
SAVEPOINT s2;
INSERT INTO other VALUES (1, 'kept');
RELEASE s2;
SAVEPOINT s3;
SAVEPOINT s4;
DELETE FROM acct WHERE id = 2;
RELEASE s4;
ROLLBACK TO s3;
UPDATE acct SET balance = balance + 1 WHERE id = 3;
COMMIT;
BEGIN;
INSERT INTO acct VALUES (5, 'eve', 5);
ROLLBACK;
-- A transaction that writes nothing to a ledger table has no entry.
BEGIN;
SELECT count(*) FROM acct;
COMMIT;
DELETE FROM acct WHERE id = 1;

-- Three entries: 2 revisions, 3 (the rolled-back savepoints left none),
-- and the tombstone.  Numbers only grow.
SELECT seq - :seq0 > 0 AS after_baseline, revision_count, status
FROM ledger.transactions JOIN entry_check USING (seq)
WHERE seq > :seq0 ORDER BY seq;
SELECT count(*) AS aborted_revisions
FROM ledger.journal j WHERE NOT EXISTS
  (SELECT FROM ledger.transactions t WHERE t.xid = j.xid);

-- ledger_digest() seals at once: its block covers every entry so far.
SELECT digest, block_number FROM ledger_digest() \gset
SELECT :block_number >= 1 AS sealed,
       (:'digest'::jsonb) ->> 'hash' = encode(block_hash, 'hex') AS names_block,
       (:'digest'::jsonb) ->> 'block' = :'block_number' AS names_number,
       (:'digest'::jsonb) ->> 'root' = encode(tree_root, 'hex') AS names_root,
       (:'digest'::jsonb) ->> 'version' AS digest_version
FROM ledger.blocks WHERE block_number = :block_number;
SELECT max(last_seq) = (SELECT max(seq) FROM ledger.transactions) AS all_sealed
FROM ledger.blocks;
SELECT DISTINCT status FROM block_check;
-- Entries are sealed once each: block ranges never overlap.
SELECT count(*) AS overlaps FROM ledger.blocks a JOIN ledger.blocks b
  ON a.block_number < b.block_number AND a.last_seq >= b.first_seq AND b.entry_count > 0;

-- Sealing again with nothing new adds no block.
SELECT (ledger_digest()).block_number = (SELECT max(block_number) FROM ledger.blocks) AS same_block;

-- A read-only transaction gets the newest sealed block, and seals nothing.
INSERT INTO other VALUES (2, 'unsealed');
BEGIN READ ONLY;
SELECT (ledger_digest()).block_number = (SELECT max(block_number) FROM ledger.blocks) AS newest_only;
COMMIT;

-- Everything written so far verifies, at both levels.
SELECT revisions > 0 AS has_revisions, blocks > 1 AS has_blocks,
       unsealed_transactions, current_rows IS NULL AS no_rows_at_chain_level
FROM ledger_verify('chain');
SELECT revisions = (SELECT count(*) FROM ledger.journal) AS every_revision,
       current_rows > 0 AS has_rows
FROM ledger_verify('full');
SELECT * FROM ledger_verify('sideways');
-- In parallel, with the journal left to the workers (or to the backend,
-- when no worker is free), level chain counts the same.
CREATE TEMP TABLE serial_chain AS
    SELECT revisions, transactions, blocks, unsealed_transactions FROM ledger_verify('chain');
BEGIN;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_maintenance_workers = 2;
SET LOCAL parallel_leader_participation = off;
SELECT (SELECT row(revisions, transactions, blocks, unsealed_transactions) FROM ledger_verify('chain'))
       = (SELECT row(s.*) FROM serial_chain s) AS parallel_same;
-- Planned, but no worker slot free: the backend reads the journal alone.
SET LOCAL max_parallel_workers = 0;
SET LOCAL parallel_leader_participation = on;
SELECT (SELECT row(revisions, transactions, blocks, unsealed_transactions) FROM ledger_verify('chain'))
       = (SELECT row(s.*) FROM serial_chain s) AS no_worker_same;
COMMIT;

-- A database whose extension objects predate the chain (an earlier
-- development build) refuses ledger writes at commit, plainly; simulated
-- here by removing a chain table in a transaction that then fails.
BEGIN;
ALTER EXTENSION ledger DROP TABLE ledger.transactions;
SET client_min_messages = warning;
DROP TABLE ledger.transactions CASCADE;
RESET client_min_messages;
INSERT INTO other VALUES (3, 'no chain');
COMMIT;
SELECT count(*) AS nothing_written FROM other WHERE id = 3;
SELECT to_regclass('ledger.transactions') IS NOT NULL AS chain_table_back;
-- Nor does one whose blocks predate the tree of blocks: sealing and
-- verifying refuse rather than read rows of another shape.
BEGIN;
SET client_min_messages = warning;
ALTER TABLE ledger.blocks DROP COLUMN tree_root CASCADE, DROP COLUMN tree_nodes CASCADE;
RESET client_min_messages;
SAVEPOINT s;
SELECT ledger_digest();
ROLLBACK TO s;
SELECT * FROM ledger_verify('chain');
ROLLBACK;
SELECT revisions > 0 AS blocks_back FROM ledger_verify('chain');
-- Nor one whose entries predate stored subtrees: a write would form an
-- entry of six columns for a table of five, and a proof reads them.
BEGIN;
ALTER TABLE ledger.transactions DROP COLUMN subtrees;
SAVEPOINT s;
SELECT ledger_proof('other', ledger_document_id('other', ctid), 0,
       jsonb_build_object('version', 1, 'block', 1, 'hash', repeat('0', 64), 'root', repeat('0', 64)))
  FROM other LIMIT 1;
ROLLBACK TO s;
INSERT INTO other VALUES (4, 'no subtrees');
COMMIT;
SELECT count(*) AS nothing_written FROM other WHERE id = 4;

-- The chain tables are written by the extension only.
INSERT INTO ledger.blocks SELECT * FROM ledger.blocks WHERE block_number = 0;
DELETE FROM ledger.transactions;
UPDATE ledger.blocks SET entry_count = 0;

RESET search_path;
SELECT ledger_set_deletion_protection('chain.acct', false);
SELECT ledger_set_deletion_protection('chain.other', false);
DROP SCHEMA chain CASCADE;
