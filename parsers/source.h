/*
 * source.h - which IP handed the spam to the first trusted hop
 *
 * Layer: parsers/. Pure, thread-safe.
 *
 * Order of evidence, first that gives an address wins:
 *   1. the ARF Source-IP field ("arf"): the reporter's own statement;
 *   2. the Received chain, newest hop first: the sending IP of the first hop
 *      that is not internal (ip.h: private, loopback, link-local, …) and not
 *      in the trusted networks ("received"). A hop whose IP is trusted or
 *      internal is one of the hand-overs inside the receiving side;
 *   3. X-Originating-IP, the webmail client's address ("x-originating-ip"),
 *      only when there is no Received evidence at all: it names the sender's
 *      client, which is weaker than the relay that handed the mail over.
 * Private, loopback and link-local addresses are never a derived source.
 */
#ifndef FBL_SOURCE_H
#define FBL_SOURCE_H

#include <stdbool.h>

#include "parsers/ip.h"
#include "parsers/report.h"

/*
 * The trusted boundary: hops inside it are hand-overs on the receiving side.
 * A hop is inside when its sending IP is in @networks, or when both its
 * sender's name (the rDNS the receiver wrote, else the HELO) and its
 * receiving host end in one of @hosts ("outlook.com" matches
 * "x.prod.outlook.com"): big providers pass mail between their own public
 * IPv6 addresses under names like these. Names are only as good as the
 * receiving hosts that wrote them: list providers whose hosts you trust.
 */
typedef struct fbl_trust {
    const fbl_netset *networks;
    const char *const *hosts; /* NULL-terminated domain suffixes, may be NULL */
} fbl_trust;

/* fbl_trust_host_matches - @name is one of @hosts or below one */
bool fbl_trust_host_matches(const char *const *hosts, const char *name);

/*
 * fbl_source_pick - set report->source_ip and source_ip_from
 *
 * @x_originating_ip: (nullable) the reported message's X-Originating-IP value
 * @via_reporter: the message reached us whole through the reporter's relays
 *   (a raw feedback loop, a trap network, a redirect): the first external
 *   hop is then the reporter handing it on, not the source, and is trusted
 *   when the chain agrees - when the hop below it was written by the host
 *   that hop names as its sender. Otherwise it stays the source.
 */
void fbl_source_pick(fbl_report *report, const fbl_trust *trust,
                     const char *x_originating_ip, bool via_reporter);

#endif /* FBL_SOURCE_H */
