/* report_json.c - encode and decode the normalized report (contract v1) */
#include "parsers/report_json.h"

#include <string.h>

GQuark fbl_report_json_error_quark(void)
{
    return g_quark_from_static_string("fbl-report-json-error");
}

/* ---- encoding ---------------------------------------------------------- */

static json_t *jstr(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *v = json_string(s);
    if (v == NULL) { /* not UTF-8: the model should never hold that; stay total */
        g_autofree char *valid = g_utf8_make_valid(s, -1);
        v = json_string(valid);
    }
    return v;
}

static json_t *jstrv(const GPtrArray *list)
{
    json_t *a = json_array();
    for (guint i = 0; i < list->len; i++)
        json_array_append_new(a, jstr(g_ptr_array_index(list, i)));
    return a;
}

static json_t *jint_or_null(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *jtristate(int v)
{
    return v < 0 ? json_null() : json_boolean(v);
}

static json_t *reporter_to_json(const fbl_reporter *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "address", jstr(r->address));
    json_object_set_new(o, "via", jstr(r->via));
    json_object_set_new(o, "name", jstr(r->name));
    json_object_set_new(o, "user_agent", jstr(r->user_agent));
    json_object_set_new(o, "reporting_mta", jstr(r->reporting_mta));
    json_object_set_new(o, "verified", jtristate(r->verified));
    return o;
}

static json_t *arf_to_json(const fbl_arf *a)
{
    if (a == NULL)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "version", jstr(a->version));
    json_object_set_new(o, "feedback_type_raw", jstr(a->feedback_type_raw));
    json_object_set_new(o, "user_agent", jstr(a->user_agent));
    json_object_set_new(o, "source_ip", jstr(a->source_ip));
    json_object_set_new(o, "original_mail_from", jstr(a->original_mail_from));
    json_object_set_new(o, "original_rcpt_to", jstrv(a->original_rcpt_to));
    json_object_set_new(o, "arrival_date", jstr(a->arrival_date));
    json_object_set_new(o, "reporting_mta", jstr(a->reporting_mta));
    json_object_set_new(o, "reported_domain", jstrv(a->reported_domain));
    json_object_set_new(o, "reported_uri", jstrv(a->reported_uri));
    json_object_set_new(o, "incidents", jint_or_null(a->incidents));
    json_object_set_new(o, "authentication_results", jstrv(a->authentication_results));
    json_object_set_new(o, "original_envelope_id", jstr(a->original_envelope_id));
    json_object_set_new(o, "redacted_address", json_boolean(a->redacted_address));
    json_object_set_new(o, "auth_failure", jstr(a->auth_failure));
    json_object_set_new(o, "delivery_result", jstr(a->delivery_result));
    json_object_set_new(o, "dkim_domain", jstr(a->dkim_domain));
    json_object_set_new(o, "dkim_identity", jstr(a->dkim_identity));
    json_object_set_new(o, "dkim_selector", jstr(a->dkim_selector));
    json_object_set_new(o, "spf_dns", jstrv(a->spf_dns));
    json_object_set_new(o, "identity_alignment", jstr(a->identity_alignment));
    json_object_set_new(o, "removal_recipient", jstrv(a->removal_recipient));
    json_object_set_new(o, "source_port", jint_or_null(a->source_port));
    return o;
}

