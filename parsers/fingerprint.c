/* fingerprint.c - campaign fingerprint (method in fingerprint.h) */
#include "parsers/fingerprint.h"

#include <string.h>

#include "parsers/report.h"
#include "parsers/urls.h"

/* "a.b.example.com" -> "example.com" (no public suffix list: stable is enough). */
static char *last_two_labels(const char *host)
{
    const char *last = strrchr(host, '.');
    if (last == NULL)
        return g_strdup(host);
    const char *p = last;
    while (p > host && p[-1] != '.')
        p--;
    return g_strdup(p);
}

static bool word_char(gunichar c)
{
    return g_unichar_isalnum(c);
}

/*
 * The words to erase. A set, not a list: names can hold thousands of words
 * and bodies 256 KiB of tokens. Most words of a body start with a byte no
 * erase word starts with, and the bitmap of those first bytes spares them
 * the hash and the lookup.
 */
typedef struct erase_set {
    GHashTable *words; /* borrowed strings */
    guint64 first[4];  /* bit b: a word starts with byte b */
} erase_set;

static void erase_set_init(erase_set *set, const GPtrArray *words)
{
    memset(set, 0, sizeof *set);
    set->words = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; words != NULL && i < words->len; i++) {
        const char *w = g_ptr_array_index(words, i);
        guchar b = (guchar) w[0];
        g_hash_table_add(set->words, (gpointer) w);
        set->first[b >> 6] |= (guint64) 1 << (b & 63);
    }
}

static bool erased(const char *word, const erase_set *set)
{
    guchar b = (guchar) word[0];
    return (set->first[b >> 6] >> (b & 63) & 1) != 0 && g_hash_table_contains(set->words, word);
}

/* Append @word (NUL-terminated, @len bytes) unless it is empty or erased: "#" for a number. */
static void add_word(GString *out, const char *word, size_t len, bool digit,
                     const erase_set *erase_words)
{
    if (len == 0 || erased(word, erase_words))
        return;
    if (digit)
        g_string_append_c(out, '#');
    else
        g_string_append_len(out, word, (gssize) len);
    g_string_append_c(out, ' ');
}

/* One whitespace-separated token into zero or more normalized words; @word: scratch. */
static void add_token(GString *out, const char *tok, const erase_set *erase_words, GString *word)
{
    /* Most tokens are ASCII letters and digits alone: no link, no address, the word itself. */
    size_t n = 0;
    bool digit = false;
    for (; g_ascii_isalnum(tok[n]); n++)
        digit = digit || g_ascii_isdigit(tok[n]);
    if (tok[n] == '\0') {
        add_word(out, tok, n, digit, erase_words);
        return;
    }
    bool www = strncmp(tok, "www.", 4) == 0;
    if (www || strstr(tok, "://") != NULL) {
        g_autofree char *host = NULL;
        g_autofree char *with_scheme = www ? g_strconcat("http://", tok, NULL) : g_strdup(tok);
        g_free(fbl_url_normalize(with_scheme, &host)); /* only the host is kept */
        if (host != NULL) {
            g_autofree char *site = last_two_labels(host);
            g_string_append(out, site);
            g_string_append_c(out, ' ');
        }
        return;
    }
    if (strchr(tok, '@') != NULL) {
        g_string_append(out, "@ ");
        return;
    }
    g_string_truncate(word, 0);
    digit = false;
    for (const char *p = tok; *p != '\0';) {
        unsigned char b = (unsigned char) *p;
        if (b < 0x80) { /* ASCII: g_unichar_isdigit/isalnum answer as g_ascii_* do */
            digit = digit || g_ascii_isdigit(b);
            if (g_ascii_isalnum(b))
                g_string_append_c(word, (char) b);
            p++;
            continue;
        }
        gunichar c = g_utf8_get_char(p);
        const char *next = g_utf8_next_char(p);
        if (g_unichar_isdigit(c))
            digit = true;
        if (word_char(c)) /* its own bytes: the text is valid UTF-8 */
            g_string_append_len(word, p, next - p);
        p = next;
    }
    add_word(out, word->str, word->len, digit, erase_words);
}

/* The tokens of @line, cut in place: what g_strsplit_set() would give, without copies. */
static void add_tokens(GString *out, char *line, const erase_set *erase_words, GString *word)
{
    static const char separators[] = " \t\r\f\v\"'<>()[]{}";
    for (char *p = line;;) {
        size_t n = strcspn(p, separators);
        char end = p[n];
        p[n] = '\0';
        if (n > 0)
            add_token(out, p, erase_words, word);
        if (end == '\0')
            return;
        p += n + 1;
    }
}

/* g_ascii_tolower() inline: this runs for every byte of every body. */
static char ascii_lower(char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char) (c | 0x20);
    return c;
}

static void append_ascii_lower(GString *out, const char *p, const char *end)
{
    size_t from = out->len;
    g_string_append_len(out, p, end - p);
    for (char *s = out->str + from; s < out->str + out->len; s++)
        *s = ascii_lower(*s);
}

