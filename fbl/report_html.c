/* report_html.c - `fbl report --format html` (see report_html.h) */
#include "fbl/report_html.h"

#include <string.h>

#include "fbl/markup.h"
#include "fbl/report_format.h"
#include "fbl/svg_chart.h"

#define MAX_NOTES 3

/*
 * The page's style: a light and a dark scheme, and print (white paper,
 * charts kept whole). Fonts are the reader's own: nothing is fetched.
 */
static const char style[] =
    ":root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--mut:#57606a;--grid:#d0d7de;"
    "--card:#f3f5f7;--c0:#2f6fb3;--c1:#d1495b;--c2:#c98a1b;--c3:#5a8f3e}\n"
    "@media (prefers-color-scheme:dark){:root{--bg:#0f1216;--fg:#e6edf3;--mut:#9aa4ae;"
    "--grid:#30363d;--card:#1a1f25;--c0:#5b9bdc;--c1:#f07080;--c2:#f0c060;--c3:#8fc46f}}\n"
    "body{font:14px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg);"
    "max-width:1240px;margin:0 auto;padding:16px 20px}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;"
    "border-bottom:1px solid var(--grid)}\n"
    ".range{color:var(--mut);margin:0 0 12px}\n"
    "dl.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}\n"
    "dl.cards div{background:var(--card);border-radius:6px;padding:10px 16px;min-width:150px}\n"
    "dl.cards dt{color:var(--mut)}dl.cards dd{margin:0;font-size:26px;font-weight:600}\n"
    "svg.chart{display:block;max-width:1200px;margin:10px 0}\n"
    "svg.chart text{fill:var(--fg);font:13px system-ui,sans-serif}\n"
    "svg.chart .title{font-size:17px;font-weight:600}\n"
    "svg.chart .sub,svg.chart .tick,svg.chart .note{fill:var(--mut)}\n"
    "svg.chart .axt{font-style:italic}\n"
    ".grid{stroke:var(--grid);stroke-width:1}.axis{stroke:var(--fg);stroke-width:1}\n"
    ".s0{fill:var(--c0)}.s1{fill:var(--c1)}.s2{fill:var(--c2)}.s3{fill:var(--c3)}\n"
    "table.data{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:8px 0}\n"
    "table.data caption{text-align:left;color:var(--mut)}\n"
    "table.data th,table.data td{padding:2px 10px;border-bottom:1px solid var(--grid);"
    "text-align:left;vertical-align:top;overflow-wrap:anywhere}\n"
    "table.data .n{text-align:right}tr.others,tr.total{font-weight:600}tr.hide{display:none}\n"
    "footer{color:var(--mut);margin-top:32px}\n"
    "@media print{:root{--bg:#fff;--fg:#000;--mut:#444;--grid:#bbb;--card:#f2f2f2;"
    "--c0:#1f5c99;--c1:#b3263a;--c2:#a86f00;--c3:#3f7a2a}body{max-width:none;padding:0}"
    "section,svg.chart,dl.cards{break-inside:avoid}h2{break-after:avoid}}\n";

/* A chart of a section, drawn from its columns (by name). */
typedef enum { CHART_BARS, CHART_COLUMNS, CHART_SPANS } chart_kind;

typedef struct chart {
    const char *section;
    chart_kind kind;
    const char *id;
    const char *title;
    const char *label[2];                   /* the label: these columns joined by " / " */
    const char *value;                      /* bars: the length */
    const char *part;                       /* bars: the part overlaid (NULL: none) */
    const char *notes[MAX_NOTES];           /* beside the bar: "12 reporters" */
    const char *series[FBL_SVG_MAX_SERIES]; /* columns: stacked, from the bottom */
    const char *legend[FBL_SVG_MAX_SERIES];
    const char *x_axis, *y_axis;
    const char *desc;
} chart;

