/*
 * test_fbl_inline.c - the forwarded message inside a forward's text (parsers/inline.h)
 * and the text of an HTML body it is read from (parsers/html.h)
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <glib.h>

#include "parsers/html.h"
#include "parsers/inline.h"
#include "parsers/parse.h"
#include "tests/unit/harness.h"

/* ---- fbl_inline_recover -------------------------------------------------- */

typedef struct inline_row {
    const char *name;
    const char *text;
    bool found;
    bool full_source;
    const char *has[5]; /* header lines the recovered message has, exactly */
    const char *lacks;  /* text its header block does not contain */
} inline_row;

static const inline_row inline_rows[] = {
    {"gmail forward",
     "FYI\n\n---------- Forwarded message ---------\nFrom: Shop <deals@shop.example>\n"
     "Date: Mon, Jan 1, 2024 at 10:00 AM\nSubject: Big sale\nTo: <me@example.net>\n\nBuy now.\n",
     true,
     false,
     {"From: Shop <deals@shop.example>", "Subject: Big sale", "To: <me@example.net>"},
     NULL},
    {"collapsed pasted header split at any field name",
     "Received: from mx.spam.example (mx.spam.example [192.0.2.1]) by in.example.net with "
     "ESMTP id 7; Mon, 1 Jan 2024 10:00:00 +0000 From: Pills <a@spam.example> Subject: Cheap "
     "pills Sender: bulk@spam.example Thread-Topic: Cheap pills Content-Type: text/plain "
     "X-Mailer: Bulk 1.0 Message-ID: <x1@spam.example>\n\nbody\n",
     true,
     true,
     {"Subject: Cheap pills", "Sender: bulk@spam.example", "Thread-Topic: Cheap pills",
      "X-Mailer: Bulk 1.0", "Message-ID: <x1@spam.example>"},
     NULL},
    {"collapsed header not split at a time, a URL or Re:",
     "Received: from a.example (a.example [192.0.2.2]) by b.example; Tue, 2 Jan 2024 "
     "08:00:00 +0000 Subject: Re: call at 10:32 see http://x.example/a Date: Tue, 2 Jan 2024 "
     "08:00:00 +0000 From: x@spam.example\n",
     true,
     true,
     {"Subject: Re: call at 10:32 see http://x.example/a", "From: x@spam.example"},
     NULL},
    {"collapsed English block not split at an Italian label",
     "________________________________\nFrom: Shop <s@shop.example> Sent: Monday To: "
     "me@example.net Subject: Offer A: today only\n\ntext\n",
     true,
     false,
     {"From: Shop <s@shop.example>", "Date: Monday", "Subject: Offer A: today only"},
     NULL},
    {"uniformly indented header block",
     "\n Spam-Rejected: 1\n Received: from web.spam.example (web.spam.example [192.0.2.22]) by "
     "mx.example.de; Mon, 4 Dec 2023 06:41:29 +0100\n FROM: \n FROMN: \"Mrs X\" <>\n Reply-To: "
     "x@free.example\n Return-Path: \n\n Subject: [SPAM] FW gift\n\n List-Unsubscribe: \n "
     "X-Authenticated-Sender: \n Message-ID: <id-1@mx.example.de>\n",
     true,
     true,
     {"Subject: [SPAM] FW gift", "FROMN: \"Mrs X\" <>",
      "List-Unsubscribe:", "Message-ID: <id-1@mx.example.de>"},
     NULL},
    {"indented field names in a folded DKIM tag are folding",
     "Received: from out.spam.example (out.spam.example [192.0.2.24])\n\tby mx.example.com with "
     "ESMTPS; Sat, 13 May 2023 12:20:28 +0200\nDKIM-Signature: v=1; d=spam.example;\n\t"
     "h=Date:Message-Id:From:\n\tSubject:To:reply-to:sender;\n\tbh=abc=;\nTo: "
     "info@example.com\nSubject: Imagine your favourite products\nFrom: Deals "
     "<d@spam.example>\n\nbody\n",
     true,
     true,
     {"Subject: Imagine your favourite products", "From: Deals <d@spam.example>"},
     "Subject: To:"},
    {"DKIM field list without blanks, its indentation lost",
     "Received: from out.spam.example (out.spam.example [192.0.2.24]) by mx.example.com; Sat, "
     "13 May 2023 12:20:28 +0200\nDKIM-Signature: v=1; d=spam.example; h=Date:From:\n"
     "Subject:To:reply-to:sender:cc:\ncontent-transfer-encoding; bh=abc=;\nTo: "
     "info@example.com\nSubject: Imagine your favourite products\nFrom: d@spam.example\n\nx\n",
     true,
     true,
     {"Subject: Imagine your favourite products"},
     "Subject: To:"},
    {"DKIM field list wrapped onto its own line",
     "Received: from m.spam.example (m.spam.example [192.0.2.11]) by mx.example.com; Mon, 12 "
     "Apr 2021 13:52:02 +0000\nDKIM-Signature: a=rsa-sha256; d=spam.example; h=Content-Type:\n"
     "To: Subject: From: Date: Mime-Version: Message-Id: Sender;\nbh=Fd6=;\nDate: Mon, 12 Apr "
     "2021 13:51:43 +0000\nFrom: survey@spam.example\nSubject: Have your say\n\nbody\n",
     true,
     true,
     {"Subject: Have your say", "From: survey@spam.example"},
     "Subject: \n"},
    {"a value of colon-separated words is no list of field names",
     "Received: from a.spam.example ([192.0.2.41]) by mx.example.com; Sun, 31 Dec 2023 "
     "00:37:43 -0800\nSubject: Confirm your account\nCc: me@example.com\nFeedback-ID: "
     "s114-_:s114:a28:mailer\nX-Complaints-To: abuse@mailer.example\n\nbody\n",
     true,
     true,
     {"Cc: me@example.com", "Feedback-ID: s114-_:s114:a28:mailer"},
     NULL},
    {"DKIM field list inside the signature's line",
     "Received: from m.spam.example (m.spam.example [192.0.2.12]) by mx.example.com; Mon, 12 "
     "Apr 2021 13:52:02 +0000\nDKIM-Signature: a=rsa-sha256; d=spam.example; h=Content-Type: "
     "Mime-Version: Subject: From: To: Message-Id: Sender: Date; bh=Fd6=;\nFrom: "
     "survey@spam.example\nSubject: Have your say\n\nbody\n",
     true,
     true,
     {"Subject: Have your say", "From: survey@spam.example"},
     "Subject: \n"},
    {"double-spaced pasted source",
     "Raw data:\n\nReceived: from 192.0.2.139\n\nby mx.example.com with HTTPS; Mon, 19 Sep "
     "2022 23:02:39 +0000\n\nReturn-Path: <f@host.spam.example>\n\nFrom: Notifier "
     "<f@host.spam.example>\n\nSubject: Missed voicemessage\n\n\n\nPGh0bWw+\n",
     true,
     true,
     {"Received: from 192.0.2.139 by mx.example.com with HTTPS; Mon, 19 Sep 2022 23:02:39 "
      "+0000",
      "Subject: Missed voicemessage"},
     NULL},
    {"line of white space inside a folded signature",
     "Received: from mta.spam.example (mta.spam.example [192.0.2.251]) by mx.example.it; Fri, "
     "6 Oct 2023 13:15:55 +0200\nDKIM-Signature: v=1; d=spam.example;\n  \nb=Hxc6mVpZ\n    \n"
     "UWmC6hGd\nFrom: News <news@spam.example>\nSubject: Welcome October\n\nbody\n",
     true,
     true,
     {"Subject: Welcome October", "From: News <news@spam.example>"},
     NULL},
    {"hard-wrapped subject in a pasted source",
     "Return-Path: <b@spam.example>\nReceived: from out.example.com ([192.0.2.88]) by cmsmtp "
     "with ESMTP; Sun, 10 Oct 2021 20:11:50 +0000\nFrom: Energy Windows\n<b@spam.example>\n"
     "Subject: End of Summer |\nWINDOWS Savings\nDate: Sun, 10 Oct 2021 23:11:20 +0300\n\nx\n",
     true,
     true,
     {"From: Energy Windows <b@spam.example>", "Subject: End of Summer | WINDOWS Savings"},
     NULL},
    {"French labels with a space before the colon",
     "De : Promo <p@promo.example>\nEnvoyé : lundi 1 janvier 2024 10:00\nÀ : moi@example.fr\n"
     "Objet : Gagnez un iPhone\n\nTexte\n",
     true,
     false,
     {"From: Promo <p@promo.example>", "Date: lundi 1 janvier 2024 10:00", "To: moi@example.fr",
      "Subject: Gagnez un iPhone"},
     NULL},
    {"sparse German forward: sender and subject only",
     "Siehe unten.\n\nVon: Bank <b@bank.spam.example>\nBetreff: Konto gesperrt\n\nText\n",
     true,
     false,
     {"From: Bank <b@bank.spam.example>", "Subject: Konto gesperrt"},
     NULL},
    {"Spanish Outlook block, a label of two words",
     "De: Tienda <t@spam.example>\nEnviado el: lunes, 1 de enero de 2024 10:00\nPara: "
     "yo@example.es\nAsunto: Oferta\n\ntexto\n",
     true,
     false,
     {"From: Tienda <t@spam.example>", "Date: lunes, 1 de enero de 2024 10:00", "To: yo@example.es",
      "Subject: Oferta"},
     NULL},
    {"Italian Outlook block",
     "Da: Negozio <n@spam.example>\nInviato: lunedì 1 gennaio 2024 10:00\nA: io@example.it\n"
     "Oggetto: Offerta\n\ntesto\n",
     true,
     false,
     {"From: Negozio <n@spam.example>", "To: io@example.it", "Subject: Offerta"},
     NULL},
    {"Portuguese Outlook block",
     "De: Loja <l@spam.example>\nEnviada em: segunda-feira\nPara: eu@example.pt\n"
     "Assunto: Promoção\n\ntexto\n",
     true,
     false,
     {"From: Loja <l@spam.example>", "Date: segunda-feira", "Subject: Promoção"},
     NULL},
    {"Polish Outlook block",
     "Od: Sklep <s@spam.example>\nWysłane: poniedziałek\nDo: ja@example.pl\nTemat: Promocja\n\n"
     "tekst\n",
     true,
     false,
     {"From: Sklep <s@spam.example>", "To: ja@example.pl", "Subject: Promocja"},
     NULL},
    {"Russian labels",
     "От: Магазин <m@spam.example>\nОтправлено: 1 января 2024 г.\nКому: я@example.ru\n"
     "Тема: Скидки\n\nтекст\n",
     true,
     false,
     {"From: Магазин <m@spam.example>", "Subject: Скидки"},
     NULL},
    {"Japanese labels",
     "差出人: 店 <s@spam.example>\n送信日時: 2024年1月1日\n宛先: me@example.jp\n件名: "
     "セール\n\n本文\n",
     true,
     false,
     {"From: 店 <s@spam.example>", "To: me@example.jp", "Subject: セール"},
     NULL},
    {"Chinese labels with full-width colons",
     "发件人：商店 <s@spam.example>\n发送时间：2024年1月1日\n收件人：me@example.cn\n"
     "主题：优惠\n\n正文\n",
     true,
     false,
     {"From: 商店 <s@spam.example>", "Subject: 优惠"},
     NULL},
    {"labels with HTML entities for the blank and the colon",
     "De&nbsp;: Promo <p@promo.example>\nEnvoyé&#58; lundi\nÀ&nbsp;: moi@example.fr\n"
     "Objet&#58; Gagnez\n\nTexte\n",
     true,
     false,
     {"From: Promo <p@promo.example>", "Subject: Gagnez"},
     NULL},
    {"Outlook's bold labels in plain text",
     "*From:* Shop [mailto:s@shop.example]\n*Sent:* Monday\n*To:* me@example.net\n"
     "*Subject:* Deal of the day\n\ntext\n",
     true,
     false,
     {"From: Shop <s@shop.example>", "Subject: Deal of the day"},
     NULL},
    {"pasted header lines above an Open-Xchange forward of the same message",
     "Please block this.\nReturn-Path: <b@bounce.spam.example>\nReceived: from md2.example.local "
     "([192.0.2.112]) by mc19.example.local with LMTP; Sun, 28 Mar 2021 16:35:04 +0200\n"
     "X-SourceIP: 192.0.2.96\n\n---------- Oorspronkelijk bericht ----------\nVan: Hotel "
     "<h@hotel.spam.example>\nAan: me@example.nl\nDatum: 7 februari 2018 om 17:38\n"
     "Onderwerp: Een weekend weg.\n\n\n<https://x.example/a>Beste!\n",
     true,
     true,
     {"Return-Path: <b@bounce.spam.example>", "X-SourceIP: 192.0.2.96",
      "From: Hotel <h@hotel.spam.example>", "Subject: Een weekend weg."},
     "Beste"},
    {"marker and the first field on one line",
     "Spam below. ---------- Forwarded message --------- From: Coin <x@coins.example>\nDate: "
     "Sat, Jan 10, 2026 at 7:00 AM\nSubject: Crypto gains\nTo: <lee@example.net>\n\nDouble it.\n",
     true,
     false,
     {"From: Coin <x@coins.example>", "Subject: Crypto gains", "To: <lee@example.net>"},
     NULL},
    {"pasted source preferred to the complainant's forward above it",
     "---- Weitergeleitete Nachricht von root@scanner.example ---\nVon: root@scanner.example\n"
     "An: support@example.de\nBetreff: SPAM_NOTICE\nDatum: 2022-05-31 18:20:02\n\nlog line\n"
     "---- Ende der weitergeleiteten Nachricht ---\nReceived: from dyn.example.net "
     "(192.0.2.193) by mx.example.de with SMTP; 31 May 2022 17:18:53 +0200\nMessage-ID: "
     "<850@spam.example>\nFrom: <p@spam.example>\nSubject: Zahlung erforderlich\n\nbody\n",
     true,
     true,
     {"Subject: Zahlung erforderlich", "Message-ID: <850@spam.example>"},
     "SPAM_NOTICE"},
    {"web form fields, then the pasted source under an intro line",
     "From: Someone <s@example.org>\n\nSubject: New abuse complaint - 192.0.2.209 - Spam\n"
     "Phone: \nDomain: \nFile: \n\nMessage Body:\nX-Trace-Received: from mx [127.0.0.1]\n"
     "Return-Path: <n@spam.example>\nReceived: from c.spam.example [192.0.2.209] by "
     "mx.example.net; Fri, 02 Dec 2022 21:17:27 -0000\nFrom: \"Drill Set\" <n@spam.example>\n"
     "Subject: Please confirm receipt #46267\n\nbody\n",
     true,
     true,
     {"From: \"Drill Set\" <n@spam.example>", "Subject: Please confirm receipt #46267"},
     "New abuse complaint"},
    {"a source run onto the sentence introducing it",
     "The logs are as follows: Header Information:Received: from bad.spam.example (unknown "
     "[192.0.2.54]) by\nfilter.example.net; Sat, 20 Nov 2021 08:30:11 +0000\nReceived: from "
     "14.filter.example.net ([192.0.2.14]) by host.example.com; Sat, 20 Nov 2021\nFrom: \"X "
     "GROUP\" <accounts@spam.example>\nSubject: BALANCE DUE\nMessage-ID: <h1@spam.example>\n",
     true,
     true,
     {"Received: from bad.spam.example (unknown [192.0.2.54]) by filter.example.net; Sat, 20 "
      "Nov 2021 08:30:11 +0000",
      "Subject: BALANCE DUE"},
     NULL},
    {"a source run onto a line of stars, but not an X-Received field",
     "X-Received: by 10.0.0.1 with SMTP id x; Mon, 1 Jan 2024\nnotes\n"
     "****************Received: from mx.spam.example ([192.0.2.7]) by in.example.com; Mon, 1 "
     "Jan 2024 10:00:00 +0000\nFrom: a@spam.example\nSubject: Offer\n\nbody\n",
     true,
     true,
     {"Received: from mx.spam.example ([192.0.2.7]) by in.example.com; Mon, 1 Jan 2024 "
      "10:00:00 +0000"},
     "10.0.0.1"},
    {"HTML-escaped values",
     "Received: from smart.example.br (smart.example.br [192.0.2.60]) by mx.example.com; Thu, "
     "30 May 2019 17:00:58 -0700\nFrom: &quot;Mrs X&quot; &lt;x@spam.example.br&gt;\n"
     "Message-ID: &lt;OF53.A99@spam.example.br&gt;\nSubject: Greetings &amp; &#8364;\n\nbody\n",
     true,
     true,
     {"From: \"Mrs X\" <x@spam.example.br>", "Message-ID: <OF53.A99@spam.example.br>",
      "Subject: Greetings & \u20ac"},
     "&lt;"},
    {"no-break spaces of a webmail paste",
     "Received:\u00a0from\u00a0192.0.2.139\n\u00a0by\u00a0mx.example.com\u00a0with\u00a0HTTPS;"
     "\u00a0Tue, 22 Nov 2022 15:24:24 +0000\nFrom:\u00a0Shop <s@spam.example>\n"
     "Subject:\u00a0Order verification\n\nbody\n",
     true,
     true,
     {"Received: from 192.0.2.139 by mx.example.com with HTTPS; Tue, 22 Nov 2022 15:24:24 "
      "+0000",
      "Subject: Order verification"},
     NULL},
    {"unfolding keeps the white space of the fold",
     "Received: from a.example ([192.0.2.5])\n\tby b.example; Mon, 1 Jan 2024 10:00:00 +0000\n"
     "From: x@spam.example\nSubject: one\n\ttwo\n\nbody\n",
     true,
     true,
     {"Received: from a.example ([192.0.2.5])\tby b.example; Mon, 1 Jan 2024 10:00:00 +0000",
      "Subject: one\ttwo"},
     NULL},
    {"masked sender and subject name no message",
     "Email-Header:\nFrom: ********\nTo: ********\nSubject: ********\nDate: ********\n",
     false,
     false,
     {NULL},
     NULL},
    {"prose only",
     "Hello,\nplease stop the spam from 192.0.2.1.\nRegards\n",
     false,
     false,
     {NULL},
     NULL},
    {"a subject ending like an intro line is a field",
     "From: Shop <s@spam.example>\nSent: Monday\nTo: me@example.net\nSubject: Your original "
     "offer:\n\ntext\n",
     true,
     false,
     {"Subject: Your original offer:"},
     NULL},
    {"localised Outlook marker",
     "-----Ursprüngliche Nachricht-----\nVon: Shop <s@spam.example>\nGesendet: Montag\n"
     "Betreff: Angebot\n\nText\n",
     true,
     false,
     {"From: Shop <s@spam.example>", "Subject: Angebot"},
     NULL},
    {"Apple Mail's marker in German",
     "Anfang der weitergeleiteten Nachricht:\n\nVon: Shop <s@spam.example>\nBetreff: "
     "Angebot\n\nText\n",
     true,
     false,
     {"From: Shop <s@spam.example>", "Subject: Angebot"},
     NULL},
};

