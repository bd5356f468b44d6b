/* mime.c - bounded GMime loading and MIME helpers (see mime.h for the limits) */
#define G_LOG_DOMAIN "fbl-mime"
#include "parsers/mime.h"

#include <stdarg.h>
#include <string.h>

/* GMime makes at most one entity per boundary line; allow this many per part. */
#define BOUNDARY_LINES_PER_PART 4
/* Bytes GMime's RFC 2047 decoder may scan per mail (encoded_word_scan()): ~0.2 s. */
#define MAX_ENCODED_WORD_SCAN ((size_t) 256 * 1024 * 1024)

void fbl_mime_budget_init(fbl_mime_budget *budget, const fbl_parse_options *limits)
{
    memset(budget, 0, sizeof *budget);
    budget->limits = limits;
    budget->warnings = g_ptr_array_new_with_free_func(g_free);
}

void fbl_mime_budget_clear(fbl_mime_budget *budget)
{
    g_free(budget->detail);
    g_ptr_array_unref(budget->warnings);
    memset(budget, 0, sizeof *budget);
}

void fbl_mime_budget_trip(fbl_mime_budget *budget, fbl_reject_reason reason, const char *format,
                          ...)
{
    if (budget->tripped)
        return;
    budget->tripped = true;
    budget->reason = reason;
    va_list ap;
    va_start(ap, format);
    budget->detail = g_strdup_vprintf(format, ap);
    va_end(ap);
    /* Cut the input: GMime sees end-of-stream at its next read and unwinds. */
    if (budget->current != NULL)
        g_mime_stream_set_bounds(budget->current, 0, 0);
}

static void add_warning(fbl_mime_budget *budget, const char *text)
{
    if (budget->warnings->len < FBL_MIME_MAX_WARNINGS)
        fbl_strv_add_unique(budget->warnings, text);
}

/* Called by GMime for every header field it parses, at every level. */
static void on_header(GMimeParser *parser, const char *name, const char *raw_value, gint64 offset,
                      gpointer user_data)
{
    (void) parser;
    (void) offset;
    fbl_mime_budget *budget = user_data;
    const fbl_parse_options *lim = budget->limits;

    budget->headers++;
    if (budget->headers > lim->max_headers) {
        fbl_mime_budget_trip(budget, FBL_REJECT_TOO_MANY_HEADERS, "more than %u header fields",
                             lim->max_headers);
        return;
    }
    size_t len = strlen(name) + (raw_value != NULL ? strlen(raw_value) : 0);
    if (len > lim->max_header_bytes)
        fbl_mime_budget_trip(budget, FBL_REJECT_HEADER_TOO_LONG,
                             "a %zu-byte header field, limit %zu", len, lim->max_header_bytes);
}

static void on_gmime_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
                             gpointer user_data)
{
    (void) offset;
    (void) item; /* may quote hostile bytes; the code says enough */
    static const char *const names[] = {
        [GMIME_WARN_INVALID_CONTENT_TYPE] = "invalid Content-Type",
        [GMIME_WARN_INVALID_RFC2047_HEADER_VALUE] = "invalid RFC 2047 encoded header",
        [GMIME_WARN_MALFORMED_MULTIPART] = "multipart without parts",
        [GMIME_WARN_TRUNCATED_MESSAGE] = "truncated message",
        [GMIME_WARN_MALFORMED_MESSAGE] = "malformed message",
        [GMIME_CRIT_INVALID_HEADER_NAME] = "invalid header name skipped",
        [GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY] = "multipart without boundary",
        [GMIME_CRIT_NESTING_OVERFLOW] = "MIME nesting overflow",
        [GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT] = "MIME part without headers or content",
    };
    if ((size_t) code < G_N_ELEMENTS(names) && names[code] != NULL) {
        g_autofree char *text = g_strdup_printf("mime: %s", names[code]);
        add_warning(user_data, text);
    }
}

static size_t count_boundary_lines(const char *data, size_t len)
{
    size_t n = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            n++;
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return n;
}

