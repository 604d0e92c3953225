--
-- plainset: indexes may only use columns that every row holds in the clear
-- (the table's plaintext set, ledger.tables.plainset).  A column joins the
-- set when the first index on it is built: on an empty table at once, on a
-- table with rows by re-sealing every row under an exclusive lock (CREATE
-- INDEX, ADD CONSTRAINT, partitions), which CREATE INDEX CONCURRENTLY cannot
-- do, so it is refused there without leaving an invalid index behind.
-- Whole-row indexes are refused.  The set never shrinks.  ANALYZE keeps no
-- statistics on sealed columns.
--
\set SHOW_CONTEXT never
CREATE SCHEMA plainset;
SET search_path = plainset, public;

-- The plaintext set of a ledger table, as column names.
CREATE FUNCTION plainset(rel regclass) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce((SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum)
                   FROM pg_attribute a
                   WHERE a.attrelid = rel AND a.attnum = ANY (t.plainset)), '(none)')
  FROM ledger.tables t WHERE t.relid = rel AND t.dropped_at IS NULL
$$;
-- The indexes of a table, with their validity.
CREATE FUNCTION indexes(rel regclass)
RETURNS TABLE (index_name name, valid boolean, ready boolean) LANGUAGE sql AS $$
  SELECT c.relname, i.indisvalid, i.indisready
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  WHERE i.indrelid = rel ORDER BY c.relname
$$;

--
-- A new table starts with an empty set; constraints of CREATE TABLE put
-- their columns into it.
--
CREATE TABLE bare (a int, b text) USING ledger;
SELECT plainset('bare');
CREATE TABLE keyed (id int PRIMARY KEY, code text UNIQUE, a int, b text, c text,
                    d int, e jsonb, f text, g text) USING ledger;
SELECT plainset('keyed');

--
-- On an empty table every kind of index puts what it uses into the set:
-- key columns, INCLUDE columns, expression and predicate columns.
--
CREATE INDEX keyed_a ON keyed (a);
SELECT plainset('keyed');
CREATE INDEX keyed_b_incl ON keyed (id) INCLUDE (b);
SELECT plainset('keyed');
CREATE INDEX keyed_e_tags ON keyed USING gin ((e -> 'tags'));
SELECT plainset('keyed');
CREATE INDEX keyed_partial ON keyed (id) WHERE c IS NOT NULL;
SELECT plainset('keyed');
SELECT * FROM indexes('keyed');

--
-- Rows are sealed but keep the plaintext set in the clear: a marker in a
-- plaintext column is on the page, one in a sealed column is not.
--
INSERT INTO keyed VALUES (1, 'K1', 10, 'PLAIN-MARKER', 'c1', 100, '{"tags": ["x"]}', 'SEALED-MARKER', NULL),
                         (2, 'K2', 20, 'b2', NULL, 200, '{"tags": ["y"]}', 'f2', NULL),
                         (3, 'K3', 30, 'b3', 'c3', NULL, NULL, NULL, NULL);
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public;
RESET client_min_messages;
CHECKPOINT;
SELECT position('PLAIN-MARKER'::bytea IN get_raw_page('plainset.keyed', 0)) > 0 AS plain_marker_on_page,
       position('SEALED-MARKER'::bytea IN get_raw_page('plainset.keyed', 0)) > 0 AS sealed_marker_on_page;

--
-- An index on columns that rows hold sealed re-seals the table first:
-- every row keeps its sealed payload, document id and version (no new
-- revision), and from then on holds those columns in the clear.
--
CREATE TEMP TABLE before_reseal AS
  SELECT id, ledger_document_id('keyed', ctid) AS doc, ledger_document_version('keyed', ctid) AS version
  FROM keyed;
SELECT count(*) AS revisions_before FROM ledger.journal
WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'keyed'::regclass) \gset
-- a re-seal that rolls back leaves the set as it was
BEGIN;
CREATE INDEX keyed_d ON keyed (d);
SELECT plainset('keyed');
ROLLBACK;
SELECT plainset('keyed');
CREATE INDEX keyed_d ON keyed (d);
SELECT plainset('keyed');
-- through an expression, a predicate, an INCLUDE column, another method
CREATE INDEX keyed_f_lower ON keyed (lower(f));
CREATE INDEX keyed_a_where ON keyed (a) WHERE g IS NOT NULL;
ALTER TABLE keyed ADD CONSTRAINT keyed_d_key UNIQUE (d) INCLUDE (code);
CREATE INDEX keyed_d_brin ON keyed USING brin (d);
SELECT plainset('keyed');
SELECT * FROM indexes('keyed');
-- the rows are the same documents at the same versions, and the journal
-- got nothing new
SELECT count(*) AS changed_rows
FROM keyed JOIN before_reseal b USING (id)
WHERE ledger_document_id('keyed', keyed.ctid) <> b.doc
   OR ledger_document_version('keyed', keyed.ctid) <> b.version;
