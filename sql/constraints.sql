--
-- constraints: PRIMARY KEY, UNIQUE (also deferred), CHECK, NOT NULL,
-- exclusion constraints, foreign keys between heap and ledger tables in
-- every direction with their actions, and row and statement triggers with
-- transition tables behave on ledger tables exactly as on heap: same
-- outcomes, same errors, same rows.
--
\set SHOW_CONTEXT never
CREATE SCHEMA constraints;
SET search_path = constraints, public;

-- run(schemas, stmt) runs stmt once per schema, with "@." standing for
-- "<schema>.", each in a subtransaction, and groups the schemas by outcome
-- (rows affected, or SQLSTATE, message and detail).  One line per
-- statement means every table behaved the same.
CREATE FUNCTION run(sch text[], stmt text)
RETURNS TABLE (schemas text, outcome text) LANGUAGE plpgsql AS $$
DECLARE
  s text; n bigint; st text; msg text; det text;
  res text[] := '{}'; outs text[] := '{}';
BEGIN
  FOREACH s IN ARRAY sch LOOP
    BEGIN
      EXECUTE replace(stmt, '@.', s || '.');
      GET DIAGNOSTICS n = ROW_COUNT;
      outs := outs || ('ok, ' || n || ' rows');
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                              det = PG_EXCEPTION_DETAIL;
      outs := outs || (st || ': ' || msg || CASE WHEN det <> '' THEN ' / ' || det ELSE '' END);
    END;
    res := res || s;
  END LOOP;
  RETURN QUERY
    SELECT string_agg(r, ',' ORDER BY i), o
    FROM unnest(res, outs) WITH ORDINALITY AS u(r, o, i)
    GROUP BY o ORDER BY min(i);
END $$;

-- Rows of @.tbl that differ between schemas a and b, as text.
CREATE FUNCTION differ(a text, b text, tbl text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    '(SELECT %L || '': '' || x::text FROM (SELECT t::text FROM %I.%I t EXCEPT ALL SELECT t::text FROM %I.%I t) x(x))'
    ' UNION ALL '
    '(SELECT %L || '': '' || x::text FROM (SELECT t::text FROM %I.%I t EXCEPT ALL SELECT t::text FROM %I.%I t) x(x))',
    'only ' || a, a, tbl, b, tbl, 'only ' || b, b, tbl, a, tbl);
END $$;

-- The journal of a ledger table as (document, version, op), documents
-- numbered in order of creation.
CREATE FUNCTION journal(rel regclass)
RETURNS TABLE (doc bigint, version int, op "char") LANGUAGE sql AS $$
  SELECT dense_rank() OVER (ORDER BY j.doc_id), j.version, j.op
  FROM ledger.journal j JOIN ledger.tables t USING (table_id)
  WHERE t.relid = rel AND t.dropped_at IS NULL
  ORDER BY j.doc_id, j.version
$$;

--
-- PRIMARY KEY, UNIQUE, CHECK, NOT NULL, exclusion
--
CREATE SCHEMA h;
CREATE SCHEMA l;
CREATE TABLE h.items (
  id int PRIMARY KEY,
  code text UNIQUE,
  qty int NOT NULL CHECK (qty >= 0),
  price numeric CONSTRAINT price_positive CHECK (price > 0),
  during int4range,
  CONSTRAINT cheap_or_few CHECK (qty < 1000 OR price < 10),
  CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&)
);
CREATE TABLE l.items (
  id int PRIMARY KEY,
  code text UNIQUE,
  qty int NOT NULL CHECK (qty >= 0),
  price numeric CONSTRAINT price_positive CHECK (price > 0),
  during int4range,
  CONSTRAINT cheap_or_few CHECK (qty < 1000 OR price < 10),
  CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&)
) USING ledger;

SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (1, 'A', 5, 2.5, '[1,5)'), (2, 'B', 0, 100, '[5,9)'), (3, NULL, 7, NULL, NULL), (4, NULL, 8, NULL, NULL)$$);
-- errors, each identical for heap and ledger
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (1, 'Z', 1, 1, NULL)$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (9, 'A', 1, 1, NULL)$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (9, 'C', NULL, 1, NULL)$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (9, 'C', -1, 1, NULL)$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (9, 'C', 1, 0, NULL)$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (9, 'C', 5000, 50, NULL)$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (9, 'C', 1, 1, '[3,4)')$$);
SELECT * FROM run('{h,l}', $$UPDATE @.items SET id = 2 WHERE id = 1$$);
SELECT * FROM run('{h,l}', $$UPDATE @.items SET code = 'B' WHERE id = 1$$);
SELECT * FROM run('{h,l}', $$UPDATE @.items SET qty = qty - 6 WHERE id = 1$$);
SELECT * FROM run('{h,l}', $$UPDATE @.items SET price = -price WHERE id = 2$$);
SELECT * FROM run('{h,l}', $$UPDATE @.items SET during = '[0,2)' WHERE id = 2$$);
SELECT * FROM run('{h,l}', $$UPDATE @.items SET qty = NULL WHERE id = 3$$);
-- NULLs are distinct in a UNIQUE constraint
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (5, NULL, 1, NULL, NULL)$$);
-- the same errors as plain psql shows them
INSERT INTO l.items VALUES (1, 'Z', 1, 1, NULL);
INSERT INTO l.items VALUES (9, 'C', -1, 1, NULL);
UPDATE l.items SET qty = 2000, price = 20 WHERE id = 1;
INSERT INTO l.items (id, code) VALUES (9, 'C');
INSERT INTO l.items VALUES (9, 'C', 1, 1, '[2,3)');
-- successful changes, then the same rows in both tables
SELECT * FROM run('{h,l}', $$UPDATE @.items SET id = id + 10, code = lower(code)$$);
SELECT * FROM run('{h,l}', $$UPDATE @.items SET during = '[100,200)' WHERE id = 11$$);
SELECT * FROM run('{h,l}', $$DELETE FROM @.items WHERE id = 12$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (12, 'b', 1, 1, '[5,9)')$$);
SELECT * FROM differ('h', 'l', 'items');
SELECT * FROM l.items ORDER BY id;
-- ON CONFLICT ON CONSTRAINT, and an exclusion constraint as arbiter
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (20, 'a', 1, 1, NULL) ON CONFLICT ON CONSTRAINT items_code_key DO UPDATE SET qty = EXCLUDED.qty + 100$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (21, 'x', 1, 1, '[150,160)') ON CONFLICT ON CONSTRAINT no_overlap DO NOTHING$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.items VALUES (21, 'x', 1, 1, '[150,160)') ON CONFLICT ON CONSTRAINT no_overlap DO UPDATE SET qty = 0$$);
SELECT * FROM differ('h', 'l', 'items');

-- A deferred UNIQUE constraint is checked at commit, against opened rows.
CREATE TABLE h.seq (pos int UNIQUE DEFERRABLE INITIALLY DEFERRED, v text);
CREATE TABLE l.seq (pos int UNIQUE DEFERRABLE INITIALLY DEFERRED, v text) USING ledger;
INSERT INTO h.seq SELECT i, 'v' || i FROM generate_series(1, 5) i;
INSERT INTO l.seq SELECT i, 'v' || i FROM generate_series(1, 5) i;
-- shifting every position passes through duplicates: fine when deferred
BEGIN;
UPDATE h.seq SET pos = pos + 1;
UPDATE l.seq SET pos = pos + 1;
COMMIT;
-- two rows swap positions in two statements
BEGIN;
UPDATE h.seq SET pos = 3 WHERE v = 'v1';
UPDATE h.seq SET pos = 2 WHERE v = 'v2';
UPDATE l.seq SET pos = 3 WHERE v = 'v1';
UPDATE l.seq SET pos = 2 WHERE v = 'v2';
COMMIT;
-- a duplicate left at commit fails the commit, for both
BEGIN;
INSERT INTO h.seq VALUES (4, 'dup');
COMMIT;
BEGIN;
INSERT INTO l.seq VALUES (4, 'dup');
COMMIT;
SELECT * FROM l.seq ORDER BY pos;
SELECT * FROM differ('h', 'l', 'seq');
SELECT op, count(*) FROM journal('l.seq') GROUP BY op ORDER BY op;

-- WITH CHECK OPTION on a view over the table
CREATE VIEW h.cheap AS SELECT * FROM h.items WHERE price < 10 WITH CHECK OPTION;
CREATE VIEW l.cheap AS SELECT * FROM l.items WHERE price < 10 WITH CHECK OPTION;
SELECT * FROM run('{h,l}', $$INSERT INTO @.cheap VALUES (30, 'v', 1, 5, NULL)$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.cheap VALUES (31, 'w', 1, 50, NULL)$$);
SELECT * FROM run('{h,l}', $$UPDATE @.cheap SET price = 99 WHERE id = 30$$);
SELECT * FROM differ('h', 'l', 'items');

