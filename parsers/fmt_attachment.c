/*
 * fmt_attachment.c - spam attached to a report mail: one report per attached
 * message, in the order they appear.
 *
 * Attached means: a message/rfc822 part (parsed or encoded), a *.eml file
 * under any content type, a text/rfc822-headers part, or a *.eml inside an
 * Outlook TNEF (winmail.dat) container, read with libytnef.
 *
 * Microsoft's legacy JMRP is this shape too (staff@hotmail.com, multipart/
 * mixed, the spam as message/rfc822 carrying X-HmXmrOriginalRecipient): its
 * reports get format jmrp. A JMRP report that is itself forwarded as an
 * attachment is opened: the spam inside it is the reported message.
 */
#include <string.h>

#include <stdio.h> /* ytnef.h uses FILE without including it */
#include <ytnef.h>

#include "parsers/ip.h"
#include "parsers/parse_internal.h"

#define JMRP_SENDER "staff@hotmail.com"

/* JMRP names the source it saw: "complaint about message from 192.0.2.1". */
static void take_jmrp_source(fbl_report *r, GMimeMessage *carrier)
{
    const char *s = g_mime_message_get_subject(carrier);
    const char *p = s != NULL ? strstr(s, "complaint about message from ") : NULL;
    if (p == NULL)
        return;
    char *ip = fbl_ip_canonical(p + strlen("complaint about message from "));
    if (ip == NULL)
        return;
    r->source_ip = ip;
    r->source_ip_from = g_strdup("jmrp");
}

static bool is_jmrp_spam(GMimeMessage *m)
{
    return fbl_mime_header(GMIME_OBJECT(m), "X-HmXmrOriginalRecipient") != NULL;
}

static bool is_tnef(GMimeObject *obj)
{
    const char *name = GMIME_IS_PART(obj) ? g_mime_part_get_filename(GMIME_PART(obj)) : NULL;
    return fbl_mime_is_type(obj, "application", "ms-tnef") ||
           fbl_mime_is_type(obj, "application", "vnd.ms-tnef") ||
           (name != NULL && g_ascii_strcasecmp(name, "winmail.dat") == 0);
}

/* A DMARC aggregate report is never a reported message, even attached to a complaint. */
static bool is_aggregate_report(GMimeMessage *m)
{
    const char *subject = g_mime_message_get_subject(m);
    return subject != NULL && g_ascii_strncasecmp(g_strchug((char *) subject),
                                                  "Report domain:", strlen("Report domain:")) == 0;
}

/*
 * The messages attached to @m (its MIME tree, without opening the messages):
 * when there are any, @m is a forwarded complaint (a JMRP report, a customer's
 * complaint an abuse desk passes on, a certified-mail envelope) and they are
 * what it reports. @out: fbl_original * (owned).
 */
static void attached_messages(fbl_parse_ctx *c, GMimeMessage *m, unsigned depth, GPtrArray *out,
                              unsigned *aggregates)
{
    g_autoptr(GPtrArray) leaves = fbl_mime_leaves(m);
    for (guint i = 0; i < leaves->len && !c->budget.tripped; i++) {
        GMimeObject *obj = g_ptr_array_index(leaves, i);
        fbl_original *inner = g_new0(fbl_original, 1);
        if (obj != g_mime_message_get_mime_part(m) &&
            fbl_parse_load_original(c, obj, depth + 1, inner)) {
            if (!is_aggregate_report(inner->message)) {
                g_ptr_array_add(out, inner);
                continue;
            }
            (*aggregates)++;
        }
        fbl_original_clear(inner);
        g_free(inner);
    }
}

static void original_free(gpointer p)
{
    fbl_original_clear(p);
    g_free(p);
}

