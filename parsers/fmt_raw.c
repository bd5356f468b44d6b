/*
 * fmt_raw.c - the mail is the spam itself, not a report about it:
 *   - the whole mail is a message/rfc822 (a "report as spam" that wraps the
 *     spam without a word; the wrapper's From is the reporter);
 *   - the spam was redirected (Resent-From: the reporter) or sent back by a
 *     feedback loop that keeps it whole (RFC 9477 CFBL-Feedback-ID);
 *   - a JMRP report whose MIME wrapper was lost: the spam with Microsoft's
 *     X-HmXmrOriginalRecipient among its headers (format jmrp).
 *   - a mailbox configured raw (a feedback loop that returns the spam whole,
 *     a spam trap network): every mail in it.
 * Except for the wrapped case, the mail reached us through the reporter's
 * relays, so their hand-over hop is not the source (source.h).
 */
#include <string.h>

#include "parsers/address.h"
#include "parsers/notice.h"
#include "parsers/parse_internal.h"

static void report_whole_mail(fbl_parse_ctx *c, fbl_format format, const char *reporter)
{
    fbl_original orig = {.message = g_object_ref(c->mail), .size = (int64_t) c->size};
    fbl_report *r = fbl_parse_new_report(c, format, NULL, &orig);
    if (reporter != NULL)
        r->reporter.address = g_strdup(reporter);
    fbl_parse_finish_raw(c, r, orig.message);
    fbl_original_clear(&orig);
}

static char *header_address(GMimeMessage *m, const char *name)
{
    return fbl_address_spec(fbl_mime_header(GMIME_OBJECT(m), name), NULL);
}

bool fbl_fmt_raw(fbl_parse_ctx *c)
{
    GMimeObject *top = g_mime_message_get_mime_part(c->mail);
    GMimeObject *o = GMIME_OBJECT(c->mail);
    if (top != NULL && (GMIME_IS_MESSAGE_PART(top) || fbl_mime_is_type(top, "message", "rfc822"))) {
        fbl_original orig = {0};
        if (!fbl_parse_load_original(c, top, 0, &orig))
            return false;
        fbl_report *r = fbl_parse_new_report(c, FBL_FORMAT_RAW, c->mail, &orig);
        fbl_parse_finish_report(c, r, orig.message);
        fbl_original_clear(&orig);
        return true;
    }
    if (fbl_mime_header(o, "X-HmXmrOriginalRecipient") != NULL) {
        g_autofree char *rp = header_address(c->mail, "Return-Path");
        report_whole_mail(c, FBL_FORMAT_JMRP,
                          rp != NULL && strcmp(rp, "staff@hotmail.com") == 0 ? rp : NULL);
        return true;
    }
    if (fbl_mime_header(o, "CFBL-Feedback-ID") != NULL || c->meta->raw) {
        report_whole_mail(c, FBL_FORMAT_RAW, NULL);
        return true;
    }
    return false;
}

bool fbl_fmt_redirect(fbl_parse_ctx *c)
{
    /* After the attachment format: a redirected report is still that report. */
    g_autofree char *resent = header_address(c->mail, "Resent-From");
    if (resent == NULL)
        return false;
    /* An abuse desk's mailbox rule resends notices too ("Abuse Ticket …",
     * "IP blocklisted"): a notice is not the spam it speaks of. */
    const char *subject = g_mime_message_get_subject(c->mail);
    if (fbl_notice_is_complaint(subject) || fbl_notice_is_listing(subject))
        return false;
    report_whole_mail(c, FBL_FORMAT_RAW, resent);
    return true;
}
