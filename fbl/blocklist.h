/*
 * blocklist.h - the listing policy: which IPs and domains the blocklists
 * publish, and why (doc/fbl.conf.5, [blocklist])
 *
 * Layer: fbl/. fbl_blocklist_decide() is the one place that decides; it is
 * pure (no I/O, no clock: the caller gives "now"), so `fbl export`, the
 * sink's re-export (blocklist_loop.h), `fbl blocklist explain` and the table
 * tests (tests/unit/test_blocklist.c) decide alike. The counts it weighs come
 * from PostgreSQL (sink/blocklist_query.h, schema/010_blocklist.sql).
 *
 * The rule, in this order (the first that applies decides):
 *   1. trusted: the IP is in [parse] trusted_networks (our own relays);
 *   2. allowlisted: the IP is in a network of allowlist_file, or the domain
 *      is one of its domains or under one;
 *   3. provider: unless list_provider_relays, the IP is in a big mailbox
 *      provider's published networks, or the domain belongs to such a
 *      provider (parsers/provider.h holds both: the providers' SPF networks
 *      and mail domains);
 *   4. delisted: the last complaint is delist_after or more before now;
 *   5. below threshold: score < min_reporters, where
 *        score = complainers + (verified_weight - 1) * verified
 *                - not_spam_weight * not_spam
 *      (every distinct complainer counts 1, one our MTA verified counts
 *      verified_weight, every distinct reporter of a not-spam report about
 *      the same entry takes not_spam_weight away);
 *   6. otherwise listed, until last complaint + delist_after.
 *
 * Ownership and threads: a policy is immutable once made and may be shared.
 * Bounds: the allowlist file is read whole, at most 16 MiB.
 */
#ifndef FBL_BLOCKLIST_H
#define FBL_BLOCKLIST_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"
#include "sink/blocklist_query.h"

#define FBL_BLOCKLIST_ERROR (fbl_blocklist_error_quark())
GQuark fbl_blocklist_error_quark(void);

typedef enum {
    FBL_BLOCKLIST_ERROR_ALLOWLIST = 1, /* permanent: the allowlist file is unreadable or bad */
    FBL_BLOCKLIST_ERROR_WRITE,         /* permanent: an export file could not be written */
} fbl_blocklist_error;                 /* append new codes at the end only */

/* The knobs of the rule (the [blocklist] keys of the same names). */
typedef struct fbl_blocklist_rules {
    unsigned window_days;
    unsigned min_reporters;
    unsigned verified_weight;
    unsigned not_spam_weight;
    gint64 delist_after_s;
    bool list_provider_relays;
} fbl_blocklist_rules;

/* fbl_blocklist_rules_from_config - @config's [blocklist] rules */
void fbl_blocklist_rules_from_config(const fbl_config *config, fbl_blocklist_rules *out);

typedef struct fbl_blocklist_policy fbl_blocklist_policy;

/*
 * fbl_blocklist_policy_new - a policy of @rules (copied), our @trusted
 * networks and the @allow entries (networks, addresses or domains)
 *
 * Returns: (transfer full) or NULL with FBL_BLOCKLIST_ERROR_ALLOWLIST naming
 *   the entry that is neither a network nor a domain.
 */
fbl_blocklist_policy *fbl_blocklist_policy_new(const fbl_blocklist_rules *rules,
                                               const char *const *trusted, const char *const *allow,
                                               GError **error);

/*
 * fbl_blocklist_policy_from_config - the policy of @config: its rules, [parse]
 * trusted_networks and the entries of allowlist_file (one a line; blank
 * lines and '#' comments skipped); @min_reporters, when not 0, replaces the
 * configured one (--min-reporters)
 *
 * Returns: (transfer full) or NULL with FBL_BLOCKLIST_ERROR_ALLOWLIST naming
 *   the file and the line.
 */
fbl_blocklist_policy *fbl_blocklist_policy_from_config(const fbl_config *config,
                                                       unsigned min_reporters, GError **error);
void fbl_blocklist_policy_free(fbl_blocklist_policy *policy);

/* fbl_blocklist_policy_get_rules - (transfer none) the rules in effect */
const fbl_blocklist_rules *fbl_blocklist_policy_get_rules(const fbl_blocklist_policy *policy);

/*
 * fbl_blocklist_policy_min_complainers - the fewest complainers an entry
 * can be listed with (every one verified): the query's lower bound
 */
guint fbl_blocklist_policy_min_complainers(const fbl_blocklist_policy *policy);

/* What the rule decided, in the rule's order (see above). Names never change. */
typedef enum {
    FBL_BLOCKLIST_LISTED = 0,
    FBL_BLOCKLIST_TRUSTED,
    FBL_BLOCKLIST_ALLOWLISTED,
    FBL_BLOCKLIST_PROVIDER,
    FBL_BLOCKLIST_DELISTED,
    FBL_BLOCKLIST_BELOW_THRESHOLD,
} fbl_blocklist_decision;

/* fbl_blocklist_decision_to_string - "listed", "trusted", "allowlisted", ... */
const char *fbl_blocklist_decision_to_string(fbl_blocklist_decision decision);

typedef struct fbl_blocklist_verdict {
    fbl_blocklist_decision decision;
    gint64 score;     /* the weighted count (see above) */
    gint64 delist_at; /* Unix seconds: last complaint + delist_after; 0 without complaint */
    char matched[96]; /* trusted, allowlisted, provider: the network, domain or provider */
} fbl_blocklist_verdict;

/*
 * fbl_blocklist_decide - the rule applied to @counts of an entry of @kind at
 * @now (Unix seconds)
 *
 * @counts->entry: a canonical IP for FBL_BLOCKLIST_IP, a lower-case domain
 * @out: (out) the decision, the score, the delisting time and what matched
 */
void fbl_blocklist_decide(const fbl_blocklist_policy *policy, fbl_blocklist_kind kind,
                          const fbl_blocklist_counts *counts, gint64 now,
                          fbl_blocklist_verdict *out);

/*
 * fbl_blocklist_listed - the listed entries of @kind at @now: the counts of
 * the window (rules' window_days before @now, or @since when not 0) decided
 * one by one
 *
 * @out: (out) (transfer full) the entries (char *), sorted, freed with the array
 * Returns: false with FBL_PG_ERROR.
 */
bool fbl_blocklist_listed(const fbl_blocklist_policy *policy, fbl_blocklist_query *query,
                          fbl_blocklist_kind kind, gint64 since, gint64 now, GPtrArray **out,
                          GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_blocklist_policy, fbl_blocklist_policy_free)

#endif /* FBL_BLOCKLIST_H */
