/* outbound.c - reports about our own users' mail, and their accounts (see outbound.h) */
#include "parsers/outbound.h"

#include <string.h>

#include "parsers/ip.h"
#include "parsers/mime.h"
#include "parsers/parse.h"

struct fbl_outbound_scope {
    fbl_netset *networks; /* NULL: none */
    GPtrArray *domains;   /* char *, lower case, without "*." */
};

/* A domain as the config names it: "*.x" and ".x" are x; letters, digits, '-', '_', dots. */
static char *scope_domain(const char *entry)
{
    const char *d = entry;
    if (g_str_has_prefix(d, "*."))
        d += 2;
    else if (*d == '.')
        d++;
    if (*d == '\0')
        return NULL;
    for (const char *p = d; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            return NULL;
    }
    return g_ascii_strdown(d, -1);
}

fbl_outbound_scope *fbl_outbound_scope_new(const char *const *networks, const char *const *domains,
                                           GError **error)
{
    bool has_nets = networks != NULL && networks[0] != NULL;
    bool has_domains = domains != NULL && domains[0] != NULL;
    if (!has_nets && !has_domains)
        return NULL;
    g_autoptr(fbl_outbound_scope) s = g_new0(fbl_outbound_scope, 1);
    s->domains = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; has_domains && domains[i] != NULL; i++) {
        char *d = scope_domain(domains[i]);
        if (d == NULL) {
            g_set_error(error, FBL_PARSE_ERROR, FBL_PARSE_ERROR_OPTION,
                        "local domains: '%s' is not a domain name", domains[i]);
            return NULL;
        }
        g_ptr_array_add(s->domains, d);
    }
    if (has_nets) {
        g_autoptr(GError) local = NULL;
        s->networks = fbl_netset_new(networks, &local);
        if (s->networks == NULL) {
            g_set_error(error, FBL_PARSE_ERROR, FBL_PARSE_ERROR_OPTION, "local networks: %s",
                        local != NULL ? local->message : "bad network");
            return NULL;
        }
    }
    return g_steal_pointer(&s);
}

void fbl_outbound_scope_free(fbl_outbound_scope *s)
{
    if (s == NULL)
        return;
    fbl_netset_free(s->networks);
    if (s->domains != NULL)
        g_ptr_array_unref(s->domains);
    g_free(s);
}

/* @domain (lower case) is @parent or under it. */
static bool domain_under(const char *domain, const char *parent)
{
    size_t d = strlen(domain), p = strlen(parent);
    if (d == p)
        return strcmp(domain, parent) == 0;
    return d > p && domain[d - p - 1] == '.' && strcmp(domain + d - p, parent) == 0;
}

bool fbl_outbound_domain_is_ours(const fbl_outbound_scope *s, const char *domain)
{
    if (s == NULL || domain == NULL)
        return false;
    g_autofree char *lower = g_ascii_strdown(domain, -1);
    for (guint i = 0; i < s->domains->len; i++) {
        if (domain_under(lower, g_ptr_array_index(s->domains, i)))
            return true;
    }
    return false;
}

/*
 * @text[0..len) as an account: angle brackets and quotes around it dropped,
 * lower case; NULL unless one word of printable ASCII or UTF-8 bytes (no
 * space, no control character) of at most FBL_OUTBOUND_MAX_ACCOUNT bytes.
 */
static char *account_of(const char *text, size_t len)
{
    while (len > 0 && (g_ascii_isspace(*text) || *text == '<' || *text == '"')) {
        text++;
        len--;
    }
    while (len > 0 && (g_ascii_isspace(text[len - 1]) || text[len - 1] == '>' ||
                       text[len - 1] == '"' || text[len - 1] == '.'))
        len--;
    if (len == 0 || len > FBL_OUTBOUND_MAX_ACCOUNT)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) text[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '<' || ch == '>' || ch == '(' || ch == ')')
            return NULL;
    }
    if (!g_utf8_validate(text, (gssize) len, NULL))
        return NULL;
    return g_ascii_strdown(text, (gssize) len);
}

/* What OpenSMTPD ("auth=yes user=NAME") and others write in place of a name. */
static bool is_flag_word(const char *account)
{
    static const char *const words[] = {"yes", "no", "pass", "fail", "none", "true", "false"};
    for (size_t i = 0; i < G_N_ELEMENTS(words); i++) {
        if (strcmp(account, words[i]) == 0)
            return true;
    }
    return false;
}

/*
 * The word after @marker in @value (case ignored, at the start or after a
 * blank, '(' or ';'), up to one of @stops; a flag word ("yes") is no name.
 */
static char *word_after(const char *value, const char *marker, const char *stops)
{
    size_t m = strlen(marker);
    for (const char *p = value; *p != '\0'; p++) {
        if (g_ascii_strncasecmp(p, marker, m) != 0)
            continue;
        if (p > value && strchr(" \t\r\n(;", p[-1]) == NULL && strchr("( ", marker[0]) == NULL)
            continue;
        const char *start = p + m;
        while (*start == ' ' || *start == '\t')
            start++;
        size_t n = strcspn(start, stops);
        char *account = account_of(start, n);
        if (account != NULL && !is_flag_word(account))
            return account;
        g_free(account);
    }
    return NULL;
}

