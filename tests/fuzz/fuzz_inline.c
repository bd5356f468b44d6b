/*
 * fuzz_inline.c - libFuzzer target: fbl_inline_recover(), the forwarded
 * message inside the text of a forward
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "parsers/inline.h"
#include "parsers/parse.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fbl_parsers_init(); /* the parsers' contract, before any use */
    /* GLib criticals (a failed g_return_if_fail()) are findings too. */
    fuzz_log_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fbl_inline out;
    if (fbl_inline_recover((const char *) data, size, &out)) {
        /* A recovered block is "headers, blank line, body" with one field at least. */
        if (out.message == NULL || out.headers == 0 || out.headers > FBL_INLINE_MAX_HEADERS ||
            strlen(out.message->str) != out.message->len)
            abort();
    }
    fbl_inline_clear(&out);
    return 0;
}
