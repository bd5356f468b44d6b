/*
 * batch.h - what the sink writes in one transaction: whole mails, each with
 * its reports or its reject, and its raw bytes
 *
 * Layer: sink/. Plain data, no I/O; one owner at a time (the sink loop
 * fills a batch, the writer reads it, the loop frees it).
 *
 * Bounds: the caller stops adding at its configured mail count or bytes
 * (sink.batch_max_mails, sink.batch_max_bytes); fbl_batch_bytes() says where
 * a batch stands.
 */
#ifndef FBL_BATCH_H
#define FBL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "parsers/report.h"

/* One mail as the watcher sent it. */
typedef struct fbl_sink_mail {
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    char *mailbox;
    int64_t received_at; /* delivery time, seconds since the epoch; stable per mail */
    int64_t size;        /* bytes of the raw mail */
    GBytes *raw;         /* the raw mail; for a too_large reject only its start (or NULL) */
    GPtrArray *reports;  /* fbl_report *, may be empty */
    fbl_reject *reject;  /* non-NULL iff reports is empty */
} fbl_sink_mail;

/* fbl_sink_mail_new - an empty mail; fields are filled by the caller */
fbl_sink_mail *fbl_sink_mail_new(void);
void fbl_sink_mail_free(fbl_sink_mail *mail);

typedef struct fbl_batch fbl_batch;

fbl_batch *fbl_batch_new(void);
void fbl_batch_free(fbl_batch *batch);

/* fbl_batch_add - append @mail (transfer full) */
void fbl_batch_add(fbl_batch *batch, fbl_sink_mail *mail);

guint fbl_batch_mails(const fbl_batch *batch);
guint fbl_batch_reports(const fbl_batch *batch);
size_t fbl_batch_bytes(const fbl_batch *batch); /* raw bytes plus an estimate of the rest */

/* fbl_batch_get - (transfer none) the @i-th mail, in the order added */
const fbl_sink_mail *fbl_batch_get(const fbl_batch *batch, guint i);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_sink_mail, fbl_sink_mail_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_batch, fbl_batch_free)

#endif /* FBL_BATCH_H */
