/*
 * html.h - the text of an HTML body, with its line structure
 *
 * Layer: parsers/. Thread-safe once fbl_parsers_init() has run.
 * Parsed by libxml2's HTML parser; script and style are skipped; <br>, <p>,
 * <div>, <tr>, <li> and headings end a line, so a forwarded header block in
 * HTML comes out one field per line; a link's http(s) target follows its text
 * as " <URL>", so the links of the forwarded spam survive. Input beyond FBL_HTML_MAX_BYTES is not
 * read; the walk is iterative.
 */
#ifndef FBL_HTML_H
#define FBL_HTML_H

#include <stddef.h>

#define FBL_HTML_MAX_BYTES (4 * 1024 * 1024)

/* fbl_html_to_text - (transfer full) UTF-8 text of @html (UTF-8, @len bytes) */
char *fbl_html_to_text(const char *html, size_t len);

#endif /* FBL_HTML_H */