--
-- Foreign keys.  Schema <child><parent>: hh heap -> heap (the reference),
-- lh ledger -> heap, hl heap -> ledger, ll ledger -> ledger.
--
CREATE SCHEMA hh;
CREATE SCHEMA lh;
CREATE SCHEMA hl;
CREATE SCHEMA ll;
CREATE TABLE hh.parent (id int PRIMARY KEY, a int, b int, name text, UNIQUE (a, b));
CREATE TABLE lh.parent (id int PRIMARY KEY, a int, b int, name text, UNIQUE (a, b));
CREATE TABLE hl.parent (id int PRIMARY KEY, a int, b int, name text, UNIQUE (a, b)) USING ledger;
CREATE TABLE ll.parent (id int PRIMARY KEY, a int, b int, name text, UNIQUE (a, b)) USING ledger;
-- children: cascading, restricting, setting NULL / default, composite MATCH FULL
CREATE TABLE hh.cascade (id int PRIMARY KEY, pid int REFERENCES hh.parent ON DELETE CASCADE ON UPDATE CASCADE, note text);
CREATE TABLE lh.cascade (id int PRIMARY KEY, pid int REFERENCES lh.parent ON DELETE CASCADE ON UPDATE CASCADE, note text) USING ledger;
CREATE TABLE hl.cascade (id int PRIMARY KEY, pid int REFERENCES hl.parent ON DELETE CASCADE ON UPDATE CASCADE, note text);
CREATE TABLE ll.cascade (id int PRIMARY KEY, pid int REFERENCES ll.parent ON DELETE CASCADE ON UPDATE CASCADE, note text) USING ledger;
CREATE TABLE hh.restrict (id int, pid int REFERENCES hh.parent ON DELETE RESTRICT, note text);
CREATE TABLE lh.restrict (id int, pid int REFERENCES lh.parent ON DELETE RESTRICT, note text) USING ledger;
CREATE TABLE hl.restrict (id int, pid int REFERENCES hl.parent ON DELETE RESTRICT, note text);
CREATE TABLE ll.restrict (id int, pid int REFERENCES ll.parent ON DELETE RESTRICT, note text) USING ledger;
CREATE TABLE hh.setnull (id int, pid int DEFAULT 4 REFERENCES hh.parent ON DELETE SET NULL ON UPDATE SET DEFAULT, note text);
CREATE TABLE lh.setnull (id int, pid int DEFAULT 4 REFERENCES lh.parent ON DELETE SET NULL ON UPDATE SET DEFAULT, note text) USING ledger;
CREATE TABLE hl.setnull (id int, pid int DEFAULT 4 REFERENCES hl.parent ON DELETE SET NULL ON UPDATE SET DEFAULT, note text);
CREATE TABLE ll.setnull (id int, pid int DEFAULT 4 REFERENCES ll.parent ON DELETE SET NULL ON UPDATE SET DEFAULT, note text) USING ledger;
CREATE TABLE hh.pair (id int, a int, b int, FOREIGN KEY (a, b) REFERENCES hh.parent (a, b) MATCH FULL ON UPDATE CASCADE);
CREATE TABLE lh.pair (id int, a int, b int, FOREIGN KEY (a, b) REFERENCES lh.parent (a, b) MATCH FULL ON UPDATE CASCADE) USING ledger;
CREATE TABLE hl.pair (id int, a int, b int, FOREIGN KEY (a, b) REFERENCES hl.parent (a, b) MATCH FULL ON UPDATE CASCADE);
CREATE TABLE ll.pair (id int, a int, b int, FOREIGN KEY (a, b) REFERENCES ll.parent (a, b) MATCH FULL ON UPDATE CASCADE) USING ledger;

