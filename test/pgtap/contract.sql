-- The ledger extension's SQL contract: its objects, who may touch them,
-- and the SQLSTATE of each refusal.  Runs in one transaction that is
-- rolled back, so it leaves nothing behind.
BEGIN;
SELECT plan(86);

-- Objects the extension installs
SELECT has_schema('ledger');
SELECT has_table('ledger', 'journal', 'the journal exists');
SELECT has_table('ledger', 'keys', 'the key catalog exists');
SELECT has_table('ledger', 'tables', 'the table registry exists');
SELECT columns_are('ledger', 'journal',
	ARRAY['table_id', 'doc_id', 'version', 'op', 'xid', 'key_id', 'payload',
		  'data_hash', 'revision_hash', 'written_at'],
	'the journal has exactly the documented columns');
SELECT col_type_is('ledger', 'journal', 'xid', 'xid8', 'revisions name their transaction');
SELECT has_index('ledger', 'journal', 'journal_revision_idx',
	ARRAY['table_id', 'doc_id', 'version'], 'revisions are found by table, document and version');
SELECT index_is_unique('ledger', 'journal', 'journal_revision_idx');
SELECT columns_are('ledger', 'keys',
	ARRAY['key_id', 'version', 'kind', 'parent_id', 'parent_version', 'provider',
		  'provider_key_id', 'provider_key_version', 'table_id', 'wrapped',
		  'state', 'created_at', 'changed_at', 'provider_key_alias'],
	'the key catalog has the hierarchy shape');
SELECT is((SELECT amtype::text FROM pg_am WHERE amname = 'ledger'), 't',
	'"ledger" is a table access method');
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_am a ON a.oid = c.relam
		   WHERE c.relnamespace = 'ledger'::regnamespace AND c.relkind = 'r'
			 AND a.amname = 'ledger_internal'), 8,
	'the journal, the chain tables, the catalogs, the providers and the key changes and events use the internal access method');
SELECT columns_are('ledger', 'transactions',
	ARRAY['seq', 'xid', 'committed_at', 'revision_count', 'merkle_root', 'subtrees'],
	'transaction entries have exactly the documented columns');
SELECT index_is_unique('ledger', 'transactions', 'transactions_seq_idx');
SELECT columns_are('ledger', 'blocks',
	ARRAY['block_number', 'first_seq', 'last_seq', 'entry_count', 'merkle_root',
		  'previous_hash', 'block_hash', 'tree_nodes', 'tree_root', 'sealed_at'],
	'blocks have exactly the documented columns');
SELECT index_is_unique('ledger', 'blocks', 'blocks_number_idx');
SELECT has_function('ledger_digest', ARRAY[]::text[]);
SELECT has_function('ledger_verify', ARRAY['text']);
SELECT has_function('ledger_verify', ARRAY['jsonb']);
SELECT has_function('ledger_history', ARRAY['anyelement', 'bigint', 'timestamp with time zone', 'timestamp with time zone']);
SELECT has_function('ledger_history', ARRAY['text', 'bigint', 'timestamp with time zone', 'timestamp with time zone']);
SELECT has_function('ledger_redact_revision', ARRAY['regclass', 'bigint', 'integer']);
SELECT has_function('ledger_export', ARRAY['bigint', 'bigint']);
SELECT ok(NOT has_function_privilege('public', 'ledger_export(bigint,bigint)', 'EXECUTE'),
	'ledger_export is not granted to PUBLIC');
SELECT has_function('ledger_proof', ARRAY['regclass', 'bigint', 'integer', 'jsonb']);
SELECT has_function('ledger_consistency_proof', ARRAY['jsonb', 'jsonb']);
SELECT has_function('ledger_verify_proof', ARRAY['jsonb', 'jsonb', 'jsonb']);
SELECT has_index('ledger', 'journal', 'journal_xid_idx', ARRAY['xid'],
	'a transaction finds its revisions');
SELECT has_index('ledger', 'transactions', 'transactions_xid_idx', ARRAY['xid'],
	'a revision finds its transaction entry');
SELECT ok(NOT has_function_privilege('public', 'ledger_verify(text)', 'EXECUTE'),
	'ledger_verify is not granted to PUBLIC');
SELECT has_function('ledger_status', ARRAY[]::text[]);
SELECT ok(NOT has_function_privilege('public', 'ledger_status()', 'EXECUTE'),
	'ledger_status is not granted to PUBLIC');
