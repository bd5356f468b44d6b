/*
 * vendor_http.c - the http-json adapter (see vendor.h): one gzip'd JSON batch
 * per request, the batch's idempotency key in a header and in the body, every
 * report's id in its document, so the vendor can drop what it has seen.
 */
#define G_LOG_DOMAIN "fbl-vendor"
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>

#include "sink/vendor_internal.h"

#define GZIP_LEVEL 6

static bool http_wants_mail(const fbl_vendor *v)
{
    return fbl_vendor_get_options(v)->include_raw;
}

/* SHA-256 of the vendor's name and the batch's report ids: the same batch, the same key. */
static char *batch_key(const char *vendor, fbl_vendor_work **works, guint n)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(sum, (const guchar *) vendor, (gssize) strlen(vendor));
    for (guint i = 0; i < n; i++) {
        g_checksum_update(sum, (const guchar *) "\n", 1);
        g_checksum_update(sum, (const guchar *) works[i]->item->id,
                          (gssize) strlen(works[i]->item->id));
    }
    return g_strdup(g_checksum_get_string(sum));
}

/* (transfer full) @len bytes gzip'd, or NULL when zlib failed. */
static GBytes *gzip_bytes(const char *data, size_t len)
{
    g_autoptr(GZlibCompressor) z = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, GZIP_LEVEL);
    g_autoptr(GByteArray) out = g_byte_array_sized_new((guint) MIN(len / 3 + 64, G_MAXUINT));
    guint8 buf[16384];
    size_t done = 0;
    for (;;) {
        gsize read = 0, written = 0;
        g_autoptr(GError) error = NULL;
        GConverterResult res =
            g_converter_convert(G_CONVERTER(z), data + done, len - done, buf, sizeof buf,
                                G_CONVERTER_INPUT_AT_END, &read, &written, &error);
        if (res == G_CONVERTER_ERROR) {
            g_warning("gzip failed: %s", error->message);
            return NULL;
        }
        done += read;
        g_byte_array_append(out, buf, (guint) written);
        if (res == G_CONVERTER_FINISHED)
            break;
    }
    return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

/* One request: @works as one batch. */
static void plan_batch(fbl_vendor *v, fbl_vendor_work **works, guint n, GPtrArray *out)
{
    const fbl_vendor_options *o = fbl_vendor_get_options(v);
    g_autofree char *key = batch_key(o->name, works, n);
    json_t *reports = json_array();
    for (guint i = 0; i < n; i++) {
        fbl_vendor_work *w = works[i];
        if (o->include_raw && w->message != NULL &&
            json_object_get(w->doc, "raw_message") == NULL) {
            gsize len = 0;
            const guchar *data = g_bytes_get_data(w->message, &len);
            g_autofree char *b64 = g_base64_encode(data, len);
            (void) json_object_set_new(w->doc, "raw_message", json_string(b64));
        }
        (void) json_array_append(reports, w->doc);
    }
    json_t *body = json_pack("{s:i, s:s, s:o}", "v", 1, "batch", key, "reports", reports);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    size_t len = text != NULL ? strlen(text) : 0;
    GBytes *gz = text != NULL ? gzip_bytes(text, len) : NULL;
    bool ok = true;
    struct curl_slist *h = NULL;
    h = fbl_vendor_add_header(h, "Content-Type", "application/json", &ok);
    h = fbl_vendor_add_header(h, "Idempotency-Key", key, &ok);
    if (o->secret != NULL) {
        g_autofree char *bearer = g_strdup_printf("Bearer %s", o->secret);
        h = fbl_vendor_add_header(h, "Authorization", bearer, &ok);
        explicit_bzero(bearer, strlen(bearer));
    }
    if (gz != NULL) {
        h = fbl_vendor_add_header(h, "Content-Encoding", "gzip", &ok);
        free(text);
    } else {
        gz = g_bytes_new_take(g_strdup(text != NULL ? text : ""), len);
        free(text);
    }
    fbl_vendor_request *r = fbl_vendor_request_new(v, works, n, o->url, h, gz);
    r->splittable = true;
    if (!ok && r->easy != NULL) {
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        g_strlcpy(r->errbuf, "out of memory for headers", sizeof r->errbuf);
    }
    g_ptr_array_add(out, r);
}

/* Batches of batch_size; a split (n below it) gives one request. */
static void http_plan(fbl_vendor *v, fbl_vendor_work **works, guint n, GPtrArray *out)
{
    guint size = MAX(fbl_vendor_get_options(v)->batch_size, 1);
    for (guint i = 0; i < n; i += size)
        plan_batch(v, works + i, MIN(size, n - i), out);
}

const fbl_vendor_ops fbl_vendor_http_ops = {
    .type = "http-json",
    .wants_mail = http_wants_mail,
    .plan = http_plan,
    .judge = NULL,
};
