--
-- types: every common type round-trips through a ledger table exactly as
-- through heap, NULLs included; what is sealed does not depend on the
-- session's client_encoding, TimeZone or DateStyle; rows of any size from a
-- few bytes to 10 MB come back bit for bit; and indexed values, kept in the
-- row in the clear, are limited by the table's toast_tuple_target.
--
\set SHOW_CONTEXT never
CREATE SCHEMA types;
SET search_path = types, public;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très content');
CREATE TYPE pair AS (x int, label text);
CREATE TYPE nest AS (p pair, tags text[], m mood);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN code5 AS varchar(5) CHECK (VALUE ~ '^[A-Z]+$');
CREATE DOMAIN posints AS int[] CHECK (0 < ALL (VALUE));
CREATE DOMAIN pairdom AS pair CHECK ((VALUE).x <> 42);

-- Types with a btree equality, so that EXCEPT can compare whole rows.
CREATE TABLE h (
  id int, i2 int2, i4 int4, i8 int8, num numeric, num_s numeric(40, 20),
  f4 float4, f8 float8, m money, t text, vc varchar(10), ch char(5), nm name,
  c1 "char", by bytea, b boolean, d date, ts timestamp(6), tstz timestamptz,
  tm time, tmtz timetz, iv interval, u uuid, jb jsonb, ia int[], ta text[],
  ia2 int[], fa float8[], comp pair, comps pair[], nst nest, dom posint,
  dcode code5, dints posints, dpair pairdom, e mood, ea mood[], ip inet,
  net cidr, mac macaddr, bits bit(4), vb varbit, r int4range, mr int4multirange,
  tsr tstzrange, tsv tsvector, tq tsquery, o oid, lsn pg_lsn, x8 xid8,
  tid_ tid
);
CREATE TABLE l (LIKE h) USING ledger;

-- Types without a btree equality, compared through their text form.
CREATE TABLE hx (id int, j json, x xml, pt point, bx box, ln line, sg lseg,
                 pth path, pg polygon, ci circle, js jsonpath);
CREATE TABLE lx (LIKE hx) USING ledger;

-- Rows in one table but not the other; must be empty.
CREATE VIEW diff AS
  (SELECT 'only heap' AS side, * FROM (TABLE h EXCEPT ALL TABLE l) a)
  UNION ALL
  (SELECT 'only ledger', * FROM (TABLE l EXCEPT ALL TABLE h) b);
CREATE VIEW diffx AS
  SELECT coalesce(hx.id, lx.id) AS id, hx::text AS heap, lx::text AS ledger
  FROM hx FULL JOIN lx USING (id)
  WHERE hx::text IS DISTINCT FROM lx::text;
-- the same for h and l row by row through the text form, which also tells
-- apart values that compare equal (-0 and 0, 1.0 and 1.00)
CREATE VIEW difftext AS
  SELECT coalesce(h.id, l.id) AS id, h::text AS heap, l::text AS ledger
  FROM h FULL JOIN l USING (id)
  WHERE h::text IS DISTINCT FROM l::text;

-- One row of NULLs, one of ordinary values, rows of edge values.
CREATE TEMP TABLE src (LIKE h);
INSERT INTO src (id) VALUES (1);
INSERT INTO src VALUES (
  2, 12, 1234, 1234567890123, 3.14159, 2.5, 1.5, 2.25, 12.34, 'hello', 'varchar',
  'ab', 'a_name', 'q', '\x00ff10', true, '2024-02-29', '2024-02-29 12:34:56.789',
  '2024-02-29 12:34:56.789+02', '23:59:59.999999', '10:00+05:30',
  '1 year 2 mons -3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": [1, 2.50, {"b": null}], "é": "ü"}', '{1,2,3}', '{"a","b c","d,e","\"q\""}',
  '{{1,2},{3,4}}', '{1.5,-0,NaN}', '(1,one)', ARRAY['(2,two)'::pair, NULL, '(,)'],
  '("(3,three)","{x,y}",happy)', 5, 'ABCDE', '{1,2}', '(7,seven)', 'ok', '{sad,happy}',
  '192.168.1.10/24', '10.0.0.0/8', '08:00:2b:01:02:03', B'1010', B'110', '[1,10)',
  '{[1,3),[5,7)}', '[2024-01-01 00:00+00,2024-02-01 00:00+00)',
  'a fat cat sat on a mat', 'fat & (rat | cat)', 4242, '16/B374D848', '123456789012', '(3,4)');