/* Courier's "(AUTH: LOGIN user, TLS: ...)": the word after the mechanism. */
static char *courier_user(const char *value)
{
    const char *p = g_strstr_len(value, -1, "(AUTH: ");
    if (p == NULL)
        return NULL;
    p += strlen("(AUTH: ");
    p += strcspn(p, " \t),");
    if (*p != ' ' && *p != '\t')
        return NULL;
    while (*p == ' ' || *p == '\t')
        p++;
    return account_of(p, strcspn(p, " \t,)"));
}

/* The authenticated user one Received field names, if any. */
static char *received_user(const char *value)
{
    char *u = word_after(value, "(Authenticated sender:", ")");
    if (u == NULL)
        u = word_after(value, "(authenticated as ", ")");
    if (u == NULL)
        u = word_after(value, "auth=", ");, \t\r\n");
    if (u == NULL && g_strstr_len(value, -1, "auth=yes") != NULL) /* OpenSMTPD */
        u = word_after(value, "user=", "); \t\r\n");
    if (u == NULL)
        u = courier_user(value);
    return u;
}

/* X-Authenticated-Sender: "[HOST: ]USER"; X-Get-Message-Sender-Via: "HOST: authenticated_id: USER".
 */
static char *header_user(const char *name, const char *value)
{
    if (g_ascii_strcasecmp(name, "X-Get-Message-Sender-Via") == 0)
        return word_after(value, "authenticated_id:", " \t\r\n/;,");
    const char *colon = strrchr(value, ':');
    /* "host: user" names the host first; "user" alone has no ": ". */
    const char *start = colon != NULL && colon[1] == ' ' ? colon + 1 : value;
    return account_of(start, strlen(start));
}

char *fbl_outbound_auth_user(GMimeMessage *message, const char **how)
{
    static const char *const headers[] = {"X-Authenticated-User", "X-Authenticated-Sender",
                                          "X-Get-Message-Sender-Via"};
    static const char *const names[] = {"x-authenticated-user", "x-authenticated-sender",
                                        "x-get-message-sender-via"};
    if (how != NULL)
        *how = NULL;
    if (message == NULL)
        return NULL;
    GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(message));
    int n = g_mime_header_list_get_count(hl);
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *value = g_mime_header_get_value(h);
        if (value == NULL || g_ascii_strcasecmp(g_mime_header_get_name(h), "Received") != 0)
            continue;
        char *u = received_user(value);
        if (u != NULL) {
            if (how != NULL)
                *how = "received";
            return u;
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(headers); i++) {
        const char *value = fbl_mime_header(GMIME_OBJECT(message), headers[i]);
        char *u = value != NULL ? header_user(headers[i], value) : NULL;
        if (u != NULL) {
            if (how != NULL)
                *how = names[i];
            return u;
        }
    }
    return NULL;
}

/* Why @r is ours: "source_ip", "from_domain", "dkim"; NULL when it is not. */
static const char *why_ours(const fbl_outbound_scope *s, const fbl_report *r)
{
    if (s->networks != NULL && r->source_ip != NULL &&
        fbl_netset_contains(s->networks, r->source_ip))
        return "source_ip";
    if (fbl_outbound_domain_is_ours(s, r->message.from_domain))
        return "from_domain";
    for (guint i = 0; i < r->message.dkim->len; i++) {
        const fbl_dkim *k = g_ptr_array_index(r->message.dkim, i);
        if (fbl_outbound_domain_is_ours(s, k->d))
            return "dkim";
    }
    return NULL;
}

fbl_outbound *fbl_outbound_detect(const fbl_outbound_scope *s, const fbl_report *r,
                                  GMimeMessage *reported)
{
    const char *matched = s != NULL ? why_ours(s, r) : NULL;
    if (matched == NULL)
        return NULL;
    fbl_outbound *b = g_new0(fbl_outbound, 1);
    b->matched = g_strdup(matched);
    const char *how = NULL;
    b->account = fbl_outbound_auth_user(reported, &how);
    if (b->account != NULL) {
        b->account_from = g_strdup("auth");
        b->auth_header = g_strdup(how);
        return b;
    }
    const char *envelope = r->message.return_path;
    if (envelope == NULL && r->arf != NULL)
        envelope = r->arf->original_mail_from;
    b->account = envelope != NULL ? account_of(envelope, strlen(envelope)) : NULL;
    if (b->account != NULL) {
        b->account_from = g_strdup("envelope");
        return b;
    }
    b->account =
        r->message.from != NULL ? account_of(r->message.from, strlen(r->message.from)) : NULL;
    if (b->account != NULL)
        b->account_from = g_strdup("from");
    return b;
}
