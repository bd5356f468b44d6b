/* blocklist.c - the listing policy (see blocklist.h) */
#define G_LOG_DOMAIN "fbl"
#include "fbl/blocklist.h"

#include <string.h>

#include "parsers/ip.h"
#include "parsers/provider.h"

/* The allowlist file is read whole; a larger one is refused. */
#define ALLOWLIST_MAX_BYTES ((gsize) 16 << 20)

GQuark fbl_blocklist_error_quark(void)
{
    return g_quark_from_static_string("fbl-blocklist-error");
}

struct fbl_blocklist_policy {
    fbl_blocklist_rules rules;
    fbl_netset *trusted; /* NULL: none */
    fbl_netset *allow;   /* NULL: none */
    GStrv trusted_text, allow_nets;
    GPtrArray *allow_domains; /* char *, lower case */
};

void fbl_blocklist_rules_from_config(const fbl_config *c, fbl_blocklist_rules *out)
{
    out->window_days = c->blocklist_window_days;
    out->min_reporters = c->blocklist_min_reporters;
    out->verified_weight = c->blocklist_verified_weight;
    out->not_spam_weight = c->blocklist_not_spam_weight;
    out->delist_after_s = (gint64) c->blocklist_delist_after_days * 86400;
    out->list_provider_relays = c->blocklist_list_provider_relays;
}

/* A domain name as an allowlist names it: letters, digits, '-', '_' and dots; "*." or "." ignored.
 */
static char *domain_of(const char *entry)
{
    const char *d = entry;
    if (g_str_has_prefix(d, "*."))
        d += 2;
    else if (*d == '.')
        d++;
    if (*d == '\0' || strchr(d, '.') == NULL)
        return NULL;
    for (const char *p = d; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            return NULL;
    }
    return g_ascii_strdown(d, -1);
}

/* An address or a network: it has a ':' or a '/', or is all digits and dots. */
static bool looks_like_network(const char *entry)
{
    if (strchr(entry, ':') != NULL || strchr(entry, '/') != NULL)
        return true;
    for (const char *p = entry; *p != '\0'; p++) {
        if (!g_ascii_isdigit(*p) && *p != '.')
            return false;
    }
    return true;
}

/* *@out = the netset of @list (not empty); false with FBL_BLOCKLIST_ERROR_ALLOWLIST. */
static bool make_netset(const char *const *list, const char *what, fbl_netset **out, GError **error)
{
    g_autoptr(GError) local = NULL;
    *out = fbl_netset_new(list, &local);
    if (*out != NULL)
        return true;
    g_set_error(error, FBL_BLOCKLIST_ERROR, FBL_BLOCKLIST_ERROR_ALLOWLIST, "%s%s", what,
                local != NULL ? local->message : "bad network");
    return false;
}

fbl_blocklist_policy *fbl_blocklist_policy_new(const fbl_blocklist_rules *rules,
                                               const char *const *trusted, const char *const *allow,
                                               GError **error)
{
    g_autoptr(fbl_blocklist_policy) p = g_new0(fbl_blocklist_policy, 1);
    p->rules = *rules;
    p->allow_domains = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) nets = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; allow != NULL && allow[i] != NULL; i++) {
        if (looks_like_network(allow[i])) {
            g_ptr_array_add(nets, g_strdup(allow[i]));
            continue;
        }
        char *d = domain_of(allow[i]);
        if (d == NULL) {
            g_set_error(error, FBL_BLOCKLIST_ERROR, FBL_BLOCKLIST_ERROR_ALLOWLIST,
                        "'%s' is neither a network, an address nor a domain", allow[i]);
            return NULL;
        }
        g_ptr_array_add(p->allow_domains, d);
    }
    g_ptr_array_add(nets, NULL);
    p->allow_nets = (GStrv) g_ptr_array_steal(nets, NULL);
    p->trusted_text = g_strdupv((GStrv) trusted);
    if (p->allow_nets[0] != NULL &&
        !make_netset((const char *const *) p->allow_nets, "", &p->allow, error))
        return NULL;
    if (trusted != NULL && trusted[0] != NULL &&
        !make_netset(trusted, "trusted_networks: ", &p->trusted, error))
        return NULL;
    return g_steal_pointer(&p);
}

