/*
 * notice.h - what a text is about, for mails that carry no reported message
 *
 * Layer: parsers/. Pure, thread-safe, input untrusted (only the first
 * FBL_NOTICE_MAX_SCAN bytes are read).
 *
 * A complaint names spam, phishing or abuse seen from a source ("spam",
 * "phishing", "abuse", "unsolicited", "compromised", … in the major languages
 * of abuse mail); a listing notice says an address was put on (or taken off)
 * a blocklist. Words are matched whole, case-insensitively: "spam" is in
 * "SPAM ticket" but not in "spamrats.com".
 */
#ifndef FBL_NOTICE_H
#define FBL_NOTICE_H

#include <stdbool.h>

#define FBL_NOTICE_MAX_SCAN ((size_t) 16 * 1024)

/* fbl_notice_is_complaint - @text (UTF-8, may be NULL) speaks of spam or abuse */
bool fbl_notice_is_complaint(const char *text);

/* fbl_notice_is_listing - @text speaks of a blocklist listing */
bool fbl_notice_is_listing(const char *text);

#endif /* FBL_NOTICE_H */
