/* hostile.c - builders of hostile mails (see hostile.h) */
#include "tests/hostile/hostile.h"

#include <string.h>

#define HEAD                                                                                       \
    "From: Reporter <reporter@example.net>\n"                                                      \
    "To: spamalert@example.com\n"                                                                  \
    "Date: Thu, 01 Jan 2026 10:00:00 +0000\n"                                                      \
    "Message-ID: <hostile@example.net>\n"                                                          \
    "MIME-Version: 1.0\n"

#define SPAM                                                                                       \
    "Received: from spam.example.org (spam.example.org [198.51.100.9])\n"                          \
    "\tby mx.example.net with ESMTP id 1; Thu, 01 Jan 2026 09:00:00 +0000\n"                       \
    "From: Spammer <offers@spam.example.org>\n"                                                    \
    "To: victim@example.net\n"                                                                     \
    "Subject: Great offer\n"                                                                       \
    "Message-ID: <offer-1@spam.example.org>\n"                                                     \
    "Date: Thu, 01 Jan 2026 09:00:00 +0000\n"

GString *fbl_hostile_deep_nesting(unsigned depth)
{
    GString *m = g_string_new(HEAD "Subject: deep\n");
    g_string_append(m, "Content-Type: multipart/mixed; boundary=\"b0\"\n\n");
    for (unsigned i = 1; i <= depth; i++)
        g_string_append_printf(m, "--b%u\nContent-Type: multipart/mixed; boundary=\"b%u\"\n\n",
                               i - 1, i);
    g_string_append_printf(m, "--b%u\nContent-Type: text/plain\n\nbottom\n--b%u--\n", depth, depth);
    for (unsigned i = depth; i > 0; i--)
        g_string_append_printf(m, "--b%u--\n", i - 1);
    return m;
}

GString *fbl_hostile_many_parts(unsigned parts)
{
    GString *m = g_string_new(HEAD "Subject: parts\n");
    g_string_append(m, "Content-Type: multipart/mixed; boundary=\"p\"\n\n");
    for (unsigned i = 0; i < parts; i++)
        g_string_append(m, "--p\nContent-Type: text/plain\n\nx\n");
    g_string_append(m, "--p--\n");
    return m;
}

GString *fbl_hostile_long_header(size_t bytes)
{
    GString *m = g_string_new(HEAD "Subject: ");
    for (size_t i = 0; i < bytes; i++)
        g_string_append_c(m, (char) ('a' + i % 26));
    g_string_append(m, "\nContent-Type: text/plain\n\nlong header\n");
    return m;
}

GString *fbl_hostile_many_headers(unsigned count)
{
    GString *m = g_string_new(HEAD "Subject: headers\n");
    for (unsigned i = 0; i < count; i++)
        g_string_append_printf(m, "X-Filler-%u: %u\n", i, i);
    g_string_append(m, "Content-Type: text/plain\n\nmany headers\n");
    return m;
}

static GString *self_containing(unsigned levels, bool same_boundary)
{
    GString *inner =
        g_string_new(SPAM "Content-Type: text/plain\n\nBuy now http://spam.example.org/\n");
    for (unsigned i = 0; i < levels; i++) {
        g_autofree char *b = same_boundary ? g_strdup("X") : g_strdup_printf("X%u", i);
        GString *outer = g_string_new(HEAD "Subject: Fwd: spam\n");
        g_string_append_printf(outer,
                               "Content-Type: multipart/mixed; boundary=\"%s\"\n\n"
                               "--%s\nContent-Type: text/plain\n\nsee attached\n"
                               "--%s\nContent-Type: message/rfc822\n\n",
                               b, b, b);
        g_string_append_len(outer, inner->str, (gssize) inner->len);
        g_string_append_printf(outer, "\n--%s--\n", b);
        g_string_free(inner, TRUE);
        inner = outer;
    }
    return inner;
}

GString *fbl_hostile_self_containing(unsigned levels)
{
    return self_containing(levels, false);
}

GString *fbl_hostile_self_containing_same_boundary(unsigned levels)
{
    return self_containing(levels, true);
}