/*
 * g_utf8_casefold(g_utf8_normalize(@valid, -1, G_NORMALIZE_NFKC)), for less:
 * NFKC leaves ASCII as it is and never joins an ASCII character to what comes
 * before it, and case folding goes character by character, so the text can be
 * done piece by piece. ASCII is only lowered; each piece that holds non-ASCII
 * characters is normalized and folded with the ASCII character before it (a
 * combining mark may join that one), running on over ASCII gaps shorter than
 * FOLD_GAP bytes so that words of non-Latin text are not normalized one by one.
 */
#define FOLD_GAP 64

static bool is_ascii_byte(char c)
{
    return (unsigned char) c < 0x80;
}

/* The end of the piece whose first non-ASCII character is at @q: an ASCII character or NUL. */
static const char *piece_end(const char *q)
{
    const char *end = q;
    for (;;) {
        while (*end != '\0' && !is_ascii_byte(*end))
            end++;
        const char *gap = end;
        while (*gap != '\0' && is_ascii_byte(*gap) && gap - end < FOLD_GAP)
            gap++;
        if (*gap == '\0' || is_ascii_byte(*gap))
            return end; /* the end, or a long ASCII gap */
        end = gap;
    }
}

/*
 * Most non-ASCII text is already in NFKC: letters with accents, Cyrillic, kana
 * and kanji. g_utf8_normalize() still decomposes and recomposes every
 * character of it (several hundred instructions each, and the ASCII between
 * the letters too), so a piece is first checked, character by character, by
 * the steps g_utf8_normalize() takes, and normalized only when a step would
 * change something.
 */

/*
 * Whether NFKC, taking @c alone, gives @c back: its full compatibility
 * decomposition starts with a starter (@first) and composes back, mark by
 * mark, to @c (g_unichar_compose() is the step g_utf8_normalize() takes),
 * with the marks already in canonical order.
 */
static bool recomposes(gunichar c, gunichar *first)
{
    gunichar d[G_UNICHAR_MAX_DECOMPOSITION_LENGTH];
    gsize n = g_unichar_fully_decompose(c, TRUE, d, G_N_ELEMENTS(d));
    if (n == 0 || n > G_N_ELEMENTS(d) || g_unichar_combining_class(d[0]) != 0)
        return false;
    gunichar whole = d[0];
    for (gsize i = 1; i < n; i++) {
        int cc = g_unichar_combining_class(d[i]);
        if (cc != 0 && cc < g_unichar_combining_class(d[i - 1]))
            return false; /* canonical ordering would move it */
        if (!g_unichar_compose(whole, d[i], &whole))
            return false;
    }
    *first = d[0];
    return whole == c;
}

/*
 * What the fold needs to know of one character, remembered for the last
 * characters seen (text repeats its alphabet): whether it recomposes(), and
 * its g_utf8_casefold() (case folding goes character by character, at most
 * three characters for one).
 */
#define CHAR_CACHE 64

typedef struct char_info {
    gunichar c;     /* 0: an empty slot */
    gunichar first; /* the starter its decomposition starts with */
    bool stable;    /* recomposes() and folds into folded[] */
    guint8 folded_len;
    char folded[15];
} char_info;

static const char_info *char_info_get(char_info *cache, gunichar c)
{
    char_info *ci = &cache[c % CHAR_CACHE];
    if (ci->c == c)
        return ci;
    char utf8[6];
    int n = g_unichar_to_utf8(c, utf8);
    g_autofree char *folded = g_utf8_casefold(utf8, n);
    size_t folded_len = strlen(folded);
    ci->c = c;
    ci->stable = folded_len <= sizeof ci->folded && recomposes(c, &ci->first);
    ci->folded_len = ci->stable ? (guint8) folded_len : 0;
    memcpy(ci->folded, folded, ci->folded_len);
    return ci;
}

/*
 * Append the case folding of [@p, @end) (valid UTF-8) when NFKC leaves it as
 * it is: every character recomposes to itself, and none joins the one before
 * it. A starter joins only the character right before it, and only when that
 * one is a starter too, so with each character whole again after its own
 * marks the one pair left to try is (previous character, first starter of
 * this one): what g_utf8_normalize()'s composition would try, and nothing it
 * would change. (An ASCII character never joins the one before it.) Returns
 * false, with @out as it was, when NFKC would change something.
 */
static bool append_stable_folded(GString *out, char_info *cache, const char *p, const char *end)
{
    size_t mark = out->len;
    gunichar prev = 0;
    for (; p < end; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p), joined;
        if (c < 0x80) {
            g_string_append_c(out, ascii_lower((char) c));
            prev = c;
            continue;
        }
        const char_info *ci = char_info_get(cache, c);
        if (!ci->stable || (prev != 0 && g_unichar_compose(prev, ci->first, &joined))) {
            g_string_truncate(out, mark);
            return false;
        }
        g_string_append_len(out, ci->folded, ci->folded_len);
        prev = c;
    }
    return true;
}

