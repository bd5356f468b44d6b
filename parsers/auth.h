/*
 * auth.h - is the reporter who the report mail says? (RFC 8601 results)
 *
 * Layer: parsers/. Pure, thread-safe.
 *
 * Our own MTA stamps each incoming mail with Authentication-Results under
 * its authserv-id. Only the first such field counts: fields lower down, or
 * under another authserv-id, may be the sender's forgery. The reporter is
 * verified when that field shows dkim=pass for a domain aligned with the
 * reporter's domain (header.d equal to it, or a parent of it: relaxed
 * alignment without a public suffix list), or spf=pass for an aligned
 * smtp.mailfrom. No field from our MTA means not verified; no configured
 * authserv-id means unknown.
 */
#ifndef FBL_AUTH_H
#define FBL_AUTH_H

#include <gmime/gmime.h>

/*
 * fbl_auth_reporter_verified - the value of reporter.verified
 *
 * @authserv_id: (nullable) our MTA's authserv-id
 * @reporter_domain: (nullable) the report mail's From domain, lower case
 * Returns: -1 unknown (no authserv-id configured), 0 not verified, 1 verified.
 */
int fbl_auth_reporter_verified(GMimeMessage *carrier, const char *authserv_id,
                               const char *reporter_domain);

/* fbl_auth_aligned - @domain is @reporter_domain or a parent domain of it */
gboolean fbl_auth_aligned(const char *domain, const char *reporter_domain);

#endif /* FBL_AUTH_H */
