/*
 * fmt_arf.c - ARF reports (RFC 5965): a multipart with a message/feedback-report
 * child, at the top of the mail or inside a message it carries (an ARF
 * forwarded by a person). One report per such container.
 *
 * Variants: SpamCop's ARF (format spamcop), MARF carrying X-ARF v4 JSON
 * (Feedback-Type: xarf, format xarf), a feedback part whose base64 body lost
 * its Content-Transfer-Encoding header.
 */
#include <string.h>

#include "parsers/arf.h"
#include "parsers/message.h"
#include "parsers/parse_internal.h"
#include "parsers/xarf.h"

static bool is_feedback(GMimeObject *obj)
{
    return fbl_mime_is_type(obj, "message", "feedback-report");
}

/* The feedback part's text; a base64 body without its CTE header decoded. */
static char *feedback_text(GMimePart *part)
{
    char *text = fbl_mime_part_text(part, NULL);
    if (strchr(text, ':') != NULL)
        return text;
    g_autofree char *compact = g_strdup(text);
    g_strdelimit(compact, "\r\n\t ", ' ');
    char *w = compact;
    for (char *p = compact; *p != '\0'; p++) {
        if (*p != ' ')
            *w++ = *p;
    }
    *w = '\0';
    gsize n = 0;
    g_autofree guchar *raw = *compact != '\0' ? g_base64_decode(compact, &n) : NULL;
    if (raw == NULL || n == 0 || memchr(raw, ':', n) == NULL)
        return text;
    g_free(text);
    return fbl_mime_to_utf8((const char *) raw, n, NULL, NULL);
}

/* MARF with Feedback-Type: xarf carries the X-ARF v4 document as a child. */
static fbl_xarf *find_xarf_json(GMimeMultipart *container)
{
    int n = g_mime_multipart_get_count(container);
    for (int i = 0; i < n; i++) {
        GMimeObject *child = g_mime_multipart_get_part(container, i);
        if (!GMIME_IS_PART(child) || GMIME_IS_MULTIPART(child))
            continue;
        const char *name = g_mime_part_get_filename(GMIME_PART(child));
        if (!fbl_mime_is_type(child, "application", "json") &&
            !(name != NULL && g_str_has_suffix(name, ".json")))
            continue;
        g_autoptr(GByteArray) bytes = fbl_mime_part_bytes(GMIME_PART(child));
        fbl_xarf *x = fbl_xarf_parse_json((const char *) bytes->data, bytes->len);
        if (x != NULL)
            return x;
    }
    return NULL;
}

static void take_xarf_details(fbl_parse_ctx *c, fbl_report *r, fbl_xarf *x, unsigned depth,
                              fbl_original *orig)
{
    r->format = FBL_FORMAT_XARF;
    r->feedback_type = fbl_xarf_feedback_type(x);
    fbl_parse_relayed_by(r, x->reported_from);
    if (r->arf->source_ip == NULL && x->source_ip != NULL)
        r->arf->source_ip = g_strdup(x->source_ip);
    if (orig->message == NULL && x->sample != NULL &&
        fbl_parse_load_bytes(c, (const char *) x->sample->data, x->sample->len, depth + 1, orig))
        fbl_message_fill(&r->message, orig->message, false, orig->size, r->warnings);
}

static void set_feedback_type(fbl_parse_ctx *c, fbl_report *r)
{
    (void) c;
    const char *raw = r->arf->feedback_type_raw;
    if (raw == NULL)
        fbl_report_add_warning(r, "arf: no Feedback-Type; the mailbox default used");
    else if (!fbl_arf_feedback_type(raw, &r->feedback_type))
        fbl_report_add_warning(r, "arf: unknown Feedback-Type, recorded as other");
}

