/* metrics.c - Prometheus registry and endpoint (see metrics.h) */
#define G_LOG_DOMAIN "fbl"
#include "fbl/metrics.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "fbl/wire.h"

GQuark fbl_metrics_error_quark(void)
{
    return g_quark_from_static_string("fbl-metrics-error");
}

typedef enum { COUNTER, GAUGE, HISTOGRAM } family_kind;

typedef enum {
    M_WATCH_MAILS,
    M_WATCH_REPORTS,
    M_WATCH_REJECTS,
    M_WATCH_ACKED,
    M_WATCH_RESENDS,
    M_WATCH_IN_FLIGHT,
    M_WATCH_BYTES_IN_FLIGHT,
    M_WATCH_QUEUED,
    M_WATCH_SKIPPED,
    M_WATCH_RETIRE_FAILURES,
    M_WATCH_RETIRE_PENDING,
    M_IMAP_CONNECTED,
    M_IMAP_FETCHED,
    M_IMAP_MOVED,
    M_IMAP_ERRORS,
    M_IMAP_LAST_WAKEUP,
    M_SINK_BATCHES,
    M_SINK_MAILS,
    M_SINK_REPORTS,
    M_SINK_BATCH_MAILS,
    M_SINK_BATCH_BYTES,
    M_SINK_BATCH_SECONDS,
    M_SINK_BAD,
    M_SINK_REFUSED,
    M_PG_ERRORS,
    M_FORWARD_RESPONSES,
    M_FORWARD_SENT,
    M_FORWARD_PENDING,
    M_FORWARD_DEAD,
    M_FORWARD_LAG,
    M_CURVE_REFUSED,
    M_BLOCKLIST_LISTED,
    M_BLOCKLIST_EXPORTS,
    M_BLOCKLIST_EXPORT_TIME,
    M_BUILD_INFO,
    M_START_TIME,
    M_COUNT
} family_id;

static const double mails_buckets[] = {1, 5, 10, 50, 100, 250, 500, 1000, 5000};
static const double bytes_buckets[] = {16384,     65536,      262144,    1048576,
                                       4194304.0, 16777216.0, 67108864.0};
static const double seconds_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

typedef struct family {
    const char *name;
    const char *help;
    family_kind kind;
    const double *buckets;
    size_t n_buckets;
} family;

#define BUCKETS(b) b, G_N_ELEMENTS(b)

