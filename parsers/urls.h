/*
 * urls.h - URLs in message bodies: found, normalized with GUri, deduplicated
 *
 * Layer: parsers/. Pure; thread-safe once fbl_parsers_init() has run
 * (libxml2 must be initialised from one thread first).
 *
 * Text bodies are scanned for http://, https://, ftp:// and www. links;
 * HTML bodies are parsed by libxml2's HTML parser (never regexes) and every
 * href/src/action attribute is taken, plus links in the text nodes.
 * Normalization: scheme and host lower case, default port dropped, empty
 * path "/", fragment removed. Obfuscated links (hxxp://, example[.]com) are
 * not guessed at: they become a warning.
 *
 * Bounds: at most FBL_URLS_MAX URLs per message, each at most
 * FBL_URLS_MAX_LEN bytes; HTML over FBL_URLS_MAX_HTML bytes is read only in
 * its first FBL_URLS_MAX_HTML bytes.
 */
#ifndef FBL_URLS_H
#define FBL_URLS_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#define FBL_URLS_MAX      200
#define FBL_URLS_MAX_LEN  2048
#define FBL_URLS_MAX_HTML ((size_t) 4 * 1024 * 1024)

typedef struct fbl_urls {
    GPtrArray *urls;  /* char *, unique, in order of appearance */
    GPtrArray *hosts; /* char *, unique */
    bool obfuscated;  /* saw hxxp:// or [.] and did not follow it */
    bool truncated;   /* more than FBL_URLS_MAX */
} fbl_urls;

void fbl_urls_init(fbl_urls *urls, GPtrArray *urls_out, GPtrArray *hosts_out);

/* fbl_urls_scan_text - add the links of UTF-8 @text */
void fbl_urls_scan_text(fbl_urls *urls, const char *text, size_t len);

/*
 * fbl_urls_scan_html - add the links of UTF-8 @html
 *
 * @text_out: (optional) receives the document's visible text (for the
 *   fingerprint), appended
 */
void fbl_urls_scan_html(fbl_urls *urls, const char *html, size_t len, GString *text_out);

/*
 * fbl_url_normalize - one URL in fbl's canonical form
 *
 * @host: (out) (optional) (transfer full) its host, lower case
 * Returns: (transfer full) or NULL when GUri does not take it or it has no host.
 */
char *fbl_url_normalize(const char *url, char **host);

#endif /* FBL_URLS_H */
