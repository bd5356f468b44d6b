/*
 * cmd_outbound.c - `fbl outbound import-volumes FILE`, `fbl outbound clear
 * ACCOUNT` and `fbl export accounts`: complaints about mail our own users
 * sent (README.md, "Outbound abuse"; schema/011_outbound.sql)
 *
 * The state of an account (ok, warn, act, cleared) is the SQL's
 * (fbl.outbound_accounts()); these commands pass [outbound]'s thresholds.
 * Reading account names needs fbl_security (or fbl_writer, or the owner).
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <glib.h>

#include "fbl/blocklist_export.h"
#include "fbl/config.h"
#include "fbl/outbound_export.h"
#include "sink/outbound_query.h"

/* A volumes file is read whole; a larger one is refused. */
#define VOLUMES_MAX_BYTES ((gsize) 64 << 20)

static const char exit_text[] =
    "Exit status: 0 on success, 64 on a usage error, 65 when the input is bad,\n"
    "66 when it cannot be read, 69 when PostgreSQL cannot be reached, 73 when the\n"
    "output cannot be written, 77 when the role may not (fbl_security reads and\n"
    "writes accounts), 78 on a config error or when the schema lacks\n"
    "011_outbound.sql (run fbl migrate).";

void fbl_cmd_outbound_rules(const fbl_config *c, fbl_outbound_rules *out)
{
    out->warn_ppm = c->outbound_warn_rate_ppm;
    out->act_ppm = c->outbound_act_rate_ppm;
    out->min_complaints = c->outbound_min_complaints;
}

static fbl_outbound_query *connect_to(const char *cmd, const fbl_config *c, int *status)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *app = g_strconcat("fbl ", cmd, NULL);
    fbl_outbound_query *q = fbl_outbound_query_new(c->pg_conninfo, app, &error);
    if (q == NULL)
        *status = fbl_cmd_pg_failed(cmd, error);
    return q;
}

/* ---- fbl export accounts ------------------------------------------------------------ */

static int export_accounts(const fbl_config *c, fbl_accounts_format format, const char *output)
{
    int status = EX_OK;
    g_autoptr(fbl_outbound_query) q = connect_to("export", c, &status);
    if (q == NULL)
        return status;
    fbl_outbound_rules rules;
    fbl_cmd_outbound_rules(c, &rules);
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    gint64 since = now - (gint64) c->outbound_window_days * 86400;
    g_autoptr(GPtrArray) accounts = NULL;
    g_autoptr(GError) error = NULL;
    if (!fbl_outbound_query_accounts(q, since, now + 1, &rules, false, &accounts, &error))
        return fbl_cmd_pg_failed("export", error);
    g_autoptr(GPtrArray) locked = g_ptr_array_new();
    for (guint i = 0; i < accounts->len; i++) {
        const fbl_outbound_account *a = g_ptr_array_index(accounts, i);
        if (g_strcmp0(a->state, "act") == 0)
            g_ptr_array_add(locked, a->account);
    }
    guint skipped = 0;
    g_autofree char *text = fbl_outbound_export_render(
        format, locked, (const char *const *) c->local_domains, c->outbound_lock_text, &skipped);
    if (!fbl_export_write_text(output, text, &error)) {
        (void) fprintf(stderr, "fbl export: %s\n", error->message);
        return EX_CANTCREAT;
    }
    (void) printf("fbl export: %u accounts locked, written to %s", locked->len - skipped, output);
    if (skipped > 0)
        (void) printf(" (%u left out: not a safe table key%s)", skipped,
                      format == FBL_ACCOUNTS_POSTFIX_SENDER ? ", or a bare login without [local] "
                                                              "domains"
                                                            : "");
    (void) printf("\n");
    return EX_OK;
}

