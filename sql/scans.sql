--
-- scans: every way the executor reads a table works on a ledger table and
-- returns what heap returns: sequential (also backward and parallel),
-- index, index-only, bitmap (also lossy), TID, TID range and sample scans,
-- over btree, hash, GIN, partial and concurrently built indexes; ANALYZE,
-- VACUUM and EXPLAIN; and ALTER TABLE that adds, drops and renames
-- columns, with rows written before each change read correctly after it.
--
\set SHOW_CONTEXT never
CREATE SCHEMA scans;
SET search_path = scans, public;

-- compare(q) runs q against h and against l (written TBL in q) and tells
-- whether both return the same multiset of rows.
CREATE FUNCTION compare(q text)
RETURNS TABLE (heap_rows bigint, ledger_rows bigint, same boolean)
LANGUAGE plpgsql AS $$
DECLARE
  hq text := replace(q, 'TBL', 'h');
  lq text := replace(q, 'TBL', 'l');
BEGIN
  EXECUTE format('SELECT (SELECT count(*) FROM (%s) a), (SELECT count(*) FROM (%s) b), '
                 'NOT EXISTS (((%s) EXCEPT ALL (%s)) UNION ALL ((%s) EXCEPT ALL (%s)))',
                 hq, lq, hq, lq, lq, hq)
    INTO heap_rows, ledger_rows, same;
  RETURN NEXT;
END $$;
-- The plan of q for the ledger table, without costs.
CREATE FUNCTION plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || replace(q, 'TBL', 'l');
END $$;
-- How many parallel workers q launched for the ledger table.
CREATE FUNCTION workers_launched(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF) ' || replace(q, 'TBL', 'l') INTO j;
  RETURN (SELECT max((m[1])::int) FROM regexp_matches(j::text, '"Workers Launched": (\d+)', 'g') m);
END $$;

-- The same table on heap and on ledger.  Indexes are created while the
-- tables are empty, so their columns are kept in the clear; pad is sealed.
CREATE TABLE h (id int PRIMARY KEY, grp int, tag text, doc jsonb, body text, pad text);
CREATE TABLE l (id int PRIMARY KEY, grp int, tag text, doc jsonb, body text, pad text) USING ledger;
CREATE INDEX h_grp ON h (grp);
CREATE INDEX l_grp ON l (grp);
CREATE INDEX h_tag_hash ON h USING hash (tag);
CREATE INDEX l_tag_hash ON l USING hash (tag);
CREATE INDEX h_doc_tags ON h USING gin ((doc -> 'tags'));
CREATE INDEX l_doc_tags ON l USING gin ((doc -> 'tags'));
CREATE INDEX h_body_fts ON h USING gin (to_tsvector('english', body));
CREATE INDEX l_body_fts ON l USING gin (to_tsvector('english', body));
CREATE INDEX h_rare ON h (grp) WHERE tag = 'rare';
CREATE INDEX l_rare ON l (grp) WHERE tag = 'rare';
SELECT plainset FROM ledger.tables WHERE relid = 'l'::regclass;
INSERT INTO h
  SELECT i, i % 100,
         CASE WHEN i % 500 = 0 THEN 'rare' ELSE 't' || (i % 10) END,
         jsonb_build_object('tags', jsonb_build_array('a' || (i % 7), 'b' || (i % 11)), 'n', i),
         'word' || (i % 13) || ' and ' || CASE WHEN i % 2 = 0 THEN 'cats' ELSE 'dogs' END,
         repeat('p', i % 40)
  FROM generate_series(1, 5000) i;
INSERT INTO l SELECT * FROM h ORDER BY id;
VACUUM ANALYZE h;
VACUUM ANALYZE l;
SELECT relname, reltuples, relpages > 0 AS has_pages FROM pg_class
WHERE oid IN ('h'::regclass, 'l'::regclass) ORDER BY relname;

--
-- Sequential scan (forward, backward through a scroll cursor).
--
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SET enable_indexonlyscan = off;
SET enable_tidscan = off;
SELECT * FROM plan('SELECT id, pad FROM TBL WHERE pad LIKE ''ppp%'' AND grp < 50');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE pad LIKE ''ppp%'' AND grp < 50');
SELECT * FROM compare('SELECT * FROM TBL');
SELECT count(*), sum(id), sum(length(pad)), count(DISTINCT doc) FROM l;
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT id, pad FROM l WHERE id % 1000 = 0;
FETCH 3 FROM c;
FETCH BACKWARD 2 FROM c;
FETCH LAST FROM c;
FETCH ABSOLUTE 2 FROM c;
COMMIT;
RESET enable_indexscan;
RESET enable_bitmapscan;
RESET enable_indexonlyscan;
RESET enable_tidscan;

