/* outbox.c - claim, mark and inspect fbl.vendor_outbox rows (see outbox.h) */
#define G_LOG_DOMAIN "fbl-outbox"
#include "sink/outbox.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include <libpq-fe.h>

struct fbl_outbox {
    PGconn *conn;
};

GQuark fbl_outbox_error_quark(void)
{
    return g_quark_from_static_string("fbl-outbox-error");
}

bool fbl_outbox_error_is_transient(const GError *error)
{
    return error != NULL && error->domain == FBL_OUTBOX_ERROR &&
           (error->code == FBL_OUTBOX_ERROR_CONNECT || error->code == FBL_OUTBOX_ERROR_TRANSIENT);
}

void fbl_outbox_row_free(fbl_outbox_row *row)
{
    if (row == NULL)
        return;
    g_free(row->report_id);
    g_free(row->received_at);
    g_free(row->mail_id);
    g_free(row->doc);
    if (row->mail != NULL)
        g_bytes_unref(row->mail);
    g_free(row->error);
    g_free(row);
}

void fbl_outbox_stats_free(fbl_outbox_stats *s)
{
    if (s == NULL)
        return;
    g_free(s->vendor);
    g_free(s->last_sent_at);
    g_free(s->last_dead);
    g_free(s);
}

/* ---- errors and the connection --------------------------------------------- */

static fbl_outbox_error classify(const char *state, bool connection_bad)
{
    if (connection_bad)
        return FBL_OUTBOX_ERROR_CONNECT;
    if (state == NULL || strlen(state) != 5)
        return FBL_OUTBOX_ERROR_OTHER;
    if (strncmp(state, "08", 2) == 0)
        return FBL_OUTBOX_ERROR_CONNECT;
    if (strncmp(state, "40", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57", 2) == 0 || strncmp(state, "58", 2) == 0 || strcmp(state, "55P03") == 0)
        return FBL_OUTBOX_ERROR_TRANSIENT;
    if (strncmp(state, "42", 2) == 0 || strncmp(state, "3F", 2) == 0)
        return FBL_OUTBOX_ERROR_SCHEMA;
    return FBL_OUTBOX_ERROR_OTHER;
}

static void set_error(PGconn *conn, const PGresult *res, const char *what, GError **error)
{
    bool bad = PQstatus(conn) != CONNECTION_OK;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    g_autofree char *msg = g_strchomp(g_strdup(primary != NULL ? primary : PQerrorMessage(conn)));
    fbl_outbox_error code = classify(state, bad);
    g_set_error(error, FBL_OUTBOX_ERROR, code, "%s: %s%s%s%s", what, state ? "SQLSTATE " : "",
                state ? state : "", state ? ": " : "", *msg ? msg : "unknown libpq error");
    if (code == FBL_OUTBOX_ERROR_SCHEMA)
        g_prefix_error(error, "the schema is missing or old (run fbl migrate): ");
}

static bool exec_ok(PGconn *conn, const char *sql, const char *what, GError **error)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        set_error(conn, res, what, error);
    PQclear(res);
    return ok;
}

static void rollback(fbl_outbox *ob)
{
    if (PQstatus(ob->conn) != CONNECTION_OK)
        return;
    PGTransactionStatusType ts = PQtransactionStatus(ob->conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
        return;
    PGresult *res = PQexec(ob->conn, "ROLLBACK");
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        g_debug("rollback failed: %s", res != NULL ? PQresultErrorMessage(res) : "no result");
    PQclear(res);
}

static void notice_to_log(void *data, const char *message)
{
    (void) data;
    g_debug("server notice: %s", message);
}

fbl_outbox *fbl_outbox_new(const char *conninfo, GError **error)
{
    char *parse_error = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo != NULL ? conninfo : "", &parse_error);
    if (parsed == NULL) {
        g_autofree char *msg =
            g_strchomp(g_strdup(parse_error != NULL ? parse_error : "out of memory"));
        PQfreemem(parse_error);
        g_set_error(error, FBL_OUTBOX_ERROR, FBL_OUTBOX_ERROR_OTHER, "bad conninfo: %s", msg);
        return NULL;
    }
    PQconninfoFree(parsed);
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", "client_encoding",
                                NULL};
    const char *const values[] = {"10", "fbl-forward", conninfo != NULL ? conninfo : "", "UTF8",
                                  NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL) {
        g_set_error(error, FBL_OUTBOX_ERROR, FBL_OUTBOX_ERROR_CONNECT,
                    "cannot connect: out of memory");
        return NULL;
    }
    (void) PQsetNoticeProcessor(conn, notice_to_log, NULL);
    if (PQstatus(conn) != CONNECTION_OK) {
        g_autofree char *msg = g_strchomp(g_strdup(PQerrorMessage(conn)));
        g_set_error(error, FBL_OUTBOX_ERROR, FBL_OUTBOX_ERROR_CONNECT, "cannot connect: %s", msg);
        PQfinish(conn);
        return NULL;
    }
    if (!exec_ok(conn, "LISTEN fbl_outbox", "listen", error)) {
        PQfinish(conn);
        return NULL;
    }
    fbl_outbox *ob = g_new0(fbl_outbox, 1);
    ob->conn = conn;
    return ob;
}

