/* auth.c - reporter verification from our MTA's Authentication-Results */
#include "parsers/auth.h"

#include <string.h>

gboolean fbl_auth_aligned(const char *domain, const char *reporter_domain)
{
    if (domain == NULL || reporter_domain == NULL || *domain == '\0')
        return FALSE;
    size_t d = strlen(domain), r = strlen(reporter_domain);
    if (d > r || g_ascii_strcasecmp(reporter_domain + r - d, domain) != 0)
        return FALSE;
    /* A parent must be a whole label, and more than a top-level domain. */
    return d == r || (reporter_domain[r - d - 1] == '.' && strchr(domain, '.') != NULL);
}

/* The value of "key=" in one result ("dkim=pass header.d=example.com"), or NULL. */
static char *property(const char *result, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = result; (p = strstr(p, key)) != NULL; p += kl) {
        if (p != result && !g_ascii_isspace(p[-1]) && p[-1] != ';')
            continue;
        const char *v = p + kl;
        size_t n = strcspn(v, " \t;()");
        return g_strndup(v, n);
    }
    return NULL;
}

/* Does one "method=pass ..." result verify the reporter's domain? */
static gboolean result_verifies(const char *result, const char *reporter_domain)
{
    while (g_ascii_isspace(*result))
        result++;
    if (g_ascii_strncasecmp(result, "dkim=pass", 9) == 0) {
        g_autofree char *d = property(result, "header.d=");
        if (d == NULL) {
            g_autofree char *i = property(result, "header.i=");
            const char *at = i != NULL ? strrchr(i, '@') : NULL;
            return at != NULL && fbl_auth_aligned(at + 1, reporter_domain);
        }
        return fbl_auth_aligned(d, reporter_domain);
    }
    if (g_ascii_strncasecmp(result, "spf=pass", 8) == 0) {
        g_autofree char *from = property(result, "smtp.mailfrom=");
        const char *at = from != NULL ? strrchr(from, '@') : NULL;
        return fbl_auth_aligned(at != NULL ? at + 1 : from, reporter_domain);
    }
    return FALSE;
}

int fbl_auth_reporter_verified(GMimeMessage *carrier, const char *authserv_id,
                               const char *reporter_domain)
{
    if (authserv_id == NULL || *authserv_id == '\0')
        return -1;
    GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(carrier));
    int n = g_mime_header_list_get_count(hl);
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        if (g_ascii_strcasecmp(g_mime_header_get_name(h), "Authentication-Results") != 0)
            continue;
        const char *v = g_mime_header_get_value(h);
        if (v == NULL || *v == '\0') /* g_strsplit() of "" has no parts[0] */
            continue;
        g_auto(GStrv) parts = g_strsplit(v, ";", 64);
        g_strstrip(parts[0]);
        /* The authserv-id may be followed by a version: "mx.example.net 1". */
        size_t id_len = strcspn(parts[0], " \t");
        if (id_len != strlen(authserv_id) ||
            g_ascii_strncasecmp(parts[0], authserv_id, id_len) != 0)
            continue;
        for (size_t j = 1; parts[j] != NULL; j++) {
            if (result_verifies(parts[j], reporter_domain))
                return 1;
        }
        return 0; /* our MTA's first field decides */
    }
    return 0;
}
