/* report.c - the normalized report model: constructors, names of enums */
#include "parsers/report.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI 1
#endif

static const char *const format_names[] = {
    [FBL_FORMAT_ARF] = "arf",         [FBL_FORMAT_ATTACHMENT] = "attachment",
    [FBL_FORMAT_INLINE] = "inline",   [FBL_FORMAT_JMRP] = "jmrp",
    [FBL_FORMAT_XARF] = "xarf",       [FBL_FORMAT_SPAMCOP] = "spamcop",
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
    arf->incidents = -1;
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
    g_free(report->reporter.name);
    g_free(report->reporter.user_agent);
    g_free(report->reporter.reporting_mta);
    fbl_arf_free(report->arf);
    g_free(report->source_ip);
    g_free(report->source_ip_from);
    message_clear(&report->message);
    g_ptr_array_unref(report->warnings);
    g_free(report);
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
 * SHA-256 with the x86 SHA extensions (SHA-NI), where the CPU has them: the
 * mail id hashes every byte of every mail, and GLib's portable GChecksum
 * costs ~50 instructions a byte, a third of a whole parse (bench/run); this
 * costs ~3. The same digest (the corpus goldens and genmail's manifest pin
 * mail ids, report ids and attachment hashes); other CPUs keep GChecksum.
 */
#ifdef HAVE_SHA_NI
static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* @blocks 64-byte blocks into @state (a..h), Intel's SHA extensions. */
__attribute__((target("sha,sse4.1,ssse3"))) static void
sha256_ni_blocks(uint32_t state[8], const uint8_t *data, size_t blocks)
{
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *) &state[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *) &state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);         /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);         /* EFGH */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8); /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);      /* CDGH */
    for (; blocks > 0; blocks--, data += 64) {
        __m128i abef = st0, cdgh = st1, w[4];
        for (int g = 0; g < 16; g++) {
            __m128i m;
            if (g < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *) (data + 16 * g)), swap);
            } else { /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four at a time */
                m = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
                m = _mm_add_epi32(m, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
                m = _mm_sha256msg2_epu32(m, w[(g + 3) & 3]);
            }
            w[g & 3] = m;
            m = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *) &sha256_k[4 * g]));
            st1 = _mm_sha256rnds2_epu32(st1, st0, m);
            st0 = _mm_sha256rnds2_epu32(st0, st1, _mm_shuffle_epi32(m, 0x0E));
        }
        st0 = _mm_add_epi32(st0, abef);
        st1 = _mm_add_epi32(st1, cdgh);
    }
    tmp = _mm_shuffle_epi32(st0, 0x1B);    /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);    /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0); /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);    /* HGFE */
    _mm_storeu_si128((__m128i *) &state[0], st0);
    _mm_storeu_si128((__m128i *) &state[4], st1);
}

static bool have_sha_ni(void)
{
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        unsigned a = 0, b = 0, c = 0, d = 0, c1 = 0;
        bool ok = __get_cpuid(1, &a, &b, &c1, &d) && (c1 & bit_SSE4_1) && (c1 & bit_SSSE3) &&
                  __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
        g_once_init_leave(&once, ok ? 2 : 1);
    }
    return once == 2;
}

static void sha256_ni_hex(const uint8_t *data, size_t len, char out[FBL_SHA256_HEX_LEN + 1])
{
    uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t full = len / 64;
    sha256_ni_blocks(state, data, full);
    /* The tail, 0x80, zeros and the bit length (big-endian): one or two blocks. */
    uint8_t last[128] = {0};
    size_t rest = len - full * 64;
    if (rest > 0) /* an empty input may be NULL: no arithmetic on it */
        memcpy(last, data + full * 64, rest);
    last[rest] = 0x80;
    size_t n = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t) len * 8;
    for (int i = 0; i < 8; i++)
        last[n - 1 - i] = (uint8_t) (bits >> (8 * i));
    sha256_ni_blocks(state, last, n / 64);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        uint8_t byte = (uint8_t) (state[i / 4] >> (24 - 8 * (i % 4)));
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 15];
    }
    out[FBL_SHA256_HEX_LEN] = '\0';
}
#endif

void fbl_sha256_hex(const void *data, size_t len, char out[FBL_SHA256_HEX_LEN + 1])
{
#ifdef HAVE_SHA_NI
    if (have_sha_ni()) {
        sha256_ni_hex(data, len, out);
        return;
    }
#endif
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(sum, data, (gssize) len);
    g_strlcpy(out, g_checksum_get_string(sum), FBL_SHA256_HEX_LEN + 1);
    g_checksum_free(sum);
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