--
-- Parallel sequential scan: the workers open the rows.  With the leader
-- not participating, the workers read every row.
--
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT * FROM plan('SELECT grp, count(*), sum(length(pad)) FROM TBL GROUP BY grp');
SELECT * FROM compare('SELECT grp, count(*), sum(length(pad)) FROM TBL GROUP BY grp');
SELECT * FROM plan('SELECT id, pad FROM TBL WHERE pad = ''ppppp''');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE pad = ''ppppp''');
SELECT workers_launched('SELECT id, pad FROM TBL WHERE pad = ''ppppp''') > 0 AS workers_ran;
-- parallel index scan
RESET enable_indexscan;
SET enable_seqscan = off;
SET min_parallel_index_scan_size = 0;
SELECT * FROM plan('SELECT id, pad FROM TBL WHERE id > 10 AND pad = ''pp''');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE id > 10 AND pad = ''pp''');
SELECT workers_launched('SELECT id, pad FROM TBL WHERE id > 10 AND pad = ''pp''') > 0 AS workers_ran;
RESET min_parallel_index_scan_size;
RESET enable_seqscan;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

--
-- Index scans: btree (forward and backward), hash, partial index.
--
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_indexonlyscan = off;
SELECT * FROM plan('SELECT * FROM TBL WHERE id BETWEEN 100 AND 120');
SELECT * FROM compare('SELECT * FROM TBL WHERE id BETWEEN 100 AND 120');
SELECT * FROM plan('SELECT id, pad FROM TBL ORDER BY id DESC LIMIT 5');
SELECT id, pad FROM l ORDER BY id DESC LIMIT 5;
SELECT * FROM compare('SELECT id, pad FROM TBL ORDER BY id DESC LIMIT 5');
SELECT * FROM plan('SELECT id, tag, pad FROM TBL WHERE tag = ''rare''');
SELECT * FROM compare('SELECT id, tag, pad FROM TBL WHERE tag = ''rare''');
SELECT * FROM plan('SELECT id, pad FROM TBL WHERE tag = ''rare'' AND grp = 0');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE tag = ''rare'' AND grp = 0');
SELECT id, pad FROM l WHERE tag = 'rare' AND grp = 0 ORDER BY id;

--
-- Index-only scan: values come from the index, visibility from the
-- visibility map or the opened row.
--
RESET enable_indexonlyscan;
SELECT * FROM plan('SELECT grp FROM TBL WHERE grp BETWEEN 10 AND 12');
SELECT * FROM compare('SELECT grp FROM TBL WHERE grp BETWEEN 10 AND 12');
SELECT * FROM plan('SELECT id FROM TBL WHERE id < 50');
SELECT * FROM compare('SELECT id FROM TBL WHERE id < 50');
RESET enable_seqscan;
RESET enable_bitmapscan;