/*
 * The bytes GMime should see: without an mbox "From " line, with CR-only
 * line ends made LF. Returns @data itself when nothing needs changing.
 */
static const char *normalize(const char *data, size_t *len, char **copy)
{
    *copy = NULL;
    if (*len >= 5 && memcmp(data, "From ", 5) == 0) {
        const char *nl = memchr(data, '\n', *len);
        size_t skip = nl != NULL ? (size_t) (nl + 1 - data) : *len;
        data += skip;
        *len -= skip;
    }
    if (memchr(data, '\n', *len) == NULL && memchr(data, '\r', *len) != NULL) {
        char *c = g_memdup2(data, *len);
        for (size_t i = 0; i < *len; i++) {
            if (c[i] == '\r')
                c[i] = '\n';
        }
        *copy = c;
        return c;
    }
    return data;
}

static GMimeParserOptions *new_parser_options(fbl_mime_budget *budget)
{
    static const char *const fallback[] = {"UTF-8", "windows-1252", NULL};
    GMimeParserOptions *o = g_mime_parser_options_new();
    g_mime_parser_options_set_rfc2047_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(o, TRUE);
    g_mime_parser_options_set_fallback_charsets(o, (const char **) fallback);
    g_mime_parser_options_set_warning_callback(o, on_gmime_warning, budget);
    return o;
}

/*
 * GMime's RFC 2047 decoder looks for the "?=" of every "=?" up to the end of the
 * field, so a field of unterminated "=?" costs it quadratic time (a 600 KB Subject:
 * 19 s), even one over max_header_bytes (GMime reads it whole before on_header()).
 * The bytes it may scan: for every "=?" without a "?=" in the next 256 bytes, the
 * rest of its unfolded line, header or not. Linear.
 */
static size_t encoded_word_scan(const char *data, size_t len)
{
    size_t total = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t) (end - p));
        while (e != NULL && e + 1 < end && (e[1] == ' ' || e[1] == '\t'))
            e = memchr(e + 1, '\n', (size_t) (end - e - 1));
        if (e == NULL)
            e = end;
        size_t unterminated = 0;
        const char *close = p; /* the first "?=" after the last "=?" looked at, or @e */
        /* Each "=?" found by its '?': rarer than '=', which a quoted-printable body
         * has every few bytes. */
        for (const char *r = p + 1; r < e && (r = memchr(r, '?', (size_t) (e - r))) != NULL; r++) {
            const char *q = r - 1;
            if (*q != '=')
                continue;
            if (close < q + 2) {
                close = memmem(q + 2, (size_t) (e - q - 2), "?=", 2);
                close = close != NULL ? close : e;
            }
            if (close - (q + 2) > 256)
                unterminated++;
        }
        total += unterminated * (size_t) (e - p);
        p = e + 1;
    }
    return total;
}

static bool check_object(fbl_mime_budget *budget, GMimeObject *object, unsigned depth);

/* The borrowed buffer's GByteArray wrapper goes with its stream; the bytes stay. */
static void release_borrowed(gpointer wrapper)
{
    (void) g_byte_array_free(wrapper, FALSE);
}

/*
 * A memory stream over @bytes: the normalized copy when there is one (the
 * stream takes it), else the caller's bytes in place when @in_place, else a
 * copy of them (nested parts' buffers die before the message does).
 */
static GMimeStream *new_stream(const char *bytes, size_t len, char **copy, bool in_place)
{
    if (*copy != NULL)
        return g_mime_stream_mem_new_with_byte_array(
            g_byte_array_new_take((guint8 *) g_steal_pointer(copy), len));
    if (!in_place)
        return g_mime_stream_mem_new_with_buffer(bytes, len);
    /* GByteArray has no borrowing constructor: take the bytes, never free
     * them (the stream is not their owner), and free the wrapper with the
     * stream's object data, which GObject clears after the stream's own
     * finalizer. GMime's parser only reads the stream. */
    GByteArray *wrapper = g_byte_array_new_take((guint8 *) bytes, len);
    GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(wrapper);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
    g_object_set_data_full(G_OBJECT(stream), "fbl-borrowed", wrapper, release_borrowed);
    return stream;
}

