/* parse.c - one mail into reports or a reject: limits, detection, assembly */
#define G_LOG_DOMAIN "fbl-parse"
#include "parsers/parse.h"

#include <string.h>

#include <libxml/parser.h>

#include "parsers/address.h"
#include "parsers/auth.h"
#include "parsers/arf.h"
#include "parsers/ip.h"
#include "parsers/message.h"
#include "parsers/mime.h"
#include "parsers/outbound.h"
#include "parsers/parse_internal.h"
#include "parsers/provider.h"
#include "parsers/source.h"

struct fbl_parser {
    fbl_parse_options options;
    GStrv trusted_networks; /* the copies the options point at */
    GStrv trusted_hosts;
    char *authserv_id;
    fbl_netset *trusted;
    fbl_outbound_scope *local; /* NULL: none; the options' local_* are not kept */
};

GQuark fbl_parse_error_quark(void)
{
    return g_quark_from_static_string("fbl-parse-error");
}

void fbl_parse_options_init(fbl_parse_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_mail_bytes = FBL_DEFAULT_MAX_MAIL_BYTES;
    o->max_mime_depth = FBL_DEFAULT_MAX_MIME_DEPTH;
    o->max_mime_parts = FBL_DEFAULT_MAX_MIME_PARTS;
    o->max_headers = FBL_DEFAULT_MAX_HEADERS;
    o->max_header_bytes = FBL_DEFAULT_MAX_HEADER_BYTES;
}

fbl_parser *fbl_parser_new(const fbl_parse_options *options, GError **error)
{
    if (options->max_mail_bytes == 0 || options->max_mime_depth == 0 ||
        options->max_mime_parts == 0 || options->max_headers == 0 ||
        options->max_header_bytes == 0) {
        g_set_error(error, FBL_PARSE_ERROR, FBL_PARSE_ERROR_OPTION, "limits must be positive");
        return NULL;
    }
    g_autoptr(GError) local = NULL;
    fbl_netset *trusted = fbl_netset_new(options->trusted_networks, &local);
    if (trusted == NULL) {
        g_set_error(error, FBL_PARSE_ERROR, FBL_PARSE_ERROR_OPTION, "trusted networks: %s",
                    local->message);
        return NULL;
    }
    g_autoptr(GError) scope_error = NULL;
    fbl_outbound_scope *scope =
        fbl_outbound_scope_new(options->local_networks, options->local_domains, &scope_error);
    if (scope_error != NULL) {
        fbl_netset_free(trusted);
        g_propagate_error(error, g_steal_pointer(&scope_error));
        return NULL;
    }
    fbl_parser *p = g_new0(fbl_parser, 1);
    p->options = *options;
    p->options.local_networks = NULL;
    p->options.local_domains = NULL;
    p->local = scope;
    p->trusted_networks = g_strdupv((char **) options->trusted_networks);
    p->options.trusted_networks = (const char *const *) p->trusted_networks;
    p->trusted_hosts = g_strdupv((char **) options->trusted_hosts);
    p->options.trusted_hosts = (const char *const *) p->trusted_hosts;
    p->authserv_id = g_strdup(options->authserv_id);
    p->options.authserv_id = p->authserv_id;
    p->trusted = trusted;
    return p;
}

void fbl_parser_free(fbl_parser *parser)
{
    if (parser == NULL)
        return;
    g_strfreev(parser->trusted_networks);
    g_strfreev(parser->trusted_hosts);
    g_free(parser->authserv_id);
    fbl_netset_free(parser->trusted);
    fbl_outbound_scope_free(parser->local);
    g_free(parser);
}

/* ---- helpers the format modules share (parse_internal.h) --------------- */

void fbl_original_clear(fbl_original *o)
{
    g_clear_object(&o->message);
}

static bool is_headers_type(GMimeObject *obj)
{
    /* RFC 6522's text/rfc822-headers and the misspellings real reports use. */
    return fbl_mime_is_type(obj, "text", "rfc822-headers") ||
           fbl_mime_is_type(obj, "text", "rfc822-header") ||
           fbl_mime_is_type(obj, "message", "rfc822-headers") ||
           fbl_mime_is_type(obj, "message", "rfc822-header");
}

