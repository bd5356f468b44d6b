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

#include "parsers/ip.h"
#include "parsers/report.h"

/*
 * fbl_source_pick - set report->source_ip and source_ip_from
 *
 * @x_originating_ip: (nullable) the reported message's X-Originating-IP value
 */
void fbl_source_pick(fbl_report *report, const fbl_netset *trusted,
                     const char *x_originating_ip);

#endif /* FBL_SOURCE_H */