/* complaints_over_time's x axis and title say the period: see period_axis(). */
static const chart charts[] = {
    {"complaints_over_time",
     CHART_COLUMNS,
     "chart-complaints",
     "Complaints by feedback type",
     {"period"},
     NULL,
     NULL,
     {NULL},
     {"abuse", "not_spam", "other"},
     {"abuse", "not-spam", "other types"},
     NULL,
     "reports (count)",
     "Stacked columns: reports per period, split into abuse, not-spam and other feedback types."},
    {"top_source_ips",
     CHART_BARS,
     "chart-ips",
     "Top source IPs",
     {"source_ip"},
     "reports",
     NULL,
     {"reporters", "network", "network_reports"},
     {NULL},
     {NULL},
     "reports (count)",
     "source IP",
     "Bars: reports per source IP, with distinct reporters and the IP's network."},
    {"top_sender_domains",
     CHART_BARS,
     "chart-senders",
     "Top sender and DKIM domains",
     {"from_domain", "dkim_domain"},
     "reports",
     NULL,
     {"reporters", "return_path_domain"},
     {NULL},
     {NULL},
     "reports (count)",
     "From domain / DKIM d=",
     "Bars: reports per From and DKIM domain, with distinct reporters."},
    {"top_url_hosts",
     CHART_BARS,
     "chart-hosts",
     "Top URL hosts",
     {"host"},
     "reports",
     NULL,
     {"urls"},
     {NULL},
     {NULL},
     "reports (count)",
     "URL host",
     "Bars: reports naming each URL host, with the distinct URLs seen."},
    {"campaigns",
     CHART_SPANS,
     "chart-campaigns",
     "Campaigns over time",
     {"sample_subject"},
     NULL,
     NULL,
     {"reports", "reporters"},
     {NULL},
     {NULL},
     "delivery time (UTC)",
     "campaign (sample subject)",
     "Spans: each campaign from its first to its last report in the window."},
    {"false_positives",
     CHART_BARS,
     "chart-fp",
     "False positives against complaints",
     {"from_domain", "source_ip"},
     "reports",
     "not_spam",
     {"not_spam_share"},
     {NULL},
     {"all reports", "not-spam"},
     "reports (count)",
     "From domain / source IP",
     "Bars: all reports per From domain and source IP, the not-spam ones overlaid."},
    {"reporters",
     CHART_BARS,
     "chart-reporters",
     "Top reporters (pseudonymised)",
     {"reporter_domain", "reporter_key"},
     "reports",
     "rate_limited",
     {"verified_share"},
     {NULL},
     {"reports", "rate limited"},
     "reports (count)",
     "reporter domain / key",
     "Bars: reports per pseudonymised reporter, the rate-limited ones overlaid."},
    {"vendor_feed",
     CHART_BARS,
     "chart-lag",
     "Vendor delivery lag",
     {"vendor"},
     "lag_seconds",
     NULL,
     {"lag_seconds", "pending_total"},
     {NULL},
     {NULL},
     "lag (seconds)",
     "vendor",
     "Bars: the age of each vendor's oldest pending report."},
    {"vendor_feed",
     CHART_BARS,
     "chart-dead",
     "Vendor dead letters",
     {"vendor"},
     "dead_total",
     "dead",
     {"sent"},
     {NULL},
     {"dead letters (all)", "dead in this window"},
     "dead letters (count)",
     "vendor",
     "Bars: reports each vendor refused for good."},
    {"rejects_by_reason",
     CHART_BARS,
     "chart-rejects",
     "Rejected mails by reason",
     {"reason", "mailbox"},
     "rejects",
     NULL,
     {"bytes"},
     {NULL},
     {NULL},
     "mails (count)",
     "reason / mailbox",
     "Bars: mails refused as reports, by reason and mailbox."},
};

/* ---- cells ------------------------------------------------------------- */

static int col_index(const fbl_report_html_section *s, const char *name)
{
    for (guint i = 0; name != NULL && i < s->n_columns; i++) {
        if (strcmp(s->columns[i].name, name) == 0)
            return (int) i;
    }
    return -1;
}

/* The value of column @name in line @r (NULL: no such column or SQL NULL). */
static const char *value_of(const fbl_report_html_section *s, const fbl_report_rows *rows, guint r,
                            const char *name)
{
    int i = col_index(s, name);
    return i < 0 ? NULL : fbl_report_rows_get(rows, r, (guint) i + 2);
}

