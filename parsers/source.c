/* source.c - the spam source IP (order of evidence in source.h) */
#include "parsers/source.h"

#include <string.h>

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

static bool is_external(const fbl_hop *hop, const fbl_trust *trust)
{
    if (hop->ip == NULL || fbl_ip_is_internal(hop->ip) ||
        fbl_netset_contains(trust->networks, hop->ip))
        return false;
    const char *sender = hop->from != NULL ? hop->from : hop->helo;
    return !(fbl_trust_host_matches(trust->hosts, sender) &&
             fbl_trust_host_matches(trust->hosts, hop->by));
}

/* The next hop down was written by the host @hop says sent the mail. */
static bool chain_agrees(const fbl_hop *hop, const fbl_hop *below)
{
    if (below->by == NULL)
        return false;
    return (hop->from != NULL && g_ascii_strcasecmp(hop->from, below->by) == 0) ||
           (hop->helo != NULL && g_ascii_strcasecmp(hop->helo, below->by) == 0);
}

/* Index of the first external hop at or after @start, or -1. */
static int next_external(const GPtrArray *hops, guint start, const fbl_trust *trust)
{
    for (guint i = start; i < hops->len; i++) {
        if (is_external(g_ptr_array_index(hops, i), trust))
            return (int) i;
    }
    return -1;
}

void fbl_source_pick(fbl_report *r, const fbl_trust *trust, const char *x_originating_ip,
                     bool via_reporter)
{
    if (r->arf != NULL && r->arf->source_ip != NULL) {
        set_source(r, r->arf->source_ip, "arf");
        return;
    }
    const GPtrArray *hops = r->message.received;
    int first = next_external(hops, 0, trust);
    if (first >= 0 && via_reporter) {
        const fbl_hop *hop = g_ptr_array_index(hops, first);
        for (guint i = (guint) first + 1; i < hops->len; i++) {
            const fbl_hop *below = g_ptr_array_index(hops, i);
            if (below->by == NULL && below->ip == NULL)
                continue; /* "by x with local" lines say nothing about the chain */
            int next = next_external(hops, i, trust);
            if (chain_agrees(hop, below) && next >= 0)
                first = next;
            break;
        }
    }
    if (first >= 0) {
        set_source(r, ((const fbl_hop *) g_ptr_array_index(hops, first))->ip, "received");
        return;
    }
    g_autofree char *xoip = fbl_ip_canonical(x_originating_ip);
    if (xoip != NULL && !fbl_ip_is_internal(xoip))
        set_source(r, xoip, "x-originating-ip");
}