INSERT INTO src VALUES (
  3, -32768, -2147483648, -9223372036854775808, 'NaN', 0.00000000000000000001,
  '-0', '-0', -92233720368547758.08, '', '', '', '', ' ', '\x', false,
  '4713-01-01 BC', '294276-12-31 23:59:59.999999', '-infinity', '00:00', '00:00+14',
  '-178000000 years', '00000000-0000-0000-0000-000000000000', '[]', '{}', '{}',
  '{{{1}},{{2}}}', '{Infinity,-Infinity}', '(,)', '{}', '(,,)', 1, 'Z', '{}', '(0,)',
  'sad', '{}', '::1', '::/0', '00:00:00:00:00:00', B'0000', B'', 'empty', '{}',
  '(,)', '', '', 0, '0/0', '0', '(0,0)');
INSERT INTO src VALUES (
  4, 32767, 2147483647, 9223372036854775807,
  ('1' || repeat('0', 1000) || '.' || repeat('9', 1000))::numeric,
  12345678901234567890.12345678901234567890, 'Infinity', 'Infinity',
  92233720368547758.07, repeat('xyz', 100) || E'\ttab\nnewline\\', '1234567890',
  'abcde', repeat('n', 63), E'\177', decode(repeat('00ff7f80', 64), 'hex'), NULL,
  'infinity', 'infinity', 'infinity', '24:00', '23:59:59.999999-15:59',
  '178000000 years', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '{"deep": {"deeper": {"deepest": [true, false, null, 1e+30, -0.0]}}}',
  '{NULL,NULL}', '{NULL,"NULL",""}', '[0:1][5:6]={{1,2},{3,4}}', '{5e-324,1.7976931348623157e308}',
  '(2147483647,"with ""quotes"" and , comma")', '{"(1,a)","(2,b)"}',
  '(,"{NULL}",)', 2147483647, NULL, '{2147483647}', '(-1,neg)', 'très content',
  '{"très content",NULL}', '255.255.255.255', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff',
  B'1111', repeat('1', 1000)::varbit, '(,)', '{(,)}', '(,)',
  'unicode:1A ünïcødé:2B', '!ünï', 4294967295, 'FFFFFFFF/FFFFFFFF',
  '18446744073709551615', '(4294967295,65535)');
INSERT INTO src VALUES (
  5, 0, 0, 0, 'Infinity', -99999999999999999999.99999999999999999999, 'NaN', 'NaN',
  0, 'tab	and ünïcödé 日本語 😀', 'ünïcödé日本', '日本', '日本語の名前', 'x', '\x5c00',
  true, '-infinity', '-infinity', '1999-12-31 23:59:59.5-08', '12:00', '12:00-00',
  '0', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '"just a string with \\u0041 and 😀"',
  '{0}', '{"😀"}', '{{NULL,NULL},{NULL,NULL}}', '{NULL,-0,0}', '(-2147483648,"")',
  '{NULL}', NULL, 3, 'QQ', NULL, NULL, 'happy', '{happy,happy,sad}', '0.0.0.0/0',
  '0.0.0.0/0', '12-34-56-78-9a-bc', B'0101', B'1', '(,5]', '{[-10,-5),[0,)}',
  '[infinity,infinity]', 'a:1A b:2B,3C c', '!a', 1, '1/0', '1', '(0,1)');
-- numeric -Infinity, and a numeric with the largest scale numeric allows
INSERT INTO src (id, num, num_s, f8) VALUES
  (6, '-Infinity', 0, 'NaN'), (7, ('0.' || repeat('0', 16382) || '1')::numeric, NULL, 5e-324);

INSERT INTO h SELECT * FROM src;
INSERT INTO l SELECT * FROM src;
SELECT * FROM diff;
SELECT * FROM difftext;
SELECT count(*) FROM l;

