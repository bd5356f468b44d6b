/*
 * cmd_report.c - `fbl report`: the analysts' headline tables for a window
 *
 * The options, the window and where the document goes; the tables and the
 * formats are fbl/analyst_report.h's, which the sink's report thread
 * (fbl/report_loop.h) calls too. --output FILE writes any format to FILE
 * (atomically).
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <glib.h>

#include "fbl/analyst_report.h"
#include "fbl/config.h"
#include "fbl/timearg.h"
#include "sink/report_query.h"

/* The sysexits code of @error (sink/pgconn.h), with a message on stderr. */
static int failed(const GError *error)
{
    if (error->code == FBL_PG_ERROR_SCHEMA)
        (void) fprintf(stderr, "fbl report: %s (the analyst views are missing: run fbl migrate)\n",
                       error->message);
    else
        (void) fprintf(stderr, "fbl report: %s\n", error->message);
    return fbl_pg_error_exit_code(error);
}

/* The report into @path: a temporary file beside it, then rename (no reader sees half). */
static int write_file(const char *path, const GString *out)
{
    g_autoptr(GError) error = NULL;
    if (g_file_set_contents_full(path, out->str, (gssize) out->len, G_FILE_SET_CONTENTS_CONSISTENT,
                                 0644, &error))
        return EX_OK;
    (void) fprintf(stderr, "fbl report: %s\n", error->message);
    return EX_IOERR;
}

static int report(const fbl_config *config, fbl_analyst_report_format format,
                  const fbl_analyst_report_window *window, const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_report_query) db =
        fbl_report_query_new(config->pg_conninfo, "fbl report", &error);
    if (db == NULL)
        return failed(error);
    g_autoptr(GString) out = g_string_new(NULL);
    if (!fbl_analyst_report_make(db, config, format, window, out, &error))
        return failed(error);
    if (path != NULL)
        return write_file(path, out);
    if (fwrite(out->str, 1, out->len, stdout) != out->len || fflush(stdout) != 0)
        return EX_IOERR;
    return EX_OK;
}

int fbl_cmd_report(int argc, char **argv)
{
    g_autofree char *config_file = NULL, *db = NULL, *since = NULL, *until = NULL;
    g_autofree char *format = NULL, *output = NULL, *now_arg = NULL;
    gint top = FBL_ANALYST_REPORT_DEFAULT_TOP;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
         "The configuration file (default: $FBL_CONFIG, else built-in defaults)", "FILE"},
        {"db", 0, 0, G_OPTION_ARG_STRING, &db,
         "PostgreSQL conninfo or URI (default: [postgres] conninfo)", "CONNINFO"},
        {"since", 0, 0, G_OPTION_ARG_STRING, &since,
         "Reports delivered at or after T (default: 24h)", "T"},
        {"until", 0, 0, G_OPTION_ARG_STRING, &until, "Reports delivered before T (default: now)",
         "T"},
        {"format", 0, 0, G_OPTION_ARG_STRING, &format, "text (default), csv, json or html",
         "FORMAT"},
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
         "Write the report to FILE (atomically) instead of stdout", "FILE"},
        {"top", 0, 0, G_OPTION_ARG_INT, &top, "Rows of each top table (default: 10; 0: all)", "N"},
        /* For tests: the document the sink's report thread wrote at T, byte for byte. */
        {"now", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &now_arg,
         "Take T (epoch seconds) as the time now: ages and the open end count from it", "T"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(
        ctx, "Print the analysts' headline tables for a window of delivery times: reports by\n"
             "mailbox and feedback type and over time, top source IPs, sender domains, URL\n"
             "hosts, campaigns and reporters (pseudonymized), false positives, the vendor\n"
             "feed and rejected mails, with totals; --format html makes one self-contained\n"
             "page with charts. Reads only the analyst views, so a role\n"
             "with fbl_analyst's rights is enough. With [local] set, an outbound section:\n"
             "our accounts with complaints (state ok, warn, act or cleared; pseudonymised\n"
             "unless the role may read names: fbl_security) and our sending IPs.\n"
             "T is epoch seconds, ISO-8601 (UTC unless it says otherwise; 2026-01-31 is its\n"
             "midnight UTC) or an age: 90s, 30m, 24h, 7d, 2w ago.\n"
             "Exit status: 0 on success, 64 on a usage error, 69 when PostgreSQL cannot be\n"
             "reached or fails for a while, 77 when the role may not read the views, 78 on\n"
             "a config error or when the schema lacks them (run fbl migrate).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, 0))
        return EX_USAGE;
    fbl_analyst_report_format fmt = FBL_ANALYST_REPORT_TEXT;
    if (format != NULL && !fbl_analyst_report_format_from_string(format, &fmt)) {
        (void) fprintf(stderr, "fbl report: --format must be text, csv, json or html\n");
        return EX_USAGE;
    }
    if (top < 0 || top > FBL_ANALYST_REPORT_MAX_TOP) {
        (void) fprintf(stderr, "fbl report: --top must be 0 to %d\n", FBL_ANALYST_REPORT_MAX_TOP);
        return EX_USAGE;
    }
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    if (now_arg != NULL && !fbl_time_arg_parse(now_arg, now, &now)) {
        (void) fprintf(stderr, "fbl report: --now '%s' is not a time\n", now_arg);
        return EX_USAGE;
    }
    fbl_analyst_report_window w = {now - 86400, now, until == NULL, (guint) top};
    if (since != NULL && !fbl_time_arg_parse(since, now, &w.since)) {
        (void) fprintf(stderr, "fbl report: --since '%s' is not a time\n", since);
        return EX_USAGE;
    }
    if (until != NULL && !fbl_time_arg_parse(until, now, &w.until)) {
        (void) fprintf(stderr, "fbl report: --until '%s' is not a time\n", until);
        return EX_USAGE;
    }
    if (w.until <= w.since) {
        (void) fprintf(stderr, "fbl report: --until is not after --since\n");
        return EX_USAGE;
    }
    int status = EX_OK;
    g_autoptr(fbl_config) config = fbl_cmd_load_config("report", config_file, db, &status);
    if (config == NULL)
        return status;
    return report(config, fmt, &w, output);
}
