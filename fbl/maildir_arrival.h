/*
 * maildir_arrival.h - whether a file in a Maildir's new/ is complete, and if not, when to look
 * again
 *
 * Layer: fbl/. Used by the watcher (watch.h), one fbl_maildir_arrival per
 * Maildir, called from the watcher's thread only (not thread-safe). I/O:
 * lstat(2) of names in new/ and tmp/; nothing is read, written or moved.
 *
 * The Maildir contract is that a mail is written in tmp/ and renamed into
 * new/ when done; a rename (IN_MOVED_TO) or a close after writing
 * (IN_CLOSE_WRITE) on new/ says the writer is done, and the caller passes
 * that as @complete. Two kinds of writer raise only IN_CREATE on new/:
 * - an MTA that link()s the finished mail from tmp/ into new/ and then
 *   unlinks its tmp/ name (Postfix local and virtual, qmail, maildrop): the
 *   mail is complete at once;
 * - a writer that creates the mail in new/ itself and is still writing it:
 *   read now, it would be stored truncated.
 * They are told apart by these signals:
 * - linked from tmp/ (fbl_maildir_arrival_is_linked()): the file in new/ is
 *   still linked from tmp/ too (st_nlink >= 2), or its inode is one seen
 *   created in tmp/, or a file seen closed in tmp/ is gone from tmp/ by now
 *   (or is this very inode). Postfix writes tmp/A, links new/B, unlinks
 *   tmp/A, often before the watcher has looked at tmp/A at all; one inotify
 *   queue keeps that order, so a closed tmp/ file gone by the time new/B
 *   shows up is that link. Each closed tmp/ file accounts for one link: it is
 *   forgotten once matched.
 * - changed after its last write (fbl_maildir_arrival_has_changed_after_write()):
 *   ctime past mtime. A write sets both to the same instant; link(),
 *   rename(), chmod() or the unlink() of the tmp/ name move ctime alone.
 *   MTAs link only finished files.
 * - settled (fbl_maildir_arrival_is_settled()): the file is at least the
 *   settle time old, or its size and mtime have not changed for that long
 *   (so a clock skewed into the future cannot hold it forever).
 *
 * XXX: a writer that pauses longer than the settle time in the middle of a
 * mail, without closing it, still gets it read early; only tmp/ avoids that.
 * XXX: a writer creating files directly in new/ while an MTA abandons a
 * closed file in tmp/ (its deletion not seen yet) may see one of its files
 * judged linked before it settles.
 *
 * Bounds: at most FBL_MAILDIR_ARRIVAL_MAX_TMP_FILES names remembered as
 * created and as many as closed in tmp/; more means events were missed, and
 * the set starts again empty (the mails concerned then settle instead).
 */
#ifndef FBL_MAILDIR_ARRIVAL_H
#define FBL_MAILDIR_ARRIVAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <glib.h>

#define FBL_MAILDIR_ARRIVAL_MAX_TMP_FILES 4096

/* The tmp/ tracking of one Maildir. */
typedef struct fbl_maildir_arrival fbl_maildir_arrival;

/*
 * fbl_maildir_settle - what a young file looked like, and since when; zeroed
 * storage the caller provides per file, read and written by
 * fbl_maildir_arrival_is_settled() only
 */
typedef struct fbl_maildir_settle {
    bool settling; /* looked at before and found young */
    off_t size;
    int64_t mtime_ms; /* wall clock */
    int64_t since;    /* fbl_now_ms() when size or mtime last changed */
} fbl_maildir_settle;

/*
 * fbl_maildir_arrival_new - no tmp/ file known yet
 *
 * @maildir: the Maildir's root (holding tmp/ and new/). Copied.
 * Returns: (transfer full)
 */
fbl_maildir_arrival *fbl_maildir_arrival_new(const char *maildir);
void fbl_maildir_arrival_free(fbl_maildir_arrival *a);

/*
 * fbl_maildir_arrival_tmp_event - an inotify event on tmp/, in the order the
 * queue gave it
 *
 * @mask: IN_CREATE (the inode of tmp/@name is noted, if it is still there and
 *   a regular file), IN_CLOSE_WRITE (@name noted as closed), anything else
 *   (IN_DELETE, IN_MOVED_FROM: @name has left tmp/ and is forgotten).
 * @name: a file name in tmp/.
 */
void fbl_maildir_arrival_tmp_event(fbl_maildir_arrival *a, uint32_t mask, const char *name);

/*
 * fbl_maildir_arrival_is_linked - whether new/@name was linked from tmp/ (see
 * above); a match through a closed tmp/ file consumes that file
 *
 * Returns: false too when new/@name is gone or not a regular file.
 */
bool fbl_maildir_arrival_is_linked(fbl_maildir_arrival *a, const char *name);

/* fbl_maildir_arrival_has_changed_after_write - @st (not empty) has its ctime past its mtime */
bool fbl_maildir_arrival_has_changed_after_write(const struct stat *st);

/*
 * fbl_maildir_arrival_is_settled - whether a file's writer is done with it
 *
 * @s: (inout) the file's settle state, zeroed before its first look.
 * @complete: the caller knows the writer is done (renamed into new/, closed,
 *   linked from tmp/).
 * @st: the file as just opened.
 * @settle_ms: how long a file must be old, or unchanged, to be deemed done.
 * @due_ms: (out) when false, the fbl_now_ms() at which to look again
 *   (at least 10 ms ahead); untouched when true.
 * Returns: true when @complete, changed after its last write, at least
 *   @settle_ms old by the wall clock, or unchanged in size and mtime for
 *   @settle_ms since @s first saw it so.
 */
bool fbl_maildir_arrival_is_settled(fbl_maildir_settle *s, bool complete, const struct stat *st,
                                    unsigned settle_ms, int64_t *due_ms);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_maildir_arrival, fbl_maildir_arrival_free)

#endif /* FBL_MAILDIR_ARRIVAL_H */