static json_t *hops_to_json(const GPtrArray *hops)
{
    json_t *a = json_array();
    for (guint i = 0; i < hops->len; i++) {
        const fbl_hop *h = g_ptr_array_index(hops, i);
        json_t *o = json_object();
        json_object_set_new(o, "from", jstr(h->from));
        json_object_set_new(o, "by", jstr(h->by));
        json_object_set_new(o, "ip", jstr(h->ip));
        json_object_set_new(o, "helo", jstr(h->helo));
        json_object_set_new(o, "date", jstr(h->date));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *dkim_to_json(const GPtrArray *sigs)
{
    json_t *a = json_array();
    for (guint i = 0; i < sigs->len; i++) {
        const fbl_dkim *d = g_ptr_array_index(sigs, i);
        json_t *o = json_object();
        json_object_set_new(o, "d", jstr(d->d));
        json_object_set_new(o, "s", jstr(d->s));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *attachments_to_json(const GPtrArray *list)
{
    json_t *a = json_array();
    for (guint i = 0; i < list->len; i++) {
        const fbl_attachment *at = g_ptr_array_index(list, i);
        json_t *o = json_object();
        json_object_set_new(o, "name", jstr(at->name));
        json_object_set_new(o, "type", jstr(at->type));
        json_object_set_new(o, "size", json_integer(at->size));
        /* An attachment whose digest is unknown has an empty one: null, never "". */
        json_object_set_new(o, "sha256", jstr(at->sha256[0] != '\0' ? at->sha256 : NULL));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *message_to_json(const fbl_message *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "headers_only", json_boolean(m->headers_only));
    json_object_set_new(o, "message_id", jstr(m->message_id));
    json_object_set_new(o, "date", jstr(m->date));
    json_object_set_new(o, "from", jstr(m->from));
    json_object_set_new(o, "from_name", jstr(m->from_name));
    json_object_set_new(o, "from_domain", jstr(m->from_domain));
    json_object_set_new(o, "sender", jstr(m->sender));
    json_object_set_new(o, "reply_to", jstr(m->reply_to));
    json_object_set_new(o, "return_path", jstr(m->return_path));
    json_object_set_new(o, "to", jstrv(m->to));
    json_object_set_new(o, "subject", jstr(m->subject));
    json_object_set_new(o, "dkim", dkim_to_json(m->dkim));
    json_object_set_new(o, "list_unsubscribe", jstr(m->list_unsubscribe));
    json_object_set_new(o, "cfbl_address", jstr(m->cfbl_address));
    json_object_set_new(o, "cfbl_feedback_id", jstr(m->cfbl_feedback_id));
    json_object_set_new(o, "x_mailer", jstr(m->x_mailer));
    json_object_set_new(o, "received", hops_to_json(m->received));
    json_object_set_new(o, "urls", jstrv(m->urls));
    json_object_set_new(o, "url_hosts", jstrv(m->url_hosts));
    json_object_set_new(o, "attachments", attachments_to_json(m->attachments));
    json_object_set_new(o, "fingerprint", jstr(m->fingerprint));
    json_object_set_new(o, "size", jint_or_null(m->size));
    return o;
}

static json_t *outbound_to_json(const fbl_outbound *b)
{
    if (b == NULL)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "account", jstr(b->account));
    json_object_set_new(o, "account_from", jstr(b->account_from));
    json_object_set_new(o, "auth_header", jstr(b->auth_header));
    json_object_set_new(o, "matched", jstr(b->matched));
    return o;
}

json_t *fbl_report_to_json(const fbl_report *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(FBL_REPORT_VERSION));
    json_object_set_new(o, "kind", json_string("report"));
    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "mail_id", json_string(r->mail_id));
    json_object_set_new(o, "part", json_integer(r->part));
    json_object_set_new(o, "received_at", jstr(r->received_at));
    json_object_set_new(o, "mailbox", jstr(r->mailbox));
    json_object_set_new(o, "format", json_string(fbl_format_to_string(r->format)));
    json_object_set_new(o, "feedback_type",
                        json_string(fbl_feedback_type_to_string(r->feedback_type)));
    json_object_set_new(o, "reporter", reporter_to_json(&r->reporter));
    json_object_set_new(o, "arf", arf_to_json(r->arf));
    json_object_set_new(o, "source_ip", jstr(r->source_ip));
    json_object_set_new(o, "source_ip_from", jstr(r->source_ip_from));
    json_object_set_new(o, "redacted", json_boolean(r->redacted));
    json_object_set_new(o, "message", message_to_json(&r->message));
    json_object_set_new(o, "outbound", outbound_to_json(r->outbound));
    json_object_set_new(o, "warnings", jstrv(r->warnings));
    return o;
}

json_t *fbl_reject_to_json(const fbl_reject *reject)
{
    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(FBL_REPORT_VERSION));
    json_object_set_new(o, "kind", json_string("reject"));
    json_object_set_new(o, "mail_id", json_string(reject->mail_id));
    json_object_set_new(o, "received_at", jstr(reject->received_at));
    json_object_set_new(o, "mailbox", jstr(reject->mailbox));
    json_object_set_new(o, "reason", json_string(fbl_reject_reason_to_string(reject->reason)));
    json_object_set_new(o, "detail", jstr(reject->detail));
    json_object_set_new(o, "size", jint_or_null(reject->size));
    return o;
}

static void append_doc(GString *out, json_t *doc, bool pretty)
{
    size_t flags = pretty ? JSON_INDENT(2) : JSON_COMPACT;
    char *text = json_dumps(doc, flags);
    g_string_append(out, text);
    g_string_append_c(out, '\n');
    free(text);
    json_decref(doc);
}

char *fbl_parse_result_to_lines(const fbl_parse_result *result, bool pretty)
{
    GString *out = g_string_new(NULL);
    for (guint i = 0; i < result->reports->len; i++)
        append_doc(out, fbl_report_to_json(g_ptr_array_index(result->reports, i)), pretty);
    if (result->reject != NULL)
        append_doc(out, fbl_reject_to_json(result->reject), pretty);
    return g_string_free(out, FALSE);
}

/* ---- decoding ---------------------------------------------------------- */

static bool field_error(GError **error, const char *where, const char *key, const char *want)
{
    g_set_error(error, FBL_REPORT_JSON_ERROR, FBL_REPORT_JSON_ERROR_FIELD, "%s%s%s: expected %s",
                where, where[0] ? "." : "", key, want);
    return false;
}

/* A string or null (or absent) into *out. */
static bool get_str(const json_t *o, const char *where, const char *key, char **out, GError **error)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return field_error(error, where, key, "a string or null");
    *out = g_strndup(json_string_value(v), json_string_length(v));
    return true;
}

