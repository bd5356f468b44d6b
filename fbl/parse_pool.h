/*
 * parse_pool.h - parse mails and encode their fbl/1 messages on worker threads, in order
 *
 * Layer: fbl/. No I/O besides its wake-up descriptor (an eventfd). The
 * watcher (watch.h) reads a mail, hands it over here (fbl_parse_pool_push()),
 * and takes it back parsed, with the frames of its "mail" message (wire.h)
 * ready to send (fbl_parse_pool_pop()). The pool never sees a socket: the
 * watcher's loop owns its ZeroMQ socket, and sends.
 *
 * Threads: one thread (the owner) calls every function here; only the
 * workers run beside it. With @threads 1 there is no worker: push() parses
 * at once in the caller's thread, which is what the watcher did before the
 * pool. With more, that many workers ("fbl-parse") share the one immutable
 * fbl_parser (parse.h: one parser may serve several threads at once; GMime
 * and libxml2 are initialised once, before, by fbl_parsers_init()).
 *
 * Order: pop() gives the jobs back in the order they were pushed, whatever
 * order the workers finish them in, so the watcher sends, logs and counts
 * mails in the order it read them, as it did with one thread. A large mail
 * thus holds back the ones read after it until it is parsed (they are
 * parsed meanwhile).
 *
 * Bounds: none of its own. The pool holds what was pushed and not popped;
 * the watcher counts those mails in its window (watch.window, window_bytes)
 * from the moment it reads them.
 *
 * XXX: a parse is bounded (parse.h), so a worker cannot hang on a mail; if
 * one did, the watcher's loop would go on reporting itself alive to the
 * watchdog while that mail, and those read after it, wait.
 */
#ifndef FBL_PARSE_POOL_H
#define FBL_PARSE_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "fbl/mailfile.h"
#include "parsers/parse.h"
#include "parsers/report.h"

/* One mail through the pool: the caller fills the first part, the pool the second. */
typedef struct fbl_parse_job {
    /* in */
    fbl_mailfile mail;  /* owned by the job: fbl_parse_job_free() clears it */
    fbl_mail_meta meta; /* its strings must outlive the job */
    /* out, once popped */
    fbl_parse_result *result; /* reports or a reject */
    GPtrArray *frames;        /* GBytes *: the "mail" message (fbl_wire_encode_mail()) */
    size_t bytes;             /* of all the frames */
    bool _done;               /* the pool's: a worker finished it */
} fbl_parse_job;

/* fbl_parse_job_new - (transfer full) a job taking @mail (its data is moved, @mail cleared) */
fbl_parse_job *fbl_parse_job_new(fbl_mailfile *mail, const fbl_mail_meta *meta);
void fbl_parse_job_free(fbl_parse_job *job);

typedef struct fbl_parse_pool fbl_parse_pool;

/*
 * fbl_parse_pool_new - start @threads workers (none for 1)
 *
 * @parser: (transfer none) must outlive the pool
 * @threads: 1 or more
 * Returns: (transfer full) or NULL with a G_IO_ERROR (no eventfd).
 */
fbl_parse_pool *fbl_parse_pool_new(const fbl_parser *parser, unsigned threads, GError **error);

/* fbl_parse_pool_free - stop and join the workers (jobs not parsed yet stay so), free every job */
void fbl_parse_pool_free(fbl_parse_pool *pool);

/* fbl_parse_pool_push - @job: (transfer full) parse it (at once with one thread) */
void fbl_parse_pool_push(fbl_parse_pool *pool, fbl_parse_job *job);

/*
 * fbl_parse_pool_pop - the oldest pushed job, once it is parsed
 *
 * Returns: (transfer full) (nullable) NULL while it is still being parsed,
 *   or when nothing was pushed.
 */
fbl_parse_job *fbl_parse_pool_pop(fbl_parse_pool *pool);

/* fbl_parse_pool_pending - jobs pushed and not popped yet */
unsigned fbl_parse_pool_pending(const fbl_parse_pool *pool);

/*
 * fbl_parse_pool_fd - a descriptor that polls readable when a worker has
 * finished a job since the last fbl_parse_pool_pop(); -1 with one thread
 * (push() finishes the job itself)
 */
int fbl_parse_pool_fd(const fbl_parse_pool *pool);

/* fbl_parse_pool_threads - the workers running (0 with one thread: the caller's) */
unsigned fbl_parse_pool_threads(const fbl_parse_pool *pool);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_parse_job, fbl_parse_job_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_parse_pool, fbl_parse_pool_free)

#endif /* FBL_PARSE_POOL_H */
