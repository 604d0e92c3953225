--
-- refusals: everything that would rewrite, lose or expose ledger rows is
-- refused with an error, its SQLSTATE, a message and a hint, and leaves the
-- table and its journal as they were.  What is allowed next to each
-- refusal still works.
--
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA refusals;
SET search_path = refusals, public;

-- For refusals whose wording is not settled: whether stmt is refused, and
-- with which SQLSTATE.
CREATE FUNCTION outcome(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
  RETURN 'refused';
END $$;
-- For refusals that name whichever ledger table they find first: the
-- error with that name left out.
CREATE FUNCTION refusal(stmt text) RETURNS TABLE (code text, message text, hint text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  code := 'accepted';
  RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
  message := regexp_replace(message, ': .* in publication ', ': <a ledger table> in publication ');
  message := regexp_replace(message, 'ledger table .* has deletion', 'ledger table <a ledger table> has deletion');
  RETURN NEXT;
END $$;
-- Revisions in the journal for one table.
CREATE FUNCTION revisions(rel regclass) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM ledger.journal j JOIN ledger.tables t USING (table_id)
  WHERE t.relid = rel AND t.dropped_at IS NULL
$$;

CREATE TABLE t (id int PRIMARY KEY, v varchar(10), n int) USING ledger;
INSERT INTO t VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 30);
UPDATE t SET n = n + 1 WHERE id = 2;
CREATE TABLE h (id int PRIMARY KEY, v text);
INSERT INTO h VALUES (1, 'heap');
SELECT revisions('t');

--
-- TRUNCATE: a ledger never loses history.
--
TRUNCATE t;
TRUNCATE ONLY t RESTART IDENTITY;
-- together with a heap table: nothing is truncated
TRUNCATE h, t;
SELECT count(*) AS heap_rows FROM h;
-- a table created in this very transaction
BEGIN;
CREATE TABLE t_new (id int) USING ledger;
INSERT INTO t_new VALUES (1);
TRUNCATE t_new;
ROLLBACK;
-- ... or in an outer (sub)transaction of it
BEGIN;
CREATE TABLE t_sub (id int) USING ledger;
INSERT INTO t_sub VALUES (1);
SAVEPOINT s;
TRUNCATE t_sub;
ROLLBACK;
-- a partitioned table with ledger partitions
CREATE TABLE parted (k int, v text) PARTITION BY LIST (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1) USING ledger;
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES IN (2);
INSERT INTO parted VALUES (1, 'ledger'), (2, 'heap');
TRUNCATE parted;
TRUNCATE parted_2;
SELECT * FROM parted ORDER BY k;
-- CASCADE through a foreign key from a ledger table
CREATE TABLE fk_parent (id int PRIMARY KEY);
CREATE TABLE fk_child (id int, pid int REFERENCES fk_parent) USING ledger;
INSERT INTO fk_parent VALUES (1);
INSERT INTO fk_child VALUES (1, 1);
TRUNCATE fk_parent;
TRUNCATE fk_parent CASCADE;
SELECT count(*) FROM fk_parent;
SELECT count(*) FROM fk_child;

--
-- ALTER TABLE forms that rewrite the table would insert every row anew:
-- refused.  The others work.  (VACUUM FULL and CLUSTER copy the sealed rows
-- as they are; see scans.)
--
ALTER TABLE t ALTER COLUMN n TYPE bigint;
ALTER TABLE t ALTER COLUMN v TYPE varchar(3);
ALTER TABLE t ALTER COLUMN n TYPE text USING n::text;
ALTER TABLE t ADD COLUMN r float8 DEFAULT random();
ALTER TABLE t ADD COLUMN s serial;
ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS IDENTITY;
ALTER TABLE t ADD COLUMN st int GENERATED ALWAYS AS (n * 2) STORED;
ALTER TABLE t SET UNLOGGED;
-- ... and within a larger ALTER TABLE, the whole statement fails
ALTER TABLE t ADD COLUMN fine int, ALTER COLUMN n TYPE bigint;
-- allowed: no rewrite; rows written before read as they were
ALTER TABLE t ALTER COLUMN v TYPE varchar(20);
ALTER TABLE t ALTER COLUMN v TYPE text;
ALTER TABLE t ADD COLUMN d int DEFAULT 42;
ALTER TABLE t SET LOGGED;
SELECT * FROM t ORDER BY id;

--
-- Changing the access method, either way.
--
ALTER TABLE t SET ACCESS METHOD heap;
ALTER TABLE t SET ACCESS METHOD ledger;
ALTER TABLE h SET ACCESS METHOD ledger;
SELECT count(*) FROM h;
-- UNLOGGED ledger tables and ledger materialized views
CREATE UNLOGGED TABLE u (id int) USING ledger;
CREATE MATERIALIZED VIEW mv USING ledger AS SELECT * FROM t;
SET default_table_access_method = ledger;
CREATE MATERIALIZED VIEW mv AS SELECT * FROM t;
RESET default_table_access_method;
-- a heap materialized view over a ledger table is fine (and holds its rows in the clear)
CREATE MATERIALIZED VIEW mv USING heap AS SELECT id, v FROM t;
REFRESH MATERIALIZED VIEW mv;
SELECT * FROM mv ORDER BY id;
DROP MATERIALIZED VIEW mv;
-- CREATE TABLE AS into a ledger table journals every row
CREATE TABLE t_copy USING ledger AS SELECT * FROM t;
SELECT revisions('t_copy');

-- After all these refusals the table and its journal are unchanged.
SELECT * FROM t ORDER BY id;
SELECT revisions('t');

--
-- PREPARE TRANSACTION after a write to a ledger table.
--
SHOW max_prepared_transactions;
BEGIN;
INSERT INTO t (id, v) VALUES (10, 'prepared?');
PREPARE TRANSACTION 'ledger_refusals_insert';
BEGIN;
UPDATE t SET v = 'prepared?' WHERE id = 1;
PREPARE TRANSACTION 'ledger_refusals_update';
BEGIN;
DELETE FROM t WHERE id = 3;
PREPARE TRANSACTION 'ledger_refusals_delete';
-- a write that was rolled back to a savepoint still counts
BEGIN;
SAVEPOINT s;
INSERT INTO t (id, v) VALUES (11, 'undone');
ROLLBACK TO SAVEPOINT s;
PREPARE TRANSACTION 'ledger_refusals_savepoint';
-- a schema change of a ledger table is recorded at commit, too
BEGIN;
ALTER TABLE t ADD COLUMN prepared_col int;
PREPARE TRANSACTION 'ledger_refusals_ddl';
SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'ledger_refusals%';
SELECT * FROM t ORDER BY id;
SELECT revisions('t');
-- reading a ledger table, or writing only heap, may be prepared
BEGIN;
SELECT count(*) FROM t;
INSERT INTO h VALUES (2, 'prepared');
PREPARE TRANSACTION 'ledger_refusals_read';
COMMIT PREPARED 'ledger_refusals_read';
SELECT * FROM h ORDER BY id;

--
-- DROP of a table under deletion protection (on by default).
--
SHOW ledger.default_deletion_protection;
SELECT deletion_protection FROM ledger.tables WHERE relid = 't'::regclass AND dropped_at IS NULL;
DROP TABLE t;
DROP TABLE IF EXISTS t;
DROP TABLE h, t;
SELECT count(*) AS heap_still_there FROM h;
DROP TABLE parted;
CREATE SCHEMA doomed;
CREATE TABLE doomed.d1 (id int) USING ledger;
CREATE TABLE doomed.d2 (id int);
DROP SCHEMA doomed CASCADE;
SELECT count(*) AS tables_left FROM pg_tables WHERE schemaname = 'doomed';
-- DROP OWNED
CREATE ROLE regress_ledger_owner;
CREATE ROLE regress_ledger_other;
GRANT CREATE, USAGE ON SCHEMA refusals TO regress_ledger_owner;
GRANT USAGE ON SCHEMA refusals TO regress_ledger_other;
SET ROLE regress_ledger_owner;
CREATE TABLE owned (id int) USING ledger;
RESET ROLE;
DROP OWNED BY regress_ledger_owner;
-- DROP EXTENSION (names whichever protected table it finds first)
SELECT * FROM refusal('DROP EXTENSION ledger');
-- only the owner may turn protection off
SET ROLE regress_ledger_other;
SELECT ledger_set_deletion_protection('refusals.owned', false);
RESET ROLE;
SET ROLE regress_ledger_owner;
SELECT ledger_set_deletion_protection('refusals.owned', false);
DROP TABLE owned;
RESET ROLE;
-- turning it off is transactional
BEGIN;
SELECT ledger_set_deletion_protection('t', false);
ROLLBACK;
DROP TABLE t;
-- turned off, the table can be dropped; its revisions stay in the journal
SELECT table_id AS t_table_id FROM ledger.tables WHERE relid = 't'::regclass AND dropped_at IS NULL \gset
SELECT ledger_set_deletion_protection('t', false);
SELECT deletion_protection FROM ledger.tables WHERE table_id = :t_table_id;
DROP TABLE t CASCADE;
SELECT dropped_at IS NOT NULL AS dropped, deletion_protection FROM ledger.tables WHERE table_id = :t_table_id;
SELECT count(*) AS revisions_kept FROM ledger.journal WHERE table_id = :t_table_id;
-- tables created while the default is off can be dropped at once
SET ledger.default_deletion_protection = off;
CREATE TABLE unprotected (id int) USING ledger;
INSERT INTO unprotected VALUES (1);
DROP TABLE unprotected;
RESET ledger.default_deletion_protection;
-- temporary ledger tables go with the session anyway
CREATE TEMP TABLE tmp (id int) USING ledger;
INSERT INTO tmp VALUES (1);
DROP TABLE tmp;
-- ledger_set_deletion_protection wants a ledger table
SELECT ledger_set_deletion_protection('h', false);

--
-- Publications: logical replication would send sealed columns as NULL.
--
CREATE TABLE pub_t (id int PRIMARY KEY, v text) USING ledger;
CREATE TABLE pub_h (id int PRIMARY KEY, v text);
CREATE SCHEMA pub_s;
CREATE TABLE pub_s.only_ledger (id int) USING ledger;
CREATE TABLE pub_s.some_heap (id int);
SET client_min_messages = error;   -- no "wal_level is insufficient" warnings
CREATE PUBLICATION p_t FOR TABLE pub_t;
CREATE PUBLICATION p_mixed FOR TABLE pub_h, pub_t;
CREATE PUBLICATION p_schema FOR TABLES IN SCHEMA pub_s;
-- FOR ALL TABLES names whichever ledger table it finds first
SELECT * FROM refusal('CREATE PUBLICATION p_all FOR ALL TABLES');
-- a heap table may be published, but no ledger table added later
CREATE PUBLICATION p_h FOR TABLE pub_h;
ALTER PUBLICATION p_h ADD TABLE pub_t;
ALTER PUBLICATION p_h SET TABLE pub_t;
ALTER PUBLICATION p_h ADD TABLES IN SCHEMA pub_s;
-- a published schema takes no new ledger table, whichever way it comes
CREATE SCHEMA pub_empty;
CREATE PUBLICATION p_empty FOR TABLES IN SCHEMA pub_empty;
CREATE TABLE pub_empty.new_ledger (id int) USING ledger;
CREATE TABLE pub_empty.ctas USING ledger AS SELECT 1 AS one;
ALTER TABLE pub_t SET SCHEMA pub_empty;
CREATE TABLE pub_empty.new_heap (id int);
-- nor a partition of a published partitioned table
CREATE TABLE pub_parted (k int) PARTITION BY LIST (k);
CREATE PUBLICATION p_parted FOR TABLE pub_parted;
CREATE TABLE pub_parted_1 PARTITION OF pub_parted FOR VALUES IN (1) USING ledger;
CREATE TABLE pub_parted_2 (k int) USING ledger;
ALTER TABLE pub_parted ATTACH PARTITION pub_parted_2 FOR VALUES IN (2);
-- ... also when changes are published through the partitioned root
CREATE TABLE pub_root (k int) PARTITION BY LIST (k);
CREATE TABLE pub_root_1 PARTITION OF pub_root FOR VALUES IN (1) USING ledger;
SELECT outcome($$CREATE PUBLICATION p_root FOR TABLE pub_root WITH (publish_via_partition_root = true)$$);
-- the journal may be published: its sealed revisions are the change stream
CREATE PUBLICATION p_journal FOR TABLE ledger.journal;
RESET client_min_messages;
DROP PUBLICATION IF EXISTS p_root;
SELECT pubname FROM pg_publication WHERE pubname LIKE 'p\_%' ORDER BY pubname;
SELECT pubname, schemaname, tablename FROM pg_publication_tables WHERE pubname LIKE 'p\_%' ORDER BY 1, 2, 3;
-- (the journal has no replica identity: publishing it would block the
-- UPDATE and DELETE attempts below before the ledger could refuse them)
DROP PUBLICATION p_journal;

--
-- The extension's own tables take no change from SQL, even from a
-- superuser.
--
INSERT INTO ledger.journal SELECT * FROM ledger.journal LIMIT 1;
UPDATE ledger.journal SET op = 'D';
DELETE FROM ledger.journal;
TRUNCATE ledger.journal;
COPY ledger.journal (table_id, doc_id, version, op, xid, revision_hash, written_at) FROM STDIN;
0	0	0	I	0	\\x00	2000-01-01 00:00:00+00
\.
INSERT INTO ledger.keys SELECT * FROM ledger.keys LIMIT 1;
UPDATE ledger.keys SET state = 'gone';
DELETE FROM ledger.keys;
TRUNCATE ledger.keys;
INSERT INTO ledger.tables SELECT * FROM ledger.tables LIMIT 1;
UPDATE ledger.tables SET deletion_protection = false;
DELETE FROM ledger.tables;
TRUNCATE ledger.tables;
TRUNCATE ledger.journal, ledger.keys, ledger.tables CASCADE;
-- nor through a detour to another access method
BEGIN;
SELECT outcome($$ALTER TABLE ledger.journal SET ACCESS METHOD heap$$);
ROLLBACK;
BEGIN;
SELECT outcome($$ALTER TABLE ledger.tables SET ACCESS METHOD heap$$);
ROLLBACK;
-- nothing changed
SELECT count(*) > 0 AS journal_has_rows FROM ledger.journal;
SELECT count(*) FILTER (WHERE op = 'D' AND payload IS NOT NULL) AS bad_rows FROM ledger.journal;

--
-- ledger_document_id and ledger_document_version check what they are given.
--
CREATE TABLE docs (id int, v text) USING ledger;
INSERT INTO docs SELECT i, 'v' || i FROM generate_series(1, 5) i;
SELECT ledger_document_id('h', '(0,1)');
SELECT ledger_document_version('h', '(0,1)');
SELECT ledger_document_id('h_pkey', '(0,1)');
CREATE VIEW docs_view AS SELECT * FROM docs;
SELECT ledger_document_id('docs_view', '(0,1)');
SELECT ledger_document_id('docs', '(0,0)');
SELECT ledger_document_id('docs', '(0,999)');
SELECT ledger_document_id('docs', '(4294967295,1)');
SELECT ledger_document_version('docs', '(100,1)');
-- a line pointer that VACUUM has freed
DELETE FROM docs WHERE id = 1;
VACUUM docs;
SELECT ledger_document_id('docs', '(0,1)');
-- NULLs in, NULL out
SELECT ledger_document_id('docs', NULL) IS NULL AS null_tid, ledger_document_id(NULL, '(0,2)') IS NULL AS null_table;
-- the ctid of a live row works; it needs SELECT on the table
SELECT id, ledger_document_version('docs', ctid) FROM docs WHERE id = 2;
SET ROLE regress_ledger_other;
SELECT ledger_document_id('refusals.docs', '(0,2)');
RESET ROLE;

-- Clean up the roles.
DROP OWNED BY regress_ledger_owner, regress_ledger_other;
DROP ROLE regress_ledger_owner, regress_ledger_other;
