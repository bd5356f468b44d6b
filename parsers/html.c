/* html.c - HTML body to text with line breaks, through libxml2 */
#include "parsers/html.h"

#include <string.h>

#include <glib.h>
#include <libxml/HTMLparser.h>

static bool named(const xmlNode *n, const char *const *names, size_t count)
{
    if (n->type != XML_ELEMENT_NODE || n->name == NULL)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (g_ascii_strcasecmp((const char *) n->name, names[i]) == 0)
            return true;
    }
    return false;
}

static bool is_skipped(const xmlNode *n)
{
    static const char *const names[] = {"script", "style", "head", "title"};
    return named(n, names, G_N_ELEMENTS(names));
}

static bool breaks_line(const xmlNode *n)
{
    static const char *const names[] = {"br", "p",  "div", "tr", "li",    "h1",         "h2",
                                        "h3", "h4", "h5",  "h6", "table", "blockquote", "hr"};
    return named(n, names, G_N_ELEMENTS(names));
}

static void newline(GString *out)
{
    if (out->len > 0 && out->str[out->len - 1] != '\n')
        g_string_append_c(out, '\n');
}

/* A link's target after its text, "text <http://…>", so URLs survive as text. */
static void append_href(GString *out, const xmlNode *n)
{
    static const char *const link[] = {"a"};
    if (!named(n, link, 1))
        return;
    xmlChar *href = xmlGetProp((xmlNode *) n, (const xmlChar *) "href");
    if (href == NULL)
        return;
    const char *h = (const char *) href;
    if (g_ascii_strncasecmp(h, "http://", 7) == 0 || g_ascii_strncasecmp(h, "https://", 8) == 0)
        g_string_append_printf(out, " <%s>", h);
    xmlFree(href);
}

/* Called when the walk is done with @n and everything inside it. */
static void leave(GString *out, const xmlNode *n)
{
    append_href(out, n);
    if (breaks_line(n))
        newline(out);
}

char *fbl_html_to_text(const char *html, size_t len)
{
    if (len > FBL_HTML_MAX_BYTES)
        len = FBL_HTML_MAX_BYTES;
    GString *out = g_string_new(NULL);
    int opts = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
               HTML_PARSE_COMPACT;
    htmlDocPtr doc = len > 0 ? htmlReadMemory(html, (int) len, NULL, "UTF-8", opts) : NULL;
    if (doc == NULL)
        return g_string_free(out, FALSE);
    xmlNode *root = (xmlNode *) doc;
    xmlNode *n = doc->children;
    while (n != NULL) {
        if (n->type == XML_TEXT_NODE && n->content != NULL) {
            /* Source line breaks inside text are layout, not structure. */
            g_autofree char *t = g_strdup((const char *) n->content);
            g_strdelimit(t, "\r\n\t", ' ');
            const char *p = t;
            /* Indentation in the source is not indentation in the text: a line that
             * began with a space would read as a folded header line. */
            if (out->len == 0 || out->str[out->len - 1] == '\n')
                while (*p == ' ')
                    p++;
            g_string_append(out, p);
        }
        if (n->children != NULL && n->type == XML_ELEMENT_NODE && !is_skipped(n)) {
            n = n->children;
            continue;
        }
        leave(out, n);
        while (n != root && n->next == NULL) {
            n = n->parent;
            if (n != NULL && n != root)
                leave(out, n);
        }
        n = (n != NULL && n != root) ? n->next : NULL;
    }
    xmlFreeDoc(doc);
    return g_string_free(out, FALSE);
}
