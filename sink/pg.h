/*
 * pg.h - the PostgreSQL store: migrations, idempotent batch writes, reparse
 *
 * Layer: sink/. Blocking libpq I/O. One fbl_pg is one connection, used by
 * one thread at a time. Logs through g_log domain "fbl-pg".
 *
 * Objects live in the schema "fbl" (DESIGN.md): fbl.mails (one row per mail:
 * mail_id, received_at, mailbox, size, raw bytes), fbl.reports (one row per
 * report, contract columns plus a jsonb copy of the document), its children
 * fbl.report_urls, fbl.report_hops, fbl.report_dkim, fbl.report_attachments
 * (shapes analysts query), fbl.rejects, and fbl.vendor_outbox (one row per
 * report and configured vendor). All are partitioned by month on the mail's
 * received_at, which is the same on every redelivery of a mail, so the
 * (received_at, id) keys make every write idempotent across partitions.
 *
 * Writes: fbl_pg_write_batch() writes a whole batch in ONE transaction
 * (COPY into temporary staging tables, then INSERT … SELECT … ON CONFLICT DO
 * NOTHING into the partitioned tables); a mail already stored adds nothing,
 * so redelivery after a crash is harmless.
 *
 * Errors (FBL_PG_ERROR, sink/pgconn.h: the class as the code, the SQLSTATE
 * beside it): a transient one (a lost connection, a busy server) keeps the
 * batch - reconnect, retry with backoff; the next call reconnects by itself.
 * The permanent ones are FBL_PG_ERROR_DATA (bad data, or a value over a
 * limit), _PRIVILEGE, _SCHEMA and _OTHER. A batch refused for its data
 * (FBL_PG_ERROR_DATA) is written again mail by mail, and a mail that still
 * fails is stored as a reject with reason "store_error" (its raw bytes
 * kept, the error in its detail), so one bad mail never blocks the rest.
 *
 * Partitions: the writer makes the UTC months a batch needs, and the month
 * after each, with fbl.create_month_partitions() in a short transaction of
 * its own before the batch's, and remembers per connection what it made.
 *
 * Files, one job each, sharing sink/pg_internal.h: pg.c (the session, the
 * partitions, the write path), pg_migrate.c (migrations), pg_stage.c (binary
 * COPY into the staging tables, and the store transaction), pg_reparse.c
 * (the reparse driver); the connection and its errors are sink/pgconn.h.
 */
#ifndef FBL_PG_H
#define FBL_PG_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "parsers/parse.h"
#include "sink/batch.h"
#include "sink/pgconn.h"

typedef struct fbl_pg_options {
    const char *conninfo;       /* anything libpq takes */
    const char *const *vendors; /* NULL-terminated vendor names: one outbox row each */
    bool store_raw;             /* keep raw mail bytes in fbl.mails (default true) */
    /* [limits] reports_per_reporter_per_hour, when set_reporter_limit: a reporter's
     * reports beyond it within an hour are stored flagged rate_limited, outbox rows
     * 'limited' (schema 004); 0: no limit. Unset: the database's setting
     * fbl.reports_per_reporter_per_hour, else 1000. */
    bool set_reporter_limit;
    unsigned reports_per_reporter_per_hour;
} fbl_pg_options;

/*
 * fbl_pg_set_exempt_reporters - [limits] exempt_reporters: reporters never
 * rate limited (schema 006, fbl.reporter_exempt), for every fbl_pg made from
 * now on with set_reporter_limit; process-wide, like the configuration it
 * comes from. Never called: the database's setting fbl.exempt_reporters.
 *
 * @patterns: (transfer none) (nullable) NULL-terminated: addresses, domains,
 *   "*.example.com"
 */
void fbl_pg_set_exempt_reporters(const char *const *patterns);

typedef struct fbl_pg fbl_pg;

/*
 * fbl_pg_new - connect (application_name "fbl" unless the conninfo says,
 * connect_timeout 10 s unless it says, client_encoding UTF8 always)
 *
 * Returns: (transfer full) or NULL with FBL_PG_ERROR_CONNECT, or with
 *   FBL_PG_ERROR_OTHER when @conninfo does not parse.
 */
fbl_pg *fbl_pg_new(const fbl_pg_options *options, GError **error);
void fbl_pg_free(fbl_pg *pg);

