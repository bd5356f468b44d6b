/*
 * received.h - one Received header field into a hop
 *
 * Layer: parsers/. Pure, thread-safe; input is untrusted and may be anything.
 *
 * Understands the shapes real MTAs write (RFC 5321 §4.4 and beyond):
 *   from HELO (RDNS [IP]) by HOST ...; DATE              Postfix, Sendmail, Google
 *   from RDNS ([IP] helo=HELO) by HOST ...               Exim
 *   from [IP] (helo=HELO) / from HELO ([IP]) ...         Exim, others
 *   from HELO (IP) by HOST with Microsoft SMTP Server    Exchange, Outlook.com
 *   from unknown (HELO name) (IP) by HOST                qmail
 *   from HELO (RDNS [IPv6:addr]) ...                     IPv6 literals
 *   by HOST with ... (no from clause)                    local submission
 * Comments nest; clauses are found outside them. The date is what follows
 * the last ';'. Nothing is invented: a part that is not there stays NULL.
 */
#ifndef FBL_RECEIVED_H
#define FBL_RECEIVED_H

#include "parsers/report.h"

/* Values longer than this are not host names; the field is kept as NULL. */
#define FBL_RECEIVED_MAX_NAME 255

/*
 * fbl_received_parse - parse one Received field value (unfolded or not)
 *
 * Returns: (transfer full) a hop; its fields are NULL where absent.
 */
fbl_hop *fbl_received_parse(const char *value);

/*
 * fbl_date_to_iso - an RFC 5322 date (lenient) as ISO-8601 UTC
 *
 * Returns: (transfer full) "YYYY-MM-DDTHH:MM:SSZ", or NULL when unreadable.
 */
char *fbl_date_to_iso(const char *value);

#endif /* FBL_RECEIVED_H */
