/*
 * pg_reparse.c - run today's parsers over the stored raw mail and replace
 * each mail's rows in place (see fbl_pg_reparse() in pg.h)
 *
 * Pages of mails in (received_at, mail_id) order, read one row at a time (one
 * raw mail in memory), parsed, and stored as keys to replace through the
 * staging (pg_stage.c: fbl.replace_staged()), one transaction per page.
 */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/pg.h"

#include <string.h>

#include <libpq-fe.h>

#include "sink/pg_internal.h"
#include "sink/pgconn_internal.h"

typedef struct reparse {
    fbl_pg *pg;
    const fbl_parser *parser;
    fbl_pg_defaults_fn defaults;
    void *defaults_data;
    GPtrArray *page;  /* fbl_sink_mail *, without raw */
    gint64 last_usec; /* keyset cursor: received_at in microseconds since 2000, */
    char *last_id;    /* and mail_id; NULL before the first row */
    guint rows;       /* rows read in this page */
} reparse;

static gint64 be64(const char *p)
{
    guint64 v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (guint8) p[i];
    return (gint64) v;
}

/* Parse one stored mail into the page. Row: mail_id, received_at, mailbox, raw (binary). */
static void reparse_row(reparse *rp, const PGresult *res)
{
    if (PQgetlength(res, 0, 1) != 8)
        return;
    gint64 usec = be64(PQgetvalue(res, 0, 1));
    rp->rows++;
    rp->last_usec = usec;
    g_free(rp->last_id);
    rp->last_id = g_strndup(PQgetvalue(res, 0, 0), (gsize) PQgetlength(res, 0, 0));
    if (strlen(rp->last_id) != FBL_SHA256_HEX_LEN) {
        g_warning("mail skipped: its mail_id is not a SHA-256");
        return;
    }
    if (usec % G_USEC_PER_SEC != 0) {
        /* fbl writes whole seconds; keys it cannot restate are not its rows. */
        g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "RID", rp->last_id, "MESSAGE",
                         "mail skipped: received_at has a fraction of a second");
        return;
    }
    g_autoptr(fbl_sink_mail) m = fbl_sink_mail_new();
    g_strlcpy(m->mail_id, rp->last_id, sizeof m->mail_id);
    m->received_at = usec / G_USEC_PER_SEC + FBL_PG_EPOCH_OFFSET;
    if (!PQgetisnull(res, 0, 2))
        m->mailbox = g_strndup(PQgetvalue(res, 0, 2), (gsize) PQgetlength(res, 0, 2));
    const char *raw = PQgetvalue(res, 0, 3);
    size_t len = (size_t) PQgetlength(res, 0, 3);
    m->size = (int64_t) len;

    const fbl_mail_meta *d =
        rp->defaults != NULL ? rp->defaults(m->mailbox, rp->defaults_data) : NULL;
    fbl_mail_meta meta = {.default_feedback_type = FBL_FEEDBACK_ABUSE};
    if (d != NULL)
        meta = *d;
    meta.mailbox = m->mailbox;
    meta.received_at = m->received_at;
    fbl_parse_result *result = fbl_parser_parse(rp->parser, raw, len, &meta);
    if (strcmp(result->mail_id, m->mail_id) != 0)
        g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "RID", m->mail_id, "MESSAGE",
                         "stored raw mail does not hash to its mail_id; kept under it");
    /* Rows stay under the stored mail_id whatever the bytes hash to now. */
    for (guint i = 0; i < result->reports->len; i++) {
        fbl_report *r = g_ptr_array_index(result->reports, i);
        fbl_report_set_ids(r, m->mail_id, r->part);
        g_ptr_array_add(m->reports, r);
    }
    g_ptr_array_set_free_func(result->reports, NULL);
    g_ptr_array_set_size(result->reports, 0);
    g_ptr_array_set_free_func(result->reports, (GDestroyNotify) fbl_report_free);
    if (result->reject != NULL) {
        m->reject = g_steal_pointer(&result->reject);
        g_strlcpy(m->reject->mail_id, m->mail_id, sizeof m->reject->mail_id);
    }
    fbl_parse_result_free(result);
    g_ptr_array_add(rp->page, g_steal_pointer(&m));
}

