/*
 * html.h - the text of an HTML body, with its line structure
 *
 * Layer: parsers/. Thread-safe once fbl_parsers_init() has run.
 * Parsed by libxml2's HTML parser; script and style are skipped; <br>, <p>,
 * <div>, <tr>, <li> and headings end a line, so a forwarded header block in
 * HTML comes out one field per line; a link's http(s) target follows its text
 * as " <URL>", so the links of the forwarded spam survive.
 *
 * White space is read as a browser shows it: outside <pre>, a run of spaces,
 * tabs, source line breaks and no-break spaces is one space, and no line
 * starts or ends with one (a line that began with a space would read as a
 * folded header line); inside <pre> line breaks and indentation are kept, as
 * a header block pasted there is laid out by them. An address written
 * unescaped ("From: Name<a@b.example>"), which the parser would take for a
 * tag and drop, is kept as the text "<a@b.example>".
 *
 * Input beyond FBL_HTML_MAX_BYTES is not read; the walk is iterative and the
 * time linear in the input.
 */
#ifndef FBL_HTML_H
#define FBL_HTML_H

#include <stddef.h>

#define FBL_HTML_MAX_BYTES ((size_t) 4 * 1024 * 1024)

/* fbl_html_to_text - (transfer full) UTF-8 text of @html (UTF-8, @len bytes) */
char *fbl_html_to_text(const char *html, size_t len);

#endif /* FBL_HTML_H */
