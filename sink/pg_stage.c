/*
 * pg_stage.c - one store transaction: stage mails with binary COPY into the
 * session's temporary tables, then fbl.write_staged() or fbl.replace_staged()
 * (see pg_internal.h)
 *
 * The SQL that shapes the rows lives in schema/002_store.sql and the
 * migrations after it: so the columns analysts query are derived from the
 * same document by the same SQL on the write path and on reparse, and one
 * statement per table does the work whatever the batch size.
 */
#define G_LOG_DOMAIN "fbl-pg"
#include "sink/pg_internal.h"

#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "parsers/report_json.h"
#include "sink/pgconn_internal.h"

/* COPY data is handed to libpq in pieces of about this size. */
#define COPY_CHUNK ((size_t) 256 * 1024)
/* A store_error reject's detail keeps at most this many bytes of the message. */
#define MAX_DETAIL 1000

/* ---- binary COPY ------------------------------------------------------- */

typedef struct copy_out {
    fbl_pg *pg;
    GByteArray *buf;
    bool failed; /* PQputCopyData failed: the connection is gone */
} copy_out;

static void copy_flush(copy_out *c)
{
    if (c->buf->len == 0 || c->failed)
        return;
    if (PQputCopyData(c->pg->conn, (const char *) c->buf->data, (int) c->buf->len) != 1)
        c->failed = true;
    g_byte_array_set_size(c->buf, 0);
}

static void put_i16(copy_out *c, gint16 v)
{
    guint16 be = GUINT16_TO_BE((guint16) v);
    g_byte_array_append(c->buf, (const guint8 *) &be, sizeof be);
}

static void put_i32(copy_out *c, gint32 v)
{
    guint32 be = GUINT32_TO_BE((guint32) v);
    g_byte_array_append(c->buf, (const guint8 *) &be, sizeof be);
}

static void put_i64(copy_out *c, gint64 v)
{
    guint64 be = GUINT64_TO_BE((guint64) v);
    g_byte_array_append(c->buf, (const guint8 *) &be, sizeof be);
}

static void put_null(copy_out *c)
{
    put_i32(c, -1);
}

/* A field of @len bytes; large ones go to libpq straight from the caller's memory. */
static void put_bytes(copy_out *c, const void *data, size_t len)
{
    g_assert(len < G_MAXINT32);
    put_i32(c, (gint32) len);
    if (len >= COPY_CHUNK) {
        copy_flush(c);
        if (!c->failed && PQputCopyData(c->pg->conn, data, (int) len) != 1)
            c->failed = true;
        return;
    }
    g_byte_array_append(c->buf, data, (guint) len);
    if (c->buf->len >= COPY_CHUNK)
        copy_flush(c);
}

/* text: UTF-8 only (the server refuses anything else: make it valid). */
static void put_text(copy_out *c, const char *s)
{
    if (s == NULL) {
        put_null(c);
        return;
    }
    size_t len = strlen(s);
    if (g_utf8_validate(s, (gssize) len, NULL)) {
        put_bytes(c, s, len);
        return;
    }
    g_autofree char *valid = g_utf8_make_valid(s, (gssize) len);
    put_bytes(c, valid, strlen(valid));
}

static void put_int8(copy_out *c, gint64 v)
{
    put_i32(c, 8);
    put_i64(c, v);
}

static void put_int8_or_null(copy_out *c, gint64 v)
{
    if (v < 0)
        put_null(c);
    else
        put_int8(c, v);
}

static void put_timestamptz(copy_out *c, gint64 unix_seconds)
{
    put_int8(c, (unix_seconds - FBL_PG_EPOCH_OFFSET) * G_USEC_PER_SEC);
}

/* jsonb's binary form: version 1, then the text. */
static void put_jsonb(copy_out *c, const char *json)
{
    size_t len = strlen(json);
    put_i32(c, (gint32) (len + 1));
    g_byte_array_append(c->buf, (const guint8 *) "\1", 1);
    g_byte_array_append(c->buf, (const guint8 *) json, (guint) len);
    if (c->buf->len >= COPY_CHUNK)
        copy_flush(c);
}

static bool copy_begin(copy_out *c, fbl_pg *pg, const char *sql, GError **error)
{
    c->pg = pg;
    c->failed = false;
    PGresult *res = PQexec(pg->conn, sql);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_COPY_IN;
    if (!ok)
        fbl_pgconn_set_error(pg->conn, res, "copy", error);
    PQclear(res);
    if (!ok)
        return false;
    c->buf = g_byte_array_sized_new((guint) COPY_CHUNK + 1024);
    static const guint8 header[] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    g_byte_array_append(c->buf, header, sizeof header);
    put_i32(c, 0); /* flags */
    put_i32(c, 0); /* header extension */
    return true;
}

