/* html.c - HTML body to text with line breaks, through libxml2 */
#include "parsers/html.h"

#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <libxml/HTMLparser.h>

/* The longest address kept as text, and how far an editor's stray attributes after
 * it are looked for (a bound, so that the pass stays linear). */
#define ADDRESS_MAX  254
#define TAG_TAIL_MAX 1024

typedef struct walk {
    GString *out;
    unsigned pre; /* <pre> elements around the node */
    bool space;   /* white space was seen and is owed before the next visible text */
    bool nbsp;    /* the line so far is no-break spaces: a blank line the author made */
} walk;

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
    static const char *const names[] = {"br", "p",  "div", "tr",    "li", "h1",  "h2",        "h3",
                                        "h4", "h5", "h6",  "table", "hr", "pre", "blockquote"};
    return named(n, names, G_N_ELEMENTS(names));
}

static bool is_br(const xmlNode *n)
{
    static const char *const names[] = {"br"};
    return named(n, names, 1);
}

/* The blocks an author makes a blank line of with "&nbsp;" alone. */
static bool is_paragraph(const xmlNode *n)
{
    static const char *const names[] = {"p", "div"};
    return named(n, names, G_N_ELEMENTS(names));
}

static bool is_hr(const xmlNode *n)
{
    static const char *const names[] = {"hr"};
    return named(n, names, 1);
}

static bool is_pre(const xmlNode *n)
{
    static const char *const names[] = {"pre"};
    return named(n, names, 1);
}

/* ---- addresses the parser would take for tags ---------------------------- */

static bool local_char(char c)
{
    return g_ascii_isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '=' ||
           c == '-';
}

/* The length of "local@domain.example" at @p when a tag would end right after it. */
static size_t address_at(const char *p, const char *end)
{
    size_t max = MIN((size_t) (end - p), (size_t) ADDRESS_MAX + 1);
    size_t n = 0;
    while (n < max && local_char(p[n]))
        n++;
    if (n == 0 || n >= max || p[n] != '@')
        return 0;
    size_t at = n++;
    bool dot = false;
    while (n < max && (g_ascii_isalnum(p[n]) || p[n] == '.' || p[n] == '-')) {
        dot = dot || p[n] == '.';
        n++;
    }
    if (n == at + 1 || !dot || n >= max)
        return 0;
    return p[n] == '>' || g_ascii_isspace(p[n]) ? n : 0;
}

/*
 * "Name<a@b.example>" typed into an HTML editor is a tag to the parser, and the
 * address vanishes (some editors even give it a style attribute and a closing
 * tag). Escape it so that it stays text; the attributes and closing tags go.
 */
static GString *escape_addresses(const char *html, size_t len)
{
    GString *s = g_string_sized_new(len + 1);
    const char *p = html, *end = html + len;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t) (end - p));
        if (lt == NULL) {
            g_string_append_len(s, p, end - p);
            break;
        }
        g_string_append_len(s, p, lt - p);
        bool closing = lt + 1 < end && lt[1] == '/';
        const char *a = lt + 1 + (closing ? 1 : 0);
        size_t n = a < end ? address_at(a, end) : 0;
        if (n == 0) {
            g_string_append_c(s, '<');
            p = lt + 1;
            continue;
        }
        if (!closing) {
            g_string_append(s, "&lt;");
            g_string_append_len(s, a, (gssize) n);
            g_string_append(s, "&gt;");
        }
        const char *gt = memchr(a + n, '>', MIN((size_t) (end - (a + n)), (size_t) TAG_TAIL_MAX));
        p = gt != NULL ? gt + 1 : a + n;
    }
    return s;
}

/* ---- text ---------------------------------------------------------------- */

/* Bytes of white space at @p: ASCII, or a UTF-8 no-break space. */
static size_t space_len(const char *p)
{
    if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f')
        return 1;
    return (guchar) p[0] == 0xC2 && (guchar) p[1] == 0xA0 ? 2 : 0;
}

static bool at_line_start(const GString *out)
{
    return out->len == 0 || out->str[out->len - 1] == '\n';
}

static void newline(walk *w)
{
    if (!at_line_start(w->out))
        g_string_append_c(w->out, '\n');
    w->space = false;
    w->nbsp = false;
}

/*
 * The end of a line that may be empty, as a browser shows it: a <br> on a line of its
 * own ("<br><br>", "<div><br></div>"), or a paragraph of no-break spaces. A blank line
 * is where a pasted header block ends.
 */
static void blank_line(walk *w)
{
    if (w->out->len > 0 && at_line_start(w->out))
        g_string_append_c(w->out, '\n');
    w->space = false;
    w->nbsp = false;
}

/* The space owed before visible text, unless the line has just begun. */
static void pay_space(walk *w)
{
    if (w->space && !at_line_start(w->out))
        g_string_append_c(w->out, ' ');
    w->space = false;
}