/* One report about @orig, carried by @carrier (whose From is the reporter). */
static void report_one(fbl_parse_ctx *c, GMimeMessage *carrier, fbl_original *orig)
{
    fbl_format format =
        fbl_parse_sender_is(carrier, JMRP_SENDER) ? FBL_FORMAT_JMRP : FBL_FORMAT_ATTACHMENT;
    if (orig->message != NULL && is_jmrp_spam(orig->message))
        format = FBL_FORMAT_JMRP;
    fbl_report *r = fbl_parse_new_report(c, format, carrier, orig);
    if (format == FBL_FORMAT_JMRP)
        take_jmrp_source(r, carrier);
    if (carrier != c->mail && r->reporter.via == NULL) {
        /* A forwarded complaint: who passed it on to us. */
        g_autofree char *relay = fbl_parse_sender(c->mail);
        if (relay != NULL && g_strcmp0(relay, r->reporter.address) != 0)
            r->reporter.via = g_steal_pointer(&relay);
    }
    GMimeObject *co = GMIME_OBJECT(c->mail);
    const char *agent = fbl_mime_header(co, "User-Agent");
    if (agent == NULL)
        agent = fbl_mime_header(co, "X-Mailer");
    if (agent != NULL && g_utf8_validate(agent, -1, NULL))
        r->reporter.user_agent = g_strdup(agent);
    fbl_parse_finish_report(c, r, orig->message);
}

/*
 * An attached message is reported, unless it is a forwarded complaint that
 * carries messages of its own (one level down): those are reported instead,
 * the forward being their carrier. Only a whole message has attachments: what
 * follows a headers-only part's header block is not its body.
 */
static void add_report(fbl_parse_ctx *c, fbl_original *orig, unsigned depth)
{
    g_autoptr(GPtrArray) inner = g_ptr_array_new_with_free_func(original_free);
    unsigned aggregates = 0;
    if (orig->message != NULL && !orig->headers_only)
        attached_messages(c, orig->message, depth + 1, inner, &aggregates);
    if (inner->len == 0 && aggregates > 0)
        return; /* a forwarded complaint whose evidence is DMARC aggregates: no spam in it */
    if (inner->len == 0) {
        report_one(c, c->mail, orig);
        return;
    }
    /* Owned while used: orig holds the only reference to a forward parsed from bytes. */
    g_autoptr(GMimeMessage) forward = g_object_ref(orig->message);
    for (guint i = 0; i < inner->len; i++)
        report_one(c, forward, g_ptr_array_index(inner, i));
}

/* Mails inside a TNEF container: attachments named *.eml, or that parse as mail. */
#define TNEF_SIGNATURE      0x223E9F78u
#define TNEF_MAX_ATTRIBUTES 10000

