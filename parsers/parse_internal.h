/*
 * parse_internal.h - what the format modules share with parse.c
 *
 * Layer: parsers/, private to it (not installed, not used outside parsers/).
 * One fbl_parse_ctx belongs to one fbl_parser_parse() call.
 *
 * Detection runs the formats in a fixed order (parse.c); each fmt_*.c
 * either claims the mail (adds reports, or records a reject) and returns
 * true, or leaves it to the next one untouched.
 */
#ifndef FBL_PARSE_INTERNAL_H
#define FBL_PARSE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <gmime/gmime.h>

#include "parsers/ip.h"
#include "parsers/mime.h"
#include "parsers/parse.h"
#include "parsers/report.h"
#include "parsers/source.h"

typedef struct fbl_parse_ctx {
    const fbl_parse_options *options;
    fbl_trust trust;
    const struct fbl_outbound_scope *local; /* NULL: no [local] scope */
    const fbl_mail_meta *meta;
    fbl_mime_budget budget;
    fbl_parse_result *result;
    GMimeMessage *mail; /* the whole mail, parsed */
    size_t size;        /* bytes of the raw mail */
    GPtrArray *kept;    /* GMimeMessage *: messages parsed from parts, kept to the end */
} fbl_parse_ctx;

/* A reported message as a report carries it. */
typedef struct fbl_original {
    GMimeMessage *message; /* owned reference, NULL when there is none */
    bool headers_only;
    int64_t size;
} fbl_original;

void fbl_original_clear(fbl_original *original);

/*
 * fbl_parse_load_original - the reported message @object carries: a parsed
 * message/rfc822, an encoded one (GMime leaves base64 message/rfc822 as a
 * part), a *.eml file under any type, or a headers-only part
 * (text/rfc822-headers and its misspellings). Bytes that do not look like
 * mail (no From, Received, Subject, … header) are not a message.
 */
bool fbl_parse_load_original(fbl_parse_ctx *ctx, GMimeObject *object, unsigned depth,
                             fbl_original *out);

/*
 * fbl_parse_load_bytes - load @len bytes of a message found in text (inline
 * forwards, SpamCop's "[ Offending message ]") within the mail's budget
 */
bool fbl_parse_load_bytes(fbl_parse_ctx *ctx, const char *bytes, size_t len, unsigned depth,
                          fbl_original *out);

/* fbl_parse_looks_like_mail - has at least one header only mail has */
bool fbl_parse_looks_like_mail(GMimeMessage *message);

/*
 * fbl_parse_new_report - a report of @format carried by @carrier (whose
 * From is the reporter), about @original (may hold no message)
 */
fbl_report *fbl_parse_new_report(fbl_parse_ctx *ctx, fbl_format format, GMimeMessage *carrier,
                                 fbl_original *original);

/*
 * fbl_parse_finish_report - ids, time, mailbox, source IP, redaction; adds
 * @report to the result (transfer full)
 */
void fbl_parse_finish_report(fbl_parse_ctx *ctx, fbl_report *report, GMimeMessage *reported);

/* fbl_parse_finish_raw - the same for a message that came whole via the reporter */
void fbl_parse_finish_raw(fbl_parse_ctx *ctx, fbl_report *report, GMimeMessage *reported);

/*
 * fbl_parse_relayed_by - the report names its own complainant (an X-ARF
 * Reported-From, a relayed SpamCop report…): when it is another
 * organisation's than the mail's sender (a relay), @complainant becomes
 * reporter.address and the sender reporter.via. Nothing changes when
 * @complainant is NULL, the sender, or of the sender's organisation.
 */
void fbl_parse_relayed_by(fbl_report *report, const char *complainant);

/* fbl_parse_reject - record the mail's reject (replaces any earlier one) */
void fbl_parse_reject(fbl_parse_ctx *ctx, fbl_reject_reason reason, const char *detail);

/* fbl_parse_sender - (transfer full) the From addr-spec of @message, or NULL */
char *fbl_parse_sender(GMimeMessage *message);

/* fbl_parse_sender_is - the mail's From address ends with @suffix ("@hotmail.com") */
bool fbl_parse_sender_is(GMimeMessage *message, const char *suffix);

/*
 * fbl_parse_detect_inner - run the formats on c->mail as it is now (after
 * fmt_iodef put the relayed report mail in the envelope's place); a reject when
 * none claims it
 */
void fbl_parse_detect_inner(fbl_parse_ctx *ctx);

/* The formats, in the order parse.c tries them (its formats[] says why). */
bool fbl_fmt_iodef(fbl_parse_ctx *ctx);
bool fbl_fmt_arf(fbl_parse_ctx *ctx);
bool fbl_fmt_xarf(fbl_parse_ctx *ctx);
bool fbl_fmt_spamcop(fbl_parse_ctx *ctx);
bool fbl_fmt_raw(fbl_parse_ctx *ctx);
bool fbl_fmt_not_report(fbl_parse_ctx *ctx);
bool fbl_fmt_attachment(fbl_parse_ctx *ctx);
bool fbl_fmt_redirect(fbl_parse_ctx *ctx);
bool fbl_fmt_inline(fbl_parse_ctx *ctx);
bool fbl_fmt_complaint(fbl_parse_ctx *ctx);

#endif /* FBL_PARSE_INTERNAL_H */
