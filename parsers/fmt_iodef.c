/*
 * fmt_iodef.c - a report relayed inside IODEF (RFC 7970): national abuse hubs
 * (AbuseHUB) and some providers pass a complaint on as an incident document
 * whose Record holds the original report mail whole ("original report", a
 * CDATA RecordItem). That mail is read in the envelope's place: its formats
 * decide the reports, its sender is the reporter, and the hub that relayed it
 * is reporter.via.
 *
 * The XML is read with libxml2 without the network, without a DTD and without
 * entity substitution (no external entity can be fetched or expanded), within
 * libxml2's default size limits; only the first document part is looked at.
 */
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "parsers/parse_internal.h"

#define IODEF_MAX_BYTES (4 * 1024 * 1024)

/* The first application/xml or text/xml part that is an IODEF document, decoded. */
static GByteArray *iodef_part(GMimeMessage *m)
{
    g_autoptr(GPtrArray) leaves = fbl_mime_leaves(m);
    for (guint i = 0; i < leaves->len; i++) {
        GMimeObject *obj = g_ptr_array_index(leaves, i);
        if (!GMIME_IS_PART(obj) ||
            (!fbl_mime_is_type(obj, "application", "xml") && !fbl_mime_is_type(obj, "text", "xml")))
            continue;
        GByteArray *bytes = fbl_mime_part_bytes(GMIME_PART(obj));
        if (bytes->len <= IODEF_MAX_BYTES && fbl_mime_bytes_contain(bytes, 4096, "IODEF-Document"))
            return bytes;
        g_byte_array_unref(bytes);
    }
    return NULL;
}

static bool is_original_report(xmlNode *n)
{
    if (n->type != XML_ELEMENT_NODE || xmlStrcmp(n->name, (const xmlChar *) "RecordItem") != 0)
        return false;
    xmlChar *meaning = xmlGetProp(n, (const xmlChar *) "meaning");
    bool yes = meaning != NULL && strstr((const char *) meaning, "original") != NULL;
    xmlFree(meaning);
    return yes;
}

/* The text of the first "original report" RecordItem, walking without recursion. */
static char *original_report(xmlNode *root)
{
    for (xmlNode *n = root; n != NULL;) {
        if (is_original_report(n)) {
            xmlChar *text = xmlNodeGetContent(n);
            char *out = text != NULL ? g_strdup((const char *) text) : NULL;
            xmlFree(text);
            return out;
        }
        if (n->children != NULL) {
            n = n->children;
            continue;
        }
        while (n != NULL && n->next == NULL && n != root)
            n = n->parent;
        n = n != NULL && n != root ? n->next : NULL;
    }
    return NULL;
}

bool fbl_fmt_iodef(fbl_parse_ctx *c)
{
    g_autoptr(GByteArray) xml = iodef_part(c->mail);
    if (xml == NULL)
        return false;
    xmlDoc *doc = xmlReadMemory((const char *) xml->data, (int) xml->len, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    g_autofree char *report = doc != NULL ? original_report(xmlDocGetRootElement(doc)) : NULL;
    xmlFreeDoc(doc);
    if (report == NULL)
        return false;
    fbl_original inner = {0};
    if (!fbl_parse_load_bytes(c, report, strlen(report), 1, &inner))
        return false;
    g_autofree char *hub = fbl_parse_sender(c->mail);
    g_ptr_array_add(c->kept, g_object_ref(c->mail)); /* the envelope outlives the swap */
    GMimeMessage *envelope = c->mail;
    c->mail = inner.message; /* the context holds the reference now */
    g_ptr_array_add(c->kept, g_object_ref(c->mail));
    fbl_parse_detect_inner(c);
    c->mail = envelope;
    g_object_unref(inner.message);
    for (guint i = 0; i < c->result->reports->len; i++) {
        fbl_report *r = g_ptr_array_index(c->result->reports, i);
        if (r->reporter.via == NULL && g_strcmp0(hub, r->reporter.address) != 0)
            r->reporter.via = g_strdup(hub);
    }
    return true;
}