static bool get_strv(const json_t *o, const char *where, const char *key, GPtrArray *out,
                     GError **error)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_array(v))
        return field_error(error, where, key, "an array of strings");
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return field_error(error, where, key, "an array of strings");
        g_ptr_array_add(out, g_strdup(json_string_value(item)));
    }
    return true;
}

static bool get_int(const json_t *o, const char *where, const char *key, int64_t *out,
                    GError **error)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return field_error(error, where, key, "a non-negative integer or null");
    *out = json_integer_value(v);
    return true;
}

static bool get_bool(const json_t *o, const char *where, const char *key, bool *out, GError **error)
{
    const json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_boolean(v))
        return field_error(error, where, key, "a boolean");
    *out = json_is_true(v);
    return true;
}

static bool is_sha256_hex(const char *s)
{
    return s != NULL && strlen(s) == FBL_SHA256_HEX_LEN &&
           strspn(s, "0123456789abcdef") == FBL_SHA256_HEX_LEN;
}

static bool get_hex_id(const json_t *o, const char *key, char out[FBL_SHA256_HEX_LEN + 1],
                       GError **error)
{
    const json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);
    if (!is_sha256_hex(s))
        return field_error(error, "", key, "64 lower-case hex digits");
    memcpy(out, s, FBL_SHA256_HEX_LEN + 1);
    return true;
}

