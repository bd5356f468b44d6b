/*
 * fmt_spamcop.c - SpamCop's native reports and summaries
 *
 * A native report is text: SpamCop's findings, a "[ Offending message ]"
 * line, then the spam, headers and body, as received. SpamCop names the
 * source it determined in X-SpamCop-sourceip and in the subject
 * ("[SpamCop (192.0.2.1) id:123]…"); that is the source, "spamcop".
 * A summary report lists many sources and carries no message: a reject.
 * SpamCop's ARF reports go through fmt_arf.c (format spamcop there too).
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

/* The text after the "[ Offending message ]" line of the first text part with one. */
static char *offending_text(GMimeMessage *m)
{
    g_autoptr(GPtrArray) stack = g_ptr_array_new();
    g_ptr_array_add(stack, g_mime_message_get_mime_part(m));
    while (stack->len > 0) {
        GMimeObject *obj = g_ptr_array_steal_index(stack, stack->len - 1);
        if (GMIME_IS_MULTIPART(obj)) {
            GMimeMultipart *mp = GMIME_MULTIPART(obj);
            for (int i = g_mime_multipart_get_count(mp) - 1; i >= 0; i--)
                g_ptr_array_add(stack, g_mime_multipart_get_part(mp, i));
            continue;
        }
        if (obj == NULL || !GMIME_IS_PART(obj) || !fbl_mime_is_type(obj, "text", "plain"))
            continue;
        g_autofree char *text = fbl_mime_part_text(GMIME_PART(obj), NULL);
        const char *mark = strstr(text, OFFENDING);
        if (mark == NULL)
            continue;
        const char *start = strchr(mark, '\n');
        return g_strdup(start != NULL ? start + 1 : "");
    }
    return NULL;
}

bool fbl_fmt_spamcop(fbl_parse_ctx *c)
{
    if (!from_spamcop(c->mail))
        return false;
    const char *subject = g_mime_message_get_subject(c->mail);
    if (fbl_parse_sender_is(c->mail, "@admin.spamcop.net") ||
        (subject != NULL && strstr(subject, "summary report") != NULL)) {
        fbl_parse_reject(c, FBL_REJECT_NOT_A_REPORT,
                         "SpamCop summary report: sources only, no reported message");
        return true;
    }
    g_autofree char *spam = offending_text(c->mail);
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
