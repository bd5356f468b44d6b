/*
 * fmt_spamcop.c - SpamCop's native reports and summaries
 *
 * A native report is text: SpamCop's findings, a "[ Offending message ]"
 * line, then the spam, headers and body, as received. SpamCop names the
 * source it determined in X-SpamCop-sourceip and in the subject
 * ("[SpamCop (192.0.2.1) id:123]…"); that is the source, "spamcop".
 * A summary report lists many sources and carries no message: a reject.
 * SpamCop's ARF reports go through fmt_arf.c (format spamcop there too).
 * A report relayed by someone else (a desk's ticket or a customer's forward,
 * quoted with "> ") is recognised by SpamCop's "[ SpamCop V…]" banner.
 */
#include <string.h>

#include "parsers/ip.h"
#include "parsers/parse_internal.h"

#define OFFENDING "[ Offending message ]"

static bool from_spamcop(GMimeMessage *m)
{
    return fbl_parse_sender_is(m, "@reports.spamcop.net") ||
           fbl_parse_sender_is(m, "@admin.spamcop.net");
}

/* "[SpamCop (192.0.2.1) id:6535595190]…" -> 192.0.2.1 */
static char *subject_ip(GMimeMessage *m)
{
    const char *s = g_mime_message_get_subject(m);
    const char *p = s != NULL ? strstr(s, "[SpamCop (") : NULL;
    return p != NULL ? fbl_ip_canonical(p + strlen("[SpamCop (")) : NULL;
}

/* The first text/plain part of @m holding @mark, whole (attachments too). */
static char *text_with(GMimeMessage *m, const char *mark)
{
    g_autoptr(GPtrArray) leaves = fbl_mime_leaves(m);
    for (guint i = 0; i < leaves->len; i++) {
        GMimeObject *obj = g_ptr_array_index(leaves, i);
        if (!GMIME_IS_PART(obj) || !fbl_mime_is_type(obj, "text", "plain"))
            continue;
        char *text = fbl_mime_part_text(GMIME_PART(obj), NULL);
        if (strstr(text, mark) != NULL)
            return text;
        g_free(text);
    }
    return NULL;
}

/* The text after the "[ Offending message ]" line, or NULL. */
static char *offending_after(const char *text)
{
    const char *mark = text != NULL ? strstr(text, OFFENDING) : NULL;
    if (mark == NULL)
        return NULL;
    const char *start = strchr(mark, '\n');
    return g_strdup(start != NULL ? start + 1 : "");
}

/* @text without the "> " quoting a forward or a ticket put before each line. */
static char *unquoted(const char *text)
{
    GString *out = g_string_sized_new(strlen(text));
    for (const char *line = text; *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t n = eol != NULL ? (size_t) (eol - line) : strlen(line);
        const char *p = line;
        while (p < line + n && *p == '>') {
            p++;
            if (p < line + n && *p == ' ')
                p++;
        }
        g_string_append_len(out, p, (gssize) (n - (size_t) (p - line)));
        g_string_append_c(out, '\n');
        line = eol != NULL ? eol + 1 : line + n;
    }
    return g_string_free(out, FALSE);
}

/* SpamCop names the source it found: "Email from 192.0.2.1 / date", or
 * "… received from IP source 192.0.2.1 on date" in its ARF-style text. */
static char *text_source(const char *text)
{
    static const char *const leads[] = {"\nEmail from ", "received from IP source "};
    for (size_t i = 0; i < G_N_ELEMENTS(leads); i++) {
        const char *p = strstr(text, leads[i]);
        if (p != NULL)
            return fbl_ip_canonical(p + strlen(leads[i]));
    }
    return NULL;
}

/* The SpamCop address a forward of its report names ("From: 123@reports.spamcop.net"). */
static char *text_reporter(const char *text)
{
    const char *p = strstr(text, "@reports.spamcop.net");
    if (p == NULL)
        return NULL;
    const char *start = p;
    while (start > text && g_ascii_isdigit(start[-1]))
        start--;
    if (start == p)
        return NULL;
    return g_strndup(start, (size_t) (p - start) + strlen("@reports.spamcop.net"));
}

/*
 * A SpamCop report relayed by someone else: an abuse desk's ticket quoting it,
 * a customer's "Fwd:". Its "[ SpamCop V…]" banner marks it; the spam (when
 * SpamCop included it) follows "[ Offending message ]"; the relay is
 * reporter.via.
 */
static bool relayed(fbl_parse_ctx *c)
{
    g_autofree char *raw = text_with(c->mail, "[ SpamCop V");
    if (raw == NULL)
        return false;
    g_autofree char *text = unquoted(raw);
    g_autofree char *spam = offending_after(text);
    fbl_original orig = {0};
    if (spam != NULL)
        (void) fbl_parse_load_bytes(c, spam, strlen(spam), 1, &orig);
    fbl_report *r = fbl_parse_new_report(c, FBL_FORMAT_SPAMCOP, c->mail, &orig);
    g_autofree char *complainant = text_reporter(text);
    fbl_parse_relayed_by(r, complainant);
    r->source_ip = text_source(text);
    if (r->source_ip != NULL)
        r->source_ip_from = g_strdup("spamcop");
    if (orig.message == NULL)
        fbl_report_add_warning(r, "spamcop: a relayed report without the offending message");
    fbl_parse_finish_report(c, r, orig.message);
    fbl_original_clear(&orig);
    return true;
}

bool fbl_fmt_spamcop(fbl_parse_ctx *c)
{
    if (!from_spamcop(c->mail))
        return relayed(c);
    const char *subject = g_mime_message_get_subject(c->mail);
    if (fbl_parse_sender_is(c->mail, "@admin.spamcop.net") ||
        (subject != NULL && strstr(subject, "summary report") != NULL)) {
        fbl_parse_reject(c, FBL_REJECT_NOT_A_REPORT,
                         "SpamCop summary report: sources only, no reported message");
        return true;
    }
    g_autofree char *native = text_with(c->mail, OFFENDING);
    g_autofree char *spam = offending_after(native);
    if (spam == NULL)
        return false; /* not SpamCop's native shape: let the other formats look */

    fbl_original orig = {0};
    (void) fbl_parse_load_bytes(c, spam, strlen(spam), 1, &orig);
    fbl_report *r = fbl_parse_new_report(c, FBL_FORMAT_SPAMCOP, c->mail, &orig);
    g_autofree char *ip =
        fbl_ip_canonical(fbl_mime_header(GMIME_OBJECT(c->mail), "X-SpamCop-sourceip"));
    if (ip == NULL)
        ip = subject_ip(c->mail);
    if (ip != NULL) {
        r->source_ip = g_steal_pointer(&ip);
        r->source_ip_from = g_strdup("spamcop");
    }
    if (orig.message == NULL)
        fbl_report_add_warning(r, "spamcop: the offending message could not be read");
    fbl_parse_finish_report(c, r, orig.message);
    fbl_original_clear(&orig);
    return true;
}
