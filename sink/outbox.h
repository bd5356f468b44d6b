/*
 * outbox.h - the forwarder's side of fbl.vendor_outbox: claim due rows, mark
 * what became of them, dead letters, status
 *
 * Layer: sink/. Blocking libpq I/O on one connection of its own, used by one
 * thread at a time. Logs through g_log domain "fbl-outbox".
 *
 * A send is a lease, and no transaction is open while the vendor is called
 * (schema/009_outbox_lease.sql): fbl_outbox_claim() takes a vendor's due
 * pending rows that no live lease holds (FOR UPDATE SKIP LOCKED: several
 * forwarders, on one machine or many, share the work and never take the same
 * row), writes the lease on them (claimed_until, claimed_by: a random token
 * per claim) and commits, in one statement. The caller delivers them; then
 * fbl_outbox_finish() marks each row (sent, retry, wait, dead, or unchanged)
 * and clears the lease, in one statement that touches only the rows the
 * claim's token still holds. A forwarder killed in between leaves the lease
 * behind: when it has run out the rows are due again, and are sent again in
 * the same order, so in the same batches (at-least-once; the vendor drops
 * repeats by the report id and the batch's idempotency key). The caller
 * picks a lease longer than any send can take.
 *
 * The connection LISTENs on "fbl_outbox" (the sink's write transaction
 * NOTIFYs it, schema 004), so fbl_outbox_wait() returns as soon as new rows
 * are committed. A lost connection is re-made by the next claim.
 *
 * Errors (FBL_PG_ERROR, sink/pgconn.h): a lost connection and a busy server
 * are transient (retry with backoff); FBL_PG_ERROR_SCHEMA means the schema is
 * missing or old (the message says: run fbl migrate); the rest are permanent.
 *
 * Memory: a claim holds at most max_rows documents and, when the raw mail is
 * asked for, mails up to max_bytes in all (at least one, whatever its size).
 */
#ifndef FBL_OUTBOX_H
#define FBL_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "sink/pgconn.h"

/* What to do with a claimed row (fbl_outbox_finish). */
typedef enum {
    FBL_OUTBOX_KEEP = 0, /* unchanged: only the lease is released */
    FBL_OUTBOX_SENT,     /* state sent, sent_at now, attempts + 1 */
    FBL_OUTBOX_RETRY,    /* a failed attempt: attempts + 1, next try in delay_ms */
    FBL_OUTBOX_WAIT,     /* not tried (the vendor asked to wait): next try in delay_ms */
    FBL_OUTBOX_DEAD,     /* dead letter: attempts + 1, last_error = error */
} fbl_outbox_action;

typedef struct fbl_outbox_row {
    char *report_id;
    char *received_at; /* as the server wrote it; handed back as it is */
    char *mail_id;     /* NULL when the report is no longer stored */
    unsigned attempts; /* before this one */
    char *doc;         /* the report's JSON; NULL when it is no longer stored */
    gint64 mail_size;
    GBytes *mail; /* (nullable) the raw mail, when asked for and stored */
    /* set by the caller: */
    fbl_outbox_action action;
    unsigned delay_ms;
    char *error; /* (nullable) owned: last_error (SENT: kept as a note) */
} fbl_outbox_row;

void fbl_outbox_row_free(fbl_outbox_row *row);

typedef struct fbl_outbox fbl_outbox;

/*
 * fbl_outbox_new - connect (application_name "fbl-forward" unless the
 * conninfo says) and LISTEN fbl_outbox
 *
 * Returns: (transfer full) or NULL with FBL_PG_ERROR.
 */
fbl_outbox *fbl_outbox_new(const char *conninfo, GError **error);
void fbl_outbox_free(fbl_outbox *ob);

/*
 * fbl_outbox_claim - lease @vendor's due pending rows, oldest due first, and
 * commit: no transaction is left open
 *
 * @max_rows: at most this many
 * @with_mail: also read each row's raw mail, up to @max_bytes in all (the
 *   first row's whatever its size); the rows past that are not taken
 * @lease_ms: how long the rows are this claim's; past that another claim
 *   may take them (and send them again)
 * @rows: (out) (transfer full) fbl_outbox_row *; may be empty
 * Returns: false with FBL_PG_ERROR (nothing is leased, or the lease runs out
 *   unused when the connection was lost).
 */
bool fbl_outbox_claim(fbl_outbox *ob, const char *vendor, unsigned max_rows, size_t max_bytes,
                      bool with_mail, unsigned lease_ms, GPtrArray **rows, GError **error);