SELECT count(*) - :revisions_before AS new_revisions FROM ledger.journal
WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'keyed'::regclass);
-- what was sealed in f is now on the page in the clear
CHECKPOINT;
SELECT position('SEALED-MARKER'::bytea IN get_raw_page('plainset.keyed', 0)) > 0 AS marker_on_page_now;
-- and the new indexes answer queries
SET enable_seqscan = off;
SELECT id, d FROM keyed WHERE d >= 100 ORDER BY d;
SELECT id, f FROM keyed WHERE lower(f) = 'sealed-marker';
RESET enable_seqscan;
SELECT id, code, a, b, c, d, e, f FROM keyed ORDER BY id;

--
-- CREATE INDEX CONCURRENTLY cannot take the lock that re-sealing needs:
-- on a table with rows it is refused before it starts, even for a column
-- that holds only NULLs, so that no invalid index is left behind.  On an
-- empty table it simply grows the set.
--
ALTER TABLE keyed ADD COLUMN h int;
CREATE INDEX CONCURRENTLY keyed_b_conc ON keyed (b, c);
CREATE INDEX CONCURRENTLY keyed_h_conc ON keyed (h);
CREATE INDEX CONCURRENTLY keyed_expr_conc ON keyed (lower(c || h::text));
CREATE UNIQUE INDEX CONCURRENTLY keyed_partial_conc ON keyed (a) WHERE h > 0;
SELECT * FROM indexes('keyed');
SELECT plainset('keyed');
CREATE TABLE empty_conc (a int, b text) USING ledger;
CREATE INDEX CONCURRENTLY empty_conc_b ON empty_conc (b);
SELECT plainset('empty_conc');
SELECT * FROM indexes('empty_conc');

--
-- Rows written before ADD COLUMN (with and without a default) are re-sealed
-- like any other.
--
ALTER TABLE keyed ADD COLUMN m int DEFAULT 7;
CREATE INDEX keyed_h ON keyed (h);
CREATE INDEX keyed_m ON keyed (m);
SELECT plainset('keyed');
UPDATE keyed SET h = id * 1000 WHERE id <> 2;
SET enable_seqscan = off;
SELECT id, h, m FROM keyed WHERE h > 0 ORDER BY h;
SELECT id, h, m FROM keyed WHERE m = 7 ORDER BY id;
RESET enable_seqscan;

--
-- Whole-row references are refused even on an empty table; CONCURRENTLY
-- leaves no invalid index behind.
--
CREATE TABLE wr (a int, b text) USING ledger;
CREATE INDEX ON wr ((wr));
CREATE INDEX ON wr (a) WHERE wr IS NOT NULL;
CREATE INDEX CONCURRENTLY ON wr ((wr));
SELECT * FROM indexes('wr');
SELECT plainset('wr');

--
-- Mistakes in CREATE INDEX CONCURRENTLY get heap's errors.
--
CREATE TABLE cic_h (a int, b text);
CREATE INDEX CONCURRENTLY ON cic_h (nosuch);
CREATE INDEX CONCURRENTLY ON cic_h (ctid);
CREATE INDEX CONCURRENTLY ON cic_h ((nosuch + 1));
CREATE INDEX CONCURRENTLY ON wr (nosuch);
CREATE INDEX CONCURRENTLY ON wr (ctid);
CREATE INDEX CONCURRENTLY ON wr ((nosuch + 1));
CREATE INDEX CONCURRENTLY ON nosuch_table (a);
SELECT * FROM indexes('wr');
SELECT plainset('wr');

--
-- DROP INDEX never shrinks the set: the columns stay in the clear, so the
-- table need not be re-sealed for a new index on them, and CONCURRENTLY
-- works.
--
SELECT plainset('keyed');
DROP INDEX keyed_a;
DROP INDEX keyed_e_tags;
DROP INDEX keyed_h;
SELECT plainset('keyed');
UPDATE keyed SET a = a + 1, e = '{"tags": ["z"]}' WHERE id = 3;
INSERT INTO keyed (id, code, a, e, h) VALUES (4, 'K4', 40, '{"tags": ["x", "z"]}', 4000);
CREATE INDEX CONCURRENTLY keyed_a_again ON keyed (a);
CREATE INDEX CONCURRENTLY keyed_e_again ON keyed USING gin ((e -> 'tags'));
CREATE INDEX CONCURRENTLY keyed_h_again ON keyed (h DESC);
SELECT * FROM indexes('keyed');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM keyed WHERE e -> 'tags' ? 'z';
SELECT id FROM keyed WHERE e -> 'tags' ? 'z' ORDER BY id;
SELECT id, a FROM keyed WHERE a > 15 ORDER BY a;
SELECT id, h FROM keyed WHERE h > 1000 ORDER BY h DESC;
RESET enable_seqscan;
-- REINDEX rebuilds from the opened rows, plainly and concurrently
REINDEX TABLE keyed;
REINDEX INDEX CONCURRENTLY keyed_a_again;
REINDEX TABLE CONCURRENTLY keyed;
SELECT * FROM indexes('keyed');
SELECT plainset('keyed');

