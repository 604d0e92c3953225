--
-- basic: a ledger table answers CRUD exactly like a heap table, and every
-- change appends exactly one revision to ledger.journal: versions 0, 1, 2,
-- ... per document, 'U' for updates, a tombstone for DELETE, nothing for
-- work that rolls back.
--
\set SHOW_CONTEXT never
CREATE SCHEMA basic;
SET search_path = basic, public;

-- The journal of one table.  Document ids are numbered 1, 2, ... in order
-- of creation and hashes are reduced to whether they have the right shape:
-- a sealed revision carries its key, payload, data hash and revision hash
-- (SHA-256), a tombstone only its revision hash.
CREATE FUNCTION journal(rel regclass)
RETURNS TABLE (doc bigint, version int, op "char", shape text)
LANGUAGE sql AS $$
  SELECT dense_rank() OVER (ORDER BY j.doc_id), j.version, j.op,
         CASE WHEN j.op = 'D' THEN
                CASE WHEN j.payload IS NULL AND j.key_id IS NULL
                      AND j.data_hash IS NULL AND length(j.revision_hash) = 32
                     THEN 'tombstone' ELSE 'BAD TOMBSTONE' END
              ELSE
                CASE WHEN j.payload IS NOT NULL AND j.key_id = t.data_key_id
                      AND length(j.data_hash) = 32 AND length(j.revision_hash) = 32
                     THEN 'sealed' ELSE 'BAD REVISION' END
         END
  FROM ledger.journal j JOIN ledger.tables t USING (table_id)
  WHERE t.relid = rel AND t.dropped_at IS NULL
  ORDER BY j.doc_id, j.version
$$;

-- The number journal() gives a document id.
CREATE FUNCTION doc_no(rel regclass, id bigint) RETURNS bigint
LANGUAGE sql AS $$
  SELECT count(DISTINCT j.doc_id)
  FROM ledger.journal j JOIN ledger.tables t USING (table_id)
  WHERE t.relid = rel AND t.dropped_at IS NULL AND j.doc_id <= id
$$;

-- Whatever the history, the journal must agree with the table: every live
-- row is the newest revision of its document and that revision is not a
-- tombstone; every document without a live row ends in a tombstone;
-- versions run 0, 1, 2, ... without gaps, the first one an 'I', all others
-- 'U' except a final 'D'.  Returns the violations.
CREATE FUNCTION journal_problems(rel regclass) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  tid bigint := (SELECT table_id FROM ledger.tables
                 WHERE relid = rel AND dropped_at IS NULL);
BEGIN
  CREATE TEMP TABLE live ON COMMIT DROP AS
    SELECT 0::bigint AS doc_id, 0 AS version LIMIT 0;
  EXECUTE format('INSERT INTO live SELECT ledger_document_id(%L, ctid), '
                 'ledger_document_version(%L, ctid) FROM %s', rel, rel, rel);
  RETURN QUERY
    SELECT format('live row of doc %s has version %s, journal newest %s%s',
                  l.doc_id, l.version, j.version, j.op)
    FROM live l
    LEFT JOIN LATERAL (SELECT version, op FROM ledger.journal
                       WHERE table_id = tid AND doc_id = l.doc_id
                       ORDER BY version DESC LIMIT 1) j ON true
    WHERE j.version IS DISTINCT FROM l.version OR j.op = 'D';
  RETURN QUERY
    SELECT format('doc %s has no live row but ends in %s', doc_id, max(version))
    FROM ledger.journal
    WHERE table_id = tid AND doc_id NOT IN (SELECT doc_id FROM live)
    GROUP BY doc_id
    HAVING bool_and(op <> 'D');
  RETURN QUERY
    SELECT format('doc %s: versions or operations out of order', doc_id)
    FROM (SELECT doc_id, version, op,
                 row_number() OVER (PARTITION BY doc_id ORDER BY version) - 1 AS n,
                 count(*) OVER (PARTITION BY doc_id) AS c
          FROM ledger.journal WHERE table_id = tid) s
    WHERE version <> n
       OR (n = 0) <> (op = 'I')
       OR (op = 'D' AND n <> c - 1)
    GROUP BY doc_id;
  DROP TABLE live;
END $$;