-- A few values as the ledger table returns them.
SELECT id, i8, num_s, f4, f8, m, vc, ch, by, tstz, iv FROM l WHERE id IN (2, 3, 5) ORDER BY id;
SELECT id, jb, ia2, comps, nst, dpair, ea, mr FROM l WHERE id IN (2, 4) ORDER BY id;
SELECT id, length(num::text) AS num_digits, scale(num) FROM l WHERE id IN (4, 7) ORDER BY id;
-- -0 stays negative zero; NaN stays NaN
SELECT id, f4, f8, f4::text = '-0' AND f8::text = '-0' AS neg_zero FROM l WHERE id = 3;
SELECT id, num, f4, f8 FROM l WHERE id IN (3, 5, 6) ORDER BY id;
-- NULL row: every column but id is NULL; row 2 has no NULL at all
SELECT id, (SELECT count(*) FROM json_each(to_json(l)) WHERE value::text <> 'null') AS non_nulls
FROM l WHERE id IN (1, 2) ORDER BY id;
SELECT count(*) FILTER (WHERE l IS NOT NULL) AS rows_without_nulls FROM l;
-- values compare equal in SQL
SELECT h.id FROM h JOIN l USING (id)
WHERE NOT (h.jb IS NOT DISTINCT FROM l.jb AND h.comp IS NOT DISTINCT FROM l.comp
           AND h.tsv IS NOT DISTINCT FROM l.tsv AND h.nst IS NOT DISTINCT FROM l.nst);

-- Domain checks fire on ledger tables as on heap, on INSERT and UPDATE.
INSERT INTO h (id, dom) VALUES (100, 0);
INSERT INTO l (id, dom) VALUES (100, 0);
INSERT INTO l (id, dcode) VALUES (100, 'abc');
INSERT INTO l (id, dcode) VALUES (100, 'TOOLONG');
INSERT INTO l (id, dints) VALUES (100, '{1,-1}');
INSERT INTO l (id, dpair) VALUES (100, '(42,x)');
UPDATE l SET dom = -1 WHERE id = 2;
INSERT INTO l (id, e) VALUES (100, 'angry');
INSERT INTO l (id, vc) VALUES (100, 'elevenchars');
INSERT INTO l (id, i2) VALUES (100, 32768);
SELECT count(*) FROM l WHERE id = 100;

-- Update every column of one row to another row's values and back.
UPDATE h SET (i2, i4, i8, num, num_s, f4, f8, m, t, vc, ch, nm, c1, by, b, d, ts, tstz,
              tm, tmtz, iv, u, jb, ia, ta, ia2, fa, comp, comps, nst, dom, dcode, dints,
              dpair, e, ea, ip, net, mac, bits, vb, r, mr, tsr, tsv, tq, o, lsn, x8, tid_)
  = (SELECT i2, i4, i8, num, num_s, f4, f8, m, t, vc, ch, nm, c1, by, b, d, ts, tstz,
            tm, tmtz, iv, u, jb, ia, ta, ia2, fa, comp, comps, nst, dom, dcode, dints,
            dpair, e, ea, ip, net, mac, bits, vb, r, mr, tsr, tsv, tq, o, lsn, x8, tid_
     FROM src WHERE id = 4)
  WHERE id = 1;
UPDATE l SET (i2, i4, i8, num, num_s, f4, f8, m, t, vc, ch, nm, c1, by, b, d, ts, tstz,
              tm, tmtz, iv, u, jb, ia, ta, ia2, fa, comp, comps, nst, dom, dcode, dints,
              dpair, e, ea, ip, net, mac, bits, vb, r, mr, tsr, tsv, tq, o, lsn, x8, tid_)
  = (SELECT i2, i4, i8, num, num_s, f4, f8, m, t, vc, ch, nm, c1, by, b, d, ts, tstz,
            tm, tmtz, iv, u, jb, ia, ta, ia2, fa, comp, comps, nst, dom, dcode, dints,
            dpair, e, ea, ip, net, mac, bits, vb, r, mr, tsr, tsv, tq, o, lsn, x8, tid_
     FROM src WHERE id = 4)
  WHERE id = 1;
SELECT * FROM diff;
SELECT * FROM difftext;
UPDATE h SET i2 = NULL, t = NULL, jb = NULL, comp = NULL, ea = NULL WHERE id = 1;
UPDATE l SET i2 = NULL, t = NULL, jb = NULL, comp = NULL, ea = NULL WHERE id = 1;
SELECT * FROM difftext;