/* Read and parse the next page of at most @limit mails, one row at a time. */
static bool reparse_read_page(reparse *rp, const char *since, const char *until, unsigned limit,
                              GError **error)
{
    g_autofree char *last_usec = g_strdup_printf("%" G_GINT64_FORMAT, rp->last_usec);
    g_autofree char *lim = g_strdup_printf("%u", limit);
    const char *params[] = {since,     until,       rp->last_id != NULL ? "t" : "f",
                            last_usec, rp->last_id, lim};
    rp->rows = 0;
    PGconn *conn = rp->pg->conn;
    if (!PQsendQueryParams(
            conn,
            "SELECT mail_id, received_at, mailbox, raw FROM fbl.mails "
            "WHERE raw IS NOT NULL AND raw_complete " /* a too_large prefix stays too_large */
            "AND ($1::bigint = 0 OR received_at >= to_timestamp($1::bigint)) "
            "AND ($2::bigint = 0 OR received_at < to_timestamp($2::bigint)) "
            "AND (NOT $3::boolean OR (received_at, mail_id) > "
            "(timestamptz '2000-01-01 00:00:00+00' + $4::bigint * interval '1 microsecond', "
            "$5::text)) "
            "ORDER BY received_at, mail_id LIMIT $6::integer",
            6, NULL, params, NULL, NULL, 1)) {
        fbl_pgconn_set_error(rp->pg->conn, NULL, "read mails", error);
        return false;
    }
    /* One row at a time: one raw mail in memory, however large the page. */
    if (!PQsetSingleRowMode(conn))
        g_debug("single-row mode refused; reading the page whole");
    bool ok = true;
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && ok) {
            reparse_row(rp, res);
        } else if (st == PGRES_TUPLES_OK) {
            /* the end (single-row mode), or the whole page (if it was refused) */
        } else if (ok) {
            fbl_pgconn_set_error(rp->pg->conn, res, "read mails", error);
            ok = false;
        }
        PQclear(res);
    }
    return ok;
}

bool fbl_pg_reparse(fbl_pg *pg, const fbl_pg_reparse_options *options, guint64 *changed,
                    GError **error)
{
    if (changed != NULL)
        *changed = 0;
    if (!fbl_pg_ensure_ready(pg, error))
        return false;
    unsigned batch_size = MAX(options->batch_size, 1u);
    g_autofree char *since_s = g_strdup_printf("%" G_GINT64_FORMAT, options->since);
    g_autofree char *until_s = g_strdup_printf("%" G_GINT64_FORMAT, options->until);
    const char *params[] = {since_s, until_s};
    PGresult *res = PQexecParams(pg->conn,
                                 "SELECT count(*) FROM fbl.mails WHERE raw IS NOT NULL "
                                 "AND raw_complete "
                                 "AND ($1::bigint = 0 OR received_at >= to_timestamp($1::bigint)) "
                                 "AND ($2::bigint = 0 OR received_at < to_timestamp($2::bigint))",
                                 2, NULL, params, NULL, NULL, 0);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
    guint64 total = ok ? fbl_pg_result_uint(res, 0) : 0;
    if (!ok)
        fbl_pgconn_set_error(pg->conn, res, "count mails", error);
    PQclear(res);
    if (!ok)
        return false;

    reparse rp = {.pg = pg,
                  .parser = options->parser,
                  .defaults = options->defaults,
                  .defaults_data = options->defaults_data};
    rp.page = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_sink_mail_free);
    guint64 done = 0, changes = 0;
    gint64 start = g_get_monotonic_time();
    for (;;) {
        g_ptr_array_set_size(rp.page, 0);
        ok = reparse_read_page(&rp, since_s, until_s, batch_size, error);
        if (!ok || rp.rows == 0)
            break;
        fbl_pg_counts c = {0};
        if (rp.page->len > 0) {
            fbl_pg_staging s = {.mails = rp.page, .keys_only = true};
            ok = fbl_pg_store_all(pg, &s, &c, error);
            if (!ok)
                break;
        }
        done += rp.page->len;
        changes += c.changed;
        if (options->progress != NULL)
            options->progress(done, MAX(done, total), options->progress_data);
        if (rp.rows < batch_size)
            break;
    }
    g_ptr_array_unref(rp.page);
    g_free(rp.last_id);
    if (!ok)
        return false;
    g_message("reparse done mails=%" G_GUINT64_FORMAT " changed=%" G_GUINT64_FORMAT
              " ms=%" G_GINT64_FORMAT,
              done, changes, (g_get_monotonic_time() - start) / 1000);
    if (changed != NULL)
        *changed = changes;
    return true;
}
