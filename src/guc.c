/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  The ledger.* configuration settings.
 *
 * Every setting is documented in docs/reference.md.  The prefix is
 * reserved, so a misspelt ledger.* setting is an error instead of a
 * silently ignored placeholder.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "utils/guc.h"

char	   *ledger_keyring_file = NULL;
bool		ledger_analyze_sealed_columns = false;
bool		ledger_default_deletion_protection = true;
int			ledger_seal_interval = 1000;
int			ledger_key_check_interval = 10000;
bool		ledger_require_secure_transport = true;
bool		ledger_require_key_grant = true;
int			ledger_key_change_batch = 1000;
int			ledger_root_key_rotation_period = 0;
int			ledger_provider_key_rotation_period = 0;

void
ledger_define_gucs(void)
{
	DefineCustomStringVariable("ledger.keyring_file",
							   "Path of the keyring file of the embedded file key provider.",
							   "It must lie outside the data directory and be readable by "
							   "the server's OS user only.  A relative path is taken "
							   "relative to the data directory.",
							   &ledger_keyring_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("ledger.analyze_sealed_columns",
							 "Lets ANALYZE collect statistics on sealed columns of new ledger tables.",
							 "Statistics hold sample values in the clear in pg_statistic.  "
							 "Applies to columns created while it is on.",
							 &ledger_analyze_sealed_columns,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("ledger.default_deletion_protection",
							 "Deletion protection of newly created ledger tables.",
							 "A protected ledger table cannot be dropped until "
							 "ledger_set_deletion_protection() turns protection off.",
							 &ledger_default_deletion_protection,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("ledger.seal_interval",
							"Time between two rounds of the ledger worker's sealing.",
							"Committed transactions are chained into a new block at "
							"least this often; ledger_digest() seals at once.",
							&ledger_seal_interval,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ledger.key_check_interval",
							"Time between two checks that the provider key still works.",
							"A ledger whose provider key fails a check refuses every read "
							"and write of ledger data until a later check succeeds.",
							&ledger_key_check_interval,
							10000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("ledger.require_secure_transport",
							 "Refuses access to ledger data over TCP connections without encryption.",
							 "Unix-domain socket connections are always allowed.",
							 &ledger_require_secure_transport,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("ledger.require_key_grant",
							 "Requires membership in ledger_key_user to read or write ledger rows.",
							 "Off, table privileges alone decide, as for any table.",
							 &ledger_require_key_grant,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("ledger.key_change_batch",
							"Keys the worker re-wraps or replaces in one transaction of a key change.",
							"Each batch commits with its progress, so a crash loses at most one batch "
							"of work, which is then done again.",
							&ledger_key_change_batch,
							1000, 1, 100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ledger.root_key_rotation_period",
							"Age at which the worker rotates the root key by itself; 0 turns it off.",
							"The rotation is the one ledger_rotate_key() queues: a new root key "
							"version, the data keys re-wrapped, the ledger available throughout.",
							&ledger_root_key_rotation_period,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ledger.provider_key_rotation_period",
							"Age at which the worker rotates the provider key's own material; 0 turns it off.",
							"For providers that hold their key material (file): a new version of "
							"the provider key, then a provider key change that re-wraps the root "
							"key with it.  A KMS or an HSM rotates its keys by its own policy.",
							&ledger_provider_key_rotation_period,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("ledger");
}
