--
-- providers: key providers configured through SQL.  Every option is
-- checked against the type at the SQL boundary; the provider that wraps
-- the root key cannot be dropped, and new options must still open it.
-- The command and pkcs11 providers at work are tested in test/t/014 and
-- test/t/015, against a local KMS and SoftHSM2.
--
\set SHOW_CONTEXT never
\set VERBOSITY default

SELECT name, type, options, created_by IS NOT NULL AS has_creator FROM ledger.providers;
SELECT provider, provider_key_alias FROM ledger_status();

-- Types and options
SELECT ledger_create_provider('p1', 'vault');
SELECT ledger_create_provider('p1', NULL);
SELECT ledger_create_provider(NULL, 'file');
SELECT ledger_create_provider('', 'file');
SELECT ledger_create_provider('No Spaces', 'file');
SELECT ledger_create_provider(repeat('x', 64), 'file');
SELECT ledger_create_provider('p1', 'file', '"a string"');
SELECT ledger_create_provider('p1', 'file', '[]');
SELECT ledger_create_provider('p1', 'file', '{"keyring": "/x"}');
SELECT ledger_create_provider('p1', 'file', '{"keyring_file": 7}');
SELECT ledger_create_provider('p1', 'file', '{"keyring_file": ""}');
SELECT ledger_create_provider('p1', 'file', '{"keyring_file": {"a": 1}}');
SELECT ledger_create_provider('p1', 'file', '{"keyring_file": null}');
SELECT ledger_create_provider('p1', 'file', '{"keyring_file": "relative/path"}');
SELECT ledger_create_provider('p1', 'command', '{}');
SELECT ledger_create_provider('p1', 'command', '{"command": "/nonexistent/kms"}');
SELECT ledger_create_provider('p1', 'command', '{"command": "/bin/true", "timeout_ms": 0}');
SELECT ledger_create_provider('p1', 'command', '{"command": "/bin/true", "timeout_ms": 1.5}');
SELECT ledger_create_provider('p1', 'command', '{"command": "/bin/true", "timeout_ms": 99999999999}');
SELECT ledger_create_provider('p1', 'pkcs11', '{"module": "/nonexistent.so", "token_label": "t", "pin_file": "/p"}');
SELECT ledger_create_provider('p1', 'pkcs11', '{"module": "/bin/true", "token_label": "t", "pin": "1234"}');
SELECT ledger_create_provider('p1', 'pkcs11', '{"module": "/bin/true", "token_label": "t", "pin_file": "p"}');
SELECT ledger_create_provider('p1', 'kmip', '{}');
SELECT ledger_create_provider('p1', 'kmip', '{"host": "kms.example.com", "ca_file": "/ca.pem", "cert_file": "/c.pem"}');
SELECT ledger_create_provider('p1', 'kmip', '{"host": "kms.example.com", "ca_file": "/ca.pem", "port": 65536}');
SELECT ledger_create_provider('p1', 'kmip', '{"host": "kms.example.com", "ca_file": "ca.pem"}');
SELECT ledger_create_provider('file', 'file');

-- A provider that is configured but wraps nothing
SELECT ledger_create_provider('spare', 'command', '{"command": "/bin/true", "timeout_ms": 500}');
SELECT name, type, options FROM ledger.providers ORDER BY name;

-- A key change to a provider that cannot wrap: refused before it is queued
SELECT ledger_rotate_key('provider_key', 'some-key', 'spare');
SELECT ledger_rotate_key('provider_key', 'some-key', 'nowhere');
SELECT ledger_rotate_key('root_key', NULL, 'spare');
SELECT count(*) FROM ledger.key_changes;

-- Altering and dropping
SELECT ledger_alter_provider('spare', '{"command": "/bin/false"}');
SELECT options FROM ledger.providers WHERE name = 'spare';
SELECT ledger_alter_provider('nowhere', '{}');
SELECT ledger_alter_provider('file', '{"keyring_file": "/nonexistent/keyring"}');
SELECT options FROM ledger.providers WHERE name = 'file';
SELECT ledger_drop_provider('file');
SELECT ledger_drop_provider('nowhere');
SELECT ledger_drop_provider('spare');
SELECT name FROM ledger.providers ORDER BY name;

-- Only superusers define providers; ledger_key_admin may drop them
CREATE ROLE provider_outsider;
CREATE ROLE provider_admin IN ROLE ledger_key_admin;
SET ROLE provider_outsider;
SELECT ledger_create_provider('p2', 'command', '{"command": "/bin/true"}');
SELECT ledger_drop_provider('file');
SET ROLE provider_admin;
SELECT ledger_drop_provider('file');
SELECT ledger_drop_provider('nowhere');
RESET ROLE;
GRANT EXECUTE ON FUNCTION ledger_create_provider(text, text, jsonb),
    ledger_alter_provider(text, jsonb) TO provider_admin;
SET ROLE provider_admin;
SELECT ledger_create_provider('p2', 'command', '{"command": "/bin/true"}');
SELECT ledger_alter_provider('file', '{}');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION ledger_create_provider(text, text, jsonb),
    ledger_alter_provider(text, jsonb) FROM provider_admin;
DROP ROLE provider_outsider, provider_admin;