--
-- Bitmap heap scans: btree, GIN on an expression, GIN full text, and lossy
-- pages whose rows are rechecked after opening.
--
SET enable_seqscan = off;
SET enable_indexscan = off;
SELECT * FROM plan('SELECT id, pad FROM TBL WHERE grp = 7 OR grp = 8');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE grp = 7 OR grp = 8');
SELECT * FROM plan('SELECT id, doc FROM TBL WHERE doc -> ''tags'' ? ''a3''');
SELECT * FROM compare('SELECT id, doc FROM TBL WHERE doc -> ''tags'' ? ''a3''');
SELECT * FROM plan('SELECT id, body FROM TBL WHERE doc -> ''tags'' @> ''["a3", "b5"]''');
SELECT * FROM compare('SELECT id, body FROM TBL WHERE doc -> ''tags'' @> ''["a3", "b5"]''');
SELECT id, doc, body FROM l WHERE doc -> 'tags' @> '["a3", "b5"]' ORDER BY id LIMIT 3;
SELECT * FROM plan('SELECT id FROM TBL WHERE to_tsvector(''english'', body) @@ to_tsquery(''english'', ''word5 & cat'')');
SELECT * FROM compare('SELECT id FROM TBL WHERE to_tsvector(''english'', body) @@ to_tsquery(''english'', ''word5 & cat'')');
SET work_mem = '64kB';
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE grp < 60 AND pad > ''pppp''');
RESET work_mem;
RESET enable_seqscan;
RESET enable_indexscan;

--
-- TID scan and TID range scan; WHERE CURRENT OF.
--
SELECT * FROM plan('SELECT id, pad FROM TBL WHERE ctid = ''(0,1)''');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE ctid = ''(0,1)''');
SELECT id, pad FROM l WHERE ctid = '(0,1)';
SELECT id FROM l WHERE ctid = ANY (ARRAY['(0,2)', '(0,3)', '(9999,1)']::tid[]) ORDER BY id;
SELECT * FROM plan('SELECT id, pad FROM TBL WHERE ctid < ''(1,0)''');
-- rows per page differ between heap and ledger: compare the TID range
-- scan with a sequential scan of the ledger table itself
CREATE TEMP TABLE by_tidrange AS SELECT id, pad FROM l WHERE ctid < '(1,0)';
CREATE TEMP TABLE by_tidrange2 AS SELECT id, pad FROM l WHERE ctid >= '(2,0)' AND ctid < '(4,0)';
SET enable_tidscan = off;
SELECT * FROM plan('SELECT id, pad FROM TBL WHERE ctid < ''(1,0)''');
SELECT count(*) > 0 AS nonempty,
       NOT EXISTS ((SELECT id, pad FROM l WHERE ctid < '(1,0)') EXCEPT ALL (TABLE by_tidrange)) AND
       NOT EXISTS ((TABLE by_tidrange) EXCEPT ALL (SELECT id, pad FROM l WHERE ctid < '(1,0)')) AS same
FROM by_tidrange;
SELECT count(*) > 0 AS nonempty,
       NOT EXISTS ((SELECT id, pad FROM l WHERE ctid >= '(2,0)' AND ctid < '(4,0)') EXCEPT ALL (TABLE by_tidrange2)) AND
       NOT EXISTS ((TABLE by_tidrange2) EXCEPT ALL (SELECT id, pad FROM l WHERE ctid >= '(2,0)' AND ctid < '(4,0)')) AS same
FROM by_tidrange2;
RESET enable_tidscan;
BEGIN;
DECLARE cur CURSOR FOR SELECT id, pad FROM l WHERE id IN (7, 8) ORDER BY id FOR UPDATE;
FETCH cur;
UPDATE l SET pad = 'current' WHERE CURRENT OF cur RETURNING id, pad;
FETCH cur;
DELETE FROM l WHERE CURRENT OF cur RETURNING id, pad;
COMMIT;
UPDATE h SET pad = 'current' WHERE id = 7;
DELETE FROM h WHERE id = 8;
SELECT * FROM compare('SELECT * FROM TBL');

--
-- Sample scans.
--
SELECT * FROM compare('SELECT * FROM TBL TABLESAMPLE SYSTEM (100)');
SELECT * FROM compare('SELECT * FROM TBL TABLESAMPLE BERNOULLI (100)');
SELECT (SELECT array_agg(id ORDER BY id) FROM l TABLESAMPLE BERNOULLI (5) REPEATABLE (7)) =
       (SELECT array_agg(id ORDER BY id) FROM l TABLESAMPLE BERNOULLI (5) REPEATABLE (7)) AS repeatable;

--
-- Joins and aggregates across heap and ledger.
--
SELECT count(*) FROM h JOIN l USING (id) WHERE h.pad = l.pad AND h.doc = l.doc;
SET enable_hashjoin = off;
SET enable_nestloop = off;
SELECT count(*) FROM h JOIN l ON h.pad = l.pad AND h.id = l.id;
RESET enable_hashjoin;
RESET enable_nestloop;
SELECT tag, count(*), min(pad), max(length(body)) FROM l GROUP BY tag ORDER BY tag;

