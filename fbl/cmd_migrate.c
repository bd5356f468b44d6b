/* cmd_migrate.c - `fbl migrate`: apply the schema/ migrations this binary carries, then roll up
 * the reports stored before the hourly rollups (schema 012) */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <sysexits.h>

#include <glib.h>

#include "fbl/config.h"
#include "fbl/log.h"
#include "sink/pg.h"
#include "sink/schema_sql.h"

typedef struct {
    gint64 started_us;
    gint64 said_us;
    unsigned days;
} backfill_progress;

/* At most a line every five seconds: a day takes about one. */
static void on_backfill_day(const char *complete_since, void *data)
{
    backfill_progress *p = data;
    p->days++;
    gint64 now = g_get_monotonic_time();
    if (now - p->said_us < (gint64) 5 * G_USEC_PER_SEC)
        return;
    p->said_us = now;
    (void) fprintf(stderr,
                   "fbl migrate: rolling up stored reports: %u days done, back to %s (%.0f s)\n",
                   p->days, complete_since, (double) (now - p->started_us) / G_USEC_PER_SEC);
}

int fbl_cmd_migrate(int argc, char **argv)
{
    g_autofree char *config_file = NULL, *db = NULL, *level = NULL;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
         "The configuration file (default: $FBL_CONFIG, else built-in defaults)", "FILE"},
        {"db", 0, 0, G_OPTION_ARG_STRING, &db,
         "PostgreSQL conninfo or URI (default: [postgres] conninfo)", "CONNINFO"},
        {"log-level", 0, 0, G_OPTION_ARG_STRING, &level,
         "debug, info, notice, warning or error (default: [log] level)", "LEVEL"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(
        ctx, "Apply the database migrations (schema/NNN_*.sql, built into fbl) that the\n"
             "database lacks, each in its own transaction, under an advisory lock: safe to\n"
             "run while sinks start. Prints what it applied. Then it rolls up the reports\n"
             "stored before the hourly rollups existed (schema 012), a day per transaction,\n"
             "newest first, with progress on stderr: sinks go on storing meanwhile, and an\n"
             "interrupted run goes on from there the next time.\n"
             "Exit status: 0 when the schema is up to date, 64 on a usage error, 69 when\n"
             "PostgreSQL cannot be reached or fails for a while, 77 when a role or right\n"
             "the schema needs is missing (the error gives the SQL to run), 78 on a config\n"
             "error or a failed migration.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, 0))
        return EX_USAGE;
    int status = EX_OK;
    g_autoptr(fbl_config) config = fbl_cmd_load_config("migrate", config_file, db, &status);
    if (config == NULL)
        return status;
    GLogLevelFlags log_level = config->log_level;
    if (level != NULL && !fbl_log_level_from_string(level, &log_level)) {
        (void) fprintf(stderr, "fbl migrate: unknown log level '%s'\n", level);
        return EX_USAGE;
    }
    fbl_log_init(log_level);

    fbl_pg_options options = {.conninfo = config->pg_conninfo, .store_raw = config->sink_store_raw};
    g_autoptr(fbl_pg) pg = fbl_pg_new(&options, &error);
    if (pg == NULL)
        return fbl_cmd_pg_failed("migrate", error);
    unsigned applied = 0;
    if (!fbl_pg_migrate(pg, &applied, &error))
        return fbl_cmd_pg_failed("migrate", error);
    g_assert(fbl_schema_sql_count > 0);
    const fbl_schema_sql_migration *last = &fbl_schema_sql_migrations[fbl_schema_sql_count - 1];
    if (applied == 0)
        (void) printf("fbl migrate: the schema is up to date (version %03u_%s)\n", last->version,
                      last->name);
    else
        (void) printf("fbl migrate: applied %u migration%s; the schema is at version %03u_%s\n",
                      applied, applied == 1 ? "" : "s", last->version, last->name);
    if (fflush(stdout) != 0)
        return EX_IOERR;

    gint64 now = g_get_monotonic_time();
    backfill_progress progress = {.started_us = now, .said_us = now};
    if (!fbl_pg_rollup_backfill(pg, on_backfill_day, &progress, &error))
        return fbl_cmd_pg_failed("migrate", error);
    if (progress.days > 0)
        (void) printf("fbl migrate: rolled up %u day%s of stored reports in %.1f s\n",
                      progress.days, progress.days == 1 ? "" : "s",
                      (double) (g_get_monotonic_time() - progress.started_us) / G_USEC_PER_SEC);
    if (fflush(stdout) != 0)
        return EX_IOERR;
    return EX_OK;
}