SELECT ok(has_function_privilege('pg_monitor', 'ledger_status()', 'EXECUTE'),
	'pg_monitor may call ledger_status');
SELECT results_eq($$SELECT provider, status, inaccessible_since IS NULL FROM ledger_status()$$,
	$$VALUES ('file', 'ENABLED', true)$$, 'ledger_status shows an ENABLED file provider');
SELECT has_role('ledger_key_user', 'CREATE EXTENSION made the key grant role');
SELECT has_function('ledger_rotate_key', ARRAY['text', 'text', 'text']);
SELECT ok(NOT has_function_privilege('public', 'ledger_rotate_key(text,text,text)', 'EXECUTE'),
	'ledger_rotate_key is not granted to PUBLIC');
SELECT has_role('ledger_key_admin', 'CREATE EXTENSION made the key admin role');
SELECT ok(has_function_privilege('ledger_key_admin', 'ledger_rotate_key(text,text,text)', 'EXECUTE'),
	'ledger_key_admin may change keys');
SELECT has_table('ledger', 'providers', 'key providers are registered');
SELECT results_eq($$SELECT name, type, options FROM ledger.providers$$,
	$$VALUES ('file', 'file', '{}'::jsonb)$$, 'the embedded file provider is registered');
SELECT has_function('ledger_create_provider', ARRAY['text', 'text', 'jsonb']);
SELECT has_function('ledger_alter_provider', ARRAY['text', 'jsonb']);
SELECT has_function('ledger_drop_provider', ARRAY['text']);
SELECT ok(NOT has_function_privilege('public', 'ledger_create_provider(text,text,jsonb)', 'EXECUTE'),
	'ledger_create_provider is not granted to PUBLIC');
SELECT ok(NOT has_function_privilege('ledger_key_admin', 'ledger_create_provider(text,text,jsonb)', 'EXECUTE'),
	'only superusers create providers, which run programs as the server');
SELECT ok(NOT pg_has_role('ledger_key_admin', 'ledger_key_user', 'MEMBER'),
	'ledger_key_admin does not hold the key grant');
SELECT throws_ok($$SELECT ledger_create_provider('x', 'vault')$$, '22023', NULL,
	'an unknown provider type is refused');
SELECT throws_ok($$SELECT ledger_drop_provider('file')$$, '2BP01', NULL,
	'the provider that wraps the root key cannot be dropped');
SELECT has_table('ledger', 'key_changes', 'key changes are recorded');
SELECT has_table('ledger', 'key_events', 'key use is recorded');
SELECT throws_ok('TRUNCATE ledger.key_events', '42501', NULL, 'the key audit trail refuses TRUNCATE');
SELECT throws_ok($$SELECT ledger_rotate_key('everything')$$, '22023', NULL,
	'an unknown kind of key change is refused');
SELECT is(current_setting('ledger.require_secure_transport'), 'on',
	'TLS is required over TCP by default');
SELECT is(current_setting('ledger.key_check_interval'), '10s',
	'the provider key is checked every 10 s by default');
SELECT has_function('ledger_set_deletion_protection', ARRAY['regclass', 'boolean']);
SELECT has_function('ledger_document_id', ARRAY['regclass', 'tid']);
SELECT has_function('ledger_document_version', ARRAY['regclass', 'tid']);

-- One root key, wrapped by the provider key; nothing readable as a key
SELECT is((SELECT count(*)::int FROM ledger.keys WHERE kind = 'root' AND state = 'active'), 1,
	'exactly one active root key');
SELECT is((SELECT provider FROM ledger.keys WHERE kind = 'root'), 'file',
	'the root key is wrapped by the file provider');
SELECT ok((SELECT bool_and(length(wrapped) = 60) FROM ledger.keys),
	'every wrapped key is nonce, 32 bytes and tag');

-- A new ledger table gets a registry entry and a data key
CREATE TABLE t (id int PRIMARY KEY, secret text) USING ledger;
SELECT is((SELECT plainset FROM ledger.tables WHERE relid = 't'::regclass), '{1}'::int2[],
	'the primary key column is the plaintext set');
SELECT ok((SELECT deletion_protection FROM ledger.tables WHERE relid = 't'::regclass),
	'deletion protection is on by default');
SELECT is((SELECT k.kind FROM ledger.tables t JOIN ledger.keys k ON k.key_id = t.data_key_id
		   WHERE t.relid = 't'::regclass), 'data',
	'the table has its own data key');
