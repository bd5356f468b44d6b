/*
 * raw-storage.c - how to keep raw mail in PostgreSQL, and how fast the sink writes
 *
 *   bench_raw_storage storage CONNINFO [MAILS]   raw bytes as pglz, lz4, client zstd
 *   bench_raw_storage write CONNINFO [MAILS] [BATCH]   fbl_pg_write_batch throughput
 *
 * Run through bench/raw-storage, which starts a throwaway cluster. The mails
 * are generated (seeded, so every run stores the same bytes): ARF reports and
 * attachment forwards of a spam whose text, HTML, URLs, Received chain, DKIM
 * signature and sometimes an attachment (incompressible, as images and PDFs
 * are) vary; sizes spread like a real abuse mailbox (a few KiB typically,
 * tens of KiB with attachments). Figures go to stdout, one line per variant.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <libpq-fe.h>
#ifdef FBL_HAVE_ZSTD
#include <zstd.h>
#endif

#include "parsers/parse.h"
#include "sink/batch.h"
#include "sink/pg.h"

#define SEED 20260101

static const char *const words[] = {
    "exclusive", "offer",      "limited",    "time",       "only",        "today",    "free",
    "shipping",  "watches",    "luxury",     "replica",    "discount",    "percent",  "click",
    "here",      "now",        "your",       "account",    "has",         "been",     "selected",
    "winner",    "prize",      "claim",      "the",        "a",           "to",       "and",
    "of",        "for",        "with",       "on",         "we",          "you",      "our",
    "best",      "price",      "guaranteed", "order",      "online",      "pharmacy", "cheap",
    "deal",      "members",    "special",    "newsletter", "unsubscribe", "update",   "information",
    "please",    "verify",     "password",   "security",   "bank",        "loan",     "credit",
    "approved",  "investment", "crypto",     "bitcoin",    "returns",     "weekly",   "risk",
};

static const char *word(GRand *r)
{
    return words[g_rand_int_range(r, 0, G_N_ELEMENTS(words))];
}

static void sentence(GRand *r, GString *out, int n)
{
    for (int i = 0; i < n; i++)
        g_string_append_printf(out, "%s%s", i ? " " : "", word(r));
    g_string_append(out, ". ");
}

static void base64_lines(GString *out, const guint8 *data, size_t len)
{
    g_autofree char *b64 = g_base64_encode(data, len);
    for (size_t i = 0, n = strlen(b64); i < n; i += 76)
        g_string_append_printf(out, "%.*s\n", (int) MIN((size_t) 76, n - i), b64 + i);
}

static char *ip(GRand *r)
{
    return g_strdup_printf("%d.%d.%d.%d", g_rand_int_range(r, 11, 223), g_rand_int_range(r, 0, 256),
                           g_rand_int_range(r, 0, 256), g_rand_int_range(r, 1, 255));
}

/* The reported spam: headers, multipart/alternative, sometimes an attachment. */
static void spam(GRand *r, GString *out, int n)
{
    g_autofree char *src = ip(r);
    const char *domain = word(r);
    int hops = g_rand_int_range(r, 2, 6);
    for (int h = 0; h < hops; h++) {
        g_autofree char *hip = h == hops - 1 ? g_strdup(src) : ip(r);
        g_string_append_printf(out,
                               "Received: from mail%d.%s-mail.example (mail%d.%s-mail.example "
                               "[%s])\n\tby mx%d.isp.example (Postfix) with ESMTPS id %08X\n\t"
                               "for <user%d@isp.example>; Tue, 16 Dec 2025 %02d:%02d:%02d +0000\n",
                               h, domain, h, domain, hip, h, g_rand_int(r), n, h + 10,
                               g_rand_int_range(r, 0, 60), g_rand_int_range(r, 0, 60));
    }
    guint8 sig[256];
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (guint8) g_rand_int(r);
    g_autofree char *b = g_base64_encode(sig, sizeof sig);
    g_string_append_printf(
        out,
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s-mail.example;"
        "\n\ts=sel%d; h=from:to:subject:date:message-id; bh=%.44s;\n\tb=%s\n",
        domain, n % 7, b + 100, b);
    g_string_append_printf(out, "From: \"%s %s\" <news@%s-mail.example>\n", word(r), word(r),
                           domain);
    g_string_append_printf(out, "To: user%d@isp.example\nSubject: ", n);
    sentence(r, out, g_rand_int_range(r, 3, 9));
    g_string_append_printf(out,
                           "\nDate: Tue, 16 Dec 2025 10:%02d:00 +0000\n"
                           "Message-ID: <%u.%d@%s-mail.example>\n"
                           "List-Unsubscribe: <https://%s-mail.example/u?id=%u>\n"
                           "MIME-Version: 1.0\n"
                           "Content-Type: multipart/mixed; boundary=\"mix%d\"\n\n--mix%d\n"
                           "Content-Type: multipart/alternative; boundary=\"alt%d\"\n\n--alt%d\n"
                           "Content-Type: text/plain; charset=utf-8\n\n",
                           n % 60, g_rand_int(r), n, domain, domain, g_rand_int(r), n, n, n, n);
    int paras = g_rand_int_range(r, 2, 12);
    for (int p = 0; p < paras; p++) {
        for (int s = g_rand_int_range(r, 2, 6); s > 0; s--)
            sentence(r, out, g_rand_int_range(r, 5, 15));
        g_string_append_printf(out, "\nhttps://%s-mail.example/%s?c=%u\n\n", domain, word(r),
                               g_rand_int(r));
    }
    g_string_append_printf(out,
                           "--alt%d\nContent-Type: text/html; charset=utf-8\n\n"
                           "<html><body><table width=\"600\">\n",
                           n);
    for (int p = 0; p < paras; p++) {
        g_string_append(out, "<tr><td style=\"font-family:Arial;font-size:14px;color:#333\"><p>");
        for (int s = g_rand_int_range(r, 2, 6); s > 0; s--)
            sentence(r, out, g_rand_int_range(r, 5, 15));
        g_string_append_printf(out,
                               "<a href=\"https://%s-mail.example/%s?c=%u\">%s %s</a>"
                               "</p></td></tr>\n",
                               domain, word(r), g_rand_int(r), word(r), word(r));
    }
    g_string_append_printf(out, "</table></body></html>\n--alt%d--\n", n);
    if (g_rand_int_range(r, 0, 100) < 20) {
        gsize len = (gsize) g_rand_int_range(r, 4000, 60000);
        g_autofree guint8 *blob = g_malloc(len);
        for (gsize i = 0; i < len; i++)
            blob[i] = (guint8) g_rand_int(r);
        g_string_append_printf(out,
                               "--mix%d\nContent-Type: image/jpeg; name=\"offer%d.jpg\"\n"
                               "Content-Transfer-Encoding: base64\n\n",
                               n, n);
        base64_lines(out, blob, len);
    }
    g_string_append_printf(out, "--mix%d--\n", n);
}