void fbl_outbox_free(fbl_outbox *ob)
{
    if (ob == NULL)
        return;
    PQfinish(ob->conn);
    g_free(ob);
}

/* Reconnect (and LISTEN again) when the last call lost the connection. */
static bool ensure_connected(fbl_outbox *ob, GError **error)
{
    if (PQstatus(ob->conn) == CONNECTION_OK)
        return true;
    PQreset(ob->conn);
    if (PQstatus(ob->conn) != CONNECTION_OK) {
        g_autofree char *msg = g_strchomp(g_strdup(PQerrorMessage(ob->conn)));
        g_set_error(error, FBL_OUTBOX_ERROR, FBL_OUTBOX_ERROR_CONNECT, "cannot reconnect: %s", msg);
        return false;
    }
    if (!exec_ok(ob->conn, "LISTEN fbl_outbox", "listen", error))
        return false;
    g_message("reconnected");
    return true;
}

/* ---- array literals ---------------------------------------------------------- */

/* Append @s (NULL: SQL NULL) as an element of an array literal. */
static void append_element(GString *out, const char *s)
{
    if (out->len > 1)
        g_string_append_c(out, ',');
    if (s == NULL) {
        g_string_append(out, "NULL");
        return;
    }
    g_string_append_c(out, '"');
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
}

/* ---- claim ----------------------------------------------------------------- */

static char *dup_field(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return g_strndup(PQgetvalue(res, row, col), (gsize) PQgetlength(res, row, col));
}

static const char claim_sql[] =
    "SELECT o.report_id, o.received_at::text, o.attempts, r.mail_id, r.doc::text, "
    "       coalesce(m.size, 0) "
    "FROM (SELECT report_id, received_at, attempts, next_attempt_at FROM fbl.vendor_outbox "
    "      WHERE vendor = $1 AND state = 'pending' AND next_attempt_at <= now() "
    "      ORDER BY next_attempt_at LIMIT $2::integer FOR UPDATE SKIP LOCKED) o "
    /* LATERAL ... LIMIT 1: a primary key lookup per row, never a join that reads the table */
    "LEFT JOIN LATERAL (SELECT r.mail_id, r.doc FROM fbl.reports r "
    "  WHERE r.id = o.report_id AND r.received_at = o.received_at LIMIT 1) r ON true "
    "LEFT JOIN LATERAL (SELECT m.size FROM fbl.mails m "
    "  WHERE m.mail_id = r.mail_id AND m.received_at = o.received_at LIMIT 1) m ON true "
    "ORDER BY o.next_attempt_at, o.report_id";

static bool claim_rows(fbl_outbox *ob, const char *vendor, unsigned max_rows, GPtrArray *rows,
                       GError **error)
{
    g_autofree char *limit = g_strdup_printf("%u", max_rows);
    const char *params[] = {vendor, limit};
    PGresult *res = PQexecParams(ob->conn, claim_sql, 2, NULL, params, NULL, NULL, 0);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        set_error(ob->conn, res, "claim", error);
    for (int i = 0; ok && i < PQntuples(res); i++) {
        fbl_outbox_row *row = g_new0(fbl_outbox_row, 1);
        row->report_id = dup_field(res, i, 0);
        row->received_at = dup_field(res, i, 1);
        guint64 attempts = g_ascii_strtoull(PQgetvalue(res, i, 2), NULL, 10);
        row->attempts = (unsigned) MIN(attempts, G_MAXUINT);
        row->mail_id = dup_field(res, i, 3);
        row->doc = dup_field(res, i, 4);
        row->mail_size = g_ascii_strtoll(PQgetvalue(res, i, 5), NULL, 10);
        g_ptr_array_add(rows, row);
    }
    PQclear(res);
    return ok;
}

