/* source.c - the spam source IP: the walk down the Received chain (source.h) */
#include "parsers/source.h"

#include <string.h>

#include "parsers/provider.h"

static void set_source(fbl_report *r, const char *ip, const char *from)
{
    g_free(r->source_ip);
    g_free(r->source_ip_from);
    r->source_ip = g_strdup(ip);
    r->source_ip_from = g_strdup(from);
}

bool fbl_trust_host_matches(const char *const *hosts, const char *name)
{
    if (hosts == NULL || name == NULL)
        return false;
    size_t n = strlen(name);
    for (size_t i = 0; hosts[i] != NULL; i++) {
        const char *h = hosts[i];
        size_t hl = strlen(h);
        if (hl == 0 || hl > n || g_ascii_strcasecmp(name + n - hl, h) != 0)
            continue;
        if (hl == n || name[n - hl - 1] == '.')
            return true;
    }
    return false;
}

/* One walk down one chain. */
typedef struct walk {
    const GPtrArray *hops; /* fbl_hop *, top first */
    const fbl_trust *trust;
    GPtrArray *side; /* char *: the receiving side's organisations */
    GPtrArray *ips;  /* const char *: senders already found to be the side's */
} walk;

static const fbl_hop *hop_at(const walk *w, guint i)
{
    return g_ptr_array_index(w->hops, i);
}

static bool on_side(const walk *w, const char *org)
{
    for (guint i = 0; org != NULL && i < w->side->len; i++) {
        if (strcmp(g_ptr_array_index(w->side, i), org) == 0)
            return true;
    }
    return false;
}

/* Add @org (transfer full, may be NULL) to the receiving side. */
static void join(walk *w, char *org)
{
    if (org == NULL || on_side(w, org))
        g_free(org);
    else
        g_ptr_array_add(w->side, org);
}

/* A verified name (or one the operator listed) of the receiving side. */
static bool name_on_side(const walk *w, const char *name)
{
    if (fbl_trust_host_matches(w->trust->hosts, name))
        return true;
    g_autofree char *org = fbl_org_of_host(name);
    return org != NULL && (on_side(w, org) || fbl_org_is_relay_service(org));
}

static bool seen_ours(const walk *w, const char *ip)
{
    for (guint i = 0; i < w->ips->len; i++) {
        if (strcmp(g_ptr_array_index(w->ips, i), ip) == 0)
            return true;
    }
    return false;
}

/* The sender of @h is the receiving side's by its address or its verified name. */
static bool sender_verified_ours(const walk *w, const fbl_hop *h)
{
    if (fbl_ip_is_internal(h->ip) || fbl_netset_contains(w->trust->networks, h->ip) ||
        seen_ours(w, h->ip))
        return true;
    const char *org = fbl_org_of_ip(h->ip);
    if (org != NULL && (on_side(w, org) || fbl_org_is_relay_service(org)))
        return true;
    return h->from != NULL && name_on_side(w, h->from);
}

static bool name_ends(const char *name, const char *suffix)
{
    size_t n = name != NULL ? strlen(name) : 0, m = strlen(suffix);
    return n > m && name[n - m - 1] == '.' && g_ascii_strcasecmp(name + n - m, suffix) == 0;
}

/*
 * One provider's customers send to each other through it: Microsoft 365's
 * inbound filter (*.mail.protection.outlook.com) receiving from its own
 * outbound (*.outbound.protection.outlook.com) is one tenant handing mail to
 * another, a border, although both hosts are Microsoft's.
 */
static bool tenant_border(const fbl_hop *h)
{
    const char *sender = h->from != NULL ? h->from : h->helo;
    return name_ends(h->by, "mail.protection.outlook.com") &&
           name_ends(sender, "outbound.protection.outlook.com");
}

/* The next hop below @i that names its receiving host, or NULL. */
static const fbl_hop *next_writer(const walk *w, guint i)
{
    for (guint j = i + 1; j < w->hops->len; j++) {
        const fbl_hop *h = hop_at(w, j);
        if (h->by != NULL)
            return h;
    }
    return NULL;
}

/*
 * No verified name was recorded: the sender's HELO is the receiving side's,
 * and the hop below was written by that host or by another of the side.
 */
