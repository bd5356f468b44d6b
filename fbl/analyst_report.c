/*
 * analyst_report.c - the analysts' headline tables in every format (see
 * analyst_report.h): which tables, their columns, and how each format shows
 * their lines
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/analyst_report.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fbl/report_format.h"
#include "fbl/report_html.h"

/* Text cells longer than this (in characters) are cut with an ellipsis. */
#define MAX_CELL 48
/* Windows longer than this are shown per day, shorter ones per hour. */
#define HOURLY_MAX_SECONDS (G_GINT64_CONSTANT(48) * 3600)

/* Short names for the tables below (fbl/report_format.h). */
#define C_TEXT    FBL_REPORT_TEXT
#define C_INT     FBL_REPORT_INT
#define C_SHARE   FBL_REPORT_SHARE
#define C_TIME    FBL_REPORT_TIME
#define C_SECONDS FBL_REPORT_SECONDS
#define C_BYTES   FBL_REPORT_BYTES

typedef struct col {
    const char *name;  /* the SQL alias, the JSON key and the CSV header */
    const char *title; /* the text header */
    fbl_report_kind kind;
    bool sum;     /* "others" and "total" add it up */
    unsigned cut; /* text: at most this many characters (0: MAX_CELL) */
} col;

#define MAX_COLS 10

typedef struct table {
    const char *name;  /* JSON key, CSV first column */
    const char *title; /* text heading */
    const char *unit;  /* what a row is, plural: "(1,234 IPs)" */
    /* The rows: a SELECT over an analyst function with $1 since, $2 until
     * (timestamptz) and $4 the period unit (text), aliased as the columns. */
    const char *select;
    const char *order; /* of the rows, over the aliases */
    col cols[MAX_COLS];
} table;

/* to_char's format of ISO-8601 UTC ("2026-01-15T10:00:00Z"), in SQL. */
#define ISO_FORMAT "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

static const table summary_table = {
    "summary",
    "Summary",
    NULL,
    "SELECT reports, not_spam, rate_limited, reporters, rejects FROM fbl.summary($1, $2)",
    "reports",
    {{"reports", "reports", C_INT, false, 0},
     {"not_spam", "not-spam reports", C_INT, false, 0},
     {"rate_limited", "rate limited", C_INT, false, 0},
     {"reporters", "reporters", C_INT, false, 0},
     {"rejects", "rejected mails", C_INT, false, 0}},
};