void fbl_blocklist_policy_free(fbl_blocklist_policy *p)
{
    if (p == NULL)
        return;
    fbl_netset_free(p->trusted);
    fbl_netset_free(p->allow);
    g_strfreev(p->trusted_text);
    g_strfreev(p->allow_nets);
    if (p->allow_domains != NULL)
        g_ptr_array_unref(p->allow_domains);
    g_free(p);
}

/* The entries of allowlist file @path: one a line, '#' comments and blanks left out. */
static GStrv read_allowlist(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(path, &text, &len, &local)) {
        g_set_error(error, FBL_BLOCKLIST_ERROR, FBL_BLOCKLIST_ERROR_ALLOWLIST, "%s",
                    local->message);
        return NULL;
    }
    if (len > ALLOWLIST_MAX_BYTES) {
        g_set_error(error, FBL_BLOCKLIST_ERROR, FBL_BLOCKLIST_ERROR_ALLOWLIST,
                    "%s: larger than %" G_GSIZE_FORMAT " bytes", path, ALLOWLIST_MAX_BYTES);
        return NULL;
    }
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    GPtrArray *out = g_ptr_array_new();
    for (size_t i = 0; lines[i] != NULL; i++) {
        char *hash = strchr(lines[i], '#');
        if (hash != NULL)
            *hash = '\0';
        const char *entry = g_strstrip(lines[i]);
        if (*entry != '\0')
            g_ptr_array_add(out, g_strdup(entry));
    }
    g_ptr_array_add(out, NULL);
    return (GStrv) g_ptr_array_free(out, FALSE);
}

fbl_blocklist_policy *fbl_blocklist_policy_from_config(const fbl_config *c, unsigned min_reporters,
                                                       GError **error)
{
    fbl_blocklist_rules rules;
    fbl_blocklist_rules_from_config(c, &rules);
    if (min_reporters > 0)
        rules.min_reporters = min_reporters;
    g_auto(GStrv) allow = NULL;
    if (c->blocklist_allowlist_file != NULL) {
        allow = read_allowlist(c->blocklist_allowlist_file, error);
        if (allow == NULL)
            return NULL;
    }
    fbl_blocklist_policy *p = fbl_blocklist_policy_new(
        &rules, (const char *const *) c->trusted_networks, (const char *const *) allow, error);
    if (p == NULL && c->blocklist_allowlist_file != NULL)
        g_prefix_error(error, "%s: ", c->blocklist_allowlist_file);
    return p;
}

const fbl_blocklist_rules *fbl_blocklist_policy_get_rules(const fbl_blocklist_policy *p)
{
    return &p->rules;
}

guint fbl_blocklist_policy_min_complainers(const fbl_blocklist_policy *p)
{
    unsigned w = MAX(p->rules.verified_weight, 1u);
    return MAX((p->rules.min_reporters + w - 1) / w, 1u);
}

const char *fbl_blocklist_decision_to_string(fbl_blocklist_decision d)
{
    static const char *const names[] = {
        [FBL_BLOCKLIST_LISTED] = "listed",
        [FBL_BLOCKLIST_TRUSTED] = "trusted",
        [FBL_BLOCKLIST_ALLOWLISTED] = "allowlisted",
        [FBL_BLOCKLIST_PROVIDER] = "provider",
        [FBL_BLOCKLIST_DELISTED] = "delisted",
        [FBL_BLOCKLIST_BELOW_THRESHOLD] = "below_threshold",
    };
    g_assert((size_t) d < G_N_ELEMENTS(names));
    return names[d];
}

/* The first of @nets (text, the same order as @set was made of) that holds @ip. */
static const char *network_holding(const char *const *nets, const char *ip)
{
    for (size_t i = 0; nets != NULL && nets[i] != NULL; i++) {
        const char *one[] = {nets[i], NULL};
        g_autoptr(fbl_netset) s = fbl_netset_new(one, NULL);
        if (s != NULL && fbl_netset_contains(s, ip))
            return nets[i];
    }
    return "";
}

/* @domain is @parent or under it. */
static bool domain_under(const char *domain, const char *parent)
{
    size_t d = strlen(domain), p = strlen(parent);
    if (d == p)
        return strcmp(domain, parent) == 0;
    return d > p && domain[d - p - 1] == '.' && strcmp(domain + d - p, parent) == 0;
}

