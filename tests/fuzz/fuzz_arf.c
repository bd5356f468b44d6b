/*
 * fuzz_arf.c - libFuzzer target: fbl_arf_parse_fields(), the body of a
 * message/feedback-report part, and fbl_arf_feedback_type() on what it read
 */
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "parsers/arf.h"
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
    GPtrArray *warnings = g_ptr_array_new_with_free_func(g_free);
    fbl_arf *arf = fbl_arf_parse_fields((const char *) data, size, warnings);
    fbl_feedback_type type;
    (void) fbl_arf_feedback_type(arf->feedback_type_raw, &type);
    fbl_arf_free(arf);
    g_ptr_array_unref(warnings);
    return 0;
}