int fbl_cmd_export_accounts(int argc, char **argv)
{
    g_autofree char *config_file = NULL, *db = NULL, *format = NULL, *output = NULL;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
         "The configuration file (default: $FBL_CONFIG, else built-in defaults)", "FILE"},
        {"db", 0, 0, G_OPTION_ARG_STRING, &db,
         "PostgreSQL conninfo or URI (default: [postgres] conninfo)", "CONNINFO"},
        {"format", 0, 0, G_OPTION_ARG_STRING, &format, "postfix-sender or postfix-sasl (required)",
         "FORMAT"},
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "The file to write (required)", "FILE"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("accounts");
    g_autofree char *summary = g_strconcat(
        "Write the locked accounts (state act over [outbound] window, not cleared since\n"
        "their last complaint: fbl.outbound_accounts()) as a Postfix access table:\n"
        "postfix-sender, the source of a hash: table for check_sender_access (a bare\n"
        "login is written LOGIN@DOMAIN for each [local] domain); postfix-sasl, for\n"
        "check_sasl_access (the SASL login). Each line answers \"REJECT 5.7.1\" and\n"
        "[outbound] lock_text. postmap the file after each export. The file is\n"
        "replaced atomically.\n",
        exit_text, NULL);
    g_option_context_set_summary(ctx, summary);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, 1))
        return EX_USAGE;
    fbl_accounts_format fmt = FBL_ACCOUNTS_POSTFIX_SENDER;
    if (!fbl_accounts_format_from_string(format, &fmt)) {
        (void) fprintf(stderr, "fbl export: --format must be postfix-sender or postfix-sasl\n");
        return EX_USAGE;
    }
    if (output == NULL || *output == '\0') {
        (void) fprintf(stderr, "fbl export: --output FILE is required\n");
        return EX_USAGE;
    }
    int status = EX_OK;
    g_autoptr(fbl_config) config = fbl_cmd_load_config("export", config_file, db, &status);
    if (config == NULL)
        return status;
    return export_accounts(config, fmt, output);
}

/* ---- fbl outbound import-volumes --------------------------------------------------- */

/* @text as a lower-case account (one word, printable, at most 255 bytes); NULL if not. */
static char *account_arg(const char *text)
{
    g_autofree char *t = g_strstrip(g_strdup(text));
    size_t n = strlen(t);
    if (n == 0 || n > 255 || !g_utf8_validate(t, -1, NULL))
        return NULL;
    for (const char *p = t; *p != '\0'; p++) {
        if ((unsigned char) *p <= 0x20 || *p == 0x7f)
            return NULL;
    }
    return g_ascii_strdown(t, -1);
}

static bool is_day(const char *text)
{
    g_autofree char *iso = g_strconcat(text, "T00:00:00Z", NULL);
    g_autoptr(GDateTime) dt = strlen(text) == 10 ? g_date_time_new_from_iso8601(iso, NULL) : NULL;
    return dt != NULL;
}

/* One CSV line "account,sent[,day]" into @out; false with why in @why. */
static bool volume_line(const char *line, const char *day, GPtrArray *out, const char **why)
{
    g_auto(GStrv) f = g_strsplit(line, ",", -1);
    guint n = g_strv_length(f);
    if (n < 2 || n > 3) {
        *why = "expected account,sent[,day]";
        return false;
    }
    g_autoptr(fbl_outbound_volume) v = g_new0(fbl_outbound_volume, 1);
    v->account = account_arg(f[0]);
    if (v->account == NULL) {
        *why = "the account is not one word of at most 255 bytes";
        return false;
    }
    if (!g_ascii_string_to_unsigned(g_strstrip(f[1]), 10, 0, G_MAXINT64, &v->sent, NULL)) {
        *why = "sent is not a whole number";
        return false;
    }
    const char *d = n == 3 ? g_strstrip(f[2]) : day;
    if (!is_day(d)) {
        *why = "the day is not YYYY-MM-DD";
        return false;
    }
    g_strlcpy(v->day, d, sizeof v->day);
    g_ptr_array_add(out, g_steal_pointer(&v));
    return true;
}

/* The volumes of CSV @text; NULL after saying which line is bad. */
static GPtrArray *read_volumes(const char *path, const char *text, const char *day)
{
    g_autoptr(GPtrArray) out =
        g_ptr_array_new_with_free_func((GDestroyNotify) fbl_outbound_volume_free);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (size_t i = 0; lines[i] != NULL; i++) {
        const char *line = g_strstrip(lines[i]);
        if (*line == '\0' || *line == '#')
            continue;
        const char *why = NULL;
        if (volume_line(line, day, out, &why))
            continue;
        /* A first line naming the columns ("account,sent,day") is a header. */
        if (out->len == 0 && g_ascii_strncasecmp(line, "account,", 8) == 0)
            continue;
        (void) fprintf(stderr, "fbl outbound: %s:%zu: %s\n", path, i + 1, why);
        return NULL;
    }
    return g_steal_pointer(&out);
}

