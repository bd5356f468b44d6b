/* maildir.c - list new/ and cur/, retire to cur/, the index of committed mails (see maildir.h) */
#include "fbl/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

/* A line longer than this is no name fbl wrote (NAME_MAX bytes, escaped, take at
 * most four times as many): it is skipped, so a damaged index costs bounded memory. */
#define INDEX_LINE_MAX 2048
#define INDEX_CHUNK    ((size_t) 64 * 1024)
/* How often to follow compactions by other processes that replace the file
 * between our open() and our flock(), before giving up. */
#define INDEX_LOCK_TRIES 10

struct fbl_maildir_index {
    char *maildir;
    char *path;
    int fd;            /* O_RDWR | O_APPEND, on the file the path named when opened */
    off_t read_to;     /* bytes of that file taken in: up to its last whole line */
    guint lines;       /* lines in that file, repeats included */
    guint cur_names;   /* mails in cur/ at the last listing */
    GHashTable *names; /* the unique parts of committed mails' names (owned) */
};

static bool set_errno_error(GError **error, int e, const char *what, const char *path)
{
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s %s: %s", what, path,
                g_strerror(e));
    return false;
}

bool fbl_maildir_check(const char *path, bool create, GError **error)
{
    static const char *const subdirs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < G_N_ELEMENTS(subdirs); i++) {
        g_autofree char *d = g_build_filename(path, subdirs[i], NULL);
        if (g_file_test(d, G_FILE_TEST_IS_DIR))
            continue;
        if (!create) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                        "%s is not a Maildir: %s/ is missing", path, subdirs[i]);
            return false;
        }
        if (g_mkdir_with_parents(d, 0700) != 0)
            return set_errno_error(error, errno, "cannot create", d);
    }
    return true;
}

static gint by_name(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

GPtrArray *fbl_maildir_list(const char *path, const char *sub, fbl_maildir_keep keep, void *data,
                            guint *total, GError **error)
{
    g_autofree char *dir = g_build_filename(path, sub, NULL);
    GDir *d = g_dir_open(dir, 0, error);
    if (d == NULL)
        return NULL;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    guint seen = 0;
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        if (name[0] == '.')
            continue;
        seen++;
        if (keep == NULL || keep(name, data))
            g_ptr_array_add(names, g_strdup(name));
    }
    g_dir_close(d);
    /* Sorted after filtering: cur/ may hold a million names, of which few are kept. */
    g_ptr_array_sort(names, by_name);
    if (total != NULL)
        *total = seen;
    return names;
}

GPtrArray *fbl_maildir_list_new(const char *path, GError **error)
{
    return fbl_maildir_list(path, "new", NULL, NULL, NULL, error);
}

size_t fbl_maildir_unique_len(const char *name)
{
    return strcspn(name, ":");
}

bool fbl_maildir_retire(const char *path, const char *name, GError **error)
{
    g_autofree char *from = g_build_filename(path, "new", name, NULL);
    /* Keep an info suffix the MTA may have written; else mark the mail seen. */
    g_autofree char *to_name =
        strstr(name, ":2,") != NULL ? g_strdup(name) : g_strconcat(name, ":2,S", NULL);
    g_autofree char *to = g_build_filename(path, "cur", to_name, NULL);
    if (rename(from, to) == 0)
        return true;
    int e = errno;
    /* ENOENT is either the mail gone (retired by another watcher or an
     * earlier run, or moved to cur/ by an IMAP server: done) or cur/ gone
     * (not done at all): only the mail's absence from new/ tells them apart. */
    struct stat st;
    if (e == ENOENT && lstat(from, &st) != 0 && errno == ENOENT)
        return true;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot move %s to %s: %s", from,
                to, g_strerror(e));
    return false;
}

/* --- the index ------------------------------------------------------------------- */

static char *unique_dup(const char *name)
{
    return g_strndup(name, fbl_maildir_unique_len(name));
}

static GHashTable *name_set_new(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

/* close() after a failure already reported, or of a file only read. */
static void close_quietly(int fd)
{
    if (fd >= 0 && close(fd) != 0)
        g_debug("close: %s", g_strerror(errno));
}

/* Open the index file itself: never through a symlink (whoever may write the
 * Maildir's root must not make fbl append to another file), and only a regular file. */
static int index_open_fd(const char *path, GError **error)
{
    int fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        (void) set_errno_error(error, errno, "cannot open", path);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s is not a regular file", path);
        close_quietly(fd);
        return -1;
    }
    return fd;
}

