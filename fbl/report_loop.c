/* report_loop.c - the sink's HTML report (see report_loop.h) */
#define G_LOG_DOMAIN "fbl-sink"
#include "fbl/report_loop.h"

#include "fbl/analyst_report.h"
#include "fbl/blocklist_export.h"
#include "fbl/daemon.h"
#include "sink/report_query.h"

/* How often the loop looks at the stop flag while it waits for the next turn. */
#define POLL_MS 200

struct fbl_report_loop {
    const fbl_config *config;
    fbl_report_query *query; /* NULL while not connected */
    char *failure;           /* why the last turn failed (logged); NULL: it did not */
    guint64 written;         /* pages written */
};

bool fbl_report_loop_wanted(const fbl_config *c)
{
    return c->report_html_file != NULL;
}

fbl_report_loop *fbl_report_loop_new(const fbl_config *c)
{
    fbl_report_loop *l = g_new0(fbl_report_loop, 1);
    l->config = c;
    return l;
}

void fbl_report_loop_free(fbl_report_loop *l)
{
    if (l == NULL)
        return;
    fbl_report_query_free(l->query);
    g_free(l->failure);
    g_free(l);
}

/* The cancel test of the report's statements: a stop cancels them; meanwhile the thread turns. */
static bool stopping(void)
{
    fbl_daemon_alive(FBL_DAEMON_LOOP_SINK);
    return fbl_daemon_stopping();
}

/* The page of the window ending now, on the loop's connection (made when needed). */
static bool make_page(fbl_report_loop *l, GString *page, GError **error)
{
    const fbl_config *c = l->config;
    if (l->query == NULL) {
        l->query = fbl_report_query_new(c->pg_conninfo, "fbl sink report", error);
        if (l->query == NULL)
            return false;
        fbl_report_query_set_cancel(l->query, stopping);
    }
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    fbl_analyst_report_window w = {now - c->report_html_window_ms / 1000, now, true,
                                   c->report_html_top};
    if (fbl_analyst_report_make(l->query, c, FBL_ANALYST_REPORT_HTML, &w, page, error))
        return true;
    /* Whatever failed, the next turn starts on a new connection. */
    g_clear_pointer(&l->query, fbl_report_query_free);
    return false;
}

/* A failed turn: a warning when a failure streak starts or its reason changes. */
static void turn_failed(fbl_report_loop *l, const char *what, const GError *error)
{
    g_autofree char *why = g_strdup_printf("%s: %s", what, error->message);
    if (g_strcmp0(l->failure, why) != 0)
        g_warning("html report: %s (the page stays as it was; trying again every "
                  "[report] html_interval)",
                  why);
    else
        g_debug("html report: still failing: %s", why);
    g_free(l->failure);
    l->failure = g_steal_pointer(&why);
}

/* One turn: make the page, then write it. */
static void turn(fbl_report_loop *l)
{
    const char *path = l->config->report_html_file;
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) page = g_string_new(NULL);
    gint64 start = g_get_monotonic_time();
    if (!make_page(l, page, &error)) {
        if (!fbl_daemon_stopping())
            turn_failed(l, "PostgreSQL", error);
        return;
    }
    if (!fbl_export_write_text(path, page->str, &error)) {
        turn_failed(l, "cannot write the page", error);
        return;
    }
    l->written++;
    double s = (double) (g_get_monotonic_time() - start) / G_USEC_PER_SEC;
    if (l->written == 1)
        g_message("html report: %s written (%zu bytes, %.2f s); again every %u s", path, page->len,
                  s, l->config->report_html_interval_ms / 1000);
    else if (l->failure != NULL)
        g_message("html report: %s written again (%zu bytes, %.2f s)", path, page->len, s);
    else
        g_info("html report: %s written (%zu bytes, %.2f s)", path, page->len, s);
    g_clear_pointer(&l->failure, g_free);
}

bool fbl_report_loop_run(fbl_report_loop *l, GError **error)
{
    (void) error;
    gint64 next = 0;
    while (!fbl_daemon_stopping()) {
        fbl_daemon_alive(FBL_DAEMON_LOOP_SINK);
        if (fbl_now_ms() >= next) {
            next = fbl_now_ms() + l->config->report_html_interval_ms;
            turn(l);
        }
        g_usleep((gulong) POLL_MS * 1000);
    }
    return true;
}
