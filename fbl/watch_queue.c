/* watch_queue.c - the files the watcher knows, the names waiting (see watch_queue.h) */
#define G_LOG_DOMAIN "fbl-watch"
#include "fbl/watch_queue.h"

#include <stdlib.h>
#include <string.h>

#include "fbl/maildir.h"

/* A name in new/ or cur/ that is not a regular file, by its inode. */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
} file_id;

struct fbl_watch_queue {
    unsigned max_names;
    GQueue pending;      /* fbl_watch_file *: to read */
    GQueue settling;     /* fbl_watch_file *: young files, read once their writer is done */
    GHashTable *known;   /* "box/unique" -> fbl_watch_file * (borrowed): pending, settling,
                            in flight or unretired, wherever the file moves */
    GHashTable *skipped; /* "box/new/name", "box/cur/name" -> file_id *: not regular files */
    bool more_in_new;    /* names left out of the full queue: list new/ again */
    bool more_in_cur;    /* the same in cur/ */
};

static const char *subdir(bool in_cur)
{
    return in_cur ? "cur" : "new";
}

/* A file's key: its box and the unique part of its name, which stays the same when an
 * IMAP server moves it to cur/ and whenever a user's flag renames it there. */
static char *known_key(int box_id, const char *name)
{
    return g_strdup_printf("%d/%.*s", box_id, (int) fbl_maildir_unique_len(name), name);
}

static char *skipped_key(int box_id, bool in_cur, const char *name)
{
    return g_strdup_printf("%d/%s/%s", box_id, subdir(in_cur), name);
}

void fbl_watch_file_free(fbl_watch_file *f)
{
    if (f == NULL)
        return;
    g_free(f->name);
    g_free(f->retire_error);
    g_free(f);
}

fbl_watch_queue *fbl_watch_queue_new(unsigned max_names)
{
    fbl_watch_queue *q = g_new0(fbl_watch_queue, 1);
    q->max_names = max_names;
    g_queue_init(&q->pending);
    g_queue_init(&q->settling);
    q->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    q->skipped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return q;
}

void fbl_watch_queue_free(fbl_watch_queue *q)
{
    if (q == NULL)
        return;
    g_queue_clear_full(&q->pending, (GDestroyNotify) fbl_watch_file_free);
    g_queue_clear_full(&q->settling, (GDestroyNotify) fbl_watch_file_free);
    g_hash_table_unref(q->known);
    g_hash_table_unref(q->skipped);
    g_free(q);
}

fbl_watch_file *fbl_watch_queue_lookup(fbl_watch_queue *q, int box_id, const char *name)
{
    g_autofree char *key = known_key(box_id, name);
    return g_hash_table_lookup(q->known, key);
}

bool fbl_watch_queue_follow(fbl_watch_file *f, bool in_cur, const char *name)
{
    if (f->in_cur == in_cur && strcmp(f->name, name) == 0)
        return false;
    g_free(f->name);
    f->name = g_strdup(name);
    bool to_cur = in_cur && !f->in_cur;
    f->in_cur = in_cur;
    return to_cur;
}

fbl_watch_file *fbl_watch_queue_track(fbl_watch_queue *q, fbl_watch_box *box, int box_id,
                                      const char *name)
{
    fbl_watch_file *f = g_new0(fbl_watch_file, 1);
    f->box = box;
    f->box_id = box_id;
    f->name = g_strdup(name);
    g_hash_table_insert(q->known, known_key(box_id, name), f);
    return f;
}

fbl_watch_file *fbl_watch_queue_add(fbl_watch_queue *q, fbl_watch_box *box, int box_id, bool in_cur,
                                    const char *name)
{
    if (fbl_watch_queue_names(q) >= q->max_names) {
        /* it stays where it is for a later listing */
        *(in_cur ? &q->more_in_cur : &q->more_in_new) = true;
        return NULL;
    }
    fbl_watch_file *f = fbl_watch_queue_track(q, box, box_id, name);
    f->in_cur = in_cur;
    g_queue_push_tail(&q->pending, f);
    return f;
}

void fbl_watch_queue_forget(fbl_watch_queue *q, fbl_watch_file *f)
{
    g_autofree char *key = known_key(f->box_id, f->name);
    g_hash_table_remove(q->known, key);
    fbl_watch_file_free(f);
}

fbl_watch_file *fbl_watch_queue_pop(fbl_watch_queue *q)
{
    return g_queue_pop_head(&q->pending);
}

void fbl_watch_queue_wait(fbl_watch_queue *q, fbl_watch_file *f)
{
    g_queue_push_tail(&q->settling, f);
}

void fbl_watch_queue_settle_due(fbl_watch_queue *q, int64_t now_ms)
{
    for (GList *l = q->settling.head, *next; l != NULL; l = next) {
        next = l->next;
        fbl_watch_file *f = l->data;
        if (f->complete || f->due <= now_ms) {
            g_queue_delete_link(&q->settling, l);
            g_queue_push_head(&q->pending, f);
        }
    }
}

int64_t fbl_watch_queue_settle_wake(const fbl_watch_queue *q)
{
    int64_t next = INT64_MAX;
    for (const GList *l = q->settling.head; l != NULL; l = l->next)
        next = MIN(next, ((const fbl_watch_file *) l->data)->due);
    return next;
}

unsigned fbl_watch_queue_names(const fbl_watch_queue *q)
{
    return q->pending.length + q->settling.length;
}

bool fbl_watch_queue_has_pending(const fbl_watch_queue *q)
{
    return q->pending.length > 0;
}

bool fbl_watch_queue_wants_listing(const fbl_watch_queue *q, bool *in_new, bool *in_cur)
{
    *in_new = q->more_in_new;
    *in_cur = q->more_in_cur;
    return (q->more_in_new || q->more_in_cur) && fbl_watch_queue_names(q) <= q->max_names / 2;
}

void fbl_watch_queue_listed(fbl_watch_queue *q, bool in_new, bool in_cur)
{
    q->more_in_new = q->more_in_new && !in_new;
    q->more_in_cur = q->more_in_cur && !in_cur;
}

bool fbl_watch_queue_is_skipped(fbl_watch_queue *q, int box_id, const char *maildir, bool in_cur,
                                const char *name)
{
    g_autofree char *key = skipped_key(box_id, in_cur, name);
    const file_id *s = g_hash_table_lookup(q->skipped, key);
    if (s == NULL)
        return false;
    g_autofree char *path = g_build_filename(maildir, subdir(in_cur), name, NULL);
    struct stat st;
    if (lstat(path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
        return true;
    g_hash_table_remove(q->skipped, key);
    return false;
}

void fbl_watch_queue_skip(fbl_watch_queue *q, fbl_watch_file *f, const struct stat *st)
{
    file_id *s = g_new(file_id, 1);
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    g_hash_table_insert(q->skipped, skipped_key(f->box_id, f->in_cur, f->name), s);
    fbl_watch_queue_forget(q, f);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

void fbl_watch_queue_prune_skipped(fbl_watch_queue *q, int box_id, bool in_cur,
                                   const GPtrArray *names)
{
    g_autofree char *prefix = g_strdup_printf("%d/%s/", box_id, subdir(in_cur));
    size_t prefix_len = strlen(prefix);
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, q->skipped);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_str_has_prefix(key, prefix))
            continue;
        const char *name = (const char *) key + prefix_len;
        /* (an empty array may have no pdata at all: bsearch() wants one) */
        if (names->len == 0 ||
            bsearch(&name, names->pdata, names->len, sizeof(gpointer), compare_names) == NULL)
            g_hash_table_iter_remove(&it);
    }
}