static const family families[M_COUNT] = {
    [M_WATCH_MAILS] = {"fbl_watch_mails_total",
                       "Mails read and parsed, by mailbox and the format and feedback type of "
                       "their first report (reject/none for rejects)",
                       COUNTER, NULL, 0},
    [M_WATCH_REPORTS] = {"fbl_watch_reports_total", "Reports parsed from mails", COUNTER, NULL, 0},
    [M_WATCH_REJECTS] = {"fbl_watch_rejects_total", "Mails that yielded no report, by reason",
                         COUNTER, NULL, 0},
    [M_WATCH_ACKED] = {"fbl_watch_acked_total",
                       "Mails acknowledged by a sink after its commit and moved to cur/", COUNTER,
                       NULL, 0},
    [M_WATCH_RESENDS] = {"fbl_watch_resends_total",
                         "Mails sent again because no ack came within ack_timeout", COUNTER, NULL,
                         0},
    [M_WATCH_IN_FLIGHT] = {"fbl_watch_mails_in_flight", "Mails sent and not yet acknowledged",
                           GAUGE, NULL, 0},
    [M_WATCH_BYTES_IN_FLIGHT] = {"fbl_watch_bytes_in_flight",
                                 "Bytes of the messages sent and not yet acknowledged", GAUGE, NULL,
                                 0},
    [M_WATCH_QUEUED] = {"fbl_watch_mails_queued",
                        "Mails seen in new/ and not read yet (at most watch.queue_max)", GAUGE,
                        NULL, 0},
    [M_WATCH_SKIPPED] = {"fbl_watch_skipped_total",
                         "Names in new/ that are not regular files (symlink, fifo, socket, "
                         "device, directory), left alone; each counted once",
                         COUNTER, NULL, 0},
    [M_WATCH_RETIRE_FAILURES] = {"fbl_watch_retire_failures_total",
                                 "Failed renames of stored mails from new/ to cur/, retries "
                                 "included, by errno name",
                                 COUNTER, NULL, 0},
    [M_WATCH_RETIRE_PENDING] = {"fbl_watch_mails_retire_pending",
                                "Stored mails still in new/ because their rename to cur/ failed",
                                GAUGE, NULL, 0},
    [M_IMAP_CONNECTED] = {"fbl_imap_connected", "1 while the IMAP mailbox's session is up, else 0",
                          GAUGE, NULL, 0},
    [M_IMAP_FETCHED] = {"fbl_imap_fetched_total",
                        "Mails fetched from the IMAP mailbox and sent (again after a crash or "
                        "a lost connection)",
                        COUNTER, NULL, 0},
    [M_IMAP_MOVED] = {"fbl_imap_moved_total", "Mails moved to done_folder after the sink's commit",
                      COUNTER, NULL, 0},
    [M_IMAP_ERRORS] = {"fbl_imap_errors_total",
                       "IMAP errors, by kind (connect, protocol, auth, tls, no_folder, "
                       "uidvalidity_changed, invalid)",
                       COUNTER, NULL, 0},
    [M_IMAP_LAST_WAKEUP] = {"fbl_imap_last_wakeup_timestamp_seconds",
                            "When the IMAP session last heard from the server (a batch listed "
                            "after a wait, IDLE or poll), Unix time: at least every 5 s while "
                            "the session is up",
                            GAUGE, NULL, 0},
    [M_SINK_BATCHES] = {"fbl_sink_batches_total", "Batches committed to PostgreSQL", COUNTER, NULL,
                        0},
    [M_SINK_MAILS] = {"fbl_sink_mails_total", "Mails committed to PostgreSQL (resends included)",
                      COUNTER, NULL, 0},
    [M_SINK_REPORTS] = {"fbl_sink_reports_total", "Reports in the committed mails", COUNTER, NULL,
                        0},
    [M_SINK_BATCH_MAILS] = {"fbl_sink_batch_mails", "Mails per committed batch", HISTOGRAM,
                            BUCKETS(mails_buckets)},
    [M_SINK_BATCH_BYTES] = {"fbl_sink_batch_bytes", "Message bytes per committed batch", HISTOGRAM,
                            BUCKETS(bytes_buckets)},
    [M_SINK_BATCH_SECONDS] = {"fbl_sink_batch_duration_seconds",
                              "Time to write and commit one batch", HISTOGRAM,
                              BUCKETS(seconds_buckets)},
    [M_SINK_BAD] = {"fbl_sink_bad_messages_total",
                    "Messages from peers refused: undecodable, over a bound, or inconsistent",
                    COUNTER, NULL, 0},
    [M_SINK_REFUSED] = {"fbl_sink_refused_messages_total",
                        "Messages from peers refused, by reason (version, shape, doc, "
                        "too_many_frames, too_large, mail_id, inconsistent)",
                        COUNTER, NULL, 0},
    [M_PG_ERRORS] = {"fbl_pg_errors_total",
                     "PostgreSQL errors, by role (sink, forward) and kind (transient, "
                     "permanent)",
                     COUNTER, NULL, 0},
    [M_FORWARD_RESPONSES] = {"fbl_forward_responses_total",
                             "Vendor API answers by HTTP status (none: no answer)", COUNTER, NULL,
                             0},
    [M_FORWARD_SENT] = {"fbl_forward_reports_sent_total", "Reports accepted by the vendor", COUNTER,
                        NULL, 0},
    [M_FORWARD_PENDING] = {"fbl_forward_outbox_pending", "Outbox rows waiting to be sent", GAUGE,
                           NULL, 0},
    [M_FORWARD_DEAD] = {"fbl_forward_outbox_dead", "Outbox rows the vendor refused for good", GAUGE,
                        NULL, 0},
    [M_FORWARD_LAG] = {"fbl_forward_outbox_lag_seconds",
                       "Age of the oldest outbox row waiting to be sent", GAUGE, NULL, 0},
    [M_CURVE_REFUSED] = {"fbl_curve_refused_total",
                         "Watchers refused by CURVE authentication (unknown public key)", COUNTER,
                         NULL, 0},
    [M_BLOCKLIST_LISTED] = {"fbl_blocklist_listed",
                            "Entries the blocklist policy lists, by kind (ip, domain), as last "
                            "computed by the sink's re-export",
                            GAUGE, NULL, 0},
    [M_BLOCKLIST_EXPORTS] = {"fbl_blocklist_exports_total",
                             "Times the sink rewrote a kind's blocklist files (its listed set "
                             "changed)",
                             COUNTER, NULL, 0},
    [M_BLOCKLIST_EXPORT_TIME] = {"fbl_blocklist_last_export_timestamp_seconds",
                                 "When the sink last rewrote a kind's blocklist files, Unix time",
                                 GAUGE, NULL, 0},
    [M_BUILD_INFO] = {"fbl_build_info", "The fbl version (value 1)", GAUGE, NULL, 0},
    [M_START_TIME] = {"fbl_start_time_seconds", "Start of the process, Unix time", GAUGE, NULL, 0},
};