-- The same table twice: h on heap, l on ledger.
CREATE TABLE h (id int PRIMARY KEY, name text, qty int, note text);
CREATE TABLE l (id int PRIMARY KEY, name text, qty int, note text) USING ledger;

-- Rows in one table but not the other; must always be empty.
CREATE VIEW diff AS
  (SELECT 'only heap' AS side, * FROM (TABLE h EXCEPT ALL TABLE l) a)
  UNION ALL
  (SELECT 'only ledger', * FROM (TABLE l EXCEPT ALL TABLE h) b);

--
-- INSERT: single row, RETURNING, multi-row, INSERT ... SELECT
--
INSERT INTO h VALUES (1, 'apple', 10, NULL);
INSERT INTO l VALUES (1, 'apple', 10, NULL);
INSERT INTO h VALUES (2, 'pear', 20, 'green') RETURNING *;
INSERT INTO l VALUES (2, 'pear', 20, 'green') RETURNING *;
INSERT INTO l VALUES (3, 'plum', NULL, 'blue') RETURNING id, upper(name), qty IS NULL AS no_qty;
INSERT INTO h VALUES (3, 'plum', NULL, 'blue');
INSERT INTO h VALUES (4, 'fig', 4, 'x'), (5, 'kiwi', 5, 'y'), (6, 'lime', 6, repeat('z', 300));
INSERT INTO l VALUES (4, 'fig', 4, 'x'), (5, 'kiwi', 5, 'y'), (6, 'lime', 6, repeat('z', 300));
INSERT INTO h SELECT i, 'gen' || i, i % 7, NULL FROM generate_series(10, 19) i;
INSERT INTO l SELECT i, 'gen' || i, i % 7, NULL FROM generate_series(10, 19) i;
-- INSERT ... SELECT from the ledger table itself (reads opened rows)
INSERT INTO h SELECT id + 100, name || '-copy', qty, note FROM h WHERE id < 4;
INSERT INTO l SELECT id + 100, name || '-copy', qty, note FROM l WHERE id < 4;
SELECT id, name, qty, length(note) AS note_len FROM l ORDER BY id;
SELECT * FROM diff;

--
-- COPY FROM STDIN, FROM PROGRAM (more rows than one multi-insert batch),
-- COPY TO STDOUT
--
COPY h FROM STDIN;
20	copied	1	\N
21	tab\there	2	back\\slash
22	ünïcödé	3	日本語
\.
COPY l FROM STDIN;
20	copied	1	\N
21	tab\there	2	back\\slash
22	ünïcödé	3	日本語
\.
COPY h (id) FROM PROGRAM 'seq 1001 3500';
COPY l (id) FROM PROGRAM 'seq 1001 3500';
SELECT count(*), sum(id) FROM l;
COPY (SELECT * FROM l WHERE id BETWEEN 20 AND 22 ORDER BY id) TO STDOUT;
SELECT * FROM diff;
-- COPY of a whole table (a sequential scan), in text, csv and binary
CREATE TABLE lc (id int, name text, note text) USING ledger;
COPY lc FROM STDIN (FORMAT csv);
1,"quoted, comma",
2,,"multi
line"
\.
COPY lc TO STDOUT;
COPY lc TO STDOUT (FORMAT csv, HEADER);
CREATE TABLE lc2 (LIKE lc) USING ledger;
-- binary COPY out of one ledger table and into another
SELECT '/tmp/ledger_regress_basic_' || pg_backend_pid() || '.bin' AS copyfile \gset
COPY lc TO :'copyfile' (FORMAT binary);
COPY lc2 FROM :'copyfile' (FORMAT binary);
\! rm -f :copyfile
SELECT (SELECT string_agg(lc::text, ';' ORDER BY id) FROM lc) = (SELECT string_agg(lc2::text, ';' ORDER BY id) FROM lc2) AS same;

--
-- The journal: one 'I' revision at version 0 per inserted row.
--
SELECT op, version, shape, count(*) FROM journal('l') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT count(*) = (SELECT count(*) FROM l) AS one_revision_per_row FROM journal('l');
SELECT * FROM journal_problems('l');
-- every revision hash is distinct
SELECT count(DISTINCT revision_hash) = count(*) AS distinct_hashes
FROM ledger.journal WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'l'::regclass);
-- Remove the bulk rows again: a tombstone each.
DELETE FROM h WHERE id > 1000;
DELETE FROM l WHERE id > 1000;
SELECT op, version, count(*) FROM journal('l') GROUP BY 1, 2 ORDER BY 1, 2;