static gint64 int_of(const fbl_report_html_section *s, const fbl_report_rows *rows, guint r,
                     const char *name)
{
    const char *v = value_of(s, rows, r, name);
    return v != NULL ? g_ascii_strtoll(v, NULL, 10) : 0;
}

static fbl_report_line kind_of(const fbl_report_rows *rows, guint r)
{
    const char *v = fbl_report_rows_get(rows, r, 0);
    return (fbl_report_line) (v != NULL ? g_ascii_strtoll(v, NULL, 10) : 0);
}

static gint64 unix_of(const char *iso)
{
    g_autoptr(GDateTime) dt = iso != NULL ? g_date_time_new_from_iso8601(iso, NULL) : NULL;
    return dt != NULL ? g_date_time_to_unix(dt) : 0;
}

static const char *kind_name(fbl_report_kind kind)
{
    static const char *const names[] = {"text", "int", "share", "time", "seconds", "bytes"};
    g_assert((size_t) kind < G_N_ELEMENTS(names));
    return names[kind];
}

/* ---- the page ---------------------------------------------------------- */

static char *window_text(const fbl_report_html_window *w)
{
    g_autoptr(GDateTime) a = g_date_time_new_from_unix_utc(w->since);
    g_autoptr(GDateTime) b = g_date_time_new_from_unix_utc(w->until);
    g_autofree char *from = a != NULL ? g_date_time_format(a, "%Y-%m-%d %H:%M") : NULL;
    g_autofree char *to = b != NULL ? g_date_time_format(b, "%Y-%m-%d %H:%M") : NULL;
    return g_strdup_printf("%s to %s UTC%s", from, to, w->until_now ? " (until now)" : "");
}

static char *iso_utc(gint64 t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("infinity");
}

void fbl_report_html_begin(GString *out, const fbl_report_html_window *window)
{
    g_autofree char *since = iso_utc(window->since);
    g_autofree char *until = iso_utc(window->until);
    g_autofree char *range = window_text(window);
    g_string_append_printf(out,
                           "<!DOCTYPE html>\n<html lang=\"en\" data-since=\"%s\" "
                           "data-until=\"%s\" data-period=\"%s\" data-until-now=\"%s\">\n"
                           "<head>\n<meta charset=\"utf-8\">\n",
                           since, until, window->period, window->until_now ? "true" : "false");
    /* No script, no fetch: even a tag that slipped through could not run or call out. */
    g_string_append(out, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                         "'none'; style-src 'unsafe-inline'\">\n"
                         "<meta name=\"viewport\" content=\"width=device-width\">\n<title>");
    g_string_append(out, "fbl report, ");
    fbl_markup_append_escaped(out, range, 0);
    g_string_append_printf(out,
                           "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n"
                           "<h1>fbl report</h1>\n<p class=\"range\">Reports delivered ",
                           style);
    fbl_markup_append_escaped(out, range, 0);
    g_string_append(out, "; reporters pseudonymised, addresses masked.</p>\n</header>\n");
}

void fbl_report_html_end(GString *out)
{
    g_string_append(out, "<footer>Made by <code>fbl report --format html</code> from the "
                         "analyst views (schema/005_analyst.sql).</footer>\n</body>\n</html>\n");
}

static void summary(GString *out, const fbl_report_html_section *s, const fbl_report_rows *rows)
{
    g_string_append_printf(out, "<section id=\"summary\">\n<h2>%s</h2>\n", s->title);
    g_string_append(out, "<dl class=\"cards\" data-section=\"summary\">\n");
    for (guint i = 0; i < s->n_columns && rows->n_rows > 0; i++) {
        const char *v = fbl_report_rows_get(rows, 0, i + 2);
        g_autofree char *text = fbl_report_format_value(s->columns[i].kind, v);
        g_string_append_printf(out, "<div><dt>%s</dt><dd data-col=\"%s\"", s->columns[i].title,
                               s->columns[i].name);
        if (v != NULL) {
            g_string_append(out, " data-v=\"");
            fbl_markup_append_escaped(out, v, 0);
            g_string_append_c(out, '"');
        }
        g_string_append_c(out, '>');
        fbl_markup_append_escaped(out, text, 0);
        g_string_append(out, "</dd></div>\n");
    }
    g_string_append(out, "</dl>\n</section>\n");
}

