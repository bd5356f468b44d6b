/* maildir_arrival.c - whether a file in new/ is complete (see maildir_arrival.h) */
#define G_LOG_DOMAIN "fbl-watch"
#include "fbl/maildir_arrival.h"

#include <errno.h>
#include <sys/inotify.h>

#include "fbl/daemon.h"

/* A file by its inode: one an MTA is writing in tmp/. */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
} file_id;

struct fbl_maildir_arrival {
    char *maildir;
    GHashTable *tmp_files;  /* name in tmp/ -> file_id *: what MTAs are writing */
    GHashTable *tmp_closed; /* names in tmp/ whose writer closed them (a set) */
};

fbl_maildir_arrival *fbl_maildir_arrival_new(const char *maildir)
{
    fbl_maildir_arrival *a = g_new0(fbl_maildir_arrival, 1);
    a->maildir = g_strdup(maildir);
    a->tmp_files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    a->tmp_closed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return a;
}

void fbl_maildir_arrival_free(fbl_maildir_arrival *a)
{
    if (a == NULL)
        return;
    g_hash_table_unref(a->tmp_files);
    g_hash_table_unref(a->tmp_closed);
    g_free(a->maildir);
    g_free(a);
}

/* Remember the inode of each file an MTA starts writing in tmp/, until it
 * leaves (renamed into new/, or unlinked after a link() into new/). */
void fbl_maildir_arrival_tmp_event(fbl_maildir_arrival *a, uint32_t mask, const char *name)
{
    if (mask & IN_CLOSE_WRITE) {
        if (g_hash_table_size(a->tmp_closed) >= FBL_MAILDIR_ARRIVAL_MAX_TMP_FILES)
            g_hash_table_remove_all(a->tmp_closed); /* events were missed: start again */
        g_hash_table_add(a->tmp_closed, g_strdup(name));
        return;
    }
    if (!(mask & IN_CREATE)) {
        g_hash_table_remove(a->tmp_files, name);
        g_hash_table_remove(a->tmp_closed, name);
        return;
    }
    g_autofree char *path = g_build_filename(a->maildir, "tmp", name, NULL);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return; /* gone already: that mail settles instead */
    if (g_hash_table_size(a->tmp_files) >= FBL_MAILDIR_ARRIVAL_MAX_TMP_FILES)
        g_hash_table_remove_all(a->tmp_files); /* events were missed: start again */
    file_id *id = g_new(file_id, 1);
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    g_hash_table_insert(a->tmp_files, g_strdup(name), id);
}

/* A closed tmp/ file gone from tmp/ (or this very inode) by the time its link
 * shows up in new/ is that link; it is forgotten once matched. */
static bool closed_in_tmp_and_gone(fbl_maildir_arrival *a, const struct stat *linked)
{
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, a->tmp_closed);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        g_autofree char *path = g_build_filename(a->maildir, "tmp", (const char *) key, NULL);
        struct stat st;
        bool found = lstat(path, &st) == 0;
        bool gone = !found && errno == ENOENT;
        if (gone || (found && st.st_dev == linked->st_dev && st.st_ino == linked->st_ino)) {
            g_hash_table_iter_remove(&it);
            return true;
        }
    }
    return false;
}

bool fbl_maildir_arrival_is_linked(fbl_maildir_arrival *a, const char *name)
{
    g_autofree char *path = g_build_filename(a->maildir, "new", name, NULL);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    /* Still linked from tmp/ too: the MTA has not unlinked its tmp/ name yet. */
    if (st.st_nlink >= 2)
        return true;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, a->tmp_files);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const file_id *t = value;
        if (t->dev == st.st_dev && t->ino == st.st_ino)
            return true;
    }
    return closed_in_tmp_and_gone(a, &st);
}

bool fbl_maildir_arrival_has_changed_after_write(const struct stat *st)
{
    return st->st_size > 0 &&
           (st->st_ctim.tv_sec > st->st_mtim.tv_sec || (st->st_ctim.tv_sec == st->st_mtim.tv_sec &&
                                                        st->st_ctim.tv_nsec > st->st_mtim.tv_nsec));
}

bool fbl_maildir_arrival_is_settled(fbl_maildir_settle *s, bool complete, const struct stat *st,
                                    unsigned settle_ms, int64_t *due_ms)
{
    if (complete || fbl_maildir_arrival_has_changed_after_write(st))
        return true;
    int64_t mtime_ms = (int64_t) st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
    int64_t age = g_get_real_time() / 1000 - mtime_ms;
    if (age >= (int64_t) settle_ms)
        return true;
    int64_t now = fbl_now_ms();
    if (!s->settling || s->size != st->st_size || s->mtime_ms != mtime_ms) {
        s->settling = true;
        s->size = st->st_size;
        s->mtime_ms = mtime_ms;
        s->since = now;
    } else if (now - s->since >= (int64_t) settle_ms) {
        return true;
    }
    /* A clock skewed into the future (age < 0) waits settle_ms, not longer. */
    *due_ms = now + MAX((int64_t) settle_ms - MAX(age, now - s->since), 10);
    return false;
}
