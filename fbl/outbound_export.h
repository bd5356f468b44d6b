/*
 * outbound_export.h - locked accounts as Postfix access tables
 *
 * Layer: fbl/. Pure (no I/O): fbl_cmd_export_accounts (cmd_outbound.c)
 * writes what this renders with fbl_export_write_text(). Thread-safe.
 *
 * Formats (doc/fbl.1, EXPORT FORMATS):
 *   postfix-sender  the source of a hash: (or lmdb:) table for
 *                   check_sender_access: "ACCOUNT REJECT 5.7.1 TEXT"; an
 *                   account without '@' (a bare login) is written once per
 *                   [local] domain, as LOGIN@DOMAIN, since Postfix looks up
 *                   the envelope sender address;
 *   postfix-sasl    the same for check_sasl_access, which looks up the SASL
 *                   login name: each account as it is.
 * An account that is not one word of letters, digits and ".-_+=@" is left out
 * (counted in @skipped): a name from a hostile mail cannot add a table line
 * or a second field.
 */
#ifndef FBL_OUTBOUND_EXPORT_H
#define FBL_OUTBOUND_EXPORT_H

#include <stdbool.h>

#include <glib.h>

typedef enum {
    FBL_ACCOUNTS_POSTFIX_SENDER = 0,
    FBL_ACCOUNTS_POSTFIX_SASL,
} fbl_accounts_format;

/* fbl_accounts_format_from_string - "postfix-sender" or "postfix-sasl" */
bool fbl_accounts_format_from_string(const char *text, fbl_accounts_format *out);

/* fbl_outbound_account_is_safe - @account may be a key of an access table */
bool fbl_outbound_account_is_safe(const char *account);

/*
 * fbl_outbound_export_render - the table of @accounts (char *, lower case)
 *
 * @domains: (nullable) [local] domains, for bare logins in postfix-sender
 * @lock_text: what follows "REJECT 5.7.1 " (one line)
 * @skipped: (out) (optional) accounts left out
 * Returns: (transfer full) the text.
 */
char *fbl_outbound_export_render(fbl_accounts_format format, const GPtrArray *accounts,
                                 const char *const *domains, const char *lock_text, guint *skipped);

#endif /* FBL_OUTBOUND_EXPORT_H */
