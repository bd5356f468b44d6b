/* parse.c - one mail into reports or a reject: limits, detection, assembly */
#define G_LOG_DOMAIN "fbl-parse"
#include "parsers/parse.h"

#include <string.h>

#include <libxml/parser.h>

#include "parsers/address.h"
#include "parsers/arf.h"
#include "parsers/ip.h"
#include "parsers/message.h"
#include "parsers/mime.h"
#include "parsers/source.h"

struct fbl_parser {
    fbl_parse_options options;
    GStrv trusted_networks; /* the copy options.trusted_networks points at */
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
    p->trusted = trusted;
    return p;
}

void fbl_parser_free(fbl_parser *parser)
{
    if (parser == NULL)
        return;
    g_strfreev(parser->trusted_networks);
    fbl_netset_free(parser->trusted);
    g_free(parser);
}

/* ---- one parse --------------------------------------------------------- */

typedef struct ctx {
    const fbl_parser *parser;
    const fbl_mail_meta *meta;
    fbl_mime_budget budget;
    fbl_parse_result *result;
    GMimeMessage *mail; /* the whole mail, parsed */
} ctx;

/* A reported message as a report carries it. */
typedef struct original {
    GMimeMessage *message; /* owned reference */
    bool headers_only;
    int64_t size;
} original;

static void original_clear(original *o)
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
    return name != NULL && g_str_has_suffix(name, ".eml");
}

/* Something GMime calls a message but is not mail: no header a mail has. */
static bool looks_like_mail(GMimeMessage *m)
{
    static const char *const names[] = {"From", "Received", "Subject", "Message-ID", "Date",
                                        "Return-Path", "To"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (fbl_mime_header(GMIME_OBJECT(m), names[i]) != NULL)
            return true;
    }
    return false;
}

static int64_t serialized_size(GMimeObject *obj)
{
    g_autoptr(GMimeStream) null = g_mime_stream_null_new();
    ssize_t n = g_mime_object_write_to_stream(obj, NULL, null);
    return n < 0 ? -1 : (int64_t) n;
}

/*
 * Load the reported message @obj carries: a parsed message/rfc822, an
 * encoded one (GMime leaves base64 message/rfc822 as a part), a *.eml file
 * under any type, or a headers-only part.
 */
static bool load_original(ctx *c, GMimeObject *obj, unsigned depth, original *out)
{
    memset(out, 0, sizeof *out);
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m == NULL || !looks_like_mail(m))
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
    out->size = bytes->len;
    if (headers) /* end the header block so GMime does not wait for a body */
        g_byte_array_append(bytes, (const guint8 *) "\n\n", 2);
    out->message = fbl_mime_load(&c->budget, (const char *) bytes->data, bytes->len, depth + 1);
    out->headers_only = headers;
    if (out->message != NULL && !looks_like_mail(out->message))
        g_clear_object(&out->message);
    return out->message != NULL;
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

/* Reporter: whoever sent the mail that carries the report. */
static void set_reporter(fbl_report *r, GMimeMessage *carrier)
{
    g_autoptr(GPtrArray) one = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    fbl_address_list_take(g_mime_message_get_from(carrier), one, names, 1);
    if (one->len == 0)
        return;
    r->reporter.address = g_strdup(g_ptr_array_index(one, 0));
    const char *nm = g_ptr_array_index(names, 0);
    r->reporter.name = *nm != '\0' ? g_strdup(nm) : NULL;
}

static fbl_report *new_report(ctx *c, fbl_format format, GMimeMessage *carrier,
                              original *orig)
{
    fbl_report *r = fbl_report_new();
    r->format = format;
    r->feedback_type = c->meta->default_feedback_type;
    set_reporter(r, carrier);
    if (orig->message != NULL)
        fbl_message_fill(&r->message, orig->message, orig->headers_only, orig->size,
                         r->warnings);
    return r;
}

/* Finishing touches every report gets, whatever its format. */
static void finish_report(ctx *c, fbl_report *r, GMimeMessage *reported)
{
    fbl_report_set_ids(r, c->result->mail_id, c->result->reports->len);
    r->received_at = iso_time(c->meta->received_at);
    r->mailbox = g_strdup(c->meta->mailbox);
    for (guint i = 0; i < c->budget.warnings->len; i++)
        fbl_strv_add_unique(r->warnings, g_ptr_array_index(c->budget.warnings, i));
    const char *xoip =
        reported != NULL ? fbl_mime_header(GMIME_OBJECT(reported), "X-Originating-IP") : NULL;
    fbl_source_pick(r, c->parser->trusted, xoip);
    r->redacted = (r->arf != NULL && (r->arf->redacted_address ||
                                      any_redacted(r->arf->original_rcpt_to))) ||
                  any_redacted(r->message.to);
    /* A mailbox for false positives makes every report in it not-spam. */
    if (c->meta->default_feedback_type == FBL_FEEDBACK_NOT_SPAM)
        r->feedback_type = FBL_FEEDBACK_NOT_SPAM;
    g_ptr_array_add(c->result->reports, r);
}