/* Mail @n: an ARF report (2 in 3) or a subscriber's attachment forward. */
static GBytes *generate(GRand *r, int n)
{
    GString *m = g_string_new(NULL);
    g_autofree char *fbl_ip = ip(r);
    bool arf = g_rand_int_range(r, 0, 3) > 0;
    g_string_append_printf(m,
                           "Return-Path: <fbl@feedback.example.net>\n"
                           "Received: from mx.feedback.example.net ([%s])\n\tby "
                           "spamalert.example.com with ESMTPS; Wed, 17 Dec 2025 08:%02d:00 +0000\n"
                           "From: %s\nTo: spamalert@example.com\n"
                           "Subject: %s report %d\nDate: Wed, 17 Dec 2025 08:%02d:00 +0000\n"
                           "Message-ID: <fbl-%d-%u@feedback.example.net>\nMIME-Version: 1.0\n",
                           fbl_ip, n % 60,
                           arf ? "Feedback Loop <fbl@feedback.example.net>"
                               : "A Subscriber <someone@users.example.org>",
                           arf ? "Abuse" : "Fwd: spam", n, n % 60, n, g_rand_int(r));
    if (arf) {
        g_string_append_printf(
            m,
            "Content-Type: multipart/report; report-type=feedback-report; boundary=\"r%d\"\n\n"
            "--r%d\nContent-Type: text/plain\n\nThis is an email abuse report for an email "
            "message received from IP %s.\n\n--r%d\nContent-Type: message/feedback-report\n\n"
            "Feedback-Type: abuse\nUser-Agent: ExampleFBL/2.1\nVersion: 1\n"
            "Original-Mail-From: <bounce-%d@news.example>\nOriginal-Rcpt-To: <user%d@isp.example>"
            "\nArrival-Date: Tue, 16 Dec 2025 10:00:00 +0000\nReporting-MTA: dns; "
            "mx.feedback.example.net\nSource-IP: %s\nIncidents: 1\n\n"
            "--r%d\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n",
            n, n, fbl_ip, n, n, n, fbl_ip, n);
        spam(r, m, n);
        g_string_append_printf(m, "\n--r%d--\n", n);
    } else {
        g_string_append_printf(m,
                               "Content-Type: multipart/mixed; boundary=\"f%d\"\n\n--f%d\n"
                               "Content-Type: text/plain; charset=utf-8\n\nPlease stop this. ",
                               n, n);
        sentence(r, m, 12);
        g_string_append_printf(m,
                               "\n\n--f%d\nContent-Type: message/rfc822\n"
                               "Content-Disposition: attachment; filename=\"spam.eml\"\n\n",
                               n);
        spam(r, m, n);
        g_string_append_printf(m, "\n--f%d--\n", n);
    }
    return g_string_free_to_bytes(m);
}