--
-- After updates, every kind of scan still returns the newest row: updates
-- of sealed columns only (HOT), of indexed columns (not HOT), and deletes.
--
UPDATE h SET pad = 'hot ' || id WHERE id % 10 = 1;
UPDATE l SET pad = 'hot ' || id WHERE id % 10 = 1;
UPDATE h SET grp = grp + 1000, tag = 'moved' WHERE id % 10 = 2;
UPDATE l SET grp = grp + 1000, tag = 'moved' WHERE id % 10 = 2;
UPDATE h SET doc = doc || '{"tags": ["new"]}' WHERE id % 10 = 3;
UPDATE l SET doc = doc || '{"tags": ["new"]}' WHERE id % 10 = 3;
DELETE FROM h WHERE id % 10 = 4;
DELETE FROM l WHERE id % 10 = 4;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT * FROM compare('SELECT id, grp, pad FROM TBL WHERE grp BETWEEN 1000 AND 1010');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE id BETWEEN 1 AND 200');
SELECT * FROM compare('SELECT grp FROM TBL WHERE grp < 20');
SELECT * FROM compare('SELECT id, tag FROM TBL WHERE tag = ''moved''');
RESET enable_bitmapscan;
SET enable_indexscan = off;
SELECT * FROM compare('SELECT id, doc FROM TBL WHERE doc -> ''tags'' ? ''new''');
SELECT * FROM compare('SELECT id, doc FROM TBL WHERE doc -> ''tags'' ? ''a3''');
RESET enable_indexscan;
RESET enable_seqscan;
SELECT * FROM compare('SELECT * FROM TBL');
-- VACUUM removes the dead versions; the scans still agree
VACUUM h;
VACUUM l;
SET enable_seqscan = off;
SELECT * FROM compare('SELECT grp FROM TBL WHERE grp < 20');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE id BETWEEN 1 AND 200');
RESET enable_seqscan;
-- new rows go into freed space and are found by every index
INSERT INTO h SELECT id + 10000, grp, tag, doc, body, pad FROM h WHERE id % 10 = 5;
INSERT INTO l SELECT id + 10000, grp, tag, doc, body, pad FROM l WHERE id % 10 = 5;
SELECT * FROM compare('SELECT * FROM TBL');
SET enable_seqscan = off;
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE id > 10000');
RESET enable_seqscan;

--
-- CREATE INDEX and CREATE INDEX CONCURRENTLY on a populated table, over
-- columns already kept in the clear; REINDEX.
--
CREATE INDEX h_grp_id ON h (grp, id);
CREATE INDEX CONCURRENTLY l_grp_id ON l (grp, id);
CREATE INDEX CONCURRENTLY l_tag_btree ON l (tag) WHERE tag <> 'moved';
CREATE UNIQUE INDEX CONCURRENTLY l_id_grp ON l (id, grp);
SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'l'::regclass ORDER BY 1;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT * FROM plan('SELECT id FROM TBL WHERE grp = 5 AND id > 4000');
SELECT * FROM compare('SELECT id FROM TBL WHERE grp = 5 AND id > 4000');
-- rows whose newest version is a heap-only tuple (ids ending in 1 were
-- updated in a sealed column only) are indexed once, at their chain's root
SELECT * FROM compare('SELECT id FROM TBL WHERE grp = 1 AND id > 0');
SET enable_indexonlyscan = off;
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE grp = 1 AND id > 0');
SELECT * FROM compare('SELECT id, tag FROM TBL WHERE tag = ''t1''');
RESET enable_indexonlyscan;
RESET enable_bitmapscan;
RESET enable_seqscan;
REINDEX TABLE l;
REINDEX TABLE CONCURRENTLY l;
SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'l'::regclass ORDER BY 1;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_indexonlyscan = off;
SELECT * FROM compare('SELECT id, tag FROM TBL WHERE tag = ''rare''');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE grp = 1');
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE id BETWEEN 1 AND 200');
RESET enable_indexonlyscan;
RESET enable_bitmapscan;
RESET enable_seqscan;

--
-- VACUUM FULL and CLUSTER copy the sealed rows as they are: same
-- documents, same versions, no new revision, same answers as heap; CLUSTER
-- puts the rows in index order.
--
CREATE TEMP TABLE docs_before AS
  SELECT id, ledger_document_id('l', ctid) AS doc, ledger_document_version('l', ctid) AS version FROM l;
SELECT count(*) AS revisions_before FROM ledger.journal
WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'l'::regclass) \gset
SELECT pg_relation_filenode('l') AS filenode_before \gset
VACUUM FULL h;
VACUUM FULL l;
SELECT pg_relation_filenode('l') <> :filenode_before AS rewritten;
SELECT * FROM compare('SELECT * FROM TBL');
CLUSTER h USING h_pkey;
CLUSTER l USING l_pkey;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM l LIMIT 20) s) =
       (SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM l ORDER BY id LIMIT 20) s) AS in_index_order;