/* Read the raw mails of @rows (binary results: the bytes as stored). */
static bool read_mails(fbl_outbox *ob, GPtrArray *rows, GError **error)
{
    GString *ids = g_string_new("{"), *ats = g_string_new("{");
    for (guint i = 0; i < rows->len; i++) {
        const fbl_outbox_row *row = g_ptr_array_index(rows, i);
        if (row->mail_id == NULL)
            continue;
        append_element(ids, row->mail_id);
        append_element(ats, row->received_at);
    }
    g_string_append_c(ids, '}');
    g_string_append_c(ats, '}');
    const char *params[] = {ids->str, ats->str};
    PGresult *res = PQexecParams(ob->conn,
                                 "SELECT m.mail_id, m.received_at::text, m.raw FROM fbl.mails m "
                                 "JOIN unnest($1::text[], $2::timestamptz[]) k(mail_id, at) "
                                 "ON m.mail_id = k.mail_id AND m.received_at = k.at "
                                 "WHERE m.mail_id = ANY ($1::text[]) AND m.raw IS NOT NULL",
                                 2, NULL, params, NULL, NULL, 1);
    g_string_free(ids, TRUE);
    g_string_free(ats, TRUE);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        set_error(ob->conn, res, "read mails", error);
    for (int i = 0; ok && i < PQntuples(res); i++) {
        g_autofree char *mail_id = dup_field(res, i, 0);
        g_autofree char *at = dup_field(res, i, 1);
        GBytes *raw = g_bytes_new(PQgetvalue(res, i, 2), (gsize) PQgetlength(res, i, 2));
        for (guint j = 0; j < rows->len; j++) {
            fbl_outbox_row *row = g_ptr_array_index(rows, j);
            if (row->mail == NULL && g_strcmp0(row->mail_id, mail_id) == 0 &&
                g_strcmp0(row->received_at, at) == 0)
                row->mail = g_bytes_ref(raw);
        }
        g_bytes_unref(raw);
    }
    PQclear(res);
    return ok;
}

bool fbl_outbox_claim(fbl_outbox *ob, const char *vendor, unsigned max_rows, size_t max_bytes,
                      bool with_mail, GPtrArray **rows, GError **error)
{
    *rows = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_outbox_row_free);
    if (!ensure_connected(ob, error))
        return false;
    if (!exec_ok(ob->conn, "BEGIN", "begin", error))
        return false;
    bool ok = claim_rows(ob, vendor, MAX(max_rows, 1), *rows, error);
    if (ok && with_mail && (*rows)->len > 0) {
        /* The mails up to max_bytes (the first whatever its size); the rows
         * after stay locked, untouched, until the commit releases them. */
        guint keep = 0;
        size_t bytes = 0;
        while (keep < (*rows)->len) {
            const fbl_outbox_row *row = g_ptr_array_index(*rows, keep);
            size_t size = row->mail_size > 0 ? (size_t) row->mail_size : 0;
            if (keep > 0 && bytes + size > max_bytes)
                break;
            bytes += size;
            keep++;
        }
        g_ptr_array_set_size(*rows, (gint) keep);
        ok = read_mails(ob, *rows, error);
    }
    if (ok && (*rows)->len == 0)
        ok = exec_ok(ob->conn, "COMMIT", "commit", error);
    if (!ok) {
        rollback(ob);
        g_ptr_array_set_size(*rows, 0);
    }
    return ok;
}

/* ---- finish ---------------------------------------------------------------- */

static const char *action_name(fbl_outbox_action a)
{
    switch (a) {
    case FBL_OUTBOX_SENT:
        return "sent";
    case FBL_OUTBOX_RETRY:
        return "retry";
    case FBL_OUTBOX_WAIT:
        return "wait";
    case FBL_OUTBOX_DEAD:
        return "dead";
    case FBL_OUTBOX_KEEP:
        break;
    }
    return NULL;
}

