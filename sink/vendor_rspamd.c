/*
 * vendor_rspamd.c - the rspamd adapter (see vendor.h): the controller's
 * /learnspam, /learnham and /fuzzyadd, one report per request, the reported
 * message as the body.
 */
#define G_LOG_DOMAIN "fbl-vendor"
#include <string.h>

#include "sink/vendor_internal.h"

enum { KIND_LEARN = 1, KIND_FUZZY };

static bool rspamd_wants_mail(const fbl_vendor *v)
{
    (void) v;
    return true;
}

static bool is_spam(const char *feedback_type)
{
    static const char *const spam[] = {"abuse", "fraud", "virus", "other"};
    for (size_t i = 0; feedback_type != NULL && i < G_N_ELEMENTS(spam); i++) {
        if (strcmp(feedback_type, spam[i]) == 0)
            return true;
    }
    return false;
}

static void add(fbl_vendor *v, fbl_vendor_work **w, const char *path, int kind, GPtrArray *out)
{
    const fbl_vendor_options *o = fbl_vendor_get_options(v);
    size_t base = strlen(o->url);
    while (base > 0 && o->url[base - 1] == '/')
        base--;
    g_autofree char *url = g_strdup_printf("%.*s%s", (int) base, o->url, path);
    bool ok = true;
    struct curl_slist *h = NULL;
    if (o->secret != NULL)
        h = fbl_vendor_add_header(h, "Password", o->secret, &ok);
    if (kind == KIND_FUZZY) {
        g_autofree char *flag = g_strdup_printf("%u", o->fuzzy_flag);
        g_autofree char *weight = g_strdup_printf("%u", o->fuzzy_weight);
        h = fbl_vendor_add_header(h, "Flag", flag, &ok);
        h = fbl_vendor_add_header(h, "Weight", weight, &ok);
    }
    fbl_vendor_request *r = fbl_vendor_request_new(v, w, 1, url, h, g_bytes_ref((*w)->message));
    r->kind = kind;
    if (!ok && r->easy != NULL) {
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        g_strlcpy(r->errbuf, "out of memory for headers", sizeof r->errbuf);
    }
    g_ptr_array_add(out, r);
}

static void rspamd_plan(fbl_vendor *v, fbl_vendor_work **works, guint n, GPtrArray *out)
{
    const fbl_vendor_options *o = fbl_vendor_get_options(v);
    for (guint i = 0; i < n; i++) {
        fbl_vendor_work *w = works[i];
        bool spam = is_spam(w->feedback_type);
        bool ham = g_strcmp0(w->feedback_type, "not-spam") == 0;
        if (!spam && !ham)
            continue; /* opt-out, auth-failure: nothing to learn */
        if (w->message == NULL) {
            fbl_vendor_work_refuse(w, "no raw mail stored ([sink] store_raw off?)");
            continue;
        }
        if (o->learn)
            add(v, &works[i], spam ? "/learnspam" : "/learnham", KIND_LEARN, out);
        if (spam && o->fuzzy_flag > 0)
            add(v, &works[i], "/fuzzyadd", KIND_FUZZY, out);
    }
}

/* rspamd answers a message it has learned before with 208 and "already learned". */
static fbl_vendor_verdict rspamd_judge(const fbl_vendor *v, const fbl_vendor_request *r,
                                       long status)
{
    (void) v;
    if (status == 208)
        return FBL_VERDICT_OK;
    if (r->kind == KIND_LEARN && status >= 400 && status < 500 && r->response->len > 0 &&
        g_strstr_len((const char *) r->response->data, r->response->len, "already learned"))
        return FBL_VERDICT_OK;
    return FBL_VERDICT_DEFAULT;
}

const fbl_vendor_ops fbl_vendor_rspamd_ops = {
    .type = "rspamd",
    .wants_mail = rspamd_wants_mail,
    .plan = rspamd_plan,
    .judge = rspamd_judge,
};