static bool is_eml_name(GMimeObject *obj)
{
    const char *name = GMIME_IS_PART(obj) ? g_mime_part_get_filename(GMIME_PART(obj)) : NULL;
    size_t n = name != NULL ? strlen(name) : 0;
    return n > 4 && g_ascii_strcasecmp(name + n - 4, ".eml") == 0;
}

bool fbl_parse_looks_like_mail(GMimeMessage *m)
{
    static const char *const names[] = {"From", "Received",    "Subject", "Message-ID",
                                        "Date", "Return-Path", "To"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (fbl_mime_header(GMIME_OBJECT(m), names[i]) != NULL)
            return true;
    }
    return false;
}

/*
 * The size of a parsed message as GMime writes it: line ends count one byte
 * (LF), so a CRLF and an LF copy of one message have one size. (GMime's
 * write_to_stream returns the bytes before its newline filter: measure
 * what was written instead, into a null stream, which only counts it.)
 */
static int64_t serialized_size(GMimeObject *obj)
{
    g_autoptr(GMimeStream) null = g_mime_stream_null_new();
    if (g_mime_object_write_to_stream(obj, NULL, null) < 0)
        return -1;
    return (int64_t) GMIME_STREAM_NULL(null)->written;
}

bool fbl_parse_load_bytes(fbl_parse_ctx *c, const char *bytes, size_t len, unsigned depth,
                          fbl_original *out)
{
    memset(out, 0, sizeof *out);
    out->size = (int64_t) len;
    out->message = fbl_mime_load(&c->budget, bytes, len, depth);
    if (out->message != NULL && !fbl_parse_looks_like_mail(out->message))
        g_clear_object(&out->message);
    return out->message != NULL;
}

/* How much of an attached file is looked at to tell a mail's source from other text. */
#define SOURCE_PEEK_BYTES (64 * 1024)

/* A line "Name: value" whose name is a header field name; returns the name's length. */
static size_t field_name_length(const char *line, size_t len)
{
    size_t n = 0;
    while (n < len && (g_ascii_isalnum(line[n]) || line[n] == '-' || line[n] == '_'))
        n++;
    return n > 0 && n < len && line[n] == ':' ? n : 0;
}

/*
 * The text starts with a mail's header block: its first line is a header field
 * and the block (up to the first empty line) holds at least three of the
 * fields every mail has. An mbox "From " line before it is allowed. This is
 * how a mail's source saved as a .txt, or as a file without a name, is told
 * from a log or a letter.
 */
/* A field name (@len bytes at @name) that most mails' header blocks carry. */
static bool is_common_field(const char *name, size_t len)
{
    static const char *const names[] = {"received",       "from",         "to",
                                        "subject",        "date",         "message-id",
                                        "return-path",    "mime-version", "content-type",
                                        "dkim-signature", "delivered-to"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (strlen(names[i]) == len && g_ascii_strncasecmp(name, names[i], len) == 0)
            return true;
    }
    return false;
}

static bool starts_with_header_block(const guint8 *data, size_t len)
{
    if (data == NULL || len == 0)
        return false;
    const char *p = (const char *) data, *end = p + MIN(len, (size_t) SOURCE_PEEK_BYTES);
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    unsigned lines = 0, known = 0;
    for (const char *eol; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL)
            eol = end;
        size_t n = (size_t) (eol - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* the end of the header block */
        if (lines++ == 0 && n > 5 && strncmp(p, "From ", 5) == 0)
            continue;
        if (p[0] == ' ' || p[0] == '\t')
            continue; /* a folded line */
        size_t name = field_name_length(p, n);
        if (name == 0)
            return false;
        if (is_common_field(p, name))
            known++;
    }
    return known >= 3;
}

/* An attached file (a name, an attachment disposition, or octet-stream) of text or bytes. */
static bool is_attached_file(GMimeObject *obj)
{
    if (!fbl_mime_is_type(obj, "text", "*") && !fbl_mime_is_type(obj, "application", "*"))
        return false;
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
    return g_mime_part_get_filename(GMIME_PART(obj)) != NULL ||
           (d != NULL && g_mime_content_disposition_is_attachment(d)) ||
           fbl_mime_is_type(obj, "application", "octet-stream");
}

