/*
 * vendor.c - the delivery engine shared by the adapters (see vendor.h)
 *
 * One send: prepare every report (redacted document, scrubbed reported
 * message), let the adapter plan its requests, run them through the multi
 * handle with at most `parallel` in flight, judge each answer, split refused
 * batches, and fold the verdicts into one outcome per report. The multi
 * handle outlives the send, so its connection cache keeps the vendor's
 * connections alive from one batch to the next.
 */
#define G_LOG_DOMAIN "fbl-vendor"
#include "sink/vendor.h"

#include <string.h>

#include "sink/vendor_internal.h"

#define MAX_RESPONSE       (64 * 1024)
#define MAX_ANSWER         500
#define BACKOFF_INITIAL_MS 1000
#define MAX_RETRY_AFTER_S  86400
#define MAX_CONNECT_MS     10000
#define POLL_MS            100

struct fbl_vendor {
    fbl_vendor_options o; /* strings owned (copied) */
    const fbl_vendor_ops *ops;
    CURLM *multi;
    unsigned backoff_ms; /* the last pause after failures; 0 after a clean send */
    unsigned pause_ms;   /* asked of the caller after the last send */
    char *auth_failure;
};

GQuark fbl_vendor_error_quark(void)
{
    return g_quark_from_static_string("fbl-vendor-error");
}

bool fbl_vendor_type_from_string(const char *name, fbl_vendor_type *type)
{
    if (g_strcmp0(name, "http-json") == 0)
        *type = FBL_VENDOR_HTTP_JSON;
    else if (g_strcmp0(name, "rspamd") == 0)
        *type = FBL_VENDOR_RSPAMD;
    else
        return false;
    return true;
}

void fbl_vendor_item_clear(fbl_vendor_item *item)
{
    g_clear_pointer(&item->answer, g_free);
    item->outcome = 0;
    item->retry_after_ms = 0;
}

/* ---- the vendor ----------------------------------------------------------- */

fbl_vendor *fbl_vendor_new(const fbl_vendor_options *options, GError **error)
{
    const fbl_vendor_options *o = options;
    const char *why = NULL;
    if (o->name == NULL || *o->name == '\0')
        why = "a vendor needs a name";
    else if (o->url == NULL ||
             (!g_str_has_prefix(o->url, "http://") && !g_str_has_prefix(o->url, "https://")))
        why = "url: expected an http:// or https:// URL";
    else if (o->type != FBL_VENDOR_HTTP_JSON && o->type != FBL_VENDOR_RSPAMD)
        why = "type: expected http-json or rspamd";
    else if (o->parallel == 0 || o->timeout_ms == 0)
        why = "parallel and timeout must be above 0";
    if (why != NULL) {
        g_set_error(error, FBL_VENDOR_ERROR, FBL_VENDOR_ERROR_OPTION, "%s", why);
        return NULL;
    }
    CURLM *multi = curl_multi_init();
    if (multi == NULL) {
        g_set_error(error, FBL_VENDOR_ERROR, FBL_VENDOR_ERROR_CURL, "curl_multi_init failed");
        return NULL;
    }
    /* HTTP/1.1: one request per connection, `parallel` connections kept open. */
    if (curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) o->parallel) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) o->parallel * 2) != CURLM_OK) {
        (void) curl_multi_cleanup(multi);
        g_set_error(error, FBL_VENDOR_ERROR, FBL_VENDOR_ERROR_CURL, "curl_multi_setopt failed");
        return NULL;
    }
    fbl_vendor *v = g_new0(fbl_vendor, 1);
    v->o = *o;
    v->o.name = g_strdup(o->name);
    v->o.url = g_strdup(o->url);
    v->o.secret = g_strdup(o->secret);
    v->o.ca_file = g_strdup(o->ca_file);
    v->o.user_agent = g_strdup(o->user_agent != NULL ? o->user_agent : "fbl");
    v->ops = o->type == FBL_VENDOR_RSPAMD ? &fbl_vendor_rspamd_ops : &fbl_vendor_http_ops;
    v->multi = multi;
    return v;
}

void fbl_vendor_free(fbl_vendor *v)
{
    if (v == NULL)
        return;
    if (curl_multi_cleanup(v->multi) != CURLM_OK)
        g_debug("curl_multi_cleanup failed");
    g_free((char *) v->o.name);
    g_free((char *) v->o.url);
    if (v->o.secret != NULL) {
        /* A secret does not linger in freed memory. */
        explicit_bzero((char *) v->o.secret, strlen(v->o.secret));
        g_free((char *) v->o.secret);
    }
    g_free((char *) v->o.ca_file);
    g_free((char *) v->o.user_agent);
    g_free(v->auth_failure);
    g_free(v);
}

