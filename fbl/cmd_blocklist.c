/*
 * cmd_blocklist.c - `fbl export ips|domains` (the blocklists as files) and
 * `fbl blocklist explain ENTRY` (the reports and the arithmetic behind one
 * entry's listing)
 *
 * Both read only fbl.blocklist_counts() and fbl.blocklist_reports()
 * (schema/010_blocklist.sql), so a role with fbl_analyst's rights is enough,
 * and decide with fbl_blocklist_decide() (fbl/blocklist.h), as the sink's
 * re-export does.
 */
#define G_LOG_DOMAIN "fbl"
#include "fbl/commands.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <glib.h>

#include "fbl/blocklist.h"
#include "fbl/blocklist_export.h"
#include "fbl/config.h"
#include "fbl/timearg.h"
#include "parsers/ip.h"
#include "sink/blocklist_query.h"

static const char exit_text[] =
    "Exit status: 0 on success, 64 on a usage error, 69 when PostgreSQL cannot be\n"
    "reached, 73 when the output cannot be written, 77 when the role may not call\n"
    "the blocklist functions, 78 on a config error (an unreadable allowlist_file\n"
    "included) or when the schema lacks them (run fbl migrate).";

/* --since: an age or a time, before @now; 0 when not given. */
static bool parse_since(const char *cmd, const char *since, gint64 now, gint64 *out)
{
    *out = 0;
    if (since == NULL)
        return true;
    if (!fbl_time_arg_parse(since, now, out) || *out >= now) {
        (void) fprintf(stderr, "fbl %s: --since '%s' is not a time before now\n", cmd, since);
        return false;
    }
    return true;
}

static char *iso_utc(gint64 t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("-");
}

void fbl_cmd_export_text(const fbl_config *c, fbl_export_text *out)
{
    out->org = c->blocklist_org;
    out->url = c->blocklist_url;
    out->nameservers = (const char *const *) c->blocklist_nameservers;
    out->hostmaster = c->blocklist_hostmaster;
    out->ttl_s = c->blocklist_ttl_ms / 1000;
}

/* The policy of @c, or NULL after saying why on stderr. */
static fbl_blocklist_policy *policy_of(const char *cmd, const fbl_config *c, unsigned min_reporters)
{
    g_autoptr(GError) error = NULL;
    fbl_blocklist_policy *p = fbl_blocklist_policy_from_config(c, min_reporters, &error);
    if (p == NULL)
        (void) fprintf(stderr, "fbl %s: [blocklist] allowlist_file: %s\n", cmd, error->message);
    return p;
}

static fbl_blocklist_query *connect_to(const char *cmd, const fbl_config *c, int *status)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *app = g_strconcat("fbl ", cmd, NULL);
    fbl_blocklist_query *q = fbl_blocklist_query_new(c->pg_conninfo, app, &error);
    if (q == NULL)
        *status = fbl_cmd_pg_failed(cmd, error);
    return q;
}

/* ---- fbl export ------------------------------------------------------------------ */

static int export(const fbl_config *c, fbl_blocklist_kind kind, fbl_export_format format,
                  const char *output, gint64 since, unsigned min_reporters)
{
    g_autoptr(fbl_blocklist_policy) policy = policy_of("export", c, min_reporters);
    if (policy == NULL)
        return EX_CONFIG;
    int status = EX_OK;
    g_autoptr(fbl_blocklist_query) q = connect_to("export", c, &status);
    if (q == NULL)
        return status;
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    g_autoptr(GPtrArray) listed = NULL;
    g_autoptr(GError) error = NULL;
    if (!fbl_blocklist_listed(policy, q, kind, since, now, &listed, &error))
        return fbl_cmd_pg_failed("export", error);
    fbl_export_text text;
    fbl_cmd_export_text(c, &text);
    if (!fbl_export_write(output, kind, format, listed, &text, &error)) {
        (void) fprintf(stderr, "fbl export: %s\n", error->message);
        return EX_CANTCREAT;
    }
    (void) printf("fbl export: %u %s listed, written to %s\n", listed->len,
                  kind == FBL_BLOCKLIST_IP ? "IPs" : "domains", output);
    return EX_OK;
}