bool fbl_parse_load_original(fbl_parse_ctx *c, GMimeObject *obj, unsigned depth, fbl_original *out)
{
    memset(out, 0, sizeof *out);
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m == NULL || !fbl_parse_looks_like_mail(m))
            return false;
        out->message = g_object_ref(m);
        out->size = serialized_size(GMIME_OBJECT(m));
        return true;
    }
    if (!GMIME_IS_PART(obj))
        return false;
    bool headers = is_headers_type(obj);
    bool file = !headers && !fbl_mime_is_type(obj, "message", "rfc822") && !is_eml_name(obj);
    if (file && !is_attached_file(obj))
        return false;
    g_autoptr(GByteArray) bytes = fbl_mime_part_bytes(GMIME_PART(obj));
    if (file && !starts_with_header_block(bytes->data, bytes->len))
        return false;
    size_t size = bytes->len;
    if (headers) /* end the header block so GMime does not read a body into it */
        g_byte_array_append(bytes, (const guint8 *) "\n\n", 2);
    bool ok = fbl_parse_load_bytes(c, (const char *) bytes->data, bytes->len, depth + 1, out);
    out->headers_only = headers;
    out->size = (int64_t) size;
    return ok;
}

static char *iso_time(int64_t when)
{
    GDateTime *dt = g_date_time_new_from_unix_utc(when);
    if (dt == NULL)
        return NULL;
    char *s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(dt);
    return s;
}

/* A run of one masking character: "xxxx", "*****", "###". */
static bool masking_run(const char *s, size_t n)
{
    if (n == 0)
        return false;
    char ch = g_ascii_tolower(s[0]);
    if (ch != 'x' && ch != '*' && ch != '#')
        return false;
    for (size_t i = 1; i < n; i++) {
        if (g_ascii_tolower(s[i]) != ch)
            return false;
    }
    return true;
}

/* A local part that is a hash (hex, 24 characters or more): a pseudonym. */
static bool hashed(const char *s, size_t n)
{
    if (n < 24)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isxdigit(s[i]))
            return false;
    }
    return true;
}

/*
 * A recipient hidden by whoever sent the report: the word "redacted" or
 * "undisclosed" anywhere, a local part (or the whole value) of only masking
 * characters ("xxxxx@xxxx.com", "*****", "<X>"), or a hashed local part.
 */
static bool looks_masked(const char *value)
{
    if (value == NULL)
        return false;
    g_autofree char *lower = g_ascii_strdown(value, -1);
    if (strstr(lower, "redacted") != NULL || strstr(lower, "undisclosed") != NULL)
        return true;
    const char *p = lower;
    while (*p == ' ' || *p == '<' || *p == '"')
        p++;
    size_t n = strcspn(p, "@> \"");
    return masking_run(p, n) || hashed(p, n);
}

static bool any_masked(const GPtrArray *list)
{
    for (guint i = 0; i < list->len; i++) {
        if (looks_masked(g_ptr_array_index(list, i)))
            return true;
    }
    return false;
}

/* The recipient as the reported message's own headers give it: To, Delivered-To,
 * X-Original-To, and Received's "for <…>". */
static bool headers_masked(GMimeMessage *m)
{
    static const char *const names[] = {"To", "Delivered-To", "X-Original-To"};
    GMimeObject *o = GMIME_OBJECT(m);
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (looks_masked(fbl_mime_header(o, names[i])))
            return true;
    }
    GMimeHeaderList *hl = g_mime_object_get_header_list(o);
    int n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < n && i < 64; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *v = g_mime_header_get_raw_value(h);
        const char *f = v != NULL && g_ascii_strcasecmp(g_mime_header_get_name(h), "Received") == 0
                            ? strstr(v, " for ")
                            : NULL;
        if (f != NULL && looks_masked(f + strlen(" for ")))
            return true;
    }
    return false;
}

char *fbl_parse_sender(GMimeMessage *message)
{
    g_autoptr(GPtrArray) one = g_ptr_array_new_with_free_func(g_free);
    fbl_address_list_take(g_mime_message_get_from(message), one, NULL, 1);
    return one->len > 0 ? g_strdup(g_ptr_array_index(one, 0)) : NULL;
}

bool fbl_parse_sender_is(GMimeMessage *message, const char *suffix)
{
    g_autofree char *from = fbl_parse_sender(message);
    return from != NULL && g_str_has_suffix(from, suffix);
}

