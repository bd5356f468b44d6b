/* outbox.c - claim, mark and inspect fbl.vendor_outbox rows (see outbox.h) */
#define G_LOG_DOMAIN "fbl-outbox"
#include "sink/outbox.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include <libpq-fe.h>

#include "sink/pgconn_internal.h"

struct fbl_outbox {
    PGconn *conn;
    char *claim; /* the token of the last claim's lease (claimed_by), or NULL */
};

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

/* ---- the connection ---------------------------------------------------------- */

/* A statement that fails for want of the schema says what to run. */
static void explain_schema(GError **error)
{
    if (error != NULL && *error != NULL && (*error)->code == FBL_PG_ERROR_SCHEMA)
        g_prefix_error(error, "the schema is missing or old (run fbl migrate): ");
}

/* query - fbl_pgconn_query(), and what to run when the schema is not there */
static PGresult *query(PGconn *conn, const char *sql, int n, const char *const *params,
                       const char *what, GError **error)
{
    PGresult *res = fbl_pgconn_query(conn, sql, n, params, what, error);
    if (res == NULL)
        explain_schema(error);
    return res;
}

fbl_outbox *fbl_outbox_new(const char *conninfo, GError **error)
{
    PGconn *conn = fbl_pgconn_connect(conninfo, "fbl-forward", error);
    if (conn == NULL)
        return NULL;
    PGresult *res = query(conn, "LISTEN fbl_outbox", 0, NULL, "listen", error);
    if (res == NULL) {
        PQfinish(conn);
        return NULL;
    }
    PQclear(res);
    fbl_outbox *ob = g_new0(fbl_outbox, 1);
    ob->conn = conn;
    return ob;
}

void fbl_outbox_free(fbl_outbox *ob)
{
    if (ob == NULL)
        return;
    PQfinish(ob->conn);
    g_free(ob->claim);
    g_free(ob);
}

/* Reconnect (and LISTEN again) when the last call lost the connection. */
static bool ensure_connected(fbl_outbox *ob, GError **error)
{
    bool reconnected = false;
    if (!fbl_pgconn_reconnect(ob->conn, &reconnected, error))
        return false;
    if (!reconnected)
        return true;
    PGresult *res = query(ob->conn, "LISTEN fbl_outbox", 0, NULL, "listen", error);
    PQclear(res);
    return res != NULL;
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

/*
 * The claim, one statement and so one short transaction: the due pending
 * rows no live lease holds (c), their documents and mail sizes (d), as many
 * as fit in $4 bytes of mail when the mail is wanted, the first whatever its
 * size (k), and the lease on those (l). The rows past the bytes stay free.
 */
static const char claim_sql[] =
    "WITH c AS ("
    "  SELECT report_id, received_at, attempts, next_attempt_at FROM fbl.vendor_outbox "
    "  WHERE vendor = $1 AND state = 'pending' AND next_attempt_at <= now() "
    "    AND (claimed_until IS NULL OR claimed_until <= now()) "
    "  ORDER BY next_attempt_at LIMIT $2::integer FOR UPDATE SKIP LOCKED"
    "), d AS ("
    "  SELECT c.*, r.mail_id, r.doc, coalesce(m.size, 0) AS size, "
    "         row_number() OVER w AS n, sum(coalesce(m.size, 0)) OVER w AS bytes "
    "  FROM c "
    /* LATERAL ... LIMIT 1: a primary key lookup per row, never a join that reads the table */
    "  LEFT JOIN LATERAL (SELECT r.mail_id, r.doc FROM fbl.reports r "
    "    WHERE r.id = c.report_id AND r.received_at = c.received_at LIMIT 1) r ON true "
    "  LEFT JOIN LATERAL (SELECT m.size FROM fbl.mails m "
    "    WHERE m.mail_id = r.mail_id AND m.received_at = c.received_at LIMIT 1) m ON true "
    "  WINDOW w AS (ORDER BY c.next_attempt_at, c.report_id)"
    "), k AS ("
    "  SELECT * FROM d WHERE n = 1 OR NOT $3::boolean OR bytes <= $4::bigint"
    "), l AS ("
    "  UPDATE fbl.vendor_outbox o "
    "  SET claimed_until = now() + $5::bigint * interval '1 millisecond', claimed_by = $6 "
    "  FROM k "
    /* "= ANY" of an array: index probes of the primary key, where a join alone may scan */
    "  WHERE o.vendor = $1 AND o.report_id = ANY (ARRAY(SELECT report_id FROM k)) "
    "    AND o.report_id = k.report_id AND o.received_at = k.received_at"
    ") "
    "SELECT report_id, received_at::text, attempts, mail_id, doc::text, size FROM k "
    "ORDER BY next_attempt_at, report_id";

static bool claim_rows(fbl_outbox *ob, const char *vendor, unsigned max_rows, size_t max_bytes,
                       bool with_mail, unsigned lease_ms, GPtrArray *rows, GError **error)
{
    g_autofree char *limit = g_strdup_printf("%u", max_rows);
    g_autofree char *bytes = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64) max_bytes);
    g_autofree char *lease = g_strdup_printf("%u", lease_ms);
    const char *params[] = {vendor, limit, with_mail ? "t" : "f", bytes, lease, ob->claim};
    PGresult *res = query(ob->conn, claim_sql, 6, params, "claim", error);
    if (res == NULL)
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
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
    return true;
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
    PGresult *res =
        fbl_pgconn_query_binary(ob->conn,
                                "SELECT m.mail_id, m.received_at::text, m.raw FROM fbl.mails m "
                                "JOIN unnest($1::text[], $2::timestamptz[]) k(mail_id, at) "
                                "ON m.mail_id = k.mail_id AND m.received_at = k.at "
                                "WHERE m.mail_id = ANY ($1::text[]) AND m.raw IS NOT NULL",
                                2, params, "read mails", error);
    g_string_free(ids, TRUE);
    g_string_free(ats, TRUE);
    if (res == NULL)
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
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
    return true;
}