SELECT * FROM run('{hh,lh,hl,ll}', $$INSERT INTO @.parent SELECT i, i, i * 10, 'p' || i FROM generate_series(1, 6) i$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$INSERT INTO @.cascade SELECT i, 1 + i % 3, 'c' || i FROM generate_series(1, 6) i$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$INSERT INTO @.restrict VALUES (1, 4, 'r'), (2, NULL, 'no parent')$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$INSERT INTO @.setnull VALUES (1, 5, 's'), (2, 6, 's'), (3, 4, 's')$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$INSERT INTO @.pair VALUES (1, 2, 20), (2, NULL, NULL)$$);
-- violations from the child side
SELECT * FROM run('{hh,lh,hl,ll}', $$INSERT INTO @.cascade VALUES (99, 99, 'orphan')$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$UPDATE @.cascade SET pid = 42 WHERE id = 1$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$INSERT INTO @.pair VALUES (3, 2, NULL)$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$INSERT INTO @.pair VALUES (3, 2, 30)$$);
-- violations from the parent side
SELECT * FROM run('{hh,lh,hl,ll}', $$DELETE FROM @.parent WHERE id = 4$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$UPDATE @.parent SET a = 7 WHERE id = 3$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$UPDATE @.parent SET id = 40 WHERE id = 4$$);
-- actions: ON UPDATE CASCADE, ON DELETE CASCADE, SET NULL, SET DEFAULT
SELECT * FROM run('{hh,lh,hl,ll}', $$UPDATE @.parent SET id = id + 100 WHERE id IN (1, 2)$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$UPDATE @.parent SET a = 22, b = 220 WHERE id = 102$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$DELETE FROM @.parent WHERE id = 3$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$DELETE FROM @.parent WHERE id = 5$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$UPDATE @.parent SET id = 60 WHERE id = 6$$);
-- the referencing side locks what it references: a parent row that a
-- child still references cannot go, even after the child's own update
SELECT * FROM run('{hh,lh,hl,ll}', $$UPDATE @.restrict SET note = 'touched' WHERE id = 1$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$DELETE FROM @.parent WHERE id = 4$$);
-- every table holds the same rows in all four schemas
SELECT s, t, d FROM unnest('{lh,hl,ll}'::text[]) s,
                    unnest('{parent,cascade,restrict,setnull,pair}'::text[]) t,
                    differ('hh', s, t) d;
SELECT * FROM ll.cascade ORDER BY id;
SELECT * FROM ll.setnull ORDER BY id;
SELECT * FROM ll.pair ORDER BY id;
-- Cascaded changes are journaled like any other: rows 1 and 4 followed
-- parent 2 to 102, rows 3 and 6 parent 1 to 101 (an 'U' each); rows 2 and
-- 5 went with parent 3 (a tombstone each).
SELECT c.id, c.pid, j.version, j.op
FROM ll.cascade c
JOIN ledger.journal j ON j.doc_id = ledger_document_id('ll.cascade', c.ctid)
     AND j.table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'll.cascade'::regclass)
ORDER BY c.id, j.version;
SELECT op, count(*) FROM journal('ll.cascade') GROUP BY op ORDER BY op;
SELECT op, count(*) FROM journal('lh.setnull') GROUP BY op ORDER BY op;
-- the same errors as plain psql shows them
INSERT INTO ll.cascade VALUES (99, 99, 'orphan');
DELETE FROM hl.parent WHERE id = 4;
DELETE FROM lh.parent WHERE id = 4;

-- Deferred foreign keys: the child may come first within a transaction.
CREATE TABLE lh.deferred (id int, pid int REFERENCES lh.parent DEFERRABLE INITIALLY DEFERRED) USING ledger;
CREATE TABLE ll.deferred (id int, pid int REFERENCES ll.parent DEFERRABLE INITIALLY DEFERRED) USING ledger;
BEGIN;
INSERT INTO ll.deferred VALUES (1, 500);
INSERT INTO ll.parent VALUES (500, 50, 500, 'late parent');
INSERT INTO lh.deferred VALUES (1, 500);
INSERT INTO lh.parent VALUES (500, 50, 500, 'late parent');
COMMIT;
BEGIN;
INSERT INTO ll.deferred VALUES (2, 501);
COMMIT;
SELECT * FROM ll.deferred ORDER BY id;

-- Self-referencing ledger table with ON DELETE CASCADE down a tree.
CREATE TABLE ll.tree (id int PRIMARY KEY, up int REFERENCES ll.tree ON DELETE CASCADE, label text) USING ledger;
CREATE TABLE hh.tree (id int PRIMARY KEY, up int REFERENCES hh.tree ON DELETE CASCADE, label text);
SELECT * FROM run('{hh,ll}', $$INSERT INTO @.tree VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 1, 'b'), (4, 2, 'a1'), (5, 4, 'a11'), (6, 3, 'b1')$$);
SELECT * FROM run('{hh,ll}', $$DELETE FROM @.tree WHERE id = 2$$);
SELECT * FROM ll.tree ORDER BY id;
SELECT * FROM differ('hh', 'll', 'tree');
SELECT op, count(*) FROM journal('ll.tree') GROUP BY op ORDER BY op;