/* The first address of header @name of @m, with its display name. */
static char *header_address(GMimeMessage *m, const char *name, char **display)
{
    g_autoptr(GPtrArray) one = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    InternetAddressList *list = fbl_mime_header_addresses(GMIME_OBJECT(m), name);
    fbl_address_list_take(list, one, names, 1);
    g_clear_object(&list);
    if (one->len == 0)
        return NULL;
    if (display != NULL) {
        const char *nm = g_ptr_array_index(names, 0);
        *display = *nm != '\0' ? g_strdup(nm) : NULL;
    }
    return g_strdup(g_ptr_array_index(one, 0));
}

/*
 * Who relayed the complaint, when a list resent it: the list's address. A
 * Google Group keeps the complainant's From or rewrites it to "'Name' via
 * group" <group@…>, saying who it was in X-Original-From / X-Original-Sender.
 */
static char *list_address(GMimeMessage *m)
{
    const char *been_there = fbl_mime_header(GMIME_OBJECT(m), "X-BeenThere");
    char *list = been_there != NULL ? fbl_address_spec(been_there, NULL) : NULL;
    if (list == NULL && fbl_mime_header(GMIME_OBJECT(m), "List-Id") != NULL)
        list = header_address(m, "Sender", NULL);
    return list;
}

/*
 * Reporter: whoever sent the mail that carries the report; when a list or a
 * desk relays someone's complaint, the original complainant (as the relay
 * names it), and the relay in reporter.via.
 */
static void set_reporter(fbl_parse_ctx *c, fbl_report *r, GMimeMessage *carrier)
{
    char *name = NULL, *original_name = NULL;
    g_autofree char *from = header_address(carrier, "From", &name);
    if (from == NULL) /* Zimbra's junk-button report has no From, it names its user */
        from = header_address(carrier, "X-Zimbra-Spam-Report-Sender", NULL);
    if (from == NULL)
        from = header_address(carrier, "Sender", NULL);
    g_autofree char *original = header_address(carrier, "X-Original-From", &original_name);
    if (original == NULL)
        original = header_address(carrier, "X-Original-Sender", NULL);
    g_autofree char *list = list_address(carrier);
    if (original != NULL && g_strcmp0(original, from) != 0) {
        r->reporter.address = g_steal_pointer(&original);
        r->reporter.name =
            original_name != NULL ? g_steal_pointer(&original_name) : g_steal_pointer(&name);
        r->reporter.via = from != NULL ? g_steal_pointer(&from) : g_steal_pointer(&list);
    } else if (from != NULL) {
        r->reporter.address = g_steal_pointer(&from);
        r->reporter.name = g_steal_pointer(&name);
        if (list != NULL && g_strcmp0(list, r->reporter.address) != 0)
            r->reporter.via = g_steal_pointer(&list);
    }
    g_free(name);
    g_free(original_name);
    if (r->reporter.address == NULL)
        return;
    g_autofree char *domain = fbl_address_domain(r->reporter.address);
    r->reporter.verified = fbl_auth_reporter_verified(carrier, c->options->authserv_id, domain);
}

/*
 * Two addresses of one organisation: a desk's own contact address is no
 * relay. One organisation, or one name under two suffixes (abusix.org and
 * abusix.com).
 */
static bool same_organisation(const char *a, const char *b)
{
    g_autofree char *da = fbl_address_domain(a);
    g_autofree char *db = b != NULL ? fbl_address_domain(b) : NULL;
    g_autofree char *oa = da != NULL ? fbl_org_of_host(da) : NULL;
    g_autofree char *ob = db != NULL ? fbl_org_of_host(db) : NULL;
    if (oa == NULL || ob == NULL)
        return false;
    size_t na = strcspn(oa, "."), nb = strcspn(ob, ".");
    return strcmp(oa, ob) == 0 || (na == nb && strncmp(oa, ob, na) == 0);
}

void fbl_parse_relayed_by(fbl_report *r, const char *complainant)
{
    g_autofree char *address = complainant != NULL ? g_ascii_strdown(complainant, -1) : NULL;
    if (address == NULL || g_strcmp0(address, r->reporter.address) == 0 ||
        same_organisation(address, r->reporter.address))
        return;
    if (r->reporter.address != NULL) {
        g_free(r->reporter.via);
        r->reporter.via = g_steal_pointer(&r->reporter.address);
    }
    r->reporter.address = g_steal_pointer(&address);
    g_clear_pointer(&r->reporter.name, g_free);
    r->reporter.verified = -1; /* what authenticated the carrier says nothing of it */
}