/* Rules 1 to 3 for an IP; true when one of them decided. */
static bool exempt_ip(const fbl_blocklist_policy *p, const char *ip, fbl_blocklist_verdict *out)
{
    if (p->trusted != NULL && fbl_netset_contains(p->trusted, ip)) {
        out->decision = FBL_BLOCKLIST_TRUSTED;
        g_strlcpy(out->matched, network_holding((const char *const *) p->trusted_text, ip),
                  sizeof out->matched);
        return true;
    }
    if (p->allow != NULL && fbl_netset_contains(p->allow, ip)) {
        out->decision = FBL_BLOCKLIST_ALLOWLISTED;
        g_strlcpy(out->matched, network_holding((const char *const *) p->allow_nets, ip),
                  sizeof out->matched);
        return true;
    }
    const char *org = p->rules.list_provider_relays ? NULL : fbl_org_of_ip(ip);
    if (org != NULL) {
        out->decision = FBL_BLOCKLIST_PROVIDER;
        g_strlcpy(out->matched, org, sizeof out->matched);
        return true;
    }
    return false;
}

/* Rules 2 and 3 for a domain; true when one of them decided. */
static bool exempt_domain(const fbl_blocklist_policy *p, const char *domain,
                          fbl_blocklist_verdict *out)
{
    for (guint i = 0; i < p->allow_domains->len; i++) {
        const char *a = g_ptr_array_index(p->allow_domains, i);
        if (domain_under(domain, a)) {
            out->decision = FBL_BLOCKLIST_ALLOWLISTED;
            g_strlcpy(out->matched, a, sizeof out->matched);
            return true;
        }
    }
    if (p->rules.list_provider_relays)
        return false;
    g_autofree char *org = fbl_org_of_host(domain);
    if (org != NULL && fbl_org_is_known_provider(org)) {
        out->decision = FBL_BLOCKLIST_PROVIDER;
        g_strlcpy(out->matched, org, sizeof out->matched);
        return true;
    }
    return false;
}

void fbl_blocklist_decide(const fbl_blocklist_policy *p, fbl_blocklist_kind kind,
                          const fbl_blocklist_counts *c, gint64 now, fbl_blocklist_verdict *out)
{
    memset(out, 0, sizeof *out);
    gint64 verified = (gint64) MIN(c->verified, c->complainers);
    out->score = (gint64) c->complainers + ((gint64) p->rules.verified_weight - 1) * verified -
                 (gint64) p->rules.not_spam_weight * (gint64) c->not_spam;
    out->delist_at = c->last_complaint > 0 ? c->last_complaint + p->rules.delist_after_s : 0;
    bool exempt =
        kind == FBL_BLOCKLIST_IP ? exempt_ip(p, c->entry, out) : exempt_domain(p, c->entry, out);
    if (exempt)
        return;
    if (c->last_complaint > 0 && now >= out->delist_at)
        out->decision = FBL_BLOCKLIST_DELISTED;
    else if (out->score < (gint64) p->rules.min_reporters)
        out->decision = FBL_BLOCKLIST_BELOW_THRESHOLD;
    else
        out->decision = FBL_BLOCKLIST_LISTED;
}

bool fbl_blocklist_listed(const fbl_blocklist_policy *p, fbl_blocklist_query *query,
                          fbl_blocklist_kind kind, gint64 since, gint64 now, GPtrArray **out,
                          GError **error)
{
    *out = NULL;
    if (since <= 0)
        since = now - (gint64) p->rules.window_days * 86400;
    g_autoptr(GPtrArray) counts = NULL;
    /* until now + 1: a complaint delivered in this very second counts. */
    if (!fbl_blocklist_query_counts(query, kind, NULL, since, now + 1,
                                    fbl_blocklist_policy_min_complainers(p), &counts, error))
        return false;
    GPtrArray *listed = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < counts->len; i++) {
        const fbl_blocklist_counts *c = g_ptr_array_index(counts, i);
        fbl_blocklist_verdict v;
        fbl_blocklist_decide(p, kind, c, now, &v);
        if (v.decision == FBL_BLOCKLIST_LISTED)
            g_ptr_array_add(listed, g_strdup(c->entry));
    }
    *out = listed;
    return true;
}
