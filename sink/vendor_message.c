/*
 * vendor_message.c - the reported message inside a stored report mail (see
 * fbl_vendor_reported_message in vendor.h)
 *
 * The mail is loaded with the parsers' bounded loader (parsers/mime.h) and its
 * tree walked depth-first in document order with an explicit stack. Embedded
 * messages are message/rfc822 parts (parsed, or left encoded by GMime),
 * *.eml attachments and headers-only parts; one that holds another embedded
 * message is a wrapper (a forwarded report), and the innermost ones count.
 */
#define G_LOG_DOMAIN "fbl-vendor"
#include <string.h>

#include "parsers/mime.h"
#include "sink/vendor.h"

/* Entities visited at most; the parsers' default max_mime_parts. */
#define MAX_VISITS FBL_DEFAULT_MAX_MIME_PARTS

typedef struct found {
    GMimeObject *object; /* borrowed from the tree */
    int owner;           /* index of the embedded message holding it, or -1 */
    bool wrapper;
} found;

typedef struct frame {
    GMimeObject *object;
    int owner;
} frame;

static bool is_headers_only(GMimeContentType *ct)
{
    const char *sub = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;
    return sub != NULL && g_ascii_strcasecmp(sub, "rfc822-headers") == 0;
}

static bool is_embedded(GMimeObject *obj)
{
    if (GMIME_IS_MESSAGE_PART(obj))
        return true;
    if (!GMIME_IS_PART(obj))
        return false;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (ct != NULL && g_mime_content_type_is_type(ct, "message", "rfc822"))
        return true; /* base64 message/rfc822: GMime leaves it a part */
    if (is_headers_only(ct))
        return true;
    const char *name = g_mime_part_get_filename(GMIME_PART(obj));
    g_autofree char *lower = name != NULL ? g_ascii_strdown(name, -1) : NULL;
    return lower != NULL && g_str_has_suffix(lower, ".eml");
}

/* The bytes of an embedded message: written out, or decoded. */
static GBytes *bytes_of(GMimeObject *obj)
{
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m == NULL)
            return NULL;
        GByteArray *buf = g_byte_array_new();
        g_autoptr(GMimeStream) s = g_mime_stream_mem_new_with_byte_array(buf);
        g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
        if (g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, s) < 0) {
            g_byte_array_unref(buf);
            return NULL;
        }
        return g_byte_array_free_to_bytes(buf);
    }
    GByteArray *decoded = fbl_mime_part_bytes(GMIME_PART(obj));
    return g_byte_array_free_to_bytes(decoded);
}

/* Push @obj's children, last first, so they come off the stack in order. */
static void push_children(GArray *stack, GMimeObject *obj, int owner)
{
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        for (int i = g_mime_multipart_get_count(mp); i > 0; i--) {
            frame f = {g_mime_multipart_get_part(mp, i - 1), owner};
            g_array_append_val(stack, f);
        }
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        GMimeObject *body = m != NULL ? g_mime_message_get_mime_part(m) : NULL;
        if (body != NULL) {
            frame f = {body, owner};
            g_array_append_val(stack, f);
        }
    }
}

/* The innermost embedded messages of @top, in document order. */
static GArray *find_embedded(GMimeObject *top)
{
    GArray *all = g_array_new(FALSE, TRUE, sizeof(found));
    g_autoptr(GArray) stack = g_array_new(FALSE, FALSE, sizeof(frame));
    frame first = {top, -1};
    g_array_append_val(stack, first);
    for (unsigned visits = 0; stack->len > 0 && visits < MAX_VISITS; visits++) {
        frame f = g_array_index(stack, frame, stack->len - 1);
        g_array_set_size(stack, stack->len - 1);
        int owner = f.owner;
        if (is_embedded(f.object)) {
            found e = {f.object, f.owner, false};
            if (f.owner >= 0)
                g_array_index(all, found, f.owner).wrapper = true;
            g_array_append_val(all, e);
            owner = (int) all->len - 1;
        }
        push_children(stack, f.object, owner);
    }
    return all;
}

GBytes *fbl_vendor_reported_message(const void *mail, size_t len, const char *format, unsigned part)
{
    fbl_parse_options limits;
    fbl_parse_options_init(&limits);
    fbl_mime_budget budget;
    fbl_mime_budget_init(&budget, &limits);
    /* @mail outlives msg; what is returned is a copy (bytes_of()) */
    g_autoptr(GMimeMessage) msg = fbl_mime_load_in_place(&budget, mail, len);
    fbl_mime_budget_clear(&budget);
    GMimeObject *top = msg != NULL ? g_mime_message_get_mime_part(msg) : NULL;
    if (top == NULL)
        return g_bytes_new(mail, len);
    GBytes *out = NULL;
    if (g_strcmp0(format, "raw") == 0) {
        /* The mail is the spam, unless it wraps it whole. */
        if (GMIME_IS_MESSAGE_PART(top))
            out = bytes_of(top);
        return out != NULL ? out : g_bytes_new(mail, len);
    }
    g_autoptr(GArray) all = find_embedded(top);
    unsigned inner = 0;
    for (guint i = 0; i < all->len && out == NULL; i++) {
        const found *e = &g_array_index(all, found, i);
        if (e->wrapper)
            continue;
        if (inner++ == part)
            out = bytes_of(e->object);
    }
    for (guint i = 0; i < all->len && out == NULL; i++) {
        const found *e = &g_array_index(all, found, i);
        if (!e->wrapper)
            out = bytes_of(e->object); /* the part index is off: the first one */
    }
    return out != NULL ? out : g_bytes_new(mail, len);
}