static GMimeMessage *load(fbl_mime_budget *budget, const char *data, size_t len, unsigned depth,
                          bool in_place)
{
    /* Zero bytes are no message (and an empty part's bytes may be NULL). */
    if (budget->tripped || len == 0)
        return NULL;

    size_t lines = count_boundary_lines(data, len);
    size_t line_limit = (size_t) budget->limits->max_mime_parts * BOUNDARY_LINES_PER_PART;
    if (lines > line_limit) {
        fbl_mime_budget_trip(budget, FBL_REJECT_TOO_MANY_PARTS,
                             "%zu MIME boundary lines, limit %zu (max_mime_parts %u)", lines,
                             line_limit, budget->limits->max_mime_parts);
        return NULL;
    }

    g_autofree char *copy = NULL;
    const char *bytes = normalize(data, &len, &copy);
    budget->rfc2047_scan += encoded_word_scan(bytes, len);
    if (budget->rfc2047_scan > MAX_ENCODED_WORD_SCAN) {
        fbl_mime_budget_trip(budget, FBL_REJECT_MALFORMED_MIME,
                             "unterminated RFC 2047 encoded words: %zu bytes for GMime to scan, "
                             "limit %zu",
                             budget->rfc2047_scan, MAX_ENCODED_WORD_SCAN);
        return NULL;
    }
    /* GMime keeps substreams into the buffer: it lives as long as they do. */
    g_autoptr(GMimeStream) stream = new_stream(bytes, len, &copy, in_place);
    g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(stream);
    g_autoptr(GMimeParserOptions) options = new_parser_options(budget);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    g_mime_parser_set_header_regex(parser, "^", on_header, budget);

    GMimeStream *outer = budget->current;
    budget->current = stream;
    g_autoptr(GMimeMessage) message = g_mime_parser_construct_message(parser, options);
    budget->current = outer;
    if (budget->tripped || message == NULL)
        return NULL;
    if (!check_object(budget, g_mime_message_get_mime_part(message), depth))
        return NULL;
    return g_steal_pointer(&message);
}

GMimeMessage *fbl_mime_load(fbl_mime_budget *budget, const char *data, size_t len, unsigned depth)
{
    return load(budget, data, len, depth, false);
}

GMimeMessage *fbl_mime_load_in_place(fbl_mime_budget *budget, const char *data, size_t len)
{
    return load(budget, data, len, 0, true);
}

/* NOLINTNEXTLINE(misc-no-recursion): bounded by max_mime_depth (and GMime's 1024 levels) */
static bool check_object(fbl_mime_budget *budget, GMimeObject *object, unsigned depth)
{
    const fbl_parse_options *lim = budget->limits;
    if (object == NULL)
        return true;
    if (depth > lim->max_mime_depth) {
        fbl_mime_budget_trip(budget, FBL_REJECT_TOO_DEEP, "MIME nesting deeper than %u",
                             lim->max_mime_depth);
        return false;
    }
    if (++budget->parts > lim->max_mime_parts) {
        fbl_mime_budget_trip(budget, FBL_REJECT_TOO_MANY_PARTS, "more than %u MIME parts",
                             lim->max_mime_parts);
        return false;
    }
    if (GMIME_IS_MULTIPART(object)) {
        GMimeMultipart *mp = GMIME_MULTIPART(object);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++) {
            if (!check_object(budget, g_mime_multipart_get_part(mp, i), depth + 1))
                return false;
        }
    } else if (GMIME_IS_MESSAGE_PART(object)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
        if (inner != NULL)
            return check_object(budget, g_mime_message_get_mime_part(inner), depth + 1);
    }
    return true;
}

