/*
 * fmt_not_report.c - mails in the abuse mailbox that are not reports, each
 * recognised so it is recorded with a precise reason:
 *   bounce           a DSN (RFC 3464: multipart/report; report-type=delivery-status,
 *                    or a message/delivery-status part) or a mailer-daemon's notice;
 *   auto_reply       Auto-Submitted: auto-replied, X-Autoreply, out-of-office subjects;
 *   dmarc_aggregate  a DMARC aggregate (rua) report: a "Report Domain:" subject or a
 *                    zip/gzip/xml attachment named receiver!domain!begin!end;
 *   empty            no text and no attachment at all.
 * Runs before the attachment format, since a DSN carries the bounced message.
 *
 * Last of all, fbl_fmt_complaint: a complaint about spam (notice.h: "spam",
 * "phishing", "abuse" … in the subject), a person's or a desk's, human or
 * automated, that carries no message fbl could find is no_original_message,
 * for a human to read, rather than not_a_report; a blocklist's listing notice
 * (its subject speaks of a listing and of no abuse) is not_a_report.
 */
#include <string.h>

#include "parsers/notice.h"
#include "parsers/parse_internal.h"

static bool starts_with_any(const char *s, const char *const *prefixes, size_t n)
{
    if (s == NULL)
        return false;
    while (g_ascii_isspace(*s))
        s++;
    for (size_t i = 0; i < n; i++) {
        if (g_ascii_strncasecmp(s, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    }
    return false;
}

static bool has_child_type(GMimeObject *top, const char *type, const char *subtype)
{
    if (!GMIME_IS_MULTIPART(top))
        return false;
    GMimeMultipart *mp = GMIME_MULTIPART(top);
    for (int i = 0; i < g_mime_multipart_get_count(mp); i++) {
        if (fbl_mime_is_type(g_mime_multipart_get_part(mp, i), type, subtype))
            return true;
    }
    return false;
}

static bool is_bounce(GMimeMessage *m, GMimeObject *top)
{
    GMimeContentType *ct = g_mime_object_get_content_type(top);
    const char *rt = ct != NULL ? g_mime_content_type_get_parameter(ct, "report-type") : NULL;
    if (rt != NULL && g_ascii_strcasecmp(rt, "delivery-status") == 0)
        return true;
    if (has_child_type(top, "message", "delivery-status") ||
        has_child_type(top, "message", "global-delivery-status"))
        return true;
    static const char *const subjects[] = {
        "Undelivered Mail Returned to Sender",
        "Delivery Status Notification",
        "Mail delivery failed",
        "Undeliverable:",
        "failure notice",
        "Returned mail:",
        "Delivery Failure",
        "Mail System Error",
        "Undelivered Mail",
        "Your message couldn't be delivered",
        "Your message could not be delivered",
        "Delivery has failed",
        "Message not delivered",
    };
    static const char *const daemons[] = {"mailer-daemon@", "postmaster@", "mail-daemon@"};
    g_autofree char *from = fbl_parse_sender(m);
    return starts_with_any(from, daemons, G_N_ELEMENTS(daemons)) &&
           starts_with_any(g_mime_message_get_subject(m), subjects, G_N_ELEMENTS(subjects));
}

static bool is_auto_reply(GMimeMessage *m)
{
    GMimeObject *o = GMIME_OBJECT(m);
    const char *auto_submitted = fbl_mime_header(o, "Auto-Submitted");
    /* Request Tracker (many CERTs' ticket system) marks every mail it sends
     * auto-replied, the complaints it forwards too: the subject decides there. */
    bool ticket = fbl_mime_header(o, "X-RT-Ticket") != NULL;
    if (!ticket && auto_submitted != NULL && strstr(auto_submitted, "auto-replied") != NULL)
        return true;
    if (fbl_mime_header(o, "X-Autoreply") != NULL || fbl_mime_header(o, "X-Autorespond") != NULL)
        return true;
    const char *precedence = fbl_mime_header(o, "Precedence");
    if (precedence != NULL && strstr(precedence, "auto_reply") != NULL)
        return true;
    static const char *const subjects[] = {
        "Automatic reply:",     "Auto:",
        "Autoreply:",           "Out of Office",
        "Abwesenheitsnotiz",    "Réponse automatique",
        "Automatische Antwort", "Respuesta automática",
    };
    return starts_with_any(g_mime_message_get_subject(m), subjects, G_N_ELEMENTS(subjects));
}

/* "google.com!example.com!1700000000!1700086399.zip" and its .xml/.xml.gz kin */
static bool is_rua_name(const char *name)
{
    if (name == NULL)
        return false;
    unsigned bangs = 0;
    for (const char *p = name; *p != '\0'; p++)
        bangs += *p == '!';
    return bangs >= 3 || (g_str_has_suffix(name, ".xml.gz") && bangs >= 1);
}

static bool is_dmarc_aggregate(GMimeMessage *m, GMimeObject *top)
{
    static const char *const subjects[] = {"Report Domain:", "Report domain:"};
    if (starts_with_any(g_mime_message_get_subject(m), subjects, G_N_ELEMENTS(subjects)))
        return true;
    g_autoptr(GPtrArray) stack = g_ptr_array_new();
    g_ptr_array_add(stack, top);
    while (stack->len > 0) {
        GMimeObject *obj = g_ptr_array_steal_index(stack, stack->len - 1);
        if (GMIME_IS_MULTIPART(obj)) {
            GMimeMultipart *mp = GMIME_MULTIPART(obj);
            for (int i = 0; i < g_mime_multipart_get_count(mp); i++)
                g_ptr_array_add(stack, g_mime_multipart_get_part(mp, i));
        } else if (GMIME_IS_PART(obj) && is_rua_name(g_mime_part_get_filename(GMIME_PART(obj)))) {
            return true;
        }
    }
    return false;
}

/* No text that is not white space, and no attachment (a multipart with no part at all). */
static bool is_empty(GMimeObject *top)
{
    if (GMIME_IS_MULTIPART(top))
        return g_mime_multipart_get_count(GMIME_MULTIPART(top)) == 0;
    if (!GMIME_IS_PART(top) || !fbl_mime_is_type(top, "text", "*"))
        return false;
    g_autoptr(GByteArray) bytes = fbl_mime_part_bytes(GMIME_PART(top));
    for (guint i = 0; i < bytes->len; i++) {
        if (!g_ascii_isspace(bytes->data[i]))
            return false;
    }
    return true;
}

bool fbl_fmt_not_report(fbl_parse_ctx *c)
{
    GMimeObject *top = g_mime_message_get_mime_part(c->mail);
    if (top == NULL) {
        fbl_parse_reject(c, FBL_REJECT_EMPTY, "the mail has no body");
        return true;
    }
    if (is_bounce(c->mail, top))
        fbl_parse_reject(c, FBL_REJECT_BOUNCE, "a delivery status notification, not a report");
    else if (is_auto_reply(c->mail))
        fbl_parse_reject(c, FBL_REJECT_AUTO_REPLY, "an automatic reply, not a report");
    else if (is_dmarc_aggregate(c->mail, top))
        fbl_parse_reject(c, FBL_REJECT_DMARC_AGGREGATE,
                         "a DMARC aggregate report; fbl takes failure reports only");
    else if (is_empty(top))
        fbl_parse_reject(c, FBL_REJECT_EMPTY, "the mail has no text and no attachment");
    else
        return false;
    return true;
}

/*
 * Mail sent in bulk: a newsletter names no source. A list that relays people
 * (a Google Group behind abuse@, Mailman) also sends List-Unsubscribe, but says
 * it is a list (X-BeenThere, List-Id, Mailing-list): those are people's mails.
 */
static bool is_bulk(GMimeMessage *m)
{
    GMimeObject *o = GMIME_OBJECT(m);
    const char *precedence = fbl_mime_header(o, "Precedence");
    if (precedence != NULL && (strstr(precedence, "bulk") || strstr(precedence, "junk")))
        return true;
    return fbl_mime_header(o, "List-Unsubscribe") != NULL &&
           fbl_mime_header(o, "X-BeenThere") == NULL && fbl_mime_header(o, "List-Id") == NULL &&
           fbl_mime_header(o, "Mailing-list") == NULL;
}

bool fbl_fmt_complaint(fbl_parse_ctx *c)
{
    /* The subject only: chatter that merely mentions spam stays not_a_report. */
    const char *subject = g_mime_message_get_subject(c->mail);
    if (is_bulk(c->mail))
        return false;
    bool complaint = fbl_notice_is_complaint(subject);
    if (!complaint && fbl_notice_is_listing(subject)) {
        fbl_parse_reject(c, FBL_REJECT_NOT_A_REPORT,
                         "a blocklist listing notice: names an address, not a complaint");
        return true;
    }
    if (!complaint)
        return false;
    fbl_parse_reject(c, FBL_REJECT_NO_ORIGINAL_MESSAGE,
                     "a complaint about spam that does not carry the message");
    return true;
}
