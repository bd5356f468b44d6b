/* received.c - Received header fields into hops (shapes listed in received.h) */
#include "parsers/received.h"

#include <string.h>

#include <gmime/gmime.h>

#include "parsers/ip.h"

typedef enum { ITEM_WORD, ITEM_COMMENT } item_kind;

typedef struct item {
    item_kind kind;
    char *text; /* a word, or a comment's inside without the outer parens */
} item;

static void item_free(gpointer p)
{
    item *it = p;
    g_free(it->text);
    g_free(it);
}

static void add_item(GPtrArray *items, item_kind kind, const char *start, size_t len)
{
    item *it = g_new(item, 1);
    it->kind = kind;
    it->text = g_strndup(start, len);
    g_ptr_array_add(items, it);
}

/* Split @s (no ';' date part) into words and top-level comments. */
static GPtrArray *tokenize(const char *s)
{
    GPtrArray *items = g_ptr_array_new_with_free_func(item_free);
    const char *p = s;
    while (*p != '\0') {
        if (g_ascii_isspace(*p)) {
            p++;
        } else if (*p == '(') {
            const char *start = ++p;
            unsigned depth = 1;
            while (*p != '\0' && depth > 0) {
                if (*p == '(')
                    depth++;
                else if (*p == ')')
                    depth--;
                if (depth > 0)
                    p++;
            }
            add_item(items, ITEM_COMMENT, start, (size_t) (p - start));
            if (*p == ')')
                p++;
        } else {
            const char *start = p;
            while (*p != '\0' && !g_ascii_isspace(*p) && *p != '(')
                p++;
            add_item(items, ITEM_WORD, start, (size_t) (p - start));
        }
    }
    return items;
}

static bool is_keyword(const item *it)
{
    static const char *const kw[] = {"from", "by", "with", "id", "for", "via"};
    if (it->kind != ITEM_WORD)
        return false;
    for (size_t i = 0; i < G_N_ELEMENTS(kw); i++) {
        if (g_ascii_strcasecmp(it->text, kw[i]) == 0)
            return true;
    }
    return false;
}

/* A host name as written, lower-cased, without a trailing dot; NULL if not one. */
static char *host_name(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0 || n > FBL_RECEIVED_MAX_NAME)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(s[i]) && strchr("-._", s[i]) == NULL)
            return NULL;
    }
    if (g_ascii_strncasecmp(s, "unknown", n) == 0 && n == 7)
        return NULL;
    return g_ascii_strdown(s, (gssize) n);
}

/* Any text, bounded and valid UTF-8, in lower case like every host name fbl
 * writes (a HELO is a name, "Mail.Example.COM" and "mail.example.com" are one);
 * NULL when empty or too long. */
static char *bounded_text(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FBL_RECEIVED_MAX_NAME)
        return NULL;
    g_autofree char *valid = g_utf8_make_valid(s, (gssize) n);
    return g_ascii_strdown(valid, -1);
}

/* An IP in a token like "[192.0.2.1]", "user@192.0.2.1", "192.0.2.1:25". */
static char *token_ip(const char *tok)
{
    const char *at = strrchr(tok, '@');
    if (at != NULL)
        tok = at + 1;
    char *ip = fbl_ip_canonical(tok);
    if (ip == NULL && strchr(tok, '.') != NULL) {
        const char *colon = strchr(tok, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) { /* IPv4:port */
            g_autofree char *head = g_strndup(tok, (size_t) (colon - tok));
            ip = fbl_ip_canonical(head);
        }
    }
    return ip;
}

typedef struct from_clause {
    char *ip;
    char *rdns;
    char *helo;
    bool helo_explicit; /* "helo=" or "HELO x" said it */
} from_clause;

/* Look inside one comment for [IP], "rdns [IP]", "helo=X", "HELO X", bare IP. */
/* The first non-empty HELO a comment names ("helo=X", "HELO X"). */
static void take_helo(from_clause *fc, const char *helo)
{
    if (fc->helo != NULL || *helo == '\0')
        return;
    fc->helo = bounded_text(helo);
    fc->helo_explicit = fc->helo != NULL;
}

/* An address token; "name [IP]" or "user@name [IP]" also gives the reverse DNS name. */
static void take_ip(from_clause *fc, const char *t, const char *prev)
{
    char *ip = token_ip(t);
    if (ip == NULL)
        return;
    fc->ip = ip;
    if (t[0] == '[' && prev != NULL && fc->rdns == NULL) {
        const char *at = strrchr(prev, '@');
        fc->rdns = host_name(at != NULL ? at + 1 : prev);
    }
}

static void scan_comment(const char *comment, from_clause *fc)
{
    g_auto(GStrv) toks = g_strsplit_set(comment, " \t,;", -1);
    const char *prev = NULL;
    for (size_t i = 0; toks[i] != NULL; i++) {
        char *t = toks[i];
        if (*t == '\0')
            continue;
        if (g_ascii_strncasecmp(t, "helo=", 5) == 0 || g_ascii_strncasecmp(t, "ehlo=", 5) == 0) {
            take_helo(fc, t + 5);
        } else if ((g_ascii_strcasecmp(t, "HELO") == 0 || g_ascii_strcasecmp(t, "EHLO") == 0) &&
                   toks[i + 1] != NULL && toks[i + 1][0] != '\0') {
            take_helo(fc, toks[i + 1]);
            i++;
        } else if (fc->ip == NULL) {
            take_ip(fc, t, prev);
        }
        prev = t;
    }
}