static char *header_block(const GString *message)
{
    const char *end = strstr(message->str, "\n\n");
    return g_strndup(message->str, end != NULL ? (size_t) (end - message->str) + 1 : message->len);
}

static bool has_line(const char *head, const char *want)
{
    g_auto(GStrv) lines = g_strsplit(head, "\n", -1);
    for (size_t i = 0; lines[i] != NULL; i++) {
        if (strcmp(lines[i], want) == 0)
            return true;
    }
    return false;
}

static void check_recovered(const inline_row *row, const fbl_inline *out)
{
    g_autofree char *head = header_block(out->message);
    if (out->full_source != row->full_source)
        ROW_FAIL("row '%s': full_source %d, want %d", row->name, out->full_source,
                 row->full_source);
    for (size_t k = 0; k < G_N_ELEMENTS(row->has) && row->has[k] != NULL; k++) {
        if (!has_line(head, row->has[k]))
            ROW_FAIL("row '%s': no line '%s' in:\n%s", row->name, row->has[k], head);
    }
    if (row->lacks != NULL && strstr(head, row->lacks) != NULL)
        ROW_FAIL("row '%s': '%s' in:\n%s", row->name, row->lacks, head);
    if (out->headers == 0 || out->headers > FBL_INLINE_MAX_HEADERS)
        ROW_FAIL("row '%s': %u headers", row->name, out->headers);
}

