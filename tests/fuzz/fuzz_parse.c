/*
 * fuzz_parse.c - libFuzzer target: the whole parse entry point, fbl_parser_parse()
 *
 * One input is one raw mail. Limits are smaller than the defaults so one input
 * stays fast; trusted networks, hosts and an authserv-id are set so source
 * picking and reporter verification run too. The input's length picks the
 * mail's meta (raw or not, the default feedback type), so those paths are
 * reached without changing the bytes of the seed mails.
 *
 * Checked besides memory safety and leaks: a result holds reports or exactly
 * one reject, and every document it encodes to decodes again (report_json.h).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <glib.h>
#include <jansson.h>

#include "parsers/parse.h"
#include "parsers/report_json.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fbl_parser *parser;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fbl_parsers_init();
    /* GLib criticals (a failed g_return_if_fail()) are findings too. */
    fuzz_log_init();
    static const char *const networks[] = {"192.0.2.0/24", "2001:db8::/32", "127.0.0.1", NULL};
    static const char *const hosts[] = {"prod.outlook.com", "google.com", NULL};
    fbl_parse_options o;
    fbl_parse_options_init(&o);
    o.max_mail_bytes = (size_t) 1024 * 1024;
    o.max_mime_depth = 12;
    o.max_mime_parts = 200;
    o.max_headers = 2000;
    o.max_header_bytes = (size_t) 32 * 1024;
    o.trusted_networks = networks;
    o.trusted_hosts = hosts;
    o.authserv_id = "mx.example.net";
    parser = fbl_parser_new(&o, NULL);
    if (parser == NULL)
        abort();
    return 0;
}

static void check_doc(json_t *doc, bool report)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL)
        abort();
    json_error_t jerr;
    json_t *back = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (back == NULL) {
        g_printerr("fuzz_parse: encoded document is not JSON: %s\n%s\n", jerr.text, text);
        abort();
    }
    GError *error = NULL;
    if (report) {
        fbl_report *r = fbl_report_from_json(back, &error);
        fbl_report_free(r);
    } else {
        fbl_reject *j = fbl_reject_from_json(back, &error);
        fbl_reject_free(j);
    }
    if (error != NULL) {
        g_printerr("fuzz_parse: encoded document does not decode: %s\n%s\n", error->message, text);
        abort();
    }
    json_decref(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fbl_feedback_type types[] = {FBL_FEEDBACK_ABUSE, FBL_FEEDBACK_ABUSE,
                                              FBL_FEEDBACK_ABUSE, FBL_FEEDBACK_NOT_SPAM,
                                              FBL_FEEDBACK_FRAUD};
    fbl_mail_meta meta = {
        .mailbox = "fuzz",
        .default_feedback_type = types[(size / 8) % G_N_ELEMENTS(types)],
        .received_at = 1700000000,
        .raw = size % 8 == 7,
    };
    fbl_parse_result *res = fbl_parser_parse(parser, data, size, &meta);
    if (res == NULL || (res->reports->len == 0) != (res->reject != NULL))
        abort();
    for (guint i = 0; i < res->reports->len; i++)
        check_doc(fbl_report_to_json(g_ptr_array_index(res->reports, i)), true);
    if (res->reject != NULL)
        check_doc(fbl_reject_to_json(res->reject), false);
    fbl_parse_result_free(res);
    return 0;
}