static const char finish_sql[] =
    "UPDATE fbl.vendor_outbox o SET "
    "  state = CASE u.action WHEN 'sent' THEN 'sent'::fbl.outbox_state "
    "          WHEN 'dead' THEN 'dead'::fbl.outbox_state ELSE o.state END, "
    "  attempts = o.attempts + CASE WHEN u.action = 'wait' THEN 0 ELSE 1 END, "
    "  sent_at = CASE WHEN u.action = 'sent' THEN clock_timestamp() ELSE o.sent_at END, "
    "  next_attempt_at = CASE WHEN u.action IN ('retry', 'wait') "
    "      THEN clock_timestamp() + u.delay_ms * interval '1 millisecond' "
    "      ELSE o.next_attempt_at END, "
    "  last_error = coalesce(u.error, o.last_error) "
    "FROM unnest($2::text[], $3::timestamptz[], $4::text[], $5::bigint[], $6::text[]) "
    "     u(id, at, action, delay_ms, error) "
    /* "= ANY": index probes of the primary key, where a join alone may scan the table */
    "WHERE o.vendor = $1 AND o.report_id = ANY ($2::text[]) "
    "  AND o.report_id = u.id AND o.received_at = u.at";

bool fbl_outbox_finish(fbl_outbox *ob, const char *vendor, GPtrArray *rows, GError **error)
{
    GString *ids = g_string_new("{"), *ats = g_string_new("{"), *acts = g_string_new("{"),
            *delays = g_string_new("{"), *errs = g_string_new("{");
    guint marked = 0;
    for (guint i = 0; i < rows->len; i++) {
        const fbl_outbox_row *row = g_ptr_array_index(rows, i);
        const char *act = action_name(row->action);
        if (act == NULL)
            continue;
        g_autofree char *delay = g_strdup_printf("%u", row->delay_ms);
        append_element(ids, row->report_id);
        append_element(ats, row->received_at);
        append_element(acts, act);
        append_element(delays, delay);
        append_element(errs, row->error);
        marked++;
    }
    GString *all[] = {ids, ats, acts, delays, errs};
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
        g_string_append_c(all[i], '}');
    bool ok = true;
    if (marked > 0) {
        const char *params[] = {vendor, ids->str, ats->str, acts->str, delays->str, errs->str};
        PGresult *res = PQexecParams(ob->conn, finish_sql, 6, NULL, params, NULL, NULL, 0);
        ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            set_error(ob->conn, res, "mark rows", error);
        PQclear(res);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
        g_string_free(all[i], TRUE);
    if (ok)
        ok = exec_ok(ob->conn, "COMMIT", "commit", error);
    if (!ok)
        rollback(ob);
    return ok;
}

void fbl_outbox_abort(fbl_outbox *ob)
{
    rollback(ob);
}

/* ---- notifications ----------------------------------------------------------- */

/* Consume what arrived; true when a notification was among it. */
static bool drain(fbl_outbox *ob)
{
    if (PQstatus(ob->conn) != CONNECTION_OK || PQconsumeInput(ob->conn) != 1)
        return false;
    bool got = false;
    PGnotify *n;
    while ((n = PQnotifies(ob->conn)) != NULL) {
        got = true;
        PQfreemem(n);
    }
    return got;
}

bool fbl_outbox_wait(fbl_outbox *ob, unsigned timeout_ms)
{
    if (drain(ob))
        return true;
    int fd = PQstatus(ob->conn) == CONNECTION_OK ? PQsocket(ob->conn) : -1;
    if (fd < 0) {
        g_usleep((gulong) timeout_ms * 1000);
        return false;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, (int) MIN(timeout_ms, (unsigned) G_MAXINT));
    if (n < 0 && errno != EINTR)
        g_debug("poll: %s", g_strerror(errno));
    return n > 0 && drain(ob);
}

/* ---- dead letters and status ------------------------------------------------------ */

bool fbl_outbox_retry_dead(fbl_outbox *ob, const char *const *vendors, guint64 *count,
                           GError **error)
{
    *count = 0;
    if (!ensure_connected(ob, error))
        return false;
    GString *list = g_string_new("{");
    for (size_t i = 0; vendors != NULL && vendors[i] != NULL; i++)
        append_element(list, vendors[i]);
    g_string_append_c(list, '}');
    const char *params[] = {vendors != NULL ? list->str : NULL};
    PGresult *res =
        PQexecParams(ob->conn,
                     "WITH u AS (UPDATE fbl.vendor_outbox SET state = 'pending', attempts = 0, "
                     "  next_attempt_at = now() "
                     "  WHERE state = 'dead' AND ($1::text[] IS NULL OR vendor = ANY ($1::text[])) "
                     "  RETURNING 1), "
                     "n AS (SELECT pg_notify('fbl_outbox', '') WHERE EXISTS (SELECT 1 FROM u)) "
                     "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM n)",
                     1, NULL, params, NULL, NULL, 0);
    g_string_free(list, TRUE);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (!ok)
        set_error(ob->conn, res, "retry dead letters", error);
    else
        *count = g_ascii_strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return ok;
}

bool fbl_outbox_status(fbl_outbox *ob, GPtrArray **stats, GError **error)
{
    *stats = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_outbox_stats_free);
    if (!ensure_connected(ob, error))
        return false;
    PGresult *res = PQexec(
        ob->conn,
        "SELECT v.vendor, v.pending, v.due, v.sent, v.dead, v.limited, "
        "       coalesce(extract(epoch FROM clock_timestamp() - v.oldest), 0), v.last_sent, "
        "       (SELECT d.last_error FROM fbl.vendor_outbox d "
        "        WHERE d.vendor = v.vendor AND d.state = 'dead' "
        "        ORDER BY d.created_at DESC LIMIT 1), v.duplicate "
        "FROM (SELECT vendor, count(*) FILTER (WHERE state = 'pending') AS pending, "
        "        count(*) FILTER (WHERE state = 'pending' AND next_attempt_at <= now()) AS due, "
        "        count(*) FILTER (WHERE state = 'sent') AS sent, "
        "        count(*) FILTER (WHERE state = 'dead') AS dead, "
        "        count(*) FILTER (WHERE state = 'limited') AS limited, "
        "        count(*) FILTER (WHERE state = 'duplicate') AS duplicate, "
        "        min(created_at) FILTER (WHERE state = 'pending') AS oldest, "
        "        to_char(max(sent_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
        "          AS last_sent "
        "      FROM fbl.vendor_outbox GROUP BY vendor) v "
        "ORDER BY v.vendor");
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        set_error(ob->conn, res, "status", error);
    for (int i = 0; ok && i < PQntuples(res); i++) {
        fbl_outbox_stats *s = g_new0(fbl_outbox_stats, 1);
        s->vendor = dup_field(res, i, 0);
        s->pending = g_ascii_strtoull(PQgetvalue(res, i, 1), NULL, 10);
        s->due = g_ascii_strtoull(PQgetvalue(res, i, 2), NULL, 10);
        s->sent = g_ascii_strtoull(PQgetvalue(res, i, 3), NULL, 10);
        s->dead = g_ascii_strtoull(PQgetvalue(res, i, 4), NULL, 10);
        s->limited = g_ascii_strtoull(PQgetvalue(res, i, 5), NULL, 10);
        s->lag_s = g_ascii_strtod(PQgetvalue(res, i, 6), NULL);
        s->last_sent_at = dup_field(res, i, 7);
        s->last_dead = dup_field(res, i, 8);
        s->duplicate = g_ascii_strtoull(PQgetvalue(res, i, 9), NULL, 10);
        g_ptr_array_add(*stats, s);
    }
    PQclear(res);
    return ok;
}

