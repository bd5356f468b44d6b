/* xarf.c - X-ARF v0.2 YAML and v4 JSON reports (see xarf.h) */
#include "parsers/xarf.h"

#include <string.h>

#include <jansson.h>

#include "parsers/address.h"
#include "parsers/ip.h"
#include "parsers/received.h"

void fbl_xarf_free(fbl_xarf *x)
{
    if (x == NULL)
        return;
    g_free(x->version);
    g_free(x->report_type);
    g_free(x->category);
    g_free(x->source_ip);
    g_free(x->date);
    g_free(x->reported_from);
    g_free(x->user_agent);
    g_free(x->mail_from);
    if (x->sample != NULL)
        g_byte_array_unref(x->sample);
    g_free(x);
}

/* A value fit to keep: trimmed, unquoted, bounded, UTF-8; NULL when empty. */
static char *clean(const char *v, size_t len)
{
    if (v == NULL || len == 0 || len > FBL_XARF_MAX_VALUE)
        return NULL;
    g_autofree char *s = g_utf8_make_valid(v, (gssize) len);
    g_strstrip(s);
    size_t n = strlen(s);
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s[n - 1] = '\0';
        memmove(s, s + 1, n - 1);
        g_strstrip(s);
    }
    return *s != '\0' ? g_steal_pointer(&s) : NULL;
}

/* An ISO-8601 date, or any date RFC 5322 readers take. */
static char *any_date(const char *v)
{
    if (v == NULL)
        return NULL;
    GDateTime *dt = g_date_time_new_from_iso8601(v, NULL);
    if (dt == NULL)
        return fbl_date_to_iso(v);
    GDateTime *utc = g_date_time_to_utc(dt);
    char *s = g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(utc);
    g_date_time_unref(dt);
    return s;
}

static void set_field(fbl_xarf *x, const char *key, char *value)
{
    char **slot = NULL;
    if (g_ascii_strcasecmp(key, "Version") == 0)
        slot = &x->version;
    else if (g_ascii_strcasecmp(key, "Report-Type") == 0)
        slot = &x->report_type;
    else if (g_ascii_strcasecmp(key, "Category") == 0)
        slot = &x->category;
    else if (g_ascii_strcasecmp(key, "Reported-From") == 0)
        slot = &x->reported_from;
    else if (g_ascii_strcasecmp(key, "User-Agent") == 0)
        slot = &x->user_agent;
    if (slot != NULL && *slot == NULL) {
        *slot = value;
        return;
    }
    if (g_ascii_strcasecmp(key, "Source") == 0 && x->source_ip == NULL)
        x->source_ip = fbl_ip_canonical(value);
    else if (g_ascii_strcasecmp(key, "Date") == 0 && x->date == NULL)
        x->date = any_date(value);
    g_free(value);
}

fbl_xarf *fbl_xarf_parse_yaml(const char *text, size_t len)
{
    g_autofree char *copy = g_strndup(text, len);
    g_auto(GStrv) lines = g_strsplit(g_strdelimit(copy, "\r", '\n'), "\n", -1);
    fbl_xarf *x = g_new0(fbl_xarf, 1);
    unsigned fields = 0;
    for (size_t i = 0; lines[i] != NULL; i++) {
        const char *line = lines[i];
        const char *colon = strchr(line, ':');
        if (colon == NULL || colon == line || g_ascii_isspace(line[0]))
            continue;
        size_t klen = (size_t) (colon - line);
        if (strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
            klen)
            continue;
        g_autofree char *key = g_strndup(line, klen);
        set_field(x, key, clean(colon + 1, strlen(colon + 1)));
        fields++;
    }
    if (fields == 0 || (x->report_type == NULL && x->category == NULL && x->source_ip == NULL)) {
        fbl_xarf_free(x);
        return NULL;
    }
    return x;
}

static char *json_text(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? clean(v, strlen(v)) : NULL;
}

/* The first sample that is a mail: v4 "Samples" (or "Sample"), base64 or not. */
static GByteArray *first_sample(const json_t *report)
{
    const json_t *samples = json_object_get(report, "Samples");
    const json_t *one =
        json_is_array(samples) ? json_array_get(samples, 0) : json_object_get(report, "Sample");
    if (!json_is_object(one))
        return NULL;
    const char *payload = json_string_value(json_object_get(one, "Payload"));
    if (payload == NULL || *payload == '\0')
        return NULL;
    GByteArray *out = g_byte_array_new();
    if (json_is_true(json_object_get(one, "Base64Encoded"))) {
        gsize n = 0;
        guchar *raw = g_base64_decode(payload, &n);
        g_byte_array_append(out, raw, (guint) n);
        g_free(raw);
    } else {
        g_byte_array_append(out, (const guint8 *) payload, (guint) strlen(payload));
    }
    return out;
}

fbl_xarf *fbl_xarf_parse_json(const char *text, size_t len)
{
    json_error_t err;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    const json_t *report = json_object_get(doc, "Report");
    if (!json_is_object(report)) {
        json_decref(doc);
        return NULL;
    }
    fbl_xarf *x = g_new0(fbl_xarf, 1);
    x->version = json_text(doc, "Version");
    x->report_type = json_text(report, "ReportType");
    x->category = json_text(report, "ReportClass");
    g_autofree char *ip = json_text(report, "SourceIp");
    if (ip == NULL)
        ip = json_text(report, "Source");
    x->source_ip = fbl_ip_canonical(ip);
    g_autofree char *date = json_text(report, "Date");
    x->date = any_date(date);
    const json_t *info = json_object_get(doc, "ReporterInfo");
    g_autofree char *from = json_text(info, "ReporterContactEmail");
    if (from == NULL)
        from = json_text(info, "ReporterOrgEmail");
    x->reported_from = fbl_address_spec(from, NULL);
    g_autofree char *mail_from = json_text(report, "SmtpMailFromAddress");
    x->mail_from = fbl_address_spec(mail_from, NULL);
    x->sample = first_sample(report);
    json_decref(doc);
    return x;
}

fbl_feedback_type fbl_xarf_feedback_type(const fbl_xarf *x)
{
    const char *t = x->report_type != NULL ? x->report_type : x->category;
    if (t == NULL)
        return FBL_FEEDBACK_ABUSE;
    if (g_ascii_strcasecmp(t, "spam") == 0 || g_ascii_strcasecmp(t, "abuse") == 0)
        return FBL_FEEDBACK_ABUSE;
    if (g_ascii_strcasecmp(t, "phishing") == 0 || g_ascii_strcasecmp(t, "fraud") == 0)
        return FBL_FEEDBACK_FRAUD;
    if (g_ascii_strcasecmp(t, "malware") == 0 || g_ascii_strcasecmp(t, "virus") == 0)
        return FBL_FEEDBACK_VIRUS;
    return FBL_FEEDBACK_OTHER;
}
