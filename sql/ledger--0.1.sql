/* ledger--0.1.sql: verifiable, always-encrypted ledger tables */

\echo Use "CREATE EXTENSION ledger" to load this file. \quit

-- The extension's own objects live in schema "ledger".  Every table names
-- its access method, because default_table_access_method may be "ledger".
CREATE SCHEMA ledger;

CREATE FUNCTION ledger_tableam_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME', 'ledger_tableam_handler'
LANGUAGE C;

CREATE ACCESS METHOD ledger TYPE TABLE HANDLER ledger_tableam_handler;
COMMENT ON ACCESS METHOD ledger IS 'ledger tables: heap storage with sealed rows and a journal of every revision';

-- Tables written only by the extension: SQL cannot insert, update,
-- delete or truncate them.
CREATE FUNCTION ledger.internal_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME', 'ledger_internal_handler'
LANGUAGE C;

CREATE ACCESS METHOD ledger_internal TYPE TABLE HANDLER ledger.internal_handler;
COMMENT ON ACCESS METHOD ledger_internal IS 'tables written only by the ledger extension';

CREATE SEQUENCE ledger.table_id_seq;
CREATE SEQUENCE ledger.key_id_seq AS integer;
CREATE SEQUENCE ledger.document_id_seq CACHE 32;

-- Key providers: where the provider key lives.  options is a JSON object
-- of strings and numbers that the type defines (docs/key-management.md);
-- never a secret.  CREATE EXTENSION registers "file", the keyring file.
CREATE TABLE ledger.providers (
    name        text        NOT NULL PRIMARY KEY,
    type        text        NOT NULL CHECK (type IN ('file', 'command', 'pkcs11', 'kmip')),
    options     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  name        NOT NULL,
    changed_at  timestamptz
) USING ledger_internal;

-- The key hierarchy: a root key wrapped by the provider key, and data keys
-- wrapped by the root key.  "wrapped" is nonce || ciphertext || tag.
CREATE TABLE ledger.keys (
    key_id               integer     NOT NULL,
    version              integer     NOT NULL,
    kind                 text        NOT NULL CHECK (kind IN ('root', 'data')),
    parent_id            integer,
    parent_version       integer,
    provider             text,
    provider_key_id      text,
    provider_key_version integer,
    table_id             bigint,
    wrapped              bytea       NOT NULL,
    state                text        NOT NULL,
    created_at           timestamptz NOT NULL,
    changed_at           timestamptz,
    provider_key_alias   text,
    PRIMARY KEY (key_id, version)
) USING ledger_internal;

-- Key changes queued by ledger_rotate_key(), carried out by the worker in
-- steps that commit with their progress.  target: the new root key version
-- (root_key) or the first new key id (data_keys), fixed by the first step.
CREATE SEQUENCE ledger.key_change_id_seq;
CREATE TABLE ledger.key_changes (
    change_id     bigint      NOT NULL PRIMARY KEY,
    kind          text        NOT NULL
                  CHECK (kind IN ('provider_key', 'root_key', 'data_keys')),
    provider_key  text,
    target        bigint,
    state         text        NOT NULL
                  CHECK (state IN ('pending', 'running', 'done', 'failed')),
    done_count    bigint      NOT NULL,
    total_count   bigint,
    requested_at  timestamptz NOT NULL,
    requested_by  name        NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    error         text,
    provider      text
) USING ledger_internal;