/* Whose each family is (fbl_metrics_role bits); 0: every role's. */
static const unsigned family_roles[M_COUNT] = {
    [M_WATCH_MAILS] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_REPORTS] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_REJECTS] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_ACKED] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_RESENDS] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_IN_FLIGHT] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_BYTES_IN_FLIGHT] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_QUEUED] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_SKIPPED] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_RETIRE_FAILURES] = FBL_METRICS_ROLE_WATCH,
    [M_WATCH_RETIRE_PENDING] = FBL_METRICS_ROLE_WATCH,
    [M_IMAP_CONNECTED] = FBL_METRICS_ROLE_WATCH,
    [M_IMAP_FETCHED] = FBL_METRICS_ROLE_WATCH,
    [M_IMAP_MOVED] = FBL_METRICS_ROLE_WATCH,
    [M_IMAP_ERRORS] = FBL_METRICS_ROLE_WATCH,
    [M_IMAP_LAST_WAKEUP] = FBL_METRICS_ROLE_WATCH,
    [M_SINK_BATCHES] = FBL_METRICS_ROLE_SINK,
    [M_SINK_MAILS] = FBL_METRICS_ROLE_SINK,
    [M_SINK_REPORTS] = FBL_METRICS_ROLE_SINK,
    [M_SINK_BATCH_MAILS] = FBL_METRICS_ROLE_SINK,
    [M_SINK_BATCH_BYTES] = FBL_METRICS_ROLE_SINK,
    [M_SINK_BATCH_SECONDS] = FBL_METRICS_ROLE_SINK,
    [M_SINK_BAD] = FBL_METRICS_ROLE_SINK,
    [M_SINK_REFUSED] = FBL_METRICS_ROLE_SINK,
    /* Its series carry the role as a label: filtered by that (series_wanted). */
    [M_PG_ERRORS] = FBL_METRICS_ROLE_SINK | FBL_METRICS_ROLE_FORWARD,
    [M_FORWARD_RESPONSES] = FBL_METRICS_ROLE_FORWARD,
    [M_FORWARD_SENT] = FBL_METRICS_ROLE_FORWARD,
    [M_FORWARD_PENDING] = FBL_METRICS_ROLE_FORWARD,
    [M_FORWARD_DEAD] = FBL_METRICS_ROLE_FORWARD,
    [M_FORWARD_LAG] = FBL_METRICS_ROLE_FORWARD,
    /* The sink authenticates the watchers. */
    [M_CURVE_REFUSED] = FBL_METRICS_ROLE_SINK,
    /* The sink re-exports the blocklists (fbl/blocklist_loop.h). */
    [M_BLOCKLIST_LISTED] = FBL_METRICS_ROLE_SINK,
    [M_BLOCKLIST_EXPORTS] = FBL_METRICS_ROLE_SINK,
    [M_BLOCKLIST_EXPORT_TIME] = FBL_METRICS_ROLE_SINK,
};

typedef struct series {
    double value; /* counter, gauge; histogram: the sum */
    guint64 count;
    guint64 *buckets; /* histogram: non-cumulative count per bucket */
} series;

static GMutex lock;
static GHashTable *registry[M_COUNT];                   /* labels "{a=\"x\"}" or "" -> series * */
static unsigned published_roles = FBL_METRICS_ROLE_ALL; /* under lock */
static struct MHD_Daemon *httpd;

static void series_free(series *s)
{
    g_free(s->buckets);
    g_free(s);
}

/* The series of @id with the labels @labels (already formatted); lock held, registry made. */
static series *series_in(family_id id, const char *labels)
{
    series *s = g_hash_table_lookup(registry[id], labels);
    if (s == NULL) {
        s = g_new0(series, 1);
        if (families[id].kind == HISTOGRAM)
            s->buckets = g_new0(guint64, families[id].n_buckets);
        g_hash_table_insert(registry[id], g_strdup(labels), s);
    }
    return s;
}

static void append_escaped(GString *out, const char *value)
{
    for (const char *p = value != NULL ? value : ""; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            g_string_append_c(out, '\\');
        if (*p == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *p);
    }
}

/* "{k1=\"v1\",k2=\"v2\"}" from NULL-terminated name, value pairs; "" for none. */
static char *labels_of(const char *first, ...) G_GNUC_NULL_TERMINATED;
static char *labels_of(const char *first, ...)
{
    GString *out = g_string_new(NULL);
    va_list ap;
    va_start(ap, first);
    for (const char *name = first; name != NULL; name = va_arg(ap, const char *)) {
        const char *value = va_arg(ap, const char *);
        g_string_append(out, out->len == 0 ? "{" : ",");
        g_string_append_printf(out, "%s=\"", name);
        append_escaped(out, value);
        g_string_append_c(out, '"');
    }
    va_end(ap);
    if (out->len > 0)
        g_string_append_c(out, '}');
    return g_string_free(out, FALSE);
}

/* Create the registry and the series that must show 0 before anything happened. */
static void ensure_registry(void);

