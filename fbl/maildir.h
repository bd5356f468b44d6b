/*
 * maildir.h - the Maildir as fbl's queue: list new/ and cur/, retire to cur/,
 * and fbl's index of the mails the sinks committed
 *
 * Layer: fbl/. Blocking file-system calls. The listing and retiring functions
 * keep no state; an fbl_maildir_index belongs to one thread.
 *
 * The MTA delivers into tmp/ and renames (or links) into new/ (the Maildir
 * contract); fbl reads new/ and, once the sink has committed a mail, renames
 * it to cur/NAME:2,S - the standard "seen" state. A crash between the commit
 * and the rename only means the mail is sent again and acknowledged again.
 * fbl never deletes a mail, and never renames one that is in cur/.
 *
 * Others move mails too: an IMAP server (Dovecot) renames new/NAME to
 * cur/NAME:2, as soon as a client selects the folder, and renames it again
 * for every flag a user sets. So where a mail sits says nothing about whether
 * fbl stored it. The index does: FBL_MAILDIR_INDEX_FILE in the Maildir's root
 * holds one line per committed mail, the unique part of its file name (what
 * comes before the ':' of the info, ":2,FLAGS"; escaped as g_strescape()
 * does), which no rename by a Maildir reader changes.
 *
 * Why an index file, and not the store or a flag: the watcher never talks to
 * PostgreSQL (one job per process), so it cannot ask the store; and a Maildir
 * flag of fbl's own would have fbl rename files in cur/ that users and their
 * IMAP server rename at the same time, and lives only as long as every client
 * keeps letters it does not know (Dovecot keeps unknown upper-case flags, but
 * reads lower-case letters as its keywords, and other readers drop what they
 * do not know). The index is fbl's alone, and a reader can do anything to
 * the mails.
 *
 * The file is appended to with one write() and one fsync() per burst of acks,
 * under flock(LOCK_EX): watchers of one Maildir on one host share it. It is
 * compacted (rewritten to a temporary file, fsync'd, renamed over) when it is
 * opened and when it holds more than twice as many lines as cur/ holds mails
 * (FBL_MAILDIR_INDEX_MIN_LINES at least): the names of mails no longer in new/
 * or cur/ (deleted by a user) are dropped. Memory: the names are held in a hash
 * table, about 100 bytes per mail kept in cur/.
 *
 * XXX: a file whose name is renamed inside cur/ while a compaction lists cur/
 * may be missed by readdir(); its name then leaves the index, and the next
 * listing reads that mail once more (a second send costs work, not rows: the
 * store is idempotent on the mail's hash).
 * XXX: two files whose names share the part before ':' are one mail to fbl; the
 * Maildir contract makes that part unique.
 */
#ifndef FBL_MAILDIR_H
#define FBL_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

/* fbl's index of committed mails, in the Maildir's root (hidden from Maildir readers). */
#define FBL_MAILDIR_INDEX_FILE ".fbl-committed"
/* Below this many lines the index is never compacted while it runs. */
#define FBL_MAILDIR_INDEX_MIN_LINES 1024

/*
 * fbl_maildir_check - @path has tmp/, new/ and cur/
 *
 * @create: make missing tmp/, new/ and cur/ (for sample and test mailboxes)
 */
bool fbl_maildir_check(const char *path, bool create, GError **error);

/* A filter for fbl_maildir_list(): whether to keep @name. */
typedef bool (*fbl_maildir_keep)(const char *name, void *data);

/*
 * fbl_maildir_list - the file names in @path/@sub that @keep keeps (all when
 * NULL), sorted (oldest first, as Maildir names start with the delivery
 * time), hidden files skipped
 *
 * @total: (out) (optional) how many names @sub holds, kept or not
 * Returns: (transfer full) char * names, or NULL with a G_FILE_ERROR.
 */
GPtrArray *fbl_maildir_list(const char *path, const char *sub, fbl_maildir_keep keep, void *data,
                            guint *total, GError **error);