/* The answer text needs org and url: refuse to publish "Listed by  ... see /". */
static bool has_answer_text(const fbl_config *c, fbl_export_format format)
{
    if (format == FBL_EXPORT_RSPAMD || (c->blocklist_org != NULL && c->blocklist_url != NULL))
        return true;
    (void) fprintf(stderr,
                   "fbl export: [blocklist] org and url are required for the %s format "
                   "(its answers say \"Listed by ORG for spam complaints, see URL/...\")\n",
                   format == FBL_EXPORT_RBLDNSD ? "rbldnsd" : "postfix");
    return false;
}

int fbl_cmd_export(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "accounts") == 0)
            return fbl_cmd_export_accounts(argc, argv);
    }
    g_autofree char *config_file = NULL, *db = NULL, *since = NULL, *format = NULL;
    g_autofree char *output = NULL;
    gint min_reporters = 0;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
         "The configuration file (default: $FBL_CONFIG, else built-in defaults)", "FILE"},
        {"db", 0, 0, G_OPTION_ARG_STRING, &db,
         "PostgreSQL conninfo or URI (default: [postgres] conninfo)", "CONNINFO"},
        {"format", 0, 0, G_OPTION_ARG_STRING, &format, "rbldnsd, rspamd or postfix (required)",
         "FORMAT"},
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "The file to write (required)", "FILE"},
        {"since", 0, 0, G_OPTION_ARG_STRING, &since,
         "Complaints delivered at or after T (default: [blocklist] window, 7d)", "T"},
        {"min-reporters", 0, 0, G_OPTION_ARG_INT, &min_reporters,
         "Listed from this weighted count of reporters on (default: [blocklist] min_reporters)",
         "N"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("ips|domains (accounts: see fbl export accounts --help)");
    g_autofree char *summary =
        g_strconcat("Write the listed IPs (source IPs of the stored reports) or domains (From\n"
                    "domains and URL hosts) as a file for rbldnsd (IPs: an ip4trie dataset, and\n"
                    "FILE.ip6 for ip6trie; domains: dnset), rspamd (a radix or domain map for a\n"
                    "multimap rule) or Postfix (IPs: a cidr: table for check_client_access;\n"
                    "domains: a hash: source for check_sender_access, to postmap). The policy is\n"
                    "[blocklist]'s (man 5 fbl.conf); `fbl blocklist explain ENTRY` shows why an\n"
                    "entry is or is not listed. The file is replaced atomically.\n"
                    "T is epoch seconds, ISO-8601 or an age: 24h, 7d, 2w ago.\n",
                    exit_text, NULL);
    g_option_context_set_summary(ctx, summary);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, 1))
        return EX_USAGE;
    fbl_blocklist_kind kind = FBL_BLOCKLIST_IP;
    if (argc != 2 || (strcmp(argv[1], "ips") != 0 && strcmp(argv[1], "domains") != 0)) {
        (void) fprintf(stderr, "fbl export: say what to export: ips or domains (see --help)\n");
        return EX_USAGE;
    }
    if (strcmp(argv[1], "domains") == 0)
        kind = FBL_BLOCKLIST_DOMAIN;
    fbl_export_format fmt = FBL_EXPORT_RBLDNSD;
    if (!fbl_export_format_from_string(format, &fmt)) {
        (void) fprintf(stderr, "fbl export: --format must be rbldnsd, rspamd or postfix\n");
        return EX_USAGE;
    }
    if (output == NULL || *output == '\0') {
        (void) fprintf(stderr, "fbl export: --output FILE is required\n");
        return EX_USAGE;
    }
    if (min_reporters < 0 || min_reporters > 1000000) {
        (void) fprintf(stderr, "fbl export: --min-reporters must be 1 to 1000000\n");
        return EX_USAGE;
    }
    gint64 since_t = 0;
    if (!parse_since("export", since, g_get_real_time() / G_USEC_PER_SEC, &since_t))
        return EX_USAGE;
    int status = EX_OK;
    g_autoptr(fbl_config) config = fbl_cmd_load_config("export", config_file, db, &status);
    if (config == NULL)
        return status;
    if (!has_answer_text(config, fmt))
        return EX_CONFIG;
    return export(config, kind, fmt, output, since_t, (unsigned) min_reporters);
}