SELECT * FROM compare('SELECT * FROM TBL');
VACUUM (FULL, ANALYZE) l;
SELECT count(*) AS rows_changed FROM l JOIN docs_before b USING (id)
WHERE ledger_document_id('l', l.ctid) <> b.doc OR ledger_document_version('l', l.ctid) <> b.version;
SELECT count(*) - :revisions_before AS new_revisions FROM ledger.journal
WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'l'::regclass);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT * FROM compare('SELECT id, pad FROM TBL WHERE grp = 1');
SELECT * FROM compare('SELECT id, tag FROM TBL WHERE tag = ''rare''');
RESET enable_bitmapscan;
RESET enable_seqscan;
-- rows written afterwards are new documents as usual, old ones go on
INSERT INTO h (id, grp, tag, pad) VALUES (30000, 3, 'after cluster', 'x');
INSERT INTO l (id, grp, tag, pad) VALUES (30000, 3, 'after cluster', 'x');
UPDATE h SET pad = 'y' WHERE id = 1;
UPDATE l SET pad = 'y' WHERE id = 1;
SELECT ledger_document_version('l', l.ctid) - b.version AS version_step
FROM l JOIN docs_before b USING (id) WHERE id = 1;
SELECT * FROM compare('SELECT * FROM TBL');

--
-- ALTER TABLE: ADD COLUMN without and with a default, DROP COLUMN, RENAME
-- COLUMN and TABLE.  Rows written before each change read as heap's.
--
ALTER TABLE h ADD COLUMN extra int;
ALTER TABLE l ADD COLUMN extra int;
ALTER TABLE h ADD COLUMN dflt text DEFAULT 'default!';
ALTER TABLE l ADD COLUMN dflt text DEFAULT 'default!';
SELECT id, extra, dflt FROM l WHERE id IN (1, 2) ORDER BY id;
SELECT * FROM compare('SELECT * FROM TBL');
-- rows written after the change, and old rows updated after it
INSERT INTO h (id, grp, tag, pad, extra) VALUES (20000, 1, 'after', 'new row', 5);
INSERT INTO l (id, grp, tag, pad, extra) VALUES (20000, 1, 'after', 'new row', 5);
UPDATE h SET extra = id WHERE id IN (1, 3);
UPDATE l SET extra = id WHERE id IN (1, 3);
UPDATE h SET dflt = NULL WHERE id = 5;
UPDATE l SET dflt = NULL WHERE id = 5;
SELECT id, extra, dflt FROM l WHERE id IN (1, 2, 3, 5, 20000) ORDER BY id;
SELECT * FROM compare('SELECT * FROM TBL');
-- DROP COLUMN: a sealed one, and one kept in the clear
ALTER TABLE h DROP COLUMN body;
ALTER TABLE l DROP COLUMN body;
ALTER TABLE h DROP COLUMN pad;
ALTER TABLE l DROP COLUMN pad;
SELECT * FROM l WHERE id IN (1, 2, 20000) ORDER BY id;
SELECT * FROM compare('SELECT * FROM TBL');
UPDATE h SET tag = 'after drop' WHERE id = 2;
UPDATE l SET tag = 'after drop' WHERE id = 2;
INSERT INTO h VALUES (20001, 2, 'dropped', NULL, 7, 'x');
INSERT INTO l VALUES (20001, 2, 'dropped', NULL, 7, 'x');
SELECT * FROM compare('SELECT * FROM TBL');
-- a column added after a drop takes a new attribute number
ALTER TABLE h ADD COLUMN late numeric DEFAULT 1.5;
ALTER TABLE l ADD COLUMN late numeric DEFAULT 1.5;
SELECT * FROM compare('SELECT * FROM TBL');
-- RENAME COLUMN and TABLE
ALTER TABLE h RENAME COLUMN tag TO label;
ALTER TABLE l RENAME COLUMN tag TO label;
ALTER TABLE l RENAME TO l_renamed;
SELECT id, label, extra, dflt, late FROM l_renamed WHERE id IN (1, 2, 20000, 20001) ORDER BY id;
ALTER TABLE l_renamed RENAME TO l;
SELECT * FROM compare('SELECT * FROM TBL');
SELECT * FROM compare('SELECT id, label FROM TBL WHERE label = ''rare''');
-- VACUUM FULL and CLUSTER also copy rows written before the columns changed
VACUUM FULL l;
CLUSTER l USING l_grp_id;
SELECT * FROM compare('SELECT * FROM TBL');
-- the registry follows the table through renames
SELECT count(*) FROM ledger.tables WHERE relid = 'l'::regclass AND dropped_at IS NULL;
-- ANALYZE after all this, and the planner's view of it
ANALYZE l;
SELECT reltuples FROM pg_class WHERE oid = 'l'::regclass;
SELECT * FROM l WHERE id = 42;
SELECT * FROM compare('SELECT * FROM TBL WHERE id = 42');
