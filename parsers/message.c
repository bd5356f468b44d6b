/* message.c - headers, hops, links, attachments and fingerprint of a reported message */
#include "parsers/message.h"

#include <string.h>

#include "parsers/address.h"
#include "parsers/fingerprint.h"
#include "parsers/mime.h"
#include "parsers/received.h"
#include "parsers/urls.h"

static void warn(GPtrArray *warnings, const char *text)
{
    fbl_strv_add_unique(warnings, text);
}

/* A header value fit for the contract: valid UTF-8, trimmed, non-empty. */
static char *clean_value(const char *value)
{
    if (value == NULL)
        return NULL;
    g_autofree char *v = g_utf8_make_valid(value, -1);
    g_strstrip(v);
    if (*v == '\0')
        return NULL;
    return g_steal_pointer(&v);
}

/* A message id without its angle brackets or the white space around them. */
static char *bare_id(const char *id)
{
    g_autofree char *v = clean_value(id);
    if (v == NULL)
        return NULL;
    g_strdelimit(v, "<>", ' ');
    /* Trim Unicode space too: a forward's text may hold no-break spaces. */
    const char *start = v;
    while (*start != '\0' && g_unichar_isspace(g_utf8_get_char(start)))
        start = g_utf8_next_char(start);
    const char *end = start + strlen(start);
    while (end > start) {
        const char *prev = g_utf8_find_prev_char(start, end);
        if (prev == NULL || !g_unichar_isspace(g_utf8_get_char(prev)))
            break;
        end = prev;
    }
    return end > start ? g_strndup(start, (gsize) (end - start)) : NULL;
}

static char *message_id(GMimeMessage *msg)
{
    /* GMime wants <...> and may hand back what it could not parse; reports carry
     * bare ones too ("8787KJ@example.net"), and forwards cut ones. */
    char *id = bare_id(g_mime_message_get_message_id(msg));
    return id != NULL ? id : bare_id(fbl_mime_header(GMIME_OBJECT(msg), "Message-ID"));
}

fbl_dkim *fbl_dkim_tags(const char *value)
{
    if (value == NULL)
        return NULL;
    g_auto(GStrv) tags = g_strsplit(value, ";", 64);
    fbl_dkim *sig = g_new0(fbl_dkim, 1);
    for (size_t i = 0; tags[i] != NULL; i++) {
        char *t = g_strstrip(tags[i]);
        char *eq = strchr(t, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        g_strstrip(t);
        /* Tag values may be folded: drop all white space (RFC 6376 §3.2). */
        GString *v = g_string_new(NULL);
        for (const char *p = eq + 1; *p != '\0'; p++) {
            if (!g_ascii_isspace(*p))
                g_string_append_c(v, *p);
        }
        if (strcmp(t, "d") == 0 && sig->d == NULL && v->len > 0 && v->len <= 255)
            sig->d = g_utf8_strdown(v->str, -1);
        else if (strcmp(t, "s") == 0 && sig->s == NULL && v->len > 0 && v->len <= 255)
            sig->s = g_strdup(v->str);
        g_string_free(v, TRUE);
    }
    if (sig->d == NULL || !g_utf8_validate(sig->d, -1, NULL) ||
        (sig->s != NULL && !g_utf8_validate(sig->s, -1, NULL))) {
        fbl_dkim_free(sig);
        return NULL;
    }
    return sig;
}

static void take_headers(fbl_message *m, GMimeMessage *msg, GPtrArray *warnings)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
    int n = g_mime_header_list_get_count(hl);
    bool hops_dropped = false, dkim_dropped = false;
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(h);
        const char *value = g_mime_header_get_value(h);
        if (value == NULL)
            continue;
        if (g_ascii_strcasecmp(name, "X-HmXmrOriginalRecipient") == 0) {
            /* Microsoft's JMRP stamps this where the spam's own chain starts:
             * the hops above it carried the complaint, not the spam. */
            g_ptr_array_set_size(m->received, 0);
        } else if (g_ascii_strcasecmp(name, "Received") == 0) {
            if (m->received->len < FBL_MESSAGE_MAX_HOPS)
                g_ptr_array_add(m->received, fbl_received_parse(value));
            else
                hops_dropped = true;
        } else if (g_ascii_strcasecmp(name, "DKIM-Signature") == 0) {
            fbl_dkim *sig = fbl_dkim_tags(value);
            if (sig != NULL && m->dkim->len < FBL_MESSAGE_MAX_DKIM)
                g_ptr_array_add(m->dkim, sig);
            else {
                dkim_dropped = dkim_dropped || sig != NULL;
                fbl_dkim_free(sig);
            }
        }
    }
    if (hops_dropped)
        warn(warnings, "message: more Received hops than the limit; the oldest left out");
    if (dkim_dropped)
        warn(warnings, "message: more DKIM signatures than the limit; the rest left out");
}