GPtrArray *fbl_mime_leaves(GMimeMessage *message)
{
    GPtrArray *leaves = g_ptr_array_new();
    g_autoptr(GPtrArray) stack = g_ptr_array_new();
    GMimeObject *top = g_mime_message_get_mime_part(message);
    if (top != NULL)
        g_ptr_array_add(stack, top);
    while (stack->len > 0) {
        GMimeObject *obj = g_ptr_array_steal_index(stack, stack->len - 1);
        if (!GMIME_IS_MULTIPART(obj)) {
            g_ptr_array_add(leaves, obj);
            continue;
        }
        /* the first part on top: document order */
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        for (int i = g_mime_multipart_get_count(mp) - 1; i >= 0; i--) {
            GMimeObject *part = g_mime_multipart_get_part(mp, i);
            if (part != NULL)
                g_ptr_array_add(stack, part);
        }
    }
    return leaves;
}

GByteArray *fbl_mime_part_bytes(GMimePart *part)
{
    GByteArray *out = g_byte_array_new();
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    if (content == NULL)
        return out;
    g_autoptr(GMimeStream) mem = g_mime_stream_mem_new_with_byte_array(out);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    /* Decoding only shrinks (base64, QP, uuencode): bounded by the mail size. */
    if (g_mime_data_wrapper_write_to_stream(content, mem) < 0)
        g_byte_array_set_size(out, 0);
    return out;
}

/*
 * Converters to UTF-8 by charset, kept open, one set per thread (a GIConv is
 * not for two threads at once). g_convert() opens and closes one per call,
 * and glibc maps a charset's converter module at iconv_open() and unmaps it
 * at iconv_close(): a sixth of the parse time in bench/run, mostly munmap().
 * At most MAX_CONVERTERS are kept; past them a converter is closed after use.
 */
#define MAX_CONVERTERS 32

static void converters_free(gpointer table)
{
    g_hash_table_unref(table);
}

static GPrivate converters = G_PRIVATE_INIT(converters_free);

static void converter_close(gpointer cd)
{
    g_iconv_close((GIConv) cd);
}

/* What g_convert(bytes, len, "UTF-8", from, NULL, written, NULL) returns. */
static char *convert_to_utf8(const char *bytes, size_t len, const char *from, gsize *written)
{
    if (from == NULL)
        return NULL;
    GHashTable *table = g_private_get(&converters);
    if (table == NULL) {
        table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, converter_close);
        g_private_set(&converters, table);
    }
    gpointer cached = NULL;
    GIConv cd;
    if (g_hash_table_lookup_extended(table, from, NULL, &cached)) {
        cd = (GIConv) cached;
        g_iconv(cd, NULL, NULL, NULL, NULL); /* back to the initial shift state */
    } else {
        cd = g_iconv_open("UTF-8", from);
        if (cd == (GIConv) -1)
            return NULL;
        if (g_hash_table_size(table) < MAX_CONVERTERS) {
            g_hash_table_insert(table, g_strdup(from), cd);
            cached = cd;
        }
    }
    char *out = g_convert_with_iconv(bytes, (gssize) len, cd, NULL, written, NULL);
    if (cached == NULL)
        g_iconv_close(cd);
    return out;
}

char *fbl_mime_to_utf8(const char *bytes, size_t len, const char *charset, bool *lossy)
{
    if (lossy != NULL)
        *lossy = false;
    if (len == 0)
        return g_strdup("");
    const char *end = NULL;
    bool is_utf8 = g_utf8_validate(bytes, (gssize) len, &end) && memchr(bytes, 0, len) == NULL;
    if (charset != NULL && !is_utf8) {
        const char *iconv_name = g_mime_charset_iconv_name(charset);
        gsize written = 0;
        char *out = convert_to_utf8(bytes, len, iconv_name, &written);
        if (out != NULL && memchr(out, 0, written) == NULL)
            return out;
        g_free(out);
    }
    if (is_utf8)
        return g_strndup(bytes, len);
    if (lossy != NULL)
        *lossy = true;
    g_autoptr(GMimeParserOptions) opts = g_mime_parser_options_new();
    static const char *const fallback[] = {"UTF-8", "windows-1252", NULL};
    g_mime_parser_options_set_fallback_charsets(opts, (const char **) fallback);
    /* decode_8bit stops at a NUL; replace them so nothing after one is lost. */
    g_autofree char *nonul = g_memdup2(bytes, len);
    for (size_t i = 0; i < len; i++) {
        if (nonul[i] == '\0')
            nonul[i] = ' ';
    }
    char *out = g_mime_utils_decode_8bit(opts, nonul, len);
    if (!g_utf8_validate(out, -1, NULL)) {
        char *valid = g_utf8_make_valid(out, -1);
        g_free(out);
        out = valid;
    }
    return out;
}

