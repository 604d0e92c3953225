--
-- history: ledger_history() returns every revision of a table, oldest
-- first, with the revision opened as a row of the table (or as jsonb).
--
\set SHOW_CONTEXT never
CREATE SCHEMA history;
SET search_path = history, public;

CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric, memo text) USING ledger;
INSERT INTO acct VALUES (1, 'ann', 100, 'x'), (2, 'bob', 50, 'y');
UPDATE acct SET balance = balance - 10 WHERE id = 1;
BEGIN;
UPDATE acct SET balance = 0 WHERE id = 2;
SAVEPOINT s;
UPDATE acct SET balance = -1 WHERE id = 2;
ROLLBACK TO s;
COMMIT;
-- Columns added later read as their default in older revisions; dropped
-- columns are gone from every revision.
ALTER TABLE acct ADD COLUMN tier text DEFAULT 'basic';
ALTER TABLE acct DROP COLUMN memo;
UPDATE acct SET tier = 'gold' WHERE id = 2;
DELETE FROM acct WHERE id = 1;
SELECT ledger_digest() IS NOT NULL AS sealed;

-- Typed: (h.data).column works.  Document ids are shown by rank.
SELECT dense_rank() OVER (ORDER BY doc_id) AS doc, version, operation,
       seq IS NOT NULL AS committed, block_number IS NOT NULL AS sealed,
       length(revision_hash) AS hash_len,
       (h.data).id, (h.data).owner, (h.data).balance, (h.data).tier
FROM ledger_history(NULL::acct) h
ORDER BY seq, doc_id, version;

-- Oldest first: commit order, never decreasing.
SELECT bool_and(seq >= prev) AS oldest_first
FROM (SELECT seq, lag(seq, 1, 0::bigint) OVER (ORDER BY seq) AS prev
      FROM ledger_history(NULL::acct)) s;

-- One document, by its id; the data as jsonb when the table is named.
SELECT version, operation, data
FROM ledger_history('acct', (SELECT ledger_document_id('acct', ctid) FROM acct WHERE id = 2));

-- A time window on the commit time.
SELECT count(*) AS in_window
FROM ledger_history('acct', NULL, now() - interval '1 day', now() + interval '1 day');
SELECT count(*) AS after_window
FROM ledger_history('acct', NULL, now() + interval '1 day');

-- The current transaction's own revisions show, not yet committed.
BEGIN;
INSERT INTO acct VALUES (3, 'cyd', 1);
SELECT (h.data).owner, seq IS NULL AS not_committed
FROM ledger_history(NULL::acct) h WHERE (h.data).id = 3;
ROLLBACK;
SELECT count(*) AS rolled_back FROM ledger_history(NULL::acct) h WHERE (h.data).id = 3;

-- The history equals the journal, revision for revision.
SELECT count(*) = (SELECT count(*) FROM ledger.journal j JOIN ledger.tables t USING (table_id)
                   WHERE t.relid = 'acct'::regclass) AS every_revision
FROM ledger_history('acct');

-- Refusals.
CREATE TABLE plain (a int);
SELECT * FROM ledger_history('plain');
SELECT * FROM ledger_history(NULL::plain);
SELECT * FROM ledger_history(1);
SELECT * FROM ledger_history(NULL::text);
SELECT * FROM ledger_history('no_such_table');
CREATE ROLE history_reader;
SET ROLE history_reader;
SELECT * FROM ledger_history('history.acct');
RESET ROLE;
GRANT USAGE ON SCHEMA history TO history_reader;
GRANT SELECT ON acct TO history_reader;
-- SELECT alone is not enough: the payloads need the key grant too.
SET ROLE history_reader;
SELECT count(*) AS readable FROM ledger_history('history.acct');
RESET ROLE;
GRANT ledger_key_user TO history_reader;
SET ROLE history_reader;
SELECT count(*) AS readable FROM ledger_history('history.acct');
RESET ROLE;
REVOKE ledger_key_user FROM history_reader;
REVOKE ALL ON acct FROM history_reader;
REVOKE ALL ON SCHEMA history FROM history_reader;
DROP ROLE history_reader;

RESET search_path;
SELECT ledger_set_deletion_protection('history.acct', false);
DROP SCHEMA history CASCADE;
