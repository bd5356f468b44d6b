/*
 * fuzz_wire.c - libFuzzer target: the wire decoder (report_json.h)
 *
 * The input is one JSON document as another process might put it on the
 * bus: json_loadb() with JSON_REJECT_DUPLICATES, then fbl_report_from_json()
 * or fbl_reject_from_json() by its "kind". What decodes is encoded again,
 * and that must decode and encode to the same document (the codec is a
 * fixed point after one round).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <jansson.h>

#include "parsers/report_json.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    /* GLib criticals (a failed g_return_if_fail()) are findings too. */
    fuzz_log_init();
    return 0;
}

/* Decode @doc as a report (or reject) and encode it again; NULL when it does not decode. */
static json_t *round_trip(const json_t *doc, bool report, GError **error)
{
    if (report) {
        fbl_report *r = fbl_report_from_json(doc, error);
        if (r == NULL)
            return NULL;
        json_t *out = fbl_report_to_json(r);
        fbl_report_free(r);
        return out;
    }
    fbl_reject *j = fbl_reject_from_json(doc, error);
    if (j == NULL)
        return NULL;
    json_t *out = fbl_reject_to_json(j);
    fbl_reject_free(j);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return 0;
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    bool report = kind == NULL || strcmp(kind, "reject") != 0;
    GError *error = NULL;
    json_t *once = round_trip(doc, report, &error);
    /* Try the other decoder too: it must refuse cleanly. */
    GError *other_error = NULL;
    json_t *other = round_trip(doc, !report, &other_error);
    if (other != NULL)
        abort(); /* "kind" tells them apart */
    g_clear_error(&other_error);
    json_decref(doc);
    if (once == NULL) {
        if (error == NULL)
            abort();
        g_error_free(error);
        return 0;
    }
    char *text = json_dumps(once, JSON_COMPACT);
    json_t *again = text != NULL ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    json_t *twice = again != NULL ? round_trip(again, report, &error) : NULL;
    if (twice == NULL || !json_equal(once, twice)) {
        char *t2 = twice != NULL ? json_dumps(twice, JSON_COMPACT) : NULL;
        g_printerr("fuzz_wire: not a fixed point: %s\nonce:  %s\ntwice: %s\n",
                   error != NULL ? error->message : "documents differ", text ? text : "(null)",
                   t2 ? t2 : "(null)");
        abort();
    }
    free(text);
    json_decref(again);
    json_decref(once);
    json_decref(twice);
    return 0;
}
