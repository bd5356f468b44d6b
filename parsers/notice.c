/* notice.c - complaint and listing words (see notice.h) */
#include "parsers/notice.h"

#include <string.h>

#include <glib.h>

/* Whole words, lower case. */
static const char *const complaint_words[] = {
    "spam", "spams", "spamming", "spammer", "spammers", "spammed", "spamvertised", "phish",
    "phishing", "abuse", "abusive", "complaint", "complaints", "scam", "scams", "fraud",
    "fraudulent", "unsolicited", "junk", "ube", "uce", "compromised", "suspicious", "malicious",
    /* de, fr, es, it, nl, pl, pt */
    "missbrauch", "beschwerde", "betrug", "abus", "hameçonnage", "arnaque", "estafa", "fraude",
    "truffa", "abuso", "abusi", "segnalazione", "misbruik", "oszustwo", "nadużycie", "golpe", NULL};
/* Phrases in one script or another, matched anywhere. */
static const char *const complaint_phrases[] = {
    "спам", "фишинг", "垃圾邮件", "网络钓鱼", "迷惑メール", "no deseado", "indesiderat", NULL};
static const char *const listing_words[] = {
    "blacklist", "blacklisted", "blacklisting", "blocklist", "blocklisted", "blocklisting",
    "rbl",       "dnsbl",       "delist",       "delisted",  "delisting",   NULL};
static const char *const listing_phrases[] = {"black list", "block list", "listed on",
                                              "listed in",  "added to",   NULL};

/* The text, case-folded, its first FBL_NOTICE_MAX_SCAN bytes, valid UTF-8. */
static char *folded(const char *text)
{
    size_t n = strnlen(text, FBL_NOTICE_MAX_SCAN);
    g_autofree char *valid = g_utf8_make_valid(text, (gssize) n);
    return g_utf8_casefold(valid, -1);
}

static bool is_word_char(unsigned char ch)
{
    return g_ascii_isalnum(ch) || ch >= 0x80;
}

/* @word occurs in @text with no letter or digit on either side. */
static bool has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); p != NULL; p = strstr(p + 1, word)) {
        bool left = p == text || !is_word_char((unsigned char) p[-1]);
        bool right = !is_word_char((unsigned char) p[n]);
        if (left && right)
            return true;
    }
    return false;
}

static bool mentions(const char *text, const char *const *words, const char *const *phrases)
{
    if (text == NULL)
        return false;
    g_autofree char *t = folded(text);
    for (size_t i = 0; words[i] != NULL; i++) {
        if (has_word(t, words[i]))
            return true;
    }
    for (size_t i = 0; phrases[i] != NULL; i++) {
        if (strstr(t, phrases[i]) != NULL)
            return true;
    }
    return false;
}

bool fbl_notice_is_complaint(const char *text)
{
    return mentions(text, complaint_words, complaint_phrases);
}

bool fbl_notice_is_listing(const char *text)
{
    return mentions(text, listing_words, listing_phrases);
}
