/*
 * ip.h - IP addresses as fbl writes them, and sets of networks
 *
 * Layer: parsers/. Pure functions; an fbl_netset is immutable once built and
 * may be shared between threads.
 *
 * Canonical text is GLib's (inet_ntop) form, with IPv4-mapped IPv6
 * (::ffff:a.b.c.d) folded to IPv4, an "IPv6:" prefix, brackets and any
 * "(rdns)" tail or trailing dot removed.
 */
#ifndef FBL_IP_H
#define FBL_IP_H

#include <stdbool.h>

#include <glib.h>

/*
 * fbl_ip_canonical - the canonical text of the address at the start of @text
 *
 * Accepts "192.0.2.1", "[192.0.2.1]", "IPv6:2001:db8::1", "::ffff:192.0.2.1",
 * "192.0.2.1 (mail.example.com)", surrounding white space.
 * Returns: (transfer full) the address, or NULL when @text is not one.
 */
char *fbl_ip_canonical(const char *text);

/*
 * fbl_ip_is_internal - true for addresses that never name a spam source:
 * private (RFC 1918, fc00::/7), loopback, link-local, unspecified, shared
 * (100.64.0.0/10), multicast, 0.0.0.0/8 and broadcast. @ip must be canonical.
 */
bool fbl_ip_is_internal(const char *ip);

typedef struct fbl_netset fbl_netset;

/*
 * fbl_netset_new - parse "net/len" or bare addresses
 *
 * @networks: NULL-terminated, may be NULL (an empty set)
 * Returns: (transfer full) or NULL with G_IO_ERROR_INVALID_ARGUMENT naming the bad entry.
 */
fbl_netset *fbl_netset_new(const char *const *networks, GError **error);
void fbl_netset_free(fbl_netset *set);

/* fbl_netset_contains - whether canonical @ip lies in one of the networks */
bool fbl_netset_contains(const fbl_netset *set, const char *ip);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_netset, fbl_netset_free)

#endif /* FBL_IP_H */