static void parse_from_clause(GPtrArray *items, guint start, guint end, fbl_hop *hop)
{
    from_clause fc = {0};
    const char *first = NULL;
    for (guint i = start; i < end; i++) {
        const item *it = g_ptr_array_index(items, i);
        if (it->kind == ITEM_COMMENT)
            scan_comment(it->text, &fc);
        else if (first == NULL)
            first = it->text;
        else if (fc.ip == NULL)
            fc.ip = token_ip(it->text); /* "from helo [192.0.2.1]" without parens */
    }
    char *first_ip = first != NULL ? token_ip(first) : NULL;
    if (first_ip != NULL) {
        if (fc.ip == NULL) {
            /* "from [IP] (helo=X)": the sender named itself only by address. */
            fc.ip = g_steal_pointer(&first_ip);
        } else if (fc.helo == NULL) {
            /* Postfix "from [10.0.0.5] (rdns [IP])": an address literal was the HELO. */
            fc.helo = bounded_text(first);
        }
        g_free(first_ip);
    } else if (first != NULL) {
        if (fc.helo_explicit) {
            /* Exim: "from RDNS ([IP] helo=HELO)" - the first word is the verified name. */
            if (fc.rdns == NULL)
                fc.rdns = host_name(first);
        } else {
            g_free(fc.helo);
            fc.helo = bounded_text(first);
        }
    }
    hop->ip = fc.ip;
    hop->from = fc.rdns;
    hop->helo = fc.helo;
}

char *fbl_date_to_iso(const char *value)
{
    if (value == NULL)
        return NULL;
    g_autofree char *trimmed = g_strstrip(g_strdup(value));
    if (*trimmed == '\0' || strlen(trimmed) > 200)
        return NULL;
    GDateTime *dt = g_mime_utils_header_decode_date(trimmed);
    if (dt == NULL)
        return NULL;
    GDateTime *utc = g_date_time_to_utc(dt);
    g_date_time_unref(dt);
    if (utc == NULL)
        return NULL;
    char *out = NULL;
    int year = g_date_time_get_year(utc);
    if (year >= 1970 && year <= 9999)
        out = g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(utc);
    return out;
}

/* "10 Jan 2024" or "7 Jan 2024" at @t: a day, a month name, a four-digit year. */
static bool day_month_year(const char *t)
{
    size_t d = 0;
    while (d < 2 && g_ascii_isdigit(t[d]))
        d++;
    if (d == 0 || t[d] != ' ')
        return false;
    const char *m = t + d + 1;
    for (size_t i = 0; i < 3; i++) {
        if (!g_ascii_isalpha(m[i]))
            return false;
    }
    const char *y = m + 3;
    return y[0] == ' ' && g_ascii_isdigit(y[1]) && g_ascii_isdigit(y[2]) && g_ascii_isdigit(y[3]) &&
           g_ascii_isdigit(y[4]);
}

/*
 * A Received line without the ';' before its date ("… id 12AB Mon, 5 Jan 2026
 * 10:00:00 +0000", as some relays and pasted copies write it): the date is the
 * first tail of the line that reads as one, starting at a day name or a day
 * number after a space. Cut there, and return the tail; NULL when none reads.
 */
static char *split_bare_date(char *s)
{
    static const char *const days[] = {"Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"};
    unsigned tries = 0;
    for (char *p = strchr(s, ' '); p != NULL && tries < 32; p = strchr(p + 1, ' ')) {
        const char *t = p + 1;
        bool day = false;
        for (size_t i = 0; i < G_N_ELEMENTS(days) && !day; i++)
            day = g_ascii_strncasecmp(t, days[i], 4) == 0;
        if (!day && !day_month_year(t))
            continue;
        tries++;
        if (strchr(t, ':') == NULL || strlen(t) > 64)
            continue;
        g_autofree char *iso = fbl_date_to_iso(t);
        if (iso != NULL) {
            *p = '\0';
            return p + 1;
        }
    }
    return NULL;
}

/* The ';' that starts the date: the last one outside comments. */
static char *split_date(char *s)
{
    char *semi = NULL;
    unsigned depth = 0;
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && depth > 0)
            depth--;
        else if (*p == ';' && depth == 0)
            semi = p;
    }
    if (semi == NULL)
        return split_bare_date(s);
    *semi = '\0';
    return semi + 1;
}

fbl_hop *fbl_received_parse(const char *value)
{
    fbl_hop *hop = fbl_hop_new();
    if (value == NULL)
        return hop;
    g_autofree char *s = g_strdup(value);
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '\r' || *p == '\n' || *p == '\t')
            *p = ' ';
    }
    char *date = split_date(s);
    hop->date = fbl_date_to_iso(date);

    g_autoptr(GPtrArray) items = tokenize(s);
    for (guint i = 0; i < items->len; i++) {
        const item *it = g_ptr_array_index(items, i);
        if (!is_keyword(it))
            continue;
        guint end = i + 1;
        while (end < items->len && !is_keyword(g_ptr_array_index(items, end)))
            end++;
        if (g_ascii_strcasecmp(it->text, "from") == 0 && hop->ip == NULL && hop->helo == NULL)
            parse_from_clause(items, i + 1, end, hop);
        else if (g_ascii_strcasecmp(it->text, "by") == 0 && hop->by == NULL && i + 1 < end) {
            const item *host = g_ptr_array_index(items, i + 1);
            if (host->kind == ITEM_WORD)
                hop->by = host_name(host->text);
            /* "by 2002:a05:6358::1" (Google), "by [192.0.2.1]": an address names the host. */
            if (host->kind == ITEM_WORD && hop->by == NULL)
                hop->by = fbl_ip_canonical(host->text);
        }
        i = end - 1;
    }
    return hop;
}