/* Source line breaks and runs of blanks are layout: one space, as a browser shows. */
static void append_flowing(walk *w, const char *t)
{
    for (const char *p = t; *p != '\0';) {
        size_t n = space_len(p);
        if (n > 0) {
            w->space = true;
            w->nbsp = w->nbsp || (n == 2 && at_line_start(w->out));
            p += n;
            continue;
        }
        pay_space(w);
        w->nbsp = false;
        g_string_append_c(w->out, *p++);
    }
}

/* Inside <pre> the layout is the content: line breaks and indentation stay. */
static void append_pre(walk *w, const char *t)
{
    pay_space(w);
    for (const char *p = t; *p != '\0'; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        if (space_len(p) == 2) {
            g_string_append_c(w->out, ' ');
            p++;
            continue;
        }
        g_string_append_c(w->out, *p == '\r' ? '\n' : *p);
    }
}

/* @s without "http://" or "https://" in front and '/' at the end: @n is its length. */
static const char *bare_url(const char *s, size_t *n)
{
    while (g_ascii_isspace(*s))
        s++;
    if (g_ascii_strncasecmp(s, "http://", 7) == 0)
        s += 7;
    else if (g_ascii_strncasecmp(s, "https://", 8) == 0)
        s += 8;
    size_t len = strlen(s);
    while (len > 0 && (g_ascii_isspace(s[len - 1]) || s[len - 1] == '/'))
        len--;
    *n = len;
    return s;
}

/* A link whose text is its target: a mail client made a link of a name it saw in the
 * text ("outgoing.example.net" in a pasted Received line); repeating it as " <…>"
 * would put the target inside the header field. */
static bool shows_target(const xmlNode *n, const char *href)
{
    xmlChar *content = xmlNodeGetContent(n);
    if (content == NULL)
        return false;
    size_t tn, hn;
    const char *t = bare_url((const char *) content, &tn);
    const char *h = bare_url(href, &hn);
    bool same = tn == hn && g_ascii_strncasecmp(t, h, tn) == 0;
    xmlFree(content);
    return same;
}

/* A link's target after its text, "text <http://…>", so URLs survive as text. */
static void append_href(walk *w, const xmlNode *n)
{
    static const char *const link[] = {"a"};
    if (!named(n, link, 1))
        return;
    xmlChar *href = xmlGetProp((xmlNode *) n, (const xmlChar *) "href");
    if (href == NULL)
        return;
    const char *h = (const char *) href;
    bool web =
        g_ascii_strncasecmp(h, "http://", 7) == 0 || g_ascii_strncasecmp(h, "https://", 8) == 0;
    if (web && !shows_target(n, h)) {
        w->space = true;
        pay_space(w);
        g_string_append_printf(w->out, "<%s>", h);
    }
    xmlFree(href);
}

/* The walk descends into @n (an element with children that is not skipped): a
 * <pre> starts on a line of its own, as the lines inside it are the content. */
static void enter(walk *w, const xmlNode *n)
{
    if (!is_pre(n))
        return;
    w->pre++;
    newline(w);
}

/* Called when the walk is done with @n and everything inside it. */
static void leave(walk *w, const xmlNode *n)
{
    append_href(w, n);
    if (is_pre(n) && n->children != NULL && w->pre > 0)
        w->pre--;
    if (is_br(n) || (w->nbsp && is_paragraph(n)))
        blank_line(w);
    if (breaks_line(n))
        newline(w);
    if (is_hr(n)) {
        /* a rule, as the text copies write it: Outlook separates the forwarded
         * message's block with one, and so ends the header pasted above it */
        g_string_append(w->out, "________________________________\n");
    }
}

static void visit_text(walk *w, const xmlNode *n)
{
    if (n->type != XML_TEXT_NODE || n->content == NULL)
        return;
    if (w->pre > 0)
        append_pre(w, (const char *) n->content);
    else
        append_flowing(w, (const char *) n->content);
}

char *fbl_html_to_text(const char *html, size_t len)
{
    if (len > FBL_HTML_MAX_BYTES)
        len = FBL_HTML_MAX_BYTES;
    walk w = {.out = g_string_new(NULL)};
    int opts = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
               HTML_PARSE_COMPACT;
    g_autoptr(GString) src = len > 0 ? escape_addresses(html, len) : NULL;
    htmlDocPtr doc =
        src != NULL ? htmlReadMemory(src->str, (int) src->len, NULL, "UTF-8", opts) : NULL;
    if (doc == NULL)
        return g_string_free(w.out, FALSE);
    xmlNode *root = (xmlNode *) doc;
    xmlNode *n = doc->children;
    while (n != NULL) {
        visit_text(&w, n);
        if (n->children != NULL && n->type == XML_ELEMENT_NODE && !is_skipped(n)) {
            enter(&w, n);
            n = n->children;
            continue;
        }
        leave(&w, n);
        while (n != NULL && n != root && n->next == NULL) {
            n = n->parent;
            if (n != NULL && n != root)
                leave(&w, n);
        }
        n = (n != NULL && n != root) ? n->next : NULL;
    }
    xmlFreeDoc(doc);
    return g_string_free(w.out, FALSE);
}