-- Types without equality operators.
INSERT INTO hx VALUES
  (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (2, '{"b": 1,   "a": [1, 2], "b": 2}', '<doc a="1"><é>text &amp; more</é></doc>',
   '(1.5,-2)', '((0,0),(1,1))', '{1,-1,0}', '[(0,0),(1,1)]', '((0,0),(1,1),(2,0))',
   '((0,0),(0,1),(1,1))', '<(0,0),2>', '$.a[*] ? (@ > 1)'),
  (3, '  [ ]  ', '<!-- comment --><a/>', '(NaN,Infinity)', '((-1,-1),(1,1))',
   '{0,1,0}', '[(1e300,1),(2,2)]', '[(0,0),(1,1)]', '((1,1))', '<(1,1),0>', 'strict $'),
  (4, '"ünïcödé 日本"', 'just text, no element', '(-0,0)', '((2,2),(2,2))',
   '{1,0,-5}', '[(-0,0),(0,-0)]', '((1,2))', '((0,0),(2,0),(2,2),(0,2))',
   '<(0,0),1e-10>', 'lax $.x.y');
INSERT INTO lx SELECT * FROM hx;
SELECT * FROM diffx;
SELECT id, j, x, pt, ci FROM lx ORDER BY id;

--
-- Types that change after rows were sealed, without rewriting the table.
-- Sealed rows hold values in the type's binary form, so changes that
-- reinterpret it (composite attributes added, dropped or retyped, an enum
-- label renamed, a domain constraint that nested values may not meet) are
-- refused while a ledger table stores the type.  Changes that keep the
-- binary form (ADD VALUE, RENAME ATTRIBUTE) work, and rows read as on heap.
--
CREATE FUNCTION tdiff(h regclass, l regclass)
RETURNS TABLE (id int, heap text, ledger text) LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT coalesce(h.id, l.id), h::text, l::text FROM %s h FULL JOIN %s l USING (id) '
    'WHERE h::text IS DISTINCT FROM l::text ORDER BY 1', h, l);
END $$;
CREATE TYPE tpair AS (x int, label text);
CREATE TABLE comp_h (id int, c tpair, ca tpair[]);
CREATE TABLE comp_l (LIKE comp_h) USING ledger;
INSERT INTO comp_h VALUES (1, '(1,a)', ARRAY['(2,b)'::tpair]);
INSERT INTO comp_l SELECT * FROM comp_h;
ALTER TYPE tpair ADD ATTRIBUTE z int;
ALTER TYPE tpair DROP ATTRIBUTE x;
ALTER TYPE tpair ALTER ATTRIBUTE x TYPE bigint;
ALTER TYPE tpair RENAME ATTRIBUTE label TO name;
UPDATE comp_h SET ca = ca || c WHERE id = 1;
UPDATE comp_l SET ca = ca || c WHERE id = 1;
SELECT * FROM comp_l ORDER BY id;
SELECT * FROM tdiff('comp_h', 'comp_l');

CREATE TYPE tmood AS ENUM ('low', 'high');
CREATE TABLE enum_h (id int, e tmood, ea tmood[]);
CREATE TABLE enum_l (LIKE enum_h) USING ledger;
INSERT INTO enum_h VALUES (1, 'low', '{low,high}');
INSERT INTO enum_l SELECT * FROM enum_h;
ALTER TYPE tmood RENAME VALUE 'low' TO 'lowest';
ALTER TYPE tmood ADD VALUE 'medium' BEFORE 'high';
INSERT INTO enum_h VALUES (2, 'medium', '{medium}');
INSERT INTO enum_l VALUES (2, 'medium', '{medium}');
UPDATE enum_h SET e = 'high' WHERE id = 1;
UPDATE enum_l SET e = 'high' WHERE id = 1;
SELECT * FROM enum_l ORDER BY id;
SELECT * FROM tdiff('enum_h', 'enum_l');

-- A domain used directly travels as its base type, so constraints may be
-- added; one used inside arrays or composites of a ledger table may not.
CREATE DOMAIN tdom AS int;
CREATE TABLE dom_l (id int, d tdom) USING ledger;
INSERT INTO dom_l VALUES (1, 1);
ALTER DOMAIN tdom ADD CONSTRAINT tdom_pos CHECK (VALUE > 0);
CREATE DOMAIN tdom2 AS int;
CREATE TYPE tdcomp AS (v tdom2);
CREATE TABLE dom2_l (id int, da tdom2[], dc tdcomp) USING ledger;
INSERT INTO dom2_l VALUES (1, '{-1,1}', '(-1)');
ALTER DOMAIN tdom2 ADD CONSTRAINT tdom2_pos CHECK (VALUE > 0) NOT VALID;
SELECT * FROM dom2_l ORDER BY id;

