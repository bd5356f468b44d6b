/*
 * prune.h - retention in the database: drop whole months, clear old raw mail
 * (what `fbl prune` runs; fbl/cmd_prune.c decides and prints)
 *
 * Layer: sink/. Blocking libpq I/O on one connection of its own, used by one
 * thread at a time. Needs the tables' owner (the role that ran fbl migrate).
 *
 * Every table in fbl is partitioned by UTC month on received_at. A month
 * goes whole: fbl.drop_month() (schema/005_analyst.sql) detaches and drops
 * that month's partition of every table in one transaction. Rows older than
 * a cutoff in the DEFAULT partitions are deleted (fbl.prune_defaults). The
 * current month and the DEFAULT partitions themselves are never dropped.
 * Raw mail goes on its own schedule: fbl.mails.raw is set to NULL before a
 * cutoff (to the second), one partition per call, and the partition is
 * vacuumed so its TOAST space is given back.
 *
 * Locks: DETACH needs ACCESS EXCLUSIVE on each parent for a moment; a long
 * query holding it up makes fbl.drop_month fail on its lock_timeout (5 s)
 * rather than stall the writers queued behind it: fbl_prune_error_is_busy()
 * says so, and the caller may try that month again after a pause.
 *
 * Errors: FBL_PG_ERROR (sink/pgconn.h).
 */
#ifndef FBL_PRUNE_H
#define FBL_PRUNE_H

#include <stdbool.h>

#include <glib.h>

#include "sink/pgconn.h"

typedef struct fbl_prune fbl_prune;

/*
 * fbl_prune_new - connect (application_name "fbl prune" unless the conninfo says)
 *
 * Returns: (transfer full) or NULL with FBL_PG_ERROR.
 */
fbl_prune *fbl_prune_new(const char *conninfo, GError **error);
void fbl_prune_free(fbl_prune *prune);

/* One whole month that a cutoff lets go. */
typedef struct fbl_prune_month {
    char *start; /* its first instant, as the server wrote it: fbl_prune_drop_month()'s key */
    char *label; /* "2025-01" */
    guint64 partitions; /* tables with a partition for it */
    guint64 reports;    /* the reports partition's estimated rows (the planner's statistics) */
} fbl_prune_month;

void fbl_prune_month_free(fbl_prune_month *month);

/*
 * fbl_prune_list_months - the whole months that ended by @cutoff, and before
 * the current month, oldest first
 *
 * @cutoff: Unix seconds
 * @months: (out) (transfer full) fbl_prune_month *
 */
bool fbl_prune_list_months(fbl_prune *prune, gint64 cutoff, GPtrArray **months, GError **error);

/*
 * fbl_prune_drop_month - drop every table's partition of the month starting
 * at @start (fbl_prune_month.start), in one transaction
 *
 * @partitions: (out) (optional) how many were dropped
 * Returns: false with FBL_PG_ERROR; fbl_prune_error_is_busy() when its locks timed out.
 */
bool fbl_prune_drop_month(fbl_prune *prune, const char *start, guint64 *partitions, GError **error);

/* fbl_prune_error_is_busy - a lock timeout or a deadlock: worth another try after a pause */
bool fbl_prune_error_is_busy(const GError *error);

/*
 * fbl_prune_defaults - delete the rows delivered before @cutoff from the
 * DEFAULT partitions (with @dry_run: count them)
 *
 * @rows: (out) rows deleted, or that would be
 */
bool fbl_prune_defaults(fbl_prune *prune, gint64 cutoff, bool dry_run, guint64 *rows,
                        GError **error);

/*
 * fbl_prune_raw_partitions - the partitions of fbl.mails that hold mail
 * delivered before @cutoff and are not dropped by a cutoff of @keep_cutoff
 * (they end after it; 0: nothing is dropped), and the DEFAULT partition
 *
 * @partitions: (out) (transfer full) their names, by name
 */
bool fbl_prune_raw_partitions(fbl_prune *prune, gint64 cutoff, gint64 keep_cutoff,
                              GStrv *partitions, GError **error);

/*
 * fbl_prune_clear_raw - clear the raw mail delivered before @cutoff in the
 * partition @partition of fbl.mails, then vacuum it when it cleared any
 * (with @dry_run: count them, change nothing)
 *
 * @mails: (out) mails cleared, or that would be
 */
bool fbl_prune_clear_raw(fbl_prune *prune, const char *partition, gint64 cutoff, bool dry_run,
                         guint64 *mails, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_prune, fbl_prune_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_prune_month, fbl_prune_month_free)

#endif /* FBL_PRUNE_H */
