/* cmd_parse.c - `fbl parse`: report mails in, normalized JSON lines out */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <jansson.h>

#include "fbl/log.h"
#include "fbl/mailfile.h"
#include "parsers/parse.h"
#include "parsers/report_json.h"

typedef struct run {
    fbl_parser *parser;
    fbl_mail_meta meta;
    bool pretty;
    bool with_path;
    bool fixed_time; /* --received-at given */
    unsigned files, failed;
    bool progress; /* stderr is a terminal */
    gint64 last_progress;
} run;

static void print_result(run *r, const fbl_parse_result *res, const char *path)
{
    size_t flags = r->pretty ? JSON_INDENT(2) : JSON_COMPACT;
    guint n = res->reports->len + (res->reject != NULL ? 1 : 0);
    for (guint i = 0; i < n; i++) {
        json_t *doc = i < res->reports->len ? fbl_report_to_json(g_ptr_array_index(res->reports, i))
                                            : fbl_reject_to_json(res->reject);
        if (r->with_path)
            json_object_set_new(doc, "path", json_string(path));
        char *text = json_dumps(doc, flags);
        (void) fputs(text, stdout);
        (void) fputc('\n', stdout);
        free(text);
        json_decref(doc);
    }
}

static void show_progress(run *r, bool done)
{
    if (!r->progress)
        return;
    gint64 now = g_get_monotonic_time();
    if (!done && now - r->last_progress < G_USEC_PER_SEC / 2)
        return;
    r->last_progress = now;
    (void) fprintf(stderr, "\rfbl parse: %u mails read, %u unreadable%s", r->files, r->failed,
                   done ? "\n" : "");
}

static void parse_one(run *r, const char *path)
{
    const fbl_parse_options *o = fbl_parser_get_options(r->parser);
    fbl_mailfile mail;
    g_autoptr(GError) error = NULL;
    if (!fbl_mailfile_read(path, o->max_mail_bytes, &mail, &error)) {
        g_warning("cannot read mail: %s", error->message);
        r->failed++;
        return;
    }
    fbl_mail_meta meta = r->meta;
    if (!r->fixed_time)
        meta.received_at = mail.delivered;
    fbl_parse_result *res = fbl_mailfile_parse(r->parser, &mail, &meta);
    print_result(r, res, path);
    fbl_parse_result_free(res);
    fbl_mailfile_clear(&mail);
    r->files++;
    show_progress(r, false);
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Every regular file under @root, in name order, hidden ones skipped; no recursion. */
static void parse_tree(run *r, const char *root)
{
    g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(dirs, g_strdup(root));
    while (dirs->len > 0) {
        g_autofree char *dir = g_ptr_array_steal_index(dirs, dirs->len - 1);
        g_autoptr(GError) error = NULL;
        GDir *d = g_dir_open(dir, 0, &error);
        if (d == NULL) {
            g_warning("cannot read directory: %s", error->message);
            r->failed++;
            continue;
        }
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *name;
        while ((name = g_dir_read_name(d)) != NULL) {
            if (name[0] != '.')
                g_ptr_array_add(names, g_strdup(name));
        }
        g_dir_close(d);
        g_ptr_array_sort(names, compare_names);
        g_autoptr(GPtrArray) subdirs = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; i < names->len; i++) {
            g_autofree char *path = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
            if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK))
                g_ptr_array_add(subdirs, g_steal_pointer(&path));
            else if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
                parse_one(r, path);
        }
        /* Depth-first, name order: push in reverse. */
        for (guint i = subdirs->len; i > 0; i--)
            g_ptr_array_add(dirs, g_strdup(g_ptr_array_index(subdirs, i - 1)));
    }
}

static bool parse_time(const char *text, int64_t *out)
{
    guint64 secs;
    if (g_ascii_string_to_unsigned(text, 10, 0, G_MAXINT64, &secs, NULL)) {
        *out = (int64_t) secs;
        return true;
    }
    GDateTime *dt = g_date_time_new_from_iso8601(text, NULL);
    if (dt == NULL)
        return false;
    *out = g_date_time_to_unix(dt);
    g_date_time_unref(dt);
    return true;
}

