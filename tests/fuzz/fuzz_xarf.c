/*
 * fuzz_xarf.c - libFuzzer target: X-ARF reports, v0.2 YAML and v4 JSON
 *
 * The first byte selects the reader: odd for JSON (fbl_xarf_parse_json),
 * even for YAML (fbl_xarf_parse_yaml); the rest is the document.
 */
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "parsers/xarf.h"
#include "parsers/parse.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fbl_parsers_init(); /* GMime: addresses and dates */
    /* GLib criticals (a failed g_return_if_fail()) are findings too. */
    fuzz_log_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *) data + 1;
    fbl_xarf *x =
        (data[0] & 1) ? fbl_xarf_parse_json(text, size - 1) : fbl_xarf_parse_yaml(text, size - 1);
    if (x != NULL)
        (void) fbl_xarf_feedback_type(x);
    fbl_xarf_free(x);
    return 0;
}