const fbl_vendor_options *fbl_vendor_get_options(const fbl_vendor *v)
{
    return &v->o;
}

bool fbl_vendor_wants_mail(const fbl_vendor *v)
{
    return v->ops->wants_mail(v);
}

unsigned fbl_vendor_get_pause_ms(const fbl_vendor *v)
{
    return v->pause_ms;
}

const char *fbl_vendor_auth_failure(const fbl_vendor *v)
{
    return v->auth_failure;
}

/* ---- requests ------------------------------------------------------------- */

static size_t on_data(char *data, size_t size, size_t nmemb, void *user)
{
    fbl_vendor_request *r = user;
    size_t n = size * nmemb;
    size_t room = r->response->len < MAX_RESPONSE ? MAX_RESPONSE - r->response->len : 0;
    g_byte_array_append(r->response, (const guint8 *) data, (guint) MIN(n, room));
    return n; /* the rest is read and dropped: the status matters, not a long answer */
}

struct curl_slist *fbl_vendor_add_header(struct curl_slist *list, const char *name,
                                         const char *value, bool *ok)
{
    g_autofree char *line = g_strdup_printf("%s: %s", name, value);
    struct curl_slist *more = curl_slist_append(list, line);
    explicit_bzero(line, strlen(line)); /* it may hold a token; the list has its own copy */
    if (more == NULL) {
        *ok = false;
        return list;
    }
    return more;
}

fbl_vendor_request *fbl_vendor_request_new(fbl_vendor *v, fbl_vendor_work **works, guint n,
                                           const char *url, struct curl_slist *headers,
                                           GBytes *body)
{
    fbl_vendor_request *r = g_new0(fbl_vendor_request, 1);
    r->works = works;
    r->n = n;
    r->body = body;
    r->response = g_byte_array_new();
    bool ok = true;
    /* An empty Expect: no 100-continue round trip before large bodies. */
    headers = fbl_vendor_add_header(headers, "Expect", "", &ok);
    r->headers = headers;
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        g_strlcpy(r->errbuf, "curl_easy_init failed", sizeof r->errbuf);
        return r;
    }
    gsize len = 0;
    const char *data = g_bytes_get_data(body, &len);
    CURL *e = r->easy;
    ok = ok && curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    /* Never follow a redirect: not to another host (the token would go with it), not
     * to another scheme (file://), not even to our own: the answer says where to.
     * Should it ever be turned on, the protocols stay http and https. */
    ok = ok && curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_POSTFIELDS, data) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) v->o.timeout_ms) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                                (long) MIN(v->o.timeout_ms, MAX_CONNECT_MS)) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_USERAGENT, v->o.user_agent) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_WRITEDATA, r) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_PRIVATE, r) == CURLE_OK;
    if (v->o.ca_file != NULL)
        ok = ok && curl_easy_setopt(e, CURLOPT_CAINFO, v->o.ca_file) == CURLE_OK;
    if (!ok) {
        g_strlcpy(r->errbuf, "libcurl refused an option", sizeof r->errbuf);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    return r;
}

void fbl_vendor_request_free(fbl_vendor_request *r)
{
    if (r == NULL)
        return;
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    for (struct curl_slist *h = r->headers; h != NULL; h = h->next) /* Authorization, Password */
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(r->headers);
    g_bytes_unref(r->body);
    g_byte_array_unref(r->response);
    g_free(r);
}

/* ---- one send ------------------------------------------------------------- */

typedef struct send_state {
    fbl_vendor *v;
    GQueue queue;            /* fbl_vendor_request * not yet started */
    GPtrArray *running;      /* fbl_vendor_request * in the multi handle */
    bool halt;               /* start nothing more */
    bool trouble;            /* a failed attempt: back off */
    bool delivered;          /* a request went through */
    unsigned retry_after_ms; /* the largest Retry-After seen */
} send_state;

/* The next pause after failures: doubled, with up to 20 % jitter, capped. */
static unsigned backoff_next(unsigned current, unsigned max_ms)
{
    guint64 next = current == 0 ? BACKOFF_INITIAL_MS : (guint64) current * 2;
    next = MIN(next, (guint64) MAX(max_ms, BACKOFF_INITIAL_MS));
    next -= (guint64) g_random_int_range(0, (gint32) (next / 5) + 1);
    return (unsigned) next;
}

