/*
 * cmd_prune.c - `fbl prune`: retention by whole months, raw mail on its own schedule
 *
 * Every table in fbl is partitioned by UTC month on received_at. A month
 * goes when all of it is older than the cutoff (now - --older-than, or
 * [retention] keep): fbl.drop_month() (schema/005_analyst.sql) detaches and
 * drops that month's partition of every table in one transaction, so a month
 * is there whole or gone whole. Rows older than the cutoff in the DEFAULT
 * partitions are deleted (fbl.prune_defaults). The current month and the
 * DEFAULT partitions themselves are never dropped.
 *
 * Raw mail (--raw-older-than, or [retention] raw_keep) is kept for a shorter
 * time: fbl.mails.raw is set to NULL for mails delivered before its cutoff
 * (to the second, not by month), one partition per transaction, and that
 * partition is vacuumed so its TOAST space is given back. Mails without raw
 * bytes are skipped by fbl reparse. Months being dropped are not rewritten.
 *
 * Locks: DETACH needs ACCESS EXCLUSIVE on each parent for a moment; a long
 * query holding it up makes fbl.drop_month fail on its lock_timeout (5 s)
 * rather than stall the writers queued behind it, and the month is tried
 * again after a pause, up to RETRIES times. Needs the tables' owner (the
 * role that ran fbl migrate). The statements are sink/prune.h's.
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <glib.h>

#include "fbl/config.h"
#include "fbl/value.h"
#include "sink/prune.h"

/* Tries of one month when its locks time out, the pause doubling from 1 s. */
#define RETRIES 5
/* At most this many days (a hundred years) in an age. */
#define MAX_DAYS 36500u

typedef struct prune {
    fbl_prune *db;
    bool dry_run;
    gint64 now;
} prune;

/*
 * parse_days - an age in days as [retention] takes it (fbl/value.h: "180d",
 * "26w" or "180"); false unless it is 1 to MAX_DAYS days
 */
static bool parse_days(const char *text, unsigned *out)
{
    guint64 n = 0;
    if (fbl_value_parse_days(text, &n) != FBL_VALUE_OK || n < 1 || n > MAX_DAYS)
        return false;
    *out = (unsigned) n;
    return true;
}

static char *iso_utc(gint64 t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

/* "1234567" -> "1,234,567" */
static char *group_digits(const char *digits)
{
    size_t len = strlen(digits);
    GString *out = g_string_new(NULL);
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            g_string_append_c(out, ',');
        g_string_append_c(out, digits[i]);
    }
    return g_string_free(out, FALSE);
}

/* The sysexits code of @error (sink/pgconn.h), with a message on stderr. */
static int failed(const GError *error)
{
    (void) fprintf(stderr, "fbl prune: %s\n", error->message);
    if (error->code == FBL_PG_ERROR_PRIVILEGE)
        (void) fprintf(stderr,
                       "fbl prune: run it as the owner of the fbl tables (who ran fbl migrate)\n");
    else if (error->code == FBL_PG_ERROR_SCHEMA)
        (void) fprintf(stderr, "fbl prune: the schema is missing or old (run fbl migrate)\n");
    return fbl_pg_error_exit_code(error);
}

/* Drop the month @m; the tries after a lock timeout wait 1 s, 2 s, 4 s … */
static int drop_month(const prune *p, const fbl_prune_month *m, const char *reports)
{
    gulong pause = G_USEC_PER_SEC;
    for (int attempt = 1;; attempt++) {
        g_autoptr(GError) error = NULL;
        guint64 partitions = 0;
        if (fbl_prune_drop_month(p->db, m->start, &partitions, &error)) {
            (void) printf("fbl prune: dropped %s: %" G_GUINT64_FORMAT
                          " partitions, about %s reports\n",
                          m->label, partitions, reports);
            return EX_OK;
        }
        if (!fbl_prune_error_is_busy(error) || attempt == RETRIES) {
            g_prefix_error(&error, "%s: ", m->label);
            return failed(error);
        }
        (void) fprintf(stderr, "fbl prune: %s: tables busy, trying again in %lu s\n", m->label,
                       pause / G_USEC_PER_SEC);
        g_usleep(pause);
        pause *= 2;
    }
}

static int prune_months(const prune *p, unsigned days)
{
    g_autoptr(GError) error = NULL;
    gint64 cutoff = p->now - (gint64) days * 86400;
    g_autofree char *cutoff_text = iso_utc(cutoff);
    g_autoptr(GPtrArray) months = NULL;
    if (!fbl_prune_list_months(p->db, cutoff, &months, &error))
        return failed(error);
    (void) printf("fbl prune: keeping %u days: %s the months that ended by %s%s\n", days,
                  p->dry_run ? "would drop" : "dropping", cutoff_text,
                  months->len == 0 ? " (none)" : "");
    int rc = EX_OK;
    for (guint i = 0; rc == EX_OK && i < months->len; i++) {
        const fbl_prune_month *m = g_ptr_array_index(months, i);
        g_autofree char *count = g_strdup_printf("%" G_GUINT64_FORMAT, m->reports);
        g_autofree char *reports = group_digits(count);
        if (p->dry_run)
            (void) printf("fbl prune: would drop %s: %" G_GUINT64_FORMAT
                          " partitions, about %s reports\n",
                          m->label, m->partitions, reports);
        else
            rc = drop_month(p, m, reports);
    }
    if (rc != EX_OK)
        return rc;
    guint64 rows = 0;
    if (!fbl_prune_defaults(p->db, cutoff, p->dry_run, &rows, &error))
        return failed(error);
    if (rows > 0) {
        g_autofree char *digits = g_strdup_printf("%" G_GUINT64_FORMAT, rows);
        g_autofree char *pretty = group_digits(digits);
        (void) printf("fbl prune: %s %s rows delivered before %s from the DEFAULT partitions\n",
                      p->dry_run ? "would delete" : "deleted", pretty, cutoff_text);
    }
    return EX_OK;
}

