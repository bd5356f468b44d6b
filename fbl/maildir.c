/* maildir.c - list new/, retire to cur/ (see maildir.h) */
#include "fbl/maildir.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

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

GPtrArray *fbl_maildir_list_new(const char *path, GError **error)
{
    g_autofree char *dir = g_build_filename(path, "new", NULL);
    GDir *d = g_dir_open(dir, 0, error);
    if (d == NULL)
        return NULL;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        if (name[0] != '.')
            g_ptr_array_add(names, g_strdup(name));
    }
    g_dir_close(d);
    g_ptr_array_sort(names, by_name);
    return names;
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
     * earlier run: done) or cur/ gone (not done at all): only the mail's
     * absence from new/ tells them apart. */
    struct stat st;
    if (e == ENOENT && lstat(from, &st) != 0 && errno == ENOENT)
        return true;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot move %s to %s: %s", from,
                to, g_strerror(e));
    return false;
}
