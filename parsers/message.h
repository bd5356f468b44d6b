/*
 * message.h - the reported message into the contract's "message" object
 *
 * Layer: parsers/. No I/O; thread-safe for distinct messages.
 *
 * Reads headers (From, Sender, Reply-To, Return-Path, To, Subject decoded to
 * UTF-8, Message-ID, Date, DKIM-Signature d=/s=, List-Unsubscribe, X-Mailer,
 * every Received hop) and, unless the report carried headers only, the body:
 * URLs from text and HTML parts, attachments with size and SHA-256, and the
 * campaign fingerprint. The message's tree was bounded when it was loaded
 * (mime.h); the walk here is iterative and visits each entity once.
 *
 * Bounds: FBL_MESSAGE_MAX_HOPS Received hops, FBL_MESSAGE_MAX_LIST addresses
 * per list, FBL_MESSAGE_MAX_ATTACHMENTS attachments, FBL_MESSAGE_MAX_DKIM
 * signatures; beyond them a warning says what was left out.
 */
#ifndef FBL_MESSAGE_H
#define FBL_MESSAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <gmime/gmime.h>

#include "parsers/report.h"

#define FBL_MESSAGE_MAX_HOPS        100
#define FBL_MESSAGE_MAX_LIST        100
#define FBL_MESSAGE_MAX_ATTACHMENTS 100
#define FBL_MESSAGE_MAX_DKIM        20

/*
 * fbl_message_fill - fill @out from @message
 *
 * @headers_only: the report carried only the headers (text/rfc822-headers)
 * @size: bytes of the reported message as carried
 * @warnings: (transfer none) receives what could not be read
 */
void fbl_message_fill(fbl_message *out, GMimeMessage *message, bool headers_only, int64_t size,
                      GPtrArray *warnings);

/*
 * fbl_dkim_tags - d= and s= of one DKIM-Signature value
 *
 * Returns: (transfer full) or NULL when it names no domain.
 */
fbl_dkim *fbl_dkim_tags(const char *value);

#endif /* FBL_MESSAGE_H */
