/*
 * fingerprint.h - a campaign fingerprint: the same spam, whoever reported it
 *
 * Layer: parsers/. Pure, thread-safe.
 *
 * Method. The same campaign reaches many people with per-copy differences:
 * the recipient (To, "Dear john"), tracking tokens in links and text, dates,
 * the Received chain, message ids, MIME boundaries. Different campaigns
 * differ in what they say. So the fingerprint hashes only what the spammer
 * wrote for everyone, after erasing the per-copy parts:
 *
 *   1. the subject and the body text (text/plain, or the text of the HTML
 *      when there is no plain part), Unicode case-folded and NFKC-normalized;
 *   2. every URL replaced by its host's last two labels ("track.example.com/
 *      c/8f3a?u=123" becomes "example.com"), every address by "@";
 *   3. the recipient's local part and display name words erased;
 *   4. every token that holds a digit (ids, codes, dates, amounts) replaced
 *      by "#", punctuation dropped, white space collapsed;
 *   5. "re:", "fw:", "fwd:" subject prefixes and quoted ">" lines removed.
 *
 * Received, Message-ID, Date, boundaries and headers other than Subject are
 * never read. The result is the first 32 hex digits of the SHA-256 of
 * "v1\n<subject>\n<body>". With neither subject nor body there is no
 * fingerprint (NULL). Body text beyond FBL_FINGERPRINT_MAX_TEXT bytes is
 * not read.
 */
#ifndef FBL_FINGERPRINT_H
#define FBL_FINGERPRINT_H

#include <glib.h>

#define FBL_FINGERPRINT_MAX_TEXT ((size_t) 256 * 1024)

/*
 * fbl_fingerprint - the fingerprint of one reported message
 *
 * @subject: (nullable) decoded subject
 * @body: (nullable) UTF-8 body text
 * @recipients: (nullable) char * addr-specs the copy was sent to
 * @recipient_names: (nullable) char * display names of those recipients
 * Returns: (transfer full) 32 hex digits, or NULL with nothing to hash.
 */
char *fbl_fingerprint(const char *subject, const char *body, const GPtrArray *recipients,
                      const GPtrArray *recipient_names);

/* fbl_fingerprint_normalize - (transfer full) step 1-5 on @text, for tests */
char *fbl_fingerprint_normalize(const char *text, const GPtrArray *erase_words);

#endif /* FBL_FINGERPRINT_H */