int fbl_cmd_parse(int argc, char **argv)
{
    gboolean pretty = FALSE, with_path = FALSE, raw = FALSE;
    g_autofree char *mailbox = NULL, *feedback = NULL, *received_at = NULL, *level = NULL;
    g_autofree char *authserv_id = NULL;
    g_auto(GStrv) trusted = NULL, trusted_hosts = NULL, local_nets = NULL, local_domains = NULL;
    gint64 max_bytes = FBL_DEFAULT_MAX_MAIL_BYTES;
    GOptionEntry entries[] = {
        {"pretty", 0, 0, G_OPTION_ARG_NONE, &pretty, "Indent the JSON documents", NULL},
        {"mailbox", 0, 0, G_OPTION_ARG_STRING, &mailbox, "Mailbox name to record", "NAME"},
        {"feedback-type", 0, 0, G_OPTION_ARG_STRING, &feedback,
         "Feedback type when a mail does not say (default: abuse)", "TYPE"},
        {"received-at", 0, 0, G_OPTION_ARG_STRING, &received_at,
         "Delivery time to record (ISO-8601 or epoch seconds; default: from the file)", "TIME"},
        {"trusted-network", 0, 0, G_OPTION_ARG_STRING_ARRAY, &trusted,
         "A network of our own relays, skipped when finding the source IP (repeatable)", "CIDR"},
        {"local-network", 0, 0, G_OPTION_ARG_STRING_ARRAY, &local_nets,
         "A network our users send from ([local] networks): its reports are outbound (repeatable)",
         "CIDR"},
        {"local-domain", 0, 0, G_OPTION_ARG_STRING_ARRAY, &local_domains,
         "One of our domains ([local] domains): its reports are outbound (repeatable)", "DOMAIN"},
        {"trusted-host", 0, 0, G_OPTION_ARG_STRING_ARRAY, &trusted_hosts,
         "A domain whose hosts hand mail among themselves (repeatable)", "DOMAIN"},
        {"authserv-id", 0, 0, G_OPTION_ARG_STRING, &authserv_id,
         "Our MTA's Authentication-Results id: sets reporter.verified", "ID"},
        {"raw", 0, 0, G_OPTION_ARG_NONE, &raw,
         "Every mail is the reported message itself (a raw feedback loop or spam trap)", NULL},
        {"max-mail-bytes", 0, 0, G_OPTION_ARG_INT64, &max_bytes,
         "Larger mails are rejected as too_large (default: 10485760)", "N"},
        {"with-path", 0, 0, G_OPTION_ARG_NONE, &with_path,
         "Add the file's path to every document as \"path\"", NULL},
        {"log-level", 0, 0, G_OPTION_ARG_STRING, &level,
         "debug, info, notice, warning or error (default: notice)", "LEVEL"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("FILE|DIR|-...");
    g_option_context_set_summary(
        ctx, "Parse report mails into normalized reports, one JSON document per line:\n"
             "every report and every reject of each mail. A DIR is read recursively.\n"
             "Exit status: 0 when every mail was read (rejects included), 64 on a usage\n"
             "error, 66 when a file could not be read.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, -1))
        return EX_USAGE;
    GLogLevelFlags log_level = G_LOG_LEVEL_MESSAGE;
    if (level != NULL && !fbl_log_level_from_string(level, &log_level)) {
        (void) fprintf(stderr, "fbl parse: unknown log level '%s'\n", level);
        return EX_USAGE;
    }
    fbl_log_init(log_level);
    if (argc < 2) {
        (void) fprintf(stderr, "fbl parse: no FILE, DIR or - given (see --help)\n");
        return EX_USAGE;
    }

    run r = {.pretty = pretty, .with_path = with_path, .progress = isatty(STDERR_FILENO)};
    r.meta.mailbox = mailbox;
    r.meta.default_feedback_type = FBL_FEEDBACK_ABUSE;
    if (feedback != NULL &&
        !fbl_feedback_type_from_string(feedback, &r.meta.default_feedback_type)) {
        (void) fprintf(stderr, "fbl parse: unknown feedback type '%s'\n", feedback);
        return EX_USAGE;
    }
    if (received_at != NULL) {
        if (!parse_time(received_at, &r.meta.received_at)) {
            (void) fprintf(stderr, "fbl parse: --received-at '%s' is not a time\n", received_at);
            return EX_USAGE;
        }
        r.fixed_time = true;
    }
    fbl_parse_options opts;
    fbl_parse_options_init(&opts);
    if (max_bytes <= 0) {
        (void) fprintf(stderr, "fbl parse: --max-mail-bytes must be positive\n");
        return EX_USAGE;
    }
    opts.max_mail_bytes = (size_t) max_bytes;
    opts.trusted_networks = (const char *const *) trusted;
    opts.trusted_hosts = (const char *const *) trusted_hosts;
    opts.local_networks = (const char *const *) local_nets;
    opts.local_domains = (const char *const *) local_domains;
    opts.authserv_id = authserv_id;
    r.meta.raw = raw;

    fbl_parsers_init();
    r.parser = fbl_parser_new(&opts, &error);
    if (r.parser == NULL) {
        (void) fprintf(stderr, "fbl parse: %s\n", error->message);
        fbl_parsers_shutdown();
        return EX_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-") != 0 && g_file_test(argv[i], G_FILE_TEST_IS_DIR))
            parse_tree(&r, argv[i]);
        else
            parse_one(&r, argv[i]);
    }
    show_progress(&r, true);
    fbl_parser_free(r.parser);
    fbl_parsers_shutdown();
    if (fflush(stdout) != 0) {
        (void) fprintf(stderr, "fbl parse: writing the output failed\n");
        return EX_IOERR;
    }
    return r.failed > 0 ? EX_NOINPUT : EX_OK;
}
