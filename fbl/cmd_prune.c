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
 * role that ran fbl migrate).
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <glib.h>
#include <libpq-fe.h>

#include "fbl/config.h"

/* Tries of one month when its locks time out, the pause doubling from 1 s. */
#define RETRIES 5
/* At most this many days (a hundred years) in an age. */
#define MAX_DAYS 36500u

typedef struct prune {
    PGconn *conn;
    bool dry_run;
    gint64 now;
} prune;

/*
 * parse_days - an age in days: "180d", "26w" or "180" (days); false unless
 * it is 1 to MAX_DAYS days
 */
static bool parse_days(const char *text, unsigned *out)
{
    size_t len = strlen(text);
    unsigned mult = 1;
    g_autofree char *digits = g_strdup(text);
    if (len > 1 && (text[len - 1] == 'd' || text[len - 1] == 'w')) {
        mult = text[len - 1] == 'w' ? 7 : 1;
        digits[len - 1] = '\0';
    }
    guint64 n;
    if (!g_ascii_string_to_unsigned(digits, 10, 1, MAX_DAYS / mult, &n, NULL))
        return false;
    *out = (unsigned) n * mult;
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

/* The sysexits code of a failed statement, with a message on stderr. */
static int failed(const prune *p, const PGresult *res, const char *what)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(p->conn);
    g_autofree char *text = g_strchomp(g_strdup(msg != NULL ? msg : "unknown error"));
    (void) fprintf(stderr, "fbl prune: %s: %s\n", what, text);
    if (state == NULL || PQstatus(p->conn) != CONNECTION_OK || strncmp(state, "08", 2) == 0)
        return EX_UNAVAILABLE;
    if (strcmp(state, "42501") == 0) {
        (void) fprintf(stderr,
                       "fbl prune: run it as the owner of the fbl tables (who ran fbl migrate)\n");
        return EX_NOPERM;
    }
    if (strcmp(state, "42883") == 0 || strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0) {
        (void) fprintf(stderr, "fbl prune: the schema is missing or old (run fbl migrate)\n");
        return EX_CONFIG;
    }
    if (strncmp(state, "40", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57", 2) == 0 || strcmp(state, "55P03") == 0)
        return EX_TEMPFAIL;
    return EX_SOFTWARE;
}

/* Run @sql with text parameters; NULL and a sysexits code in @rc on failure. */
static PGresult *query(const prune *p, const char *sql, int n, const char *const *params,
                       const char *what, int *rc)
{
    PGresult *res = PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    *rc = failed(p, res, what);
    PQclear(res);
    return NULL;
}

/* A lock timeout or deadlock: worth another try after a pause. */
static bool busy(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state != NULL && (strcmp(state, "55P03") == 0 || strcmp(state, "40P01") == 0);
}

/* Drop the month starting at @lo (text, as month_partitions gives it). */
static int drop_month(const prune *p, const char *lo, const char *label, const char *reports)
{
    const char *params[] = {lo};
    gulong pause = G_USEC_PER_SEC;
    for (int attempt = 1;; attempt++) {
        PGresult *res = PQexecParams(p->conn, "SELECT fbl.drop_month($1::timestamptz)", 1, NULL,
                                     params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            (void) printf("fbl prune: dropped %s: %s partitions, about %s reports\n", label,
                          PQgetvalue(res, 0, 0), reports);
            PQclear(res);
            return EX_OK;
        }
        if (!busy(res) || attempt == RETRIES) {
            g_autofree char *what = g_strdup_printf("drop %s", label);
            int rc = failed(p, res, what);
            PQclear(res);
            return rc;
        }
        (void) fprintf(stderr, "fbl prune: %s: tables busy, trying again in %lu s\n", label,
                       pause / G_USEC_PER_SEC);
        PQclear(res);
        g_usleep(pause);
        pause *= 2;
    }
}

/*
 * The whole months before @cutoff (and before the current month), oldest
 * first: each one's start, its YYYY-MM, partitions, and estimated reports.
 */
static const char months_sql[] =
    "SELECT lo, to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM'), count(*), "
    "       to_char(greatest(sum(c.reltuples) FILTER (WHERE m.parent = 'reports'), 0), "
    "               'FM999,999,999,990') "
    "FROM fbl.month_partitions() m "
    "JOIN pg_class c ON c.oid = ('fbl.' || quote_ident(m.partition))::regclass "
    "WHERE m.hi <= $1::timestamptz "
    "  AND m.hi <= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
    "GROUP BY lo ORDER BY lo";

static int prune_months(const prune *p, unsigned days)
{
    int rc = EX_OK;
    g_autofree char *cutoff = iso_utc(p->now - (gint64) days * 86400);
    const char *params[] = {cutoff};
    PGresult *res = query(p, months_sql, 1, params, "list the months", &rc);
    if (res == NULL)
        return rc;
    int n = PQntuples(res);
    (void) printf("fbl prune: keeping %u days: %s the months that ended by %s%s\n", days,
                  p->dry_run ? "would drop" : "dropping", cutoff, n == 0 ? " (none)" : "");
    for (int i = 0; rc == EX_OK && i < n; i++) {
        if (p->dry_run)
            (void) printf("fbl prune: would drop %s: %s partitions, about %s reports\n",
                          PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
        else
            rc = drop_month(p, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 3));
    }
    PQclear(res);
    if (rc != EX_OK)
        return rc;
    const char *dparams[] = {cutoff, p->dry_run ? "true" : "false"};
    res = query(p, "SELECT fbl.prune_defaults($1::timestamptz, $2::boolean)", 2, dparams,
                "prune the DEFAULT partitions", &rc);
    if (res == NULL)
        return rc;
    const char *rows = PQgetvalue(res, 0, 0);
    if (strcmp(rows, "0") != 0) {
        g_autofree char *pretty = group_digits(rows);
        (void) printf("fbl prune: %s %s rows delivered before %s from the DEFAULT partitions\n",
                      p->dry_run ? "would delete" : "deleted", pretty, cutoff);
    }
    PQclear(res);
    return EX_OK;
}

/* Clear raw mail before @cutoff in one partition of fbl.mails; @count: (out) mails. */
static int clear_raw_part(const prune *p, const char *part, const char *cutoff, guint64 *count)
{
    int rc = EX_OK;
    g_autofree char *ident = PQescapeIdentifier(p->conn, part, strlen(part));
    if (ident == NULL)
        return failed(p, NULL, "quote a partition name");
    g_autofree char *sql =
        p->dry_run ? g_strdup_printf("SELECT count(*) FROM fbl.%s WHERE received_at < $1 AND "
                                     "raw IS NOT NULL",
                                     ident)
                   : g_strdup_printf("UPDATE fbl.%s SET raw = NULL WHERE received_at < $1 AND "
                                     "raw IS NOT NULL",
                                     ident);
    const char *params[] = {cutoff};
    PGresult *res = query(p, sql, 1, params, part, &rc);
    if (res == NULL)
        return rc;
    *count = g_ascii_strtoull(p->dry_run ? PQgetvalue(res, 0, 0) : PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (p->dry_run || *count == 0)
        return EX_OK;
    /* Give the TOAST pages back: VACUUM truncates the emptied end of a relation. */
    g_autofree char *vacuum = g_strdup_printf("VACUUM fbl.%s", ident);
    res = query(p, vacuum, 0, NULL, part, &rc);
    PQclear(res);
    return rc;
}

/*
 * The partitions of fbl.mails that hold mail from before the raw cutoff and
 * are not dropped by this run (they end after @keep_cutoff), and DEFAULT.
 */
static const char raw_parts_sql[] =
    "SELECT partition FROM fbl.month_partitions() "
    "WHERE parent = 'mails' AND lo < $1::timestamptz AND hi > $2::timestamptz "
    "UNION ALL SELECT 'mails_default' WHERE to_regclass('fbl.mails_default') IS NOT NULL "
    "ORDER BY 1";

static int prune_raw(const prune *p, unsigned raw_days, unsigned days)
{
    int rc = EX_OK;
    g_autofree char *cutoff = iso_utc(p->now - (gint64) raw_days * 86400);
    g_autofree char *keep_cutoff =
        days > 0 ? iso_utc(p->now - (gint64) days * 86400) : g_strdup("-infinity");
    const char *params[] = {cutoff, keep_cutoff};
    PGresult *res = query(p, raw_parts_sql, 2, params, "list the mail partitions", &rc);
    if (res == NULL)
        return rc;
    guint64 total = 0;
    unsigned touched = 0;
    for (int i = 0; rc == EX_OK && i < PQntuples(res); i++) {
        guint64 n = 0;
        rc = clear_raw_part(p, PQgetvalue(res, i, 0), cutoff, &n);
        total += n;
        touched += n > 0;
    }
    PQclear(res);
    if (rc != EX_OK)
        return rc;
    g_autofree char *digits = g_strdup_printf("%" G_GUINT64_FORMAT, total);
    g_autofree char *pretty = group_digits(digits);
    (void) printf(
        "fbl prune: keeping raw mail %u days: %s the raw bytes of %s mails delivered before "
        "%s (%u partitions)\n",
        raw_days, p->dry_run ? "would clear" : "cleared", pretty, cutoff, touched);
    return EX_OK;
}

static int run_prune(const char *conninfo, unsigned days, unsigned raw_days, bool dry_run)
{
    const char *const keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
    const char *const values[] = {conninfo, "fbl prune", "UTF8", NULL};
    prune p = {.conn = PQconnectdbParams(keys, values, 1),
               .dry_run = dry_run,
               .now = g_get_real_time() / G_USEC_PER_SEC};
    if (p.conn == NULL || PQstatus(p.conn) != CONNECTION_OK) {
        g_autofree char *msg =
            g_strchomp(g_strdup(p.conn != NULL ? PQerrorMessage(p.conn) : "out of memory"));
        (void) fprintf(stderr, "fbl prune: cannot connect: %s\n", msg);
        PQfinish(p.conn);
        return EX_UNAVAILABLE;
    }
    int rc = EX_OK;
    if (days > 0)
        rc = prune_months(&p, days);
    if (rc == EX_OK && raw_days > 0)
        rc = prune_raw(&p, raw_days, days);
    PQfinish(p.conn);
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
             "reached, 75 when tables stayed busy (run it again), 77 without the owner's\n"
             "rights, 78 on a config error or an old schema.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        (void) fprintf(stderr, "fbl prune: %s\n", error->message);
        return EX_USAGE;
    }
    if (argc > 1) {
        (void) fprintf(stderr, "fbl prune: unexpected argument '%s' (see --help)\n", argv[1]);
        return EX_USAGE;
    }
    g_autoptr(fbl_config) config = fbl_config_load(config_file, &error);
    if (config == NULL) {
        (void) fprintf(stderr, "fbl prune: %s\n", error->message);
        return EX_CONFIG;
    }
    if (db != NULL && !fbl_config_set_conninfo(config, db, &error)) {
        (void) fprintf(stderr, "fbl prune: %s\n", error->message);
        return EX_USAGE;
    }
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
