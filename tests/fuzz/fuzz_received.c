/*
 * fuzz_received.c - libFuzzer target: fbl_received_parse(), one Received
 * field value, and fbl_date_to_iso() on the same text
 *
 * The value is a C string: the input is cut at its first NUL, as the header
 * reader would hand it over.
 */
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "parsers/received.h"
#include "parsers/parse.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fbl_parsers_init(); /* GMime: dates */
    /* GLib criticals (a failed g_return_if_fail()) are findings too. */
    fuzz_log_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = g_strndup((const char *) data, size);
    fbl_hop_free(fbl_received_parse(value));
    g_free(fbl_date_to_iso(value));
    g_free(value);
    return 0;
}