-- The audit trail of key use: every use of a provider key (wrap, unwrap,
-- the worker's check) and every key change, with the root key version
-- used as encryption context, the session's role and the outcome.
-- Recorded through a ring in shared memory by the worker; insert-only.
CREATE SEQUENCE ledger.key_event_id_seq;
CREATE TABLE ledger.key_events (
    event_id              bigint      NOT NULL PRIMARY KEY,
    occurred_at           timestamptz NOT NULL,
    event                 text        NOT NULL,
    provider              text,
    provider_key_id       text,
    provider_key_version  integer,
    node_id               integer,
    node_version          integer,
    role                  name,
    change_id             bigint,
    outcome               text        NOT NULL
) USING ledger_internal;

-- Registry of ledger tables.  table_id is stable; relid is the current OID.
CREATE TABLE ledger.tables (
    table_id            bigint      NOT NULL PRIMARY KEY,
    relid               oid         NOT NULL,
    data_key_id         integer     NOT NULL,
    plainset            smallint[]  NOT NULL,
    deletion_protection boolean     NOT NULL,
    created_at          timestamptz NOT NULL,
    dropped_at          timestamptz
) USING ledger_internal;
CREATE INDEX tables_relid_idx ON ledger.tables (relid);

-- One sealed revision per change, forever.
CREATE TABLE ledger.journal (
    table_id      bigint      NOT NULL,
    doc_id        bigint      NOT NULL,
    version       integer     NOT NULL,
    op            "char"      NOT NULL,
    xid           xid8        NOT NULL,
    key_id        integer,
    payload       bytea,
    data_hash     bytea,
    revision_hash bytea       NOT NULL,
    written_at    timestamptz NOT NULL
) USING ledger_internal;
-- Ciphertext does not compress; keep it out of line, uncompressed.
ALTER TABLE ledger.journal ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX journal_revision_idx ON ledger.journal (table_id, doc_id, version);
-- A transaction's revisions, for proofs and for its entry.
CREATE INDEX journal_xid_idx ON ledger.journal (xid);

-- One entry per committed transaction that wrote revisions: the Merkle
-- root of its revision hashes, numbered in commit order.  xid joins an
-- entry to its revisions and is not hashed.  subtrees, in a transaction
-- of 16,384 revisions or more, holds for each run of 8,192 leaves the key
-- of its first revision and its subtree's root, for proofs; not hashed.
CREATE TABLE ledger.transactions (
    seq            bigint      NOT NULL,
    xid            xid8        NOT NULL,
    committed_at   timestamptz NOT NULL,
    revision_count integer     NOT NULL,
    merkle_root    bytea       NOT NULL,
    subtrees       bytea
) USING ledger_internal;
-- Hashes do not compress.
ALTER TABLE ledger.transactions ALTER COLUMN subtrees SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX transactions_seq_idx ON ledger.transactions (seq);
-- A revision's entry, for proofs: without it each proof reads every entry.
CREATE INDEX transactions_xid_idx ON ledger.transactions (xid);

-- The chain: each block covers entries first_seq..last_seq and hashes the
-- block before it.  Block 0 covers nothing.  Block hashes are also the
-- leaves of one Merkle tree, leaf n being block n.  tree_nodes holds the
-- roots of the perfect subtrees that end at this block, smallest first
-- (32 bytes each), from which any proof over the tree is built; tree_root
-- is the root of the tree over blocks 0 to this one.
CREATE TABLE ledger.blocks (
    block_number  bigint      NOT NULL,
    first_seq     bigint      NOT NULL,
    last_seq      bigint      NOT NULL,
    entry_count   integer     NOT NULL,
    merkle_root   bytea       NOT NULL,
    previous_hash bytea       NOT NULL,
    block_hash    bytea       NOT NULL,
    tree_nodes    bytea       NOT NULL,
    tree_root     bytea       NOT NULL,
    sealed_at     timestamptz NOT NULL
) USING ledger_internal;
CREATE UNIQUE INDEX blocks_number_idx ON ledger.blocks (block_number);
CREATE INDEX blocks_last_seq_idx ON ledger.blocks (last_seq);

REVOKE ALL ON ALL TABLES IN SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ledger FROM PUBLIC;

-- The key grant: reading or writing ledger rows needs membership in this
-- role besides table privileges.  Roles belong to the cluster, so it may
-- exist already (another ledger database); DROP EXTENSION leaves it.
-- ledger_key_admin manages providers and key changes, without the key
-- grant: it never reads ledger rows.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger_key_user') THEN
        CREATE ROLE ledger_key_user NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger_key_admin') THEN
        CREATE ROLE ledger_key_admin NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA ledger TO ledger_key_admin;
GRANT SELECT ON ledger.providers, ledger.keys, ledger.key_changes, ledger.key_events
    TO ledger_key_admin;

CREATE FUNCTION ledger.bootstrap()
RETURNS void
AS 'MODULE_PATHNAME', 'ledger_bootstrap'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION ledger.bootstrap() FROM PUBLIC;

SELECT ledger.bootstrap();

CREATE FUNCTION ledger_set_deletion_protection(tbl regclass, enabled boolean)
RETURNS void
AS 'MODULE_PATHNAME', 'ledger_set_deletion_protection'
LANGUAGE C STRICT;

CREATE FUNCTION ledger_document_id(tbl regclass, row_ctid tid)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ledger_document_id'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION ledger_document_version(tbl regclass, row_ctid tid)
RETURNS integer
AS 'MODULE_PATHNAME', 'ledger_document_version'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION ledger_digest(OUT digest jsonb, OUT block_number bigint,
                              OUT sealed_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'ledger_digest'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- The ledger's encryption description, like QLDB's DescribeLedger.  Shows
-- key ids and times, never key material.
CREATE FUNCTION ledger_status(OUT provider text, OUT provider_key_id text,
                              OUT provider_key_alias text,
                              OUT provider_key_version integer,
                              OUT root_key_version integer, OUT status text,
                              OUT inaccessible_since timestamptz,
                              OUT last_check timestamptz,
                              OUT last_successful_check timestamptz,
                              OUT pending_change text, OUT change_done bigint,
                              OUT change_total bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'ledger_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION ledger_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_status() TO pg_monitor;

-- Queue a key change; the worker carries it out while the ledger stays
-- available.  Returns the change's id in ledger.key_changes.
CREATE FUNCTION ledger_rotate_key(kind text DEFAULT 'root_key',
                                  provider_key text DEFAULT NULL,
                                  provider text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ledger_rotate_key'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION ledger_rotate_key(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_rotate_key(text, text, text) TO ledger_key_admin;

-- Key providers.
CREATE FUNCTION ledger_create_provider(name text, type text, options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'ledger_create_provider'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION ledger_alter_provider(name text, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'ledger_alter_provider'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION ledger_drop_provider(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'ledger_drop_provider'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;
-- Creating and altering a provider names programs, modules, files and
-- hosts that the server will use: superusers only, checked in C too.
REVOKE ALL ON FUNCTION ledger_create_provider(text, text, jsonb),
    ledger_alter_provider(text, jsonb), ledger_drop_provider(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_drop_provider(text) TO ledger_key_admin;
GRANT EXECUTE ON FUNCTION ledger_status() TO ledger_key_admin;

CREATE FUNCTION ledger_verify(level text DEFAULT 'full',
                              OUT revisions bigint, OUT transactions bigint,
                              OUT blocks bigint, OUT unsealed_transactions bigint,
                              OUT current_rows bigint, OUT redacted_revisions bigint,
                              OUT newest_block bigint,
                              OUT elapsed interval)
RETURNS record
AS 'MODULE_PATHNAME', 'ledger_verify'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION ledger_verify(text) FROM PUBLIC;

CREATE FUNCTION ledger_verify(digest jsonb,
                              OUT revisions bigint, OUT transactions bigint,
                              OUT blocks bigint, OUT unsealed_transactions bigint,
                              OUT current_rows bigint, OUT redacted_revisions bigint,
                              OUT newest_block bigint,
                              OUT elapsed interval)
RETURNS record
AS 'MODULE_PATHNAME', 'ledger_verify_digest'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION ledger_verify(jsonb) FROM PUBLIC;

CREATE FUNCTION ledger_history(tbl anyelement, doc bigint DEFAULT NULL,
                               from_time timestamptz DEFAULT NULL,
                               to_time timestamptz DEFAULT NULL)
RETURNS TABLE (doc_id bigint, version integer, operation text, seq bigint,
               committed_at timestamptz, block_number bigint,
               revision_hash bytea, data anyelement)
AS 'MODULE_PATHNAME', 'ledger_history'
LANGUAGE C CALLED ON NULL INPUT STABLE PARALLEL UNSAFE;

CREATE FUNCTION ledger_history(tbl text, doc bigint DEFAULT NULL,
                               from_time timestamptz DEFAULT NULL,
                               to_time timestamptz DEFAULT NULL)
RETURNS TABLE (doc_id bigint, version integer, operation text, seq bigint,
               committed_at timestamptz, block_number bigint,
               revision_hash bytea, data jsonb)
AS 'MODULE_PATHNAME', 'ledger_history_json'
LANGUAGE C CALLED ON NULL INPUT STABLE PARALLEL UNSAFE;

CREATE FUNCTION ledger_proof(tbl regclass, doc_id bigint, version integer, digest jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'ledger_proof'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;

CREATE FUNCTION ledger_consistency_proof(old_digest jsonb, new_digest jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'ledger_consistency_proof'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;

CREATE FUNCTION ledger_verify_proof(proof jsonb, digest jsonb, old_digest jsonb DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ledger_verify_proof'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

-- The journal of a block range as JSON Lines, for offline audit with
-- ledger-verify: a header, the wrapped keys, each block followed by its
-- transactions and their revisions, and the digest it ends at.
CREATE FUNCTION ledger_export(from_block bigint DEFAULT 0, to_block bigint DEFAULT NULL)
RETURNS SETOF text
LANGUAGE sql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH last AS (
    SELECT coalesce(to_block, max(block_number)) AS n FROM ledger.blocks
  ), b AS (
    SELECT blk.* FROM ledger.blocks blk, last
     WHERE blk.block_number BETWEEN coalesce(from_block, 0) AND last.n
  ), t AS (
    SELECT tx.*, b.block_number FROM ledger.transactions tx
      JOIN b ON tx.seq BETWEEN b.first_seq AND b.last_seq AND b.block_number > 0
  ), peaks AS (
    -- The tree over the blocks before from_block, as its peaks (largest
    -- first): the peak of level l, when bit l of from_block is set, is
    -- stored with the block it ends at.
    SELECT coalesce(jsonb_agg(encode(substring(pb.tree_nodes FROM l * 32 + 1 FOR 32), 'hex')
                              ORDER BY l DESC), '[]') AS tree
      FROM generate_series(0, 62) l
      JOIN ledger.blocks pb
        ON pb.block_number = ((coalesce(from_block, 0) >> (l + 1)) << (l + 1)) + (1::bigint << l) - 1
     WHERE (coalesce(from_block, 0) >> l) & 1 = 1
  ), lines AS (
    SELECT 0 AS part, 0::bigint AS k1, 0::bigint AS k2, 0::bigint AS k3,
           0::bigint AS k4, 0 AS k5,
           jsonb_build_object('type', 'header', 'format', 1,
                              'from_block', coalesce(from_block, 0), 'to_block', last.n,
                              'tree', peaks.tree) AS line
      FROM last, peaks
    UNION ALL
    SELECT 1, k.key_id, k.version, 0, 0, 0,
           jsonb_build_object('type', 'key', 'key_id', k.key_id, 'version', k.version,
                              'kind', k.kind, 'parent_id', k.parent_id,
                              'parent_version', k.parent_version, 'provider', k.provider,
                              'provider_key_id', k.provider_key_id,
                              'provider_key_version', k.provider_key_version,
                              'table_id', k.table_id, 'wrapped', encode(k.wrapped, 'hex'))
      FROM ledger.keys k
    UNION ALL
    SELECT 2, b.block_number, -1, 0, 0, 0,
           jsonb_build_object('type', 'block', 'number', b.block_number,
                              'first_seq', b.first_seq, 'last_seq', b.last_seq,
                              'entry_count', b.entry_count,
                              'merkle_root', encode(b.merkle_root, 'hex'),
                              'previous_hash', encode(b.previous_hash, 'hex'),
                              'block_hash', encode(b.block_hash, 'hex'),
                              'sealed_at', (extract(epoch FROM b.sealed_at) * 1000000)::bigint)
      FROM b
    UNION ALL
    SELECT 2, t.block_number, t.seq, -1, 0, 0,
           jsonb_build_object('type', 'transaction', 'seq', t.seq,
                              'committed_at', (extract(epoch FROM t.committed_at) * 1000000)::bigint,
                              'revision_count', t.revision_count,
                              'merkle_root', encode(t.merkle_root, 'hex'))
      FROM t
    UNION ALL
    SELECT 2, t.block_number, t.seq, j.table_id, j.doc_id, j.version,
           jsonb_build_object('type', 'revision', 'seq', t.seq, 'table_id', j.table_id,
                              'doc_id', j.doc_id, 'version', j.version,
                              'operation', j.op::text, 'key_id', j.key_id,
                              'data_hash', encode(j.data_hash, 'hex'),
                              'revision_hash', encode(j.revision_hash, 'hex'),
                              'payload', encode(j.payload, 'hex'))
      FROM t JOIN ledger.journal j ON j.xid = t.xid
    UNION ALL
    SELECT 3, 0, 0, 0, 0, 0,
           jsonb_build_object('type', 'digest', 'version', 1, 'block', b.block_number,
                              'hash', encode(b.block_hash, 'hex'),
                              'root', encode(b.tree_root, 'hex'))
      FROM b, last WHERE b.block_number = last.n
  )
  SELECT line::text FROM lines ORDER BY part, k1, k2, k3, k4, k5
$$;
REVOKE ALL ON FUNCTION ledger_export(bigint, bigint) FROM PUBLIC;

CREATE FUNCTION ledger_redact_revision(tbl regclass, doc_id bigint, version integer)
RETURNS void
AS 'MODULE_PATHNAME', 'ledger_redact_revision'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