/* Give the last claim's rows back at once (best effort: else their lease runs out). */
static void release(fbl_outbox *ob)
{
    const char *params[] = {ob->claim};
    g_autoptr(GError) error = NULL;
    PGresult *res = fbl_pgconn_query(ob->conn,
                                     "UPDATE fbl.vendor_outbox SET claimed_until = NULL, "
                                     "claimed_by = NULL WHERE claimed_by = $1",
                                     1, params, "release", &error);
    if (res == NULL)
        g_debug("%s", error->message);
    PQclear(res);
}

bool fbl_outbox_claim(fbl_outbox *ob, const char *vendor, unsigned max_rows, size_t max_bytes,
                      bool with_mail, unsigned lease_ms, GPtrArray **rows, GError **error)
{
    *rows = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_outbox_row_free);
    if (!ensure_connected(ob, error))
        return false;
    g_free(ob->claim);
    ob->claim = g_uuid_string_random();
    if (!claim_rows(ob, vendor, MAX(max_rows, 1), max_bytes, with_mail, MAX(lease_ms, 1), *rows,
                    error))
        return false;
    if (with_mail && (*rows)->len > 0 && !read_mails(ob, *rows, error)) {
        release(ob);
        g_ptr_array_set_size(*rows, 0);
        return false;
    }
    return true;
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
    return "keep";
}

/* Each row's action, and the lease cleared, on the rows the claim ($7) still holds. */
static const char finish_sql[] =
    "UPDATE fbl.vendor_outbox o SET "
    "  state = CASE u.action WHEN 'sent' THEN 'sent'::fbl.outbox_state "
    "          WHEN 'dead' THEN 'dead'::fbl.outbox_state ELSE o.state END, "
    "  attempts = o.attempts + CASE WHEN u.action IN ('wait', 'keep') THEN 0 ELSE 1 END, "
    "  sent_at = CASE WHEN u.action = 'sent' THEN clock_timestamp() ELSE o.sent_at END, "
    "  next_attempt_at = CASE WHEN u.action IN ('retry', 'wait') "
    "      THEN clock_timestamp() + u.delay_ms * interval '1 millisecond' "
    "      ELSE o.next_attempt_at END, "
    "  last_error = coalesce(u.error, o.last_error), "
    "  claimed_until = NULL, claimed_by = NULL "
    "FROM unnest($2::text[], $3::timestamptz[], $4::text[], $5::bigint[], $6::text[]) "
    "     u(id, at, action, delay_ms, error) "
    /* "= ANY": index probes of the primary key, where a join alone may scan the table */
    "WHERE o.vendor = $1 AND o.report_id = ANY ($2::text[]) "
    "  AND o.report_id = u.id AND o.received_at = u.at AND o.claimed_by = $7";

