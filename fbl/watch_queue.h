/*
 * watch_queue.h - the files the watcher knows by name, and the names waiting to be read
 *
 * Layer: fbl/. Used by the watcher (watch.h) from its thread only (not
 * thread-safe). I/O: lstat(2) of skipped names only.
 *
 * A file is known by its mailbox and the unique part of its name (before
 * ':'), which stays the same when an IMAP server moves it from new/ to cur/
 * and whenever a user's flag renames it there: a known file that moves is
 * followed to its new name (fbl_watch_queue_follow()), never read twice.
 * It stays known while it waits (pending), settles, is in flight or awaits
 * its rename to cur/, until the watcher forgets it (fbl_watch_queue_forget()).
 *
 * Names that are not regular files are remembered by name and inode
 * (fbl_watch_queue_skip()): left alone while the same inode holds the name,
 * forgotten once a listing no longer finds them.
 *
 * Bounds: at most @max_names names wait (pending and settling); a name that
 * finds the queue full stays in its directory, which is marked to be listed
 * again once the queue is down to half (fbl_watch_queue_wants_listing()).
 * So a backlog of any size costs the same memory: only names are held.
 */
#ifndef FBL_WATCH_QUEUE_H
#define FBL_WATCH_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <glib.h>

#include "fbl/maildir_arrival.h"
#include "parsers/report.h"

/* The watcher's mailbox: opaque here, carried for the watcher. */
typedef struct fbl_watch_box fbl_watch_box;

/* One file the watcher follows, from its listing to its rename to cur/. */
typedef struct fbl_watch_file {
    fbl_watch_box *box; /* (transfer none) its mailbox */
    int box_id;         /* names the mailbox in keys */
    char *name;         /* file name in new/ or, when in_cur, cur/ */
    bool in_cur;        /* moved out of new/ by another program (an IMAP server) */
    bool complete;      /* its writer is done: renamed into place, closed, or linked from tmp/ */
    fbl_maildir_settle settle; /* a young file, maybe still being written */
    int64_t due;               /* settling: look again; unretired: try the rename again */
    /* Read (empty when committed before this run); stored, not moved to cur/ yet. */
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    unsigned retire_failures;
    char *retire_error; /* the last failure's message */
} fbl_watch_file;

/* fbl_watch_file_free - free @f and its members (it must be forgotten or its queue freed) */
void fbl_watch_file_free(fbl_watch_file *f);

typedef struct fbl_watch_queue fbl_watch_queue;

/* fbl_watch_queue_new - Returns: (transfer full) an empty queue holding at most @max_names */
fbl_watch_queue *fbl_watch_queue_new(unsigned max_names);

/* fbl_watch_queue_free - frees the waiting files too; the others are their holders' to free */
void fbl_watch_queue_free(fbl_watch_queue *q);

/*
 * fbl_watch_queue_lookup - the known file of mailbox @box_id whose name has
 * @name's unique part
 *
 * Returns: (transfer none) (nullable)
 */
fbl_watch_file *fbl_watch_queue_lookup(fbl_watch_queue *q, int box_id, const char *name);

/*
 * fbl_watch_queue_follow - @f's file is now @name in new/ or cur/ (@in_cur)
 *
 * Returns: true when it has just moved from new/ to cur/.
 */
bool fbl_watch_queue_follow(fbl_watch_file *f, bool in_cur, const char *name);

/*
 * fbl_watch_queue_add - a new name to read, at the tail
 *
 * Returns: (transfer none) (nullable) the known file, waiting; NULL when
 *   the queue is full: the name stays in its directory, marked to be listed
 *   again.
 */
fbl_watch_file *fbl_watch_queue_add(fbl_watch_queue *q, fbl_watch_box *box, int box_id, bool in_cur,
                                    const char *name);

/*
 * fbl_watch_queue_track - a known file that is not to be read (committed
 * already: only its rename to cur/ is due); not bounded
 *
 * Returns: (transfer full) the file, known until forgotten.
 */
fbl_watch_file *fbl_watch_queue_track(fbl_watch_queue *q, fbl_watch_box *box, int box_id,
                                      const char *name);

/* fbl_watch_queue_forget - @f is no longer known, and freed (it must not be waiting) */
void fbl_watch_queue_forget(fbl_watch_queue *q, fbl_watch_file *f);

/*
 * fbl_watch_queue_pop - the next file to read, or NULL
 *
 * Returns: (transfer full) (nullable) still known; hand it back with
 *   fbl_watch_queue_wait(), or forget it when done.
 */
fbl_watch_file *fbl_watch_queue_pop(fbl_watch_queue *q);

/* fbl_watch_queue_wait - (transfer full) @f is young: it waits until it settles or is due */
void fbl_watch_queue_wait(fbl_watch_queue *q, fbl_watch_file *f);

/* fbl_watch_queue_settle_due - waiting files that are complete or due by @now_ms go first */
void fbl_watch_queue_settle_due(fbl_watch_queue *q, int64_t now_ms);

/* fbl_watch_queue_settle_wake - the earliest due of the waiting files, or INT64_MAX */
int64_t fbl_watch_queue_settle_wake(const fbl_watch_queue *q);

/* fbl_watch_queue_names - how many names wait: to read and settling */
unsigned fbl_watch_queue_names(const fbl_watch_queue *q);

/* fbl_watch_queue_has_pending - whether a name is ready to be read */
bool fbl_watch_queue_has_pending(const fbl_watch_queue *q);

/*
 * fbl_watch_queue_wants_listing - whether names were left out of a full
 * queue and it is down to half: list new/ (@in_new) and cur/ (@in_cur) again
 */
bool fbl_watch_queue_wants_listing(const fbl_watch_queue *q, bool *in_new, bool *in_cur);

/* fbl_watch_queue_listed - new/ (@in_new) and cur/ (@in_cur) are being listed in full */
void fbl_watch_queue_listed(fbl_watch_queue *q, bool in_new, bool in_cur);

/*
 * fbl_watch_queue_is_skipped - whether @maildir's @name in new/ or cur/ is
 * the very file skipped before; a file that replaced it under the same name
 * (another inode) is looked at anew, and the old one forgotten
 */
bool fbl_watch_queue_is_skipped(fbl_watch_queue *q, int box_id, const char *maildir, bool in_cur,
                                const char *name);

/* fbl_watch_queue_skip - @f is not a regular file (@st): remember it, forget and free @f */
void fbl_watch_queue_skip(fbl_watch_queue *q, fbl_watch_file *f, const struct stat *st);

/*
 * fbl_watch_queue_prune_skipped - forget the skipped names of mailbox
 * @box_id no longer in its new/ or cur/ (@in_cur)
 *
 * @names: the names the directory holds, sorted (strcmp).
 */
void fbl_watch_queue_prune_skipped(fbl_watch_queue *q, int box_id, bool in_cur,
                                   const GPtrArray *names);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_watch_queue, fbl_watch_queue_free)

#endif /* FBL_WATCH_QUEUE_H */