/* ---- tables ------------------------------------------------------------ */

static void table_head(GString *out, const fbl_report_html_section *s)
{
    g_string_append_printf(out, "<table class=\"data\" data-section=\"%s\">\n<caption>", s->name);
    fbl_markup_append_escaped(out, s->title, 0);
    g_string_append(out, ": the data</caption>\n<thead><tr><th class=\"n\">#</th>");
    for (guint i = 0; i < s->n_columns; i++) {
        const fbl_report_html_column *c = &s->columns[i];
        g_string_append_printf(
            out, "<th scope=\"col\" data-col=\"%s\" data-kind=\"%s\"%s>%s</th>", c->name,
            kind_name(c->kind),
            c->kind == FBL_REPORT_TEXT || c->kind == FBL_REPORT_TIME ? "" : " class=\"n\"",
            c->title);
    }
    g_string_append(out, "</tr></thead>\n<tbody>\n");
}

static void table_cell(GString *out, const fbl_report_html_column *c, const char *v)
{
    bool number = c->kind != FBL_REPORT_TEXT && c->kind != FBL_REPORT_TIME;
    g_string_append_printf(out, "<td%s data-col=\"%s\"", number ? " class=\"n\"" : "", c->name);
    if (v != NULL) {
        g_string_append(out, " data-v=\"");
        fbl_markup_append_escaped(out, v, 0);
        g_string_append_c(out, '"');
    }
    g_autofree char *text = fbl_report_format_value(c->kind, v);
    g_string_append_c(out, '>');
    fbl_markup_append_escaped(out, text, FBL_REPORT_HTML_MAX_CELL);
    g_string_append(out, "</td>");
}

/* An "others" or "total" line: how many rows it sums, then the summed columns. */
static void sum_line(GString *out, const fbl_report_html_section *s, const fbl_report_rows *rows,
                     guint r, guint data_rows)
{
    fbl_report_line kind = kind_of(rows, r);
    const char *count = fbl_report_rows_get(rows, r, 1);
    bool others = kind == FBL_REPORT_LINE_OTHERS;
    /* As in the text format: "others" only when rows were left out, "total" past one row. */
    bool hide = others ? g_strcmp0(count, "0") == 0 : data_rows < 2;
    g_autofree char *n = fbl_report_format_count(count != NULL ? count : "0");
    g_string_append_printf(out, "<tr class=\"%s%s\" data-kind=\"%s\" data-rows=\"%s\"><td></td>",
                           others ? "others" : "total", hide ? " hide" : "",
                           others ? "others" : "total", count != NULL ? count : "0");
    for (guint i = 0; i < s->n_columns; i++) {
        if (i == 0 && !s->columns[i].sum)
            g_string_append_printf(out, "<td>%s (%s %s)</td>", others ? "others" : "total", n,
                                   s->unit != NULL ? s->unit : "rows");
        else if (s->columns[i].sum)
            table_cell(out, &s->columns[i], fbl_report_rows_get(rows, r, i + 2));
        else
            g_string_append(out, "<td></td>");
    }
    g_string_append(out, "</tr>\n");
}

