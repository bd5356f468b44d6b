/*
 * replay_main.c - run a libFuzzer target without libFuzzer
 *
 * Linked with one fuzz_<target>.c into replay_<target>: feeds every file
 * named on the command line, and every regular file in every directory named
 * (not recursively, hidden files skipped, in name order), to
 * LLVMFuzzerTestOneInput(), after LLVMFuzzerInitialize() when the target
 * defines it. Built by any compiler (gcc with -DFBL_SANITIZE=address,undefined
 * in CI), so the test command replays the seed corpus and every regression
 * input. A crash is the sanitizer's or abort()'s; exit status 0 means every
 * input passed. Exits 1 when a named path cannot be read, or none is given.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool run_file(const char *path)
{
    gchar *data = NULL;
    gsize len = 0;
    GError *error = NULL;
    if (!g_file_get_contents(path, &data, &len, &error)) {
        g_printerr("replay: %s\n", error->message);
        g_error_free(error);
        return false;
    }
    g_printerr("replay: %s (%zu bytes)\n", path, (size_t) len);
    /* An exact-size copy, so ASan sees a read past the end of the input. */
    uint8_t *copy = g_memdup2(data, len);
    g_free(data);
    (void) LLVMFuzzerTestOneInput(copy, len);
    g_free(copy);
    return true;
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Returns the number of inputs run, or -1 when the directory cannot be read. */
static int run_dir(const char *dir)
{
    GError *error = NULL;
    GDir *d = g_dir_open(dir, 0, &error);
    if (d == NULL) {
        g_printerr("replay: %s\n", error->message);
        g_error_free(error);
        return -1;
    }
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        if (name[0] == '.')
            continue;
        char *path = g_build_filename(dir, name, NULL);
        if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
            g_ptr_array_add(paths, path);
        else
            g_free(path);
    }
    g_dir_close(d);
    g_ptr_array_sort(paths, compare_names);
    int n = 0;
    for (guint i = 0; i < paths->len; i++) {
        if (!run_file(g_ptr_array_index(paths, i))) {
            n = -1;
            break;
        }
        n++;
    }
    g_ptr_array_unref(paths);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        g_printerr("usage: %s FILE|DIR...\n", argv[0]);
        return 1;
    }
    if (LLVMFuzzerInitialize != NULL)
        (void) LLVMFuzzerInitialize(&argc, &argv);
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n;
        if (g_file_test(argv[i], G_FILE_TEST_IS_DIR))
            n = run_dir(argv[i]);
        else
            n = run_file(argv[i]) ? 1 : -1;
        if (n < 0)
            return 1;
        total += n;
    }
    g_printerr("replay: %d input(s) passed\n", total);
    return 0;
}
