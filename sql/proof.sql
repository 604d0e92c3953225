--
-- proof: inclusion proofs lead from a revision to a digest, consistency
-- proofs from an older digest to a newer one, and ledger_verify_proof()
-- checks either from nothing but its arguments.  Malformed proofs are
-- errors, wrong ones are false, and no mutation of a proof passes.
--
\set SHOW_CONTEXT never
\set VERBOSITY terse
CREATE SCHEMA proof;
SET search_path = proof, public;

CREATE TABLE acct (id int PRIMARY KEY, owner text, balance numeric) USING ledger;
INSERT INTO acct SELECT g, 'owner ' || g, g FROM generate_series(1, 11) g;
UPDATE acct SET balance = 0 WHERE id <= 5;
SELECT digest AS d1 FROM ledger_digest() \gset
INSERT INTO acct VALUES (100, 'late', 1);
SELECT ledger_digest() IS NOT NULL AS sealed;
DELETE FROM acct WHERE id = 7;
SELECT digest AS d2 FROM ledger_digest() \gset
SELECT ledger_document_id('acct', ctid) AS doc2 FROM acct WHERE id = 2 \gset
SELECT ledger_document_id('acct', ctid) AS doc100 FROM acct WHERE id = 100 \gset
SELECT doc_id AS doc7 FROM ledger_history('acct') WHERE operation = 'DELETE' \gset

-- Every committed revision of the table has a proof that checks.
SELECT count(*) AS revisions,
       bool_and(ledger_verify_proof(ledger_proof('acct', doc_id, version, :'d2'), :'d2')) AS all_check