/* series_in(), the registry made first; lock held. */
static series *get_series(family_id id, const char *labels)
{
    ensure_registry();
    return series_in(id, labels);
}

static void add(family_id id, const char *labels, double v)
{
    g_mutex_lock(&lock);
    get_series(id, labels != NULL ? labels : "")->value += v;
    g_mutex_unlock(&lock);
}

static void set(family_id id, const char *labels, double v)
{
    g_mutex_lock(&lock);
    get_series(id, labels != NULL ? labels : "")->value = v;
    g_mutex_unlock(&lock);
}

static void observe(family_id id, double v)
{
    g_mutex_lock(&lock);
    series *s = get_series(id, "");
    s->value += v;
    s->count++;
    for (size_t i = 0; i < families[id].n_buckets; i++) {
        if (v <= families[id].buckets[i]) {
            s->buckets[i]++;
            break;
        }
    }
    g_mutex_unlock(&lock);
}

static void ensure_registry(void)
{
    if (registry[0] != NULL)
        return;
    for (size_t i = 0; i < M_COUNT; i++)
        registry[i] =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) series_free);
    /* Families without labels show 0 from the start, and so do the few label
     * sets that are known in advance: a rate() needs the series before its
     * first event. */
    static const family_id plain[] = {
        M_WATCH_ACKED,      M_WATCH_RESENDS, M_WATCH_IN_FLIGHT,    M_WATCH_BYTES_IN_FLIGHT,
        M_WATCH_QUEUED,     M_SINK_BATCHES,  M_SINK_MAILS,         M_SINK_REPORTS,
        M_SINK_BAD,         M_CURVE_REFUSED, M_SINK_BATCH_SECONDS, M_SINK_BATCH_MAILS,
        M_SINK_BATCH_BYTES,
    };
    for (size_t i = 0; i < G_N_ELEMENTS(plain); i++)
        (void) series_in(plain[i], "");
    (void) series_in(M_WATCH_RETIRE_PENDING, "");
    static const char *const roles[] = {"sink", "forward"};
    static const char *const kinds[] = {"transient", "permanent"};
    for (size_t i = 0; i < G_N_ELEMENTS(roles); i++) {
        for (size_t j = 0; j < G_N_ELEMENTS(kinds); j++) {
            g_autofree char *l = labels_of("role", roles[i], "kind", kinds[j], NULL);
            (void) series_in(M_PG_ERRORS, l);
        }
    }
    for (int code = 1; code <= FBL_WIRE_ERROR_LAST; code++) {
        g_autofree char *l = labels_of("reason", fbl_wire_error_reason(code), NULL);
        (void) series_in(M_SINK_REFUSED, l);
    }
    g_autofree char *version = labels_of("version", FBL_VERSION, NULL);
    series_in(M_BUILD_INFO, version)->value = 1;
    series_in(M_START_TIME, "")->value = (double) g_get_real_time() / G_USEC_PER_SEC;
}

/* The shortest text that reads back as @v ("0.005", "1048576", "1.5e+100"). */
static void format_number(char *buf, size_t size, double v)
{
    if (v == (double) (gint64) v && v < 9007199254740992.0 && v > -9007199254740992.0) {
        g_snprintf(buf, size, "%" G_GINT64_FORMAT, (gint64) v);
        return;
    }
    for (int precision = 1; precision <= 17; precision++) {
        char format[8];
        g_snprintf(format, sizeof format, "%%.%dg", precision);
        g_ascii_formatd(buf, (gint) size, format, v);
        if (g_ascii_strtod(buf, NULL) == v)
            return;
    }
}

static void append_number(GString *out, double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    format_number(buf, sizeof buf, v);
    g_string_append(out, buf);
}

/* "{a=\"x\"}" + le -> "{a=\"x\",le=\"0.5\"}" */
static void append_bucket_labels(GString *out, const char *labels, const char *le)
{
    if (*labels == '\0') {
        g_string_append_printf(out, "{le=\"%s\"}", le);
        return;
    }
    g_string_append_len(out, labels, (gssize) strlen(labels) - 1);
    g_string_append_printf(out, ",le=\"%s\"}", le);
}

