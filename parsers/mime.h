/*
 * mime.h - bounded GMime loading and the small MIME helpers every parser uses
 *
 * Layer: parsers/. No I/O. Not thread-safe per budget: one fbl_mime_budget
 * belongs to one parse of one mail.
 *
 * Limits (parse.h) are enforced here, around GMime rather than after it:
 *  - before GMime runs, the bytes are scanned for boundary lines ("--" at a
 *    line start): GMime makes at most one entity per such line, so more than
 *    4 x max_mime_parts of them rejects the mail with too_many_parts before
 *    a single object is allocated;
 *  - while GMime runs, a header callback counts header fields and measures
 *    each one; over max_headers or max_header_bytes the input stream is cut
 *    (its bounds set to zero) so GMime stops at its next read;
 *  - GMime itself stops nesting at 1024 levels; fbl_mime_check_tree() applies
 *    max_mime_depth and max_mime_parts to the tree that was built.
 * The budget is shared by every load of one mail (embedded messages too), so
 * the totals hold for the whole mail.
 *
 * The mbox "From " line some stores prepend is skipped and CR-only line
 * endings are read as LF; mail_id is always the hash of the bytes as given.
 */
#ifndef FBL_MIME_H
#define FBL_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>
#include <gmime/gmime.h>

#include "parsers/parse.h"
#include "parsers/report.h"

/* GMime 3.2 declares no autoptr cleanups (STYLE.md §5); declared once, here. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParser, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeMessage, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeObject, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParserOptions, g_mime_parser_options_free)

#define FBL_MIME_MAX_WARNINGS 16

typedef struct fbl_mime_budget {
    const fbl_parse_options *limits;
    unsigned headers; /* header fields seen so far */
    unsigned parts;   /* MIME entities so far, every load counted */
    bool tripped;     /* a limit was hit: the result is a reject */
    fbl_reject_reason reason;
    char *detail;
    GPtrArray *warnings;  /* char *: what GMime complained about, capped */
    GMimeStream *current; /* (transfer none) the stream being parsed */
    size_t rfc2047_scan;  /* bytes GMime's RFC 2047 decoder may scan, every load */
} fbl_mime_budget;

void fbl_mime_budget_init(fbl_mime_budget *budget, const fbl_parse_options *limits);
void fbl_mime_budget_clear(fbl_mime_budget *budget);

/* fbl_mime_budget_trip - record the first limit hit; later ones are ignored */
void fbl_mime_budget_trip(fbl_mime_budget *budget, fbl_reject_reason reason, const char *format,
                          ...) G_GNUC_PRINTF(3, 4);

/*
 * fbl_mime_load - parse @len bytes as one message within @budget
 *
 * @data: (transfer none) GMime keeps pointers into a copy, never into @data
 * @depth: nesting level of these bytes in the mail (0 for the mail itself)
 * Returns: (transfer full) the message, or NULL when the budget tripped
 *   (reason in @budget) or GMime could not make a message of the bytes.
 *   The message's tree is within max_mime_depth and max_mime_parts.
 */
GMimeMessage *fbl_mime_load(fbl_mime_budget *budget, const char *data, size_t len, unsigned depth);

/*
 * fbl_mime_load_in_place - fbl_mime_load() of a whole mail (depth 0) without
 * copying it: GMime reads @data where it is, which saves a copy of every
 * mail (the largest allocation of a parse).
 *
 * @data: (transfer none) read, never written; it must outlive the message
 *   and every object taken from it.
 */
GMimeMessage *fbl_mime_load_in_place(fbl_mime_budget *budget, const char *data, size_t len);

/*
 * fbl_mime_leaves - (transfer container) every object of @message's MIME tree
 * that is not a multipart (parts and message/rfc822 parts, not opened), in
 * document order; the objects are @message's. The tree is as large as the
 * parse budget let it be loaded, so the list is bounded by it.
 */
GPtrArray *fbl_mime_leaves(GMimeMessage *message);

/* fbl_mime_part_bytes - (transfer full) the decoded content of @part; never NULL */
GByteArray *fbl_mime_part_bytes(GMimePart *part);

/*
 * fbl_mime_bytes_contain - @needle occurs in the first @limit bytes of @bytes
 * (0: all). Binary-safe, and false for an empty array, whose data is NULL:
 * string searches (strstr, g_strstr_len) must never see a part's bytes.
 */
bool fbl_mime_bytes_contain(const GByteArray *bytes, size_t limit, const char *needle);

/*
 * fbl_mime_to_utf8 - @len bytes in @charset (may be NULL) as valid UTF-8
 *
 * @lossy: (out) (optional) set when bytes had to be guessed or replaced
 * Returns: (transfer full) NUL-terminated UTF-8.
 */
char *fbl_mime_to_utf8(const char *bytes, size_t len, const char *charset, bool *lossy);

/* fbl_mime_part_text - (transfer full) a text part's content as UTF-8 */
char *fbl_mime_part_text(GMimePart *part, bool *lossy);

/* fbl_mime_is_type - case-insensitive test of @object's content type */
bool fbl_mime_is_type(GMimeObject *object, const char *type, const char *subtype);

/* fbl_mime_header - (transfer none) the first header @name of @object, unfolded */
const char *fbl_mime_header(GMimeObject *object, const char *name);

/*
 * fbl_rfc2047_join - repair runs of base64 encoded words before GMime decodes them
 *
 * GMime 3.2 joins adjacent encoded words of one charset before decoding, so
 * "=?utf-8?B?YWJjZA==?= =?utf-8?B?ZWZn?=" (padding inside the run, as
 * Python's email package writes long subjects) decodes to "abcd". Such a
 * run is rewritten as one encoded word holding all its bytes, which GMime
 * decodes whole ("abcdefg"); anything else is left as it is.
 * Returns: (transfer full) the repaired value.
 */
char *fbl_rfc2047_join(const char *raw);

/*
 * fbl_mime_header_text - (transfer full) the first header @name of @object,
 * unfolded and decoded to valid UTF-8 (with fbl_rfc2047_join), or NULL
 */
char *fbl_mime_header_text(GMimeObject *object, const char *name);

/*
 * fbl_mime_filename - (transfer full) the file name of a part: the
 * Content-Disposition filename, else the Content-Type name (RFC 2231
 * continuations and charsets, RFC 2047 words in the value, with
 * fbl_rfc2047_join), valid UTF-8, or NULL when it has none
 */
char *fbl_mime_filename(GMimeObject *object);

/*
 * fbl_mime_header_addresses - (transfer full) the addresses of every header
 * @name of @object, as one list, parsed after fbl_rfc2047_join, or NULL
 */
InternetAddressList *fbl_mime_header_addresses(GMimeObject *object, const char *name);

#endif /* FBL_MIME_H */