static GPtrArray *generate_all(int count)
{
    GRand *r = g_rand_new_with_seed(SEED);
    GPtrArray *mails = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
    for (int i = 0; i < count; i++)
        g_ptr_array_add(mails, generate(r, i));
    g_rand_free(r);
    return mails;
}

static PGconn *connect_or_die(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        (void) fprintf(stderr, "bench: %s\n", c != NULL ? PQerrorMessage(c) : "out of memory");
        exit(1);
    }
    return c;
}

static void exec_or_die(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        (void) fprintf(stderr, "bench: %s: %s", sql, PQresultErrorMessage(res));
        exit(1);
    }
    PQclear(res);
}

static void put_be32(GByteArray *b, guint32 v)
{
    v = GUINT32_TO_BE(v);
    g_byte_array_append(b, (const guint8 *) &v, 4);
}

/* ---- storage ----------------------------------------------------------- */

typedef struct variant {
    const char *name;
    const char *column;  /* the raw column's definition */
    const char *storage; /* SET STORAGE, or NULL */
    bool zstd;
} variant;

/* COPY @mails into @table in transactions of @batch; returns seconds. */
static double store_variant(PGconn *c, const char *table, const GPtrArray *mails, bool zstd,
                            guint batch)
{
    gint64 t0 = g_get_monotonic_time();
    for (guint start = 0; start < mails->len; start += batch) {
        exec_or_die(c, "BEGIN");
        g_autofree char *copy =
            g_strdup_printf("COPY %s (id, raw) FROM STDIN (FORMAT binary)", table);
        PGresult *res = PQexec(c, copy);
        if (PQresultStatus(res) != PGRES_COPY_IN) {
            (void) fprintf(stderr, "bench: %s", PQresultErrorMessage(res));
            exit(1);
        }
        PQclear(res);
        GByteArray *b = g_byte_array_new();
        static const guint8 header[] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
        g_byte_array_append(b, header, sizeof header);
        put_be32(b, 0);
        put_be32(b, 0);
        for (guint i = start; i < MIN(start + batch, mails->len); i++) {
            gsize len;
            const guint8 *data = g_bytes_get_data(g_ptr_array_index(mails, i), &len);
            guint16 nf = GUINT16_TO_BE(2);
            g_byte_array_append(b, (const guint8 *) &nf, 2);
            put_be32(b, 4);
            put_be32(b, i);
#ifdef FBL_HAVE_ZSTD
            if (zstd) {
                size_t cap = ZSTD_compressBound(len);
                guint8 *z = g_malloc(cap);
                size_t zl = ZSTD_compress(z, cap, data, len, 3);
                put_be32(b, (guint32) zl);
                g_byte_array_append(b, z, (guint) zl);
                g_free(z);
                continue;
            }
#else
            (void) zstd;
#endif
            put_be32(b, (guint32) len);
            g_byte_array_append(b, data, (guint) len);
        }
        guint16 end = 0xffff;
        g_byte_array_append(b, (const guint8 *) &end, 2);
        if (PQputCopyData(c, (const char *) b->data, (int) b->len) != 1 ||
            PQputCopyEnd(c, NULL) != 1) {
            (void) fprintf(stderr, "bench: copy: %s", PQerrorMessage(c));
            exit(1);
        }
        g_byte_array_unref(b);
        while ((res = PQgetResult(c)) != NULL) {
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                (void) fprintf(stderr, "bench: copy: %s", PQresultErrorMessage(res));
                exit(1);
            }
            PQclear(res);
        }
        exec_or_die(c, "COMMIT");
    }
    return (double) (g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
}

