/*
 * test_redact.c - sink/redact.c against hostile spellings: one row per way a
 * reported message may write its recipient (quoted-printable soft breaks,
 * %40, =40, HTML references, RFC 2047 encoded words, base64 bodies, display
 * names), and one per address shape the log mask must catch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "parsers/mime.h"
#include "sink/redact.h"

#define KEY "unit-test-key-0123456789abcdef"

static const char doc_text[] =
    "{\"id\":\"aa\",\"mail_id\":\"bb\",\"arf\":{\"original_rcpt_to\":[\"john.doe@example.net\"]},"
    "\"message\":{\"to\":[\"john.doe@example.net\"],\"subject\":\"Hi\","
    "\"urls\":[\"http://spam.example/u?e=john.doe%40example.net\"]}}";

typedef struct fixture {
    fbl_redact *redact;
    json_t *doc;
    fbl_redact_pairs *pairs;
} fixture;

static int setup(void **state)
{
    const char *fields[] = {"recipients", NULL};
    fixture *f = g_new0(fixture, 1);
    f->redact = fbl_redact_new(fields, KEY, strlen(KEY), NULL);
    json_error_t jerr;
    f->doc = json_loads(doc_text, 0, &jerr);
    f->pairs = fbl_redact_doc(f->redact, f->doc);
    *state = f;
    return f->redact != NULL && f->doc != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fbl_redact_pairs_free(f->pairs);
    json_decref(f->doc);
    fbl_redact_free(f->redact);
    g_free(f);
    return 0;
}

/* Everything a reader of @msg sees: raw, decoded headers, decoded parts, lower case. */
static char *as_read(const char *msg, size_t len)
{
    GString *out = g_string_new_len(msg, (gssize) len);
    g_autoptr(GMimeStream) in = g_mime_stream_mem_new_with_buffer(msg, len);
    GMimeParser *p = g_mime_parser_new_with_stream(in);
    GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
    g_object_unref(p);
    GMimeObject *obj = m != NULL ? GMIME_OBJECT(m) : NULL;
    GMimePartIter *it = m != NULL ? g_mime_part_iter_new(obj) : NULL;
    GMimeHeaderList *h = obj != NULL ? g_mime_object_get_header_list(obj) : NULL;
    for (int i = 0; h != NULL && i < g_mime_header_list_get_count(h); i++) {
        GMimeHeader *hd = g_mime_header_list_get_header_at(h, i);
        g_autofree char *v = g_mime_utils_header_decode_text(NULL, g_mime_header_get_raw_value(hd));
        g_string_append_printf(out, "\n%s", v);
    }
    for (bool more = it != NULL && g_mime_part_iter_is_valid(it); more;
         more = g_mime_part_iter_next(it)) {
        GMimeObject *part = g_mime_part_iter_get_current(it);
        if (!GMIME_IS_PART(part) || g_mime_part_get_content(GMIME_PART(part)) == NULL)
            continue;
        GByteArray *buf = g_byte_array_new();
        g_autoptr(GMimeStream) s = g_mime_stream_mem_new_with_byte_array(buf);
        (void) g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(GMIME_PART(part)), s);
        g_string_append_c(out, '\n');
        g_string_append_len(out, (const char *) buf->data, (gssize) buf->len);
    }
    if (it != NULL)
        g_mime_part_iter_free(it);
    if (m != NULL)
        g_object_unref(m);
    char *lower = g_ascii_strdown(out->str, (gssize) out->len);
    g_string_free(out, TRUE);
    return lower;
}

/* Each row: a reported message; none of "john.doe@example.net", "john doe", "john" may be read in
 * what is sent, and the pseudonym must be there. */
