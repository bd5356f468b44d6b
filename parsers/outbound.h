/*
 * outbound.h - is a report about mail our own users sent, and which account
 * sent it (doc/fbl.conf.5, [local]; README.md, "Outbound abuse")
 *
 * Layer: parsers/. Pure functions over a parsed report and its reported
 * message; no I/O, thread-safe. An fbl_outbound_scope is immutable once made.
 *
 * A report is outbound when its source IP is in our networks, or the
 * reported message's From domain or the d= of one of its DKIM signatures is
 * one of our domains or under one. Its account is, in this order:
 *   auth      the user our MTA recorded as authenticated: the topmost
 *             Received field carrying one of
 *               (Authenticated sender: USER)      Postfix, smtpd_sasl_authenticated_header
 *               (... auth=USER)                   Exim, a received_header_text with
 * $authenticated_id (authenticated as USER)           chasquid, others (AUTH: MECHANISM USER, ...)
 * Courier
 *               ... auth=yes user=USER            OpenSMTPD
 *             else the first X-Authenticated-User:, X-Authenticated-Sender:
 *             ("[HOST: ]USER", Exim/cPanel) or X-Get-Message-Sender-Via:
 *             ("HOST: authenticated_id: USER");
 *   envelope  the reported message's Return-Path, else ARF's Original-Mail-From;
 *   from      the reported message's From.
 * The account is lower case, one word of at most FBL_OUTBOUND_MAX_ACCOUNT
 * printable characters; a value that is not is skipped.
 *
 * XXX The topmost marker is taken because our MTA adds its Received above
 * whatever the sender wrote; a sender who submits through our MTA can still
 * write an X-Authenticated-User of his choosing, which counts only when no
 * Received says who authenticated. Make the MTA record the login
 * (smtpd_sasl_authenticated_header = yes in Postfix).
 */
#ifndef FBL_OUTBOUND_H
#define FBL_OUTBOUND_H

#include <stdbool.h>

#include <glib.h>
#include <gmime/gmime.h>

#include "parsers/report.h"

#define FBL_OUTBOUND_MAX_ACCOUNT 255

typedef struct fbl_outbound_scope fbl_outbound_scope;

/*
 * fbl_outbound_scope_new - what is ours: @networks (CIDRs or addresses) and
 * @domains (names; "*.example.com" and ".example.com" mean example.com).
 * Both NULL-terminated, may be NULL; copied.
 *
 * Returns: (transfer full) or NULL with FBL_PARSE_ERROR_OPTION (parse.h)
 *   naming the bad network or domain; NULL without error when both are empty.
 */
fbl_outbound_scope *fbl_outbound_scope_new(const char *const *networks, const char *const *domains,
                                           GError **error);
void fbl_outbound_scope_free(fbl_outbound_scope *scope);

/*
 * fbl_outbound_domain_is_ours - whether @domain (any case) is one of
 * @scope's domains or under one
 */
bool fbl_outbound_domain_is_ours(const fbl_outbound_scope *scope, const char *domain);

/*
 * fbl_outbound_auth_user - the authenticated user our MTA recorded in
 * @message's header (see above)
 *
 * @how: (out) (optional) where it was found: "received",
 *   "x-authenticated-user", "x-authenticated-sender", "x-get-message-sender-via"
 * Returns: (transfer full) (nullable) the account, lower case.
 */
char *fbl_outbound_auth_user(GMimeMessage *message, const char **how);

/*
 * fbl_outbound_detect - @report's outbound block, when @scope says it is ours
 *
 * @reported: (nullable) the reported message, for its headers
 * Returns: (transfer full) (nullable) NULL when the report is not about our mail.
 */
fbl_outbound *fbl_outbound_detect(const fbl_outbound_scope *scope, const fbl_report *report,
                                  GMimeMessage *reported);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_outbound_scope, fbl_outbound_scope_free)

#endif /* FBL_OUTBOUND_H */