static void table(GString *out, const fbl_report_html_section *s, const fbl_report_rows *rows)
{
    guint data_rows = 0;
    for (guint r = 0; r < rows->n_rows; r++)
        data_rows += kind_of(rows, r) == FBL_REPORT_LINE_ROW;
    table_head(out, s);
    for (guint r = 0; r < rows->n_rows; r++) {
        if (kind_of(rows, r) != FBL_REPORT_LINE_ROW) {
            sum_line(out, s, rows, r, data_rows);
            continue;
        }
        const char *rank = fbl_report_rows_get(rows, r, 1);
        g_string_append_printf(
            out, "<tr data-kind=\"row\" data-rank=\"%s\"><td class=\"n\">%s</td>", rank, rank);
        for (guint i = 0; i < s->n_columns; i++)
            table_cell(out, &s->columns[i], fbl_report_rows_get(rows, r, i + 2));
        g_string_append(out, "</tr>\n");
    }
    if (data_rows == 0)
        g_string_append_printf(out, "<tr><td></td><td colspan=\"%u\">(none)</td></tr>\n",
                               s->n_columns);
    g_string_append(out, "</tbody>\n</table>\n");
}

/* ---- charts ------------------------------------------------------------ */

/* The label of a row: its label columns, " / " between them. */
static char *label_of(const chart *c, const fbl_report_html_section *s, const fbl_report_rows *rows,
                      guint r)
{
    GString *label = g_string_new(NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(c->label) && c->label[i] != NULL; i++) {
        const char *v = value_of(s, rows, r, c->label[i]);
        g_string_append_printf(label, "%s%s", i > 0 ? " / " : "", v != NULL ? v : "-");
    }
    return g_string_free(label, FALSE);
}

/* The note of a row: "12 reporters, network 198.51.100.0/24". */
static char *note_of(const chart *c, const fbl_report_html_section *s, const fbl_report_rows *rows,
                     guint r)
{
    GString *note = g_string_new(NULL);
    for (size_t i = 0; i < MAX_NOTES && c->notes[i] != NULL; i++) {
        int k = col_index(s, c->notes[i]);
        if (k < 0)
            continue;
        const fbl_report_html_column *col = &s->columns[k];
        const char *v = fbl_report_rows_get(rows, r, (guint) k + 2);
        g_autofree char *text = fbl_report_format_value(col->kind, v);
        if (note->len > 0)
            g_string_append(note, ", ");
        if (col->kind == FBL_REPORT_TEXT)
            g_string_append_printf(note, "%s %s", col->title, text);
        else
            g_string_append_printf(note, "%s %s", text, col->title);
    }
    return g_string_free(note, FALSE);
}

static fbl_svg_frame frame_of(const chart *c, const char *range)
{
    fbl_svg_frame f = {c->id, c->title, range, c->desc, c->x_axis, c->y_axis, {NULL}};
    for (guint k = 0; k < FBL_SVG_MAX_SERIES; k++)
        f.series[k] = c->legend[k];
    return f;
}

static void bars(GString *out, const chart *c, const fbl_svg_frame *f,
                 const fbl_report_html_section *s, const fbl_report_rows *rows)
{
    GArray *items = g_array_new(FALSE, TRUE, sizeof(fbl_svg_bar));
    GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
    for (guint r = 0; r < rows->n_rows; r++) {
        if (kind_of(rows, r) != FBL_REPORT_LINE_ROW)
            continue;
        fbl_svg_bar b = {label_of(c, s, rows, r), int_of(s, rows, r, c->value),
                         c->part != NULL ? int_of(s, rows, r, c->part) : 0, note_of(c, s, rows, r)};
        g_ptr_array_add(texts, (char *) b.label);
        g_ptr_array_add(texts, (char *) b.note);
        g_array_append_val(items, b);
    }
    fbl_svg_bars(out, f, (const fbl_svg_bar *) (void *) items->data, items->len);
    g_array_free(items, TRUE);
    g_ptr_array_unref(texts);
}

static void spans(GString *out, const chart *c, const fbl_svg_frame *f,
                  const fbl_report_html_window *w, const fbl_report_html_section *s,
                  const fbl_report_rows *rows)
{
    GArray *items = g_array_new(FALSE, TRUE, sizeof(fbl_svg_span));
    GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
    for (guint r = 0; r < rows->n_rows; r++) {
        if (kind_of(rows, r) != FBL_REPORT_LINE_ROW)
            continue;
        fbl_svg_span span = {label_of(c, s, rows, r), unix_of(value_of(s, rows, r, "first_seen")),
                             unix_of(value_of(s, rows, r, "last_seen")), note_of(c, s, rows, r)};
        g_ptr_array_add(texts, (char *) span.label);
        g_ptr_array_add(texts, (char *) span.note);
        g_array_append_val(items, span);
    }
    fbl_svg_spans(out, f, w->since, w->until, (const fbl_svg_span *) (void *) items->data,
                  items->len);
    g_array_free(items, TRUE);
    g_ptr_array_unref(texts);
}