char *fbl_mime_part_text(GMimePart *part, bool *lossy)
{
    g_autoptr(GByteArray) bytes = fbl_mime_part_bytes(part);
    const char *charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
    return fbl_mime_to_utf8((const char *) bytes->data, bytes->len, charset, lossy);
}

bool fbl_mime_is_type(GMimeObject *object, const char *type, const char *subtype)
{
    GMimeContentType *ct = g_mime_object_get_content_type(object);
    return ct != NULL && g_mime_content_type_is_type(ct, type, subtype);
}

const char *fbl_mime_header(GMimeObject *object, const char *name)
{
    return g_mime_object_get_header(object, name);
}

/* ---- RFC 2047 runs --------------------------------------------------------- */

typedef struct eword {
    const char *start, *end; /* the whole "=?cs?B?payload?=" */
    char *charset;
    const char *payload;
    size_t payload_len;
} eword;

/* A base64 encoded word at @p ("=?cs?B?...?="), or false. */
static bool parse_bword(const char *p, eword *w)
{
    if (p[0] != '=' || p[1] != '?')
        return false;
    const char *cs = p + 2, *q = strchr(cs, '?');
    if (q == NULL || q == cs || q - cs > 64 || (q[1] != 'B' && q[1] != 'b') || q[2] != '?')
        return false;
    const char *payload = q + 3, *end = strstr(payload, "?=");
    if (end == NULL || strspn(payload, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789+/=") != (size_t) (end - payload))
        return false;
    w->start = p;
    w->end = end + 2;
    w->charset = g_strndup(cs, (size_t) (q - cs));
    w->payload = payload;
    w->payload_len = (size_t) (end - payload);
    return true;
}

/* Write the run @words[0..n) as one word when its inner padding would cut it short. */
static void emit_run(GString *out, eword *words, size_t n)
{
    bool inner_padding = false;
    for (size_t i = 0; i + 1 < n; i++)
        inner_padding = inner_padding || memchr(words[i].payload, '=', words[i].payload_len);
    if (!inner_padding) {
        g_string_append_len(out, words[0].start, words[n - 1].end - words[0].start);
        return;
    }
    GByteArray *bytes = g_byte_array_new();
    for (size_t i = 0; i < n; i++) {
        g_autofree char *b64 = g_strndup(words[i].payload, words[i].payload_len);
        gsize len = 0;
        g_autofree guchar *raw = g_base64_decode(b64, &len);
        g_byte_array_append(bytes, raw, (guint) len);
    }
    g_autofree char *joined = g_base64_encode(bytes->data, bytes->len);
    g_string_append_printf(out, "=?%s?B?%s?=", words[0].charset, joined);
    g_byte_array_unref(bytes);
}

char *fbl_rfc2047_join(const char *raw)
{
    GString *out = g_string_new(NULL);
    const char *p = raw;
    while (*p != '\0') {
        eword first;
        if (!parse_bword(p, &first)) {
            g_string_append_c(out, *p++);
            continue;
        }
        GArray *run = g_array_new(FALSE, FALSE, sizeof(eword));
        g_array_append_val(run, first);
        const char *next = first.end;
        for (;;) {
            const char *q = next;
            while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
                q++;
            eword w;
            if (!parse_bword(q, &w))
                break;
            if (g_ascii_strcasecmp(w.charset, first.charset) != 0) {
                g_free(w.charset);
                break;
            }
            g_array_append_val(run, w);
            next = w.end;
        }
        emit_run(out, (eword *) run->data, run->len);
        for (guint i = 0; i < run->len; i++)
            g_free(g_array_index(run, eword, i).charset);
        g_array_free(run, TRUE);
        p = next;
    }
    return g_string_free(out, FALSE);
}

static const char *raw_header(GMimeObject *object, const char *name)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(object);
    GMimeHeader *h = hl != NULL ? g_mime_header_list_get_header(hl, name) : NULL;
    return h != NULL ? g_mime_header_get_raw_value(h) : NULL;
}

static GMimeParserOptions *decode_options(void)
{
    static const char *const fallback[] = {"UTF-8", "windows-1252", NULL};
    GMimeParserOptions *o = g_mime_parser_options_new();
    g_mime_parser_options_set_rfc2047_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(o, TRUE);
    g_mime_parser_options_set_fallback_charsets(o, (const char **) fallback);
    return o;
}

/* RFC 5322 unfolding: delete each CRLF (or bare LF, CR) and keep the white space after it. */
static char *unfold(const char *raw)
{
    size_t n = strlen(raw);
    char *out = g_malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (raw[i] != '\r' && raw[i] != '\n')
            out[k++] = raw[i];
    }
    out[k] = '\0';
    return out;
}