--
-- UPDATE: RETURNING, UPDATE ... FROM, several updates of one row; the
-- document id stays, the version counts up.
--
CREATE TEMP TABLE ids AS
  SELECT id, ledger_document_id('l', ctid) AS doc_id FROM l;
SELECT id, doc_no('l', ledger_document_id('l', ctid)) AS doc,
       ledger_document_version('l', ctid) AS version
FROM l WHERE id <= 3 ORDER BY id;
UPDATE h SET qty = qty + 1 WHERE id = 1 RETURNING *;
UPDATE l SET qty = qty + 1 WHERE id = 1 RETURNING *;
UPDATE h SET qty = qty + 1, note = 'twice' WHERE id = 1;
UPDATE l SET qty = qty + 1, note = 'twice' WHERE id = 1;
-- an update that changes nothing still writes a new row version
UPDATE h SET name = name WHERE id = 2;
UPDATE l SET name = name WHERE id = 2;
-- updating the primary key (not a HOT update)
UPDATE h SET id = 30 WHERE id = 3;
UPDATE l SET id = 30 WHERE id = 3 RETURNING id, name;
-- UPDATE ... FROM
UPDATE h SET note = v.note FROM (VALUES (4, 'four'), (5, 'five')) v(id, note) WHERE h.id = v.id;
UPDATE l SET note = v.note FROM (VALUES (4, 'four'), (5, 'five')) v(id, note) WHERE l.id = v.id
  RETURNING l.id, l.note, v.note AS from_v;
-- UPDATE ... FROM the heap table, and the ledger table from itself
UPDATE h SET qty = h2.qty * 10 FROM h h2 WHERE h.id = h2.id + 100;
UPDATE l SET qty = h.qty * 10 FROM h WHERE l.id = h.id + 100;
UPDATE l SET name = l2.name || '!' FROM l l2 WHERE l.id = 10 AND l2.id = 11;
UPDATE h SET name = h2.name || '!' FROM h h2 WHERE h.id = 10 AND h2.id = 11;
SELECT * FROM diff;
SELECT id, name, qty, note, doc_no('l', ledger_document_id('l', ctid)) AS doc,
       ledger_document_version('l', ctid) AS version
FROM l WHERE id <= 5 OR id IN (30, 101, 102, 103) ORDER BY id;
-- every row kept its document id
SELECT count(*) AS rows_whose_doc_changed
FROM l JOIN ids ON ids.id = l.id OR (ids.id = 3 AND l.id = 30)
WHERE ids.doc_id <> ledger_document_id('l', l.ctid);
SELECT * FROM journal('l') WHERE doc <= 3 OR doc IN (SELECT doc_no('l', doc_id) FROM ids WHERE id IN (101, 102));
SELECT * FROM journal_problems('l');

--
-- DELETE: RETURNING, DELETE ... USING; each appends a tombstone with the
-- next version.
--
DELETE FROM h WHERE id = 5 RETURNING *;
DELETE FROM l WHERE id = 5 RETURNING *;
DELETE FROM h USING (VALUES (10), (11)) v(id) WHERE h.id = v.id;
DELETE FROM l USING (VALUES (10), (11)) v(id) WHERE l.id = v.id RETURNING l.id, l.name;
DELETE FROM h USING l WHERE h.id = l.id AND l.name LIKE '%-copy';
DELETE FROM l USING h WHERE l.id = h.id + 100 AND h.id IN (1, 2);
DELETE FROM l WHERE id = 103;
SELECT * FROM diff;
SELECT * FROM journal('l')
WHERE doc IN (SELECT doc_no('l', doc_id) FROM ids WHERE id IN (5, 10, 11, 101, 102, 103))
ORDER BY doc, version;
SELECT * FROM journal_problems('l');