static bool write_all(int fd, const char *data, size_t len, const char *path, GError **error)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return set_errno_error(error, errno, "cannot write", path);
        data += n;
        len -= (size_t) n;
    }
    return true;
}

static bool sync_fd(int fd, const char *path, GError **error)
{
    if (fsync(fd) != 0)
        return set_errno_error(error, errno, "cannot fsync", path);
    return true;
}

/* A rename into @dir is durable once the directory is synced. */
static bool sync_dir(const char *dir, GError **error)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return set_errno_error(error, errno, "cannot open", dir);
    bool ok = sync_fd(fd, dir, error);
    close_quietly(fd);
    return ok;
}

static void append_line(GString *text, const char *unique)
{
    g_autofree char *escaped = g_strescape(unique, NULL);
    g_string_append(text, escaped);
    g_string_append_c(text, '\n');
}

/* Write the names of @set into a new file @tmp (O_EXCL: never through a link left
 * there), synced. Returns: its size, or -1 with an error (@tmp removed). */
static off_t write_set(const char *tmp, GHashTable *set, GError **error)
{
    (void) g_unlink(tmp); /* a leftover of a crash */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        (void) set_errno_error(error, errno, "cannot create", tmp);
        return -1;
    }
    g_autoptr(GString) text = g_string_sized_new(INDEX_CHUNK + 1024);
    off_t size = 0;
    bool ok = true;
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, set);
    while (ok && g_hash_table_iter_next(&it, &key, NULL)) {
        append_line(text, key);
        if (text->len < INDEX_CHUNK)
            continue;
        ok = write_all(fd, text->str, text->len, tmp, error);
        size += (off_t) text->len;
        g_string_truncate(text, 0);
    }
    ok = ok && write_all(fd, text->str, text->len, tmp, error) && sync_fd(fd, tmp, error);
    size += (off_t) text->len;
    if (close(fd) != 0 && ok)
        ok = set_errno_error(error, errno, "cannot close", tmp);
    if (!ok)
        (void) g_unlink(tmp);
    return ok ? size : -1;
}

/* One line of the file: a name, or (@line NULL) a line too long to be one. */
static void take_line(fbl_maildir_index *ix, const char *line)
{
    ix->lines++;
    if (line == NULL || line[0] == '\0')
        return;
    char *name = g_strcompress(line);
    if (name[0] == '\0')
        g_free(name);
    else
        g_hash_table_add(ix->names, name);
}

typedef struct reader {
    GString *line;
    bool too_long;
} reader;

/* Take the whole lines of @buf, which ends at file offset @end; the start of an
 * unfinished last line waits in @r for the next chunk. */
static void take_chunk(fbl_maildir_index *ix, reader *r, const char *buf, size_t n, off_t end)
{
    const char *p = buf, *stop = buf + n;
    while (p < stop) {
        const char *nl = memchr(p, '\n', (size_t) (stop - p));
        size_t len = (size_t) ((nl != NULL ? nl : stop) - p);
        if (r->too_long || r->line->len + len > INDEX_LINE_MAX)
            r->too_long = true;
        else
            g_string_append_len(r->line, p, (gssize) len);
        if (nl == NULL)
            return;
        take_line(ix, r->too_long ? NULL : r->line->str);
        g_string_truncate(r->line, 0);
        r->too_long = false;
        p = nl + 1;
        ix->read_to = end - (off_t) (stop - p);
    }
}

