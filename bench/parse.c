/*
 * bench/parse.c - parse throughput of fbl and of bare GMime on one core
 *
 *   bench_parse [--engine fbl|gmime|all] [--reps N] [--warmup N] [--cpu N]
 *               [--list FILE] PATH...
 *
 * Method: every mail (PATH: files, or directories read recursively in name
 * order; --list: a file of paths, one a line) is read into memory first; the
 * process is pinned to one CPU (sched_setaffinity); then, per engine, one
 * untimed warm-up pass and N timed passes over all the mails. A pass is timed
 * with the process CPU clock (CLOCK_PROCESS_CPUTIME_ID: what the parse costs,
 * whatever else the machine runs) and the wall clock (CLOCK_MONOTONIC). One
 * JSON line per timed pass goes to stdout, a summary to stderr.
 *
 * Engines:
 *   fbl    fbl_parser_parse() with the default limits, then every report and
 *          reject encoded as the wire does (json_dumps, JSON_COMPACT): what
 *          `fbl watch` does per mail, minus the file read and the send.
 *   gmime  the floor fbl stands on: g_mime_parser_construct_message() on a mem
 *          stream (no copy of the bytes), every header of every entity (the
 *          message, its parts, attached messages) read with its decoded value,
 *          and every leaf's content decoded (base64, quoted-printable) into a
 *          null stream. Nothing else.
 *
 * For callgrind, restrict to one engine and one pass and count only the pass:
 *   valgrind --tool=callgrind --toggle-collect=pass_fbl \
 *       bench_parse --engine fbl --reps 1 --warmup 0 DIR
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <gmime/gmime.h>
#include <jansson.h>

#include "parsers/parse.h"
#include "parsers/report_json.h"

/* GMime 3.2 declares no autoptr cleanups (STYLE.md section 5); parsers/ keeps its own private. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParser, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeMessage, g_object_unref)

/* What a pass produced: proof that the engines did comparable work. */
typedef struct tally {
    guint64 reports;  /* fbl: reports; gmime: entities (message, parts) */
    guint64 rejects;  /* fbl: rejects; gmime: mails GMime could not read */
    guint64 headers;  /* gmime: header fields read */
    guint64 outbytes; /* fbl: JSON bytes; gmime: decoded content bytes */
} tally;

static int cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Append the regular files under @path (a file, or a directory walked in name order). */
/* NOLINTNEXTLINE(misc-no-recursion): bounded by @depth */
static bool collect(const char *path, GPtrArray *out, unsigned depth)
{
    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_ptr_array_add(out, g_strdup(path));
        return true;
    }
    if (depth > 16) {
        g_printerr("bench_parse: %s: directories nested too deep\n", path);
        return false;
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) dir = g_dir_open(path, 0, &error);
    if (dir == NULL) {
        g_printerr("bench_parse: %s\n", error->message);
        return false;
    }
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(dir)) != NULL) {
        if (name[0] != '.')
            g_ptr_array_add(names, g_build_filename(path, name, NULL));
    }
    g_ptr_array_sort(names, cmp_str);
    for (guint i = 0; i < names->len; i++) {
        if (!collect(g_ptr_array_index(names, i), out, depth + 1))
            return false;
    }
    return true;
}

static bool read_list(const char *list, GPtrArray *out)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(list, &text, NULL, &error)) {
        g_printerr("bench_parse: %s\n", error->message);
        return false;
    }
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (size_t i = 0; lines[i] != NULL; i++) {
        if (lines[i][0] != '\0')
            g_ptr_array_add(out, g_strdup(lines[i]));
    }
    return true;
}

