/* report.c - the normalized report model: constructors, names of enums */
#include "parsers/report.h"

#include <string.h>

#include <openssl/evp.h>

static const char *const format_names[] = {
    [FBL_FORMAT_ARF] = "arf",       [FBL_FORMAT_ATTACHMENT] = "attachment",
    [FBL_FORMAT_INLINE] = "inline", [FBL_FORMAT_JMRP] = "jmrp",
    [FBL_FORMAT_XARF] = "xarf",     [FBL_FORMAT_SPAMCOP] = "spamcop",
    [FBL_FORMAT_RAW] = "raw",
};

static const char *const feedback_names[] = {
    [FBL_FEEDBACK_ABUSE] = "abuse",
    [FBL_FEEDBACK_FRAUD] = "fraud",
    [FBL_FEEDBACK_VIRUS] = "virus",
    [FBL_FEEDBACK_OTHER] = "other",
    [FBL_FEEDBACK_NOT_SPAM] = "not-spam",
    [FBL_FEEDBACK_OPT_OUT] = "opt-out",
    [FBL_FEEDBACK_AUTH_FAILURE] = "auth-failure",
};

static const char *const reject_names[] = {
    [FBL_REJECT_TOO_LARGE] = "too_large",
    [FBL_REJECT_NOT_A_REPORT] = "not_a_report",
    [FBL_REJECT_MALFORMED_MIME] = "malformed_mime",
    [FBL_REJECT_NO_ORIGINAL_MESSAGE] = "no_original_message",
    [FBL_REJECT_EMPTY] = "empty",
    [FBL_REJECT_TOO_DEEP] = "too_deep",
    [FBL_REJECT_TOO_MANY_PARTS] = "too_many_parts",
    [FBL_REJECT_TOO_MANY_HEADERS] = "too_many_headers",
    [FBL_REJECT_HEADER_TOO_LONG] = "header_too_long",
    [FBL_REJECT_BOUNCE] = "bounce",
    [FBL_REJECT_AUTO_REPLY] = "auto_reply",
    [FBL_REJECT_DMARC_AGGREGATE] = "dmarc_aggregate",
};

static bool lookup(const char *const *names, size_t count, const char *name, int *value)
{
    if (name == NULL)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (names[i] != NULL && strcmp(names[i], name) == 0) {
            *value = (int) i;
            return true;
        }
    }
    return false;
}

const char *fbl_format_to_string(fbl_format format)
{
    g_assert((size_t) format < G_N_ELEMENTS(format_names));
    return format_names[format];
}

bool fbl_format_from_string(const char *name, fbl_format *format)
{
    int v;
    if (!lookup(format_names, G_N_ELEMENTS(format_names), name, &v))
        return false;
    *format = (fbl_format) v;
    return true;
}

const char *fbl_feedback_type_to_string(fbl_feedback_type type)
{
    g_assert((size_t) type < G_N_ELEMENTS(feedback_names));
    return feedback_names[type];
}

bool fbl_feedback_type_from_string(const char *name, fbl_feedback_type *type)
{
    int v;
    if (!lookup(feedback_names, G_N_ELEMENTS(feedback_names), name, &v))
        return false;
    *type = (fbl_feedback_type) v;
    return true;
}

const char *fbl_reject_reason_to_string(fbl_reject_reason reason)
{
    g_assert((size_t) reason < G_N_ELEMENTS(reject_names));
    return reject_names[reason];
}

bool fbl_reject_reason_from_string(const char *name, fbl_reject_reason *reason)
{
    int v;
    if (!lookup(reject_names, G_N_ELEMENTS(reject_names), name, &v))
        return false;
    *reason = (fbl_reject_reason) v;
    return true;
}

fbl_hop *fbl_hop_new(void)
{
    return g_new0(fbl_hop, 1);
}

void fbl_hop_free(fbl_hop *hop)
{
    if (hop == NULL)
        return;
    g_free(hop->from);
    g_free(hop->by);
    g_free(hop->ip);
    g_free(hop->helo);
    g_free(hop->date);
    g_free(hop);
}