static const struct {
    const char *name;
    const char *msg;
} spellings[] = {
    {"plain", "To: john.doe@example.net\r\n\r\nHi john.doe@example.net\r\n"},
    {"display name", "To: John Doe <john.doe@example.net>\r\n\r\nDear John Doe, hello John.\r\n"},
    {"encoded display name",
     "To: =?utf-8?B?Sm9obiBEb2U=?= <john.doe@example.net>\r\n\r\nDear John,\r\n"},
    {"latin-1 encoded name",
     "To: =?iso-8859-1?Q?John_Doe?= <john.doe@example.net>\r\n\r\nfor John Doe\r\n"},
    {"qp soft break", "To: x@y.example\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                      "mail john.doe@exa=\r\nmple.net now, or john.=\r\ndoe@example.net\r\n"},
    {"folded header", "To: x@y.example\r\nX-Rcpt: john.doe@exa\r\n mple.net\r\n\r\nbody\r\n"},
    {"url encoded", "To: x@y.example\r\n\r\nhttp://s.example/u?e=john.doe%40example.net&x=1\r\n"},
    {"url encoded all", "To: x@y.example\r\n\r\nhttp://s.example/u?e=%6A%6F%68%6E.doe%40ex"
                        "ample%2Enet\r\n"},
    {"qp at", "To: x@y.example\r\n\r\nconfirm john.doe=40example.net\r\n"},
    {"html", "To: x@y.example\r\n\r\n<a>john.doe&#64;example.net</a> <b>john.doe&#x40;exam"
             "ple.net</b> john.doe&commat;example.net\r\n"},
    {"encoded word B", "To: x@y.example\r\nSubject: =?utf-8?B?"
                       "am9obi5kb2VAZXhhbXBsZS5uZXQsIHlvdXIgaW52b2ljZQ==?=\r\n\r\nbody\r\n"},
    {"encoded word Q", "To: x@y.example\r\nSubject: =?UTF-8?q?Hi_john=2Edoe=40example=2Enet?=\r\n"
                       "\r\nbody\r\n"},
    {"split encoded words", "To: x@y.example\r\nSubject: =?utf-8?B?am9obi5k?=\r\n =?utf-8?Q?oe?="
                            " =?utf-8?B?QGV4YW1wbGUubmV0?= offer\r\n\r\nbody\r\n"},
    {"base64 body", "To: John Doe <john.doe@example.net>\r\nContent-Type: text/plain\r\n"
                    "Content-Transfer-Encoding: base64\r\n\r\n"
                    "SGVsbG8gSm9obiBEb2UsIHdlIHdyb3RlIHRvIGpvaG4uZG9lQGV4YW1wbGUubmV0Lg0K\r\n"},
    {"base64 part",
     "To: x@y.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
     "--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: BASE64\r\n\r\n"
     "PHA+am9obi5kb2VAZXhhbXBsZS5uZXQ8L3A+\r\n--b--\r\n"},
    {"case", "To: x@y.example\r\n\r\nJOHN.DOE@EXAMPLE.NET\r\n"},
};

static void test_spellings(void **state)
{
    fixture *f = *state;
    g_autofree char *pseudonym = fbl_redact_pseudonym(f->redact, "john.doe@example.net");
    for (size_t i = 0; i < G_N_ELEMENTS(spellings); i++) {
        const char *msg = spellings[i].msg;
        g_autoptr(GBytes) out = fbl_redact_bytes(f->pairs, msg, strlen(msg));
        gsize len = 0;
        const char *data = g_bytes_get_data(out, &len);
        g_autofree char *read = as_read(data, len);
        g_autofree char *unquoted = g_uri_unescape_string(read, NULL);
        const char *seen = unquoted != NULL ? unquoted : read;
        print_message("%s\n", spellings[i].name);
        assert_null(strstr(seen, "john.doe@example.net"));
        assert_null(strstr(seen, "john doe"));
        assert_null(strstr(seen, "john "));
        assert_null(strstr(seen, "john,"));
        assert_null(strstr(seen, "john."));
        g_autofree char *lower = g_ascii_strdown(pseudonym, -1);
        g_autofree char *hex = g_strndup(lower, 32);
        assert_non_null(strstr(read, hex));
    }
}

/* The document: the URL's %40 spelling goes, and so do the names learnt from the message. */
static void test_doc(void **state)
{
    fixture *f = *state;
    json_t *orig = json_loads(doc_text, 0, NULL);
    (void) json_object_set_new(json_object_get(orig, "message"), "subject",
                               json_string("Johnny Walker, your parcel"));
    g_autoptr(fbl_redact_pairs) pairs = fbl_redact_doc(f->redact, orig);
    char *text = json_dumps(orig, JSON_COMPACT);
    assert_null(strstr(text, "john.doe"));
    assert_non_null(strstr(text, "u?e="));
    assert_non_null(strstr(text, "%40redacted.invalid"));
    free(text);
    const char msg[] = "To: Johnny Walker <john.doe@example.net>\r\n\r\nhi\r\n";
    g_autoptr(GBytes) out = fbl_redact_bytes(pairs, msg, strlen(msg));
    const char *subject =
        json_string_value(json_object_get(json_object_get(orig, "message"), "subject"));
    g_autofree char *name = fbl_redact_pseudonym(f->redact, "Johnny Walker");
    g_autofree char *want = g_strdup_printf("%s, your parcel", name);
    assert_string_equal(subject, want);
    json_decref(orig);
}

/* Names only as whole words; short words stay. */
static void test_words(void **state)
{
    fixture *f = *state;
    const char msg[] = "To: Mark Li <john.doe@example.net>\r\n\r\nMarketing for Mark and Li.\r\n";
    g_autoptr(GBytes) out = fbl_redact_bytes(f->pairs, msg, strlen(msg));
    const char *data = g_bytes_get_data(out, NULL);
    assert_non_null(strstr(data, "Marketing for "));
    assert_null(strstr(data, "for Mark "));
    assert_non_null(strstr(data, " and Li."));
}

static const struct {
    const char *in, *out;
} masks[] = {
    {"HTTP 400: {\"to\": [\"john.doe@example.net\"]}", "HTTP 400: {\"to\": [\"[address]\"]}"},
    {"u?e=john.doe%40example.net&x=1", "u?e=[address]&x=1"},
    {"confirm john.doe=40example.net.", "confirm [address]."},
    {"<b>a&#64;b.example</b> c&#x40;d.example", "<b>[address]</b> [address]"},
    {"\"john doe\"@example.net said", "[address] said"},
    {"json \\u0040: x\\u0040y.example", "json \\u0040: [address]"},
    {"fullwidth j\xef\xbc\xa0x.example", "fullwidth [address]"},
    {"ivan@пример.рф", "[address]"},
    {"HTTP 500: scripted 500", "HTTP 500: scripted 500"},
    {"@handle and x@ and @", "@handle and x@ and @"},
    {"", ""},
};

static void test_mask(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(masks); i++) {
        g_autofree char *got = fbl_redact_mask_addresses(masks[i].in);
        assert_string_equal(got, masks[i].out);
    }
    assert_null(fbl_redact_mask_addresses(NULL));
}

int main(void)
{
    g_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spellings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_words, setup, teardown),
        cmocka_unit_test(test_mask),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    g_mime_shutdown();
    return failed;
}