static void render_histogram(GString *out, const family *f, const char *labels, const series *s)
{
    guint64 cumulative = 0;
    for (size_t i = 0; i < f->n_buckets; i++) {
        char le[G_ASCII_DTOSTR_BUF_SIZE];
        cumulative += s->buckets[i];
        g_string_append_printf(out, "%s_bucket", f->name);
        format_number(le, sizeof le, f->buckets[i]);
        append_bucket_labels(out, labels, le);
        g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", cumulative);
    }
    g_string_append_printf(out, "%s_bucket", f->name);
    append_bucket_labels(out, labels, "+Inf");
    g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n%s_sum%s ", s->count, f->name, labels);
    append_number(out, s->value);
    g_string_append_printf(out, "\n%s_count%s %" G_GUINT64_FORMAT "\n", f->name, labels, s->count);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

void fbl_metrics_set_roles(unsigned roles)
{
    g_mutex_lock(&lock);
    published_roles = roles & FBL_METRICS_ROLE_ALL;
    g_mutex_unlock(&lock);
}

static bool family_wanted(family_id id)
{
    return family_roles[id] == 0 || (family_roles[id] & published_roles) != 0;
}

/* pg_errors_total{role="sink"} is the sink's, {role="forward"} the forwarder's. */
static bool series_wanted(family_id id, const char *labels)
{
    if (id != M_PG_ERRORS)
        return true;
    if (strstr(labels, "role=\"sink\"") != NULL)
        return (published_roles & FBL_METRICS_ROLE_SINK) != 0;
    if (strstr(labels, "role=\"forward\"") != NULL)
        return (published_roles & FBL_METRICS_ROLE_FORWARD) != 0;
    return true;
}

char *fbl_metrics_render(void)
{
    static const char *const kind_names[] = {"counter", "gauge", "histogram"};
    GString *out = g_string_new(NULL);
    g_mutex_lock(&lock);
    ensure_registry();
    for (size_t i = 0; i < M_COUNT; i++) {
        const family *f = &families[i];
        if (!family_wanted((family_id) i))
            continue;
        g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                               kind_names[f->kind]);
        g_autofree gpointer *keys = g_hash_table_get_keys_as_array(registry[i], NULL);
        guint n = g_hash_table_size(registry[i]);
        qsort(keys, n, sizeof *keys, compare_keys);
        for (guint k = 0; k < n; k++) {
            const series *s = g_hash_table_lookup(registry[i], keys[k]);
            if (!series_wanted((family_id) i, keys[k]))
                continue;
            if (f->kind == HISTOGRAM) {
                render_histogram(out, f, keys[k], s);
                continue;
            }
            g_string_append_printf(out, "%s%s ", f->name, (const char *) keys[k]);
            append_number(out, s->value);
            g_string_append_c(out, '\n');
        }
    }
    g_mutex_unlock(&lock);
    return g_string_free(out, FALSE);
}

void fbl_metrics_watch_mail(const char *mailbox, const fbl_parse_result *result)
{
    if (result->reports->len == 0) {
        const char *reason =
            result->reject != NULL ? fbl_reject_reason_to_string(result->reject->reason) : "";
        g_autofree char *m =
            labels_of("mailbox", mailbox, "format", "reject", "feedback_type", "none", NULL);
        g_autofree char *r = labels_of("mailbox", mailbox, "reason", reason, NULL);
        add(M_WATCH_MAILS, m, 1);
        add(M_WATCH_REJECTS, r, 1);
        return;
    }
    for (guint i = 0; i < result->reports->len; i++) {
        const fbl_report *rep = g_ptr_array_index(result->reports, i);
        g_autofree char *l =
            labels_of("mailbox", mailbox, "format", fbl_format_to_string(rep->format),
                      "feedback_type", fbl_feedback_type_to_string(rep->feedback_type), NULL);
        if (i == 0)
            add(M_WATCH_MAILS, l, 1);
        add(M_WATCH_REPORTS, l, 1);
    }
}

void fbl_metrics_watch_acked(void)
{
    add(M_WATCH_ACKED, "", 1);
}

void fbl_metrics_watch_resend(void)
{
    add(M_WATCH_RESENDS, "", 1);
}

void fbl_metrics_watch_window(unsigned mails, guint64 bytes, unsigned queued)
{
    g_mutex_lock(&lock);
    get_series(M_WATCH_IN_FLIGHT, "")->value = mails;
    get_series(M_WATCH_BYTES_IN_FLIGHT, "")->value = (double) bytes;
    get_series(M_WATCH_QUEUED, "")->value = queued;
    g_mutex_unlock(&lock);
}

void fbl_metrics_watch_skipped(const char *mailbox, const char *reason)
{
    g_autofree char *l = labels_of("mailbox", mailbox, "reason", reason, NULL);
    add(M_WATCH_SKIPPED, l, 1);
}

void fbl_metrics_watch_retire_failure(const char *mailbox, const char *reason)
{
    g_autofree char *l = labels_of("mailbox", mailbox, "reason", reason, NULL);
    add(M_WATCH_RETIRE_FAILURES, l, 1);
}

void fbl_metrics_watch_retire_pending(unsigned mails)
{
    set(M_WATCH_RETIRE_PENDING, "", mails);
}

void fbl_metrics_imap_connected(const char *mailbox, bool up)
{
    g_autofree char *l = labels_of("mailbox", mailbox, NULL);
    set(M_IMAP_CONNECTED, l, up ? 1 : 0);
}