static bool check_header(const json_t *doc, const char *kind, GError **error)
{
    if (!json_is_object(doc)) {
        g_set_error(error, FBL_REPORT_JSON_ERROR, FBL_REPORT_JSON_ERROR_SYNTAX,
                    "document is not a JSON object");
        return false;
    }
    const json_t *v = json_object_get(doc, "v");
    if (!json_is_integer(v) || json_integer_value(v) != FBL_REPORT_VERSION) {
        g_set_error(error, FBL_REPORT_JSON_ERROR, FBL_REPORT_JSON_ERROR_VERSION,
                    "unsupported document version (want v=%d)", FBL_REPORT_VERSION);
        return false;
    }
    const char *k = json_string_value(json_object_get(doc, "kind"));
    if (k == NULL || strcmp(k, kind) != 0)
        return field_error(error, "", "kind", kind);
    return true;
}

static bool reporter_from_json(const json_t *o, fbl_reporter *r, GError **error)
{
    if (o == NULL || json_is_null(o))
        return true;
    if (!json_is_object(o))
        return field_error(error, "", "reporter", "an object");
    const json_t *v = json_object_get(o, "verified");
    if (json_is_boolean(v))
        r->verified = json_is_true(v);
    else if (v != NULL && !json_is_null(v))
        return field_error(error, "reporter", "verified", "a boolean or null");
    return get_str(o, "reporter", "address", &r->address, error) &&
           get_str(o, "reporter", "via", &r->via, error) &&
           get_str(o, "reporter", "name", &r->name, error) &&
           get_str(o, "reporter", "user_agent", &r->user_agent, error) &&
           get_str(o, "reporter", "reporting_mta", &r->reporting_mta, error);
}

static bool arf_from_json(const json_t *o, fbl_arf **out, GError **error)
{
    if (o == NULL || json_is_null(o))
        return true;
    if (!json_is_object(o))
        return field_error(error, "", "arf", "an object or null");
    fbl_arf *a = fbl_arf_new();
    *out = a;
    return get_str(o, "arf", "version", &a->version, error) &&
           get_str(o, "arf", "feedback_type_raw", &a->feedback_type_raw, error) &&
           get_str(o, "arf", "user_agent", &a->user_agent, error) &&
           get_str(o, "arf", "source_ip", &a->source_ip, error) &&
           get_str(o, "arf", "original_mail_from", &a->original_mail_from, error) &&
           get_strv(o, "arf", "original_rcpt_to", a->original_rcpt_to, error) &&
           get_str(o, "arf", "arrival_date", &a->arrival_date, error) &&
           get_str(o, "arf", "reporting_mta", &a->reporting_mta, error) &&
           get_strv(o, "arf", "reported_domain", a->reported_domain, error) &&
           get_strv(o, "arf", "reported_uri", a->reported_uri, error) &&
           get_int(o, "arf", "incidents", &a->incidents, error) &&
           get_strv(o, "arf", "authentication_results", a->authentication_results, error) &&
           get_str(o, "arf", "original_envelope_id", &a->original_envelope_id, error) &&
           get_bool(o, "arf", "redacted_address", &a->redacted_address, error) &&
           get_str(o, "arf", "auth_failure", &a->auth_failure, error) &&
           get_str(o, "arf", "delivery_result", &a->delivery_result, error) &&
           get_str(o, "arf", "dkim_domain", &a->dkim_domain, error) &&
           get_str(o, "arf", "dkim_identity", &a->dkim_identity, error) &&
           get_str(o, "arf", "dkim_selector", &a->dkim_selector, error) &&
           get_strv(o, "arf", "spf_dns", a->spf_dns, error) &&
           get_str(o, "arf", "identity_alignment", &a->identity_alignment, error) &&
           get_strv(o, "arf", "removal_recipient", a->removal_recipient, error) &&
           get_int(o, "arf", "source_port", &a->source_port, error);
}

