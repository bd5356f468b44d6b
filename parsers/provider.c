/* provider.c - organisations of mail hosts (see provider.h) */
#include "parsers/provider.h"

#include <string.h>

#include <glib.h>
#include <libpsl.h>

#include "parsers/ip.h"

typedef struct provider {
    const char *key;
    bool relay_service;
    const char *const *domains;  /* registrable domains the provider runs */
    const char *const *networks; /* what it publishes for its mail (SPF) */
} provider;

/* XXX the data here ages: providers add networks and domains. It is only used
 * to walk a provider's own hops; an unknown one is read by its verified names. */
static const char *const microsoft_domains[] = {
    "outlook.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr",    "hotmail.de",
    "hotmail.it",  "hotmail.es",  "live.com",      "live.co.uk",    "live.fr",
    "live.de",     "live.nl",     "msn.com",       "outlook.fr",    "outlook.de",
    "outlook.es",  "outlook.it",  "office365.com", "microsoft.com", NULL};
static const char *const microsoft_networks[] = {"2603:1000::/24",
                                                 "2a01:111::/32",
                                                 "40.92.0.0/15",
                                                 "40.107.0.0/16",
                                                 "52.100.0.0/14",
                                                 "104.47.0.0/17",
                                                 NULL};
static const char *const google_domains[] = {"google.com", "gmail.com", "googlemail.com",
                                             "1e100.net", NULL};
static const char *const google_networks[] = {
    "35.190.247.0/24",    "64.233.160.0/19",     "66.102.0.0/20",       "66.249.80.0/20",
    "72.14.192.0/18",     "74.125.0.0/16",       "108.177.8.0/21",      "173.194.0.0/16",
    "209.85.128.0/17",    "216.58.192.0/19",     "216.239.32.0/19",     "172.217.0.0/19",
    "172.217.32.0/20",    "172.217.128.0/19",    "172.217.160.0/20",    "172.217.192.0/19",
    "172.253.56.0/21",    "172.253.112.0/20",    "108.177.96.0/19",     "35.191.0.0/16",
    "130.211.0.0/22",     "2001:4860:4000::/36", "2404:6800:4000::/36", "2607:f8b0:4000::/36",
    "2800:3f0:4000::/36", "2a00:1450:4000::/36", "2c0f:fb50:4000::/36", NULL};
static const char *const yahoo_domains[] = {
    "yahoo.com",      "yahoo.co.uk",  "yahoo.fr", "yahoo.de",  "yahoo.es",     "yahoo.it",
    "yahoo.ca",       "yahoo.com.br", "yahoo.in", "yahoo.net", "yahoodns.net", "ymail.com",
    "rocketmail.com", "aol.com",      "aol.net",  "aim.com",   "verizon.net",  NULL};
static const char *const yahoo_networks[] = {
    "98.136.0.0/14", "66.163.160.0/19", "74.6.0.0/16",    "67.195.0.0/16",
    "68.180.0.0/16", "72.30.0.0/16",    "212.82.96.0/19", NULL};
static const char *const att_domains[] = {
    "att.net",    "sbcglobal.net", "prodigy.net", "bellsouth.net", "ameritech.net", "pacbell.net",
    "swbell.net", "flash.net",     "nvbell.net",  "wans.net",      "snet.net",      NULL};
static const char *const att_networks[] = {"144.160.0.0/16", NULL};
static const char *const comcast_domains[] = {"comcast.net", "comcastmailservice.net",
                                              "xfinity.com", NULL};
static const char *const comcast_networks[] = {"69.252.0.0/16", NULL};
static const char *const charter_domains[] = {"charter.net",  "rr.com",          "twc.com",
                                              "spectrum.net", "brighthouse.com", NULL};
static const char *const charter_networks[] = {"47.43.0.0/16", NULL};
static const char *const ionos_domains[] = {
    "kundenserver.de", "ionos.com",  "ionos.de", "ionos.co.uk", "1and1.com", "1and1.de", "1und1.de",
    "perfora.net",     "schlund.de", "gmx.net",  "gmx.de",      "gmx.com",   "web.de",   NULL};
static const char *const ionos_networks[] = {"212.227.0.0/16", "213.165.64.0/19", "217.72.192.0/20",
                                             "82.165.0.0/16",  "74.208.0.0/16",   NULL};
static const char *const swisscom_domains[] = {"bluewin.ch", "swisscom.ch", "swisscom.com",
                                               "bwns.ch", NULL};
static const char *const swisscom_networks[] = {"195.186.0.0/16", NULL};
/* Inbound mail-security services: they are their customers' MX. */
static const char *const proofpoint_domains[] = {"pphosted.com", "ppe-hosted.com", NULL};
static const char *const mimecast_domains[] = {"mimecast.com", "mimecast-offshore.com", NULL};
static const char *const messagelabs_domains[] = {"messagelabs.com", "symcld.net", NULL};
static const char *const messagelabs_networks[] = {"67.219.240.0/20", "216.82.240.0/20",
                                                   "85.158.136.0/21", NULL};
