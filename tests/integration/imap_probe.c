/*
 * imap_probe.c - drives fbl/imap.h against a real server for imap_dovecot.py
 *
 *   imap_probe --url URL --user USER --password-file FILE --done-folder NAME
 *              [--ca-file PEM] [--starttls] [--poll-ms N] [--max-fetch N]
 *              [--expect N] [--deadline-s N] [--max-backoff-ms N] [--uidvalidity N]
 *
 * Connects (reconnecting with backoff while the errors are transient), then
 * again and again: fetches every mail from the next UID on, prints one JSON
 * line per mail (uid, size, internaldate, sha256 and length of the bytes,
 * truncated, fetched_at: wall-clock seconds), moves the batch to the done
 * folder (the sink's commit is not there: the probe commits by printing), and
 * when a batch is empty prints {"event":"waiting"} and waits (IDLE or poll).
 * Ends 0 once --expect mails were fetched, 1 at --deadline-s or SIGTERM; a
 * permanent error prints {"error":CODE,"message":TEXT} and ends with
 * fbl_imap_error_exit_status() (77 login refused, 69 certificate, 78 folder).
 * Other lines: {"event":"connected","idle":B,"move":B,"uidvalidity":N}.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <jansson.h>

#include "fbl/imap.h"
#include "fbl/secret.h"

static volatile sig_atomic_t stop_requested;
static gint64 deadline_us;

static void on_term(int sig)
{
    (void) sig;
    stop_requested = 1;
}

static bool stopping(void)
{
    return stop_requested || g_get_monotonic_time() > deadline_us;
}

static void print_json(json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    (void) printf("%s\n", text);
    (void) fflush(stdout);
    free(text);
    json_decref(obj);
}

static const char *code_name(int code)
{
    static const char *const names[] = {
        "?", "auth", "tls", "no_folder", "connect", "protocol", "uidvalidity_changed", "invalid"};
    return code >= 0 && (size_t) code < G_N_ELEMENTS(names) ? names[code] : "?";
}

static int fail(const GError *error)
{
    print_json(json_pack("{s:s, s:s}", "error", code_name(error->code), "message", error->message));
    return fbl_imap_error_exit_status(error);
}

static void print_mail(const fbl_imap_mail *mail)
{
    gsize n = 0;
    const guint8 *data = g_bytes_get_data(mail->bytes, &n);
    g_autofree char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, n);
    print_json(json_pack("{s:I, s:I, s:I, s:s, s:I, s:b, s:f}", "uid", (json_int_t) mail->uid,
                         "size", (json_int_t) mail->size, "internaldate",
                         (json_int_t) mail->internaldate, "sha256", sha, "bytes", (json_int_t) n,
                         "truncated", mail->truncated, "fetched_at",
                         (double) g_get_real_time() / 1e6));
}

static void print_connected(const fbl_imap *imap)
{
    print_json(json_pack("{s:s, s:b, s:b, s:I}", "event", "connected", "idle",
                         fbl_imap_has_idle(imap), "move", fbl_imap_has_move(imap), "uidvalidity",
                         (json_int_t) fbl_imap_get_uidvalidity(imap)));
}

/* One batch: print, then move. Returns the mails in it, or -1 with @error. */
static int one_batch(fbl_imap *imap, uint32_t *next_uid, GError **error)
{
    g_autoptr(GPtrArray) batch = fbl_imap_next_batch(imap, *next_uid, error);
    if (batch == NULL)
        return -1;
    uint32_t *uids = g_new(uint32_t, batch->len + 1);
    for (guint i = 0; i < batch->len; i++) {
        const fbl_imap_mail *mail = batch->pdata[i];
        print_mail(mail);
        uids[i] = mail->uid;
        *next_uid = MAX(*next_uid, mail->uid + 1);
    }
    bool moved = batch->len == 0 || fbl_imap_move_done(imap, uids, batch->len, error);
    g_free(uids);
    return moved ? (int) batch->len : -1;
}

typedef struct {
    char *url, *user, *password_file, *ca_file, *done_folder; /* GOption's: freed in main */
    gboolean starttls;
    int poll_ms, max_fetch, expect, deadline_s, max_backoff_ms;
    gint64 uidvalidity;
} probe_args;

