/*
 * inline.h - recover a forwarded message from the text of a forward
 *
 * Layer: parsers/. Pure, thread-safe, input untrusted.
 *
 * People forward spam inline: Gmail ("---------- Forwarded message ---------"
 * then From/Date/Subject/To), Outlook ("-----Original Message-----", or a
 * From/Sent/To/Subject block after a rule of underscores), Thunderbird and
 * Apple Mail ("Begin forwarded message:"), Open-Xchange ("---------- Original
 * Message ----------", "Oorspronkelijk bericht"), or paste the full source (an
 * mbox "From " line, then Received, Return-Path …), sometimes under a line
 * introducing it ("Message Body:", "Message Header Data:").
 *
 * Labels: the clients' labels in English, German, French, Spanish, Italian,
 * Portuguese, Dutch, Polish, Czech, Swedish, Danish, Russian, Japanese and
 * Chinese map to RFC 5322 names ("Sent", "Envoyé", "送信日時" are Date). A label
 * may have blanks before its colon ("De :"), a full-width colon ("主题："),
 * Outlook's emphasis ("*From:*") or HTML entities ("De&nbsp;:", "From&#58;");
 * localised markers are known by their words. A sparse forward, the sender
 * and the subject alone, is a block.
 *
 * Repairs, each marked by @repaired:
 *   - a line of fields collapsed by the client is split again: a forward's
 *     block at its labels (of one language: an Italian "A:" inside an English
 *     subject stays text); a pasted header at any plausible field name too
 *     (X-…, Title-Case-hyphenated, or a known one-word field, followed by a
 *     colon and a blank, after a blank: never inside a URL, a time, "Re:", or
 *     a signature's list of field names);
 *   - a line indented more than the block's first is folded and unfolded as
 *     RFC 5322 says (the line break goes, the white space stays); a uniformly
 *     indented block is not one long fold;
 *   - lines a client wrapped without indentation are joined to the field
 *     before (in a pasted header up to its end; in a forward's block until it
 *     is complete), double-spaced pastes are read single-spaced, and a line of
 *     white space inside a pasted header is a fold when a field follows;
 *   - a pasted header fragment without sender and subject goes on with the
 *     forward's block of the same message below it;
 *   - no-break spaces are spaces; HTML-escaped values ("&lt;id@host&gt;") are
 *     unescaped; Outlook's "Name [mailto:a@b]" becomes "Name <a@b>".
 *
 * Choice: a block needs a sender or a subject that is not masked ("****") and
 * three fields (two after a marker), or the sender and the subject. The first
 * such block is the message, but a pasted source (one with transport fields)
 * later in the text replaces a client's forward block found before it: the
 * forward above a source is most often the complainant's own or a web form's.
 *
 * The result is "headers, blank line, the rest as the body" for GMime to read.
 *
 * Bounds: only the first FBL_INLINE_MAX_SCAN bytes of the text are searched,
 * and a block keeps at most FBL_INLINE_MAX_HEADERS fields. Every look-ahead is
 * bounded by a constant number of lines and each line starts at most one
 * block, so the time is linear in the text, whatever it holds.
 */
#ifndef FBL_INLINE_H
#define FBL_INLINE_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#define FBL_INLINE_MAX_SCAN    ((size_t) 1024 * 1024)
#define FBL_INLINE_MAX_HEADERS 200

typedef struct fbl_inline {
    GString *message; /* headers, blank line, body; RFC 5322 shaped */
    unsigned headers; /* fields recovered */
    bool full_source; /* the block had transport headers (Received, Return-Path) */
    bool repaired;    /* fields were split, unfolded, unwrapped or unspaced */
} fbl_inline;

/*
 * fbl_inline_recover - find the forwarded message in @text
 *
 * @text: (transfer none) @len bytes, UTF-8 expected (other bytes are kept);
 *   read up to its first NUL or FBL_INLINE_MAX_SCAN bytes
 * Returns: true and fills @out (free with fbl_inline_clear()), or false
 *   (and @out empty) when the text holds no forwarded header block.
 */
bool fbl_inline_recover(const char *text, size_t len, fbl_inline *out);

/* fbl_inline_clear - free what @recovered holds and empty it; NULL-safe members */
void fbl_inline_clear(fbl_inline *recovered);

#endif /* FBL_INLINE_H */