/* ---- ARF --------------------------------------------------------------- */

/* An ARF report inside @container (a multipart with a feedback-report child). */
static void take_arf(ctx *c, GMimeMultipart *container, GMimeMessage *carrier, unsigned depth)
{
    GMimeObject *feedback = NULL;
    original orig = {0};
    int n = g_mime_multipart_get_count(container);
    for (int i = 0; i < n; i++) {
        GMimeObject *child = g_mime_multipart_get_part(container, i);
        if (feedback == NULL && fbl_mime_is_type(child, "message", "feedback-report"))
            feedback = child;
        else if (orig.message == NULL)
            (void) load_original(c, child, depth, &orig);
    }
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    fbl_arf *arf = NULL;
    if (GMIME_IS_PART(feedback)) {
        g_autofree char *text = fbl_mime_part_text(GMIME_PART(feedback), NULL);
        arf = fbl_arf_parse_fields(text, strlen(text), warnings);
    } else {
        arf = fbl_arf_new();
    }
    bool says_something = arf->source_ip != NULL || arf->reported_domain->len > 0 ||
                          arf->reported_uri->len > 0;
    if (orig.message == NULL && !says_something) {
        fbl_arf_free(arf);
        return; /* the caller turns "no reports" into a reject with a reason */
    }
    fbl_report *r = new_report(c, FBL_FORMAT_ARF, carrier, &orig);
    r->arf = arf;
    for (guint i = 0; i < warnings->len; i++)
        fbl_strv_add_unique(r->warnings, g_ptr_array_index(warnings, i));
    if (orig.message == NULL)
        fbl_report_add_warning(r, "arf: no original message, only the feedback fields");
    if (arf->feedback_type_raw == NULL) {
        fbl_report_add_warning(r, "arf: no Feedback-Type; the mailbox default used");
    } else if (!fbl_arf_feedback_type(arf->feedback_type_raw, &r->feedback_type)) {
        fbl_report_add_warning(r, "arf: unknown Feedback-Type, recorded as other");
    }
    r->reporter.user_agent = g_strdup(arf->user_agent);
    r->reporter.reporting_mta = g_strdup(arf->reporting_mta);
    finish_report(c, r, orig.message);
    original_clear(&orig);
}

typedef struct frame {
    GMimeObject *object;
    GMimeMessage *carrier; /* the message this object belongs to */
    unsigned depth;
} frame;

/*
 * Find every ARF container, in the mail and in messages it carries (an ARF
 * forwarded as an attachment). Iterative; the tree was bounded when loaded.
 */
static unsigned find_arf(ctx *c)
{
    g_autoptr(GArray) stack = g_array_new(FALSE, FALSE, sizeof(frame));
    frame top = {g_mime_message_get_mime_part(c->mail), c->mail, 0};
    g_array_append_val(stack, top);
    unsigned containers = 0;
    while (stack->len > 0) {
        frame f = g_array_index(stack, frame, stack->len - 1);
        g_array_set_size(stack, stack->len - 1);
        if (f.object == NULL)
            continue;
        if (GMIME_IS_MESSAGE_PART(f.object)) {
            GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(f.object));
            frame next = {inner ? g_mime_message_get_mime_part(inner) : NULL, inner, f.depth + 1};
            g_array_append_val(stack, next);
            continue;
        }
        if (!GMIME_IS_MULTIPART(f.object))
            continue;
        GMimeMultipart *mp = GMIME_MULTIPART(f.object);
        int n = g_mime_multipart_get_count(mp);
        bool is_container = false;
        for (int i = 0; i < n; i++)
            is_container = is_container ||
                           fbl_mime_is_type(g_mime_multipart_get_part(mp, i), "message",
                                            "feedback-report");
        if (is_container) {
            containers++;
            take_arf(c, mp, f.carrier, f.depth);
            continue;
        }
        for (int i = n - 1; i >= 0; i--) {
            frame child = {g_mime_multipart_get_part(mp, i), f.carrier, f.depth + 1};
            g_array_append_val(stack, child);
        }
    }
    return containers;
}

/* ---- attachment forwards ----------------------------------------------- */

