/*
 * arf.h - the fields of an ARF message/feedback-report part (RFC 5965, 6591, 6650)
 *
 * Layer: parsers/. Pure, thread-safe, input untrusted.
 *
 * Reads the decoded body of a feedback-report part: "Name: value" fields in
 * any case, folded lines, repeated fields (Original-Rcpt-To, Reported-URI,
 * Reported-Domain, Authentication-Results), and the shapes real senders get
 * wrong: every field on one line, YAML ("---", quoted values), Feedback-Agent
 * for User-Agent, Received-Date for Arrival-Date, a Source-IP with an
 * "(rdns)" tail or IPv4-mapped IPv6. What cannot be read becomes a warning.
 *
 * Bounds: at most FBL_ARF_MAX_FIELDS fields are read and at most
 * FBL_ARF_MAX_VALUES values kept per repeated field; the rest is counted in a
 * warning.
 */
#ifndef FBL_ARF_H
#define FBL_ARF_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "parsers/report.h"

#define FBL_ARF_MAX_FIELDS 1000
#define FBL_ARF_MAX_VALUES 100

/*
 * fbl_arf_parse_fields - parse a feedback-report body
 *
 * @text: (transfer none) UTF-8, @len bytes
 * @warnings: (transfer none) char * list that receives what could not be read
 * Returns: (transfer full) the fields; empty when none were found.
 */
fbl_arf *fbl_arf_parse_fields(const char *text, size_t len, GPtrArray *warnings);

/*
 * fbl_arf_feedback_type - map a Feedback-Type value to the contract's enum
 *
 * Known names in any case and with stray white space; the aliases real
 * senders use ("spam" and "complaint" are abuse, "phishing" is fraud, …).
 * Returns: false (and @type = other) for an unknown value.
 */
bool fbl_arf_feedback_type(const char *raw, fbl_feedback_type *type);

#endif /* FBL_ARF_H */
