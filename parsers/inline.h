/*
 * inline.h - recover a forwarded message from the text of a forward
 *
 * Layer: parsers/. Pure, thread-safe, input untrusted.
 *
 * People forward spam inline: Gmail ("---------- Forwarded message ---------"
 * then From/Date/Subject/To), Outlook ("-----Original Message-----" or a
 * From/Sent/To/Subject block, localised: Von/Gesendet/An/Betreff, De/Envoyé/
 * À/Objet, …), Thunderbird and Apple Mail ("Begin forwarded message:"), or
 * paste the full source (an mbox "From " line, then Received, Return-Path …).
 * The recovery finds the header block, also when its fields were collapsed
 * onto one line or wrapped without indentation, maps localised names to
 * RFC 5322 ones ("Sent" is Date), turns Outlook's "Name [mailto:a@b]" into
 * "Name <a@b>", and returns "headers, blank line, the rest as the body" for
 * GMime to read. A block needs From or Subject and two fields at least.
 *
 * Bounds: only the first FBL_INLINE_MAX_SCAN bytes of the text are searched,
 * and a block keeps at most FBL_INLINE_MAX_HEADERS fields.
 */
#ifndef FBL_INLINE_H
#define FBL_INLINE_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#define FBL_INLINE_MAX_SCAN    (1024 * 1024)
#define FBL_INLINE_MAX_HEADERS 200

typedef struct fbl_inline {
    GString *message;  /* headers, blank line, body; RFC 5322 shaped */
    unsigned headers;  /* fields recovered */
    bool full_source;  /* the block had transport headers (Received, Return-Path) */
    bool repaired;     /* fields were split from one line or unwrapped */
} fbl_inline;

/*
 * fbl_inline_recover - find the forwarded message in @text
 *
 * Returns: true and fills @out (free with fbl_inline_clear()), or false
 *   when the text holds no forwarded header block.
 */
bool fbl_inline_recover(const char *text, size_t len, fbl_inline *out);
void fbl_inline_clear(fbl_inline *recovered);

#endif /* FBL_INLINE_H */