/* Every mail, as a GByteArray (the GMime engine streams from it without a copy). */
static GPtrArray *load(GPtrArray *paths, guint64 *total)
{
    GPtrArray *mails = g_ptr_array_new_with_free_func((GDestroyNotify) g_byte_array_unref);
    *total = 0;
    for (guint i = 0; i < paths->len; i++) {
        char *data = NULL;
        gsize len = 0;
        g_autoptr(GError) error = NULL;
        if (!g_file_get_contents(g_ptr_array_index(paths, i), &data, &len, &error)) {
            g_printerr("bench_parse: %s\n", error->message);
            g_ptr_array_unref(mails);
            return NULL;
        }
        g_ptr_array_add(mails, g_byte_array_new_take((guint8 *) data, len));
        *total += len;
    }
    return mails;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- fbl: parse + normalize + encode ----------------------------------- */

static size_t encode(json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    size_t n = text != NULL ? strlen(text) : 0;
    free(text);
    return n;
}

__attribute__((noinline)) static void pass_fbl(const fbl_parser *parser, GPtrArray *mails, tally *t)
{
    fbl_mail_meta meta = {
        .mailbox = "bench",
        .default_feedback_type = FBL_FEEDBACK_ABUSE,
        .received_at = 1767225600,
    };
    for (guint i = 0; i < mails->len; i++) {
        const GByteArray *m = g_ptr_array_index(mails, i);
        fbl_parse_result *r = fbl_parser_parse(parser, m->data, m->len, &meta);
        for (guint j = 0; j < r->reports->len; j++)
            t->outbytes += encode(fbl_report_to_json(g_ptr_array_index(r->reports, j)));
        if (r->reject != NULL)
            t->outbytes += encode(fbl_reject_to_json(r->reject));
        t->reports += r->reports->len;
        t->rejects += r->reject != NULL;
        fbl_parse_result_free(r);
    }
}

/* ---- bare GMime: parse, every header, every leaf decoded ---------------- */

static void walk_headers(GMimeObject *obj, tally *t)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
    int n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(h);
        const char *value = g_mime_header_get_value(h);
        t->headers += name != NULL && value != NULL;
    }
}

static void decode_leaf(GMimePart *part, GMimeStream *sink, tally *t)
{
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    gint64 before = g_mime_stream_tell(sink);
    if (content != NULL && g_mime_data_wrapper_write_to_stream(content, sink) >= 0)
        t->outbytes += (guint64) (g_mime_stream_tell(sink) - before);
}

/* Push the entities inside @obj (last first, so they pop in order). */
static void push_children(GMimeObject *obj, GPtrArray *stack)
{
    GMimeObject *inner = NULL;
    if (GMIME_IS_MESSAGE(obj)) {
        inner = g_mime_message_get_mime_part(GMIME_MESSAGE(obj));
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        inner = m != NULL ? GMIME_OBJECT(m) : NULL;
    } else if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        for (int i = g_mime_multipart_get_count(mp) - 1; i >= 0; i--)
            g_ptr_array_add(stack, g_mime_multipart_get_part(mp, i));
    }
    if (inner != NULL)
        g_ptr_array_add(stack, inner);
}

/* Every entity of @top, depth first, with an explicit stack (no recursion). */
static void walk(GMimeMessage *top, GMimeStream *sink, tally *t)
{
    g_autoptr(GPtrArray) stack = g_ptr_array_new();
    g_ptr_array_add(stack, top);
    while (stack->len > 0) {
        GMimeObject *obj = g_ptr_array_steal_index_fast(stack, stack->len - 1);
        t->reports++;
        walk_headers(obj, t);
        if (GMIME_IS_PART(obj))
            decode_leaf(GMIME_PART(obj), sink, t);
        else
            push_children(obj, stack);
    }
}

__attribute__((noinline)) static void pass_gmime(GPtrArray *mails, tally *t)
{
    g_autoptr(GMimeStream) sink = g_mime_stream_null_new();
    for (guint i = 0; i < mails->len; i++) {
        GByteArray *m = g_ptr_array_index(mails, i);
        g_autoptr(GMimeStream) in = g_mime_stream_mem_new_with_byte_array(m);
        g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(in), FALSE);
        g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(in);
        g_autoptr(GMimeMessage) msg = g_mime_parser_construct_message(parser, NULL);
        if (msg == NULL)
            t->rejects++;
        else
            walk(msg, sink, t);
    }
}

/* ---- driver ------------------------------------------------------------ */

static bool pin(int cpu)
{
    if (cpu < 0)
        cpu = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        g_printerr("bench_parse: sched_setaffinity(%d): %s\n", cpu, g_strerror(errno));
        return false;
    }
    g_printerr("bench_parse: pinned to CPU %d\n", cpu);
    return true;
}