static void test_recover(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(inline_rows); i++) {
        const inline_row *row = &inline_rows[i];
        fbl_inline out;
        bool found = fbl_inline_recover(row->text, strlen(row->text), &out);
        if (found != row->found)
            ROW_FAIL("row '%s': found %d, want %d%s%s", row->name, found, row->found,
                     found ? ":\n" : "", found ? out.message->str : "");
        else if (found)
            check_recovered(row, &out);
        fbl_inline_clear(&out);
    }
    fbl_test_rows_done();
}

/* The bounds: only FBL_INLINE_MAX_SCAN bytes are read, FBL_INLINE_MAX_HEADERS kept. */
static void test_bounds(void **state)
{
    (void) state;
    GString *text = g_string_new("Received: from a.example ([192.0.2.1]) by b.example\n"
                                 "Subject: early\n");
    for (unsigned i = 0; i < 2 * FBL_INLINE_MAX_HEADERS; i++)
        g_string_append_printf(text, "X-Field-%u: %u\n", i, i);
    g_string_append(text, "\nbody\n");
    fbl_inline out;
    assert_true(fbl_inline_recover(text->str, text->len, &out));
    assert_int_equal(out.headers, FBL_INLINE_MAX_HEADERS);
    fbl_inline_clear(&out);

    /* A forward beyond the scanned prefix is not found. */
    g_string_truncate(text, 0);
    while (text->len <= FBL_INLINE_MAX_SCAN)
        g_string_append(text, "filler line of prose\n");
    g_string_append(text, "From: a@spam.example\nSubject: s\nDate: d\n\nbody\n");
    assert_false(fbl_inline_recover(text->str, text->len, &out));
    fbl_inline_clear(&out);
    g_string_free(text, TRUE);
}