/* Take in the file from read_to to its end. */
static bool index_read(fbl_maildir_index *ix, GError **error)
{
    g_autofree char *buf = g_malloc(INDEX_CHUNK);
    g_autoptr(GString) line = g_string_new(NULL);
    reader r = {.line = line, .too_long = false};
    off_t at = ix->read_to;
    for (;;) {
        ssize_t n = pread(ix->fd, buf, INDEX_CHUNK, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return set_errno_error(error, errno, "cannot read", ix->path);
        if (n == 0)
            return true;
        at += n;
        take_chunk(ix, &r, buf, (size_t) n, at);
    }
}

typedef enum { INDEX_SAME, INDEX_REPLACED, INDEX_GONE, INDEX_ERROR } index_state;

/* Whether the index's path still names our file (a compaction elsewhere renames a
 * new one over it); @size: (out) our file's size. */
static index_state index_current(const fbl_maildir_index *ix, off_t *size, GError **error)
{
    struct stat ours, named;
    if (fstat(ix->fd, &ours) != 0) {
        (void) set_errno_error(error, errno, "cannot stat", ix->path);
        return INDEX_ERROR;
    }
    *size = ours.st_size;
    if (lstat(ix->path, &named) != 0) {
        if (errno == ENOENT)
            return INDEX_GONE;
        (void) set_errno_error(error, errno, "cannot stat", ix->path);
        return INDEX_ERROR;
    }
    return ours.st_dev == named.st_dev && ours.st_ino == named.st_ino ? INDEX_SAME : INDEX_REPLACED;
}

/* Use @fd (transfer full), the new file of @size bytes holding @set, from now on. */
static void index_use(fbl_maildir_index *ix, int fd, off_t size, GHashTable *set)
{
    close_quietly(ix->fd); /* also releases our lock on the old file */
    ix->fd = fd;
    ix->read_to = size;
    ix->lines = g_hash_table_size(set);
    if (set != ix->names) {
        g_hash_table_unref(ix->names);
        ix->names = g_hash_table_ref(set);
    }
}

/* Replace the file by one holding @set (write, fsync, rename, fsync the root). */
static bool index_replace(fbl_maildir_index *ix, GHashTable *set, GError **error)
{
    g_autofree char *tmp = g_strconcat(ix->path, ".new", NULL);
    off_t size = write_set(tmp, set, error);
    if (size < 0)
        return false;
    if (rename(tmp, ix->path) != 0) {
        int e = errno;
        (void) g_unlink(tmp);
        return set_errno_error(error, e, "cannot rename to", ix->path);
    }
    int fd = index_open_fd(ix->path, error);
    if (fd < 0 || !sync_dir(ix->maildir, error)) {
        close_quietly(fd);
        return false;
    }
    index_use(ix, fd, size, set);
    return true;
}

/* Follow a file another process put in place: open it and take in all of it
 * (the names held stay: what was committed stays committed). */
static bool index_reopen(fbl_maildir_index *ix, GError **error)
{
    int fd = index_open_fd(ix->path, error);
    if (fd < 0)
        return false;
    close_quietly(ix->fd);
    ix->fd = fd;
    ix->read_to = 0;
    ix->lines = 0;
    return index_read(ix, error);
}

static void index_unlock(const fbl_maildir_index *ix)
{
    if (flock(ix->fd, LOCK_UN) != 0)
        g_debug("unlock %s: %s", ix->path, g_strerror(errno));
}

/*
 * Lock (LOCK_EX) the file the index's path names, and take in what others
 * appended. A compaction elsewhere may have renamed a new file over ours
 * before we got the lock: then follow it and lock that one. A file removed by
 * hand is made again from the names held.
 */
static bool index_lock(fbl_maildir_index *ix, GError **error)
{
    for (int i = 0; i < INDEX_LOCK_TRIES; i++) {
        if (flock(ix->fd, LOCK_EX) != 0)
            return set_errno_error(error, errno, "cannot lock", ix->path);
        off_t size = 0;
        index_state state = index_current(ix, &size, error);
        if (state == INDEX_SAME && index_read(ix, error))
            return true;
        index_unlock(ix);
        if (state == INDEX_SAME || state == INDEX_ERROR)
            return false;
        bool ok =
            state == INDEX_GONE ? index_replace(ix, ix->names, error) : index_reopen(ix, error);
        if (!ok)
            return false;
    }
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_AGAIN, "cannot lock %s: replaced %d times",
                ix->path, INDEX_LOCK_TRIES);
    return false;
}

bool fbl_maildir_index_add(fbl_maildir_index *ix, const char *const *names, guint n, GError **error)
{
    if (n == 0)
        return true;
    g_autoptr(GString) text = g_string_new(NULL);
    for (guint i = 0; i < n; i++) {
        char *unique = unique_dup(names[i]);
        append_line(text, unique);
        g_hash_table_add(ix->names, unique); /* held even if the write fails */
    }
    if (!index_lock(ix, error))
        return false;
    off_t size = 0;
    bool ok = index_current(ix, &size, error) != INDEX_ERROR;
    /* A line cut short by a crash must not swallow our first name. */
    bool torn = ok && size > ix->read_to;
    if (torn)
        g_string_prepend_c(text, '\n');
    ok = ok && write_all(ix->fd, text->str, text->len, ix->path, error) &&
         sync_fd(ix->fd, ix->path, error);
    if (ok) {
        /* Our lines are taken in already: the next read starts past them. */
        ix->read_to = size + (off_t) text->len;
        ix->lines += n + torn;
    }
    index_unlock(ix);
    return ok;
}

bool fbl_maildir_index_refresh(fbl_maildir_index *ix, GError **error)
{
    off_t size = 0;
    switch (index_current(ix, &size, error)) {
    case INDEX_SAME:
        return size <= ix->read_to || index_read(ix, error);
    case INDEX_REPLACED:
        return index_reopen(ix, error);
    case INDEX_GONE:
        return true; /* made again at the next add */
    case INDEX_ERROR:
    default:
        return false;
    }
}