static bool sender_named_ours(const walk *w, guint i)
{
    const fbl_hop *h = hop_at(w, i);
    if (h->from != NULL || h->helo == NULL)
        return false;
    if (fbl_trust_host_matches(w->trust->hosts, h->helo) &&
        fbl_trust_host_matches(w->trust->hosts, h->by))
        return true;
    g_autofree char *org = fbl_org_of_host(h->helo);
    if (org == NULL || !on_side(w, org))
        return false;
    const fbl_hop *below = next_writer(w, i);
    if (below == NULL)
        return false;
    if (g_ascii_strcasecmp(below->by, h->helo) == 0)
        return true;
    g_autofree char *below_org = fbl_org_of_host(below->by);
    return below_org != NULL && on_side(w, below_org);
}

/*
 * The reporter's relay at @i: a known mailbox provider (by its network or its
 * verified name: they do not forge hops), and the hop below was written by the
 * very host @i names as its sender. Returns its organisation (transfer full).
 */
static char *reporter_relay(const walk *w, guint i)
{
    const fbl_hop *h = hop_at(w, i);
    const fbl_hop *below = next_writer(w, i);
    if (below == NULL)
        return NULL;
    if (!(h->from != NULL && g_ascii_strcasecmp(h->from, below->by) == 0) &&
        !(h->helo != NULL && g_ascii_strcasecmp(h->helo, below->by) == 0))
        return NULL;
    const char *by_ip = fbl_org_of_ip(h->ip);
    if (by_ip != NULL)
        return g_strdup(by_ip);
    char *org = h->from != NULL ? fbl_org_of_host(h->from) : NULL;
    if (org != NULL && fbl_org_is_known_provider(org))
        return org;
    g_free(org);
    return NULL;
}

/* The border: index of the first hop whose sender is not the receiving side's, or -1. */
static int find_border(walk *w, bool via_reporter)
{
    bool relay_passed = !via_reporter;
    for (guint i = 0; i < w->hops->len; i++) {
        const fbl_hop *h = hop_at(w, i);
        /* Every hop reached was written by the receiving side: its host is ours. */
        join(w, fbl_org_of_host(h->by));
        if (h->ip == NULL)
            continue;
        if (!tenant_border(h) && (sender_verified_ours(w, h) || sender_named_ours(w, i))) {
            g_ptr_array_add(w->ips, h->ip); /* the same host again further down is ours too */
            continue;
        }
        char *relay = relay_passed ? NULL : reporter_relay(w, i);
        if (relay != NULL) {
            /* The reporter's provider handed it to us: go on inside its side. */
            relay_passed = true;
            join(w, relay);
            continue;
        }
        return (int) i;
    }
    return -1;
}

static void seed_side(walk *w, const char *reporter_domain)
{
    for (guint i = 0; i < w->hops->len; i++) {
        const fbl_hop *h = hop_at(w, i);
        if (h->by != NULL) {
            join(w, fbl_org_of_host(h->by));
            break;
        }
    }
    join(w, reporter_domain != NULL ? fbl_org_of_host(reporter_domain) : NULL);
    for (size_t i = 0; w->trust->hosts != NULL && w->trust->hosts[i] != NULL; i++)
        join(w, fbl_org_of_host(w->trust->hosts[i]));
}

int fbl_source_pick(fbl_report *r, const fbl_trust *trust, const fbl_source_hints *hints,
                    bool via_reporter)
{
    if (r->arf != NULL && r->arf->source_ip != NULL) {
        set_source(r, r->arf->source_ip, "arf");
        return -1;
    }
    walk w = {r->message.received, trust, g_ptr_array_new_with_free_func(g_free),
              g_ptr_array_new()};
    seed_side(&w, hints->reporter_domain);
    int border = find_border(&w, via_reporter);
    g_ptr_array_unref(w.side);
    g_ptr_array_unref(w.ips);
    if (border >= 0) {
        set_source(r, hop_at(&w, (guint) border)->ip, "received");
        return border;
    }
    g_autofree char *client = fbl_ip_canonical(hints->provider_client_ip);
    if (client != NULL && !fbl_ip_is_internal(client)) {
        set_source(r, client, "provider");
        return -1;
    }
    g_autofree char *xoip = fbl_ip_canonical(hints->x_originating_ip);
    if (xoip != NULL && !fbl_ip_is_internal(xoip))
        set_source(r, xoip, "x-originating-ip");
    return -1;
}
