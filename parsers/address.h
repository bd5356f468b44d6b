/*
 * address.h - mail addresses and domains as fbl records them
 *
 * Layer: parsers/. Pure, thread-safe. Addresses are addr-specs (no display
 * name, no angle brackets), lower-cased; domains are lower-cased without a
 * trailing dot. Parsing is GMime's, in its loose mode, since reports quote
 * whatever the spammer wrote.
 */
#ifndef FBL_ADDRESS_H
#define FBL_ADDRESS_H

#include <glib.h>
#include <gmime/gmime.h>

/* Longer than RFC 5321 allows: not an address. */
#define FBL_ADDRESS_MAX 320

/*
 * fbl_address_spec - the first addr-spec in "Name <a@b>", "<a@b>", "a@b"
 *
 * @name: (out) (optional) (transfer full) the display name, or NULL
 * Returns: (transfer full) lower-cased, or NULL when there is none.
 */
char *fbl_address_spec(const char *text, char **name);

/*
 * fbl_address_list - every addr-spec in an address list header value
 *
 * @out: (transfer none) receives lower-cased copies, duplicates skipped,
 *   at most @max of them
 */
void fbl_address_list(const char *text, GPtrArray *out, guint max);

/*
 * fbl_address_list_take - the addr-specs of an already parsed list
 *
 * @out: (transfer none) receives lower-cased copies, at most @max in all
 * @names: (nullable) receives the display names of those taken
 */
void fbl_address_list_take(InternetAddressList *list, GPtrArray *out, GPtrArray *names, guint max);

/* fbl_address_domain - (transfer full) the domain of an addr-spec, or NULL */
char *fbl_address_domain(const char *address);

#endif /* FBL_ADDRESS_H */