/* Read every raw back (and decompress); returns seconds. */
static double read_variant(PGconn *c, const char *table, bool zstd, gsize expect_bytes)
{
    gint64 t0 = g_get_monotonic_time();
    g_autofree char *sql = g_strdup_printf("SELECT raw FROM %s", table);
    PGresult *res = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 1);
    gsize total = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        size_t len = (size_t) PQgetlength(res, i, 0);
#ifdef FBL_HAVE_ZSTD
        if (zstd) {
            const char *z = PQgetvalue(res, i, 0);
            unsigned long long size = ZSTD_getFrameContentSize(z, len);
            guint8 *out = g_malloc(size);
            len = ZSTD_decompress(out, size, z, len);
            g_free(out);
        }
#else
        (void) zstd;
#endif
        total += len;
    }
    PQclear(res);
    if (total != expect_bytes)
        (void) fprintf(stderr, "bench: %s: read %zu bytes, expected %zu\n", table, total,
                       expect_bytes);
    return (double) (g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
}

static gint compare_sizes(gconstpointer a, gconstpointer b)
{
    gsize x = *(const gsize *) a, y = *(const gsize *) b;
    return x < y ? -1 : x > y;
}

static int bench_storage(const char *conninfo, int count)
{
    g_autoptr(GPtrArray) mails = generate_all(count);
    gsize bytes = 0;
    g_autoptr(GArray) sizes = g_array_new(FALSE, FALSE, sizeof(gsize));
    for (guint i = 0; i < mails->len; i++) {
        gsize len = g_bytes_get_size(g_ptr_array_index(mails, i));
        bytes += len;
        g_array_append_val(sizes, len);
    }
    g_array_sort(sizes, compare_sizes);
    printf("mails=%d raw_bytes=%zu min=%zu median=%zu p90=%zu max=%zu\n", count, bytes,
           g_array_index(sizes, gsize, 0), g_array_index(sizes, gsize, sizes->len / 2),
           g_array_index(sizes, gsize, sizes->len * 9 / 10),
           g_array_index(sizes, gsize, sizes->len - 1));
    static const variant variants[] = {
        {"none", "raw bytea", "EXTERNAL", false},
        {"pglz", "raw bytea COMPRESSION pglz", NULL, false},
        {"lz4", "raw bytea COMPRESSION lz4", NULL, false},
#ifdef FBL_HAVE_ZSTD
        {"zstd3", "raw bytea", "EXTERNAL", true},
#endif
    };
    PGconn *c = connect_or_die(conninfo);
    for (size_t v = 0; v < G_N_ELEMENTS(variants); v++) {
        double best_w = 1e9, best_r = 1e9;
        gint64 size = 0;
        for (int run = 0; run < 3; run++) {
            g_autofree char *table = g_strdup_printf("bench_raw_%s", variants[v].name);
            g_autofree char *drop = g_strdup_printf("DROP TABLE IF EXISTS %s", table);
            g_autofree char *create = g_strdup_printf(
                "CREATE TABLE %s (id integer PRIMARY KEY, %s)", table, variants[v].column);
            exec_or_die(c, drop);
            exec_or_die(c, create);
            if (variants[v].storage != NULL) {
                g_autofree char *alter = g_strdup_printf(
                    "ALTER TABLE %s ALTER COLUMN raw SET STORAGE %s", table, variants[v].storage);
                exec_or_die(c, alter);
            }
            exec_or_die(c, "CHECKPOINT");
            double w = store_variant(c, table, mails, variants[v].zstd, 500);
            double r = read_variant(c, table, variants[v].zstd, bytes);
            best_w = MIN(best_w, w);
            best_r = MIN(best_r, r);
            g_autofree char *q = g_strdup_printf("SELECT pg_total_relation_size('%s')", table);
            PGresult *res = PQexec(c, q);
            size = g_ascii_strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            PQclear(res);
        }
        printf("variant=%-5s total_relation_size=%.1fMB ratio=%.2f write=%.0f_mails/s "
               "(%.1fMB/s) read=%.0f_mails/s\n",
               variants[v].name, (double) size / 1e6, (double) bytes / (double) size,
               count / best_w, (double) bytes / 1e6 / best_w, count / best_r);
    }
    PQfinish(c);
    return 0;
}