static const char *const cisco_domains[] = {"iphmx.com", NULL};
static const char *const barracuda_domains[] = {"barracudanetworks.com", NULL};
static const char *const spamexperts_domains[] = {"antispamcloud.com", "spamexperts.com", NULL};
static const char *const forcepoint_domains[] = {"mailcontrol.com", NULL};
static const char *const hornet_domains[] = {"hornetsecurity.com", NULL};
static const char *const cloudmark_domains[] = {"cloudfilter.net", NULL};
static const char *const sophos_domains[] = {"sophos.com", NULL};
static const char *const trend_domains[] = {"trendmicro.com", "trendmicro.eu", NULL};
static const char *const renater_domains[] = {"renater.fr", NULL};
static const char *const none[] = {NULL};

static const provider providers[] = {
    {"microsoft", false, microsoft_domains, microsoft_networks},
    {"google", false, google_domains, google_networks},
    {"yahoo", false, yahoo_domains, yahoo_networks},
    {"att", false, att_domains, att_networks},
    {"comcast", false, comcast_domains, comcast_networks},
    {"charter", false, charter_domains, charter_networks},
    {"ionos", false, ionos_domains, ionos_networks},
    {"swisscom", false, swisscom_domains, swisscom_networks},
    {"proofpoint", true, proofpoint_domains, none},
    {"mimecast", true, mimecast_domains, none},
    {"messagelabs", true, messagelabs_domains, messagelabs_networks},
    {"cisco", true, cisco_domains, none},
    {"barracuda", true, barracuda_domains, none},
    {"spamexperts", true, spamexperts_domains, none},
    {"forcepoint", true, forcepoint_domains, none},
    {"hornetsecurity", true, hornet_domains, none},
    {"cloudmark", true, cloudmark_domains, none},
    {"sophos", true, sophos_domains, none},
    {"trendmicro", true, trend_domains, none},
    {"renater", true, renater_domains, none},
};

/* Each provider's networks as a set, built once. */
static fbl_netset *const *netsets(void)
{
    static gsize done = 0;
    static fbl_netset *sets[G_N_ELEMENTS(providers)];
    if (g_once_init_enter(&done)) {
        for (size_t i = 0; i < G_N_ELEMENTS(providers); i++) {
            sets[i] = fbl_netset_new(providers[i].networks, NULL);
            g_assert(sets[i] != NULL); /* the table is ours: a typo is a bug */
        }
        g_once_init_leave(&done, 1);
    }
    return sets;
}

static const provider *provider_by_key(const char *key)
{
    for (size_t i = 0; key != NULL && i < G_N_ELEMENTS(providers); i++) {
        if (strcmp(providers[i].key, key) == 0)
            return &providers[i];
    }
    return NULL;
}

static const provider *provider_by_domain(const char *domain)
{
    for (size_t i = 0; i < G_N_ELEMENTS(providers); i++) {
        for (const char *const *d = providers[i].domains; *d != NULL; d++) {
            if (g_ascii_strcasecmp(*d, domain) == 0)
                return &providers[i];
        }
    }
    return NULL;
}

/*
 * The registrable domain of @host under the ICANN section of the Public Suffix
 * List only: its private section lists hosting domains whose customers get
 * subdomains ("kasserver.com"), but the hosts of one such domain are one
 * operator's mail servers. Borrowed from @host; NULL when @host is a suffix.
 */
static const char *registrable_domain(const char *host)
{
    const psl_ctx_t *psl = psl_builtin();
    const char *label = host;
    for (const char *next = strchr(label, '.'); next != NULL; next = strchr(label, '.')) {
        if (psl_is_public_suffix2(psl, next + 1, PSL_TYPE_ICANN))
            return label;
        label = next + 1;
    }
    return NULL;
}

char *fbl_org_of_host(const char *host)
{
    if (host == NULL || strchr(host, '.') == NULL || strchr(host, '[') != NULL)
        return NULL;
    g_autofree char *ip = fbl_ip_canonical(host);
    if (ip != NULL)
        return NULL;
    g_autofree char *lower = g_ascii_strdown(host, -1);
    size_t n = strlen(lower);
    while (n > 0 && lower[n - 1] == '.')
        lower[--n] = '\0';
    const char *domain = registrable_domain(lower);
    if (domain == NULL)
        return NULL;
    const provider *p = provider_by_domain(domain);
    return g_strdup(p != NULL ? p->key : domain);
}

const char *fbl_org_of_ip(const char *ip)
{
    if (ip == NULL)
        return NULL;
    fbl_netset *const *sets = netsets();
    for (size_t i = 0; i < G_N_ELEMENTS(providers); i++) {
        if (fbl_netset_contains(sets[i], ip))
            return providers[i].key;
    }
    return NULL;
}

bool fbl_org_is_known_provider(const char *org)
{
    const provider *p = provider_by_key(org);
    return p != NULL && !p->relay_service;
}

bool fbl_org_is_relay_service(const char *org)
{
    const provider *p = provider_by_key(org);
    return p != NULL && p->relay_service;
}
