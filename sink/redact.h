/*
 * redact.h - keyed pseudonyms for the personal fields of a report, before it
 * leaves the machine for a vendor
 *
 * Layer: sink/. No I/O. An fbl_redact is immutable after fbl_redact_new(), so
 * one may serve several threads. The key is a secret (a vendor's
 * redact_key_file); it is never logged.
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
 * XXX a value written differently (an encoded-word, base64 or
 * quoted-printable body, a URL-encoded token) is not found there.
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

/* The clear values found in one document and their pseudonyms, for the bytes. */
typedef struct fbl_redact_pairs fbl_redact_pairs;
void fbl_redact_pairs_free(fbl_redact_pairs *pairs);

/*
 * fbl_redact_doc - pseudonymize @doc in place (see above) and add
 * "pseudonymized": [the fields] to it
 *
 * Returns: (transfer full) the pairs to scrub the reported message with.
 */
fbl_redact_pairs *fbl_redact_doc(const fbl_redact *redact, json_t *doc);

/*
 * fbl_redact_bytes - @data with every clear value of @pairs replaced
 *
 * Returns: (transfer full) new bytes (the same content when nothing matched).
 */
GBytes *fbl_redact_bytes(const fbl_redact_pairs *pairs, const void *data, size_t len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_redact, fbl_redact_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_redact_pairs, fbl_redact_pairs_free)

#endif /* FBL_REDACT_H */