/* One ARF report from @container; nothing when it reports nothing at all. */
static void take_arf(fbl_parse_ctx *c, GMimeMultipart *container, GMimeMessage *carrier,
                     unsigned depth)
{
    GMimeObject *feedback = NULL;
    fbl_original orig = {0};
    int n = g_mime_multipart_get_count(container);
    for (int i = 0; i < n; i++) {
        GMimeObject *child = g_mime_multipart_get_part(container, i);
        if (feedback == NULL && is_feedback(child))
            feedback = child;
        else if (orig.message == NULL)
            (void) fbl_parse_load_original(c, child, depth, &orig);
    }
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *text =
        GMIME_IS_PART(feedback) ? feedback_text(GMIME_PART(feedback)) : g_strdup("");
    fbl_arf *arf = fbl_arf_parse_fields(text, strlen(text), warnings);
    g_autoptr(fbl_xarf) xarf = NULL;
    if (arf->feedback_type_raw != NULL && g_ascii_strcasecmp(arf->feedback_type_raw, "xarf") == 0)
        xarf = find_xarf_json(container);

    fbl_report *r = fbl_parse_new_report(c, FBL_FORMAT_ARF, carrier, &orig);
    r->arf = arf;
    for (guint i = 0; i < warnings->len; i++)
        fbl_strv_add_unique(r->warnings, g_ptr_array_index(warnings, i));
    if (xarf != NULL)
        take_xarf_details(c, r, xarf, depth, &orig);
    else
        set_feedback_type(c, r);
    if (fbl_parse_sender_is(carrier, "@reports.spamcop.net"))
        r->format = FBL_FORMAT_SPAMCOP;

    bool says_something =
        arf->source_ip != NULL || arf->reported_domain->len > 0 || arf->reported_uri->len > 0;
    if (orig.message == NULL && !says_something) {
        fbl_report_free(r);
        fbl_original_clear(&orig);
        return; /* counted as a container: the mail becomes no_original_message */
    }
    if (orig.message == NULL)
        fbl_report_add_warning(r, "arf: no original message, only the feedback fields");
    r->reporter.user_agent = g_strdup(arf->user_agent);
    r->reporter.reporting_mta = g_strdup(arf->reporting_mta);
    fbl_parse_finish_report(c, r, orig.message);
    fbl_original_clear(&orig);
}

typedef struct frame {
    GMimeObject *object;
    GMimeMessage *carrier; /* the message this object belongs to */
    unsigned depth;
} frame;

static bool has_feedback_child(GMimeMultipart *mp)
{
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; i++) {
        if (is_feedback(g_mime_multipart_get_part(mp, i)))
            return true;
    }
    return false;
}

/*
 * A report mail attached as a file ("evidence_0.eml": a desk passing on the
 * complaint it got) is opened when it holds an ARF part: the message is kept
 * in the context, since the reports read it to the end.
 */
static GMimeMessage *attached_report(fbl_parse_ctx *c, GMimeObject *obj, unsigned depth)
{
    if (!GMIME_IS_PART(obj) || GMIME_IS_MULTIPART(obj))
        return NULL;
    const char *name = g_mime_part_get_filename(GMIME_PART(obj));
    size_t n = name != NULL ? strlen(name) : 0;
    if (n < 4 || g_ascii_strcasecmp(name + n - 4, ".eml") != 0)
        return NULL;
    g_autoptr(GByteArray) bytes = fbl_mime_part_bytes(GMIME_PART(obj));
    if (!fbl_mime_bytes_contain(bytes, 0, "feedback-report"))
        return NULL;
    fbl_original orig = {0};
    if (!fbl_parse_load_bytes(c, (const char *) bytes->data, bytes->len, depth + 1, &orig))
        return NULL;
    g_ptr_array_add(c->kept, orig.message); /* the context owns it now */
    return orig.message;
}

/* One step of the walk: takes @f when it is a feedback-report container (returns
 * true), else pushes what is inside it onto @stack. */
static bool visit(fbl_parse_ctx *c, GArray *stack, frame f)
{
    if (f.object == NULL)
        return false;
    if (GMIME_IS_MESSAGE_PART(f.object)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(f.object));
        frame next = {inner ? g_mime_message_get_mime_part(inner) : NULL, inner, f.depth + 1};
        g_array_append_val(stack, next);
        return false;
    }
    GMimeMessage *file = attached_report(c, f.object, f.depth);
    if (file != NULL) {
        frame next = {g_mime_message_get_mime_part(file), file, f.depth + 1};
        g_array_append_val(stack, next);
        return false;
    }
    if (!GMIME_IS_MULTIPART(f.object))
        return false;
    GMimeMultipart *mp = GMIME_MULTIPART(f.object);
    if (has_feedback_child(mp)) {
        take_arf(c, mp, f.carrier, f.depth);
        return true;
    }
    for (int i = g_mime_multipart_get_count(mp) - 1; i >= 0; i--) {
        frame child = {g_mime_multipart_get_part(mp, i), f.carrier, f.depth + 1};
        g_array_append_val(stack, child);
    }
    return false;
}

bool fbl_fmt_arf(fbl_parse_ctx *c)
{
    g_autoptr(GArray) stack = g_array_new(FALSE, FALSE, sizeof(frame));
    frame top = {g_mime_message_get_mime_part(c->mail), c->mail, 0};
    g_array_append_val(stack, top);
    unsigned containers = 0;
    while (stack->len > 0 && !c->budget.tripped) {
        frame f = g_array_index(stack, frame, stack->len - 1);
        g_array_set_size(stack, stack->len - 1);
        if (visit(c, stack, f))
            containers++;
    }
    if (containers > 0 && c->result->reports->len == 0)
        fbl_parse_reject(c, FBL_REJECT_NO_ORIGINAL_MESSAGE,
                         "ARF report without an original message or a source to report");
    return containers > 0;
}