static bool parse_args(int argc, char **argv, probe_args *a)
{
    GOptionEntry entries[] = {
        {"url", 0, 0, G_OPTION_ARG_STRING, &a->url, "imaps://host:port/FOLDER", NULL},
        {"user", 0, 0, G_OPTION_ARG_STRING, &a->user, "login", NULL},
        {"password-file", 0, 0, G_OPTION_ARG_STRING, &a->password_file, "secret", NULL},
        {"ca-file", 0, 0, G_OPTION_ARG_STRING, &a->ca_file, "PEM", NULL},
        {"done-folder", 0, 0, G_OPTION_ARG_STRING, &a->done_folder, "folder", NULL},
        {"starttls", 0, 0, G_OPTION_ARG_NONE, &a->starttls, "STARTTLS", NULL},
        {"poll-ms", 0, 0, G_OPTION_ARG_INT, &a->poll_ms, "poll", NULL},
        {"max-fetch", 0, 0, G_OPTION_ARG_INT, &a->max_fetch, "bytes", NULL},
        {"expect", 0, 0, G_OPTION_ARG_INT, &a->expect, "mails", NULL},
        {"deadline-s", 0, 0, G_OPTION_ARG_INT, &a->deadline_s, "seconds", NULL},
        {"max-backoff-ms", 0, 0, G_OPTION_ARG_INT, &a->max_backoff_ms, "ms", NULL},
        {"uidvalidity", 0, 0, G_OPTION_ARG_INT64, &a->uidvalidity, "persisted", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- fbl/imap.h against a server");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || a->url == NULL || a->user == NULL ||
        a->password_file == NULL || a->done_folder == NULL) {
        (void) fprintf(stderr, "imap_probe: %s\n",
                       error != NULL ? error->message
                                     : "--url, --user, --password-file "
                                       "and --done-folder are required");
        return false;
    }
    return true;
}

static int run(fbl_imap *imap, int expect)
{
    uint32_t next_uid = 1;
    int fetched = 0;
    g_autoptr(GError) error = NULL;
    while (!stopping()) {
        if (!fbl_imap_is_connected(imap)) {
            if (!fbl_imap_reconnect(imap, stopping, &error))
                return stopping() ? 1 : fail(error);
            print_connected(imap);
        }
        int n = one_batch(imap, &next_uid, &error);
        if (n == 0 && expect > 0 && fetched >= expect)
            return 0;
        if (n == 0) {
            print_json(json_pack("{s:s}", "event", "waiting"));
            (void) fbl_imap_wait(imap, 30000, stopping, &error);
        }
        fetched += MAX(n, 0);
        if (error != NULL && !fbl_imap_error_is_transient(error))
            return fail(error);
        if (error != NULL) /* the session is closed: the loop reconnects */
            print_json(json_pack("{s:s, s:s}", "event", "dropped", "message", error->message));
        g_clear_error(&error);
    }
    return 1;
}

static int probe(const probe_args *a);

int main(int argc, char **argv)
{
    probe_args a = {.deadline_s = 60};
    int status = parse_args(argc, argv, &a) ? probe(&a) : 64;
    g_free(a.url);
    g_free(a.user);
    g_free(a.password_file);
    g_free(a.ca_file);
    g_free(a.done_folder);
    return status;
}

static int probe(const probe_args *args)
{
    const probe_args a = *args;
    (void) signal(SIGPIPE, SIG_IGN);
    (void) signal(SIGTERM, on_term);
    deadline_us = g_get_monotonic_time() + (gint64) a.deadline_s * G_USEC_PER_SEC;
    g_autoptr(GError) error = NULL;
    char *password = fbl_secret_read_file(a.password_file, "password", true, NULL, &error);
    if (password == NULL) {
        (void) fprintf(stderr, "imap_probe: %s\n", error->message);
        return 66;
    }
    fbl_imap_options options = {
        .url = a.url,
        .user = a.user,
        .password = password,
        .ca_file = a.ca_file,
        .starttls = a.starttls,
        .done_folder = a.done_folder,
        .poll_interval_ms = (unsigned) a.poll_ms,
        .max_fetch_bytes = (size_t) a.max_fetch,
        .max_backoff_ms = (unsigned) a.max_backoff_ms,
        .timeout_s = 10,
        .uidvalidity = (uint32_t) a.uidvalidity,
    };
    g_autoptr(fbl_imap) imap = fbl_imap_new(&options, &error);
    explicit_bzero(password, strlen(password));
    g_free(password);
    if (imap == NULL)
        return fail(error);
    if (!fbl_imap_connect(imap, &error)) {
        if (!fbl_imap_error_is_transient(error))
            return fail(error);
        g_clear_error(&error); /* run() reconnects */
    } else {
        print_connected(imap);
    }
    return run(imap, a.expect);
}