/*
 * The domain of a From whose local part is no address at all (8-bit mojibake,
 * spaces): the host name after its last "@", when it is one. The sender's
 * domain is what abuse desks group by, even when the mailbox is unreadable.
 */
static char *domain_after_at(const char *value)
{
    const char *at = value != NULL ? strrchr(value, '@') : NULL;
    if (at == NULL)
        return NULL;
    size_t n = 0;
    while (g_ascii_isalnum(at[1 + n]) || at[1 + n] == '.' || at[1 + n] == '-')
        n++;
    while (n > 0 && at[n] == '.')
        n--;
    if (n == 0 || n > 253 || memchr(at + 1, '.', n) == NULL)
        return NULL;
    return g_ascii_strdown(at + 1, (gssize) n);
}

static void take_addresses(fbl_message *m, GMimeMessage *msg, GPtrArray *recipient_names)
{
    g_autoptr(GPtrArray) one = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    InternetAddressList *from = fbl_mime_header_addresses(GMIME_OBJECT(msg), "From");
    fbl_address_list_take(from, one, names, 1);
    g_clear_object(&from);
    if (one->len > 0) {
        m->from = g_strdup(g_ptr_array_index(one, 0));
        const char *nm = g_ptr_array_index(names, 0);
        m->from_name = *nm != '\0' ? g_strdup(nm) : NULL;
    }
    m->from_domain = fbl_address_domain(m->from);
    if (m->from_domain == NULL)
        m->from_domain = domain_after_at(fbl_mime_header(GMIME_OBJECT(msg), "From"));

    g_ptr_array_set_size(one, 0);
    fbl_address_list_take(g_mime_message_get_sender(msg), one, NULL, 1);
    m->sender = one->len > 0 ? g_strdup(g_ptr_array_index(one, 0)) : NULL;
    g_ptr_array_set_size(one, 0);
    fbl_address_list_take(g_mime_message_get_reply_to(msg), one, NULL, 1);
    m->reply_to = one->len > 0 ? g_strdup(g_ptr_array_index(one, 0)) : NULL;
    m->return_path = fbl_address_spec(fbl_mime_header(GMIME_OBJECT(msg), "Return-Path"), NULL);

    fbl_address_list_take(g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_TO), m->to,
                          recipient_names, FBL_MESSAGE_MAX_LIST);
}

/* What the body walk collects. */
typedef struct body {
    fbl_message *m;
    fbl_urls urls;
    GString *plain; /* text/plain bodies, for the fingerprint */
    GString *html_text;
    bool lossy;
    bool attachments_dropped;
} body;

static void add_attachment(body *b, const char *name, const char *type, const guint8 *data,
                           size_t len)
{
    if (b->m->attachments->len >= FBL_MESSAGE_MAX_ATTACHMENTS) {
        b->attachments_dropped = true;
        return;
    }
    fbl_attachment *a = g_new0(fbl_attachment, 1);
    a->name = name != NULL ? g_utf8_make_valid(name, -1) : NULL;
    a->type = g_ascii_strdown(type, -1);
    a->size = (int64_t) len;
    fbl_sha256_hex(data, len, a->sha256);
    g_ptr_array_add(b->m->attachments, a);
}

static void append_bounded(GString *s, const char *text)
{
    if (s->len >= FBL_FINGERPRINT_MAX_TEXT)
        return;
    size_t room = FBL_FINGERPRINT_MAX_TEXT - s->len;
    size_t n = strnlen(text, room);
    /* Do not cut a UTF-8 sequence in half. */
    while (n > 0 && n < strlen(text) && (text[n] & 0xC0) == 0x80)
        n--;
    g_string_append_len(s, text, (gssize) n);
    g_string_append_c(s, '\n');
}