/* Set a report's outcome when @o is worse than what it has. */
static void set_outcome(fbl_vendor_work *w, fbl_vendor_outcome o, unsigned retry_after_ms,
                        const char *answer)
{
    fbl_vendor_item *it = w->item;
    w->verdicts++;
    if (it->outcome != 0 && o <= it->outcome)
        return;
    it->outcome = o;
    it->retry_after_ms = retry_after_ms;
    g_free(it->answer);
    it->answer = g_strdup(answer);
}

void fbl_vendor_work_refuse(fbl_vendor_work *w, const char *why)
{
    set_outcome(w, FBL_VENDOR_REFUSED, 0, why);
}

/*
 * "HTTP 400: first bytes of the answer", on one line, valid UTF-8. Any answer a
 * server can give is fine here: no body at all (204, or Content-Length: 0, when
 * the array's data is NULL), binary, invalid UTF-8, NULs; a redirect names its
 * target, which is never followed.
 */
static char *make_answer(long status, const GByteArray *body, const char *location)
{
    g_autofree char *where = NULL;
    if (location != NULL)
        where = g_strdup_printf(" (redirect to %.200s, not followed: set url to the final "
                                "address)",
                                location);
    size_t len = MIN(body->len, (guint) MAX_ANSWER);
    if (len == 0 || body->data == NULL)
        return g_strdup_printf("HTTP %ld%s", status, where != NULL ? where : "");
    g_autofree char *text = g_utf8_make_valid((const char *) body->data, (gssize) len);
    for (char *p = text; *p != '\0'; p++) {
        if ((unsigned char) *p < 0x20)
            *p = ' ';
    }
    g_strstrip(text);
    return *text != '\0'
               ? g_strdup_printf("HTTP %ld%s: %s", status, where != NULL ? where : "", text)
               : g_strdup_printf("HTTP %ld%s", status, where != NULL ? where : "");
}

static void mark_all(fbl_vendor_request *r, fbl_vendor_outcome o, unsigned retry_after_ms,
                     const char *answer)
{
    for (guint i = 0; i < r->n; i++)
        set_outcome(r->works[i], o, retry_after_ms, answer);
}

/* A refused batch in halves, at the front of the queue. */
static void split(send_state *st, fbl_vendor_request *r)
{
    g_autoptr(GPtrArray) halves = g_ptr_array_new();
    guint half = r->n / 2;
    st->v->ops->plan(st->v, r->works, half, halves);
    st->v->ops->plan(st->v, r->works + half, r->n - half, halves);
    for (guint i = halves->len; i > 0; i--)
        g_queue_push_head(&st->queue, g_ptr_array_index(halves, i - 1));
}

static fbl_vendor_verdict verdict_of_status(long status)
{
    if (status >= 200 && status < 300)
        return FBL_VERDICT_OK;
    if (status == 429)
        return FBL_VERDICT_THROTTLE;
    if (status >= 400 && status < 500 && status != 408)
        return FBL_VERDICT_REFUSED;
    return FBL_VERDICT_RETRY; /* 408, 5xx, and what no vendor should answer (1xx, 3xx) */
}

/* No answer: a timeout, a connection or TLS error. */
static void judge_no_answer(send_state *st, fbl_vendor_request *r, CURLcode code)
{
    g_autofree char *answer =
        g_strdup_printf("curl: %s", r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(code));
    g_debug("request failed vendor=%s reports=%u error=%s", st->v->o.name, r->n, answer);
    mark_all(r, FBL_VENDOR_RETRY, 0, answer);
    st->trouble = st->halt = true;
}

/* A 4xx (or what the adapter judged a refusal). */
static void judge_refusal(send_state *st, fbl_vendor_request *r, long status, const char *answer)
{
    fbl_vendor *v = st->v;
    if (status == 401 || status == 403) {
        if (v->auth_failure == NULL)
            v->auth_failure = g_strdup(answer);
        mark_all(r, FBL_VENDOR_UNSENT, 0, answer);
        st->halt = true;
        return;
    }
    bool narrows = status == 400 || status == 413 || status == 422;
    if (narrows && r->n > 1 && r->splittable) {
        g_debug("batch refused, splitting vendor=%s reports=%u %s", v->o.name, r->n, answer);
        split(st, r);
        return;
    }
    mark_all(r, FBL_VENDOR_REFUSED, 0, answer);
    if (!narrows)
        st->trouble = true; /* a 404 or 405 refuses everything: do not rush through */
}

