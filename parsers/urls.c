/* urls.c - links in text and HTML bodies (libxml2 for HTML, GUri to normalize) */
#include "parsers/urls.h"

#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "parsers/report.h"

void fbl_urls_init(fbl_urls *urls, GPtrArray *urls_out, GPtrArray *hosts_out)
{
    memset(urls, 0, sizeof *urls);
    urls->urls = urls_out;
    urls->hosts = hosts_out;
}

char *fbl_url_normalize(const char *url, char **host)
{
    if (host != NULL)
        *host = NULL;
    if (url == NULL || strlen(url) > FBL_URLS_MAX_LEN || !g_utf8_validate(url, -1, NULL))
        return NULL;
    GUri *u = g_uri_parse(
        url, G_URI_FLAGS_ENCODED | G_URI_FLAGS_SCHEME_NORMALIZE | G_URI_FLAGS_PARSE_RELAXED, NULL);
    if (u == NULL)
        return NULL;
    /* A host written with %-escapes ("%65xample.com") is the host it spells. */
    const char *raw_host = g_uri_get_host(u);
    g_autofree char *h = raw_host != NULL && strchr(raw_host, '%') != NULL
                             ? g_uri_unescape_string(raw_host, NULL)
                             : g_strdup(raw_host);
    /* A host is a name or an address literal: never a path, an escape or a userinfo. */
    if (h == NULL || *h == '\0' || !g_utf8_validate(h, -1, NULL) ||
        strpbrk(h, " \t<>\"'/\\%@?#") != NULL) {
        g_uri_unref(u);
        return NULL;
    }
    g_autofree char *lower_host = g_utf8_strdown(h, -1);
    size_t hl = strlen(lower_host);
    if (hl > 0 && lower_host[hl - 1] == '.')
        lower_host[hl - 1] = '\0';
    const char *path = g_uri_get_path(u);
    if (path != NULL && *path != '\0' && *path != '/') { /* "http://host;x": GUri won't join */
        g_uri_unref(u);
        return NULL;
    }
    GUri *n =
        g_uri_build(g_uri_get_flags(u), g_uri_get_scheme(u), g_uri_get_userinfo(u), lower_host,
                    g_uri_get_port(u), (path && *path) ? path : "/", g_uri_get_query(u), NULL);
    char *out = g_uri_to_string(n);
    g_uri_unref(n);
    g_uri_unref(u);
    if (host != NULL)
        *host = g_steal_pointer(&lower_host);
    return out;
}

static void add_url(fbl_urls *urls, const char *raw, size_t len)
{
    if (urls->urls->len >= FBL_URLS_MAX) {
        urls->truncated = true;
        return;
    }
    if (len == 0 || len > FBL_URLS_MAX_LEN)
        return;
    g_autofree char *s = g_strndup(raw, len);
    g_strstrip(s);
    /* "www.example.com/x" in text means http. */
    if (g_ascii_strncasecmp(s, "www.", 4) == 0) {
        char *with_scheme = g_strconcat("http://", s, NULL);
        g_free(s);
        s = with_scheme;
    }
    g_autofree char *host = NULL;
    g_autofree char *norm = fbl_url_normalize(s, &host);
    if (norm == NULL)
        return;
    const char *scheme_end = strstr(norm, "://");
    if (scheme_end == NULL)
        return;
    size_t scheme_len = (size_t) (scheme_end - norm);
    bool web = (scheme_len == 4 && g_ascii_strncasecmp(norm, "http", 4) == 0) ||
               (scheme_len == 5 && g_ascii_strncasecmp(norm, "https", 5) == 0) ||
               (scheme_len == 3 && g_ascii_strncasecmp(norm, "ftp", 3) == 0);
    if (!web)
        return;
    fbl_strv_add_unique(urls->urls, norm);
    fbl_strv_add_unique(urls->hosts, host);
}

static bool is_url_end(unsigned char c)
{
    return c <= ' ' || strchr("<>\"'`{}|\\^", c) != NULL || c == 0x7f;
}