static guint32 le32(const guint8 *p)
{
    return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

/*
 * The TNEF stream reduced to what fbl reads - the version, and each
 * attachment's start, title and data - after checking its framing: the
 * signature, and every attribute's level, length and checksum. libytnef
 * prints to stdout on malformed input and parses MAPI property blocks fbl
 * has no use for: it only ever sees this clean, minimal copy. NULL when the
 * framing is broken.
 */
static GByteArray *tnef_minimal(const guint8 *d, size_t n)
{
    static const guint32 kept[] = {0x00089006 /* attTnefVersion */,
                                   0x00069002 /* attAttachRenddata */,
                                   0x00018010 /* attAttachTitle */, 0x0006800F /* attAttachData */};
    if (n < 6 || le32(d) != TNEF_SIGNATURE)
        return NULL;
    GByteArray *out = g_byte_array_new();
    g_byte_array_append(out, d, 6);
    size_t p = 6;
    for (unsigned count = 0; p < n; count++) {
        if (count >= TNEF_MAX_ATTRIBUTES || n - p < 9 || (d[p] != 1 && d[p] != 2))
            goto broken;
        guint32 id = le32(d + p + 1), len = le32(d + p + 5);
        if (len == 0 || n - p - 9 < (size_t) len + 2)
            goto broken;
        const guint8 *data = d + p + 9;
        guint32 sum = 0;
        for (guint32 i = 0; i < len; i++)
            sum += data[i];
        if ((sum & 0xffff) != ((guint32) data[len] | (guint32) data[len + 1] << 8))
            goto broken;
        for (size_t k = 0; k < G_N_ELEMENTS(kept); k++) {
            if (id == kept[k])
                g_byte_array_append(out, d + p, 9 + len + 2);
        }
        p += 9 + (size_t) len + 2;
    }
    return out;
broken:
    g_byte_array_unref(out);
    return NULL;
}

static void take_tnef(fbl_parse_ctx *c, GMimePart *part, unsigned depth)
{
    g_autoptr(GByteArray) raw = fbl_mime_part_bytes(part);
    g_autoptr(GByteArray) bytes = tnef_minimal(raw->data, raw->len);
    if (bytes == NULL || bytes->len > (guint) G_MAXLONG) {
        fbl_strv_add_unique(c->budget.warnings, "tnef: winmail.dat is not well-formed TNEF");
        return;
    }
    TNEFStruct tnef;
    TNEFInitialize(&tnef);
    tnef.Debug = 0; /* TNEFInitialize() leaves it unset; non-zero prints to stdout */
    if (TNEFParseMemory(bytes->data, (long) bytes->len, &tnef) == 0) {
        for (Attachment *a = tnef.starting_attach.next; a != NULL && !c->budget.tripped;
             a = a->next) {
            if (a->FileData.data == NULL || a->FileData.size == 0)
                continue;
            fbl_original orig = {0};
            if (fbl_parse_load_bytes(c, (const char *) a->FileData.data, a->FileData.size,
                                     depth + 1, &orig))
                add_report(c, &orig, depth + 1);
            fbl_original_clear(&orig);
        }
    }
    TNEFFree(&tnef);
}

/* Two attachments of one mail that are the same message (one Message-ID, or one
 * sender, subject and date when it has none): a .eml and its headers as .txt. */
static bool same_message(const fbl_message *a, const fbl_message *b)
{
    if (a->message_id != NULL || b->message_id != NULL)
        return g_strcmp0(a->message_id, b->message_id) == 0;
    return a->date != NULL && g_strcmp0(a->date, b->date) == 0 &&
           g_strcmp0(a->from, b->from) == 0 && g_strcmp0(a->subject, b->subject) == 0;
}

/* The fuller of two copies: a whole message over its headers, the larger one. */
static bool fuller(const fbl_report *a, const fbl_report *b)
{
    if (a->message.headers_only != b->message.headers_only)
        return !a->message.headers_only;
    return a->message.size > b->message.size;
}

/*
 * One report per reported message: copies of one message attached twice (the
 * .eml and a .txt of its source, the same file attached again) become the
 * fullest copy, in the place of the first; the parts are numbered again.
 */
static void merge_copies(fbl_parse_ctx *c)
{
    GPtrArray *reports = c->result->reports;
    for (guint i = 0; i < reports->len; i++) {
        for (guint j = i + 1; j < reports->len;) {
            fbl_report *a = g_ptr_array_index(reports, i), *b = g_ptr_array_index(reports, j);
            if (!same_message(&a->message, &b->message)) {
                j++;
                continue;
            }
            if (fuller(b, a)) {
                reports->pdata[i] = b;
                reports->pdata[j] = a;
            }
            g_ptr_array_remove_index(reports, j); /* frees the thinner copy */
        }
    }
    for (guint i = 0; i < reports->len; i++)
        fbl_report_set_ids(g_ptr_array_index(reports, i), c->result->mail_id, i);
}

typedef struct frame {
    GMimeObject *object;
    unsigned depth;
} frame;

/* Pushes @mp's parts so that the first is visited first. */
static void push_children(GArray *stack, GMimeMultipart *mp, unsigned depth)
{
    for (int i = g_mime_multipart_get_count(mp) - 1; i >= 0; i--) {
        frame child = {g_mime_multipart_get_part(mp, i), depth + 1};
        g_array_append_val(stack, child);
    }
}

/* A leaf part: a TNEF file's attachments, or the part itself as an original. */
static void take_leaf(fbl_parse_ctx *c, frame f)
{
    if (is_tnef(f.object) && GMIME_IS_PART(f.object)) {
        take_tnef(c, GMIME_PART(f.object), f.depth);
        return;
    }
    fbl_original orig;
    if (fbl_parse_load_original(c, f.object, f.depth, &orig))
        add_report(c, &orig, f.depth);
    fbl_original_clear(&orig);
}

bool fbl_fmt_attachment(fbl_parse_ctx *c)
{
    GMimeObject *top = g_mime_message_get_mime_part(c->mail);
    if (top == NULL || !GMIME_IS_MULTIPART(top))
        return false; /* a single part carries no attachment */
    g_autoptr(GArray) stack = g_array_new(FALSE, FALSE, sizeof(frame));
    frame first = {top, 0};
    g_array_append_val(stack, first);
    while (stack->len > 0 && !c->budget.tripped) {
        frame f = g_array_index(stack, frame, stack->len - 1);
        g_array_set_size(stack, stack->len - 1);
        if (GMIME_IS_MULTIPART(f.object))
            push_children(stack, GMIME_MULTIPART(f.object), f.depth);
        else
            take_leaf(c, f);
    }
    merge_copies(c);
    return c->result->reports->len > 0;
}
