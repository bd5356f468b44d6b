/*
 * forward_loop.h - the vendor feed uploader: outbox rows -> vendors' APIs
 *
 * Layer: fbl/. One fbl_forward_loop runs in one thread (in `fbl forward`, or
 * beside the watcher and the sink in `fbl run`); several forwarders, on one
 * machine or many, share the work through the outbox (leases, sink/outbox.h).
 *
 * Every [vendor:NAME] of the configuration is fed from its own outbox rows:
 * due rows are taken in batches, sent with libcurl through the vendor's
 * adapter (sink/), and marked while the lease that took them holds them.
 * Retries, Retry-After, splitting of refused batches, dead letters and
 * redaction are the forwarder's; the per-reporter limits are the store's
 * (schema 004, 006: a limited report gets no pending outbox row).
 * It never blocks ingestion: it only reads and updates the outbox.
 */
#ifndef FBL_FORWARD_LOOP_H
#define FBL_FORWARD_LOOP_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"

typedef struct fbl_forward_loop fbl_forward_loop;

/*
 * fbl_forward_loop_new - read what every [vendor:NAME] names (its secret
 * file, refused when others may read it or when it would cross the network
 * over plain http; its CA bundle; its redaction key) and prepare its adapter;
 * PostgreSQL is connected in the loop. The values themselves were checked
 * when @config was loaded. @config outlives the loop.
 *
 * Returns: (transfer full) or NULL with FBL_CONFIG_ERROR naming the file,
 *   the line, the vendor and the key.
 */
fbl_forward_loop *fbl_forward_loop_new(const fbl_config *config, GError **error);
void fbl_forward_loop_free(fbl_forward_loop *loop);

/* fbl_forward_loop_run - until fbl_daemon_stopping(); false only when it cannot go on */
bool fbl_forward_loop_run(fbl_forward_loop *loop, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_forward_loop, fbl_forward_loop_free)

#endif /* FBL_FORWARD_LOOP_H */
