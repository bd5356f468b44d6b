/* cmd_reparse.c - `fbl reparse`: run today's parsers over the raw mail in PostgreSQL */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <glib.h>

#include "fbl/config.h"
#include "fbl/log.h"
#include "fbl/timearg.h"
#include "parsers/parse.h"
#include "sink/pg.h"

typedef struct run {
    const fbl_config *config;
    fbl_mail_meta meta; /* the last mailbox's defaults, handed to fbl_pg_reparse */
    bool progress;      /* stderr is a terminal */
    gint64 last_progress;
} run;

/* Per-mailbox defaults from [mailbox:NAME]; unknown mailboxes get pg.c's (abuse). */
static const fbl_mail_meta *mailbox_defaults(const char *mailbox, void *data)
{
    run *r = data;
    const fbl_mailbox_config *m = fbl_config_find_mailbox(r->config, mailbox);
    if (m == NULL)
        return NULL;
    r->meta = (fbl_mail_meta){
        .mailbox = m->name, .default_feedback_type = m->feedback_type, .raw = m->raw};
    return &r->meta;
}

static void show_progress(guint64 done, guint64 total, void *data)
{
    run *r = data;
    gint64 now = g_get_monotonic_time();
    if (!r->progress || (now - r->last_progress < G_USEC_PER_SEC / 2 && done < total))
        return;
    r->last_progress = now;
    (void) fprintf(stderr,
                   "\rfbl reparse: %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " mails (%u%%)", done,
                   total, total > 0 ? (unsigned) (done * 100 / total) : 100u);
}

/* Reparse with @config; prints the summary. Returns a sysexits code. */
static int reparse(const fbl_config *config, int64_t since, int64_t until, unsigned batch)
{
    g_autoptr(GError) error = NULL;
    fbl_parse_options popts;
    fbl_config_parse_options(config, &popts);
    g_autoptr(fbl_parser) parser = fbl_parser_new(&popts, &error);
    if (parser == NULL) {
        (void) fprintf(stderr, "fbl reparse: %s\n", error->message);
        return EX_CONFIG;
    }
    g_autofree const char **vendors = fbl_config_vendor_names(config);
    fbl_pg_options options = {
        .conninfo = config->pg_conninfo, .vendors = vendors, .store_raw = config->sink_store_raw};
    g_autoptr(fbl_pg) pg = fbl_pg_new(&options, &error);
    if (pg == NULL)
        return fbl_cmd_pg_failed("reparse", error);
    run r = {.config = config, .progress = isatty(STDERR_FILENO)};
    guint64 changed = 0;
    gint64 start = g_get_monotonic_time();
    fbl_pg_reparse_options ro = {.parser = parser,
                                 .since = since,
                                 .until = until,
                                 .batch_size = batch,
                                 .defaults = mailbox_defaults,
                                 .defaults_data = &r,
                                 .progress = show_progress,
                                 .progress_data = &r};
    bool ok = fbl_pg_reparse(pg, &ro, &changed, &error);
    if (r.progress && r.last_progress != 0)
        (void) fputc('\n', stderr);
    if (!ok) {
        (void) fprintf(stderr, "fbl reparse: %s (run it again: what was done is kept)\n",
                       error->message);
        return fbl_pg_error_exit_code(error);
    }
    (void) printf("fbl reparse: %" G_GUINT64_FORMAT " mail%s changed, in %.1f s\n", changed,
                  changed == 1 ? "" : "s",
                  (double) (g_get_monotonic_time() - start) / G_USEC_PER_SEC);
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}

int fbl_cmd_reparse(int argc, char **argv)
{
    g_autofree char *config_file = NULL, *db = NULL, *since = NULL, *until = NULL;
    g_autofree char *level = NULL;
    gint batch = 200;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
         "The configuration file (default: $FBL_CONFIG, else built-in defaults)", "FILE"},
        {"db", 0, 0, G_OPTION_ARG_STRING, &db,
         "PostgreSQL conninfo or URI (default: [postgres] conninfo)", "CONNINFO"},
        {"since", 0, 0, G_OPTION_ARG_STRING, &since,
         "Only mails delivered at or after T (default: the first)", "T"},
        {"until", 0, 0, G_OPTION_ARG_STRING, &until,
         "Only mails delivered before T (default: the last)", "T"},
        {"batch", 0, 0, G_OPTION_ARG_INT, &batch, "Mails per transaction (default: 200)", "N"},
        {"log-level", 0, 0, G_OPTION_ARG_STRING, &level,
         "debug, info, notice, warning or error (default: [log] level)", "LEVEL"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(
        ctx, "Run today's parsers over the raw mail stored in PostgreSQL and replace the\n"
             "reports and rejects of every mail whose result changed, so a parser fix\n"
             "reaches history. Idempotent: a second run changes nothing. New reports get\n"
             "vendor outbox rows; reports already sent are not sent again.\n"
             "T is epoch seconds, ISO-8601 (UTC unless it says otherwise; 2026-01-31 is\n"
             "its midnight UTC) or an age: 90s, 30m, 24h, 7d, 2w ago.\n"
             "Mailbox defaults (feedback_type, raw) come from [mailbox:NAME] by the name\n"
             "stored with each mail.\n"
             "Exit status: 0 on success, 64 on a usage error, 65 when PostgreSQL refuses\n"
             "the data, 69 when PostgreSQL cannot be reached or fails for a while, 77 when\n"
             "a right is missing, 78 on a config or schema error.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, 0))
        return EX_USAGE;
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    gint64 since_t = 0, until_t = 0;
    if (since != NULL && !fbl_time_arg_parse(since, now, &since_t)) {
        (void) fprintf(stderr, "fbl reparse: --since '%s' is not a time\n", since);
        return EX_USAGE;
    }
    if (until != NULL && !fbl_time_arg_parse(until, now, &until_t)) {
        (void) fprintf(stderr, "fbl reparse: --until '%s' is not a time\n", until);
        return EX_USAGE;
    }
    if (since_t != 0 && until_t != 0 && until_t <= since_t) {
        (void) fprintf(stderr, "fbl reparse: --until is not after --since\n");
        return EX_USAGE;
    }
    if (batch < 1 || batch > 100000) {
        (void) fprintf(stderr, "fbl reparse: --batch must be 1 to 100000\n");
        return EX_USAGE;
    }
    int status = EX_OK;
    g_autoptr(fbl_config) config = fbl_cmd_load_config("reparse", config_file, db, &status);
    if (config == NULL)
        return status;
    GLogLevelFlags log_level = config->log_level;
    if (level != NULL && !fbl_log_level_from_string(level, &log_level)) {
        (void) fprintf(stderr, "fbl reparse: unknown log level '%s'\n", level);
        return EX_USAGE;
    }
    fbl_log_init(log_level);
    fbl_parsers_init();
    int rc = reparse(config, since_t, until_t, (unsigned) batch);
    fbl_parsers_shutdown();
    return rc;
}