/* ---- fbl blocklist explain ---------------------------------------------------------- */

static void print_reports(const GPtrArray *reports)
{
    (void) printf("Reports (newest first; reporters pseudonymised as in fbl.reporters):\n");
    if (reports->len == 0)
        (void) printf("  none in the window\n");
    for (guint i = 0; i < reports->len; i++) {
        const fbl_blocklist_report *r = g_ptr_array_index(reports, i);
        g_autofree char *at = iso_utc(r->received_at);
        (void) printf("  %s  %-10s %-12s reporter %s/%s  %s\n", at, r->feedback_type,
                      r->found_in != NULL ? r->found_in : "",
                      r->reporter_domain ? r->reporter_domain : "-",
                      r->reporter_key ? r->reporter_key : "-",
                      r->verified > 0    ? "verified"
                      : r->verified == 0 ? "unverified"
                                         : "");
    }
}

static void print_arithmetic(const fbl_blocklist_rules *rules, const fbl_blocklist_counts *c,
                             const fbl_blocklist_verdict *v)
{
    guint64 verified = MIN(c->verified, c->complainers);
    (void) printf("Arithmetic:\n");
    (void) printf("  %" G_GUINT64_FORMAT " distinct complainers (abuse, fraud, virus)\n",
                  c->complainers);
    (void) printf("  %" G_GUINT64_FORMAT " unverified x 1 = %" G_GUINT64_FORMAT "\n",
                  c->complainers - verified, c->complainers - verified);
    (void) printf("  %" G_GUINT64_FORMAT " verified x verified_weight %u = %" G_GUINT64_FORMAT "\n",
                  verified, rules->verified_weight, verified * rules->verified_weight);
    guint64 minus = c->not_spam * rules->not_spam_weight;
    (void) printf("  %" G_GUINT64_FORMAT
                  " not-spam reporters x not_spam_weight %u = %s%" G_GUINT64_FORMAT "\n",
                  c->not_spam, rules->not_spam_weight, minus > 0 ? "-" : "", minus);
    (void) printf("  score %" G_GINT64_FORMAT " %s min_reporters %u\n", v->score,
                  v->score >= (gint64) rules->min_reporters ? ">=" : "<", rules->min_reporters);
    g_autofree char *last = c->last_complaint > 0 ? iso_utc(c->last_complaint) : g_strdup("none");
    g_autofree char *until = v->delist_at > 0 ? iso_utc(v->delist_at) : g_strdup("-");
    (void) printf("  last complaint %s; delisted at %s (delist_after %" G_GINT64_FORMAT "d)\n",
                  last, until, rules->delist_after_s / 86400);
}

static const char *decision_reason(const fbl_blocklist_verdict *v)
{
    switch (v->decision) {
    case FBL_BLOCKLIST_LISTED:
        return "listed: the score reaches min_reporters and the last complaint is recent";
    case FBL_BLOCKLIST_TRUSTED:
        return "never listed: in [parse] trusted_networks";
    case FBL_BLOCKLIST_ALLOWLISTED:
        return "never listed: in [blocklist] allowlist_file";
    case FBL_BLOCKLIST_PROVIDER:
        return "never listed: a big mailbox provider's relay or domain (list_provider_relays "
               "= false)";
    case FBL_BLOCKLIST_DELISTED:
        return "not listed: delisted, the last complaint is older than delist_after";
    case FBL_BLOCKLIST_BELOW_THRESHOLD:
        return "not listed: the score is below min_reporters";
    }
    return "";
}

