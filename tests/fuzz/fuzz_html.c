/*
 * fuzz_html.c - libFuzzer target: HTML bodies, fbl_html_to_text() and
 * fbl_urls_scan_html() (with its text output), then fbl_urls_scan_text()
 * on the text they produced
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "parsers/html.h"
#include "parsers/parse.h"
#include "parsers/urls.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fbl_parsers_init(); /* libxml2 must be initialised from one thread first */
    /* GLib criticals (a failed g_return_if_fail()) are findings too. */
    fuzz_log_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *html = (const char *) data;
    char *text = fbl_html_to_text(html, size);
    if (text == NULL)
        abort();

    GPtrArray *urls_out = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *hosts_out = g_ptr_array_new_with_free_func(g_free);
    fbl_urls urls;
    fbl_urls_init(&urls, urls_out, hosts_out);
    GString *visible = g_string_new(NULL);
    fbl_urls_scan_html(&urls, html, size, visible);
    fbl_urls_scan_text(&urls, text, strlen(text));
    if (urls_out->len > FBL_URLS_MAX)
        abort();
    for (guint i = 0; i < urls_out->len; i++) {
        if (strlen(g_ptr_array_index(urls_out, i)) == 0)
            abort();
    }
    g_string_free(visible, TRUE);
    g_ptr_array_unref(urls_out);
    g_ptr_array_unref(hosts_out);
    g_free(text);
    return 0;
}
