--
-- events: schema changes and redactions are journaled as revisions of the
-- ledger catalog (table id 0), one per table per transaction, so they are
-- in the chain like any change of data.
--
\set SHOW_CONTEXT never
CREATE SCHEMA events;
SET search_path = events, public;

-- The catalog events of a table: version, operation, kinds, columns.
CREATE FUNCTION events_of(rel regclass)
RETURNS TABLE (version int, op "char", events jsonb, columns text, extra jsonb, hash_ok boolean)
LANGUAGE sql AS $$
  SELECT j.version, j.op, e -> 'events',
         (SELECT string_agg((c ->> 'name') || ' ' || (c ->> 'type'), ', ' ORDER BY (c ->> 'attnum')::int)
            FROM jsonb_array_elements(e -> 'columns') c),
         e - 'events' - 'columns' - 'table_id' - 'table',
         j.data_hash = sha256(j.payload) AND j.key_id IS NULL
  FROM ledger.journal j
  JOIN ledger.tables t ON t.table_id = j.doc_id,
  LATERAL (SELECT convert_from(j.payload, 'UTF8')::jsonb AS e) x
  WHERE j.table_id = 0 AND t.relid = rel
  ORDER BY j.version
$$;

CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
INSERT INTO acct VALUES (1, 'ann', 10), (2, 'bob', 20);
ALTER TABLE acct ADD COLUMN note text;
BEGIN;
ALTER TABLE acct ADD COLUMN tier int;
SAVEPOINT s;
ALTER TABLE acct RENAME COLUMN tier TO level;
ROLLBACK TO s;
COMMIT;
CREATE INDEX ON acct (owner);
SELECT ledger_set_deletion_protection('acct', false);
SELECT ledger_set_deletion_protection('acct', true);
UPDATE acct SET balance = 11 WHERE id = 1;
UPDATE acct SET balance = 12 WHERE id = 1;
SELECT * FROM events_of('acct');

-- An event is a revision: it is in its transaction's entry.
SELECT count(*) AS events_in_entries
FROM ledger.journal j JOIN ledger.transactions t ON t.xid = j.xid
JOIN ledger.tables lt ON lt.table_id = j.doc_id
WHERE j.table_id = 0 AND lt.relid = 'acct'::regclass;

-- Redaction needs the dedicated role.
SELECT ledger_document_id('acct', ctid) AS doc1 FROM acct WHERE id = 1 \gset
SELECT ledger_redact_revision('acct', :doc1, 0);
CREATE ROLE ledger_redactor NOLOGIN;
CREATE ROLE events_clerk NOLOGIN;
GRANT ledger_redactor TO events_clerk;
GRANT USAGE ON SCHEMA events TO events_clerk;
SET ROLE events_clerk;
SELECT ledger_redact_revision('acct', :doc1, 0);
RESET ROLE;
-- What cannot be redacted.
SELECT ledger_redact_revision('acct', :doc1, 0);
SELECT ledger_redact_revision('acct', :doc1, 2);
SELECT ledger_redact_revision('acct', :doc1, 7);
DELETE FROM acct WHERE id = 2;
SELECT doc_id AS doc2 FROM ledger_history('acct') WHERE operation = 'DELETE' \gset
SELECT ledger_redact_revision('acct', :doc2, 1);
SELECT ledger_redact_revision('plain_table_that_is_not_there', 1, 0);
CREATE TABLE plain (a int);
SELECT ledger_redact_revision('plain', 1, 0);
-- A redaction rolled back leaves the payload.
BEGIN;
SELECT ledger_redact_revision('acct', :doc2, 0);
ROLLBACK;

-- The payload is gone, its hashes stay, and the redaction is an event.
SELECT version, operation, data IS NULL AS no_data FROM ledger_history('acct', :doc1);
SELECT payload IS NULL AS payload_gone, data_hash IS NOT NULL AS data_hash_kept,
       revision_hash IS NOT NULL AS revision_hash_kept
FROM ledger.journal j JOIN ledger.tables t USING (table_id)
WHERE t.relid = 'acct'::regclass AND j.doc_id = :doc1 AND j.version = 0;
SELECT events, extra -> 'redacted' = jsonb_build_array(jsonb_build_object('doc_id', :doc1, 'version', 0))
       AS names_the_revision
FROM events_of('acct') ORDER BY version DESC LIMIT 1;

-- The chain holds: proofs of the redacted revision still check, and both
-- verification levels pass, counting the redaction.
SELECT digest AS d FROM ledger_digest() \gset
SELECT ledger_verify_proof(ledger_proof('acct', :doc1, 0, :'d'), :'d') AS redacted_revision_proves;
SELECT redacted_revisions FROM ledger_verify('full');
SELECT redacted_revisions IS NULL AS not_counted_at_chain_level FROM ledger_verify('chain');

-- DROP is the table's last event.
SELECT table_id AS tid FROM ledger.tables WHERE relid = 'acct'::regclass \gset
SELECT ledger_set_deletion_protection('acct', false);
DROP TABLE acct;
SELECT version, convert_from(payload, 'UTF8')::jsonb -> 'events' AS events
FROM ledger.journal WHERE table_id = 0 AND doc_id = :tid ORDER BY version DESC LIMIT 2;
SELECT revisions > 0 AS verifies_after_drop FROM ledger_verify('full');

REVOKE ALL ON SCHEMA events FROM events_clerk;
DROP ROLE events_clerk;
DROP ROLE ledger_redactor;
RESET search_path;
DROP SCHEMA events CASCADE;