static int prune_raw(const prune *p, unsigned raw_days, unsigned days)
{
    g_autoptr(GError) error = NULL;
    gint64 cutoff = p->now - (gint64) raw_days * 86400;
    gint64 keep_cutoff = days > 0 ? p->now - (gint64) days * 86400 : 0;
    g_auto(GStrv) parts = NULL;
    if (!fbl_prune_raw_partitions(p->db, cutoff, keep_cutoff, &parts, &error))
        return failed(error);
    guint64 total = 0;
    unsigned touched = 0;
    for (size_t i = 0; parts[i] != NULL; i++) {
        guint64 n = 0;
        if (!fbl_prune_clear_raw(p->db, parts[i], cutoff, p->dry_run, &n, &error))
            return failed(error);
        total += n;
        touched += n > 0;
    }
    g_autofree char *cutoff_text = iso_utc(cutoff);
    g_autofree char *digits = g_strdup_printf("%" G_GUINT64_FORMAT, total);
    g_autofree char *pretty = group_digits(digits);
    (void) printf(
        "fbl prune: keeping raw mail %u days: %s the raw bytes of %s mails delivered before "
        "%s (%u partitions)\n",
        raw_days, p->dry_run ? "would clear" : "cleared", pretty, cutoff_text, touched);
    return EX_OK;
}

static int run_prune(const char *conninfo, unsigned days, unsigned raw_days, bool dry_run)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_prune) db = fbl_prune_new(conninfo, &error);
    if (db == NULL)
        return failed(error);
    prune p = {.db = db, .dry_run = dry_run, .now = g_get_real_time() / G_USEC_PER_SEC};
    int rc = EX_OK;
    if (days > 0)
        rc = prune_months(&p, days);
    if (rc == EX_OK && raw_days > 0)
        rc = prune_raw(&p, raw_days, days);
    if (fflush(stdout) != 0 && rc == EX_OK)
        rc = EX_IOERR;
    return rc;
}

int fbl_cmd_prune(int argc, char **argv)
{
    g_autofree char *config_file = NULL, *db = NULL, *older = NULL, *raw_older = NULL;
    gboolean dry_run = FALSE;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
         "The configuration file (default: $FBL_CONFIG, else built-in defaults)", "FILE"},
        {"db", 0, 0, G_OPTION_ARG_STRING, &db,
         "PostgreSQL conninfo or URI (default: [postgres] conninfo)", "CONNINFO"},
        {"older-than", 0, 0, G_OPTION_ARG_STRING, &older,
         "Drop the months older than AGE (default: [retention] keep)", "AGE"},
        {"raw-older-than", 0, 0, G_OPTION_ARG_STRING, &raw_older,
         "Clear the raw mail older than AGE (default: [retention] raw_keep)", "AGE"},
        {"dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "Say what would go, change nothing", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(
        ctx, "Drop whole months of old data: every table's partition of each UTC month that\n"
             "ended before now - AGE, one month per transaction (never the current month).\n"
             "Raw mail may go sooner: --raw-older-than clears fbl.mails.raw (reports, rejects\n"
             "and the mails' other columns stay; fbl reparse skips such mails).\n"
             "AGE is a number of days: 180d, 26w, or 180. Run it as the tables' owner, daily\n"
             "from cron or a systemd timer.\n"
             "Exit status: 0 on success, 64 on a usage error, 69 when PostgreSQL cannot be\n"
             "reached or tables stayed busy (run it again), 77 without the owner's rights,\n"
             "78 on a config error or an old schema.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, 0))
        return EX_USAGE;
    int status = EX_OK;
    g_autoptr(fbl_config) config = fbl_cmd_load_config("prune", config_file, db, &status);
    if (config == NULL)
        return status;
    unsigned days = config->retention_keep_days, raw_days = config->retention_raw_keep_days;
    if (older != NULL && !parse_days(older, &days)) {
        (void) fprintf(stderr, "fbl prune: --older-than '%s' is not a number of days (180d, 26w)\n",
                       older);
        return EX_USAGE;
    }
    if (raw_older != NULL && !parse_days(raw_older, &raw_days)) {
        (void) fprintf(stderr,
                       "fbl prune: --raw-older-than '%s' is not a number of days (30d, 4w)\n",
                       raw_older);
        return EX_USAGE;
    }
    if (days == 0 && raw_days == 0) {
        (void) printf(
            "fbl prune: nothing to do: no --older-than or --raw-older-than, and [retention] "
            "keep and raw_keep are 0 (keep everything)\n");
        return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
    }
    return run_prune(config->pg_conninfo, days, raw_days, dry_run);
}