void fbl_metrics_imap_fetched(const char *mailbox)
{
    g_autofree char *l = labels_of("mailbox", mailbox, NULL);
    add(M_IMAP_FETCHED, l, 1);
}

void fbl_metrics_imap_moved(const char *mailbox, unsigned mails)
{
    g_autofree char *l = labels_of("mailbox", mailbox, NULL);
    add(M_IMAP_MOVED, l, mails);
}

void fbl_metrics_imap_error(const char *mailbox, const char *kind)
{
    g_autofree char *l = labels_of("mailbox", mailbox, "kind", kind, NULL);
    add(M_IMAP_ERRORS, l, 1);
}

void fbl_metrics_imap_woke(const char *mailbox)
{
    g_autofree char *l = labels_of("mailbox", mailbox, NULL);
    set(M_IMAP_LAST_WAKEUP, l, (double) g_get_real_time() / G_USEC_PER_SEC);
}

void fbl_metrics_sink_batch(unsigned mails, unsigned reports, size_t bytes, double seconds)
{
    add(M_SINK_BATCHES, "", 1);
    add(M_SINK_MAILS, "", mails);
    add(M_SINK_REPORTS, "", reports);
    observe(M_SINK_BATCH_MAILS, mails);
    observe(M_SINK_BATCH_BYTES, (double) bytes);
    observe(M_SINK_BATCH_SECONDS, seconds);
}

void fbl_metrics_sink_bad_message(void)
{
    add(M_SINK_BAD, "", 1);
}

void fbl_metrics_sink_refused(const char *reason)
{
    g_autofree char *l = labels_of("reason", reason, NULL);
    add(M_SINK_BAD, "", 1);
    add(M_SINK_REFUSED, l, 1);
}

void fbl_metrics_pg_error(const char *role, bool transient)
{
    g_autofree char *l =
        labels_of("role", role, "kind", transient ? "transient" : "permanent", NULL);
    add(M_PG_ERRORS, l, 1);
}

void fbl_metrics_vendor_response(const char *vendor, int http_status)
{
    char status[16] = "none";
    if (http_status > 0)
        g_snprintf(status, sizeof status, "%d", http_status);
    g_autofree char *l = labels_of("vendor", vendor, "status", status, NULL);
    add(M_FORWARD_RESPONSES, l, 1);
}

void fbl_metrics_vendor_sent(const char *vendor, unsigned reports)
{
    g_autofree char *l = labels_of("vendor", vendor, NULL);
    add(M_FORWARD_SENT, l, reports);
}

void fbl_metrics_outbox(const char *vendor, guint64 pending, guint64 dead, double lag_seconds)
{
    g_autofree char *l = labels_of("vendor", vendor, NULL);
    set(M_FORWARD_PENDING, l, (double) pending);
    set(M_FORWARD_DEAD, l, (double) dead);
    set(M_FORWARD_LAG, l, lag_seconds);
}

void fbl_metrics_blocklist_listed(const char *kind, unsigned entries)
{
    g_autofree char *l = labels_of("kind", kind, NULL);
    set(M_BLOCKLIST_LISTED, l, (double) entries);
}

void fbl_metrics_blocklist_exported(const char *kind, double unix_time)
{
    g_autofree char *l = labels_of("kind", kind, NULL);
    add(M_BLOCKLIST_EXPORTS, l, 1);
    set(M_BLOCKLIST_EXPORT_TIME, l, unix_time);
}

void fbl_metrics_curve_refused(void)
{
    add(M_CURVE_REFUSED, "", 1);
}

bool fbl_metrics_parse_listen(const char *listen, struct sockaddr_storage *addr, GError **error)
{
    const char *colon = listen != NULL ? strrchr(listen, ':') : NULL;
    if (colon == NULL || colon == listen || colon[1] == '\0') {
        g_set_error(error, FBL_METRICS_ERROR, FBL_METRICS_ERROR_ADDRESS,
                    "'%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9771 or [::1]:9771)",
                    listen != NULL ? listen : "");
        return false;
    }
    g_autofree char *host = g_strndup(listen, (gsize) (colon - listen));
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    guint64 port = 0;
    if (!g_ascii_string_to_unsigned(colon + 1, 10, 0, 65535, &port, NULL)) {
        g_set_error(error, FBL_METRICS_ERROR, FBL_METRICS_ERROR_ADDRESS,
                    "'%s': the port is not a number from 0 to 65535", listen);
        return false;
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL) {
        g_set_error(error, FBL_METRICS_ERROR, FBL_METRICS_ERROR_ADDRESS,
                    "'%s': '%s' is not a numeric IPv4 or IPv6 address", listen, host);
        return false;
    }
    if (addr != NULL) {
        memset(addr, 0, sizeof *addr);
        memcpy(addr, res->ai_addr, MIN((size_t) res->ai_addrlen, sizeof *addr));
    }
    freeaddrinfo(res);
    return true;
}