static size_t prefix_len(const char *p, const char *end)
{
    static const char *const prefixes[] = {"http://", "https://", "ftp://", "www."};
    for (size_t i = 0; i < G_N_ELEMENTS(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if ((size_t) (end - p) > n && g_ascii_strncasecmp(p, prefixes[i], n) == 0)
            return n;
    }
    return 0;
}

/* hxxp://, hxxps://, example[.]com, example(.)com, example[dot]com */
static bool looks_obfuscated(const char *p, const char *end)
{
    static const char *const marks[] = {"hxxp://", "hxxps://", "[.]", "(.)", "[dot]"};
    for (size_t i = 0; i < G_N_ELEMENTS(marks); i++) {
        size_t n = strlen(marks[i]);
        if ((size_t) (end - p) >= n && g_ascii_strncasecmp(p, marks[i], n) == 0)
            return true;
    }
    return false;
}

/* Whether a link or an obfuscation mark may start at @c: h, f, w in either case, [ or (.
 * Inline arithmetic, not g_ascii_tolower(): this runs for every byte of every body. */
static bool may_start_link(char c)
{
    char lower = (char) (c | 0x20); /* only 'H' and 'h' give 'h', and so on */
    return lower == 'h' || lower == 'f' || lower == 'w' || c == '[' || c == '(';
}

/*
 * Whether the two characters at @p (a may_start_link() character and the one
 * after it) can begin a prefix or a mark: "ht", "hx", "ft", "ww", "[.", "[d",
 * "(.". English text has an h, f or w every ten letters; this spares most of
 * them the nine comparisons of prefix_len() and looks_obfuscated(). It may
 * say yes wrongly (| 0x20 turns a few other bytes into letters), never no.
 */
static bool may_start_pair(const char *p, const char *end)
{
    if (end - p < 3) /* the shortest mark is three characters */
        return false;
    if (p[0] == '[')
        return p[1] == '.' || p[1] == 'd' || p[1] == 'D';
    if (p[0] == '(')
        return p[1] == '.';
    char second = (char) (p[1] | 0x20);
    switch (p[0] | 0x20) {
    case 'h':
        return second == 't' || second == 'x';
    case 'f':
        return second == 't';
    default: /* w */
        return second == 'w';
    }
}

void fbl_urls_scan_text(fbl_urls *urls, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        if (!may_start_link(*p) || !may_start_pair(p, end)) {
            p++;
            continue;
        }
        char c = g_ascii_tolower(*p);
        if (!urls->obfuscated && looks_obfuscated(p, end))
            urls->obfuscated = true;
        size_t n = prefix_len(p, end);
        /* "www." only at a word start: not inside "awww.example". */
        if (n == 0 || (c == 'w' && p > text && g_ascii_isalnum(p[-1]))) {
            p++;
            continue;
        }
        const char *q = p + n;
        while (q < end && !is_url_end((unsigned char) *q))
            q++;
        const char *stop = q;
        /* Sentence punctuation and a closing bracket are not part of the link. */
        while (stop > p + n && strchr(".,;:!?)]", stop[-1]) != NULL)
            stop--;
        if (stop > p + n)
            add_url(urls, p, (size_t) (stop - p));
        p = q;
    }
}

static bool is_element(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->name != NULL &&
           g_ascii_strcasecmp((const char *) n->name, name) == 0;
}

/*
 * "cdn.example.com/p.gif": a link without a scheme whose first segment is a
 * host name (dotted, ending in letters). Relative paths ("img/a.gif",
 * "page.html") are not: their first segment has no dot or ends in a file name's
 * extension after a path.
 */
static bool looks_like_host(const char *s)
{
    size_t n = strcspn(s, "/?#");
    if (n < 4 || n > 253 || memchr(s, '.', n) == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(s[i]) && s[i] != '.' && s[i] != '-')
            return false;
    }
    size_t t = n;
    while (t > 0 && g_ascii_isalpha(s[t - 1]))
        t--;
    static const char *const files[] = {".html", ".htm", ".php", ".asp",  ".aspx", ".jsp",
                                        ".gif",  ".png", ".jpg", ".jpeg", ".css",  ".js"};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        size_t fl = strlen(files[i]);
        if (n >= fl && g_ascii_strncasecmp(s + n - fl, files[i], fl) == 0)
            return false;
    }
    return n - t >= 2 && t > 0 && s[t - 1] == '.';
}

/* A link in an attribute: href, src (images and tracking pixels), action. */
static void take_attribute(fbl_urls *urls, xmlNode *node, const char *name)
{
    xmlChar *v = xmlGetProp(node, (const xmlChar *) name);
    if (v == NULL)
        return;
    const char *s = (const char *) v;
    while (g_ascii_isspace(*s))
        s++;
    size_t len = strlen(s);
    if (prefix_len(s, s + len) > 0) {
        add_url(urls, s, len);
    } else if (s[0] == '/' && s[1] == '/' && looks_like_host(s + 2)) {
        g_autofree char *full = g_strconcat("http:", s, NULL); /* protocol-relative */
        add_url(urls, full, strlen(full));
    } else if (looks_like_host(s)) {
        g_autofree char *full = g_strconcat("http://", s, NULL);
        add_url(urls, full, strlen(full));
    } else if (looks_obfuscated(s, s + len)) {
        urls->obfuscated = true;
    }
    xmlFree(v);
}

/* The next node in document order, without recursion; skips script/style bodies. */
static xmlNode *next_node(xmlNode *n, const xmlNode *root)
{
    bool skip_children = is_element(n, "script") || is_element(n, "style");
    if (n->children != NULL && !skip_children && n->type == XML_ELEMENT_NODE)
        return n->children;
    while (n != NULL && n != root) {
        if (n->next != NULL)
            return n->next;
        n = n->parent;
    }
    return NULL;
}

void fbl_urls_scan_html(fbl_urls *urls, const char *html, size_t len, GString *text_out)
{
    if (len > FBL_URLS_MAX_HTML)
        len = FBL_URLS_MAX_HTML;
    if (len == 0)
        return;
    int opts = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
               HTML_PARSE_COMPACT;
    htmlDocPtr doc = htmlReadMemory(html, (int) len, NULL, "UTF-8", opts);
    if (doc == NULL)
        return;
    xmlNode *root = (xmlNode *) doc;
    for (xmlNode *n = doc->children; n != NULL; n = next_node(n, root)) {
        if (n->type == XML_TEXT_NODE && n->content != NULL) {
            const char *t = (const char *) n->content;
            size_t tl = strlen(t);
            fbl_urls_scan_text(urls, t, tl);
            if (text_out != NULL) {
                g_string_append_len(text_out, t, (gssize) tl);
                g_string_append_c(text_out, ' ');
            }
        } else if (n->type == XML_ELEMENT_NODE) {
            take_attribute(urls, n, "href");
            take_attribute(urls, n, "src");
            take_attribute(urls, n, "action");
        }
    }
    xmlFreeDoc(doc);
}