static bool hops_from_json(const json_t *list, GPtrArray *out, GError **error)
{
    if (list == NULL || json_is_null(list))
        return true;
    if (!json_is_array(list))
        return field_error(error, "message", "received", "an array");
    size_t i;
    const json_t *o;
    json_array_foreach(list, i, o)
    {
        if (!json_is_object(o))
            return field_error(error, "message", "received", "an array of objects");
        fbl_hop *h = fbl_hop_new();
        g_ptr_array_add(out, h);
        if (!get_str(o, "received", "from", &h->from, error) ||
            !get_str(o, "received", "by", &h->by, error) ||
            !get_str(o, "received", "ip", &h->ip, error) ||
            !get_str(o, "received", "helo", &h->helo, error) ||
            !get_str(o, "received", "date", &h->date, error))
            return false;
    }
    return true;
}

static bool dkim_from_json(const json_t *list, GPtrArray *out, GError **error)
{
    if (list == NULL || json_is_null(list))
        return true;
    if (!json_is_array(list))
        return field_error(error, "message", "dkim", "an array");
    size_t i;
    const json_t *o;
    json_array_foreach(list, i, o)
    {
        if (!json_is_object(o))
            return field_error(error, "message", "dkim", "an array of objects");
        fbl_dkim *d = g_new0(fbl_dkim, 1);
        g_ptr_array_add(out, d);
        if (!get_str(o, "dkim", "d", &d->d, error) || !get_str(o, "dkim", "s", &d->s, error))
            return false;
    }
    return true;
}

static bool attachments_from_json(const json_t *list, GPtrArray *out, GError **error)
{
    if (list == NULL || json_is_null(list))
        return true;
    if (!json_is_array(list))
        return field_error(error, "message", "attachments", "an array");
    size_t i;
    const json_t *o;
    json_array_foreach(list, i, o)
    {
        if (!json_is_object(o))
            return field_error(error, "message", "attachments", "an array of objects");
        fbl_attachment *at = g_new0(fbl_attachment, 1);
        g_ptr_array_add(out, at);
        g_autofree char *sha = NULL;
        if (!get_str(o, "attachments", "name", &at->name, error) ||
            !get_str(o, "attachments", "type", &at->type, error) ||
            !get_int(o, "attachments", "size", &at->size, error) ||
            !get_str(o, "attachments", "sha256", &sha, error))
            return false;
        if (sha != NULL && !is_sha256_hex(sha))
            return field_error(error, "attachments", "sha256", "64 lower-case hex digits or null");
        if (sha != NULL)
            g_strlcpy(at->sha256, sha, sizeof at->sha256);
    }
    return true;
}

static bool message_from_json(const json_t *o, fbl_message *m, GError **error)
{
    if (o == NULL || json_is_null(o))
        return true;
    if (!json_is_object(o))
        return field_error(error, "", "message", "an object");
    return get_bool(o, "message", "headers_only", &m->headers_only, error) &&
           get_str(o, "message", "message_id", &m->message_id, error) &&
           get_str(o, "message", "date", &m->date, error) &&
           get_str(o, "message", "from", &m->from, error) &&
           get_str(o, "message", "from_name", &m->from_name, error) &&
           get_str(o, "message", "from_domain", &m->from_domain, error) &&
           get_str(o, "message", "sender", &m->sender, error) &&
           get_str(o, "message", "reply_to", &m->reply_to, error) &&
           get_str(o, "message", "return_path", &m->return_path, error) &&
           get_strv(o, "message", "to", m->to, error) &&
           get_str(o, "message", "subject", &m->subject, error) &&
           dkim_from_json(json_object_get(o, "dkim"), m->dkim, error) &&
           get_str(o, "message", "list_unsubscribe", &m->list_unsubscribe, error) &&
           get_str(o, "message", "cfbl_address", &m->cfbl_address, error) &&
           get_str(o, "message", "cfbl_feedback_id", &m->cfbl_feedback_id, error) &&
           get_str(o, "message", "x_mailer", &m->x_mailer, error) &&
           hops_from_json(json_object_get(o, "received"), m->received, error) &&
           get_strv(o, "message", "urls", m->urls, error) &&
           get_strv(o, "message", "url_hosts", m->url_hosts, error) &&
           attachments_from_json(json_object_get(o, "attachments"), m->attachments, error) &&
           get_str(o, "message", "fingerprint", &m->fingerprint, error) &&
           get_int(o, "message", "size", &m->size, error);
}

