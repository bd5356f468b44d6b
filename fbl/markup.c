/* markup.c - text from the database made safe inside HTML and SVG (see markup.h) */
#include "fbl/markup.h"

static void append_char(GString *out, gunichar c)
{
    switch (c) {
    case '&':
        g_string_append(out, "&amp;");
        return;
    case '<':
        g_string_append(out, "&lt;");
        return;
    case '>':
        g_string_append(out, "&gt;");
        return;
    case '"':
        g_string_append(out, "&quot;");
        return;
    case '\'':
        g_string_append(out, "&#39;");
        return;
    default:
        break;
    }
    /* Controls would be parse errors (or invisible tricks) in the document. */
    if ((c < 0x20 && c != '\t' && c != '\n') || (c >= 0x7f && c < 0xa0))
        c = 0xfffd;
    g_string_append_unichar(out, c);
}

void fbl_markup_append_escaped(GString *out, const char *text, guint max_chars)
{
    if (text == NULL)
        return;
    g_autofree char *valid = g_utf8_make_valid(text, -1);
    guint n = 0;
    for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
        if (max_chars != 0 && n + 1 == max_chars && *g_utf8_next_char(p) != '\0') {
            g_string_append(out, "\u2026");
            return;
        }
        append_char(out, g_utf8_get_char(p));
        n++;
    }
}