static const table tables[] = {
    {"complaints",
     "Reports by mailbox and feedback type",
     "kinds",
     "SELECT mailbox, feedback_type::text AS feedback_type, sum(reports)::bigint AS reports, "
     "sum(rate_limited)::bigint AS rate_limited "
     "FROM fbl.complaints_hourly($1, $2) GROUP BY 1, 2",
     "reports DESC, mailbox, feedback_type",
     {{"mailbox", "mailbox", C_TEXT, false, 0},
      {"feedback_type", "feedback type", C_TEXT, false, 0},
      {"reports", "reports", C_INT, true, 0},
      {"rate_limited", "rate limited", C_INT, true, 0}}},
    {"complaints_over_time",
     "Reports per hour (UTC)",
     "periods",
     "SELECT to_char(date_trunc($4, hour, 'UTC') AT TIME ZONE 'UTC', " ISO_FORMAT ") AS period, "
     "sum(reports)::bigint AS reports, "
     "coalesce(sum(reports) FILTER (WHERE feedback_type = 'abuse'), 0)::bigint AS abuse, "
     "coalesce(sum(reports) FILTER (WHERE feedback_type = 'not-spam'), 0)::bigint AS not_spam, "
     "coalesce(sum(reports) FILTER (WHERE feedback_type NOT IN ('abuse', 'not-spam')), 0)::bigint "
     "AS other FROM fbl.complaints_hourly($1, $2) GROUP BY 1",
     "period",
     {{"period", "period", C_TIME, false, 0},
      {"reports", "reports", C_INT, true, 0},
      {"abuse", "abuse", C_INT, true, 0},
      {"not_spam", "not-spam", C_INT, true, 0},
      {"other", "other", C_INT, true, 0}}},
    {"top_source_ips",
     "Top source IPs",
     "IPs",
     "SELECT host(source_ip) AS source_ip, network::text AS network, reports, reporters, "
     "network_reports, network_ips, source_ip AS fbl_ip "
     "FROM fbl.top_source_ips($1, NULL, $2)",
     "reports DESC, fbl_ip",
     {{"source_ip", "source IP", C_TEXT, false, 0},
      {"network", "network", C_TEXT, false, 0},
      {"reports", "reports", C_INT, true, 0},
      {"reporters", "reporters", C_INT, false, 0},
      {"network_reports", "network reports", C_INT, false, 0},
      {"network_ips", "network IPs", C_INT, false, 0}}},
    {"top_sender_domains",
     "Top sender domains",
     "domain sets",
     "SELECT from_domain, dkim_domain, return_path_domain, reports, reporters "
     "FROM fbl.top_sender_domains($1, NULL, $2)",
     "reports DESC, from_domain, dkim_domain, return_path_domain",
     {{"from_domain", "From domain", C_TEXT, false, 32},
      {"dkim_domain", "DKIM d=", C_TEXT, false, 32},
      {"return_path_domain", "Return-Path domain", C_TEXT, false, 32},
      {"reports", "reports", C_INT, true, 0},
      {"reporters", "reporters", C_INT, false, 0}}},
    {"top_url_hosts",
     "Top URL hosts",
     "hosts",
     "SELECT host, reports, urls FROM fbl.top_url_hosts($1, NULL, $2)",
     "reports DESC, host",
     {{"host", "host", C_TEXT, false, 0},
      {"reports", "reports", C_INT, false, 0},
      {"urls", "URLs", C_INT, true, 0}}},
    {"campaigns",
     "Top campaigns",
     "campaigns",
     "SELECT fingerprint, to_char(first_seen AT TIME ZONE 'UTC', " ISO_FORMAT ") AS first_seen, "
     "to_char(last_seen AT TIME ZONE 'UTC', " ISO_FORMAT ") AS last_seen, "
     "reports, reporters, sample_subject FROM fbl.campaigns($1, NULL, $2)",
     "reports DESC, fingerprint",
     {{"fingerprint", "fingerprint", C_TEXT, false, 13},
      {"first_seen", "first seen", C_TIME, false, 0},
      {"last_seen", "last seen", C_TIME, false, 0},
      {"reports", "reports", C_INT, true, 0},
      {"reporters", "reporters", C_INT, false, 0},
      {"sample_subject", "subject", C_TEXT, false, 40}}},
    {"reporters",
     "Top reporters",
     "reporters",
     "SELECT reporter_domain, reporter_key, reports, rate_limited, verified_share "
     "FROM fbl.reporters($1, NULL, $2)",
     "reports DESC, reporter_key",
     {{"reporter_domain", "reporter domain", C_TEXT, false, 32},
      {"reporter_key", "reporter key", C_TEXT, false, 0},
      {"reports", "reports", C_INT, true, 0},
      {"rate_limited", "rate limited", C_INT, true, 0},
      {"verified_share", "verified", C_SHARE, false, 0}}},
    {"false_positives",
     "False positives (not-spam reports)",
     "pairs",
     "SELECT from_domain, host(source_ip) AS source_ip, not_spam, reports, not_spam_share, "
     "source_ip AS fbl_ip FROM fbl.false_positives($1, NULL, $2)",
     "not_spam DESC, from_domain, fbl_ip",
     {{"from_domain", "From domain", C_TEXT, false, 32},
      {"source_ip", "source IP", C_TEXT, false, 0},
      {"not_spam", "not-spam", C_INT, true, 0},
      {"reports", "all reports", C_INT, true, 0},
      {"not_spam_share", "share", C_SHARE, false, 0}}},
    {"vendor_feed",
     "Vendor feed",
     "vendors",
     "SELECT vendor, pending, sent, dead, limited, pending_total, dead_total, "
     "floor(extract(epoch FROM lag))::bigint AS lag_seconds FROM fbl.vendor_feed($1, $2)",
     "vendor",
     {{"vendor", "vendor", C_TEXT, false, 0},
      {"pending", "pending", C_INT, true, 0},
      {"sent", "sent", C_INT, true, 0},
      {"dead", "dead", C_INT, true, 0},
      {"limited", "limited", C_INT, true, 0},
      {"pending_total", "queue", C_INT, true, 0},
      {"dead_total", "dead letters", C_INT, true, 0},
      {"lag_seconds", "lag", C_SECONDS, false, 0}}},
    {"rejects_by_reason",
     "Rejected mails",
     "reasons",
     "SELECT reason::text AS reason, mailbox, rejects, bytes FROM fbl.rejects_by_reason($1, $2)",
     "rejects DESC, reason, mailbox",
     {{"reason", "reason", C_TEXT, false, 0},
      {"mailbox", "mailbox", C_TEXT, false, 0},
      {"rejects", "mails", C_INT, true, 0},
      {"bytes", "bytes", C_BYTES, true, 0}}},
};