static int explain(const fbl_config *c, fbl_blocklist_kind kind, const char *entry, gint64 since)
{
    g_autoptr(fbl_blocklist_policy) policy = policy_of("blocklist", c, 0);
    if (policy == NULL)
        return EX_CONFIG;
    int status = EX_OK;
    g_autoptr(fbl_blocklist_query) q = connect_to("blocklist", c, &status);
    if (q == NULL)
        return status;
    const fbl_blocklist_rules *rules = fbl_blocklist_policy_get_rules(policy);
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    if (since <= 0)
        since = now - (gint64) rules->window_days * 86400;
    g_autoptr(GPtrArray) counts = NULL, reports = NULL;
    g_autoptr(GError) error = NULL;
    if (!fbl_blocklist_query_counts(q, kind, entry, since, now + 1, 0, &counts, &error) ||
        !fbl_blocklist_query_reports(q, kind, entry, since, now + 1, &reports, &error))
        return fbl_cmd_pg_failed("blocklist", error);
    fbl_blocklist_counts none = {(char *) entry, 0, 0, 0, 0, 0};
    const fbl_blocklist_counts *cn = counts->len > 0 ? g_ptr_array_index(counts, 0) : &none;
    fbl_blocklist_verdict v;
    fbl_blocklist_decide(policy, kind, cn, now, &v);
    g_autofree char *from = iso_utc(since);
    g_autofree char *to = iso_utc(now);
    (void) printf("%s %s, complaints delivered %s .. %s\n",
                  kind == FBL_BLOCKLIST_IP ? "IP" : "domain", entry, from, to);
    print_reports(reports);
    print_arithmetic(rules, cn, &v);
    (void) printf("Decision: %s%s%s%s\n  %s\n", fbl_blocklist_decision_to_string(v.decision),
                  v.matched[0] != '\0' ? " (" : "", v.matched, v.matched[0] != '\0' ? ")" : "",
                  decision_reason(&v));
    return EX_OK;
}

/* @arg as the SQL functions name it: a canonical IP, or a domain in lower case; NULL if neither. */
static char *entry_of(const char *arg, fbl_blocklist_kind *kind)
{
    char *ip = fbl_ip_canonical(arg);
    if (ip != NULL) {
        *kind = FBL_BLOCKLIST_IP;
        return ip;
    }
    *kind = FBL_BLOCKLIST_DOMAIN;
    for (const char *p = arg; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            return NULL;
    }
    return *arg != '\0' ? g_ascii_strdown(arg, -1) : NULL;
}

int fbl_cmd_blocklist(int argc, char **argv)
{
    g_autofree char *config_file = NULL, *db = NULL, *since = NULL;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
         "The configuration file (default: $FBL_CONFIG, else built-in defaults)", "FILE"},
        {"db", 0, 0, G_OPTION_ARG_STRING, &db,
         "PostgreSQL conninfo or URI (default: [postgres] conninfo)", "CONNINFO"},
        {"since", 0, 0, G_OPTION_ARG_STRING, &since,
         "Complaints delivered at or after T (default: [blocklist] window, 7d)", "T"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("explain IP|DOMAIN");
    g_autofree char *summary = g_strconcat(
        "Explain the blocklists' decision about one IP or domain: the reports about it\n"
        "in the window (reporters pseudonymised, no address), the arithmetic (distinct\n"
        "complainers, verified weights, not-spam subtractions, last complaint and\n"
        "delisting time) and the decision, with what matched when [parse]\n"
        "trusted_networks, the allowlist or a big provider's relay keeps it off.\n",
        exit_text, NULL);
    g_option_context_set_summary(ctx, summary);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!fbl_cmd_parse_options(ctx, &argc, &argv, 2))
        return EX_USAGE;
    if (argc != 3 || strcmp(argv[1], "explain") != 0) {
        (void) fprintf(stderr, "fbl blocklist: usage: fbl blocklist explain IP|DOMAIN\n");
        return EX_USAGE;
    }
    fbl_blocklist_kind kind = FBL_BLOCKLIST_IP;
    g_autofree char *entry = entry_of(argv[2], &kind);
    if (entry == NULL) {
        (void) fprintf(stderr, "fbl blocklist: '%s' is neither an IP nor a domain\n", argv[2]);
        return EX_USAGE;
    }
    gint64 since_t = 0;
    if (!parse_since("blocklist", since, g_get_real_time() / G_USEC_PER_SEC, &since_t))
        return EX_USAGE;
    int status = EX_OK;
    g_autoptr(fbl_config) config = fbl_cmd_load_config("blocklist", config_file, db, &status);
    if (config == NULL)
        return status;
    return explain(config, kind, entry, since_t);
}