bool fbl_outbox_gauges(fbl_outbox *ob, const char *vendor, guint64 *pending, guint64 *dead,
                       double *lag_s, GError **error)
{
    *pending = *dead = 0;
    *lag_s = 0;
    if (!ensure_connected(ob, error))
        return false;
    const char *params[] = {vendor};
    PGresult *res =
        PQexecParams(ob->conn,
                     "SELECT p.n, (SELECT count(*) FROM fbl.vendor_outbox "
                     "             WHERE vendor = $1 AND state = 'dead'), "
                     "       coalesce(extract(epoch FROM clock_timestamp() - p.oldest), 0) "
                     "FROM (SELECT count(*) AS n, min(created_at) AS oldest FROM fbl.vendor_outbox "
                     "      WHERE vendor = $1 AND state = 'pending') p",
                     1, NULL, params, NULL, NULL, 0);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (!ok) {
        set_error(ob->conn, res, "outbox gauges", error);
    } else {
        *pending = g_ascii_strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        *dead = g_ascii_strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        *lag_s = g_ascii_strtod(PQgetvalue(res, 0, 2), NULL);
    }
    PQclear(res);
    return ok;
}

/* ---- backfill ----------------------------------------------------------------- */

void fbl_outbox_backfill_clear(fbl_outbox_backfill *state)
{
    g_clear_pointer(&state->after_at, g_free);
    g_clear_pointer(&state->after_id, g_free);
}