/* ---- fbl_html_to_text ---------------------------------------------------- */

typedef struct html_row {
    const char *name;
    const char *html;
    const char *text;
} html_row;

static const html_row html_rows[] = {
    {"a line of no-break spaces is a blank line", "<p>Subject: Hi<br>&nbsp;<br>Body</p>",
     "Subject: Hi\n\nBody\n"},
    {"runs of white space are one space, none at the end of a line",
     "<div>Subject:   Cheap\r\n   pills   </div><div>next</div>", "Subject: Cheap pills\nnext\n"},
    {"an address written unescaped stays",
     "<div>From: \"Shop\"<sales@shop.example style=\"x\"></div><div>To: "
     "me</sales@shop.example></div>",
     "From: \"Shop\"<sales@shop.example>\nTo: me\n"},
    {"pre keeps its lines and indentation",
     "Headers:<pre>Received: from a\r\n  by b\nSubject: x</pre>after",
     "Headers:\nReceived: from a\n  by b\nSubject: x\nafter"},
    {"a link's target follows its text", "<p><a href=\"https://x.example/p\">click</a></p>",
     "click <https://x.example/p>\n"},
    {"indentation with no-break spaces is not a fold", "Received: from a<br>&nbsp;&nbsp;by b",
     "Received: from a\nby b\n"},
    {"a rule is a line of underscores", "<div>a</div><hr style=\"width:98%\"><div>b</div>",
     "a\n________________________________\nb\n"},
    {"a link whose text is its target is not repeated",
     "<p>Received: from <a href=\"http://mx.example.net\">mx.example.net</a> (x)</p>",
     "Received: from mx.example.net (x)\n"},
    {"a br on a line of its own is a blank line", "<div>To: me<br></div><br><div>Body</div>",
     "To: me\n\nBody\n"},
};

static void test_html(void **state)
{
    (void) state;
    for (size_t i = 0; i < G_N_ELEMENTS(html_rows); i++) {
        const html_row *row = &html_rows[i];
        g_autofree char *got = fbl_html_to_text(row->html, strlen(row->html));
        if (strcmp(got, row->text) != 0)
            ROW_FAIL("row '%s': want '%s', got '%s'", row->name, row->text, got);
    }
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recover),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_html),
    };
    return cmocka_run_group_tests(tests, fbl_test_setup_parsers, fbl_test_teardown_parsers);
}