--
-- Transactions: the journal row is written by the writing transaction,
-- with its xid, and disappears with it.
--
INSERT INTO h VALUES (40, 'in xact', 1, NULL);
BEGIN;
INSERT INTO l VALUES (40, 'in xact', 1, NULL);
SELECT op, version, xid = pg_current_xact_id() AS my_xid
FROM ledger.journal
WHERE doc_id = (SELECT ledger_document_id('l', ctid) FROM l WHERE id = 40);
-- system columns of an opened row are the physical tuple's
SELECT xmin::text = pg_current_xact_id()::text AS xmin_is_mine, xmax, cmin FROM l WHERE id = 40;
COMMIT;
SELECT count(*) AS revisions_before FROM journal('l') \gset
-- an aborted transaction leaves no revision
BEGIN;
INSERT INTO l VALUES (41, 'rolled back', 1, NULL);
UPDATE l SET qty = 99 WHERE id = 40;
DELETE FROM l WHERE id = 1;
ROLLBACK;
SELECT count(*) - :revisions_before AS new_revisions FROM journal('l');
SELECT * FROM l WHERE id IN (1, 40, 41) ORDER BY id;
-- a statement that fails half way leaves no revision
INSERT INTO l VALUES (42, 'ok', 1, NULL), (1, 'duplicate', 1, NULL);
SELECT count(*) - :revisions_before AS new_revisions FROM journal('l');
-- ROLLBACK TO SAVEPOINT removes exactly the revisions of the subtransaction
BEGIN;
INSERT INTO h VALUES (50, 'kept', 1, NULL);
INSERT INTO l VALUES (50, 'kept', 1, NULL);
SAVEPOINT s1;
INSERT INTO h VALUES (51, 'undone', 1, NULL);
INSERT INTO l VALUES (51, 'undone', 1, NULL);
UPDATE h SET qty = 2 WHERE id = 50;
UPDATE l SET qty = 2 WHERE id = 50;
DELETE FROM h WHERE id = 40;
DELETE FROM l WHERE id = 40;
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
UPDATE h SET qty = 3 WHERE id = 50;
UPDATE l SET qty = 3 WHERE id = 50;
RELEASE SAVEPOINT s2;
SAVEPOINT s3;
INSERT INTO l VALUES (50, 'duplicate', 1, NULL);
ROLLBACK TO SAVEPOINT s3;
COMMIT;
SELECT * FROM l WHERE id IN (40, 50, 51) ORDER BY id;
SELECT * FROM diff;
SELECT count(*) - :revisions_before AS new_revisions FROM journal('l');
SELECT j.* FROM journal('l') j
WHERE j.doc = (SELECT doc_no('l', ledger_document_id('l', ctid)) FROM l WHERE id = 50);
SELECT * FROM journal_problems('l');

--
-- SELECT ... FOR UPDATE / FOR SHARE lock and return opened rows.
--
BEGIN;
SELECT id, name, qty FROM l WHERE id = 2 FOR UPDATE;
SELECT id, name, qty FROM l WHERE id IN (4, 6) ORDER BY id FOR SHARE;
SELECT id, name FROM l WHERE id = 12 FOR NO KEY UPDATE SKIP LOCKED;
UPDATE l SET qty = qty WHERE id = 2;
COMMIT;
UPDATE h SET qty = qty WHERE id = 2;

--
-- Data-modifying CTEs and prepared statements.
--
WITH moved AS (DELETE FROM l WHERE id = 12 RETURNING *)
INSERT INTO l SELECT id + 200, name, qty, 'moved' FROM moved RETURNING id, name, note;
WITH moved AS (DELETE FROM h WHERE id = 12 RETURNING *)
INSERT INTO h SELECT id + 200, name, qty, 'moved' FROM moved;
PREPARE bump(int) AS UPDATE l SET qty = coalesce(qty, 0) + 1 WHERE id = $1 RETURNING qty;
EXECUTE bump(13);
EXECUTE bump(13);
UPDATE h SET qty = coalesce(qty, 0) + 2 WHERE id = 13;
DEALLOCATE bump;
SELECT * FROM diff;
SELECT * FROM journal_problems('l');

--
-- MERGE: insert, update and delete in one statement.
--
SELECT count(*) FILTER (WHERE op = 'I') AS i0, count(*) FILTER (WHERE op = 'U') AS u0,
       count(*) FILTER (WHERE op = 'D') AS d0 FROM journal('l') \gset