FROM ledger_history('acct');
-- The proof names the revision, its transaction and block, and the digest.
SELECT ledger_proof('acct', :doc2, 1, :'d2') AS p \gset
SELECT (:'p'::jsonb) #>> '{revision,operation}' AS op,
       (:'p'::jsonb) #>> '{revision,version}' AS version,
       (:'p'::jsonb) -> 'digest' = :'d2'::jsonb AS names_digest,
       ((:'p'::jsonb) #>> '{tree,size}')::bigint = (:'d2'::jsonb ->> 'block')::bigint + 1
         AS tree_of_digest,
       (SELECT bool_and(s ->> 'side' IN ('left', 'right'))
        FROM jsonb_array_elements((:'p'::jsonb) #> '{transaction,path}') s) AS sides;
-- A proof of a deletion has no data hash.
SELECT (ledger_proof('acct', :doc7, 1, :'d2')) #> '{revision,data_hash}' AS tombstone_hash;
-- Against an older digest, a revision it covers proves; one it does not
-- cover is refused.
SELECT ledger_verify_proof(ledger_proof('acct', :doc2, 1, :'d1'), :'d1') AS old_digest_proof;
SELECT ledger_proof('acct', :doc100, 0, :'d1');
-- A proof for one digest does not check against another.
SELECT ledger_verify_proof(:'p', :'d1') AS wrong_digest;

-- Consistency: the newer digest extends the older one.
SELECT ledger_consistency_proof(:'d1', :'d2') AS c \gset
SELECT ledger_verify_proof(:'c', :'d2') AS consistent,
       ledger_verify_proof(:'c', :'d2', :'d1') AS from_kept_digest;
SELECT ledger_verify_proof(:'c', :'d2', :'d2') AS from_other_digest;
SELECT ledger_consistency_proof(:'d2', :'d1');
SELECT ledger_verify_proof(ledger_consistency_proof(:'d1', :'d1'), :'d1') AS to_itself,
       jsonb_array_length(ledger_consistency_proof(:'d1', :'d1') -> 'path') AS empty_path;

-- Proofs grow with the logarithm of the history, not with its length:
-- 40 more blocks, one per transaction.  A revision of an early block
-- proves against the newest digest in at most ceil(log2(blocks)) tree
-- steps, and consistency proofs check between every pair of the 41
-- digests (sizes across several powers of two), in at most one step more.
CREATE TABLE digests (n int, d jsonb);
INSERT INTO digests VALUES (0, :'d2');
\set ECHO none
SELECT format('INSERT INTO acct VALUES (%s, %L, 1)', 1000 + g, 'block ' || g),
       format('INSERT INTO digests SELECT %s, digest FROM ledger_digest()', g)
FROM generate_series(1, 40) g \gexec
\set ECHO all
SELECT d AS d3 FROM digests WHERE n = 40 \gset
SELECT ledger_proof('acct', :doc2, 1, :'d3') AS p3 \gset
SELECT ledger_verify_proof(:'p3', :'d3') AS early_revision_proves,
       jsonb_array_length((:'p3'::jsonb) #> '{tree,path}')
         <= ceil(log(2, (:'d3'::jsonb ->> 'block')::numeric + 1)) AS logarithmic_path;
SET client_min_messages = warning;
SELECT count(*) AS pairs,
       bool_and(ledger_verify_proof(c, b.d, a.d)) AS all_consistent,
       bool_and(jsonb_array_length(c -> 'path')
                <= ceil(log(2, (b.d ->> 'block')::numeric + 1)) + 1) AS logarithmic_paths,
       bool_and(a.n = b.n OR NOT ledger_verify_proof(c, a.d)) AS not_for_the_old_digest,
       bool_and(a.n = b.n OR NOT ledger_verify_proof(c, b.d, b.d)) AS not_from_the_new_digest
FROM digests a JOIN digests b ON a.n <= b.n,
     LATERAL ledger_consistency_proof(a.d, b.d) c;
RESET client_min_messages;
SELECT blocks > 40 AS tree_verifies FROM ledger_verify(:'d3'::jsonb);
-- A digest whose root was changed is not this ledger's.
SELECT ledger_consistency_proof(:'d1', jsonb_set(:'d3', '{root}', to_jsonb(repeat('0', 64))));

-- The extension's own queries run with a pinned search path: an operator
-- that a caller puts first on the path never runs with the rights of the
-- extension's owner.
CREATE SCHEMA evil;
CREATE FUNCTION evil.int8eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql
  AS $$ BEGIN RAISE EXCEPTION 'evil operator ran as %', current_user; END $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8eq);
SET search_path = evil, pg_catalog, proof, public;
SELECT count(*) > 0 AS history_read FROM ledger_history('proof.acct');
SELECT ledger_verify_proof(ledger_proof('proof.acct', :doc2, 1, :'d2'), :'d2') AS proof_built;
SELECT ledger_verify_proof(ledger_consistency_proof(:'d1', :'d2'), :'d2') AS consistency_built;
SELECT revisions > 0 AS verified FROM ledger_verify('full');
SELECT 1::bigint = 1::bigint AS evil_operator_is_live;
SET search_path = proof, public;
DROP SCHEMA evil CASCADE;

-- Refusals while building.
SELECT ledger_proof('acct', :doc2, 99, :'d2');
SELECT ledger_proof('acct', :doc2, 1, jsonb_set(:'d2', '{hash}', to_jsonb(repeat('0', 64))));
SELECT ledger_proof('acct', :doc2, 1, jsonb_set(:'d2', '{block}', '9999'));
CREATE TABLE plain (a int);
SELECT ledger_proof('plain', 1, 0, :'d2');

-- Malformed proofs are errors that say what is wrong.
SELECT ledger_verify_proof('[]', :'d2');
SELECT ledger_verify_proof('{"version": 2}', :'d2');
SELECT ledger_verify_proof('{"version": 1, "kind": "other"}', :'d2');
SELECT ledger_verify_proof(:'p'::jsonb - 'revision', :'d2');
SELECT ledger_verify_proof(jsonb_set(:'p', '{revision,data_hash}', '"abc"'), :'d2');
SELECT ledger_verify_proof(jsonb_set(:'p', '{transaction,seq}', '1.5'), :'d2');
SELECT ledger_verify_proof(jsonb_set(:'p', '{transaction,path,0,side}', '"up"'), :'d2');
SELECT ledger_verify_proof(jsonb_set(:'p', '{transaction,path}',
         (SELECT jsonb_agg((:'p'::jsonb) #> '{transaction,path,0}') FROM generate_series(1, 64))), :'d2');
SELECT ledger_verify_proof(jsonb_set(:'p', '{tree}', '"no"'), :'d2');
SELECT ledger_verify_proof(jsonb_set(:'p', '{tree,size}', '0'), :'d2');
SELECT ledger_verify_proof(jsonb_set(:'c', '{path}', '[1]'), :'d2');
SELECT ledger_verify_proof(jsonb_set(:'c', '{path}',
         (SELECT jsonb_agg(to_jsonb(repeat('0', 64))) FROM generate_series(1, 65))), :'d2');
SELECT ledger_verify_proof(:'c'::jsonb #- '{old,root}', :'d2');
SELECT ledger_verify_proof(:'p', '{"version": 1}');
SELECT ledger_verify_proof(NULL, :'d2') IS NULL AS null_in_null_out;

-- Fuzzing: 3000 random changes of semantic values in both proofs.  None
-- may check; every failure is either false or an invalid-proof error.
CREATE FUNCTION leaves(j jsonb, p text[] DEFAULT '{}') RETURNS SETOF text[]
LANGUAGE sql AS $$
  SELECT CASE WHEN jsonb_typeof(v) IN ('object', 'array') THEN NULL ELSE p || k END
  FROM (SELECT key AS k, value AS v FROM jsonb_each(CASE WHEN jsonb_typeof(j) = 'object' THEN j END)
        UNION ALL
        SELECT (ord - 1)::text, value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j) = 'array' THEN j END)
             WITH ORDINALITY AS a(value, ord)) e
  WHERE jsonb_typeof(v) NOT IN ('object', 'array')
  UNION ALL
  SELECT l FROM (SELECT key AS k, value AS v FROM jsonb_each(CASE WHEN jsonb_typeof(j) = 'object' THEN j END)
                 UNION ALL
                 SELECT (ord - 1)::text, value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j) = 'array' THEN j END)
                      WITH ORDINALITY AS a(value, ord)) e,
                LATERAL leaves(v, p || k) l
  WHERE jsonb_typeof(v) IN ('object', 'array')
$$;

CREATE FUNCTION fuzz(proof jsonb, digest jsonb, n int)
RETURNS TABLE (outcome text, count bigint)
LANGUAGE plpgsql AS $$
DECLARE
  paths text[][] := ARRAY(SELECT array_to_string(l, '/') FROM leaves(proof) l
                          WHERE l[1] NOT IN ('digest', 'version', 'kind', 'old', 'new'));
  path text[];
  junk jsonb[] := ARRAY['null', '0', '-1', '1', '9223372036854775807', '1e30', '"x"', '""',
                        '"left"', '"right"', '[]', '{}', 'true',
                        to_jsonb(repeat('f', 64)), to_jsonb(repeat('0', 63)),
                        to_jsonb(repeat('A', 64))]::jsonb[];
  m jsonb;
  ok boolean;
  results text[] := '{}';
BEGIN
  PERFORM setseed(0.42);
  FOR i IN 1..n LOOP
    path := string_to_array(paths[1 + floor(random() * array_length(paths, 1))::int], '/');
    IF random() < 0.5 AND jsonb_typeof(proof #> path) = 'string' AND length(proof #>> path) = 64 THEN
      -- One hex digit changed.
      m := jsonb_set(proof, path, to_jsonb(overlay(proof #>> path
             PLACING substr('0123456789abcdef', 1 + floor(random() * 16)::int, 1)
             FROM 1 + floor(random() * 64)::int)));
      IF m = proof THEN CONTINUE; END IF;
    ELSIF random() < 0.3 AND jsonb_typeof(proof #> path) = 'number' THEN
      m := jsonb_set(proof, path, to_jsonb((proof #>> path)::numeric + 1));
    ELSE
      m := jsonb_set(proof, path, junk[1 + floor(random() * array_length(junk, 1))::int]);
      IF m = proof THEN CONTINUE; END IF;
    END IF;
    BEGIN
      ok := ledger_verify_proof(m, digest);
      results := results || CASE WHEN ok THEN 'ACCEPTED ' || m::text ELSE 'false' END;
    EXCEPTION WHEN invalid_parameter_value THEN
      results := results || 'invalid proof'::text;
    END;
  END LOOP;
  RETURN QUERY SELECT r, count(*) FROM unnest(results) r GROUP BY r ORDER BY r;
END $$;

SET client_min_messages = warning;
SELECT outcome FROM fuzz(:'p', :'d2', 2000) WHERE outcome NOT IN ('false', 'invalid proof');
SELECT outcome FROM fuzz(:'c', :'d2', 1000) WHERE outcome NOT IN ('false', 'invalid proof');
SELECT count(DISTINCT outcome) AS both_outcomes_seen FROM fuzz(:'p', :'d2', 300);
RESET client_min_messages;

RESET search_path;
SELECT ledger_set_deletion_protection('proof.acct', false);
DROP SCHEMA proof CASCADE;