/*
 * fbl_outbox_finish - apply every row's action of the last claim and clear
 * their lease, in one statement (its own transaction)
 *
 * A row whose lease ran out and that another claim took since is left to
 * that claim (a warning says how many: the lease was too short), and so is
 * a row a reparse dropped meanwhile.
 *
 * Returns: false with FBL_PG_ERROR: nothing was marked; the rows are
 *   claimed again when their lease runs out.
 */
bool fbl_outbox_finish(fbl_outbox *ob, const char *vendor, GPtrArray *rows, GError **error);

/*
 * fbl_outbox_wait - wait up to @timeout_ms for a NOTIFY fbl_outbox
 *
 * Returns: true when one came (new rows may be due).
 */
bool fbl_outbox_wait(fbl_outbox *ob, unsigned timeout_ms);

/*
 * fbl_outbox_retry_dead - dead rows of @vendors become pending, attempts 0
 *
 * @vendors: (nullable) NULL-terminated names; NULL: every vendor
 * @count: (out) rows made pending
 */
bool fbl_outbox_retry_dead(fbl_outbox *ob, const char *const *vendors, guint64 *count,
                           GError **error);

/* One vendor's outbox. */
typedef struct fbl_outbox_stats {
    char *vendor;
    guint64 pending, due, sent, dead, limited;
    guint64 duplicate;  /* copies of a report stored before (schema 007), never sent */
    double lag_s;       /* age of the oldest pending row; 0 when none */
    char *last_sent_at; /* (nullable) */
    char *last_dead;    /* (nullable) the newest dead letter's last_error */
} fbl_outbox_stats;

void fbl_outbox_stats_free(fbl_outbox_stats *stats);

/*
 * fbl_outbox_status - every vendor with outbox rows, by name
 *
 * @stats: (out) (transfer full) fbl_outbox_stats *
 */
bool fbl_outbox_status(fbl_outbox *ob, GPtrArray **stats, GError **error);

/*
 * fbl_outbox_gauges - @vendor's pending and dead rows and its lag (the age of
 * the oldest pending row, 0 when none): cheaper than fbl_outbox_status(),
 * for a periodic look (it reads no sent row)
 */
bool fbl_outbox_gauges(fbl_outbox *ob, const char *vendor, guint64 *pending, guint64 *dead,
                       double *lag_s, GError **error);

/*
 * A backfill's progress (fbl_outbox_backfill_step): where it is, by the last
 * report done in (received_at, id) order, and what it did so far.
 */
typedef struct fbl_outbox_backfill {
    char *after_at;    /* (nullable) the last report's received_at, as the server wrote it */
    char *after_id;    /* (nullable) and its id */
    guint64 reports;   /* reports read */
    guint64 added;     /* outbox rows written: pending + limited + duplicate */
    guint64 limited;   /* of them, written 'limited' (the report was rate limited) */
    guint64 duplicate; /* of them, written 'duplicate' (the report repeats another) */
    guint64 existing;  /* reports that had a row for the vendor already, in any state */
    bool done;         /* the range is covered */
} fbl_outbox_backfill;

void fbl_outbox_backfill_clear(fbl_outbox_backfill *state);

/*
 * fbl_outbox_backfill_step - write @vendor's outbox rows for the next
 * @max_reports stored reports delivered in [@since, @until), after the ones
 * @state says are done, in one transaction of its own; NOTIFY fbl_outbox
 * when rows were written
 *
 * A vendor configured after reports were stored has no rows for them (the
 * sink writes rows for the vendors it knows when it stores a report): this
 * gives it that backlog. A report that has a row for @vendor already (sent,
 * pending, dead, limited or duplicate) keeps it (ON CONFLICT DO NOTHING on
 * the outbox key), so a backfill may be run again, and beside forwarders
 * and sinks. New rows follow the store's rules: 'duplicate' for a report
 * whose duplicate_of is set, 'limited' for a rate-limited one, else
 * 'pending'.
 *
 * @since, @until: Unix seconds; @until 0: no end
 * @state: (inout) zeroed before the first step; updated; @state->done once
 *   the range is covered
 * Returns: false with FBL_PG_ERROR (that step wrote nothing; @state is
 *   unchanged, so the same step may be tried again).
 */
bool fbl_outbox_backfill_step(fbl_outbox *ob, const char *vendor, gint64 since, gint64 until,
                              unsigned max_reports, fbl_outbox_backfill *state, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_outbox, fbl_outbox_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_outbox_row, fbl_outbox_row_free)

#endif /* FBL_OUTBOX_H */
