/*
 * provider.h - who runs a mail host: organisations by what they control
 *
 * Layer: parsers/. Pure; the tables are built once (thread-safe) and never
 * change. No I/O: the Public Suffix List is libpsl's built-in copy.
 *
 * An organisation is named by a key. A host name under one of a known mail
 * provider's domains, or an address in its published networks, has that
 * provider's key ("microsoft", "google", "yahoo", …): one operator that runs
 * several domains and passes mail among its own hosts. Any other host name
 * has its registrable domain as its key ("mx1.example.co.uk" ->
 * "example.co.uk"). Some keys are inbound mail-security services (Proofpoint,
 * Mimecast, …): they receive a customer's mail at its MX and relay it on, so
 * their hosts are the receiving side's, whoever their customer is.
 *
 * The tables hold only what the providers publish (their SPF networks, their
 * mail domains); source.h says how the source IP walk uses them.
 */
#ifndef FBL_PROVIDER_H
#define FBL_PROVIDER_H

#include <stdbool.h>

/*
 * fbl_org_of_host - (transfer full) the organisation key of host name @host,
 * or NULL when it has none (a single label like "cmgw", an address literal,
 * a public suffix)
 */
char *fbl_org_of_host(const char *host);

/*
 * fbl_org_of_ip - (transfer none) the key of the known provider whose
 * published networks hold canonical @ip, or NULL
 */
const char *fbl_org_of_ip(const char *ip);

/* fbl_org_is_known_provider - @org is one of the table's mailbox providers */
bool fbl_org_is_known_provider(const char *org);

/* fbl_org_is_relay_service - @org receives mail for its customers and relays it */
bool fbl_org_is_relay_service(const char *org);

#endif /* FBL_PROVIDER_H */
