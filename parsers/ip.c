/* ip.c - canonical IP text and network sets, on GLib's GInetAddress */
#include "parsers/ip.h"

#include <string.h>

#include <gio/gio.h>

struct fbl_netset {
    GPtrArray *masks; /* GInetAddressMask * */
};

/* A GInetAddress for @ip with IPv4-mapped IPv6 folded to IPv4. */
static GInetAddress *address_from_string(const char *ip)
{
    GInetAddress *a = g_inet_address_new_from_string(ip);
    if (a == NULL || g_inet_address_get_family(a) != G_SOCKET_FAMILY_IPV6)
        return a;
    const guint8 *b = g_inet_address_to_bytes(a);
    static const guint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(b, mapped, sizeof mapped) != 0)
        return a;
    GInetAddress *v4 = g_inet_address_new_from_bytes(b + 12, G_SOCKET_FAMILY_IPV4);
    g_object_unref(a);
    return v4;
}

char *fbl_ip_canonical(const char *text)
{
    if (text == NULL)
        return NULL;
    while (g_ascii_isspace(*text) || *text == '[')
        text++;
    if (g_ascii_strncasecmp(text, "IPv6:", 5) == 0)
        text += 5;
    size_t n = strcspn(text, " \t\r\n]()");
    if (n == 0 || n > 64)
        return NULL;
    char buf[65];
    memcpy(buf, text, n);
    buf[n] = '\0';
    if (n > 1 && buf[n - 1] == '.') /* "192.0.2.1." from some MTAs */
        buf[n - 1] = '\0';
    /* A zone ("fe80::1%eth0") is local by definition; drop it before parsing. */
    char *zone = strchr(buf, '%');
    if (zone != NULL)
        *zone = '\0';
    /* Refuse shorthand GLib (inet_pton) would not take anyway, like "10.1". */
    GInetAddress *a = address_from_string(buf);
    if (a == NULL)
        return NULL;
    char *out = g_inet_address_to_string(a);
    g_object_unref(a);
    return out;
}

static bool in_cidr(GInetAddress *a, const char *cidr)
{
    GInetAddressMask *m = g_inet_address_mask_new_from_string(cidr, NULL);
    g_assert(m != NULL);
    bool hit = g_inet_address_mask_matches(m, a);
    g_object_unref(m);
    return hit;
}

bool fbl_ip_is_internal(const char *ip)
{
    static const char *const extra[] = {"100.64.0.0/10", "0.0.0.0/8", "fc00::/7",
                                        "255.255.255.255/32"};
    GInetAddress *a = address_from_string(ip);
    if (a == NULL)
        return true; /* not an address: certainly not a source */
    bool internal = g_inet_address_get_is_any(a) || g_inet_address_get_is_loopback(a) ||
                    g_inet_address_get_is_link_local(a) || g_inet_address_get_is_site_local(a) ||
                    g_inet_address_get_is_multicast(a);
    for (size_t i = 0; !internal && i < G_N_ELEMENTS(extra); i++)
        internal = in_cidr(a, extra[i]);
    g_object_unref(a);
    return internal;
}

fbl_netset *fbl_netset_new(const char *const *networks, GError **error)
{
    fbl_netset *set = g_new0(fbl_netset, 1);
    set->masks = g_ptr_array_new_with_free_func(g_object_unref);
    for (size_t i = 0; networks != NULL && networks[i] != NULL; i++) {
        g_autoptr(GError) local = NULL;
        GInetAddressMask *m = g_inet_address_mask_new_from_string(networks[i], &local);
        if (m == NULL) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "'%s' is not a network: %s",
                        networks[i], local->message);
            fbl_netset_free(set);
            return NULL;
        }
        g_ptr_array_add(set->masks, m);
    }
    return set;
}

void fbl_netset_free(fbl_netset *set)
{
    if (set == NULL)
        return;
    g_ptr_array_unref(set->masks);
    g_free(set);
}

bool fbl_netset_contains(const fbl_netset *set, const char *ip)
{
    if (set == NULL || set->masks->len == 0)
        return false;
    GInetAddress *a = address_from_string(ip);
    if (a == NULL)
        return false;
    bool hit = false;
    for (guint i = 0; !hit && i < set->masks->len; i++) {
        GInetAddressMask *m = g_ptr_array_index(set->masks, i);
        hit = g_inet_address_get_family(a) == g_inet_address_mask_get_family(m) &&
              g_inet_address_mask_matches(m, a);
    }
    g_object_unref(a);
    return hit;
}