MERGE INTO h USING (VALUES (2, 'merged', 1), (80, 'merged new', 1), (6, NULL, NULL)) v(id, name, qty)
  ON h.id = v.id
  WHEN MATCHED AND v.name IS NULL THEN DELETE
  WHEN MATCHED THEN UPDATE SET name = v.name, qty = h.qty + v.qty
  WHEN NOT MATCHED THEN INSERT VALUES (v.id, v.name, v.qty, NULL);
MERGE INTO l USING (VALUES (2, 'merged', 1), (80, 'merged new', 1), (6, NULL, NULL)) v(id, name, qty)
  ON l.id = v.id
  WHEN MATCHED AND v.name IS NULL THEN DELETE
  WHEN MATCHED THEN UPDATE SET name = v.name, qty = l.qty + v.qty
  WHEN NOT MATCHED THEN INSERT VALUES (v.id, v.name, v.qty, NULL);
SELECT * FROM l WHERE id IN (2, 6, 80) ORDER BY id;
-- one new 'I', one 'U' and one tombstone
SELECT count(*) FILTER (WHERE op = 'I') - :i0 AS new_i, count(*) FILTER (WHERE op = 'U') - :u0 AS new_u,
       count(*) FILTER (WHERE op = 'D') - :d0 AS new_d FROM journal('l');
SELECT * FROM diff;
SELECT * FROM journal_problems('l');

--
-- INSERT ... ON CONFLICT
--
SELECT count(*) AS revisions_before FROM journal('l') \gset
-- DO NOTHING: the conflicting row writes nothing
INSERT INTO h VALUES (2, 'conflict', 0, NULL), (60, 'new', 0, NULL) ON CONFLICT DO NOTHING;
INSERT INTO l VALUES (2, 'conflict', 0, NULL), (60, 'new', 0, NULL) ON CONFLICT DO NOTHING RETURNING *;
INSERT INTO l VALUES (2, 'conflict', 0, NULL) ON CONFLICT (id) DO NOTHING;
SELECT count(*) - :revisions_before AS new_revisions FROM journal('l');
-- DO UPDATE: one 'U' revision per updated row, none where WHERE says no
INSERT INTO h VALUES (2, 'upserted', 7, NULL), (61, 'new', 0, NULL)
  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, qty = h.qty + EXCLUDED.qty;
INSERT INTO l VALUES (2, 'upserted', 7, NULL), (61, 'new', 0, NULL)
  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, qty = l.qty + EXCLUDED.qty
  RETURNING *;
INSERT INTO h VALUES (4, 'not taken', 0, NULL) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name WHERE h.qty > 100;
INSERT INTO l VALUES (4, 'not taken', 0, NULL) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name WHERE l.qty > 100
  RETURNING *;
SELECT count(*) - :revisions_before AS new_revisions FROM journal('l');
SELECT j.doc = doc_no('l', ledger_document_id('l', l.ctid)) AS same_doc, j.version, j.op
FROM l, journal('l') j
WHERE l.id = 2 AND j.doc = doc_no('l', ledger_document_id('l', l.ctid)) ORDER BY j.version;
-- a row cannot be affected twice
INSERT INTO l VALUES (70, 'a', 0, NULL), (70, 'b', 0, NULL) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;
SELECT * FROM diff;
SELECT * FROM journal_problems('l');

