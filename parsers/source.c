/* source.c - the spam source IP (order of evidence in source.h) */
#include "parsers/source.h"

static void set_source(fbl_report *r, const char *ip, const char *from)
{
    g_free(r->source_ip);
    g_free(r->source_ip_from);
    r->source_ip = g_strdup(ip);
    r->source_ip_from = g_strdup(from);
}

void fbl_source_pick(fbl_report *r, const fbl_netset *trusted, const char *x_originating_ip)
{
    if (r->arf != NULL && r->arf->source_ip != NULL) {
        set_source(r, r->arf->source_ip, "arf");
        return;
    }
    for (guint i = 0; i < r->message.received->len; i++) {
        const fbl_hop *hop = g_ptr_array_index(r->message.received, i);
        if (hop->ip == NULL || fbl_ip_is_internal(hop->ip) ||
            fbl_netset_contains(trusted, hop->ip))
            continue;
        set_source(r, hop->ip, "received");
        return;
    }
    g_autofree char *xoip = fbl_ip_canonical(x_originating_ip);
    if (xoip != NULL && !fbl_ip_is_internal(xoip))
        set_source(r, xoip, "x-originating-ip");
}
