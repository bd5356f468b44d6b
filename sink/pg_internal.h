/*
 * pg_internal.h - what the store's files share: the session (pg.c), the
 * migrations (pg_migrate.c), the staging and its transaction (pg_stage.c)
 * and the reparse driver (pg_reparse.c)
 *
 * Layer: sink/, private to the pg*.c files. Blocking libpq I/O on the
 * session's connection, one thread at a time (pg.h).
 */
#ifndef FBL_PG_INTERNAL_H
#define FBL_PG_INTERNAL_H

#include <stdbool.h>

#include <glib.h>
#include <libpq-fe.h>

#include "sink/pg.h"

/* Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC). */
#define FBL_PG_EPOCH_OFFSET 946684800

/*
 * The reject reason of a mail PostgreSQL refused: the label fbl.reject_reason
 * has after parsers/report.h's reasons (schema/001_init.sql), the store's
 * own; no parser makes it and no watcher may send it.
 */
#define FBL_PG_REJECT_STORE_ERROR "store_error"

struct fbl_pg {
    PGconn *conn;
    char *vendors; /* the vendors as a text[] literal */
    bool store_raw;
    /* The session's fbl.reports_per_reporter_per_hour, or NULL: the database's. */
    char *reporter_limit;
    /* The session's fbl.exempt_reporters, or NULL: the database's (with reporter_limit). */
    char *exempt_reporters;
    bool staging;       /* this connection has its staging tables */
    GHashTable *months; /* month start (gint64 seconds) -> present: partitions made */
};

/* fbl_pg_ensure_connected - reconnect when the last call lost the connection (pg.c) */
bool fbl_pg_ensure_connected(fbl_pg *pg, GError **error);

/* fbl_pg_ensure_ready - connected, with this session's staging tables and settings (pg.c) */
bool fbl_pg_ensure_ready(fbl_pg *pg, GError **error);

/*
 * What one store transaction stages (pg_stage.c): the mails @mails
 * (fbl_sink_mail *). With @store_error set, their reports are left out and
 * each gets a store_error reject with that detail instead. With @keys_only,
 * the mails are staged as keys to replace (reparse) rather than as mails to
 * insert.
 */
typedef struct fbl_pg_staging {
    GPtrArray *mails;
    const char *store_error;
    bool keys_only;
} fbl_pg_staging;

/* What it stored: new mails, reports and rejects (write), mails changed (reparse). */
typedef struct fbl_pg_counts {
    guint64 mails, reports, rejects, changed;
} fbl_pg_counts;

/*
 * fbl_pg_store_all - stage @staging and move it into the tables in one
 * transaction; when PostgreSQL refuses it as bad data, mail by mail, each
 * mail still refused stored as a store_error reject (write) or left as it
 * was (reparse)
 *
 * @counts: (out)
 * Returns: false with an FBL_PG_ERROR that is not about the data (rolled back).
 */
bool fbl_pg_store_all(fbl_pg *pg, const fbl_pg_staging *staging, fbl_pg_counts *counts,
                      GError **error);

/* fbl_pg_result_uint - the integer in column @column of @res, row 0, or 0 (pg_stage.c) */
guint64 fbl_pg_result_uint(const PGresult *res, int column);

#endif /* FBL_PG_INTERNAL_H */