void fbl_dkim_free(fbl_dkim *dkim)
{
    if (dkim == NULL)
        return;
    g_free(dkim->d);
    g_free(dkim->s);
    g_free(dkim);
}

void fbl_attachment_free(fbl_attachment *attachment)
{
    if (attachment == NULL)
        return;
    g_free(attachment->name);
    g_free(attachment->type);
    g_free(attachment);
}

fbl_arf *fbl_arf_new(void)
{
    fbl_arf *arf = g_new0(fbl_arf, 1);
    arf->original_rcpt_to = g_ptr_array_new_with_free_func(g_free);
    arf->reported_domain = g_ptr_array_new_with_free_func(g_free);
    arf->reported_uri = g_ptr_array_new_with_free_func(g_free);
    arf->authentication_results = g_ptr_array_new_with_free_func(g_free);
    arf->spf_dns = g_ptr_array_new_with_free_func(g_free);
    arf->removal_recipient = g_ptr_array_new_with_free_func(g_free);
    arf->incidents = -1;
    arf->source_port = -1;
    return arf;
}

void fbl_arf_free(fbl_arf *arf)
{
    if (arf == NULL)
        return;
    g_free(arf->version);
    g_free(arf->feedback_type_raw);
    g_free(arf->user_agent);
    g_free(arf->source_ip);
    g_free(arf->original_mail_from);
    g_ptr_array_unref(arf->original_rcpt_to);
    g_free(arf->arrival_date);
    g_free(arf->reporting_mta);
    g_ptr_array_unref(arf->reported_domain);
    g_ptr_array_unref(arf->reported_uri);
    g_ptr_array_unref(arf->authentication_results);
    g_free(arf->original_envelope_id);
    g_free(arf->auth_failure);
    g_free(arf->delivery_result);
    g_free(arf->dkim_domain);
    g_free(arf->dkim_identity);
    g_free(arf->dkim_selector);
    g_ptr_array_unref(arf->spf_dns);
    g_free(arf->identity_alignment);
    g_ptr_array_unref(arf->removal_recipient);
    g_free(arf);
}

static void message_init(fbl_message *m)
{
    m->to = g_ptr_array_new_with_free_func(g_free);
    m->dkim = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_dkim_free);
    m->received = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_hop_free);
    m->urls = g_ptr_array_new_with_free_func(g_free);
    m->url_hosts = g_ptr_array_new_with_free_func(g_free);
    m->attachments = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_attachment_free);
}

static void message_clear(fbl_message *m)
{
    g_free(m->message_id);
    g_free(m->date);
    g_free(m->from);
    g_free(m->from_name);
    g_free(m->from_domain);
    g_free(m->sender);
    g_free(m->reply_to);
    g_free(m->return_path);
    g_ptr_array_unref(m->to);
    g_free(m->subject);
    g_ptr_array_unref(m->dkim);
    g_free(m->list_unsubscribe);
    g_free(m->cfbl_address);
    g_free(m->cfbl_feedback_id);
    g_free(m->x_mailer);
    g_ptr_array_unref(m->received);
    g_ptr_array_unref(m->urls);
    g_ptr_array_unref(m->url_hosts);
    g_ptr_array_unref(m->attachments);
    g_free(m->fingerprint);
}

fbl_report *fbl_report_new(void)
{
    fbl_report *r = g_new0(fbl_report, 1);
    r->reporter.verified = -1;
    r->message.size = -1;
    message_init(&r->message);
    r->warnings = g_ptr_array_new_with_free_func(g_free);
    return r;
}

void fbl_report_free(fbl_report *report)
{
    if (report == NULL)
        return;
    g_free(report->received_at);
    g_free(report->mailbox);
    g_free(report->reporter.address);
    g_free(report->reporter.via);
    g_free(report->reporter.name);
    g_free(report->reporter.user_agent);
    g_free(report->reporter.reporting_mta);
    fbl_arf_free(report->arf);
    g_free(report->source_ip);
    g_free(report->source_ip_from);
    message_clear(&report->message);
    fbl_outbound_free(report->outbound);
    g_ptr_array_unref(report->warnings);
    g_free(report);
}