-- Adding constraints to tables that hold rows validates the opened rows.
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.restrict ADD CONSTRAINT note_set CHECK (note IS NOT NULL)$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.restrict ADD CONSTRAINT id_small CHECK (id < 2)$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.restrict ALTER COLUMN note SET NOT NULL$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.restrict ALTER COLUMN pid SET NOT NULL$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.setnull ADD FOREIGN KEY (id) REFERENCES @.parent$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.setnull ADD CONSTRAINT later FOREIGN KEY (id) REFERENCES @.parent NOT VALID$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.setnull VALIDATE CONSTRAINT later$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$INSERT INTO @.parent VALUES (2, 2, 2, 'now there')$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.setnull VALIDATE CONSTRAINT later$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.cascade ADD CONSTRAINT pid_positive CHECK (pid > 0) NOT VALID$$);
SELECT * FROM run('{hh,lh,hl,ll}', $$ALTER TABLE @.cascade VALIDATE CONSTRAINT pid_positive$$);

--
-- Triggers: BEFORE and AFTER, row and statement level, transition tables,
-- WHEN conditions and a deferred constraint trigger.  Every firing is
-- logged; the logs of heap and ledger must be the same.
--
CREATE TABLE trig_log (n serial, sch text, trg text, info text);
CREATE FUNCTION log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO constraints.trig_log (sch, trg, info) VALUES (TG_TABLE_SCHEMA, TG_NAME,
    format('%s %s %s old=%s new=%s', TG_WHEN, TG_LEVEL, TG_OP,
           CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN OLD::text END,
           CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN NEW::text END));
  IF TG_WHEN = 'AFTER' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN
    -- a BEFORE DELETE trigger may veto the deletion
    IF OLD.note LIKE 'keep%' THEN RETURN NULL; END IF;
    RETURN OLD;
  END IF;
  -- a BEFORE trigger may change the row, or drop it
  IF NEW.note = 'drop me' THEN RETURN NULL; END IF;
  NEW.note := coalesce(NEW.note, '') || '+' || lower(TG_OP);
  RETURN NEW;
END $$;
CREATE FUNCTION log_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO constraints.trig_log (sch, trg, info)
    VALUES (TG_TABLE_SCHEMA, TG_NAME, format('%s %s %s', TG_WHEN, TG_LEVEL, TG_OP));
  RETURN NULL;
END $$;
CREATE FUNCTION log_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE o text; n text;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    SELECT string_agg(x::text, ' ' ORDER BY x.id) INTO o FROM old_rows x;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT string_agg(x::text, ' ' ORDER BY x.id) INTO n FROM new_rows x;
  END IF;
  INSERT INTO constraints.trig_log (sch, trg, info)
    VALUES (TG_TABLE_SCHEMA, TG_NAME, format('%s old=[%s] new=[%s]', TG_OP, o, n));
  RETURN NULL;
END $$;
CREATE TABLE h.trig (id int PRIMARY KEY, qty int, note text);
CREATE TABLE l.trig (id int PRIMARY KEY, qty int, note text) USING ledger;
DO $$
DECLARE s text;
BEGIN
  FOREACH s IN ARRAY ARRAY['h', 'l'] LOOP
    EXECUTE format('CREATE TRIGGER b_row BEFORE INSERT OR UPDATE OR DELETE ON %I.trig FOR EACH ROW EXECUTE FUNCTION constraints.log_row()', s);
    EXECUTE format('CREATE TRIGGER a_row AFTER INSERT OR UPDATE OR DELETE ON %I.trig FOR EACH ROW EXECUTE FUNCTION constraints.log_row()', s);
    EXECUTE format('CREATE TRIGGER a_row_when AFTER UPDATE ON %I.trig FOR EACH ROW WHEN (OLD.qty IS DISTINCT FROM NEW.qty) EXECUTE FUNCTION constraints.log_row()', s);
    EXECUTE format('CREATE TRIGGER b_stmt BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I.trig FOR EACH STATEMENT EXECUTE FUNCTION constraints.log_stmt()', s);
    EXECUTE format('CREATE TRIGGER a_stmt AFTER INSERT OR UPDATE OR DELETE ON %I.trig FOR EACH STATEMENT EXECUTE FUNCTION constraints.log_stmt()', s);
    EXECUTE format('CREATE TRIGGER t_ins AFTER INSERT ON %I.trig REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION constraints.log_transition()', s);
    EXECUTE format('CREATE TRIGGER t_upd AFTER UPDATE ON %I.trig REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION constraints.log_transition()', s);
    EXECUTE format('CREATE TRIGGER t_del AFTER DELETE ON %I.trig REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION constraints.log_transition()', s);
    EXECUTE format('CREATE CONSTRAINT TRIGGER c_row AFTER INSERT OR UPDATE ON %I.trig DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION constraints.log_row()', s);
  END LOOP;