/*
 * The outbound section ([local] set): accounts and sending IPs of the
 * complaints about our own users' mail (schema/011_outbound.sql). The
 * accounts' SELECT is made at run time with [outbound]'s thresholds; a role
 * that may not read names (fbl_analyst) gets the pseudonymised table.
 */
#define OUTBOUND_ACCOUNT_COLS                                                                      \
    "state, complaints, reporters, complaints_last_hour AS last_hour, "                            \
    "peak_hour_complaints AS peak_hour, sent, rate_percent::text || '%%' AS rate, "                \
    "to_char(last_seen AT TIME ZONE 'UTC', " ISO_FORMAT ") AS last_seen"

static const table outbound_accounts_table = {
    "outbound_accounts",
    "Outbound: accounts with complaints about their mail",
    "accounts",
    NULL, /* made by outbound_accounts_select() */
    "complaints DESC, account",
    {{"account", "account", C_TEXT, false, 40},
     {"state", "state", C_TEXT, false, 0},
     {"complaints", "complaints", C_INT, true, 0},
     {"reporters", "reporters", C_INT, false, 0},
     {"last_hour", "last hour", C_INT, true, 0},
     {"peak_hour", "peak hour", C_INT, false, 0},
     {"sent", "sent", C_INT, true, 0},
     {"rate", "rate", C_TEXT, false, 0},
     {"last_seen", "last seen", C_TIME, false, 0}},
};

static const table outbound_ips_table = {
    "outbound_ips",
    "Outbound: our sending IPs with complaints",
    "IPs",
    "SELECT host(source_ip) AS source_ip, complaints, reporters, accounts, "
    "complaints_last_hour AS last_hour, peak_hour_complaints AS peak_hour, "
    "to_char(last_seen AT TIME ZONE 'UTC', " ISO_FORMAT ") AS last_seen, source_ip AS fbl_ip "
    "FROM fbl.outbound_ips($1, $2)",
    "complaints DESC, fbl_ip",
    {{"source_ip", "source IP", C_TEXT, false, 0},
     {"complaints", "complaints", C_INT, true, 0},
     {"reporters", "reporters", C_INT, false, 0},
     {"accounts", "accounts", C_INT, false, 0},
     {"last_hour", "last hour", C_INT, true, 0},
     {"peak_hour", "peak hour", C_INT, false, 0},
     {"last_seen", "last seen", C_TIME, false, 0}},
};

/* The accounts' SELECT: names, or (@keys) "domain/key" pseudonyms as fbl.reporters shows. */
static char *outbound_accounts_select(const fbl_config *c, bool keys)
{
    const char *who =
        keys ? "coalesce(account_domain, '-') || '/' || account_key AS account" : "account";
    return g_strdup_printf("SELECT %s, " OUTBOUND_ACCOUNT_COLS " FROM fbl.%s($1, $2, %u, %u, %u)",
                           who, keys ? "outbound_account_keys" : "outbound_accounts",
                           c->outbound_warn_rate_ppm, c->outbound_act_rate_ppm,
                           c->outbound_min_complaints);
}

/* Tables that list every row whatever --top says (they are short by nature). */
static bool shows_all(const table *t)
{
    return strcmp(t->name, "complaints") == 0 || strcmp(t->name, "complaints_over_time") == 0 ||
           strcmp(t->name, "vendor_feed") == 0 || strcmp(t->name, "rejects_by_reason") == 0;
}

static unsigned col_count(const table *t)
{
    unsigned n = 0;
    while (n < MAX_COLS && t->cols[n].name != NULL)
        n++;
    return n;
}

/* ---- values ------------------------------------------------------------ */