/*
 * One step: the next reports of the range in (received_at, id) order (the
 * reports' received_at index, partition by partition), their rows inserted
 * in the same statement, so a step is all or nothing. The last report read
 * is where the next step starts: a keyset, not an OFFSET, so each step costs
 * the same however far the backfill has come.
 */
static const char backfill_sql[] =
    "WITH r AS ("
    "  SELECT id, received_at, rate_limited, duplicate_of FROM fbl.reports "
    "  WHERE received_at >= to_timestamp($2::bigint) "
    "    AND received_at < coalesce(to_timestamp(nullif($3::bigint, 0)), 'infinity') "
    "    AND ($4::timestamptz IS NULL OR (received_at, id) > ($4::timestamptz, $5::text)) "
    "  ORDER BY received_at, id LIMIT $6::integer"
    "), ins AS ("
    "  INSERT INTO fbl.vendor_outbox (report_id, received_at, vendor, state) "
    "  SELECT r.id, r.received_at, $1, "
    "         CASE WHEN r.duplicate_of IS NOT NULL THEN 'duplicate' "
    "              WHEN r.rate_limited THEN 'limited' ELSE 'pending' END::fbl.outbox_state "
    "  FROM r ORDER BY r.received_at, r.id "
    "  ON CONFLICT DO NOTHING RETURNING state"
    "), last AS ("
    "  SELECT received_at, id FROM r ORDER BY received_at DESC, id DESC LIMIT 1"
    "), n AS ("
    "  SELECT pg_notify('fbl_outbox', '') WHERE EXISTS (SELECT 1 FROM ins WHERE state = 'pending')"
    ") "
    "SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM ins), "
    "       (SELECT count(*) FROM ins WHERE state = 'limited'), "
    "       (SELECT count(*) FROM ins WHERE state = 'duplicate'), "
    "       (SELECT received_at::text FROM last), (SELECT id FROM last), (SELECT count(*) FROM n)";

/* Fold one step's counts (@res, one row) into @state. */
static void backfill_account(const PGresult *res, unsigned max_reports, fbl_outbox_backfill *state)
{
    guint64 read = g_ascii_strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    guint64 added = g_ascii_strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    state->reports += read;
    state->added += added;
    state->limited += g_ascii_strtoull(PQgetvalue(res, 0, 2), NULL, 10);
    state->duplicate += g_ascii_strtoull(PQgetvalue(res, 0, 3), NULL, 10);
    state->existing += read - MIN(added, read);
    state->done = read < max_reports;
    if (read > 0) {
        g_free(state->after_at);
        g_free(state->after_id);
        state->after_at = dup_field(res, 0, 4);
        state->after_id = dup_field(res, 0, 5);
    }
}

bool fbl_outbox_backfill_step(fbl_outbox *ob, const char *vendor, gint64 since, gint64 until,
                              unsigned max_reports, fbl_outbox_backfill *state, GError **error)
{
    if (!ensure_connected(ob, error))
        return false;
    max_reports = MAX(max_reports, 1);
    g_autofree char *from = g_strdup_printf("%" G_GINT64_FORMAT, since);
    g_autofree char *to = g_strdup_printf("%" G_GINT64_FORMAT, MAX(until, (gint64) 0));
    g_autofree char *limit = g_strdup_printf("%u", max_reports);
    const char *params[] = {vendor, from, to, state->after_at, state->after_id, limit};
    PGresult *res = PQexecParams(ob->conn, backfill_sql, 6, NULL, params, NULL, NULL, 0);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (!ok)
        set_error(ob->conn, res, "backfill", error);
    else
        backfill_account(res, max_reports, state);
    PQclear(res);
    return ok;
}