/* Judge a finished request; @code is libcurl's result of the transfer. */
static void judge(send_state *st, fbl_vendor_request *r, CURLcode code)
{
    fbl_vendor *v = st->v;
    long status = 0;
    if (code == CURLE_OK && curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (v->o.on_response != NULL)
        v->o.on_response(v->o.name, code == CURLE_OK ? status : 0);
    if (code != CURLE_OK) {
        judge_no_answer(st, r, code);
        return;
    }
    curl_off_t retry_after = 0;
    if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK ||
        retry_after < 0)
        retry_after = 0;
    unsigned after_ms = (unsigned) MIN(retry_after, (curl_off_t) MAX_RETRY_AFTER_S) * 1000u;
    g_debug("request done vendor=%s reports=%u status=%ld", v->o.name, r->n, status);
    fbl_vendor_verdict verdict = FBL_VERDICT_DEFAULT;
    if (v->ops->judge != NULL)
        verdict = v->ops->judge(v, r, status);
    if (verdict == FBL_VERDICT_DEFAULT)
        verdict = verdict_of_status(status);
    char *location = NULL; /* borrowed from the handle */
    if (status >= 300 && status < 400 &&
        curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &location) != CURLE_OK)
        location = NULL;
    g_autofree char *answer = make_answer(status, r->response, location);
    switch (verdict) {
    case FBL_VERDICT_DEFAULT:
    case FBL_VERDICT_OK:
        mark_all(r, FBL_VENDOR_SENT, 0, NULL);
        st->delivered = true;
        return;
    case FBL_VERDICT_THROTTLE:
        mark_all(r, FBL_VENDOR_THROTTLED, after_ms, answer);
        st->retry_after_ms = MAX(st->retry_after_ms, after_ms);
        st->halt = true;
        if (after_ms == 0)
            st->trouble = true; /* no Retry-After: our own backoff */
        return;
    case FBL_VERDICT_RETRY:
        mark_all(r, FBL_VENDOR_RETRY, after_ms, answer);
        st->retry_after_ms = MAX(st->retry_after_ms, after_ms);
        st->trouble = st->halt = true;
        return;
    case FBL_VERDICT_REFUSED:
        judge_refusal(st, r, status, answer);
        return;
    }
}

/* Start queued requests up to `parallel` in flight. */
static void start_more(send_state *st)
{
    while (!st->halt && st->running->len < st->v->o.parallel && !g_queue_is_empty(&st->queue)) {
        fbl_vendor_request *r = g_queue_pop_head(&st->queue);
        CURLMcode mc = r->easy != NULL ? curl_multi_add_handle(st->v->multi, r->easy) : CURLM_OK;
        if (r->easy == NULL || mc != CURLM_OK) {
            g_autofree char *answer =
                g_strdup_printf("curl: %s", r->easy == NULL ? r->errbuf : curl_multi_strerror(mc));
            mark_all(r, FBL_VENDOR_RETRY, 0, answer);
            st->trouble = st->halt = true;
            fbl_vendor_request_free(r);
            continue;
        }
        g_ptr_array_add(st->running, r);
    }
}

/* Collect the finished transfers; false when the multi handle failed. */
static bool collect(send_state *st)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(st->v->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || priv == NULL)
            return false;
        fbl_vendor_request *r = (fbl_vendor_request *) priv;
        if (curl_multi_remove_handle(st->v->multi, easy) != CURLM_OK)
            return false;
        (void) g_ptr_array_remove_fast(st->running, r);
        judge(st, r, code);
        fbl_vendor_request_free(r);
    }
    return true;
}

/* The multi handle failed: every transfer in it is a failed attempt. */
static void abandon_running(send_state *st, const char *why)
{
    g_warning("vendor=%s curl multi failed: %s", st->v->o.name, why);
    g_autofree char *answer = g_strdup_printf("curl: %s", why);
    for (guint i = 0; i < st->running->len; i++) {
        fbl_vendor_request *r = g_ptr_array_index(st->running, i);
        (void) curl_multi_remove_handle(st->v->multi, r->easy);
        mark_all(r, FBL_VENDOR_RETRY, 0, answer);
        fbl_vendor_request_free(r);
    }
    g_ptr_array_set_size(st->running, 0);
    st->trouble = st->halt = true;
}