/* The tick under a period's column: "10:00" per hour, "01-15" per day. */
static char *period_label(gint64 t, bool hourly)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return g_date_time_format(dt, hourly ? "%H:%M" : "%m-%d");
}

/*
 * Every period of the window gets a column, the empty ones too: the rows
 * hold only periods with reports, and gaps must show as gaps.
 */
static void columns(GString *out, const chart *c, const fbl_svg_frame *f,
                    const fbl_report_html_window *w, const fbl_report_html_section *s,
                    const fbl_report_rows *rows)
{
    bool hourly = g_strcmp0(w->period, "hour") == 0;
    gint64 step = hourly ? 3600 : 86400, first = w->since - w->since % step;
    guint n = (guint) MIN((w->until - first + step - 1) / step, FBL_SVG_MAX_ITEMS);
    fbl_svg_column *cols = g_new0(fbl_svg_column, MAX(n, 1));
    GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < n; i++) {
        cols[i].label = period_label(first + (gint64) i * step, hourly);
        g_ptr_array_add(texts, (char *) cols[i].label);
    }
    for (guint r = 0; r < rows->n_rows; r++) {
        gint64 at = unix_of(value_of(s, rows, r, "period"));
        if (kind_of(rows, r) != FBL_REPORT_LINE_ROW || at < first || (at - first) / step >= n)
            continue;
        for (guint k = 0; k < FBL_SVG_MAX_SERIES && c->series[k] != NULL; k++)
            cols[(at - first) / step].values[k] += int_of(s, rows, r, c->series[k]);
    }
    guint n_series = 0;
    while (n_series < FBL_SVG_MAX_SERIES && c->series[n_series] != NULL)
        n_series++;
    fbl_svg_columns(out, f, cols, n, n_series);
    g_free(cols);
    g_ptr_array_unref(texts);
}

static void draw(GString *out, const chart *c, const fbl_report_html_window *w,
                 const fbl_report_html_section *s, const fbl_report_rows *rows)
{
    g_autofree char *range = window_text(w);
    fbl_svg_frame f = frame_of(c, range);
    bool hourly = g_strcmp0(w->period, "hour") == 0;
    g_autofree char *title = NULL;
    if (c->kind == CHART_COLUMNS) {
        title = g_strdup_printf("%s per %s", c->title, hourly ? "hour" : "day");
        f.title = title;
        f.x_axis = hourly ? "hour (UTC)" : "day (UTC)";
    }
    g_string_append(out, "<figure>\n");
    switch (c->kind) {
    case CHART_BARS:
        bars(out, c, &f, s, rows);
        break;
    case CHART_COLUMNS:
        columns(out, c, &f, w, s, rows);
        break;
    case CHART_SPANS:
        spans(out, c, &f, w, s, rows);
        break;
    }
    g_string_append(out, "</figure>\n");
}

void fbl_report_html_add(GString *out, const fbl_report_html_window *window,
                         const fbl_report_html_section *section, const fbl_report_rows *rows)
{
    if (strcmp(section->name, "summary") == 0) {
        summary(out, section, rows);
        return;
    }
    g_string_append_printf(out, "<section id=\"%s\">\n<h2>", section->name);
    fbl_markup_append_escaped(out, section->title, 0);
    g_string_append(out, "</h2>\n");
    for (size_t i = 0; i < G_N_ELEMENTS(charts); i++) {
        if (strcmp(charts[i].section, section->name) == 0)
            draw(out, &charts[i], window, section, rows);
    }
    table(out, section, rows);
    g_string_append(out, "</section>\n");
}