/*
 * Text for a terminal: valid UTF-8, control characters (C0, DEL, C1: a
 * hostile subject could carry escape sequences) as U+FFFD, at most @cut
 * characters (then an ellipsis).
 */
static char *clean_text(const char *s, unsigned cut)
{
    g_autofree char *valid = g_utf8_make_valid(s, -1);
    GString *out = g_string_new(NULL);
    unsigned n = 0;
    for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (n + 1 == cut && *g_utf8_next_char(p) != '\0') {
            g_string_append(out, "\u2026");
            break;
        }
        if (c < 0x20 || (c >= 0x7f && c < 0xa0))
            c = 0xfffd;
        g_string_append_unichar(out, c);
        n++;
    }
    return g_string_free(out, FALSE);
}

/* The text cell of a value; NULL in SQL is "-". */
static char *text_cell(const col *c, const char *v)
{
    if (v == NULL || c->kind != FBL_REPORT_TEXT)
        return fbl_report_format_value(c->kind, v);
    return clean_text(v, c->cut != 0 ? c->cut : MAX_CELL);
}

static json_t *json_value(const col *c, const char *v)
{
    if (v == NULL)
        return json_null();
    switch (c->kind) {
    case C_INT:
    case C_SECONDS:
    case C_BYTES:
        return json_integer(g_ascii_strtoll(v, NULL, 10));
    case C_SHARE:
        return json_real(g_ascii_strtod(v, NULL));
    case C_TEXT:
    case C_TIME:
        break;
    }
    /* Stored text is UTF-8 (the database's encoding); keep jansson safe anyway. */
    g_autofree char *valid = g_utf8_make_valid(v, -1);
    return json_string(valid);
}

/* One field of CSV (RFC 4180: quoted when it holds a comma, quote or line end). */
static void csv_field(GString *out, const char *v)
{
    if (v == NULL)
        return;
    if (strpbrk(v, ",\"\r\n") == NULL) {
        g_string_append(out, v);
        return;
    }
    g_string_append_c(out, '"');
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '"')
            g_string_append_c(out, '"');
        g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
}

/* ---- rendering --------------------------------------------------------- */

/* A value of the result: NULL for SQL NULL. Column 0 is the kind, 1 the rank. */
static const char *value(const fbl_report_rows *res, int row, int col_index)
{
    return fbl_report_rows_get(res, (guint) row, (guint) col_index);
}

/* Cells 0 (the kind) and 1 (the rank, or the count) are never NULL. */
static const char *cell(const fbl_report_rows *res, int row, int col_index)
{
    const char *v = value(res, row, col_index);
    return v != NULL ? v : "0";
}

static int kind_of(const fbl_report_rows *res, int row)
{
    return (int) g_ascii_strtoll(cell(res, row, 0), NULL, 10);
}

static int lines(const fbl_report_rows *res)
{
    return (int) res->n_rows;
}

static void render_csv(GString *out, const table *t, const fbl_report_rows *res)
{
    unsigned n = col_count(t);
    g_string_append(out, "table,rank");
    for (unsigned i = 0; i < n; i++)
        g_string_append_printf(out, ",%s", t->cols[i].name);
    g_string_append_c(out, '\n');
    for (int r = 0; r < lines(res); r++) {
        if (kind_of(res, r) != 0)
            continue;
        g_string_append_printf(out, "%s,%s", t->name, cell(res, r, 1));
        for (unsigned i = 0; i < n; i++) {
            g_string_append_c(out, ',');
            csv_field(out, value(res, r, (int) i + 2));
        }
        g_string_append_c(out, '\n');
    }
}

static json_t *json_row(const table *t, const fbl_report_rows *res, int r, bool sums_only)
{
    json_t *o = json_object();
    unsigned n = col_count(t);
    if (sums_only)
        json_object_set_new(o, "rows", json_integer(g_ascii_strtoll(cell(res, r, 1), NULL, 10)));
    for (unsigned i = 0; i < n; i++) {
        if (sums_only && !t->cols[i].sum)
            continue;
        json_object_set_new(o, t->cols[i].name,
                            json_value(&t->cols[i], value(res, r, (int) i + 2)));
    }
    return o;
}