/* ---- the endpoint ------------------------------------------------------- */

/*
 * Slow or many clients (slowloris): libmicrohttpd's timeout counts silence,
 * so a client that sends a byte a second keeps its connection for ever, and
 * at the connection limit libmicrohttpd stops accepting, so every other
 * client waits. Hence a deadline for a whole request, measured from accept
 * and enforced by a janitor thread, and room for new clients: when more than
 * HTTP_PENDING_MAX requests are still arriving, the oldest is closed. A
 * request needs a few milliseconds; only slow clients ever get closed.
 */
#define HTTP_CONNECTION_LIMIT    256u          /* sockets at once (MHD_OPTION_CONNECTION_LIMIT) */
#define HTTP_PER_IP_LIMIT        128u          /* of them from one address */
#define HTTP_IDLE_TIMEOUT_S      5u            /* silence (MHD_OPTION_CONNECTION_TIMEOUT) */
#define HTTP_MEMORY_LIMIT        (32u * 1024u) /* per connection: the request's headers */
#define HTTP_PENDING_MAX         32u           /* requests still arriving at once */
#define HTTP_REQUEST_DEADLINE_MS 3000          /* from accept to the end of the request's headers */
#define HTTP_SWEEP_MS            250
#define HTTP_LOG_INTERVAL_MS     ((gint64) 60 * 1000) /* one warning line, then one per interval */

/* A connection whose request has not arrived whole yet. */
typedef struct pending_conn {
    GList link; /* in pending, while queued */
    bool queued;
    int fd;
    gint64 accepted_ms;
} pending_conn;

static GMutex http_lock;              /* pending, janitor_stop */
static GQueue pending = G_QUEUE_INIT; /* oldest first */
static GThread *janitor;
static GCond janitor_wake;
static bool janitor_stop;

static GMutex log_lock;
static gint64 log_next_ms;
static guint64 log_held;

static gint64 now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

/* A warning about the endpoint, at most one line per HTTP_LOG_INTERVAL_MS. */
static void http_warning(const char *format, ...) G_GNUC_PRINTF(1, 2);
static void http_warning(const char *format, ...)
{
    gint64 now = now_ms();
    g_mutex_lock(&log_lock);
    bool write = now >= log_next_ms;
    guint64 held = log_held;
    if (write) {
        log_next_ms = now + HTTP_LOG_INTERVAL_MS;
        log_held = 0;
    } else {
        log_held++;
    }
    g_mutex_unlock(&log_lock);
    if (!write)
        return;
    va_list ap;
    va_start(ap, format);
    g_autofree char *msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    if (held > 0)
        g_warning("metrics endpoint: %s (and %" G_GUINT64_FORMAT " other warning(s) not logged "
                  "in the last %ds)",
                  msg, held, (int) (HTTP_LOG_INTERVAL_MS / 1000));
    else
        g_warning("metrics endpoint: %s", msg);
}

/* The line for warnings held back, once their interval is over (the janitor's). */
static void log_held_warnings(void)
{
    gint64 now = now_ms();
    g_mutex_lock(&log_lock);
    guint64 held = now >= log_next_ms ? log_held : 0;
    if (held > 0) {
        log_next_ms = now + HTTP_LOG_INTERVAL_MS;
        log_held = 0;
    }
    g_mutex_unlock(&log_lock);
    if (held > 0)
        g_warning("metrics endpoint: %" G_GUINT64_FORMAT " more warning(s) not logged in the "
                  "last %ds (slow or broken clients)",
                  held, (int) (HTTP_LOG_INTERVAL_MS / 1000));
}

/* Close @p's socket under libmicrohttpd (which then drops it); http_lock held. */
static void drop_pending(pending_conn *p)
{
    g_queue_unlink(&pending, &p->link);
    p->queued = false;
    /* shutdown, not close: the descriptor stays libmicrohttpd's until it
     * closes it, after telling on_connection() (which takes http_lock). */
    (void) shutdown(p->fd, SHUT_RDWR);
}

/* Drop the requests past their deadline, and the oldest beyond HTTP_PENDING_MAX; http_lock held. */
static guint sweep(gint64 now)
{
    guint dropped = 0;
    while (!g_queue_is_empty(&pending)) {
        pending_conn *p = g_queue_peek_head(&pending);
        if (now - p->accepted_ms < HTTP_REQUEST_DEADLINE_MS &&
            g_queue_get_length(&pending) <= HTTP_PENDING_MAX)
            break;
        drop_pending(p);
        dropped++;
    }
    return dropped;
}

static void log_dropped(guint dropped)
{
    if (dropped > 0)
        http_warning("closed %u connection(s) that sent no whole request within %d ms, or "
                     "too many such at once (slow clients?)",
                     dropped, HTTP_REQUEST_DEADLINE_MS);
}