static bool enum_field(const json_t *doc, const char *key, bool (*parse)(const char *, void *),
                       void *out, GError **error)
{
    const char *s = json_string_value(json_object_get(doc, key));
    if (s == NULL || !parse(s, out))
        return field_error(error, "", key, "a known value");
    return true;
}

static bool parse_format(const char *s, void *out)
{
    return fbl_format_from_string(s, out);
}

static bool parse_feedback(const char *s, void *out)
{
    return fbl_feedback_type_from_string(s, out);
}

static bool parse_reason(const char *s, void *out)
{
    return fbl_reject_reason_from_string(s, out);
}

/* "outbound": absent (a document of an older writer) or null is none. */
static bool outbound_from_json(const json_t *o, fbl_outbound **out, GError **error)
{
    if (o == NULL || json_is_null(o))
        return true;
    if (!json_is_object(o))
        return field_error(error, "", "outbound", "an object or null");
    fbl_outbound *b = g_new0(fbl_outbound, 1);
    *out = b;
    return get_str(o, "outbound", "account", &b->account, error) &&
           get_str(o, "outbound", "account_from", &b->account_from, error) &&
           get_str(o, "outbound", "auth_header", &b->auth_header, error) &&
           get_str(o, "outbound", "matched", &b->matched, error);
}

fbl_report *fbl_report_from_json(const json_t *doc, GError **error)
{
    if (!check_header(doc, "report", error))
        return NULL;
    g_autoptr(fbl_report) r = fbl_report_new();
    const json_t *part = json_object_get(doc, "part");
    if (!json_is_integer(part) || json_integer_value(part) < 0 ||
        json_integer_value(part) > G_MAXUINT) {
        field_error(error, "", "part", "a non-negative integer");
        return NULL;
    }
    r->part = (unsigned) json_integer_value(part);
    if (!get_hex_id(doc, "id", r->id, error) || !get_hex_id(doc, "mail_id", r->mail_id, error) ||
        !get_str(doc, "", "received_at", &r->received_at, error) ||
        !get_str(doc, "", "mailbox", &r->mailbox, error) ||
        !enum_field(doc, "format", parse_format, &r->format, error) ||
        !enum_field(doc, "feedback_type", parse_feedback, &r->feedback_type, error) ||
        !reporter_from_json(json_object_get(doc, "reporter"), &r->reporter, error) ||
        !arf_from_json(json_object_get(doc, "arf"), &r->arf, error) ||
        !get_str(doc, "", "source_ip", &r->source_ip, error) ||
        !get_str(doc, "", "source_ip_from", &r->source_ip_from, error) ||
        !get_bool(doc, "", "redacted", &r->redacted, error) ||
        !message_from_json(json_object_get(doc, "message"), &r->message, error) ||
        !outbound_from_json(json_object_get(doc, "outbound"), &r->outbound, error) ||
        !get_strv(doc, "", "warnings", r->warnings, error))
        return NULL;
    return g_steal_pointer(&r);
}

fbl_reject *fbl_reject_from_json(const json_t *doc, GError **error)
{
    if (!check_header(doc, "reject", error))
        return NULL;
    g_autoptr(fbl_reject) j = fbl_reject_new(FBL_REJECT_NOT_A_REPORT, NULL);
    if (!get_hex_id(doc, "mail_id", j->mail_id, error) ||
        !enum_field(doc, "reason", parse_reason, &j->reason, error) ||
        !get_str(doc, "", "received_at", &j->received_at, error) ||
        !get_str(doc, "", "mailbox", &j->mailbox, error) ||
        !get_str(doc, "", "detail", &j->detail, error) ||
        !get_int(doc, "", "size", &j->size, error))
        return NULL;
    return g_steal_pointer(&j);
}