static int import_volumes(const fbl_config *c, const char *path, const char *day)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, &len, &error)) {
        (void) fprintf(stderr, "fbl outbound: %s\n", error->message);
        return EX_NOINPUT;
    }
    if (len > VOLUMES_MAX_BYTES || strlen(text) != len) {
        (void) fprintf(stderr, "fbl outbound: %s: larger than 64 MiB, or not text\n", path);
        return EX_DATAERR;
    }
    g_autoptr(GPtrArray) volumes = read_volumes(path, text, day);
    if (volumes == NULL)
        return EX_DATAERR;
    int status = EX_OK;
    g_autoptr(fbl_outbound_query) q = connect_to("outbound", c, &status);
    if (q == NULL)
        return status;
    if (!fbl_outbound_query_import_volumes(q, volumes, &error))
        return fbl_cmd_pg_failed("outbound", error);
    (void) printf("fbl outbound: %u volumes loaded from %s\n", volumes->len, path);
    return EX_OK;
}

/* ---- fbl outbound clear ------------------------------------------------------------ */

static int clear(const fbl_config *c, const char *account, const char *reason)
{
    int status = EX_OK;
    g_autoptr(fbl_outbound_query) q = connect_to("outbound", c, &status);
    if (q == NULL)
        return status;
    const char *os_user = g_get_user_name();
    gint64 at = 0;
    g_autoptr(GError) error = NULL;
    if (!fbl_outbound_query_clear(q, account, os_user, reason, &at, &error))
        return fbl_cmd_pg_failed("outbound", error);
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(at);
    g_autofree char *when = dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : NULL;
    (void) printf("fbl outbound: %s cleared at %s by %s; re-export the accounts table\n", account,
                  when != NULL ? when : "?", os_user);
    return EX_OK;
}

int fbl_cmd_outbound(int argc, char **argv)
{
    g_autofree char *config_file = NULL, *db = NULL, *reason = NULL, *day = NULL;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
         "The configuration file (default: $FBL_CONFIG, else built-in defaults)", "FILE"},
        {"db", 0, 0, G_OPTION_ARG_STRING, &db,
         "PostgreSQL conninfo or URI (default: [postgres] conninfo)", "CONNINFO"},
        {"reason", 0, 0, G_OPTION_ARG_STRING, &reason, "clear: why, kept in the audit table",
         "TEXT"},
        {"day", 0, 0, G_OPTION_ARG_STRING, &day,
         "import-volumes: the day of lines without one (default: today, UTC)", "YYYY-MM-DD"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("import-volumes FILE | clear ACCOUNT");
    g_autofree char *summary =
        g_strconcat("Complaints about mail our own users sent ([local], [outbound]).\n\n"
                    "import-volumes FILE  load daily send counts, CSV lines account,sent[,day]\n"
                    "                     (a first line account,sent,... is a header); a day\n"
                    "                     already loaded for an account is replaced. They make\n"
                    "                     the complaint rate of fbl.outbound_accounts.\n"
                    "clear ACCOUNT        record in fbl.outbound_clears (with the database user,\n"
                    "                     this OS user and --reason) that ACCOUNT is safe again:\n"
                    "                     it is not exported until complaints delivered after the\n"
                    "                     clear lock it again. Re-export the table afterwards.\n",
                    exit_text, NULL);
    g_option_context_set_summary(ctx, summary);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, 2))
        return EX_USAGE;
    bool import = argc == 3 && strcmp(argv[1], "import-volumes") == 0;
    if (!import && !(argc == 3 && strcmp(argv[1], "clear") == 0)) {
        (void) fprintf(stderr, "fbl outbound: usage: fbl outbound import-volumes FILE | "
                               "clear ACCOUNT (see --help)\n");
        return EX_USAGE;
    }
    if (day == NULL) {
        g_autoptr(GDateTime) now = g_date_time_new_now_utc();
        day = g_date_time_format(now, "%Y-%m-%d");
    } else if (!is_day(day)) {
        (void) fprintf(stderr, "fbl outbound: --day '%s' is not YYYY-MM-DD\n", day);
        return EX_USAGE;
    }
    g_autofree char *account = import ? NULL : account_arg(argv[2]);
    if (!import && account == NULL) {
        (void) fprintf(stderr, "fbl outbound: '%s' is not an account\n", argv[2]);
        return EX_USAGE;
    }
    int status = EX_OK;
    g_autoptr(fbl_config) config = fbl_cmd_load_config("outbound", config_file, db, &status);
    if (config == NULL)
        return status;
    return import ? import_volumes(config, argv[2], day) : clear(config, account, reason);
}