static bool keep_committed(const char *name, void *data)
{
    return fbl_maildir_index_has(data, name);
}

/* Add to @set the unique parts of the committed names in @sub. */
static bool collect_present(fbl_maildir_index *ix, const char *sub, GHashTable *set, guint *total,
                            GError **error)
{
    g_autoptr(GPtrArray) names =
        fbl_maildir_list(ix->maildir, sub, keep_committed, ix, total, error);
    if (names == NULL)
        return false;
    for (guint i = 0; i < names->len; i++)
        g_hash_table_add(set, unique_dup(g_ptr_array_index(names, i)));
    return true;
}

bool fbl_maildir_index_compact(fbl_maildir_index *ix, GError **error)
{
    if (!index_lock(ix, error))
        return false;
    /* new/ before cur/: a mail moving from one to the other meanwhile is found in cur/. */
    g_autoptr(GHashTable) kept = name_set_new();
    guint in_cur = 0;
    bool ok = collect_present(ix, "new", kept, NULL, error) &&
              collect_present(ix, "cur", kept, &in_cur, error);
    if (ok)
        ix->cur_names = in_cur;
    /* On success the old file, with our lock, is closed. */
    if (!ok || !index_replace(ix, kept, error)) {
        index_unlock(ix);
        return false;
    }
    return true;
}

/* A Maildir without an index: every mail in cur/ is taken as committed. The file
 * appears whole or not at all (link() of a finished file), and when another
 * watcher made it first, theirs is used. */
static bool index_adopt(fbl_maildir_index *ix, int *adopted, GError **error)
{
    g_autoptr(GPtrArray) cur = fbl_maildir_list(ix->maildir, "cur", NULL, NULL, NULL, error);
    if (cur == NULL)
        return false;
    g_autoptr(GHashTable) set = name_set_new();
    for (guint i = 0; i < cur->len; i++)
        g_hash_table_add(set, unique_dup(g_ptr_array_index(cur, i)));
    g_autofree char *tmp = g_strdup_printf("%s.%ld", ix->path, (long) getpid());
    if (write_set(tmp, set, error) < 0)
        return false;
    int e = link(tmp, ix->path) == 0 ? 0 : errno;
    (void) g_unlink(tmp);
    if (e != 0 && e != EEXIST)
        return set_errno_error(error, e, "cannot create", ix->path);
    if (e == 0)
        *adopted = (int) MIN(g_hash_table_size(set), (guint) G_MAXINT);
    return sync_dir(ix->maildir, error);
}

fbl_maildir_index *fbl_maildir_index_open(const char *path, int *adopted, GError **error)
{
    fbl_maildir_index *ix = g_new0(fbl_maildir_index, 1);
    ix->fd = -1;
    ix->maildir = g_strdup(path);
    ix->path = g_build_filename(path, FBL_MAILDIR_INDEX_FILE, NULL);
    ix->names = name_set_new();
    *adopted = -1;
    struct stat st;
    bool ok = lstat(ix->path, &st) == 0 || errno != ENOENT || index_adopt(ix, adopted, error);
    if (ok)
        ix->fd = index_open_fd(ix->path, error);
    if (ix->fd < 0 || !fbl_maildir_index_compact(ix, error)) {
        fbl_maildir_index_free(ix);
        return NULL;
    }
    return ix;
}

void fbl_maildir_index_free(fbl_maildir_index *ix)
{
    if (ix == NULL)
        return;
    close_quietly(ix->fd);
    g_free(ix->maildir);
    g_free(ix->path);
    g_hash_table_unref(ix->names);
    g_free(ix);
}

bool fbl_maildir_index_has(const fbl_maildir_index *ix, const char *name)
{
    size_t len = fbl_maildir_unique_len(name);
    if (name[len] == '\0')
        return g_hash_table_contains(ix->names, name);
    g_autofree char *unique = g_strndup(name, len);
    return g_hash_table_contains(ix->names, unique);
}

guint fbl_maildir_index_size(const fbl_maildir_index *ix)
{
    return g_hash_table_size(ix->names);
}

void fbl_maildir_index_note_cur(fbl_maildir_index *ix, guint names)
{
    ix->cur_names = names;
}

bool fbl_maildir_index_compact_due(const fbl_maildir_index *ix)
{
    return ix->lines >= FBL_MAILDIR_INDEX_MIN_LINES && ix->lines / 2 > ix->cur_names;
}