void fbl_outbound_free(fbl_outbound *outbound)
{
    if (outbound == NULL)
        return;
    g_free(outbound->account);
    g_free(outbound->account_from);
    g_free(outbound->auth_header);
    g_free(outbound->matched);
    g_free(outbound);
}

void fbl_report_set_ids(fbl_report *report, const char *mail_id, unsigned part)
{
    g_strlcpy(report->mail_id, mail_id, sizeof report->mail_id);
    report->part = part;
    g_autofree char *key = g_strdup_printf("%s/%u", mail_id, part);
    fbl_sha256_hex(key, strlen(key), report->id);
}

void fbl_report_add_warning(fbl_report *report, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    char *text = g_strdup_vprintf(format, ap);
    va_end(ap);
    /* Warnings can quote hostile bytes: keep them valid UTF-8 for JSON. */
    if (!g_utf8_validate(text, -1, NULL)) {
        char *valid = g_utf8_make_valid(text, -1);
        g_free(text);
        text = valid;
    }
    fbl_strv_add_unique(report->warnings, text);
    g_free(text);
}

fbl_reject *fbl_reject_new(fbl_reject_reason reason, const char *detail)
{
    fbl_reject *j = g_new0(fbl_reject, 1);
    j->reason = reason;
    j->detail = g_strdup(detail);
    j->size = -1;
    return j;
}

void fbl_reject_free(fbl_reject *reject)
{
    if (reject == NULL)
        return;
    g_free(reject->received_at);
    g_free(reject->mailbox);
    g_free(reject->detail);
    g_free(reject);
}

fbl_parse_result *fbl_parse_result_new(const char *mail_id)
{
    fbl_parse_result *res = g_new0(fbl_parse_result, 1);
    g_strlcpy(res->mail_id, mail_id, sizeof res->mail_id);
    res->reports = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_report_free);
    return res;
}

void fbl_parse_result_free(fbl_parse_result *result)
{
    if (result == NULL)
        return;
    g_ptr_array_unref(result->reports);
    fbl_reject_free(result->reject);
    g_free(result);
}

/*
 * The SHA-256 implementation, fetched from the provider once per process and
 * kept: with EVP_sha256() every EVP_Digest() looks it up again (a locked
 * table lookup, as dear as hashing a short string: report ids and
 * fingerprints are short). OpenSSL's crypto(7), "Performance", advises this.
 * An EVP_MD is immutable and may be shared by threads.
 */
static const EVP_MD *sha256_md(void)
{
    static gsize fetched = 0;
    static EVP_MD *md = NULL;
    if (g_once_init_enter(&fetched)) {
        md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
        g_once_init_leave(&fetched, 1);
    }
    return md != NULL ? md : EVP_sha256();
}

/*
 * SHA-256 through OpenSSL's libcrypto: the mail id hashes every byte of every
 * mail, and GLib's portable GChecksum cost a third of a whole parse
 * (bench/run); libcrypto uses the CPU's SHA instructions where it has them.
 * The digest is the same (the corpus goldens pin mail and report ids).
 */
void fbl_sha256_hex(const void *data, size_t len, char out[FBL_SHA256_HEX_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_Digest(data, len, digest, &digest_len, sha256_md(), NULL) != 1 || digest_len != 32) {
        /* libcrypto cannot fail on SHA-256 short of memory; GLib stays the fallback */
        GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_checksum_update(sum, data, (gssize) len);
        g_strlcpy(out, g_checksum_get_string(sum), FBL_SHA256_HEX_LEN + 1);
        g_checksum_free(sum);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[FBL_SHA256_HEX_LEN] = '\0';
}

bool fbl_strv_add_unique(GPtrArray *list, const char *value)
{
    for (guint i = 0; i < list->len; i++) {
        if (strcmp(g_ptr_array_index(list, i), value) == 0)
            return false;
    }
    g_ptr_array_add(list, g_strdup(value));
    return true;
}