static char *nfkc_casefold(const char *valid)
{
    GString *out = g_string_sized_new(strlen(valid) + 16);
    char_info cache[CHAR_CACHE];
    memset(cache, 0, sizeof cache);
    const char *p = valid;
    while (*p != '\0') {
        const char *q = p;
        while (*q != '\0' && is_ascii_byte(*q))
            q++;
        if (*q == '\0') {
            append_ascii_lower(out, p, q);
            break;
        }
        const char *start = q > p ? q - 1 : q;
        append_ascii_lower(out, p, start);
        const char *end = piece_end(q);
        p = end;
        if (append_stable_folded(out, cache, start, end))
            continue;
        gssize n = end - start;
        g_autofree char *nfkc = g_utf8_normalize(start, n, G_NORMALIZE_NFKC);
        g_autofree char *folded =
            nfkc != NULL ? g_utf8_casefold(nfkc, -1) : g_utf8_casefold(start, n);
        g_string_append(out, folded);
    }
    return g_string_free(out, FALSE);
}

char *fbl_fingerprint_normalize(const char *text, const GPtrArray *erase_words)
{
    if (text == NULL)
        return g_strdup("");
    size_t len = strnlen(text, FBL_FINGERPRINT_MAX_TEXT);
    g_autofree char *valid = g_utf8_make_valid(text, (gssize) len);
    g_autofree char *folded = nfkc_casefold(valid);
    erase_set erase;
    erase_set_init(&erase, erase_words);
    GString *out = g_string_new(NULL);
    g_autoptr(GString) word = g_string_new(NULL);
    /* Line by line, cut in place (the separators are ASCII: never inside a UTF-8 sequence). */
    for (char *line = folded; line != NULL;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        while (g_ascii_isspace(*line))
            line++;
        if (*line != '>') /* quoted text is the reporter's, not the spammer's */
            add_tokens(out, line, &erase, word);
        line = nl != NULL ? nl + 1 : NULL;
    }
    g_hash_table_unref(erase.words);
    if (out->len > 0)
        g_string_truncate(out, out->len - 1);
    return g_string_free(out, FALSE);
}

static const char *strip_reply_prefixes(const char *s)
{
    static const char *const prefixes[] = {"re:", "fw:", "fwd:", "aw:", "wg:", "tr:"};
    bool again = true;
    while (again) {
        again = false;
        while (g_ascii_isspace(*s))
            s++;
        for (size_t i = 0; i < G_N_ELEMENTS(prefixes); i++) {
            size_t n = strlen(prefixes[i]);
            if (g_ascii_strncasecmp(s, prefixes[i], n) == 0) {
                s += n;
                again = true;
            }
        }
    }
    return s;
}

/* The words that name the recipient: local parts and display-name words. */
static GPtrArray *recipient_words(const GPtrArray *recipients, const GPtrArray *names)
{
    GPtrArray *words = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; recipients != NULL && i < recipients->len; i++) {
        const char *addr = g_ptr_array_index(recipients, i);
        const char *at = strchr(addr, '@');
        g_autofree char *local = g_strndup(addr, at != NULL ? (size_t) (at - addr) : strlen(addr));
        g_auto(GStrv) parts = g_strsplit_set(local, "._-+", -1);
        for (size_t j = 0; parts[j] != NULL; j++) {
            if (strlen(parts[j]) >= 3)
                g_ptr_array_add(words, g_utf8_casefold(parts[j], -1));
        }
        g_ptr_array_add(words, g_utf8_casefold(local, -1));
    }
    for (guint i = 0; names != NULL && i < names->len; i++) {
        g_autofree char *folded = g_utf8_casefold(g_ptr_array_index(names, i), -1);
        g_auto(GStrv) parts = g_strsplit_set(folded, " ,.\"'", -1);
        for (size_t j = 0; parts[j] != NULL; j++) {
            if (strlen(parts[j]) >= 3)
                g_ptr_array_add(words, g_strdup(parts[j]));
        }
    }
    return words;
}

char *fbl_fingerprint(const char *subject, const char *body, const GPtrArray *recipients,
                      const GPtrArray *recipient_names)
{
    g_autoptr(GPtrArray) erase = recipient_words(recipients, recipient_names);
    g_autofree char *subj =
        fbl_fingerprint_normalize(subject != NULL ? strip_reply_prefixes(subject) : NULL, erase);
    g_autofree char *text = fbl_fingerprint_normalize(body, erase);
    if (*subj == '\0' && *text == '\0')
        return NULL;
    g_autofree char *input = g_strdup_printf("v1\n%s\n%s", subj, text);
    char hex[FBL_SHA256_HEX_LEN + 1];
    fbl_sha256_hex(input, strlen(input), hex);
    return g_strndup(hex, 32);
}