char *fbl_mime_header_text(GMimeObject *object, const char *name)
{
    const char *raw = raw_header(object, name);
    if (raw == NULL)
        return NULL;
    g_autofree char *unfolded = unfold(raw);
    g_autofree char *joined = fbl_rfc2047_join(unfolded);
    g_autoptr(GMimeParserOptions) o = decode_options();
    g_autofree char *text = g_mime_utils_header_decode_text(o, joined);
    char *valid = g_utf8_make_valid(text != NULL ? text : "", -1);
    return g_strstrip(valid);
}

/* Parameter @param of header @header of @object, parsed again from the raw
 * header after fbl_rfc2047_join: GMime decoded it at load without the repair. */
static char *repaired_param(GMimeObject *object, const char *header, const char *param)
{
    const char *raw = raw_header(object, header);
    if (raw == NULL || strstr(raw, "=?") == NULL)
        return NULL;
    g_autofree char *unfolded = unfold(raw);
    g_autofree char *joined = fbl_rfc2047_join(unfolded);
    g_autoptr(GMimeParserOptions) o = decode_options();
    char *copy = NULL;
    if (g_ascii_strcasecmp(header, "Content-Disposition") == 0) {
        GMimeContentDisposition *d = g_mime_content_disposition_parse(o, joined);
        if (d != NULL) {
            copy = g_strdup(g_mime_content_disposition_get_parameter(d, param));
            g_object_unref(d);
        }
    } else {
        GMimeContentType *t = g_mime_content_type_parse(o, joined);
        if (t != NULL) {
            copy = g_strdup(g_mime_content_type_get_parameter(t, param));
            g_object_unref(t);
        }
    }
    return copy;
}

char *fbl_mime_filename(GMimeObject *object)
{
    char *name = repaired_param(object, "Content-Disposition", "filename");
    if (name == NULL)
        name = repaired_param(object, "Content-Type", "name");
    if (name == NULL) {
        const char *gmime = g_mime_object_get_content_disposition_parameter(object, "filename");
        if (gmime == NULL)
            gmime = g_mime_object_get_content_type_parameter(object, "name");
        name = g_strdup(gmime);
    }
    if (name == NULL)
        return NULL;
    char *valid = g_utf8_make_valid(name, -1);
    g_free(name);
    return valid;
}

/* Append @text[0..n) as a quoted string, its quotes and backslashes escaped. */
static void append_quoted(GString *out, const char *text, size_t n)
{
    while (n > 0 && g_ascii_isspace(*text)) {
        text++;
        n--;
    }
    while (n > 0 && g_ascii_isspace(text[n - 1]))
        n--;
    g_string_append_c(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '"' || text[i] == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, text[i]);
    }
    g_string_append(out, "\" ");
}