fbl_report *fbl_parse_new_report(fbl_parse_ctx *c, fbl_format format, GMimeMessage *carrier,
                                 fbl_original *orig)
{
    fbl_report *r = fbl_report_new();
    r->format = format;
    r->feedback_type = c->meta->default_feedback_type;
    if (carrier != NULL)
        set_reporter(c, r, carrier);
    if (orig != NULL && orig->message != NULL)
        fbl_message_fill(&r->message, orig->message, orig->headers_only, orig->size, r->warnings);
    return r;
}

/* The client address the receiving provider recorded in a header of its own. */
static char *provider_client_ip(GMimeMessage *m)
{
    static const char *const names[] = {"X-MS-Exchange-Organization-OriginalClientIPAddress",
                                        "X-Sender-IP", "X-SourceIP"};
    GMimeObject *o = GMIME_OBJECT(m);
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        const char *v = fbl_mime_header(o, names[i]);
        if (v != NULL)
            return g_strdup(v);
    }
    const char *ar = fbl_mime_header(o, "Authentication-Results");
    const char *p = ar != NULL ? strstr(ar, "sender IP is ") : NULL;
    return p != NULL ? g_strdup(p + strlen("sender IP is ")) : NULL;
}

static void finish(fbl_parse_ctx *c, fbl_report *r, GMimeMessage *reported, bool via_reporter)
{
    fbl_report_set_ids(r, c->result->mail_id, c->result->reports->len);
    r->received_at = iso_time(c->meta->received_at);
    r->mailbox = g_strdup(c->meta->mailbox);
    for (guint i = 0; i < c->budget.warnings->len; i++)
        fbl_strv_add_unique(r->warnings, g_ptr_array_index(c->budget.warnings, i));
    if (r->source_ip == NULL) {
        g_autofree char *reporter_domain = fbl_address_domain(r->reporter.address);
        g_autofree char *client = reported != NULL ? provider_client_ip(reported) : NULL;
        fbl_source_hints hints = {
            .x_originating_ip = reported != NULL
                                    ? fbl_mime_header(GMIME_OBJECT(reported), "X-Originating-IP")
                                    : NULL,
            .provider_client_ip = client,
            .reporter_domain = reporter_domain};
        int border = fbl_source_pick(r, &c->trust, &hints, via_reporter);
        /* A mail delivered whole into our raw mailbox: the hops above the border are
         * our MTAs handing it to each other (and the reporter's relay), not the spam's. */
        if (via_reporter && border > 0)
            g_ptr_array_remove_range(r->message.received, 0, (guint) border);
    }
    r->redacted =
        (r->arf != NULL && (r->arf->redacted_address || any_masked(r->arf->original_rcpt_to))) ||
        any_masked(r->message.to) || (reported != NULL && headers_masked(reported));
    r->outbound = fbl_outbound_detect(c->local, r, reported);
    /* A mailbox for false positives makes every report in it not-spam. */
    if (c->meta->default_feedback_type == FBL_FEEDBACK_NOT_SPAM)
        r->feedback_type = FBL_FEEDBACK_NOT_SPAM;
    g_ptr_array_add(c->result->reports, r);
}

void fbl_parse_finish_report(fbl_parse_ctx *c, fbl_report *r, GMimeMessage *reported)
{
    finish(c, r, reported, false);
}

void fbl_parse_finish_raw(fbl_parse_ctx *c, fbl_report *r, GMimeMessage *reported)
{
    finish(c, r, reported, true);
}

void fbl_parse_reject(fbl_parse_ctx *c, fbl_reject_reason reason, const char *detail)
{
    g_ptr_array_set_size(c->result->reports, 0);
    fbl_reject_free(c->result->reject);
    fbl_reject *j = fbl_reject_new(reason, detail);
    g_strlcpy(j->mail_id, c->result->mail_id, sizeof j->mail_id);
    j->received_at = iso_time(c->meta->received_at);
    j->mailbox = g_strdup(c->meta->mailbox);
    j->size = (int64_t) c->size;
    c->result->reject = j;
}

/* ---- the entry point --------------------------------------------------- */

static bool is_blank(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!g_ascii_isspace(data[i]))
            return false;
    }
    return true;
}