/* fbl_maildir_list_new - fbl_maildir_list(@path, "new", NULL, NULL, NULL, @error) */
GPtrArray *fbl_maildir_list_new(const char *path, GError **error);

/*
 * fbl_maildir_unique_len - the length of @name's unique part: all of it up to
 * the first ':' (the info that readers change), or all of it
 */
size_t fbl_maildir_unique_len(const char *name);

/*
 * fbl_maildir_retire - rename @path/new/@name to @path/cur/@name:2,S
 * (@name as it is when it already has a ":2," info suffix)
 *
 * Returns: true, also when new/@name is already gone (another watcher or an
 * earlier run retired it, or an IMAP server moved it); false with a
 * G_FILE_ERROR from rename(2)'s errno otherwise, e.g. NOENT when cur/ is
 * missing, NOTDIR when it is no directory, NAMETOOLONG when @name plus ":2,S"
 * is over NAME_MAX, ACCES, NOSPC, ROFS. The message names both paths and the
 * errno text.
 */
bool fbl_maildir_retire(const char *path, const char *name, GError **error);

typedef struct fbl_maildir_index fbl_maildir_index;

/*
 * fbl_maildir_index_open - open (and compact) the index of the Maildir @path,
 * or create it
 *
 * When the Maildir has no index yet, every mail in cur/ is taken as committed
 * (an fbl without the index moved only stored mails to cur/): the index is
 * created holding their names, so they are not read again. A mail that an
 * IMAP server moved to cur/ before that is then never read; an empty index
 * file made before the first start has fbl read all of cur/ instead.
 *
 * @adopted: (out) -1 when the index existed; else the number of names from
 *   cur/ it was created with
 * Returns: (transfer full) or NULL with a G_FILE_ERROR (the Maildir's root must
 *   be writable by fbl).
 */
fbl_maildir_index *fbl_maildir_index_open(const char *path, int *adopted, GError **error);
void fbl_maildir_index_free(fbl_maildir_index *ix);

/* fbl_maildir_index_has - the mail named @name (in new/ or cur/, any info) is committed */
bool fbl_maildir_index_has(const fbl_maildir_index *ix, const char *name);

/* fbl_maildir_index_size - the names held */
guint fbl_maildir_index_size(const fbl_maildir_index *ix);

/*
 * fbl_maildir_index_refresh - take in what other processes appended (or
 * their compaction rewrote) since the last look; cheap when nothing changed
 *
 * Returns: false with a G_FILE_ERROR when the file cannot be read; the names
 * held stay as they were.
 */
bool fbl_maildir_index_refresh(fbl_maildir_index *ix, GError **error);

/*
 * fbl_maildir_index_add - mark @n mails (file names, any info) committed:
 * held at once, and appended to the file in one write, then fsync'd
 *
 * @names: (transfer none) file names in new/ or cur/
 * Returns: false with a G_FILE_ERROR when the file could not be written or
 * synced; the names are held all the same (they are committed: only a run
 * after a restart may read them again).
 */
bool fbl_maildir_index_add(fbl_maildir_index *ix, const char *const *names, guint n,
                           GError **error);

/* fbl_maildir_index_note_cur - cur/ holds @names mails now (the compaction threshold) */
void fbl_maildir_index_note_cur(fbl_maildir_index *ix, guint names);

/* fbl_maildir_index_compact_due - the file holds over twice the lines cur/ holds mails */
bool fbl_maildir_index_compact_due(const fbl_maildir_index *ix);

/*
 * fbl_maildir_index_compact - rewrite the index with only the names of
 * mails still in new/ or cur/, and hold only those
 *
 * Returns: false with a G_FILE_ERROR; the old file and names stay then.
 */
bool fbl_maildir_index_compact(fbl_maildir_index *ix, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_maildir_index, fbl_maildir_index_free)

#endif /* FBL_MAILDIR_H */