--
-- Partitions: an index on a partitioned parent is built on each partition,
-- re-sealing those whose rows hold its columns sealed.
--
CREATE TABLE parted (k int, v text, w int) PARTITION BY RANGE (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100) USING ledger;
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200) USING ledger;
CREATE INDEX ON parted (k);
SELECT plainset('parted_1'), plainset('parted_2');
INSERT INTO parted VALUES (1, 'one', 1), (150, NULL, NULL);
CREATE INDEX ON parted (w);
-- a partition created later gets the parent's indexes at CREATE TABLE time
CREATE INDEX ON ONLY parted (v);
CREATE TABLE parted_3 PARTITION OF parted FOR VALUES FROM (200) TO (300) USING ledger;
SELECT plainset('parted_1'), plainset('parted_2'), plainset('parted_3');
INSERT INTO parted VALUES (250, 'three', 3);
SET enable_seqscan = off;
SELECT * FROM parted WHERE w > 0 ORDER BY k;
RESET enable_seqscan;

--
-- Statistics: ANALYZE collects them for plaintext columns only, unless
-- ledger.analyze_sealed_columns was on when the column was created.
--
CREATE TABLE stats (id int PRIMARY KEY, secret text, amount int, note text) USING ledger;
INSERT INTO stats SELECT i, 'secret-' || (i % 5), i % 7, 'n' || i FROM generate_series(1, 500) i;
-- a column added later is sealed as well
ALTER TABLE stats ADD COLUMN added text;
UPDATE stats SET added = 'added-' || (id % 3);
ANALYZE stats;
SELECT attname, null_frac, n_distinct FROM pg_stats
WHERE schemaname = 'plainset' AND tablename = 'stats' ORDER BY attname;
SELECT attname, attstattarget FROM pg_attribute
WHERE attrelid = 'stats'::regclass AND attnum > 0 ORDER BY attnum;
-- extended statistics do not leak sealed values either
CREATE STATISTICS stats_ext (mcv, ndistinct) ON secret, amount FROM stats;
CREATE STATISTICS stats_expr ON (upper(secret)), (amount + 1) FROM stats;
SET client_min_messages = error;  -- "statistics object could not be computed"
ANALYZE stats;
RESET client_min_messages;
SELECT s.stxname, d.stxdmcv IS NOT NULL AS has_mcv, d.stxdexpr IS NOT NULL AS has_expr_stats
FROM pg_statistic_ext s LEFT JOIN pg_statistic_ext_data d ON d.stxoid = s.oid
WHERE s.stxrelid = 'stats'::regclass ORDER BY s.stxname;
SELECT count(*) AS sealed_values_in_ext_stats FROM pg_stats_ext_exprs
WHERE tablename = 'stats' AND most_common_vals::text LIKE '%SECRET%';
-- with the setting on, new tables and columns get statistics
SET ledger.analyze_sealed_columns = on;
CREATE TABLE stats_on (id int, secret text) USING ledger;
INSERT INTO stats_on SELECT i, 'v' || (i % 3) FROM generate_series(1, 100) i;
ANALYZE stats_on;
SELECT attname, n_distinct FROM pg_stats
WHERE schemaname = 'plainset' AND tablename = 'stats_on' ORDER BY attname;
RESET ledger.analyze_sealed_columns;
-- turning it off later changes nothing for existing columns; new ones are sealed
ALTER TABLE stats_on ADD COLUMN later text;
UPDATE stats_on SET later = 'l';
ANALYZE stats_on;
SELECT attname FROM pg_stats
WHERE schemaname = 'plainset' AND tablename = 'stats_on' ORDER BY attname;
-- an index puts a column into the set and gives it statistics
CREATE TABLE stats_idx (id int, k text, s text) USING ledger;
CREATE INDEX ON stats_idx (k);
INSERT INTO stats_idx SELECT i, 'k' || (i % 4), 's' || i FROM generate_series(1, 100) i;
ANALYZE stats_idx;
SELECT attname FROM pg_stats
WHERE schemaname = 'plainset' AND tablename = 'stats_idx' ORDER BY attname;