bool fbl_outbox_finish(fbl_outbox *ob, const char *vendor, GPtrArray *rows, GError **error)
{
    if (rows->len == 0 || ob->claim == NULL)
        return true;
    GString *ids = g_string_new("{"), *ats = g_string_new("{"), *acts = g_string_new("{"),
            *delays = g_string_new("{"), *errs = g_string_new("{");
    for (guint i = 0; i < rows->len; i++) {
        const fbl_outbox_row *row = g_ptr_array_index(rows, i);
        g_autofree char *delay = g_strdup_printf("%u", row->delay_ms);
        append_element(ids, row->report_id);
        append_element(ats, row->received_at);
        append_element(acts, action_name(row->action));
        append_element(delays, delay);
        append_element(errs, row->error);
    }
    GString *all[] = {ids, ats, acts, delays, errs};
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
        g_string_append_c(all[i], '}');
    const char *params[] = {vendor,      ids->str,  ats->str, acts->str,
                            delays->str, errs->str, ob->claim};
    PGresult *res = query(ob->conn, finish_sql, 7, params, "mark rows", error);
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
        g_string_free(all[i], TRUE);
    if (res == NULL)
        return false;
    guint64 marked = g_ascii_strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    /* Another claim took them after the lease ran out (it sends them again),
     * or a reparse dropped them. */
    if (marked < rows->len)
        g_warning("vendor=%s %" G_GUINT64_FORMAT " of %u rows were no longer this claim's when "
                  "marked: their lease ran out during the send",
                  vendor, rows->len - marked, rows->len);
    return true;
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
        query(ob->conn,
              "WITH u AS (UPDATE fbl.vendor_outbox SET state = 'pending', attempts = 0, "
              "  next_attempt_at = now() "
              "  WHERE state = 'dead' AND ($1::text[] IS NULL OR vendor = ANY ($1::text[])) "
              "  RETURNING 1), "
              "n AS (SELECT pg_notify('fbl_outbox', '') WHERE EXISTS (SELECT 1 FROM u)) "
              "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM n)",
              1, params, "retry dead letters", error);
    g_string_free(list, TRUE);
    if (res == NULL)
        return false;
    *count = g_ascii_strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return true;
}

bool fbl_outbox_status(fbl_outbox *ob, GPtrArray **stats, GError **error)
{
    *stats = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_outbox_stats_free);
    if (!ensure_connected(ob, error))
        return false;
    PGresult *res = query(
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
        "ORDER BY v.vendor",
        0, NULL, "status", error);
    if (res == NULL)
        return false;
    for (int i = 0; i < PQntuples(res); i++) {
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
    return true;
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
        query(ob->conn,
              "SELECT p.n, (SELECT count(*) FROM fbl.vendor_outbox "
              "             WHERE vendor = $1 AND state = 'dead'), "
              "       coalesce(extract(epoch FROM clock_timestamp() - p.oldest), 0) "
              "FROM (SELECT count(*) AS n, min(created_at) AS oldest FROM fbl.vendor_outbox "
              "      WHERE vendor = $1 AND state = 'pending') p",
              1, params, "outbox gauges", error);
    if (res == NULL)
        return false;
    *pending = g_ascii_strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    *dead = g_ascii_strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    *lag_s = g_ascii_strtod(PQgetvalue(res, 0, 2), NULL);
    PQclear(res);
    return true;
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
    PGresult *res = query(ob->conn, backfill_sql, 6, params, "backfill", error);
    if (res == NULL)
        return false;
    backfill_account(res, max_reports, state);
    PQclear(res);
    return true;
}