static int cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static void run_engine(const char *engine, const fbl_parser *parser, GPtrArray *mails,
                       guint64 bytes, int warmup, int reps)
{
    g_autoptr(GArray) cpu = g_array_new(FALSE, FALSE, sizeof(double));
    bool is_fbl = strcmp(engine, "fbl") == 0;
    for (int rep = -warmup; rep < reps; rep++) {
        tally t = {0};
        double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
        if (is_fbl)
            pass_fbl(parser, mails, &t);
        else
            pass_gmime(mails, &t);
        double c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0, w = clock_s(CLOCK_MONOTONIC) - w0;
        if (rep < 0)
            continue;
        g_array_append_val(cpu, c);
        g_print("{\"engine\":\"%s\",\"rep\":%d,\"mails\":%u,\"bytes\":%" G_GUINT64_FORMAT
                ",\"cpu_s\":%.6f,\"wall_s\":%.6f,\"reports\":%" G_GUINT64_FORMAT
                ",\"rejects\":%" G_GUINT64_FORMAT ",\"headers\":%" G_GUINT64_FORMAT
                ",\"outbytes\":%" G_GUINT64_FORMAT "}\n",
                engine, rep, mails->len, bytes, c, w, t.reports, t.rejects, t.headers, t.outbytes);
        (void) fflush(stdout);
    }
    if (cpu->len == 0)
        return;
    g_array_sort(cpu, cmp_double);
    double best = g_array_index(cpu, double, 0), med = g_array_index(cpu, double, cpu->len / 2);
    g_printerr("bench_parse: %-5s %u mails %.1f MB: %.0f mails/s (best of %u, median %.0f)\n",
               engine, mails->len, (double) bytes / 1e6, mails->len / best, cpu->len,
               mails->len / med);
}

int main(int argc, char **argv)
{
    g_autofree char *engine = g_strdup("all"), *list = NULL;
    int reps = 5, warmup = 1, cpu = -1;
    GOptionEntry entries[] = {
        {"engine", 'e', 0, G_OPTION_ARG_STRING, &engine, "fbl, gmime or all (default)", "NAME"},
        {"reps", 'r', 0, G_OPTION_ARG_INT, &reps, "timed passes per engine (default 5)", "N"},
        {"warmup", 'w', 0, G_OPTION_ARG_INT, &warmup, "untimed passes first (default 1)", "N"},
        {"cpu", 0, 0, G_OPTION_ARG_INT, &cpu, "CPU to pin to (default: the current one)", "N"},
        {"list", 'l', 0, G_OPTION_ARG_FILENAME, &list, "a file of mail paths, one a line", "FILE"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("PATH...");
    g_option_context_set_summary(ctx, "Parse throughput of fbl and bare GMime on one core.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("bench_parse: %s\n", error->message);
        return 64;
    }
    bool all = strcmp(engine, "all") == 0;
    if ((!all && strcmp(engine, "fbl") != 0 && strcmp(engine, "gmime") != 0) || reps < 1 ||
        warmup < 0) {
        g_printerr("bench_parse: bad --engine, --reps or --warmup\n");
        return 64;
    }
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    if (list != NULL && !read_list(list, paths))
        return 66;
    for (int i = 1; i < argc; i++) {
        if (!collect(argv[i], paths, 0))
            return 66;
    }
    if (paths->len == 0) {
        g_printerr("bench_parse: no mail given (PATH... or --list FILE)\n");
        return 64;
    }
    guint64 bytes = 0;
    g_autoptr(GPtrArray) mails = load(paths, &bytes);
    if (mails == NULL)
        return 66;
    if (!pin(cpu))
        return 71;

    fbl_parsers_init();
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    fbl_parser *parser = fbl_parser_new(&o, NULL);
    if (all || strcmp(engine, "fbl") == 0)
        run_engine("fbl", parser, mails, bytes, warmup, reps);
    if (all || strcmp(engine, "gmime") == 0)
        run_engine("gmime", parser, mails, bytes, warmup, reps);
    fbl_parser_free(parser);
    fbl_parsers_shutdown();
    return 0;
}