-- A speculative insertion that loses.  The unique index's expression
-- function lets a second row with the same key in between ON CONFLICT's
-- pre-check and the speculative row's own index entry (its second call),
-- so the speculative insertion is aborted and retried: the aborted
-- insertion must leave no revision, only the row that got in first.
CREATE FUNCTION sneak_in(t text, k int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('INSERT INTO basic.%I VALUES (%s, %L)', t, k, 'got in first');
END $$;
CREATE FUNCTION spec_key(t text, k int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  n int := coalesce(nullif(current_setting('basic.sneak', true), ''), '0')::int;
BEGIN
  IF n > 0 THEN
    PERFORM set_config('basic.sneak', (n - 1)::text, false);
    IF n = 1 THEN
      PERFORM basic.sneak_in(t, k);
    END IF;
  END IF;
  RETURN k;
END $$;
CREATE TABLE spec_h (k int, v text);
CREATE TABLE spec_l (k int, v text) USING ledger;
CREATE UNIQUE INDEX ON spec_h (spec_key('spec_h', k));
CREATE UNIQUE INDEX ON spec_l (spec_key('spec_l', k));
SET basic.sneak = 2;
INSERT INTO spec_h VALUES (1, 'speculative') ON CONFLICT DO NOTHING;
SELECT nextval('ledger.document_id_seq') AS doc_id_before \gset
SET basic.sneak = 2;
INSERT INTO spec_l VALUES (1, 'speculative') ON CONFLICT DO NOTHING;
RESET basic.sneak;
-- two document ids were drawn: the aborted speculative row's and the
-- row that got in first
SELECT currval('ledger.document_id_seq') - :doc_id_before AS doc_ids_drawn;
SELECT * FROM spec_h ORDER BY k;
SELECT * FROM spec_l ORDER BY k;
SELECT * FROM journal('spec_l');
SELECT * FROM journal_problems('spec_l');

--
-- COPY FREEZE into a ledger table created in the same transaction.
--
BEGIN;
CREATE TABLE frozen (id int, v text) USING ledger;
COPY frozen FROM STDIN (FREEZE);
1	one
2	two
\.
COMMIT;
SELECT * FROM frozen ORDER BY id;
SELECT op, count(*) FROM journal('frozen') GROUP BY op;

--
-- An UPDATE that moves a row to another partition deletes it from one
-- ledger table and inserts it into the other: a tombstone there, a new
-- document here.
--
CREATE TABLE parted (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE parted_lo PARTITION OF parted FOR VALUES FROM (0) TO (100) USING ledger;
CREATE TABLE parted_hi PARTITION OF parted FOR VALUES FROM (100) TO (200) USING ledger;
CREATE TABLE parted_heap PARTITION OF parted FOR VALUES FROM (200) TO (300);
INSERT INTO parted VALUES (1, 'a'), (2, 'b'), (150, 'c');
UPDATE parted SET k = k + 100, v = v || '+moved' WHERE k IN (1, 150) RETURNING tableoid::regclass, *;
UPDATE parted SET v = v || '+stayed' WHERE k = 2;
SELECT tableoid::regclass, * FROM parted ORDER BY k;
SELECT * FROM journal('parted_lo');
SELECT * FROM journal('parted_hi');
SELECT * FROM journal_problems('parted_lo');
SELECT * FROM journal_problems('parted_hi');

--
-- Inheritance: a ledger table inheriting from a heap table; changes
-- through the parent reach the child's rows and are journaled.
--
CREATE TABLE inh_parent (id int, v text);
CREATE TABLE inh_child (extra int) INHERITS (inh_parent) USING ledger;
INSERT INTO inh_parent VALUES (1, 'parent');
INSERT INTO inh_child VALUES (2, 'child', 9), (3, 'child', 10);
UPDATE inh_parent SET v = v || '!' WHERE id >= 1;
DELETE FROM inh_parent WHERE id = 3;
SELECT tableoid::regclass, * FROM inh_parent ORDER BY id;
SELECT * FROM inh_child;
SELECT * FROM journal('inh_child');

--
-- Sealed at rest: a value in a column without an index appears neither in
-- the table's pages nor in the journal, while the indexed key is kept in
-- the clear.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public;
RESET client_min_messages;
CREATE TABLE secret (k text PRIMARY KEY, s text) USING ledger;
INSERT INTO secret VALUES ('PLAIN-KEY-MARKER', 'TOP-SECRET-MARKER');
CHECKPOINT;
SELECT position('TOP-SECRET-MARKER'::bytea IN get_raw_page('basic.secret', 0)) > 0 AS secret_in_page,
       position('PLAIN-KEY-MARKER'::bytea IN get_raw_page('basic.secret', 0)) > 0 AS key_in_page;
SELECT count(*) AS marker_in_journal FROM ledger.journal
WHERE position('TOP-SECRET-MARKER'::bytea IN payload) > 0;
-- the same check on heap finds the marker, so the check itself works
CREATE TABLE secret_h (k text PRIMARY KEY, s text);
INSERT INTO secret_h VALUES ('PLAIN-KEY-MARKER', 'TOP-SECRET-MARKER');
SELECT position('TOP-SECRET-MARKER'::bytea IN get_raw_page('basic.secret_h', 0)) > 0 AS marker_in_heap_page;
SELECT * FROM secret;

-- Final state of the whole test.
SELECT * FROM diff;
SELECT * FROM journal_problems('l');
