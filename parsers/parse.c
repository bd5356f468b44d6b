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
#include "parsers/parse_internal.h"
#include "parsers/source.h"

struct fbl_parser {
    fbl_parse_options options;
    GStrv trusted_networks; /* the copies the options point at */
    GStrv trusted_hosts;
    char *authserv_id;
    fbl_netset *trusted;
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
    fbl_parser *p = g_new0(fbl_parser, 1);
    p->options = *options;
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
    static const char *const names[] = {"From", "Received", "Subject", "Message-ID", "Date",
                                        "Return-Path", "To"};
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

bool fbl_parse_load_original(fbl_parse_ctx *c, GMimeObject *obj, unsigned depth,
                             fbl_original *out)
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
    if (!headers && !fbl_mime_is_type(obj, "message", "rfc822") && !is_eml_name(obj))
        return false;
    g_autoptr(GByteArray) bytes = fbl_mime_part_bytes(GMIME_PART(obj));
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

static bool any_redacted(const GPtrArray *list)
{
    for (guint i = 0; i < list->len; i++) {
        if (strstr(g_ptr_array_index(list, i), "redacted") != NULL)
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

/* Reporter: whoever sent the mail that carries the report. */
static void set_reporter(fbl_parse_ctx *c, fbl_report *r, GMimeMessage *carrier)
{
    g_autofree char *domain = NULL;
    g_autoptr(GPtrArray) one = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    InternetAddressList *from = fbl_mime_header_addresses(GMIME_OBJECT(carrier), "From");
    fbl_address_list_take(from, one, names, 1);
    g_clear_object(&from);
    if (one->len == 0)
        return;
    r->reporter.address = g_strdup(g_ptr_array_index(one, 0));
    const char *nm = g_ptr_array_index(names, 0);
    r->reporter.name = *nm != '\0' ? g_strdup(nm) : NULL;
    domain = fbl_address_domain(r->reporter.address);
    r->reporter.verified = fbl_auth_reporter_verified(carrier, c->options->authserv_id, domain);
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
        fbl_message_fill(&r->message, orig->message, orig->headers_only, orig->size,
                         r->warnings);
    return r;
}

static void finish(fbl_parse_ctx *c, fbl_report *r, GMimeMessage *reported, bool via_reporter)
{
    fbl_report_set_ids(r, c->result->mail_id, c->result->reports->len);
    r->received_at = iso_time(c->meta->received_at);
    r->mailbox = g_strdup(c->meta->mailbox);
    for (guint i = 0; i < c->budget.warnings->len; i++)
        fbl_strv_add_unique(r->warnings, g_ptr_array_index(c->budget.warnings, i));
    if (r->source_ip == NULL) {
        const char *xoip =
            reported != NULL ? fbl_mime_header(GMIME_OBJECT(reported), "X-Originating-IP")
                             : NULL;
        fbl_source_pick(r, &c->trust, xoip, via_reporter);
    }
    r->redacted = (r->arf != NULL && (r->arf->redacted_address ||
                                      any_redacted(r->arf->original_rcpt_to))) ||
                  any_redacted(r->message.to);
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

static void detect(fbl_parse_ctx *c)
{
    for (size_t i = 0; i < G_N_ELEMENTS(formats) && !c->budget.tripped; i++) {
        if (formats[i](c)) {
            if (c->result->reports->len == 0 && c->result->reject == NULL)
                fbl_parse_reject(c, FBL_REJECT_NOT_A_REPORT, "no report in the mail");
            return;
        }
    }
    fbl_parse_reject(c, FBL_REJECT_NOT_A_REPORT,
                     "no feedback report, attached or forwarded message in the mail");
}

fbl_parse_result *fbl_parser_parse(const fbl_parser *parser, const void *data, size_t len,
                                   const fbl_mail_meta *meta)
{
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex(data, len, mail_id);
    const fbl_parse_options *o = &parser->options;
    if (len > o->max_mail_bytes)
        return fbl_parser_too_large(parser, mail_id, len, meta);

    fbl_parse_ctx c = {.options = o, .meta = meta,
                       .trust = {parser->trusted, parser->options.trusted_hosts},
                       .result = fbl_parse_result_new(mail_id), .size = len};
    if (is_blank(data, len)) {
        fbl_parse_reject(&c, FBL_REJECT_EMPTY, "the mail is empty");
        return c.result;
    }
    fbl_mime_budget_init(&c.budget, o);
    c.mail = fbl_mime_load_in_place(&c.budget, data, len); /* @data outlives c.mail */
    if (c.mail != NULL)
        detect(&c);
    if (c.budget.tripped)
        fbl_parse_reject(&c, c.budget.reason, c.budget.detail);
    else if (c.mail == NULL)
        fbl_parse_reject(&c, FBL_REJECT_MALFORMED_MIME, "GMime could not read a message");
    g_clear_object(&c.mail);
    fbl_mime_budget_clear(&c.budget);
    return c.result;
}

fbl_parse_result *fbl_parser_too_large(const fbl_parser *parser, const char *mail_id,
                                       size_t size, const fbl_mail_meta *meta)
{
    fbl_parse_ctx c = {.meta = meta, .result = fbl_parse_result_new(mail_id), .size = size};
    g_autofree char *d = g_strdup_printf("%zu bytes, over the limit of %zu", size,
                                         parser->options.max_mail_bytes);
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