static json_t *render_json(const table *t, const fbl_report_rows *res)
{
    json_t *rows = json_array();
    json_t *o = json_object();
    json_object_set_new(o, "rows", rows);
    for (int r = 0; r < lines(res); r++) {
        int kind = kind_of(res, r);
        if (kind == 0)
            json_array_append_new(rows, json_row(t, res, r, false));
        else
            json_object_set_new(o, kind == 1 ? "others" : "total", json_row(t, res, r, true));
    }
    return o;
}

/* The cells of a text table: a header line, then each line's cells. */
typedef struct grid {
    unsigned cols;    /* rank + the table's columns */
    GPtrArray *cells; /* char *, row-major */
    bool *right;      /* per column: right-aligned (numbers) */
} grid;

static void grid_add_line(grid *g, const table *t, const fbl_report_rows *res, int r)
{
    int kind = kind_of(res, r);
    const char *rank = cell(res, r, 1);
    g_autofree char *count = fbl_report_format_count(rank);
    if (kind == 0)
        g_ptr_array_add(g->cells, g_strdup(rank));
    else
        g_ptr_array_add(g->cells, g_strdup(""));
    for (unsigned i = 0; i + 1 < g->cols; i++) {
        const col *c = &t->cols[i];
        const char *v = value(res, r, (int) i + 2);
        if (kind != 0 && i == 0)
            g_ptr_array_add(g->cells, g_strdup_printf("%s (%s %s)", kind == 1 ? "others" : "total",
                                                      count, t->unit));
        else if (kind != 0 && !c->sum)
            g_ptr_array_add(g->cells, g_strdup(""));
        else
            g_ptr_array_add(g->cells, text_cell(c, v));
    }
}

static void grid_print(GString *out, const grid *g)
{
    unsigned *width = g_new0(unsigned, g->cols);
    for (guint k = 0; k < g->cells->len; k++) {
        unsigned w = (unsigned) g_utf8_strlen(g_ptr_array_index(g->cells, k), -1);
        width[k % g->cols] = MAX(width[k % g->cols], w);
    }
    for (guint k = 0; k < g->cells->len; k++) {
        unsigned c = k % g->cols;
        const char *cell = g_ptr_array_index(g->cells, k);
        unsigned pad = width[c] - (unsigned) g_utf8_strlen(cell, -1);
        bool last = c + 1 == g->cols;
        g_string_append(out, "  ");
        if (g->right[c])
            g_string_append_printf(out, "%*s%s", (int) pad, "", cell);
        else if (last)
            g_string_append(out, cell);
        else
            g_string_append_printf(out, "%s%*s", cell, (int) pad, "");
        if (last) {
            while (out->len > 0 && out->str[out->len - 1] == ' ')
                g_string_truncate(out, out->len - 1);
            g_string_append_c(out, '\n');
        }
    }
    g_free(width);
}

static void render_text(GString *out, const table *t, const char *title, const fbl_report_rows *res)
{
    g_string_append_printf(out, "\n%s\n", title);
    unsigned n = col_count(t);
    int data = 0;
    for (int r = 0; r < lines(res); r++)
        data += kind_of(res, r) == 0;
    if (data == 0) {
        g_string_append(out, "  (none)\n");
        return;
    }
    grid g = {.cols = n + 1, .cells = g_ptr_array_new_with_free_func(g_free)};
    g.right = g_new0(bool, g.cols);
    g.right[0] = true;
    g_ptr_array_add(g.cells, g_strdup("#"));
    for (unsigned i = 0; i < n; i++) {
        g.right[i + 1] = t->cols[i].kind != C_TEXT && t->cols[i].kind != C_TIME;
        g_ptr_array_add(g.cells, g_strdup(t->cols[i].title));
    }
    for (int r = 0; r < lines(res); r++) {
        int kind = kind_of(res, r);
        const char *rows = cell(res, r, 1);
        /* "others" only when some rows were left out; "total" only past one row. */
        if ((kind == 1 && strcmp(rows, "0") == 0) || (kind == 2 && data < 2))
            continue;
        grid_add_line(&g, t, res, r);
    }
    grid_print(out, &g);
    g_ptr_array_unref(g.cells);
    g_free(g.right);
}