END $$;
SELECT * FROM run('{h,l}', $$INSERT INTO @.trig VALUES (1, 10, 'one'), (2, 20, NULL), (3, 30, 'keep'), (4, 40, 'drop me')$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.trig VALUES (5, 50, 'five') RETURNING *$$);
SELECT * FROM run('{h,l}', $$UPDATE @.trig SET qty = qty + 1 WHERE id <= 2$$);
SELECT * FROM run('{h,l}', $$UPDATE @.trig SET note = 'same qty' WHERE id = 5$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.trig VALUES (1, 0, 'upsert') ON CONFLICT (id) DO UPDATE SET qty = EXCLUDED.qty$$);
SELECT * FROM run('{h,l}', $$DELETE FROM @.trig WHERE id >= 3$$);
SELECT * FROM run('{h,l}', $$UPDATE @.trig SET qty = 0 WHERE false$$);
-- the firings, in order, for the ledger table
SELECT trg, info FROM trig_log WHERE sch = 'l' ORDER BY n;
-- and heap's are the same, in the same order
SELECT coalesce(h.rn, l.rn) AS rn, h.trg AS heap_trg, h.info AS heap, l.trg AS ledger_trg, l.info AS ledger
FROM (SELECT row_number() OVER (ORDER BY n) rn, trg, info FROM trig_log WHERE sch = 'h') h
FULL JOIN (SELECT row_number() OVER (ORDER BY n) rn, trg, info FROM trig_log WHERE sch = 'l') l
  USING (rn)
WHERE h IS DISTINCT FROM l;
SELECT * FROM differ('h', 'l', 'trig');
SELECT * FROM l.trig ORDER BY id;
-- the journal holds the rows as the BEFORE triggers left them: no revision
-- for the dropped insert, no tombstone for the vetoed delete
SELECT t.id, t.note, j.version, j.op
FROM l.trig t
JOIN ledger.journal j ON j.doc_id = ledger_document_id('l.trig', t.ctid)
     AND j.table_id = (SELECT table_id FROM ledger.tables WHERE relid = 'l.trig'::regclass)
ORDER BY t.id, j.version;
SELECT op, count(*) FROM journal('l.trig') GROUP BY op ORDER BY op;

--
-- Row-level security policies filter and check opened rows.
--
CREATE ROLE regress_ledger_rls IN ROLE ledger_key_user;
CREATE TABLE h.rls (id int, owner name, v text);
CREATE TABLE l.rls (id int, owner name, v text) USING ledger;
GRANT USAGE ON SCHEMA h, l, constraints TO regress_ledger_rls;
DO $$
DECLARE s text;
BEGIN
  FOREACH s IN ARRAY ARRAY['h', 'l'] LOOP
    EXECUTE format('INSERT INTO %I.rls VALUES (1, ''regress_ledger_rls'', ''mine''), (2, ''someone'', ''theirs'')', s);
    EXECUTE format('ALTER TABLE %I.rls ENABLE ROW LEVEL SECURITY', s);
    EXECUTE format('CREATE POLICY own ON %I.rls USING (owner = current_user) WITH CHECK (v <> ''forbidden'')', s);
    EXECUTE format('GRANT ALL ON %I.rls TO regress_ledger_rls', s);
  END LOOP;
END $$;
SET ROLE regress_ledger_rls;
SELECT * FROM run('{h,l}', $$UPDATE @.rls SET v = v || ' (changed)'$$);
SELECT * FROM run('{h,l}', $$UPDATE @.rls SET v = 'forbidden'$$);
SELECT * FROM run('{h,l}', $$DELETE FROM @.rls WHERE id = 2$$);
SELECT * FROM run('{h,l}', $$INSERT INTO @.rls VALUES (3, 'someone', 'smuggled')$$);
SELECT * FROM l.rls ORDER BY id;
RESET ROLE;
SELECT * FROM differ('h', 'l', 'rls');
SELECT * FROM l.rls ORDER BY id;
DROP OWNED BY regress_ledger_rls;
DROP ROLE regress_ledger_rls;