GString *fbl_hostile_nul_bytes(void)
{
    static const char arf[] =
        HEAD "Subject: FW: spam\0 report\n"
             "Content-Type: multipart/report; report-type=feedback-report; boundary=\"n\"\n\n"
             "--n\nContent-Type: text/plain\n\nA report\0with NULs\0\n"
             "--n\nContent-Type: message/feedback-report\n\n"
             "Feedback-Type: abuse\nUser-Agent: Hostile/1.0\nVersion: 1\n"
             "Source-IP: 192.0.2.77\n\0Original-Mail-From: <x\0y@spam.example.org>\n"
             "--n\nContent-Type: message/rfc822\n\n" SPAM "X-Nul: a\0b\n"
             "Content-Type: text/plain\n\nbody\0with\0nuls http://spam.example.org/\0\n"
             "--n--\n";
    GString *m = g_string_new_len(arf, sizeof arf - 1);
    return m;
}

GString *fbl_hostile_bad_charsets(void)
{
    GString *m = g_string_new(HEAD "Subject: Fwd: junk\n"
                                   "Content-Type: multipart/mixed; boundary=\"c\"\n\n"
                                   "--c\nContent-Type: text/plain\n\nattached\n"
                                   "--c\nContent-Type: message/rfc822\n\n"
                                   "Received: from spam.example.org ([198.51.100.9])\n"
                                   "\tby mx.example.net; Thu, 01 Jan 2026 09:00:00 +0000\n"
                                   "From: =?utf-8?Q?Bad=FF=FE_Name?= <offers@spam.example.org>\n"
                                   "To: victim@example.net\n"
                                   "Subject: =?x-no-such-charset?B?//79/A==?= \xff\xfe raw\n"
                                   "Message-ID: <junk@spam.example.org>\n"
                                   "Content-Type: text/plain; charset=\"x-no-such-charset\"\n"
                                   "Content-Transfer-Encoding: 8bit\n\n"
                                   "\xff\xfe\xc3\x28 invalid \xe2\x82 utf-8 "
                                   "http://spam.example.org/offer \xf0\x28\x8c\x28\n"
                                   "--c--\n");
    return m;
}

static guint8 pattern_byte(size_t i)
{
    return (guint8) ((i * 131u + 7u) & 0xffu);
}

GString *fbl_hostile_base64_attachment(size_t bytes)
{
    guint8 *data = g_malloc(bytes);
    for (size_t i = 0; i < bytes; i++)
        data[i] = pattern_byte(i);
    g_autofree char *b64 = g_base64_encode(data, bytes);
    g_free(data);
    GString *m = g_string_sized_new(bytes * 4 / 3 + bytes / 50 + 4096);
    g_string_append(m, HEAD "Subject: Fwd: big\n"
                            "Content-Type: multipart/mixed; boundary=\"g\"\n\n"
                            "--g\nContent-Type: text/plain\n\nattached\n"
                            "--g\nContent-Type: message/rfc822\n\n" SPAM
                            "Content-Type: multipart/mixed; boundary=\"h\"\n\n"
                            "--h\nContent-Type: text/plain\n\nsee the file\n"
                            "--h\nContent-Type: application/octet-stream; name=\"big.bin\"\n"
                            "Content-Disposition: attachment; filename=\"big.bin\"\n"
                            "Content-Transfer-Encoding: base64\n\n");
    size_t len = strlen(b64);
    for (size_t i = 0; i < len; i += 76) {
        g_string_append_len(m, b64 + i, (gssize) MIN(76, len - i));
        g_string_append_c(m, '\n');
    }
    g_string_append(m, "--h--\n\n--g--\n");
    return m;
}

char *fbl_hostile_attachment_sha256(size_t bytes)
{
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    guint8 buf[4096];
    for (size_t i = 0; i < bytes;) {
        size_t n = MIN(sizeof buf, bytes - i);
        for (size_t j = 0; j < n; j++)
            buf[j] = pattern_byte(i + j);
        g_checksum_update(sum, buf, (gssize) n);
        i += n;
    }
    char *hex = g_strdup(g_checksum_get_string(sum));
    g_checksum_free(sum);
    return hex;
}