static void render_summary_text(GString *out, const table *t, const fbl_report_rows *res)
{
    unsigned n = col_count(t), width = 0;
    for (unsigned i = 0; i < n; i++)
        width = MAX(width, (unsigned) strlen(t->cols[i].title));
    g_string_append_printf(out, "\n%s\n", t->title);
    for (unsigned i = 0; i < n && lines(res) > 0; i++) {
        g_autofree char *cell = text_cell(&t->cols[i], value(res, 0, (int) i + 2));
        g_string_append_printf(out, "  %-*s  %12s\n", (int) width, t->cols[i].title, cell);
    }
}

/* ---- one document -------------------------------------------------------- */

typedef struct run {
    fbl_report_query *db;
    const fbl_config *config;
    fbl_analyst_report_format format;
    gint64 since, until; /* until 0: now and on */
    guint top;
    const char *period; /* "hour" or "day" */
    GString *out;
    json_t *json_tables;
    fbl_report_html_window html; /* the html format's window */
} run;

/* A table for the html format (fbl/report_html.h): the same lines, described. */
static void html_section(run *r, const table *t, const char *title, const fbl_report_rows *res)
{
    fbl_report_html_column columns[MAX_COLS];
    unsigned n = col_count(t);
    for (unsigned i = 0; i < n; i++)
        columns[i] = (fbl_report_html_column){t->cols[i].name, t->cols[i].title, t->cols[i].kind,
                                              t->cols[i].sum};
    fbl_report_html_section section = {t->name, title, t->unit, columns, n};
    fbl_report_html_add(r->out, &r->html, &section, res);
}

/* One table's lines, in the run's format; false with FBL_PG_ERROR (not yet prefixed). */
static bool report_table(run *r, const table *t, const char *title, GError **error)
{
    fbl_report_column columns[MAX_COLS];
    unsigned n = col_count(t);
    for (unsigned i = 0; i < n; i++)
        columns[i] = (fbl_report_column){t->cols[i].name, t->cols[i].sum};
    g_autoptr(fbl_report_rows) res = NULL;
    if (!fbl_report_query_table(r->db, t->select, t->order, columns, n, r->since, r->until,
                                shows_all(t) ? 0 : r->top, r->period, &res, error))
        return false;
    if (r->format == FBL_ANALYST_REPORT_JSON) {
        json_t *o = render_json(t, res);
        if (t == &summary_table) {
            json_t *rows = json_object_get(o, "rows");
            json_object_set(r->json_tables, "summary",
                            json_array_size(rows) > 0 ? json_array_get(rows, 0) : json_null());
            json_decref(o);
        } else {
            json_object_set_new(r->json_tables, t->name, o);
        }
    } else if (r->format == FBL_ANALYST_REPORT_HTML) {
        html_section(r, t, title, res);
    } else if (r->format == FBL_ANALYST_REPORT_CSV) {
        if (r->out->len > 0)
            g_string_append_c(r->out, '\n');
        render_csv(r->out, t, res);
    } else if (t == &summary_table) {
        render_summary_text(r->out, t, res);
    } else {
        render_text(r->out, t, title, res);
    }
    return true;
}

/* report_table(), its error prefixed with the table's name. */
static bool add_table(run *r, const table *t, const char *title, GError **error)
{
    if (report_table(r, t, title, error))
        return true;
    g_prefix_error(error, "%s: ", t->name);
    return false;
}

/*
 * The outbound tables, when [local] says what is ours: the accounts by name
 * when the role may read them, else pseudonymised.
 */
static bool report_outbound(run *r, GError **error)
{
    const fbl_config *c = r->config;
    if (c == NULL || (c->local_networks == NULL && c->local_domains == NULL))
        return true;
    table t = outbound_accounts_table;
    g_autofree char *names = outbound_accounts_select(c, false);
    g_autofree char *keys = outbound_accounts_select(c, true);
    t.select = names;
    g_autoptr(GError) refused = NULL;
    bool ok = report_table(r, &t, t.title, &refused);
    if (!ok && g_error_matches(refused, FBL_PG_ERROR, FBL_PG_ERROR_PRIVILEGE)) {
        /* A missing right to read names is an answer: the pseudonyms, then. */
        t.select = keys;
        return add_table(r, &t, t.title, error) &&
               add_table(r, &outbound_ips_table, outbound_ips_table.title, error);
    }
    if (!ok) {
        g_propagate_prefixed_error(error, g_steal_pointer(&refused), "%s: ", t.name);
        return false;
    }
    return add_table(r, &outbound_ips_table, outbound_ips_table.title, error);
}