SELECT is((SELECT k.parent_id FROM ledger.tables t JOIN ledger.keys k ON k.key_id = t.data_key_id
		   WHERE t.relid = 't'::regclass),
		  (SELECT key_id FROM ledger.keys WHERE kind = 'root'),
	'the data key is wrapped by the root key');

INSERT INTO t VALUES (1, 'alpha');
UPDATE t SET secret = 'beta' WHERE id = 1;
SELECT results_eq(
	$$SELECT version, op::text FROM ledger.journal
	  WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 't'::regclass)
	  ORDER BY version$$,
	$$VALUES (0, 'I'), (1, 'U')$$,
	'an insert and an update append versions 0 and 1');
SELECT is((SELECT ledger_document_version('t', ctid) FROM t), 1,
	'the current row is version 1');
SELECT is((SELECT ledger_document_id('t', ctid) FROM t),
		  (SELECT doc_id FROM ledger.journal
		   WHERE table_id = (SELECT table_id FROM ledger.tables WHERE relid = 't'::regclass)
			 AND version = 0),
	'the row keeps the document id of its first revision');
SELECT ok((SELECT bool_and(length(data_hash) = 32 AND length(revision_hash) = 32)
		   FROM ledger.journal),
	'every revision carries 32-byte hashes');

-- Refusals and their SQLSTATEs
SELECT throws_ok('TRUNCATE t', '0A000', NULL, 'TRUNCATE is refused');
SELECT throws_ok('DROP TABLE t', '55000', NULL, 'DROP is refused under deletion protection');
SELECT throws_ok('ALTER TABLE t ALTER COLUMN secret TYPE varchar(10)', '0A000', NULL,
	'a table-rewriting ALTER TABLE is refused');
SELECT throws_ok('ALTER TABLE t SET ACCESS METHOD heap', '0A000', NULL,
	'leaving the ledger access method is refused');
SELECT throws_ok('CREATE UNLOGGED TABLE u (a int) USING ledger', '0A000', NULL,
	'unlogged ledger tables are refused');
SELECT throws_ok('CREATE MATERIALIZED VIEW mv USING ledger AS SELECT 1', '0A000', NULL,
	'materialized views cannot use the ledger access method');
SELECT throws_ok('CREATE INDEX ON t ((t))', '0A000', NULL, 'whole-row indexes are refused');
SELECT throws_ok('DELETE FROM ledger.journal', '42501', NULL, 'the journal refuses DELETE');
SELECT throws_ok('UPDATE ledger.keys SET state = $$x$$', '42501', NULL, 'the key catalog refuses UPDATE');
SELECT throws_ok('DELETE FROM ledger.providers', '42501', NULL, 'the provider registry refuses DELETE');
SELECT throws_ok('TRUNCATE ledger.journal', '42501', NULL, 'the journal refuses TRUNCATE');
SELECT throws_ok($$SELECT ledger_document_id('pg_class', '(0,1)')$$, '42809', NULL,
	'ledger_document_id wants a ledger table');
SELECT throws_ok($$SELECT ledger_document_id('t', '(999,1)')$$, '22023', NULL,
	'ledger_document_id wants the ctid of a row');

-- What a role without privileges sees
CREATE ROLE ledger_pgtap_nobody;
SET LOCAL ROLE ledger_pgtap_nobody;
SELECT throws_ok('SELECT * FROM ledger.keys', '42501', NULL, 'PUBLIC cannot read the key catalog');
SELECT throws_ok('SELECT * FROM ledger.journal', '42501', NULL, 'PUBLIC cannot read the journal');
SELECT throws_ok($$SELECT ledger_set_deletion_protection('t', false)$$, '42501', NULL,
	'only the owner may turn off deletion protection');
RESET ROLE;
GRANT SELECT ON t TO ledger_pgtap_nobody;
SET LOCAL ROLE ledger_pgtap_nobody;
SELECT throws_ok('SELECT * FROM t', '42501', 'permission denied to use the keys of the ledger',
	'SELECT on a ledger table without the key grant is refused');
RESET ROLE;
GRANT ledger_key_user TO ledger_pgtap_nobody;
SET LOCAL ROLE ledger_pgtap_nobody;
SELECT is((SELECT secret FROM t), 'beta', 'with the key grant, the same role reads');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
