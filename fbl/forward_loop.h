/*
 * forward_loop.h - the vendor feed uploader: outbox rows -> vendors' APIs
 *
 * Layer: fbl/. One fbl_forward_loop runs in one thread (in `fbl forward`, or
 * beside the watcher and the sink in `fbl run`); several forwarders, on one
 * machine or many, share the work through the outbox (FOR UPDATE SKIP LOCKED).
 *
 * Every [vendor:NAME] of the configuration is fed from its own outbox rows:
 * due rows are taken in batches, sent with libcurl through the vendor's
 * adapter (sink/), and marked sent in the same transaction that took them.
 * Retries, Retry-After, splitting of refused batches, dead letters and
 * redaction are the forwarder's; the per-reporter limits are the store's
 * (schema 004, 006: a limited report gets no pending outbox row).
 * It never blocks ingestion: it only reads and updates the outbox.
 */
#ifndef FBL_FORWARD_LOOP_H
#define FBL_FORWARD_LOOP_H

#include <stdbool.h>
#include <stdio.h>

#include <glib.h>

#include "fbl/config.h"

typedef struct fbl_forward_loop fbl_forward_loop;

/*
 * fbl_forward_loop_new - check every [vendor:NAME] section and prepare its
 * adapter; PostgreSQL is connected in the loop
 *
 * Returns: (transfer full) or NULL with FBL_CONFIG_ERROR naming the vendor and key.
 */
fbl_forward_loop *fbl_forward_loop_new(const fbl_config *config, GError **error);
void fbl_forward_loop_free(fbl_forward_loop *loop);

/* fbl_forward_loop_run - until fbl_daemon_stopping(); false only when it cannot go on */
bool fbl_forward_loop_run(fbl_forward_loop *loop, GError **error);

/*
 * fbl_forward_status - `fbl forward --status`: per vendor, rows pending,
 * sent, dead and limited, and the lag (age of the oldest pending row)
 *
 * Returns: a sysexits code.
 */
int fbl_forward_status(const fbl_config *config, FILE *out);

/*
 * fbl_forward_retry_dead - `fbl forward --retry-dead [VENDOR]`: dead letters
 * become pending again (attempts reset)
 *
 * @vendor: (nullable) one vendor, or all
 * Returns: a sysexits code.
 */
int fbl_forward_retry_dead(const fbl_config *config, const char *vendor, FILE *out);

/*
 * fbl_forward_backfill - `fbl forward --backfill --vendor NAME --since T
 * [--until T]`: give @vendor (configured after reports were stored) outbox
 * rows for the stored reports delivered in [@since, @until), step by step
 * (sink/outbox.h: idempotent, a report's existing row is kept; copies get
 * 'duplicate', rate-limited reports 'limited'). Prints a progress line every
 * few seconds on long runs, then a summary (rows added, already there).
 *
 * @since, @until: (nullable) as fbl_time_arg_parse() takes them; @since is required
 * Returns: a sysexits code (64: no vendor, an unknown one or no --since).
 */
int fbl_forward_backfill(const fbl_config *config, const char *vendor, const char *since,
                         const char *until, FILE *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_forward_loop, fbl_forward_loop_free)

#endif /* FBL_FORWARD_LOOP_H */