/* An unquoted display name with characters a phrase cannot hold ("@Name <a@b>"). */
static bool phrase_needs_quotes(const char *s, size_t n)
{
    bool quoted = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            quoted = !quoted;
        else if (!quoted && strchr("@:;[]", s[i]) != NULL)
            return true;
    }
    return false;
}

/* Copy one mailbox (no top-level comma in it), mending a spoofed display name. */
static void append_mailbox(GString *out, const char *s, size_t n)
{
    const char *last = NULL;
    unsigned angles = 0, depth = 0;
    bool quoted = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n)
            i++;
        else if (s[i] == '"')
            quoted = !quoted;
        else if (!quoted && s[i] == '(')
            depth++;
        else if (!quoted && s[i] == ')' && depth > 0)
            depth--;
        else if (!quoted && depth == 0 && s[i] == '<') {
            angles++;
            last = s + i;
        }
    }
    if (angles == 0 || (angles == 1 && !phrase_needs_quotes(s, (size_t) (last - s)))) {
        g_string_append_len(out, s, (gssize) n);
        return;
    }
    append_quoted(out, s, (size_t) (last - s));
    g_string_append_len(out, last, (gssize) (n - (size_t) (last - s)));
}

/*
 * "Bank <service@bank.example> <x@spammer.example>": a display name that shows
 * an address, the real one last. RFC 5322 has one angle-addr per mailbox, so
 * everything before the last one is the display name; GMime would take the
 * first. A display name with an "@" or ":" unquoted ("@Shop <a@b>") is quoted
 * too: GMime would give up on it. Each top-level comma-separated mailbox is
 * mended on its own.
 */
static char *mend_spoofed_names(const char *value)
{
    GString *out = g_string_sized_new(strlen(value) + 8);
    const char *start = value;
    unsigned depth = 0;
    bool quoted = false;
    for (const char *p = value;; p++) {
        if (*p == '\0' || (*p == ',' && !quoted && depth == 0)) {
            append_mailbox(out, start, (size_t) (p - start));
            if (*p == '\0')
                break;
            g_string_append_c(out, ',');
            start = p + 1;
        } else if (*p == '\\' && p[1] != '\0') {
            p++;
        } else if (*p == '"') {
            quoted = !quoted;
        } else if (!quoted && *p == '(') {
            depth++;
        } else if (!quoted && *p == ')' && depth > 0) {
            depth--;
        }
    }
    return g_string_free(out, FALSE);
}

bool fbl_mime_bytes_contain(const GByteArray *bytes, size_t limit, const char *needle)
{
    if (bytes == NULL || bytes->len == 0 || bytes->data == NULL)
        return false;
    size_t n = limit > 0 ? MIN(limit, (size_t) bytes->len) : bytes->len;
    return memmem(bytes->data, n, needle, strlen(needle)) != NULL;
}

InternetAddressList *fbl_mime_header_addresses(GMimeObject *object, const char *name)
{
    /* Every field of that name, as one list: a repeated From is read whole, as GMime does. */
    GMimeHeaderList *hl = g_mime_object_get_header_list(object);
    g_autoptr(GString) all = g_string_new(NULL);
    int n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < n && all->len <= (size_t) 64 * 1024; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *raw = g_mime_header_get_raw_value(h);
        if (raw == NULL || g_ascii_strcasecmp(g_mime_header_get_name(h), name) != 0)
            continue;
        if (all->len > 0)
            g_string_append_c(all, ',');
        g_string_append(all, raw);
    }
    if (all->len == 0 || all->len > (size_t) 64 * 1024)
        return NULL;
    g_autofree char *joined = fbl_rfc2047_join(all->str);
    g_autofree char *mended = mend_spoofed_names(joined);
    g_autoptr(GMimeParserOptions) o = decode_options();
    return internet_address_list_parse(o, mended);
}