-- The same changes on types that only heap tables use are not our business.
CREATE TYPE tpair_h AS (x int, label text);
CREATE TABLE comp_only_h (id int, c tpair_h);
ALTER TYPE tpair_h ADD ATTRIBUTE z int;
CREATE TYPE tmood_h AS ENUM ('low', 'high');
CREATE TABLE enum_only_h (id int, e tmood_h);
ALTER TYPE tmood_h RENAME VALUE 'low' TO 'lowest';

--
-- client_encoding: what is sealed is the row in the database encoding.
-- Rows written under LATIN1, SJIS and UTF8 read back the same under any
-- other, on heap and ledger alike.
--
CREATE TABLE ench (id int, t text, v varchar(20), c char(4), n name, j jsonb,
                   js json, a text[], e mood, x xml, comp pair);
CREATE TABLE encl (LIKE ench) USING ledger;
SET client_encoding = 'LATIN1';
INSERT INTO ench VALUES (1, U&'caf\00E9 cr\00E8me br\00FBl\00E9e', U&'\00E0 la fran\00E7aise',
  U&'\00E9t\00E9', U&'na\00EFve', json_build_object(U&'cl\00E9', U&'valeur \00E9'),
  json_build_object(U&'cl\00E9', U&'\00FC'), ARRAY[U&'\00E4', U&'\00F6'], U&'tr\00E8s content',
  xmlelement(name "r", U&'\00E9'), ROW(1, U&'\00E9')::pair);
INSERT INTO encl VALUES (1, U&'caf\00E9 cr\00E8me br\00FBl\00E9e', U&'\00E0 la fran\00E7aise',
  U&'\00E9t\00E9', U&'na\00EFve', json_build_object(U&'cl\00E9', U&'valeur \00E9'),
  json_build_object(U&'cl\00E9', U&'\00FC'), ARRAY[U&'\00E4', U&'\00F6'], U&'tr\00E8s content',
  xmlelement(name "r", U&'\00E9'), ROW(1, U&'\00E9')::pair);
SET client_encoding = 'SJIS';
INSERT INTO ench VALUES (2, U&'\65E5\672C\8A9E', U&'\30AB\30BF\30AB\30CA', U&'\6F22\5B57', U&'\540D\524D',
  json_build_object(U&'\30AD\30FC', 1), json_build_object('k', U&'\5024'), ARRAY[U&'\4E00'], 'ok',
  xmlelement(name "r", U&'\65E5'), ROW(2, U&'\65E5')::pair);
INSERT INTO encl VALUES (2, U&'\65E5\672C\8A9E', U&'\30AB\30BF\30AB\30CA', U&'\6F22\5B57', U&'\540D\524D',
  json_build_object(U&'\30AD\30FC', 1), json_build_object('k', U&'\5024'), ARRAY[U&'\4E00'], 'ok',
  xmlelement(name "r", U&'\65E5'), ROW(2, U&'\65E5')::pair);
RESET client_encoding;
INSERT INTO ench VALUES (3, '€ 😀 日本 é', '€', 'ü', 'ñ', '{"€": "😀"}', '{"😀": "€"}', '{€,😀}',
  'très content', '<e>€</e>', '(3,€)');
INSERT INTO encl VALUES (3, '€ 😀 日本 é', '€', 'ü', 'ñ', '{"€": "😀"}', '{"😀": "€"}', '{€,😀}',
  'très content', '<e>€</e>', '(3,€)');
-- read back in UTF8: identical to heap
SELECT coalesce(h.id, l.id) AS id, h::text AS heap, l::text AS ledger
FROM ench h FULL JOIN encl l USING (id) WHERE h::text IS DISTINCT FROM l::text;
SELECT * FROM encl ORDER BY id;
-- read back in LATIN1 and SJIS: the bytes (as UTF8) are those of heap
SET client_encoding = 'LATIN1';
SELECT id, encode(convert_to(t, 'UTF8'), 'hex') AS t_utf8,
       encode(convert_to(l::text, 'UTF8'), 'hex') =
       (SELECT encode(convert_to(h::text, 'UTF8'), 'hex') FROM ench h WHERE h.id = l.id) AS same_row