static gpointer janitor_main(gpointer data)
{
    (void) data;
    g_mutex_lock(&http_lock);
    while (!janitor_stop) {
        guint dropped = sweep(now_ms());
        g_mutex_unlock(&http_lock);
        log_dropped(dropped);
        log_held_warnings();
        g_mutex_lock(&http_lock);
        gint64 until = g_get_monotonic_time() + HTTP_SWEEP_MS * G_TIME_SPAN_MILLISECOND;
        while (!janitor_stop && g_cond_wait_until(&janitor_wake, &http_lock, until))
            ;
    }
    g_mutex_unlock(&http_lock);
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void) cls;
    guint dropped = 0;
    g_mutex_lock(&http_lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        pending_conn *p = g_new0(pending_conn, 1);
        p->link.data = p;
        p->fd = info != NULL ? info->connect_fd : -1;
        p->accepted_ms = now_ms();
        *socket_context = p;
        if (p->fd >= 0) {
            g_queue_push_tail_link(&pending, &p->link);
            p->queued = true;
            dropped = sweep(p->accepted_ms); /* make room for this one */
        }
    } else if (*socket_context != NULL) {
        pending_conn *p = *socket_context;
        if (p->queued)
            g_queue_unlink(&pending, &p->link);
        g_free(p);
        *socket_context = NULL;
    }
    g_mutex_unlock(&http_lock);
    log_dropped(dropped);
}

/* The request on @conn has arrived whole: no deadline for it any more. */
static void request_arrived(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    g_mutex_lock(&http_lock);
    pending_conn *p = info != NULL ? info->socket_context : NULL;
    if (p != NULL && p->queued) {
        g_queue_unlink(&pending, &p->link);
        p->queued = false;
    }
    g_mutex_unlock(&http_lock);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void) cls, (void) version, (void) upload_data, (void) upload_data_size, (void) con_cls;
    request_arrived(conn);
    unsigned status = MHD_HTTP_OK;
    char *body = NULL;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = g_strdup("only GET\n");
        type = "text/plain; charset=utf-8";
    } else if (strcmp(url, "/metrics") == 0) {
        body = fbl_metrics_render();
    } else if (strcmp(url, "/") == 0) {
        body = g_strdup("fbl: the metrics are at /metrics\n");
        type = "text/plain; charset=utf-8";
    } else {
        status = MHD_HTTP_NOT_FOUND;
        body = g_strdup("not found; the metrics are at /metrics\n");
        type = "text/plain; charset=utf-8";
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(strlen(body), body, g_free);
    if (r == NULL) {
        g_free(body);
        return MHD_NO;
    }
    (void) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    /* One request per connection: a kept-alive one would need its own deadline. */
    (void) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* libmicrohttpd hands us its own printf format: the format attribute says so. */
static void mhd_log(void *cls, const char *format, va_list ap) G_GNUC_PRINTF(2, 0);

static void mhd_log(void *cls, const char *format, va_list ap)
{
    (void) cls;
    g_autofree char *msg = g_strdup_vprintf(format, ap);
    http_warning("%s", g_strchomp(msg));
}

static struct MHD_Daemon *start_httpd(const struct sockaddr_storage *addr)
{
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (addr->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, answer, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *) addr, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, NULL, MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTION_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_PER_IP_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        HTTP_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) HTTP_MEMORY_LIMIT,
        MHD_OPTION_END);
}

bool fbl_metrics_serve(const char *listen, GError **error)
{
    struct sockaddr_storage addr;
    if (!fbl_metrics_parse_listen(listen, &addr, error))
        return false;
    g_mutex_lock(&lock);
    ensure_registry();
    g_mutex_unlock(&lock);
    httpd = start_httpd(&addr);
    if (httpd == NULL) {
        g_set_error(error, FBL_METRICS_ERROR, FBL_METRICS_ERROR_LISTEN,
                    "metrics: cannot listen on %s (address in use, or not ours?)", listen);
        return false;
    }
    janitor_stop = false;
    janitor = g_thread_new("fbl-metrics-janitor", janitor_main, NULL);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(httpd, MHD_DAEMON_INFO_BIND_PORT);
    g_message("metrics at http://%.*s:%u/metrics", (int) (strrchr(listen, ':') - listen), listen,
              info != NULL ? (unsigned) info->port : 0u);
    return true;
}

void fbl_metrics_stop(void)
{
    if (janitor != NULL) {
        g_mutex_lock(&http_lock);
        janitor_stop = true;
        g_cond_signal(&janitor_wake);
        g_mutex_unlock(&http_lock);
        g_thread_join(janitor);
        janitor = NULL;
    }
    if (httpd != NULL)
        MHD_stop_daemon(httpd);
    httpd = NULL;
}
