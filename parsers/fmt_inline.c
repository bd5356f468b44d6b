/*
 * fmt_inline.c - spam forwarded inline: the forwarded header block and the
 * text below it, recovered from the forward's body (inline.h). The text
 * part is read first; the HTML copy (html.h) is used when it gives the better
 * block: a pasted source where the text gave a forward's block only, else
 * more fields, or as many without repairs, or the text copy had none. (Web
 * mailers keep a pasted header's line breaks in the HTML and lose them in the
 * text, or the other way round.) Recovered reports carry a
 * warning: the headers are what the forwarding client chose to show.
 * The forward's own Received chain is the reporter's transport and is never
 * read for the source.
 */
#include <string.h>

#include "parsers/html.h"
#include "parsers/inline.h"
#include "parsers/parse_internal.h"

/* A body part (not an attachment): the first text/plain, the first text/html as text. */
static void take_text(GMimeObject *obj, char **plain, char **html)
{
    if (!GMIME_IS_PART(obj) || g_mime_part_get_filename(GMIME_PART(obj)) != NULL)
        return;
    if (*plain == NULL && fbl_mime_is_type(obj, "text", "plain")) {
        *plain = fbl_mime_part_text(GMIME_PART(obj), NULL);
    } else if (*html == NULL && fbl_mime_is_type(obj, "text", "html")) {
        g_autofree char *markup = fbl_mime_part_text(GMIME_PART(obj), NULL);
        *html = fbl_html_to_text(markup, strlen(markup));
    }
}

/* The first text/plain and text/html bodies of the mail (not attachments). */
static void body_texts(GMimeMessage *m, char **plain, char **html)
{
    g_autoptr(GPtrArray) leaves = fbl_mime_leaves(m);
    for (guint i = 0; i < leaves->len && (*plain == NULL || *html == NULL); i++)
        take_text(g_ptr_array_index(leaves, i), plain, html);
}

/*
 * The HTML copy wins when it is the better recovery: a pasted source where the text
 * gave only a forward's block, else more fields, or as many without repairs.
 */
static bool html_better(const fbl_inline *text, bool t, const fbl_inline *html, bool h)
{
    if (!h)
        return false;
    if (!t)
        return true;
    if (html->full_source != text->full_source)
        return html->full_source;
    return html->headers > text->headers ||
           (html->headers == text->headers && text->repaired && !html->repaired);
}

bool fbl_fmt_inline(fbl_parse_ctx *c)
{
    g_autofree char *plain = NULL, *html = NULL;
    body_texts(c->mail, &plain, &html);
    fbl_inline from_text = {0}, from_html = {0};
    bool t = plain != NULL && fbl_inline_recover(plain, strlen(plain), &from_text);
    bool h = html != NULL && fbl_inline_recover(html, strlen(html), &from_html);
    if (!t && !h)
        return false;
    fbl_inline *best = html_better(&from_text, t, &from_html, h) ? &from_html : &from_text;
    fbl_original orig = {0};
    (void) fbl_parse_load_bytes(c, best->message->str, best->message->len, 1, &orig);
    bool ok = orig.message != NULL;
    if (ok) {
        fbl_report *r = fbl_parse_new_report(c, FBL_FORMAT_INLINE, c->mail, &orig);
        fbl_report_add_warning(r, best->full_source ? "inline: message recovered from pasted source"
                                                    : "inline: headers recovered from a forward; "
                                                      "transport headers are missing");
        if (best->repaired)
            fbl_report_add_warning(r, "inline: forwarded header lines were collapsed or "
                                      "wrapped and have been split again");
        fbl_parse_finish_report(c, r, orig.message);
    }
    fbl_original_clear(&orig);
    fbl_inline_clear(&from_text);
    fbl_inline_clear(&from_html);
    return ok;
}