/* The formats in the order they are tried; the first to claim the mail wins. */
static bool (*const formats[])(fbl_parse_ctx *) = {
    fbl_fmt_iodef,      /* a report relayed whole inside an IODEF document: read it instead */
    fbl_fmt_arf,        /* a message/feedback-report part anywhere */
    fbl_fmt_xarf,       /* X-ARF without an ARF wrapper */
    fbl_fmt_spamcop,    /* SpamCop's own formats */
    fbl_fmt_raw,        /* the mail is the spam */
    fbl_fmt_not_report, /* bounces, auto-replies, DMARC aggregates: before attachments */
    fbl_fmt_attachment, /* attached spam (JMRP too) */
    fbl_fmt_redirect,   /* the spam itself, redirected by the reporter */
    fbl_fmt_inline,     /* spam pasted into the body */
    fbl_fmt_complaint,  /* a complaint that lost the spam: a reject, its own reason */
};

static void detect_from(fbl_parse_ctx *c, size_t first)
{
    for (size_t i = first; i < G_N_ELEMENTS(formats) && !c->budget.tripped; i++) {
        if (formats[i](c)) {
            if (c->result->reports->len == 0 && c->result->reject == NULL)
                fbl_parse_reject(c, FBL_REJECT_NOT_A_REPORT, "no report in the mail");
            return;
        }
    }
    fbl_parse_reject(c, FBL_REJECT_NOT_A_REPORT,
                     "no feedback report, attached or forwarded message in the mail");
}

static void detect(fbl_parse_ctx *c)
{
    detect_from(c, 0);
}

void fbl_parse_detect_inner(fbl_parse_ctx *c)
{
    detect_from(c, 1); /* not IODEF again: one relay level */
}

fbl_parse_result *fbl_parser_parse(const fbl_parser *parser, const void *data, size_t len,
                                   const fbl_mail_meta *meta)
{
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex(data, len, mail_id);
    return fbl_parser_parse_hashed(parser, data, len, mail_id, meta);
}

fbl_parse_result *fbl_parser_parse_hashed(const fbl_parser *parser, const void *data, size_t len,
                                          const char *mail_id, const fbl_mail_meta *meta)
{
    const fbl_parse_options *o = &parser->options;
    if (len > o->max_mail_bytes)
        return fbl_parser_too_large(parser, mail_id, len, meta);

    fbl_parse_ctx c = {.options = o,
                       .meta = meta,
                       .trust = {parser->trusted, parser->options.trusted_hosts},
                       .local = parser->local,
                       .result = fbl_parse_result_new(mail_id),
                       .size = len};
    if (is_blank(data, len)) {
        fbl_parse_reject(&c, FBL_REJECT_EMPTY, "the mail is empty");
        return c.result;
    }
    fbl_mime_budget_init(&c.budget, o);
    c.kept = g_ptr_array_new_with_free_func(g_object_unref);
    c.mail = fbl_mime_load_in_place(&c.budget, data, len); /* @data outlives c.mail */
    if (c.mail != NULL)
        detect(&c);
    if (c.budget.tripped)
        fbl_parse_reject(&c, c.budget.reason, c.budget.detail);
    else if (c.mail == NULL)
        fbl_parse_reject(&c, FBL_REJECT_MALFORMED_MIME, "GMime could not read a message");
    g_clear_pointer(&c.kept, g_ptr_array_unref);
    g_clear_object(&c.mail);
    fbl_mime_budget_clear(&c.budget);
    return c.result;
}

fbl_parse_result *fbl_parser_too_large(const fbl_parser *parser, const char *mail_id, size_t size,
                                       const fbl_mail_meta *meta)
{
    fbl_parse_ctx c = {.meta = meta, .result = fbl_parse_result_new(mail_id), .size = size};
    g_autofree char *d =
        g_strdup_printf("%zu bytes, over the limit of %zu", size, parser->options.max_mail_bytes);
    fbl_parse_reject(&c, FBL_REJECT_TOO_LARGE, d);
    return c.result;
}

const fbl_parse_options *fbl_parser_get_options(const fbl_parser *parser)
{
    return &parser->options;
}

void fbl_parsers_init(void)
{
    g_mime_init();
    xmlInitParser();
}

void fbl_parsers_shutdown(void)
{
    xmlCleanupParser();
    g_mime_shutdown();
}
