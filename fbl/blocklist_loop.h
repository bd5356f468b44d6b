/*
 * blocklist_loop.h - the sink's re-export: the blocklist files of [blocklist]
 * export_* kept up to date, so no cron job is needed
 *
 * Layer: fbl/. One thread (beside the sink loop in `fbl sink` and `fbl run`)
 * with one PostgreSQL connection of its own: ingestion never waits for it.
 * Every [blocklist] export_interval it computes the listed IPs and domains
 * (fbl_blocklist_listed(), the policy of fbl/blocklist.h) and rewrites the
 * files of a kind only when that kind's listed set changed since its last
 * export (or at the first turn), atomically (fbl/blocklist_export.h). A
 * listed set also changes without new reports, when an entry's delisting
 * time passes: the turn after it, the files drop it.
 *
 * Metrics (sink role): fbl_blocklist_listed{kind} (the last computed counts),
 * fbl_blocklist_exports_total{kind}, fbl_blocklist_last_export_timestamp_seconds{kind}.
 * Errors: PostgreSQL unreachable or failing is logged (a warning, at most
 * once per failure streak) and retried at the next turn, reconnecting; a
 * file that cannot be written is logged as an error and retried at the next
 * turn. Neither stops the sink.
 */
#ifndef FBL_BLOCKLIST_LOOP_H
#define FBL_BLOCKLIST_LOOP_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"

typedef struct fbl_blocklist_loop fbl_blocklist_loop;

/* fbl_blocklist_loop_wanted - @config names at least one export_* file */
bool fbl_blocklist_loop_wanted(const fbl_config *config);

/*
 * fbl_blocklist_loop_new - the loop for @config (which outlives it); reads
 * the allowlist file
 *
 * Returns: (transfer full) or NULL with FBL_CONFIG_ERROR_VALUE naming the
 *   file and line of allowlist_file and what is wrong with the file it names.
 */
fbl_blocklist_loop *fbl_blocklist_loop_new(const fbl_config *config, GError **error);
void fbl_blocklist_loop_free(fbl_blocklist_loop *loop);

/*
 * fbl_blocklist_loop_run - export until fbl_daemon_stopping()
 *
 * Returns: true (failures are retried, never returned).
 */
bool fbl_blocklist_loop_run(fbl_blocklist_loop *loop, GError **error);

#endif /* FBL_BLOCKLIST_LOOP_H */
