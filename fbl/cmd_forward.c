/*
 * cmd_forward.c - what `fbl forward` does besides forwarding (see
 * cmd_forward.h): --status, --retry-dead and --backfill, each one run over
 * the outbox (sink/outbox.h) that prints for its user and exits. The
 * forwarder itself is forward_loop.c; the options are cmd_daemons.c's.
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/cmd_forward.h"

#include <string.h>
#include <sysexits.h>

#include <glib.h>

#include "fbl/daemon.h"
#include "fbl/timearg.h"
#include "sink/outbox.h"
#include "sink/redact.h"

/* ---- --status and --retry-dead ------------------------------------------------------ */

static fbl_outbox *connect_for_cli(const fbl_config *config, FILE *out, int *status)
{
    g_autoptr(GError) error = NULL;
    fbl_outbox *ob = fbl_outbox_new(config->pg_conninfo, &error);
    if (ob == NULL) {
        (void) fprintf(out, "fbl forward: %s\n", error->message);
        *status = EX_UNAVAILABLE;
    }
    return ob;
}

static int cli_error(const GError *error, FILE *out)
{
    (void) fprintf(out, "fbl forward: %s\n", error->message);
    return fbl_pg_error_exit_code(error);
}

int fbl_forward_status(const fbl_config *config, FILE *out)
{
    int status = EX_OK;
    g_autoptr(fbl_outbox) ob = connect_for_cli(config, out, &status);
    if (ob == NULL)
        return status;
    g_autoptr(GPtrArray) stats = NULL;
    g_autoptr(GError) error = NULL;
    if (!fbl_outbox_status(ob, &stats, &error))
        return cli_error(error, out);
    /* Configured vendors without rows yet show zeros. */
    for (guint i = 0; i < config->vendors->len; i++) {
        const fbl_vendor_config *v = g_ptr_array_index(config->vendors, i);
        bool seen = false;
        for (guint j = 0; j < stats->len && !seen; j++)
            seen = strcmp(((fbl_outbox_stats *) g_ptr_array_index(stats, j))->vendor, v->name) == 0;
        if (!seen) {
            fbl_outbox_stats *s = g_new0(fbl_outbox_stats, 1);
            s->vendor = g_strdup(v->name);
            g_ptr_array_add(stats, s);
        }
    }
    (void) fprintf(out, "%-16s %10s %10s %12s %8s %8s %9s %10s  %s\n", "vendor", "pending", "due",
                   "sent", "dead", "limited", "duplicate", "lag", "last sent");
    for (guint i = 0; i < stats->len; i++) {
        const fbl_outbox_stats *s = g_ptr_array_index(stats, i);
        (void) fprintf(
            out,
            "%-16s %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT " %12" G_GUINT64_FORMAT
            " %8" G_GUINT64_FORMAT " %8" G_GUINT64_FORMAT " %9" G_GUINT64_FORMAT " %9.1fs  %s%s\n",
            s->vendor, s->pending, s->due, s->sent, s->dead, s->limited, s->duplicate, s->lag_s,
            s->last_sent_at != NULL ? s->last_sent_at : "-",
            fbl_config_find_vendor(config, s->vendor) != NULL ? "" : "  (not configured)");
        /* Printed like a log line: masked; the row keeps the whole answer. */
        g_autofree char *dead =
            s->last_dead != NULL ? fbl_redact_mask_addresses(s->last_dead) : NULL;
        if (dead != NULL)
            (void) fprintf(out, "  newest dead letter: %s\n", dead);
    }
    return EX_OK;
}

int fbl_forward_retry_dead(const fbl_config *config, const char *vendor, FILE *out)
{
    int status = EX_OK;
    g_autoptr(fbl_outbox) ob = connect_for_cli(config, out, &status);
    if (ob == NULL)
        return status;
    const char *one[] = {vendor, NULL};
    guint64 count = 0;
    g_autoptr(GError) error = NULL;
    if (!fbl_outbox_retry_dead(ob, vendor != NULL ? one : NULL, &count, &error))
        return cli_error(error, out);
    (void) fprintf(out,
                   "fbl forward: %" G_GUINT64_FORMAT " dead letter%s of %s made pending again\n",
                   count, count == 1 ? "" : "s", vendor != NULL ? vendor : "every vendor");
    return EX_OK;
}

/* ---- --backfill ------------------------------------------------------------------------ */

#define BACKFILL_STEP_REPORTS 5000
#define BACKFILL_PROGRESS_MS  2000

/* --since and --until as Unix seconds; false (and said on @out) when one is wrong. */
static bool backfill_range(const char *since, const char *until, gint64 *from, gint64 *to,
                           FILE *out)
{
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    *to = 0;
    if (since == NULL) {
        (void) fprintf(out, "fbl forward: --backfill needs --since T (the first delivery time "
                            "to give the vendor)\n");
        return false;
    }
    if (!fbl_time_arg_parse(since, now, from)) {
        (void) fprintf(out,
                       "fbl forward: --since %s: not a time (epoch seconds, ISO-8601 or "
                       "an age such as 7d)\n",
                       since);
        return false;
    }
    if (until != NULL && (!fbl_time_arg_parse(until, now, to) || *to <= *from)) {
        (void) fprintf(out, "fbl forward: --until %s: not a time after --since\n", until);
        return false;
    }
    return true;
}

static void backfill_line(FILE *out, const char *vendor, const fbl_outbox_backfill *st,
                          const char *what)
{
    (void) fprintf(
        out,
        "fbl forward: backfill %s%s: %" G_GUINT64_FORMAT " reports, %" G_GUINT64_FORMAT
        " rows added (%" G_GUINT64_FORMAT " pending, %" G_GUINT64_FORMAT
        " limited, %" G_GUINT64_FORMAT " duplicate), %" G_GUINT64_FORMAT " already there%s%s\n",
        vendor, what, st->reports, st->added, st->added - st->limited - st->duplicate, st->limited,
        st->duplicate, st->existing, st->after_at != NULL && !st->done ? "; up to " : "",
        st->after_at != NULL && !st->done ? st->after_at : "");
    (void) fflush(out);
}

int fbl_forward_backfill(const fbl_config *config, const char *vendor, const char *since,
                         const char *until, FILE *out)
{
    if (vendor == NULL || fbl_config_find_vendor(config, vendor) == NULL) {
        (void) fprintf(out,
                       "fbl forward: --backfill needs --vendor NAME, a configured "
                       "[vendor:NAME]%s%s\n",
                       vendor != NULL ? "; not configured: " : "", vendor != NULL ? vendor : "");
        return EX_USAGE;
    }
    gint64 from = 0, to = 0;
    if (!backfill_range(since, until, &from, &to, out))
        return EX_USAGE;
    int status = EX_OK;
    g_autoptr(fbl_outbox) ob = connect_for_cli(config, out, &status);
    if (ob == NULL)
        return status;
    fbl_outbox_backfill st = {0};
    int64_t next_line = fbl_now_ms() + BACKFILL_PROGRESS_MS;
    while (!st.done && status == EX_OK) {
        g_autoptr(GError) error = NULL;
        if (!fbl_outbox_backfill_step(ob, vendor, from, to, BACKFILL_STEP_REPORTS, &st, &error)) {
            status = cli_error(error, out);
        } else if (!st.done && fbl_now_ms() >= next_line) {
            backfill_line(out, vendor, &st, " (going on)");
            next_line = fbl_now_ms() + BACKFILL_PROGRESS_MS;
        }
    }
    backfill_line(out, vendor, &st, status == EX_OK ? " done" : " stopped");
    fbl_outbox_backfill_clear(&st);
    return status;
}