/* ---- fbl_pg_write_batch ------------------------------------------------ */

static int bench_write(const char *conninfo, int count, guint batch_size)
{
    g_autoptr(GPtrArray) mails = generate_all(count);
    fbl_parsers_init();
    fbl_parse_options po;
    fbl_parse_options_init(&po);
    fbl_parser *parser = fbl_parser_new(&po, NULL);
    gint64 t0 = g_get_monotonic_time();
    GPtrArray *batches = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_batch_free);
    guint reports = 0, rejects = 0;
    for (guint i = 0; i < mails->len; i++) {
        if (i % batch_size == 0)
            g_ptr_array_add(batches, fbl_batch_new());
        GBytes *raw = g_ptr_array_index(mails, i);
        gsize len;
        const void *data = g_bytes_get_data(raw, &len);
        /* A month and a half of deliveries: two partitions. */
        fbl_mail_meta meta = {.mailbox = "spamalert", .received_at = 1767225600 + i * 1000};
        fbl_parse_result *res = fbl_parser_parse(parser, data, len, &meta);
        fbl_sink_mail *m = fbl_sink_mail_new();
        g_strlcpy(m->mail_id, res->mail_id, sizeof m->mail_id);
        m->mailbox = g_strdup("spamalert");
        m->received_at = meta.received_at;
        m->size = (int64_t) len;
        m->raw = g_bytes_ref(raw);
        for (guint j = 0; j < res->reports->len; j++)
            g_ptr_array_add(m->reports, g_ptr_array_index(res->reports, j));
        g_ptr_array_set_free_func(res->reports, NULL);
        m->reject = g_steal_pointer(&res->reject);
        reports += m->reports->len;
        rejects += m->reject != NULL;
        fbl_parse_result_free(res);
        fbl_batch_add(g_ptr_array_index(batches, batches->len - 1), m);
    }
    double parse_s = (double) (g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
    printf("mails=%d reports=%u rejects=%u batches=%u parse=%.0f_mails/s\n", count, reports,
           rejects, batches->len, count / parse_s);

    static const char *const vendors[] = {"vendor", NULL};
    fbl_pg_options o = {.conninfo = conninfo, .vendors = vendors, .store_raw = true};
    g_autoptr(GError) error = NULL;
    fbl_pg *pg = fbl_pg_new(&o, &error);
    if (pg == NULL || !fbl_pg_migrate(pg, NULL, &error)) {
        (void) fprintf(stderr, "bench: %s\n", error->message);
        return 1;
    }
    for (int pass = 0; pass < 2; pass++) {
        t0 = g_get_monotonic_time();
        for (guint b = 0; b < batches->len; b++) {
            if (!fbl_pg_write_batch(pg, g_ptr_array_index(batches, b), &error)) {
                (void) fprintf(stderr, "bench: %s\n", error->message);
                return 1;
            }
        }
        double s = (double) (g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
        printf("%s batch=%u: %.0f mails/s, %.0f reports/s, %.0f ms/batch\n",
               pass == 0 ? "write     " : "redelivery", batch_size, count / s, reports / s,
               s * 1000 / batches->len);
    }
    fbl_pg_free(pg);
    g_ptr_array_unref(batches);
    fbl_parser_free(parser);
    fbl_parsers_shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        (void) fprintf(stderr, "usage: bench_raw_storage storage|write CONNINFO [MAILS] [BATCH]\n");
        return 2;
    }
    int count = argc > 3 ? (int) g_ascii_strtoll(argv[3], NULL, 10) : 2000;
    guint batch = argc > 4 ? (guint) g_ascii_strtoull(argv[4], NULL, 10) : 500;
    if (count <= 0 || batch == 0) {
        (void) fprintf(stderr, "bench: MAILS and BATCH must be positive\n");
        return 2;
    }
    if (strcmp(argv[1], "storage") == 0)
        return bench_storage(argv[2], count);
    if (strcmp(argv[1], "write") == 0)
        return bench_write(argv[2], count, batch);
    (void) fprintf(stderr, "bench: unknown mode '%s'\n", argv[1]);
    return 2;
}