FROM encl l ORDER BY id;
-- a character LATIN1 cannot show fails the same way for both tables
SELECT t FROM ench WHERE id = 3;
SELECT t FROM encl WHERE id = 3;
-- updates under LATIN1 keep the other columns intact
UPDATE ench SET v = U&'\00E9crit' WHERE id IN (1, 2, 3);
UPDATE encl SET v = U&'\00E9crit' WHERE id IN (1, 2, 3);
SET client_encoding = 'SJIS';
SELECT id, md5(l::text) = (SELECT md5(h::text) FROM ench h WHERE h.id = l.id) AS same_row
FROM encl l ORDER BY id;
RESET client_encoding;
SELECT coalesce(h.id, l.id) AS id, h::text AS heap, l::text AS ledger
FROM ench h FULL JOIN encl l USING (id) WHERE h::text IS DISTINCT FROM l::text;
SELECT id, v, t FROM encl ORDER BY id;

--
-- TimeZone, DateStyle, IntervalStyle and extra_float_digits
-- change only how values print, never what is sealed.
--
CREATE TABLE seth (id int, tstz timestamptz, ts timestamp, d date, iv interval, f8 float8, m money);
CREATE TABLE setl (LIKE seth) USING ledger;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'iso_8601';
SET extra_float_digits = -10;
INSERT INTO seth VALUES (1, '2024-03-10 02:30:00', '01/02/2024 03:04:05', '01/02/2024', 'P1Y2M3DT4H5M6S', 1/3::float8, 10.5);
INSERT INTO setl VALUES (1, '2024-03-10 02:30:00', '01/02/2024 03:04:05', '01/02/2024', 'P1Y2M3DT4H5M6S', 1/3::float8, 10.5);
RESET TimeZone;
RESET DateStyle;
RESET IntervalStyle;
RESET extra_float_digits;
INSERT INTO seth VALUES (2, '2024-03-10 02:30:00', '2024-01-02 03:04:05', '2024-01-02', '1 year', 2/3::float8, 20.25);
INSERT INTO setl VALUES (2, '2024-03-10 02:30:00', '2024-01-02 03:04:05', '2024-01-02', '1 year', 2/3::float8, 20.25);
SELECT * FROM setl ORDER BY id;
SELECT coalesce(h.id, l.id) AS id FROM seth h FULL JOIN setl l USING (id)
WHERE h::text IS DISTINCT FROM l::text;
SET TimeZone = 'UTC';
SELECT id, tstz FROM setl ORDER BY id;
RESET TimeZone;

--
-- Rows of every size: a few bytes, around the point where the sealed row
-- no longer fits in the table's page and only a reference stays inline,
-- and up to 10 MB.  md5 of each value must match heap's.
--
CREATE TABLE bigh (id int, t text, b bytea);
CREATE TABLE bigl (LIKE bigh) USING ledger;
CREATE FUNCTION noise(n int) RETURNS text LANGUAGE sql AS $$
  SELECT left(string_agg(md5(i::text), ''), n) FROM generate_series(0, n / 32) i
$$;
INSERT INTO bigh
  SELECT n, noise(n), decode(noise(2 * n), 'hex')
  FROM (VALUES (0), (1), (7), (100), (1000), (1800), (1900), (1950), (1960),
               (1970), (1980), (1990), (2000), (2010), (2020), (2030), (2040), (2100),
               (4000), (8000), (8200), (100000), (1000000)) v(n);
-- about 5 MB of text and 5 MB of bytea in one row, 10 MB of text in another
INSERT INTO bigh VALUES (5000000, noise(5000000), decode(noise(10000000), 'hex')),
                        (10000000, noise(10000000), NULL);
-- and, as a compressible pattern, every byte value many times
INSERT INTO bigh VALUES (-1, repeat('abcdefgh', 100000),
                         (SELECT string_agg(decode(lpad(to_hex(i % 256), 2, '0'), 'hex'), ''::bytea)
                          FROM generate_series(0, 255999) i));