static char *iso_utc(gint64 t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("infinity");
}

/* The heading of the text report: the window, in UTC. */
static void text_heading(GString *out, gint64 since, gint64 until, bool until_now)
{
    g_autoptr(GDateTime) a = g_date_time_new_from_unix_utc(since);
    g_autoptr(GDateTime) b = g_date_time_new_from_unix_utc(until);
    g_autofree char *from = g_date_time_format(a, "%Y-%m-%d %H:%M");
    g_autofree char *to = g_date_time_format(b, "%Y-%m-%d %H:%M");
    gint64 s = until - since;
    g_autofree char *span = s % 3600 == 0 && s <= HOURLY_MAX_SECONDS
                                ? g_strdup_printf("%" G_GINT64_FORMAT "h", s / 3600)
                            : s % 86400 == 0 ? g_strdup_printf("%" G_GINT64_FORMAT "d", s / 86400)
                                             : fbl_report_format_seconds(s);
    g_string_append_printf(out, "fbl report: %s to %s UTC (%s%s)\n", from, to,
                           until_now ? "the last " : "", span);
}

/* Every table, in order. */
static bool report_tables(run *r, const fbl_analyst_report_window *w, GError **error)
{
    bool hourly = w->until - w->since <= HOURLY_MAX_SECONDS;
    r->period = hourly ? "hour" : "day";
    if (r->format == FBL_ANALYST_REPORT_TEXT)
        text_heading(r->out, w->since, w->until, w->until_now);
    r->html = (fbl_report_html_window){w->since, w->until, w->until_now, r->period};
    if (r->format == FBL_ANALYST_REPORT_HTML)
        fbl_report_html_begin(r->out, &r->html);
    if (!add_table(r, &summary_table, summary_table.title, error))
        return false;
    for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
        const char *title = tables[i].title;
        if (strcmp(tables[i].name, "complaints_over_time") == 0 && !hourly)
            title = "Reports per day (UTC)";
        if (!add_table(r, &tables[i], title, error))
            return false;
    }
    return report_outbound(r, error);
}

/* The end of the document: the JSON format's whole text, the page's close. */
static void finish(run *r, const fbl_analyst_report_window *w)
{
    if (r->format == FBL_ANALYST_REPORT_JSON) {
        g_autofree char *a = iso_utc(w->since);
        g_autofree char *b = iso_utc(w->until);
        json_t *doc = json_object();
        json_object_set_new(doc, "since", json_string(a));
        json_object_set_new(doc, "until", json_string(b));
        json_object_set_new(doc, "until_now", json_boolean(w->until_now));
        json_object_set_new(doc, "period", json_string(r->period));
        json_object_update(doc, r->json_tables);
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(doc);
        /* Every string is valid UTF-8 (json_value()): only memory can run out. */
        if (text == NULL)
            g_error("fbl report: out of memory encoding the JSON document");
        g_string_append(r->out, text);
        g_string_append_c(r->out, '\n');
        free(text);
    }
    if (r->format == FBL_ANALYST_REPORT_HTML)
        fbl_report_html_end(r->out);
}

bool fbl_analyst_report_format_from_string(const char *name, fbl_analyst_report_format *out)
{
    static const char *const names[] = {"text", "csv", "json", "html"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (name != NULL && strcmp(name, names[i]) == 0) {
            *out = (fbl_analyst_report_format) i;
            return true;
        }
    }
    return false;
}

bool fbl_analyst_report_make(fbl_report_query *db, const fbl_config *config,
                             fbl_analyst_report_format format,
                             const fbl_analyst_report_window *window, GString *out, GError **error)
{
    g_assert(window->until > window->since && window->top <= FBL_ANALYST_REPORT_MAX_TOP);
    run r = {.db = db,
             .config = config,
             .format = format,
             .since = window->since,
             .until = window->until_now ? 0 : window->until,
             .top = window->top,
             .period = "hour",
             .out = out,
             .json_tables = json_object()};
    bool ok = report_tables(&r, window, error);
    if (ok)
        finish(&r, window);
    json_decref(r.json_tables);
    return ok;
}
