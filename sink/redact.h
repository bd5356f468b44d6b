/*
 * redact.h - keyed pseudonyms for the personal fields of a report, before it
 * leaves the machine for a vendor; and addresses masked out of text meant
 * for logs
 *
 * Layer: sink/. No I/O. An fbl_redact is immutable after fbl_redact_new(), so
 * one may serve several threads; an fbl_redact_pairs belongs to one report.
 * The key is a secret (a vendor's redact_key_file); it is never logged.
 *
 * A pseudonym is HMAC-SHA256(key, the value in lower case), the first 32 hex
 * digits: the same value always gives the same pseudonym (the vendor can count
 * distinct reporters or recipients) and nobody without the key can find or
 * confirm the value. An address stays address-shaped:
 * "<32 hex>@redacted.invalid"; any other value is the 32 hex digits.
 *
 * What is replaced: the listed fields of the normalized document (table in
 * redact.c; "reporter" and "recipients" name groups), and then every other
 * occurrence of their clear values (4 bytes or longer, ASCII case ignored) in
 * any string of the document and in the reported message's bytes, where the
 * same address shows up again (To:, the ARF fields, the body's greeting).
 * An address is found however it is written:
 *   - with any character escaped: %40 (URLs), =40 (quoted-printable),
 *     &#64; &#x40; &commat; (HTML), ASCII case ignored;
 *   - split by a quoted-printable soft break ("=" CRLF) or a folded line;
 *   - inside RFC 2047 encoded words (B or Q, any charset iconv knows, split
 *     over adjacent words): the run of words is decoded, and written again as
 *     UTF-8 encoded words when it held a clear value;
 *   - inside base64 bodies (one level: a part whose header says base64), which
 *     are decoded, scrubbed as above and encoded again.
 * Other values (names) are found the same ways, but only as whole words. The
 * display names that go with a redacted address in the message's address
 * fields (To, Cc, From, Delivered-To, ...; decoded) are redacted too, with
 * every word of them of 4 bytes or more (the "Dear John" of the body), in the
 * message and in the document it came with.
 * XXX a name written in a legacy charset in a body (J=FCrgen in latin-1) is
 * not found: only UTF-8 and ASCII spellings are; nor is text in compressed
 * attachments (zip, pdf streams). The names are learnt from the reported
 * message only: a vendor that does not get it (http-json without
 * include_raw) gets a document whose subject may still hold a recipient's
 * name (never the address).
 *
 * Logs: fbl_redact_mask_addresses() replaces whatever is shaped like an
 * address with "[address]", for text that came from outside (a vendor's
 * answer may echo the request) on its way into a log line.
 */
#ifndef FBL_REDACT_H
#define FBL_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>
#include <jansson.h>

#define FBL_REDACT_ERROR (fbl_redact_error_quark())
GQuark fbl_redact_error_quark(void);

typedef enum {
    FBL_REDACT_ERROR_FIELD = 1, /* permanent: a field fbl cannot redact */
    FBL_REDACT_ERROR_KEY,       /* permanent: key missing or shorter than 16 bytes */
} fbl_redact_error;             /* append new codes at the end only */

/* The shortest key fbl_redact_new() takes. */
#define FBL_REDACT_MIN_KEY 16

/* What fbl_redact_mask_addresses() writes instead of an address. */
#define FBL_REDACT_MASK "[address]"

typedef struct fbl_redact fbl_redact;

/*
 * fbl_redact_new - check @fields and keep a copy of @key
 *
 * @fields: (transfer none) NULL-terminated field names ("reporter.address",
 *   "arf.original_rcpt_to", … or the groups "reporter", "recipients")
 * Returns: (transfer full) or NULL with FBL_REDACT_ERROR naming the field.
 */
fbl_redact *fbl_redact_new(const char *const *fields, const void *key, size_t key_len,
                           GError **error);
void fbl_redact_free(fbl_redact *redact);

/* fbl_redact_fields - (transfer none) the fields, groups expanded, NULL-terminated */
const char *const *fbl_redact_fields(const fbl_redact *redact);

/* fbl_redact_pseudonym - (transfer full) the pseudonym of @value */
char *fbl_redact_pseudonym(const fbl_redact *redact, const char *value);

/*
 * The clear values found in one document and their pseudonyms, for the bytes;
 * it holds a reference to the document and borrows the fbl_redact.
 */
typedef struct fbl_redact_pairs fbl_redact_pairs;
void fbl_redact_pairs_free(fbl_redact_pairs *pairs);

/*
 * fbl_redact_doc - pseudonymize @doc in place (see above) and add
 * "pseudonymized": [the fields] to it
 *
 * @doc: (transfer none) a reference is kept in the pairs, for the names
 *   fbl_redact_bytes() finds later
 * Returns: (transfer full) the pairs to scrub the reported message with.
 */
fbl_redact_pairs *fbl_redact_doc(const fbl_redact *redact, json_t *doc);

/*
 * fbl_redact_bytes - @data (the reported message) with every clear value of
 * @pairs replaced, in every spelling listed above
 *
 * The display names of redacted addresses in the message's header are added
 * to @pairs first, and replaced in the document @pairs came from as well.
 * Returns: (transfer full) new bytes (the same content when nothing matched).
 */
GBytes *fbl_redact_bytes(fbl_redact_pairs *pairs, const void *data, size_t len);

/*
 * fbl_redact_mask_addresses - @text with everything shaped like an address
 * (local@domain, the @ also as %40, =40, &#64;, &#x40;, &commat;, \u0040 or a
 * fullwidth at sign) replaced by FBL_REDACT_MASK
 *
 * @text: (nullable)
 * Returns: (transfer full) (nullable) NULL for NULL.
 */
char *fbl_redact_mask_addresses(const char *text);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_redact, fbl_redact_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_redact_pairs, fbl_redact_pairs_free)

#endif /* FBL_REDACT_H */