static void visit_leaf(body *b, GMimePart *part)
{
    GMimeObject *obj = GMIME_OBJECT(part);
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    g_autofree char *type =
        ct != NULL ? g_mime_content_type_get_mime_type(ct) : g_strdup("text/plain");
    g_autofree char *filename = fbl_mime_filename(obj);
    GMimeContentDisposition *disp = g_mime_object_get_content_disposition(obj);
    bool attachment =
        filename != NULL || (disp != NULL && g_mime_content_disposition_is_attachment(disp));
    bool plain = fbl_mime_is_type(obj, "text", "plain");
    bool html = fbl_mime_is_type(obj, "text", "html");

    if (attachment || (!plain && !html)) {
        g_autoptr(GByteArray) bytes = fbl_mime_part_bytes(part);
        add_attachment(b, filename, type, bytes->data, bytes->len);
        return;
    }
    bool lossy = false;
    g_autofree char *text = fbl_mime_part_text(part, &lossy);
    b->lossy = b->lossy || lossy;
    if (plain) {
        fbl_urls_scan_text(&b->urls, text, strlen(text));
        append_bounded(b->plain, text);
    } else {
        GString *visible = g_string_new(NULL);
        fbl_urls_scan_html(&b->urls, text, strlen(text), visible);
        append_bounded(b->html_text, visible->str);
        g_string_free(visible, TRUE);
    }
}

static void visit_message_part(body *b, GMimeMessagePart *mp)
{
    GMimeObject *obj = GMIME_OBJECT(mp);
    GMimeMessage *inner = g_mime_message_part_get_message(mp);
    g_autoptr(GMimeStream) mem = g_mime_stream_mem_new();
    if (inner != NULL)
        (void) g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, mem);
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    g_autofree char *name = fbl_mime_filename(obj);
    add_attachment(b, name, "message/rfc822", bytes->data, bytes->len);
}

/* Every part of the body visited once, in document order. */
static void walk_body(body *b, GMimeMessage *msg)
{
    g_autoptr(GPtrArray) leaves = fbl_mime_leaves(msg);
    for (guint i = 0; i < leaves->len; i++) {
        GMimeObject *obj = g_ptr_array_index(leaves, i);
        if (GMIME_IS_MESSAGE_PART(obj))
            visit_message_part(b, GMIME_MESSAGE_PART(obj));
        else if (GMIME_IS_PART(obj))
            visit_leaf(b, GMIME_PART(obj));
    }
}

static void take_body(fbl_message *m, GMimeMessage *msg, GPtrArray *recipient_names,
                      GPtrArray *warnings)
{
    body b = {.m = m, .plain = g_string_new(NULL), .html_text = g_string_new(NULL)};
    fbl_urls_init(&b.urls, m->urls, m->url_hosts);
    walk_body(&b, msg);
    if (b.lossy)
        warn(warnings, "message: body text in an unknown or wrong charset, decoded by guess");
    if (b.urls.obfuscated)
        warn(warnings, "urls: obfuscated link (hxxp, [.]) seen and not followed");
    if (b.urls.truncated)
        warn(warnings, "urls: more links than the limit; the rest left out");
    if (b.attachments_dropped)
        warn(warnings, "message: more attachments than the limit; the rest left out");
    bool has_plain = strspn(b.plain->str, " \t\r\n") < b.plain->len;
    m->fingerprint = fbl_fingerprint(m->subject, has_plain ? b.plain->str : b.html_text->str, m->to,
                                     recipient_names);
    g_string_free(b.plain, TRUE);
    g_string_free(b.html_text, TRUE);
}

void fbl_message_fill(fbl_message *out, GMimeMessage *message, bool headers_only, int64_t size,
                      GPtrArray *warnings)
{
    GMimeObject *obj = GMIME_OBJECT(message);
    out->headers_only = headers_only;
    out->size = size;
    out->message_id = message_id(message);
    const char *date = fbl_mime_header(obj, "Date");
    out->date = fbl_date_to_iso(date);
    if (date != NULL && out->date == NULL)
        warn(warnings, "message: unreadable Date header");
    g_autofree char *subject = fbl_mime_header_text(obj, "Subject");
    out->subject = clean_value(subject);
    out->list_unsubscribe = clean_value(fbl_mime_header(obj, "List-Unsubscribe"));
    out->cfbl_address = clean_value(fbl_mime_header(obj, "CFBL-Address"));
    out->cfbl_feedback_id = clean_value(fbl_mime_header(obj, "CFBL-Feedback-ID"));
    out->x_mailer = clean_value(fbl_mime_header(obj, "X-Mailer"));
    if (out->x_mailer == NULL)
        out->x_mailer = clean_value(fbl_mime_header(obj, "User-Agent"));

    g_autoptr(GPtrArray) recipient_names = g_ptr_array_new_with_free_func(g_free);
    take_addresses(out, message, recipient_names);
    take_headers(out, message, warnings);
    if (headers_only)
        out->fingerprint = fbl_fingerprint(out->subject, NULL, out->to, recipient_names);
    else
        take_body(out, message, recipient_names, warnings);
}