INSERT INTO bigl SELECT * FROM bigh;
SELECT h.id, length(l.t) AS len_t, length(l.b) AS len_b,
       md5(h.t) IS NOT DISTINCT FROM md5(l.t) AS same_t,
       md5(h.b) IS NOT DISTINCT FROM md5(l.b) AS same_b
FROM bigh h FULL JOIN bigl l USING (id) ORDER BY 1;
-- update a big row and a small one, in both directions across the boundary
UPDATE bigh SET t = t || 'x' WHERE id IN (10000000, 2000);
UPDATE bigl SET t = t || 'x' WHERE id IN (10000000, 2000);
UPDATE bigh SET t = 'small now', b = NULL WHERE id = 1000000;
UPDATE bigl SET t = 'small now', b = NULL WHERE id = 1000000;
UPDATE bigh SET t = noise(3000) WHERE id = 1;
UPDATE bigl SET t = noise(3000) WHERE id = 1;
DELETE FROM bigh WHERE id = 5000000;
DELETE FROM bigl WHERE id = 5000000;
SELECT count(*) AS rows, count(*) FILTER (WHERE h.t IS DISTINCT FROM l.t OR h.b IS DISTINCT FROM l.b) AS differing
FROM bigh h FULL JOIN bigl l USING (id);
SELECT id, length(t), left(t, 12) FROM bigl WHERE id IN (1, 2000, 1000000) ORDER BY id;
-- the journal holds one sealed revision per version, big ones included
SELECT j.op, count(*), max(length(j.payload)) > 10000000 AS has_10mb
FROM ledger.journal j JOIN ledger.tables t USING (table_id)
WHERE t.relid = 'bigl'::regclass GROUP BY j.op ORDER BY j.op;
-- the widest table PostgreSQL allows, 1600 columns, NULLs in between
DO $$
BEGIN
  EXECUTE 'CREATE TABLE wideh (' ||
    (SELECT string_agg('c' || i || ' int', ', ') FROM generate_series(1, 1600) i) || ')';
END $$;
CREATE TABLE widel (LIKE wideh) USING ledger;
INSERT INTO wideh (c1, c8, c9, c800, c1600) VALUES (1, 8, 9, 800, 1600);
INSERT INTO wideh SELECT * FROM json_populate_record(NULL::wideh,
  (SELECT json_object_agg('c' || i, i * 2) FROM generate_series(1, 1600) i));
INSERT INTO widel SELECT * FROM wideh;
ALTER TABLE wideh DROP COLUMN c9;
ALTER TABLE widel DROP COLUMN c9;
UPDATE wideh SET c1600 = -c1600, c2 = 0;
UPDATE widel SET c1600 = -c1600, c2 = 0;
SELECT count(*) AS rows, count(*) FILTER (WHERE h::text IS DISTINCT FROM l::text) AS differing
FROM wideh h FULL JOIN widel l USING (c1);
SELECT c1, c2, c8, c800, c1599, c1600 FROM widel ORDER BY c1;
-- the same data in a table with a lower toast_tuple_target
CREATE TABLE bigl2 (LIKE bigh) USING ledger WITH (toast_tuple_target = 128);
INSERT INTO bigl2 SELECT * FROM bigh WHERE id < 100000;
SELECT count(*) AS differing FROM bigh h JOIN bigl2 l USING (id)
WHERE h.t IS DISTINCT FROM l.t OR h.b IS DISTINCT FROM l.b;

--
-- Indexed values stay in the row itself, so they are limited by the
-- table's toast_tuple_target (2032 bytes by default); heap would accept
-- such a row.  Raising toast_tuple_target allows longer values.
--
CREATE TABLE longkey (id int, t text) USING ledger;
CREATE INDEX ON longkey (t);
INSERT INTO longkey VALUES (1, repeat('x', 1900));
INSERT INTO longkey VALUES (2, repeat('x', 2100));
ALTER TABLE longkey SET (toast_tuple_target = 4000);
INSERT INTO longkey VALUES (2, repeat('x', 2100));
SELECT id, length(t) FROM longkey ORDER BY id;
-- a long value in a sealed column is fine
CREATE TABLE longval (id int PRIMARY KEY, t text) USING ledger;
INSERT INTO longval VALUES (1, repeat('y', 100000));
SELECT id, length(t) FROM longval;

-- Final state.
SELECT * FROM diff;
SELECT * FROM difftext;
SELECT * FROM diffx;
