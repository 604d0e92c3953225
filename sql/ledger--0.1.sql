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
    PRIMARY KEY (key_id, version)
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
-- entry to its revisions and is not hashed.
CREATE TABLE ledger.transactions (
    seq            bigint      NOT NULL,
    xid            xid8        NOT NULL,
    committed_at   timestamptz NOT NULL,
    revision_count integer     NOT NULL,
    merkle_root    bytea       NOT NULL
) USING ledger_internal;
CREATE UNIQUE INDEX transactions_seq_idx ON ledger.transactions (seq);

-- The chain: each block covers entries first_seq..last_seq and hashes the
-- block before it.  Block 0 covers nothing.
CREATE TABLE ledger.blocks (
    block_number  bigint      NOT NULL,
    first_seq     bigint      NOT NULL,
    last_seq      bigint      NOT NULL,
    entry_count   integer     NOT NULL,
    merkle_root   bytea       NOT NULL,
    previous_hash bytea       NOT NULL,
    block_hash    bytea       NOT NULL,
    sealed_at     timestamptz NOT NULL
) USING ledger_internal;
CREATE UNIQUE INDEX blocks_number_idx ON ledger.blocks (block_number);
CREATE INDEX blocks_last_seq_idx ON ledger.blocks (last_seq);

REVOKE ALL ON ALL TABLES IN SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ledger FROM PUBLIC;

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

CREATE FUNCTION ledger_verify(level text DEFAULT 'full',
                              OUT revisions bigint, OUT transactions bigint,
                              OUT blocks bigint, OUT unsealed_transactions bigint,
                              OUT current_rows bigint, OUT newest_block bigint,
                              OUT elapsed interval)
RETURNS record
AS 'MODULE_PATHNAME', 'ledger_verify'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION ledger_verify(text) FROM PUBLIC;

CREATE FUNCTION ledger_verify(digest jsonb,
                              OUT revisions bigint, OUT transactions bigint,
                              OUT blocks bigint, OUT unsealed_transactions bigint,
                              OUT current_rows bigint, OUT newest_block bigint,
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