static void run_requests(send_state *st)
{
    for (;;) {
        if (st->v->o.cancelled != NULL && st->v->o.cancelled())
            st->halt = true;
        start_more(st);
        if (st->running->len == 0)
            break;
        int still = 0;
        CURLMcode mc = curl_multi_perform(st->v->multi, &still);
        if (mc == CURLM_OK && !collect(st))
            mc = CURLM_INTERNAL_ERROR;
        if (mc == CURLM_OK && st->running->len > 0)
            mc = curl_multi_poll(st->v->multi, NULL, 0, POLL_MS, NULL);
        if (mc != CURLM_OK) {
            abandon_running(st, curl_multi_strerror(mc));
            break;
        }
    }
    /* What was never started (a pause, a stop, credentials refused) stays as it was. */
    fbl_vendor_request *r;
    while ((r = g_queue_pop_head(&st->queue)) != NULL) {
        mark_all(r, FBL_VENDOR_UNSENT, st->retry_after_ms, NULL);
        fbl_vendor_request_free(r);
    }
}

/* The document as sent, and the reported message when the adapter wants it. */
static void prepare(fbl_vendor *v, fbl_vendor_work *w, bool wants_mail)
{
    fbl_vendor_item *it = w->item;
    json_error_t jerr;
    w->doc = json_loads(it->doc, 0, &jerr);
    if (!json_is_object(w->doc)) {
        g_autofree char *answer = g_strdup_printf("the stored document is not JSON: %s", jerr.text);
        set_outcome(w, FBL_VENDOR_REFUSED, 0, answer);
        return;
    }
    const char *format = json_string_value(json_object_get(w->doc, "format"));
    json_int_t part = json_integer_value(json_object_get(w->doc, "part"));
    g_autoptr(fbl_redact_pairs) pairs = NULL;
    if (v->o.redact != NULL)
        pairs = fbl_redact_doc(v->o.redact, w->doc);
    w->feedback_type = json_string_value(json_object_get(w->doc, "feedback_type"));
    if (!wants_mail || it->mail == NULL)
        return;
    g_autoptr(GBytes) message = fbl_vendor_reported_message(
        it->mail, it->mail_len, format, part >= 0 && part < G_MAXINT ? (unsigned) part : 0);
    if (pairs == NULL) {
        w->message = g_steal_pointer(&message);
        return;
    }
    gsize len = 0;
    const void *data = g_bytes_get_data(message, &len);
    w->message = fbl_redact_bytes(pairs, data, len);
}

void fbl_vendor_send(fbl_vendor *v, fbl_vendor_item *items, guint n)
{
    v->pause_ms = 0;
    g_clear_pointer(&v->auth_failure, g_free);
    fbl_vendor_work *works = g_new0(fbl_vendor_work, n);
    g_autoptr(GPtrArray) ready = g_ptr_array_sized_new(n);
    bool wants_mail = fbl_vendor_wants_mail(v);
    for (guint i = 0; i < n; i++) {
        fbl_vendor_item_clear(&items[i]);
        works[i].item = &items[i];
        prepare(v, &works[i], wants_mail);
        if (items[i].outcome == 0)
            g_ptr_array_add(ready, &works[i]);
    }
    send_state st = {.v = v, .running = g_ptr_array_new()};
    g_queue_init(&st.queue);
    g_autoptr(GPtrArray) planned = g_ptr_array_new();
    if (ready->len > 0)
        v->ops->plan(v, (fbl_vendor_work **) ready->pdata, ready->len, planned);
    for (guint i = 0; i < planned->len; i++)
        g_queue_push_tail(&st.queue, g_ptr_array_index(planned, i));
    run_requests(&st);
    g_ptr_array_unref(st.running);
    for (guint i = 0; i < n; i++) {
        /* Nothing to send for it: delivered, unless the vendor refused us. */
        if (items[i].outcome == 0)
            items[i].outcome = v->auth_failure != NULL ? FBL_VENDOR_UNSENT : FBL_VENDOR_SENT;
        json_decref(works[i].doc);
        if (works[i].message != NULL)
            g_bytes_unref(works[i].message);
    }
    g_free(works);
    if (st.trouble)
        v->backoff_ms = backoff_next(v->backoff_ms, v->o.retry_max_ms);
    else if (st.delivered)
        v->backoff_ms = 0;
    if (st.trouble)
        v->pause_ms = v->backoff_ms;
    v->pause_ms = MAX(v->pause_ms, st.retry_after_ms);
}