/* Every message attached to the mail itself, in order; not inside them. */
static void find_attachments(ctx *c)
{
    g_autoptr(GArray) stack = g_array_new(FALSE, FALSE, sizeof(frame));
    frame top = {g_mime_message_get_mime_part(c->mail), c->mail, 0};
    if (top.object == NULL || !GMIME_IS_MULTIPART(top.object))
        return; /* a single-part mail carries no attachment */
    g_array_append_val(stack, top);
    while (stack->len > 0 && !c->budget.tripped) {
        frame f = g_array_index(stack, frame, stack->len - 1);
        g_array_set_size(stack, stack->len - 1);
        if (GMIME_IS_MULTIPART(f.object)) {
            GMimeMultipart *mp = GMIME_MULTIPART(f.object);
            for (int i = g_mime_multipart_get_count(mp) - 1; i >= 0; i--) {
                frame child = {g_mime_multipart_get_part(mp, i), c->mail, f.depth + 1};
                g_array_append_val(stack, child);
            }
            continue;
        }
        original orig;
        if (!load_original(c, f.object, f.depth, &orig))
            continue;
        fbl_report *r = new_report(c, FBL_FORMAT_ATTACHMENT, c->mail, &orig);
        r->reporter.user_agent = g_strdup(fbl_mime_header(GMIME_OBJECT(c->mail), "User-Agent"));
        if (r->reporter.user_agent == NULL)
            r->reporter.user_agent = g_strdup(fbl_mime_header(GMIME_OBJECT(c->mail), "X-Mailer"));
        if (r->reporter.user_agent != NULL && !g_utf8_validate(r->reporter.user_agent, -1, NULL))
            g_clear_pointer(&r->reporter.user_agent, g_free);
        finish_report(c, r, orig.message);
        original_clear(&orig);
    }
}

/* ---- the entry point --------------------------------------------------- */

static void reject(ctx *c, fbl_reject_reason reason, const char *detail, size_t size)
{
    g_ptr_array_set_size(c->result->reports, 0);
    fbl_reject_free(c->result->reject);
    fbl_reject *j = fbl_reject_new(reason, detail);
    g_strlcpy(j->mail_id, c->result->mail_id, sizeof j->mail_id);
    j->received_at = iso_time(c->meta->received_at);
    j->mailbox = g_strdup(c->meta->mailbox);
    j->size = (int64_t) size;
    c->result->reject = j;
}

static bool is_blank(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!g_ascii_isspace(data[i]))
            return false;
    }
    return true;
}

static void detect(ctx *c, size_t len)
{
    unsigned containers = find_arf(c);
    if (containers > 0 && c->result->reports->len == 0) {
        reject(c, FBL_REJECT_NO_ORIGINAL_MESSAGE,
               "ARF report without an original message or a source to report", len);
        return;
    }
    if (containers == 0)
        find_attachments(c);
    if (c->result->reports->len == 0)
        reject(c, FBL_REJECT_NOT_A_REPORT,
               "no feedback report and no attached message in the mail", len);
}

fbl_parse_result *fbl_parser_parse(const fbl_parser *parser, const void *data, size_t len,
                                   const fbl_mail_meta *meta)
{
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex(data, len, mail_id);
    ctx c = {.parser = parser, .meta = meta, .result = fbl_parse_result_new(mail_id)};
    const fbl_parse_options *o = &parser->options;

    if (len > o->max_mail_bytes) {
        fbl_parse_result_free(c.result);
        return fbl_parser_too_large(parser, mail_id, len, meta);
    }
    if (is_blank(data, len)) {
        reject(&c, FBL_REJECT_EMPTY, "the mail is empty", len);
        return c.result;
    }
    fbl_mime_budget_init(&c.budget, o);
    c.mail = fbl_mime_load(&c.budget, data, len, 0);
    if (c.mail != NULL)
        detect(&c, len);
    if (c.budget.tripped)
        reject(&c, c.budget.reason, c.budget.detail, len);
    else if (c.mail == NULL)
        reject(&c, FBL_REJECT_MALFORMED_MIME, "GMime could not read a message", len);
    g_clear_object(&c.mail);
    fbl_mime_budget_clear(&c.budget);
    return c.result;
}

fbl_parse_result *fbl_parser_too_large(const fbl_parser *parser, const char *mail_id,
                                       size_t size, const fbl_mail_meta *meta)
{
    ctx c = {.parser = parser, .meta = meta, .result = fbl_parse_result_new(mail_id)};
    g_autofree char *d = g_strdup_printf("%zu bytes, over the limit of %zu", size,
                                         parser->options.max_mail_bytes);
    reject(&c, FBL_REJECT_TOO_LARGE, d, size);
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
