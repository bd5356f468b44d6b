/*
 * fmt_xarf.c - X-ARF reports without an ARF wrapper: the "X-ARF: yes" mail
 * with a YAML report.txt (v0.1/v0.2), or an xarf.json (v4) attachment.
 * The evidence is a message/rfc822 part, or a text part holding a mail.
 */
#include <string.h>

#include "parsers/parse_internal.h"
#include "parsers/xarf.h"

/* "X-ARF: yes" (any case, any spacing), or pyxarf's "X-XARF: PLAIN". */
static bool has_xarf_header(GMimeMessage *m)
{
    if (fbl_mime_header(GMIME_OBJECT(m), "X-XARF") != NULL)
        return true;
    const char *v = fbl_mime_header(GMIME_OBJECT(m), "X-ARF");
    if (v == NULL)
        return false;
    while (g_ascii_isspace(*v))
        v++;
    return g_ascii_strncasecmp(v, "yes", 3) == 0;
}

static bool is_json_part(GMimeObject *obj, const char *name)
{
    return fbl_mime_is_type(obj, "application", "json") ||
           (name != NULL && g_str_has_suffix(name, ".json"));
}

typedef struct found {
    fbl_xarf *xarf;
    GMimePart *evidence_text; /* a text part after the report: maybe a mail */
    GMimeObject *evidence;    /* a message part */
} found;

/* A text part read as an X-ARF YAML report, or NULL. */
static fbl_xarf *yaml_report(GMimePart *part, const char *name, bool xarf_mail)
{
    g_autofree char *text = fbl_mime_part_text(part, NULL);
    fbl_xarf *x = fbl_xarf_parse_yaml(text, strlen(text));
    /* Without the header, only a report that says what and whom it reports. */
    bool named = name != NULL && g_ascii_strcasecmp(name, "report.txt") == 0;
    if (x != NULL && (xarf_mail || named || (x->report_type != NULL && x->source_ip != NULL)))
        return x;
    fbl_xarf_free(x);
    return NULL;
}

static void look_at(found *f, GMimeObject *obj, bool xarf_mail)
{
    if (GMIME_IS_MESSAGE_PART(obj) || fbl_mime_is_type(obj, "message", "rfc822")) {
        if (f->evidence == NULL)
            f->evidence = obj;
        return;
    }
    if (!GMIME_IS_PART(obj))
        return;
    GMimePart *part = GMIME_PART(obj);
    const char *name = g_mime_part_get_filename(part);
    if (f->xarf == NULL && is_json_part(obj, name)) {
        g_autoptr(GByteArray) b = fbl_mime_part_bytes(part);
        f->xarf = fbl_xarf_parse_json((const char *) b->data, b->len);
        return;
    }
    if (!fbl_mime_is_type(obj, "text", "*"))
        return;
    if (f->xarf == NULL)
        f->xarf = yaml_report(part, name, xarf_mail);
    else if (f->evidence_text == NULL)
        f->evidence_text = part;
}

static void load_evidence(fbl_parse_ctx *c, found *f, fbl_original *orig)
{
    if (f->evidence != NULL && fbl_parse_load_original(c, f->evidence, 1, orig))
        return;
    if (f->xarf->sample != NULL && fbl_parse_load_bytes(c, (const char *) f->xarf->sample->data,
                                                        f->xarf->sample->len, 1, orig))
        return;
    if (f->evidence_text != NULL) {
        g_autoptr(GByteArray) b = fbl_mime_part_bytes(f->evidence_text);
        (void) fbl_parse_load_bytes(c, (const char *) b->data, b->len, 1, orig);
    }
}

bool fbl_fmt_xarf(fbl_parse_ctx *c)
{
    bool xarf_mail = has_xarf_header(c->mail);
    GMimeObject *top = g_mime_message_get_mime_part(c->mail);
    found f = {0};
    if (GMIME_IS_MULTIPART(top)) {
        GMimeMultipart *mp = GMIME_MULTIPART(top);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            look_at(&f, g_mime_multipart_get_part(mp, i), xarf_mail);
    } else if (top != NULL && xarf_mail) {
        look_at(&f, top, xarf_mail);
    }
    if (f.xarf == NULL)
        return false;

    fbl_original orig = {0};
    load_evidence(c, &f, &orig);
    fbl_report *r = fbl_parse_new_report(c, FBL_FORMAT_XARF, c->mail, &orig);
    r->feedback_type = fbl_xarf_feedback_type(f.xarf);
    if (f.xarf->source_ip != NULL) {
        r->source_ip = g_strdup(f.xarf->source_ip);
        r->source_ip_from = g_strdup("xarf");
    }
    r->reporter.user_agent = g_strdup(f.xarf->user_agent);
    fbl_parse_relayed_by(r, f.xarf->reported_from);
    if (orig.message == NULL)
        fbl_report_add_warning(r, "xarf: no reported message in the evidence");
    fbl_parse_finish_report(c, r, orig.message);
    fbl_original_clear(&orig);
    fbl_xarf_free(f.xarf);
    return true;
}
