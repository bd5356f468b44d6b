/*
 * source.h - which IP handed the spam to the first trusted hop
 *
 * Layer: parsers/. Pure, thread-safe.
 *
 * Order of evidence, first that gives an address wins:
 *   1. the ARF Source-IP field ("arf"): the reporter's own statement;
 *   2. the Received chain ("received"), walked from the top (newest) hop down.
 *      A hop is only as good as the host that wrote it. The top hop was
 *      written by the receiving side (the reporter's provider, or our MTA).
 *      While the host that handed the mail to a trusted hop is itself the
 *      receiving side's, the hop below it was written by a trusted host too,
 *      and the walk goes on; the first hop whose sender is not the receiving
 *      side's is the border, and its sending IP is the source. Nothing below
 *      the border is read: the sender wrote it, and may have forged it.
 *   3. only when the chain gives no external hop at all: the client address
 *      the receiving provider recorded in a header of its own ("provider"),
 *      then X-Originating-IP, the webmail client's address ("x-originating-ip").
 *
 * The receiving side is a set of organisations (provider.h): the one that
 * runs the top hop's receiving host, the reporter's (a complaint is about mail
 * its complainant received), the organisations of trusted_hosts, and
 * every organisation that names a host which wrote a hop on the way down.
 * A hop's sender is the receiving side's when, by what the provider controls:
 *   - its IP is internal (ip.h: private, loopback, link-local, …), in the
 *     trusted networks, or in the published networks of a known provider of
 *     the receiving side;
 *   - its name as the receiving host verified it (the rDNS in "from helo
 *     (rdns [ip])") is in the receiving side, in trusted_hosts, or under an
 *     inbound mail-security service (Proofpoint, Mimecast, …: a customer's MX).
 * One exception: a multi-tenant provider's inbound filter receiving from its
 * own outbound relays (Microsoft 365: *.outbound.protection.outlook.com to
 * *.mail.protection.outlook.com) is one customer sending to another: a border.
 * And, weaker, when the receiving host recorded no verified name (Exchange
 * writes "from HELO (ip)"): its HELO is in the receiving side and the hop
 * below it was written by that very host or another of the receiving side.
 * XXX A sender that names itself after the receiving side in HELO, from a host
 * whose receiver records no verified name, and forges the hop below can move
 * the source below itself; a verified name or a network is never fooled so.
 *
 * @via_reporter (a raw feedback loop, a trap network, a redirect): the mail
 * may have reached us whole through the reporter's relay. The top hop is our
 * MTA's, and the IP it saw is the source unless a trusted relay says
 * otherwise: a relay the operator trusts (trusted_networks, trusted_hosts) is
 * the receiving side like any of ours; a known mailbox provider (by its
 * networks or verified name) is followed once, when the hop below it was
 * written by the very host it names as its sender. Any other sender's hop
 * below, however well it agrees, is the sender's word and is not read.
 *
 * Private, loopback and link-local addresses are never a derived source.
 */
#ifndef FBL_SOURCE_H
#define FBL_SOURCE_H

#include <stdbool.h>

#include "parsers/ip.h"
#include "parsers/report.h"

/*
 * What the operator trusts: hops whose sending IP is in @networks are
 * hand-overs on the receiving side; @hosts are domains whose hosts (by
 * verified name, or by HELO and receiving host both) are the receiving side's
 * ("outlook.com" matches "x.prod.outlook.com").
 */
typedef struct fbl_trust {
    const fbl_netset *networks;
    const char *const *hosts; /* NULL-terminated domain suffixes, may be NULL */
} fbl_trust;

/* fbl_trust_host_matches - @name is one of @hosts or below one */
bool fbl_trust_host_matches(const char *const *hosts, const char *name);

/* What besides the chain speaks of the source; every member nullable. */
typedef struct fbl_source_hints {
    const char *x_originating_ip; /* the reported message's X-Originating-IP value */
    /* the client address the receiving provider recorded in a header of its own
     * (X-MS-Exchange-Organization-OriginalClientIPAddress, X-Sender-IP,
     * X-SourceIP, Authentication-Results "sender IP is …") */
    const char *provider_client_ip;
    const char *reporter_domain; /* the reporter's mail domain: it seeds the receiving side */
} fbl_source_hints;

/*
 * fbl_source_pick - set report->source_ip and source_ip_from
 *
 * Returns: the index of the border hop in message.received (the first hop the
 *   receiving side did not hand to itself), or -1 when the chain has none or
 *   was not read (an ARF Source-IP). The hops above it are the receiving
 *   side's own hand-overs.
 * When the chain has no external hop (a pasted copy that keeps only the
 * provider's internal hops), the provider's own record of the client comes
 * next ("provider"), then X-Originating-IP.
 * @via_reporter: the message reached us whole through the reporter's relay
 */
int fbl_source_pick(fbl_report *report, const fbl_trust *trust, const fbl_source_hints *hints,
                    bool via_reporter);

#endif /* FBL_SOURCE_H */