/* copy_end - finish the COPY; false with @error when it or the server failed */
static bool copy_end(copy_out *c, const char *what, GError **error)
{
    put_i16(c, -1);
    copy_flush(c);
    g_byte_array_unref(c->buf);
    c->buf = NULL;
    bool ok = !c->failed;
    if (PQputCopyEnd(c->pg->conn, NULL) != 1)
        ok = false;
    bool have_error = false;
    PGresult *res;
    /* After PQputCopyEnd the results end; a broken connection ends them too. */
    while ((res = PQgetResult(c->pg->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && !have_error) {
            fbl_pgconn_set_error(c->pg->conn, res, what, error);
            have_error = true;
        }
        PQclear(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
            break; /* never reached in blocking mode; do not spin */
    }
    if (!ok && !have_error)
        fbl_pgconn_set_error(c->pg->conn, NULL, what, error);
    return ok && !have_error;
}

/* ---- staging ----------------------------------------------------------- */

static bool stage_mails(fbl_pg *pg, const fbl_pg_staging *s, GError **error)
{
    copy_out c;
    const char *sql = s->keys_only
                          ? "COPY pg_temp.fbl_stage_keys (mail_id, received_at) FROM STDIN "
                            "(FORMAT binary)"
                          : "COPY pg_temp.fbl_stage_mails (mail_id, received_at, mailbox, size, "
                            "raw) FROM STDIN (FORMAT binary)";
    if (!copy_begin(&c, pg, sql, error))
        return false;
    for (guint i = 0; i < s->mails->len && !c.failed; i++) {
        const fbl_sink_mail *m = g_ptr_array_index(s->mails, i);
        put_i16(&c, s->keys_only ? 2 : 5);
        put_text(&c, m->mail_id);
        put_timestamptz(&c, m->received_at);
        if (s->keys_only)
            continue;
        put_text(&c, m->mailbox);
        put_int8_or_null(&c, m->size);
        if (pg->store_raw && m->raw != NULL) {
            gsize len;
            const void *data = g_bytes_get_data(m->raw, &len);
            put_bytes(&c, data, len);
        } else {
            put_null(&c);
        }
    }
    return copy_end(&c, "stage mails", error);
}

static bool stage_reports(fbl_pg *pg, const fbl_pg_staging *s, GError **error)
{
    copy_out c;
    if (!copy_begin(&c, pg,
                    "COPY pg_temp.fbl_stage_reports (id, mail_id, received_at, doc) FROM STDIN "
                    "(FORMAT binary)",
                    error))
        return false;
    for (guint i = 0; s->store_error == NULL && i < s->mails->len && !c.failed; i++) {
        const fbl_sink_mail *m = g_ptr_array_index(s->mails, i);
        for (guint j = 0; j < m->reports->len; j++) {
            const fbl_report *r = g_ptr_array_index(m->reports, j);
            json_t *doc = fbl_report_to_json(r);
            char *text = json_dumps(doc, JSON_COMPACT);
            json_decref(doc);
            put_i16(&c, 4);
            put_text(&c, r->id);
            /* The mail's keys, not the document's: they are what the rows join on. */
            put_text(&c, m->mail_id);
            put_timestamptz(&c, m->received_at);
            if (text != NULL)
                put_jsonb(&c, text);
            else
                put_null(&c); /* cannot happen: the column refuses it (23502) */
            free(text);
        }
    }
    return copy_end(&c, "stage reports", error);
}

static bool stage_rejects(fbl_pg *pg, const fbl_pg_staging *s, GError **error)
{
    copy_out c;
    if (!copy_begin(&c, pg,
                    "COPY pg_temp.fbl_stage_rejects (mail_id, received_at, mailbox, reason, "
                    "detail, size) FROM STDIN (FORMAT binary)",
                    error))
        return false;
    for (guint i = 0; i < s->mails->len && !c.failed; i++) {
        const fbl_sink_mail *m = g_ptr_array_index(s->mails, i);
        const fbl_reject *j = m->reject;
        if (s->store_error == NULL && j == NULL)
            continue;
        put_i16(&c, 6);
        put_text(&c, m->mail_id);
        put_timestamptz(&c, m->received_at);
        put_text(&c, j != NULL && j->mailbox != NULL ? j->mailbox : m->mailbox);
        if (s->store_error != NULL) {
            put_text(&c, FBL_PG_REJECT_STORE_ERROR);
            put_text(&c, s->store_error);
            put_int8_or_null(&c, m->size);
        } else {
            put_text(&c, fbl_reject_reason_to_string(j->reason));
            put_text(&c, j->detail);
            put_int8_or_null(&c, j->size >= 0 ? j->size : m->size);
        }
    }
    return copy_end(&c, "stage rejects", error);
}

/* The integer in column @column of @res, row 0, or 0. */
guint64 fbl_pg_result_uint(const PGresult *res, int column)
{
    if (PQntuples(res) < 1 || PQnfields(res) <= column || PQgetisnull(res, 0, column))
        return 0;
    return g_ascii_strtoull(PQgetvalue(res, 0, column), NULL, 10);
}

/*
 * store - stage @s and move it into the tables, in one transaction
 *
 * Write: fbl.write_staged(); reparse (keys_only): fbl.replace_staged().
 */
static bool store(fbl_pg *pg, const fbl_pg_staging *s, fbl_pg_counts *out, GError **error)
{
    *out = (fbl_pg_counts){0};
    if (!fbl_pgconn_exec(pg->conn, "BEGIN", "begin", error))
        return false;
    bool ok =
        stage_mails(pg, s, error) && stage_reports(pg, s, error) && stage_rejects(pg, s, error);
    if (ok) {
        const char *params[] = {pg->vendors};
        PGresult *res = PQexecParams(pg->conn,
                                     s->keys_only ? "SELECT fbl.replace_staged($1::text[])"
                                                  : "SELECT mails, reports, rejects "
                                                    "FROM fbl.write_staged($1::text[])",
                                     1, NULL, params, NULL, NULL, 0);
        ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok) {
            fbl_pgconn_set_error(pg->conn, res, s->keys_only ? "replace" : "write", error);
        } else if (s->keys_only) {
            out->changed = fbl_pg_result_uint(res, 0);
        } else {
            out->mails = fbl_pg_result_uint(res, 0);
            out->reports = fbl_pg_result_uint(res, 1);
            out->rejects = fbl_pg_result_uint(res, 2);
        }
        PQclear(res);
    }
    if (ok)
        ok = fbl_pgconn_exec(pg->conn, "COMMIT", "commit", error);
    if (!ok)
        fbl_pgconn_rollback(pg->conn);
    return ok;
}

/* A store_error reject's detail: the message, bounded, valid UTF-8. */
static char *store_error_detail(const GError *e)
{
    const char *msg = e->message;
    size_t len = strlen(msg);
    if (len > MAX_DETAIL) {
        const char *end = g_utf8_find_prev_char(msg, msg + MAX_DETAIL + 1);
        len = end != NULL ? (size_t) (end - msg) : MAX_DETAIL;
    }
    return g_utf8_make_valid(msg, (gssize) len);
}

/* "SQLSTATE 22P02" for a log line, or "" when the server sent none. */
static char *sqlstate_words(const GError *e)
{
    const char *state = fbl_pg_error_get_sqlstate(e);
    return *state != '\0' ? g_strdup_printf("SQLSTATE %s", state) : g_strdup("");
}

/*
 * store_one_by_one - after @s was refused as bad data: store each mail alone,
 * and each that is still refused as a store_error reject (write), or leave it
 * as it was (reparse). Fails only on an error that is not about the data.
 */
static bool store_one_by_one(fbl_pg *pg, const fbl_pg_staging *s, fbl_pg_counts *total,
                             GError **error)
{
    g_autoptr(GPtrArray) one = g_ptr_array_new();
    for (guint i = 0; i < s->mails->len; i++) {
        const fbl_sink_mail *m = g_ptr_array_index(s->mails, i);
        g_ptr_array_set_size(one, 0);
        g_ptr_array_add(one, (gpointer) m);
        fbl_pg_staging single = {.mails = one, .keys_only = s->keys_only};
        fbl_pg_counts c;
        g_autoptr(GError) local = NULL;
        if (store(pg, &single, &c, &local)) {
            total->mails += c.mails;
            total->reports += c.reports;
            total->rejects += c.rejects;
            total->changed += c.changed;
            continue;
        }
        if (local->code != FBL_PG_ERROR_DATA) {
            g_propagate_error(error, g_steal_pointer(&local));
            return false;
        }
        g_autofree char *state = sqlstate_words(local);
        g_debug("mail refused mail_id=%s error=%s", m->mail_id, local->message);
        if (s->keys_only) {
            g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "RID", m->mail_id, "STAGE",
                             "pg_reparse", "MESSAGE",
                             "reparsed mail refused, its rows are kept as they were %s", state);
            continue;
        }
        g_autofree char *detail = store_error_detail(local);
        fbl_pg_staging rejected = {.mails = one, .store_error = detail};
        g_clear_error(&local);
        if (!store(pg, &rejected, &c, error))
            return false;
        total->mails += c.mails;
        total->rejects += c.rejects;
        g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "RID", m->mail_id, "STAGE", "pg_store",
                         "MESSAGE", "mail refused, stored as a store_error reject %s", state);
    }
    return true;
}

bool fbl_pg_store_all(fbl_pg *pg, const fbl_pg_staging *s, fbl_pg_counts *c, GError **error)
{
    GError *local = NULL;
    if (store(pg, s, c, &local))
        return true;
    if (local->code != FBL_PG_ERROR_DATA) {
        g_propagate_error(error, local);
        return false;
    }
    g_autofree char *state = sqlstate_words(local);
    g_message("batch refused, storing mail by mail mails=%u %s", s->mails->len, state);
    g_clear_error(&local);
    return store_one_by_one(pg, s, c, error);
}