/*
 * fbl_pg_migrate - apply the numbered migrations in schema/ that are not yet
 * applied, each in its own transaction, under an advisory lock so several
 * sinks starting at once apply each exactly once.
 *
 * Before it applies any, it checks what the migrations need of the cluster
 * that a database owner cannot do itself: the roles fbl_analyst and
 * fbl_writer (schema 005) must exist, or the connected role must be allowed
 * to create them (CREATEROLE). The error then names the missing roles and
 * gives the SQL a superuser runs: "CREATE ROLE fbl_analyst NOLOGIN; ...".
 *
 * @applied: (out) (optional) how many were applied now
 * Returns: false with a transient error; FBL_PG_ERROR_PRIVILEGE when a role
 *   is missing or the connected role lacks a right (a migration's 42501: the
 *   message says the database must be owned by the role, createdb -O); or
 *   FBL_PG_ERROR_SCHEMA when a migration failed otherwise (it is rolled back;
 *   the ones before it stay applied).
 */
bool fbl_pg_migrate(fbl_pg *pg, unsigned *applied, GError **error);

/* fbl_pg_rollup_step - told the hour the rollups are whole from after each step */
typedef void (*fbl_pg_rollup_step)(const char *complete_since, void *data);

/*
 * fbl_pg_rollup_backfill - roll up the reports stored before the hourly
 * rollups existed (schema 012), a day per transaction, newest first, until
 * none is left: fbl.rollup_backfill() until it returns NULL. Each day holds
 * only its own hours' locks for the second or so it takes, so sinks go on
 * storing; stopped at any point, the next call goes on from there.
 *
 * @step: (nullable) called after each day with the new fbl.rollup_state
 *   complete_since (PostgreSQL's text)
 * Returns: false with FBL_PG_ERROR (the days before stay done).
 */
bool fbl_pg_rollup_backfill(fbl_pg *pg, fbl_pg_rollup_step step, void *data, GError **error);

/*
 * fbl_pg_rollup_pending - whether stored reports still wait for
 * fbl_pg_rollup_backfill() (the analyst functions then read those reports
 * themselves: right, but slower)
 *
 * @complete_since: (out) (optional) (transfer full) where the rollups begin,
 *   when some are pending
 */
bool fbl_pg_rollup_pending(fbl_pg *pg, bool *pending, char **complete_since, GError **error);

/* fbl_pg_write_batch - store @batch in one transaction (idempotent; see above) */
bool fbl_pg_write_batch(fbl_pg *pg, const fbl_batch *batch, GError **error);

/* Per-mailbox defaults (feedback type, raw) by the mailbox name stored with a mail. */
typedef const fbl_mail_meta *(*fbl_pg_defaults_fn)(const char *mailbox, void *data);

/* Progress: @done of @total mails. */
typedef void (*fbl_pg_progress_fn)(guint64 done, guint64 total, void *data);

/* What fbl_pg_reparse() does; zeroed fields are the defaults. */
typedef struct fbl_pg_reparse_options {
    const fbl_parser *parser; /* today's parsers */
    /* Delivery-time range, seconds since the epoch, since <= received_at < until;
     * 0 = open. */
    int64_t since, until;
    unsigned batch_size; /* mails per transaction; 0: 1 */
    /* (nullable) NULL or an unknown name: abuse, not raw. The result's mailbox
     * and received_at are replaced by the stored ones. */
    fbl_pg_defaults_fn defaults;
    void *defaults_data;
    fbl_pg_progress_fn progress; /* (nullable) called after each transaction */
    void *progress_data;
} fbl_pg_reparse_options;

/*
 * fbl_pg_reparse - run today's parsers over stored raw mail and replace the
 * reports and rejects of each mail in place, mail by mail in transactions of
 * up to batch_size mails; idempotent (a second run changes nothing)
 *
 * Mails without raw bytes are skipped, and so are too_large mails, whose raw
 * is only their start (raw_complete false).
 *
 * @changed: (out) (optional) mails whose documents changed
 *
 * Rows stay under the stored mail_id (report ids derive from it). New report
 * ids get outbox rows; pending outbox rows of report ids that are gone are
 * dropped. A mail whose new rows PostgreSQL refuses keeps its old ones (a
 * warning names it). Memory: one raw mail and batch_size parse results.
 */
bool fbl_pg_reparse(fbl_pg *pg, const fbl_pg_reparse_options *options, guint64 *changed,
                    GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_pg, fbl_pg_free)

#endif /* FBL_PG_H */
