/* inline.c - the forwarded message inside a forward's text (see inline.h) */
#include "parsers/inline.h"

#include <string.h>

/* Longest label and field name looked at, lines a fold is looked for across, lines
 * double spacing is looked for across: bounds that keep every scan linear. */
#define LABEL_MAX      24
#define FIELD_NAME_MAX 96
#define FOLD_LOOKAHEAD 64
#define SPACING_PAIRS  8
#define MARKER_PEEK    160

/* ---- field names --------------------------------------------------------- */

/* The languages of the labels. A forward's block is written by one client in one
 * language, so a line it collapsed is split only at labels of that language: an
 * Italian "A:" inside an English subject stays text. */
enum {
    L_EN = 1 << 0,
    L_DE = 1 << 1,
    L_FR = 1 << 2,
    L_ES = 1 << 3,
    L_IT = 1 << 4,
    L_PT = 1 << 5,
    L_NL = 1 << 6,
    L_PL = 1 << 7,
    L_CS = 1 << 8,
    L_RU = 1 << 9,
    L_JA = 1 << 10,
    L_ZH = 1 << 11,
    L_SV = 1 << 12,
    L_DA = 1 << 13,
    L_ALL = 0xffff,
};

typedef enum {
    LABEL,     /* what a forwarding client writes above the message */
    HEADER,    /* only the message's own header has it */
    TRANSPORT, /* the same, and it makes the block a pasted source */
} name_kind;

/* What a label or field name stands for. */
typedef struct alias {
    const char *canonical;
    unsigned langs; /* the languages that have the label */
    name_kind kind;
} alias;

/* The labels mail clients write above a forwarded message, one row per language, in the
 * order of label_fields[]; '|' separates a language's names for one field. */
typedef struct language {
    unsigned lang;
    const char *names[5];
} language;

static const char *const label_fields[] = {"From", "Date", "To", "Cc", "Subject"};

static const language languages[] = {
    {L_EN, {"From", "Sent|Date", "To", "Cc|CC", "Subject"}},
    {L_DE, {"Von", "Gesendet|Datum", "An", "Cc|CC|Kopie", "Betreff"}},
    {L_FR, {"De", "Envoyé|Date", "À|A", "Cc|CC", "Objet"}},
    {L_ES, {"De", "Enviado el|Enviado|Fecha", "Para", "Cc|CC", "Asunto"}},
    {L_IT, {"Da", "Inviato|Data", "A", "Cc|CC", "Oggetto"}},
    {L_PT, {"De", "Enviada em|Enviada|Enviado|Data", "Para", "Cc|CC", "Assunto"}},
    {L_NL, {"Van|Afzender", "Verzonden|Datum", "Aan", "Cc|CC", "Onderwerp"}},
    {L_PL, {"Od", "Wysłane|Wysłano|Data", "Do", "DW|Cc|CC", "Temat"}},
    {L_CS, {"Od", "Odesláno|Datum", "Komu", "Kopie|Cc|CC", "Předmět"}},
    {L_SV, {"Från", "Skickat|Datum", "Till", "Kopia|Cc|CC", "Ämne"}},
    {L_DA, {"Fra", "Sendt|Dato", "Til", "Cc|CC", "Emne"}},
    {L_RU, {"От", "Отправлено|Дата", "Кому", "Копия|Cc|CC", "Тема"}},
    {L_JA, {"差出人", "送信日時|日付", "宛先", "Cc|CC", "件名"}},
    {L_ZH,
     {"发件人|寄件者", "发送时间|日期|时间|寄件日期", "收件人|收件者", "抄送|副本|Cc|CC",
      "主题|主旨"}},
};

/* The fields of a message's own header that recovery needs by name. */
static const struct {
    const char *name;
    name_kind kind;
} header_names[] = {{"Reply-To", LABEL},
                    {"Message-ID", HEADER},
                    {"Return-Path", TRANSPORT},
                    {"Received", TRANSPORT}};

/* How strictly a label is matched. */
typedef enum {
    MATCH_LINE, /* at the start of a line: "From:x" and "FROM:" too */
    MATCH_MID,  /* inside a line: as strict, and short labels in their own case */
} match_mode;

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* A colon at @q, plain, full-width ('：') or as an HTML entity; its length, or 0. */
static size_t colon_len(const char *q)
{
    if (*q == ':')
        return 1;
    if (strncmp(q, "\xEF\xBC\x9A", 3) == 0)
        return 3;
    if (g_ascii_strncasecmp(q, "&#58;", 5) == 0)
        return 5;
    return g_ascii_strncasecmp(q, "&#x3a;", 6) == 0 ? 6 : 0;
}

/* The bytes of a label's name at @p: up to a colon, a blank, Outlook's '*' or an entity. */
static size_t label_len(const char *p)
{
    size_t n = 0;
    while (n <= LABEL_MAX && p[n] != '\0' && p[n] != ':' && !is_wsp(p[n]) && p[n] != '*' &&
           p[n] != '&' && strncmp(p + n, "\xEF\xBC\x9A", 3) != 0)
        n++;
    return n;
}

/*
 * What follows a label's name: Outlook's bold ("*From:*"), blanks (French writes
 * "De :", and an HTML copy "De&nbsp;:"), the colon, another '*'. NULL without a colon.
 */
static const char *after_label(const char *q)
{
    if (*q == '*')
        q++;
    for (int i = 0; i < 3 && (is_wsp(*q) || strncmp(q, "&nbsp;", 6) == 0); i++)
        q += *q == '&' ? 6 : 1;
    size_t n = colon_len(q);
    if (n == 0)
        return NULL;
    q += n;
    return *q == '*' ? q + 1 : q;
}

/* @n bytes at @p against the @n bytes of a name. */
static bool same_name(const char *p, const char *name, size_t n, match_mode mode)
{
    /* inside a line "To:" or "A:" must be written as a client writes it */
    if (mode == MATCH_MID && n < 4)
        return strncmp(p, name, n) == 0;
    return g_ascii_strncasecmp(p, name, n) == 0;
}

/* The labels of languages[] one by one, with their lengths: looked up for every word
 * followed by a colon, so built once (thread-safe, by g_once). */
typedef struct label_entry {
    const char *name; /* not terminated: len bytes of a languages[] string */
    size_t len;
    size_t field; /* index into label_fields[] */
    unsigned lang;
} label_entry;

#define LABELS_MAX 160

static label_entry label_index[LABELS_MAX];
static size_t label_count;

static void index_names(const char *names, size_t field, unsigned lang)
{
    for (const char *s = names; *s != '\0';) {
        size_t len = strcspn(s, "|");
        g_assert(label_count < LABELS_MAX);
        label_index[label_count++] = (label_entry){s, len, field, lang};
        s += len + (s[len] == '|' ? 1 : 0);
    }
}

static void index_labels(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(languages); i++) {
        for (size_t c = 0; c < G_N_ELEMENTS(label_fields); c++)
            index_names(languages[i].names[c], c, languages[i].lang);
    }
}

static const label_entry *labels(size_t *count)
{
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        index_labels();
        g_once_init_leave(&once, 1);
    }
    *count = label_count;
    return label_index;
}

/* What the @n bytes at @p name: a label (of every language that has it) or a field. */
static bool find_name(const char *p, size_t n, match_mode mode, alias *out)
{
    *out = (alias){NULL, 0, LABEL};
    size_t count;
    const label_entry *e = labels(&count);
    for (size_t i = 0; i < count; i++) {
        if (e[i].len != n || g_ascii_tolower(e[i].name[0]) != g_ascii_tolower(p[0]))
            continue; /* most entries differ here: the cheap test first */
        if (same_name(p, e[i].name, n, mode)) {
            out->canonical = label_fields[e[i].field];
            out->langs |= e[i].lang;
        }
    }
    for (size_t i = 0; out->langs == 0 && i < G_N_ELEMENTS(header_names); i++) {
        if (strlen(header_names[i].name) == n && same_name(p, header_names[i].name, n, mode))
            *out = (alias){header_names[i].name, L_EN, header_names[i].kind};
    }
    return out->langs != 0;
}

/* The known label or field at @p: what it names, and where its value starts. A label
 * is one word, or two ("Enviado el:", Spanish Outlook's). */
static bool known_field(const char *p, match_mode mode, alias *out, const char **value)
{
    size_t n = label_len(p);
    if (n == 0 || n > LABEL_MAX)
        return false;
    if (p[n] == ' ' && after_label(p + n) == NULL)
        n += 1 + label_len(p + n + 1);
    const char *v = n <= LABEL_MAX ? after_label(p + n) : NULL;
    if (v == NULL || (mode != MATCH_LINE && *v != '\0' && !is_wsp(*v)))
        return false;
    *value = v;
    return find_name(p, n, mode, out);
}

/* The length of an RFC 5322 field name at @p followed by its colon ("X-Mailer:"), or 0.
 * A letter first: "10:32" is a time; "http://" is no field. */
static size_t rfc_name(const char *p)
{
    if (!g_ascii_isalpha(*p))
        return 0;
    size_t n = 1;
    while (n <= FIELD_NAME_MAX && (g_ascii_isalnum(p[n]) || p[n] == '-' || p[n] == '_'))
        n++;
    if (n > FIELD_NAME_MAX || p[n] != ':' || (p[n + 1] == '/' && p[n + 2] == '/'))
        return 0;
    return n;
}

/* Every part of a hyphenated name capitalised, as header names are written. */
static bool title_case(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool part_start = i == 0 || p[i - 1] == '-';
        if (part_start && !g_ascii_isupper(p[i]) && !g_ascii_isdigit(p[i]))
            return false;
        if (p[i] == '_')
            return false;
    }
    return memchr(p, '-', n) != NULL;
}

/*
 * A name that is plausibly a real header field's and not a word ending in a colon:
 * an X- field, a Title-Case hyphenated one (Content-Type, Thread-Topic), or one of the
 * one-word fields a pasted source has. "Re:", "Fwd:", "Note:" are not.
 */
static bool plausible_name(const char *p, size_t n)
{
    static const char *const words[] = {
        "Received", "From",       "To",         "Cc",           "Bcc",        "Subject", "Date",
        "Sender",   "References", "Precedence", "Organization", "Importance", "Priority"};
    if (n >= 3 && (p[0] == 'X' || p[0] == 'x') && p[1] == '-')
        return true;
    if (title_case(p, n))
        return true;
    for (size_t i = 0; i < G_N_ELEMENTS(words); i++) {
        if (strlen(words[i]) == n && strncmp(p, words[i], n) == 0)
            return true;
    }
    return false;
}

/* A line that starts a header field: a known label, or a hyphenated field ("X-Spam-…"). */
static bool field_like(const char *text)
{
    alias a;
    const char *v;
    if (known_field(text, MATCH_LINE, &a, &v))
        return true;
    size_t n = rfc_name(text);
    return n > 0 && memchr(text, '-', n) != NULL;
}

/*
 * "To: Subject: From: Date: Mime-Version: Message-Id: Sender;" - the field names a
 * DKIM or ARC signature lists in its h= tag, wrapped onto a line of their own: three
 * names or more, each colon followed by a blank, nothing else but the list's last name
 * ("Feedback-ID: s11430124-_:s11430124:a288918:postmark" is a field).
 */
/* "Subject:To:reply-to:sender:cc:" - the same list without blanks: three names or more
 * joined by colons, and nothing else on the line. */
static bool is_joined_names(const char *line)
{
    unsigned names = 0;
    const char *p = line;
    while (g_ascii_isalpha(*p)) {
        size_t n = 1;
        while (n <= FIELD_NAME_MAX && (g_ascii_isalnum(p[n]) || p[n] == '-'))
            n++;
        names++;
        p += n;
        if (*p != ':')
            break;
        p++;
    }
    return names >= 3 && (*p == '\0' || (*p == ';' && p[1] == '\0'));
}

static bool is_name_list(const char *line)
{
    if (is_joined_names(line))
        return true;
    unsigned names = 0;
    const char *p = line;
    for (size_t n = rfc_name(p); n > 0 && (is_wsp(p[n + 1]) || p[n + 1] == '\0'); n = rfc_name(p)) {
        names++;
        p += n + 1;
        while (is_wsp(*p))
            p++;
    }
    size_t k = 0;
    while (g_ascii_isalnum(p[k]) || p[k] == '-')
        k++;
    bool tail_ok = p[k] == '\0' || (p[k] == ';' && p[k + 1] == '\0');
    return names >= 3 && tail_ok;
}

/* ---- lines --------------------------------------------------------------- */

/* One line of the text: its "> " quoting, indentation and content. */
typedef struct line_view {
    const char *after_quote; /* the line without its quoting: the fold's white space kept */
    const char *text;        /* the content: without indentation and Outlook's leading '*' */
    size_t indent;
} line_view;

static void view_line(const char *raw, line_view *v)
{
    const char *p = raw;
    while (is_wsp(*p))
        p++;
    if (*p == '>') {
        while (*p == '>')
            p += p[1] == ' ' ? 2 : 1;
    } else {
        p = raw;
    }
    v->after_quote = p;
    size_t n = 0;
    while (is_wsp(p[n]))
        n++;
    v->indent = n;
    v->text = p[n] == '*' ? p + n + 1 : p + n;
}

static bool line_is_blank(const char *line)
{
    line_view v;
    view_line(line, &v);
    return *v.text == '\0';
}

/* No-break spaces (U+00A0, and CJK's U+3000) as spaces: webmail writes them in pasted
 * headers ("Received:\u00A0from"), where a parser of fields sees no white space. */
static void plain_spaces(char *s)
{
    char *w = s;
    for (const char *r = s; *r != '\0';) {
        if ((guchar) r[0] == 0xC2 && (guchar) r[1] == 0xA0) {
            *w++ = ' ';
            r += 2;
        } else if ((guchar) r[0] == 0xE3 && (guchar) r[1] == 0x80 && (guchar) r[2] == 0x80) {
            *w++ = ' ';
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* ---- forward markers ----------------------------------------------------- */

/* Words of the lines clients put above a forwarded or quoted message, lower case. */
static const char *const marker_words[] = {
    "forward",     "original",       "weitergeleitet", "ursprüngliche", "transféré",
    "d'origine",   "réexpédié",      "reenviado",      "inoltrato",     "originale",
    "encaminhada", "doorgestuurd",   "oorspronkelijk", "przekazan",     "oryginalna",
    "předaná",     "přeposlan",      "пересыла",       "исходное",      "переадресован",
    "転送",        "元のメッセージ", "转发",           "原始邮件",      "轉寄",
    "原始郵件",
};

static bool has_marker_word(const char *text)
{
    size_t n = 0;
    while (n < MARKER_PEEK && text[n] != '\0')
        n++;
    g_autofree char *head = g_utf8_make_valid(text, (gssize) n);
    g_autofree char *low = g_utf8_strdown(head, -1);
    for (size_t i = 0; i < G_N_ELEMENTS(marker_words); i++) {
        if (strstr(low, marker_words[i]) != NULL)
            return true;
    }
    return false;
}

/* Outlook's separator: a line of underscores only. */
static bool is_rule(const char *line)
{
    size_t n = strspn(line, "_");
    return n >= 20 && line[n + strspn(line + n, " \t")] == '\0';
}

/* "---------- Forwarded message ---------", "-----Ursprüngliche Nachricht-----",
 * "---- Oorspronkelijk bericht ----": a rule of dashes, then the words. */
static const char *rule_marker(const char *line)
{
    const char *d = strstr(line, "--");
    return d != NULL && has_marker_word(d) ? d : NULL;
}

/* Apple Mail's "Begin forwarded message:" and its translations: a short line of words
 * about forwarding, ending in a colon. */
static bool intro_marker(const char *line)
{
    size_t n = strlen(line);
    while (n > 0 && is_wsp(line[n - 1]))
        n--;
    return n > 0 && n <= 80 && line[n - 1] == ':' && rule_marker(line) == NULL &&
           g_ascii_isupper(line[0]) && has_marker_word(line) && strchr(line, '@') == NULL;
}

/* A line that starts with a field name ("Subject: the original offer:") is a field. */
static bool starts_with_name(const char *line)
{
    alias a;
    const char *v;
    return known_field(line, MATCH_LINE, &a, &v) || rfc_name(line) > 0;
}

/*
 * "Message Body:", "Message Header Data:", "Phishing message headers:": a short line of
 * words (two at least: one word is a field name) ending in a colon, introducing what
 * was pasted below it (a web form's field, a notice's heading).
 */
static bool intro_line(const char *line)
{
    size_t n = 0, spaces = 0;
    while (n <= 60 && (g_ascii_isalpha(line[n]) || line[n] == ' ' || line[n] == '-')) {
        spaces += line[n] == ' ' ? 1 : 0;
        n++;
    }
    if (n > 60 || line[n] != ':' || spaces == 0 || !g_ascii_isupper(line[0]))
        return false;
    return line[n + 1 + strspn(line + n + 1, " \t")] == '\0';
}

/* A marker, for a line known not to start with a field name. */
static bool marker_line(const char *line)
{
    if (intro_line(line))
        return true;
    if (g_str_has_prefix(line, "From ") && strchr(line, '@') != NULL && strchr(line, ':') != NULL)
        return true; /* mbox "From a@b Thu Oct 26 20:34:04 2023" */
    if (g_str_has_prefix(line, "From - "))
        return true; /* Thunderbird's "From - Wed May 10 05:10:37 2023" */
    return is_rule(line) || rule_marker(line) != NULL || intro_marker(line);
}

static bool is_marker(const char *line)
{
    return !starts_with_name(line) && marker_line(line);
}

/*
 * "Spam below. ---------- Forwarded message --------- From: a <b@c>": the field after
 * a marker on the same line, where the block starts, or NULL.
 */
static const char *after_marker_on_line(const char *line)
{
    const char *d = rule_marker(line);
    if (d == NULL)
        return NULL;
    const char *words = d + strspn(d, "-");
    const char *close = strstr(words, "--");
    if (close == NULL)
        return NULL;
    const char *rest = close + strspn(close, "- \t");
    alias a;
    const char *v;
    return known_field(rest, MATCH_LINE, &a, &v) ? rest : NULL;
}

/* Make @line start at @from, a part of it further on. */
static void cut_line(char *line, const char *from)
{
    char *w = line;
    while (*from != '\0')
        *w++ = *from++;
    *w = '\0';
}

/*
 * "…as follows: Header Information:Received: from host [192.0.2.1] by …", or
 * "*****Received: from …": a pasted source whose first field was run onto the end of
 * the line before it. Only the transport fields, which prose does not contain with a
 * value like this.
 */
static const char *source_on_line(const char *line)
{
    static const char *const starts[] = {"Received: from ", "Return-Path: <"};
    for (size_t i = 0; i < G_N_ELEMENTS(starts); i++) {
        const char *s = strstr(line, starts[i]);
        /* not inside a name: "abuseReceived:", "X-Received:" */
        if (s != NULL && s > line && !g_ascii_isalnum(s[-1]) && s[-1] != '-' && s[-1] != '_')
            return s;
    }
    return NULL;
}

/* ---- blocks -------------------------------------------------------------- */

typedef struct field {
    const char *name; /* canonical; NULL when the value is a whole "Name: value" line */
    GString *value;
} field;

typedef struct block {
    GPtrArray *fields;
    size_t end;         /* the first line after the block */
    size_t base;        /* indentation of its first line: lines indented more are folded */
    bool after_marker;  /* it follows a forward marker */
    bool double_spaced; /* a blank line after every line, as some webmail pastes */
    bool full_source;   /* it has transport fields (Received, Return-Path) */
    bool pasted;        /* it has a field only a message's own header has */
    bool repaired;      /* fields were split from one line, unwrapped or unspaced */
    bool skip_blanks;   /* the block goes on across a marker or blank lines: the rest too */
    /* What its fields name, kept as they are added and extended (each check once per
     * byte): a From, a Subject, a Date or To; a From or Subject that is not masked. */
    bool has_from, has_subject, has_date_or_to, told_from, told_subject;
} block;

static void field_free(gpointer p)
{
    field *f = p;
    g_string_free(f->value, TRUE);
    g_free(f);
}

static void block_clear(block *b)
{
    if (b->fields != NULL)
        g_ptr_array_unref(b->fields);
    *b = (block){0};
}

static field *last_field(const block *b)
{
    return b->fields->len > 0 ? g_ptr_array_index(b->fields, b->fields->len - 1) : NULL;
}

/* A value masked out by whoever pasted it ("********"), or empty: it says nothing. */
static bool says_nothing(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (value[i] != '*' && !g_ascii_isspace(value[i]))
            return false;
    }
    return true;
}

/* Note what @len bytes of @value, now in a field named @name, tell about the block. */
static void note_value(block *b, const char *name, const char *value, size_t len)
{
    if (name == NULL)
        return;
    bool from = strcmp(name, "From") == 0, subject = strcmp(name, "Subject") == 0;
    b->has_from = b->has_from || from;
    b->has_subject = b->has_subject || subject;
    b->has_date_or_to = b->has_date_or_to || strcmp(name, "Date") == 0 || strcmp(name, "To") == 0;
    if ((from && !b->told_from) || (subject && !b->told_subject)) {
        bool told = !says_nothing(value, len);
        b->told_from = b->told_from || (from && told);
        b->told_subject = b->told_subject || (subject && told);
    }
}

static void add_field(block *b, const char *name, const char *value, size_t len)
{
    if (b->fields->len >= FBL_INLINE_MAX_HEADERS)
        return;
    field *f = g_new(field, 1);
    f->name = name;
    f->value = g_string_new_len(value, (gssize) len);
    g_ptr_array_add(b->fields, f);
    note_value(b, name, value, len);
}

/* A field found in a line: a known one, or (known false) another RFC 5322 field. */
typedef struct piece {
    const char *start; /* the name */
    const char *value;
    bool known;
    alias a;
} piece;

static void emit_piece(block *b, const piece *p, const char *end)
{
    if (!p->known) {
        add_field(b, NULL, p->start, (size_t) (end - p->start)); /* whole line, name kept */
        b->pasted = b->pasted || plausible_name(p->start, rfc_name(p->start));
        return;
    }
    add_field(b, p->a.canonical, p->value, (size_t) (end - p->value));
    b->pasted = b->pasted || p->a.kind != LABEL;
    b->full_source = b->full_source || p->a.kind == TRANSPORT;
}

/* A field name right after @v (ending in ':' or ';'): the name at hand is one of a list
 * ("h=Content-Type: Mime-Version: Subject: From: To: Sender: Date;" in a signature). */
static bool name_follows(const char *v)
{
    while (is_wsp(*v))
        v++;
    size_t n = 0;
    while (n <= FIELD_NAME_MAX && (g_ascii_isalnum(v[n]) || v[n] == '-'))
        n++;
    if (n == 0 || n > FIELD_NAME_MAX || (v[n] != ':' && v[n] != ';'))
        return false;
    alias a;
    return plausible_name(v, n) || find_name(v, n, MATCH_LINE, &a);
}

/* Another field starting at @p inside a line: a label of the line's language, or, in a
 * pasted header, a plausible field name followed by a colon and a blank. */
static bool piece_at(const char *p, unsigned langs, bool pasted, piece *out)
{
    out->start = p;
    out->known = known_field(p, MATCH_MID, &out->a, &out->value);
    if (out->known)
        return (out->a.langs & langs) != 0 && !name_follows(out->value);
    size_t n = pasted ? rfc_name(p) : 0;
    if (n == 0 || !plausible_name(p, n) || (p[n + 1] != '\0' && !is_wsp(p[n + 1])))
        return false;
    out->value = p + n + 1;
    return !name_follows(out->value);
}

/*
 * One line of fields, split where another field starts: a forward block collapsed onto
 * one line ("From: a Sent: b To: c Subject: d") is split at its labels; a pasted header
 * collapsed so (Sender:, DKIM-Signature:, Thread-Topic:, X-…: inside the Subject) at any
 * plausible field name. Neither splits inside a URL or a time: a blank comes first.
 */
static void split_fields(block *b, const piece *first)
{
    piece cur = *first;
    unsigned langs = first->known ? first->a.langs : L_EN;
    bool pasted = b->pasted || !first->known || first->a.kind != LABEL;
    const char *p = first->value;
    for (; *p != '\0'; p++) {
        piece next;
        if (!is_wsp(p[-1]) || !piece_at(p, langs, pasted, &next))
            continue;
        emit_piece(b, &cur, p);
        b->repaired = true;
        cur = next;
        langs &= next.known ? next.a.langs : L_ALL;
        pasted = pasted || !next.known || next.a.kind != LABEL;
    }
    emit_piece(b, &cur, p);
}

/*
 * A forward's header block is complete once it names the sender, the subject and
 * the date or the recipient: an unindented line after that is the body, not a
 * header the client wrapped.
 */
static bool block_complete(const block *b)
{
    return b->has_from && b->has_subject && b->has_date_or_to;
}

static bool names_message(const block *b)
{
    return b->told_from || b->told_subject;
}

/* A block names a message by its sender or subject, with enough fields around them:
 * three, two after a marker, or just the sender and the subject (a sparse forward). */
static bool block_ok(const block *b)
{
    guint need = b->after_marker ? 2 : 3;
    return names_message(b) && (b->fields->len >= need || (b->told_from && b->told_subject));
}

/* A folded line, unfolded as RFC 5322 says: the line break goes, the white space stays. */
static void unfold(block *b, field *prev, const char *after_quote)
{
    g_string_append(prev->value, after_quote);
    note_value(b, prev->name, after_quote, strlen(after_quote));
}

/* A line the forwarding client wrapped without indentation: the break was a space. */
static void unwrap(block *b, field *prev, const char *text)
{
    g_string_append_c(prev->value, ' ');
    g_string_append(prev->value, text);
    note_value(b, prev->name, text, strlen(text));
    b->repaired = true;
}

static bool next_is_field(const char *line, const block *b)
{
    if (line == NULL)
        return false;
    line_view v;
    view_line(line, &v);
    if (*v.text == '\0')
        return false;
    return v.indent > b->base || field_like(v.text);
}

/* A field within the next lines, before an empty line ends the header. */
static bool field_ahead(char **lines, size_t from, const block *b)
{
    for (size_t k = from; lines[k] != NULL && k < from + FOLD_LOOKAHEAD; k++) {
        line_view v;
        view_line(lines[k], &v);
        if (*v.after_quote == '\0')
            return false;
        if (v.indent <= b->base && field_like(v.text))
            return true;
    }
    return false;
}

/*
 * A blank line inside a pasted source that is not its end: double spacing before a
 * field or a folded line, or a line of white space only, which is what a fold of an
 * empty line looks like (a field follows within a few lines).
 */
static bool blank_in_source(char **lines, size_t i, const line_view *v, const block *b)
{
    if (!b->full_source)
        return false;
    if (next_is_field(lines[i + 1], b))
        return true;
    return *v->after_quote != '\0' && field_ahead(lines, i + 1, b);
}

/*
 * Blank lines after a pasted fragment that names no message (a few Received lines,
 * copied above the rest of the header or above the client's forward of the same
 * message): the block goes on when a field or a marker follows them.
 */
static bool fragment_continues(char **lines, size_t i, const block *b)
{
    if (!(b->full_source || b->pasted) || names_message(b))
        return false;
    for (size_t k = i + 1; lines[k] != NULL && k <= i + SPACING_PAIRS; k++) {
        line_view v;
        view_line(lines[k], &v);
        if (*v.text != '\0')
            return field_like(v.text) || is_marker(v.text);
    }
    return false;
}

static bool take_blank(char **lines, size_t i, const line_view *v, block *b)
{
    if (lines[i + 1] == NULL)
        return false;
    bool go_on;
    if (b->skip_blanks)
        go_on = true;
    else if (b->double_spaced)
        go_on = !line_is_blank(lines[i + 1]); /* two blank lines end it */
    else
        go_on = blank_in_source(lines, i, v, b) || fragment_continues(lines, i, b);
    b->skip_blanks = go_on && !b->double_spaced;
    b->repaired = b->repaired || go_on;
    return go_on;
}

/*
 * A marker inside a block: when the block so far names no message (the first lines of
 * a header, pasted above the client's forward of the same message), it goes on with
 * the forward's fields; else the block ends.
 */
static bool pass_marker(block *b)
{
    if (names_message(b))
        return false;
    b->skip_blanks = true;
    b->repaired = true;
    return true;
}

/* A line that is neither blank, nor a marker, nor folded: @first is the field that
 * starts it (if known), @n the length of another field name that does. */
static bool take_text(block *b, piece *first, size_t n, field *prev)
{
    const char *text = first->start;
    if (prev != NULL && (first->known || n > 0) && is_name_list(text)) {
        unwrap(b, prev, text);
        return true;
    }
    if (!first->known && n > 0 && (prev != NULL || b->after_marker)) {
        first->value = text + n + 1;
    } else if (!first->known) {
        /* Wrapped without indentation by the forwarding client: a pasted header runs to
         * its blank line, a client's block ends once it is complete. */
        bool wrapped = prev != NULL && (b->full_source || b->pasted || !block_complete(b));
        if (wrapped)
            unwrap(b, prev, text);
        return wrapped;
    }
    split_fields(b, first);
    return true;
}

/* One line of a block; false when the block ended before it. */
static bool take_line(char **lines, size_t i, block *b)
{
    line_view v;
    view_line(lines[i], &v);
    if (*v.text == '\0')
        return take_blank(lines, i, &v, b);
    b->skip_blanks = false;
    field *prev = last_field(b);
    piece first = {.start = v.text};
    first.known = known_field(v.text, MATCH_LINE, &first.a, &first.value);
    size_t n = first.known ? 0 : rfc_name(v.text);
    /* an indented line is folded, unless a label with a blank after its colon starts it */
    bool strict = first.known && (*first.value == '\0' || is_wsp(*first.value));
    if (prev != NULL && v.indent > b->base && !strict) {
        unfold(b, prev, v.after_quote);
        return true;
    }
    if (!first.known && n == 0 && marker_line(v.text))
        return pass_marker(b);
    return take_text(b, &first, n, prev);
}

/* Every line followed by one blank line, twice at least, and a field within the first
 * few lines: the block was double spaced by whoever pasted it; two blank lines end it. */
static bool double_spaced(char **lines, size_t start)
{
    size_t k = start + 1;
    bool seen = false;
    for (int pair = 0; pair < SPACING_PAIRS; pair++, k += 2) {
        if (lines[k] == NULL || !line_is_blank(lines[k]) || lines[k + 1] == NULL ||
            line_is_blank(lines[k + 1]))
            return false;
        line_view v;
        view_line(lines[k + 1], &v);
        seen = seen || field_like(v.text);
        if (seen && pair > 0)
            return true;
    }
    return false;
}

static void read_block(char **lines, size_t start, bool after_marker, block *b)
{
    b->fields = g_ptr_array_new_with_free_func(field_free);
    line_view v;
    view_line(lines[start], &v);
    b->base = v.indent;
    b->after_marker = after_marker;
    b->double_spaced = double_spaced(lines, start);
    size_t i = start;
    while (lines[i] != NULL && b->fields->len < FBL_INLINE_MAX_HEADERS && take_line(lines, i, b))
        i++;
    b->end = i;
}

/* Does a block start at line @i? Sets its first line. A marker line's own field, or a
 * source run onto a sentence, is moved to the start of the line. */
static bool block_start(char **lines, size_t i, size_t *start, bool *after_marker)
{
    line_view v;
    view_line(lines[i], &v);
    alias a;
    const char *value, *s;
    *start = i;
    *after_marker = is_marker(v.text);
    if (*after_marker) {
        s = after_marker_on_line(v.text);
        if (s != NULL) {
            cut_line(lines[i], s);
            return true;
        }
        for (*start = i + 1; lines[*start] != NULL && line_is_blank(lines[*start]);)
            (*start)++;
        return lines[*start] != NULL;
    }
    if (known_field(v.text, MATCH_LINE, &a, &value))
        return true;
    s = source_on_line(lines[i]);
    if (s != NULL)
        cut_line(lines[i], s);
    return s != NULL;
}

/* ---- the recovered message ----------------------------------------------- */

/* "Name [mailto:a@b]" (Outlook) -> "Name <a@b>" */
static void fix_mailto(GString *v)
{
    const char *m = strstr(v->str, "[mailto:");
    if (m == NULL)
        return;
    size_t at = (size_t) (m - v->str);
    const char *close = strchr(m, ']');
    if (close == NULL)
        return;
    size_t addr_len = (size_t) (close - m) - strlen("[mailto:");
    g_autofree char *addr = g_strndup(m + strlen("[mailto:"), addr_len);
    g_string_truncate(v, at);
    g_string_append_printf(v, "<%s>", addr);
}

/* The character an HTML entity at @p ("&lt;", "&#58;", "&#x3A;") stands for, and its
 * length; 0 when @p is none. Control characters are a space: a header is one line. */
static size_t entity_at(const char *p, gunichar *c)
{
    static const struct {
        const char *name;
        gunichar c;
    } named[] = {{"&lt;", '<'},   {"&gt;", '>'},    {"&amp;", '&'},
                 {"&quot;", '"'}, {"&apos;", '\''}, {"&nbsp;", ' '}};
    for (size_t i = 0; i < G_N_ELEMENTS(named); i++) {
        size_t n = strlen(named[i].name);
        if (g_ascii_strncasecmp(p, named[i].name, n) == 0) {
            *c = named[i].c;
            return n;
        }
    }
    if (p[1] != '#')
        return 0;
    bool hex = p[2] == 'x' || p[2] == 'X';
    const char *digits = p + (hex ? 3 : 2);
    size_t n = strspn(digits, hex ? "0123456789abcdefABCDEF" : "0123456789");
    if (n == 0 || n > 6 || digits[n] != ';')
        return 0;
    guint64 v = g_ascii_strtoull(digits, NULL, hex ? 16 : 10);
    if (v == 0 || !g_unichar_validate((gunichar) v))
        return 0;
    *c = v < 0x20 || v == 0x7F ? ' ' : (gunichar) v;
    return (size_t) (digits + n + 1 - p);
}

/* A value written HTML-escaped into the text ("&lt;id@host&gt;"), unescaped. */
static void unescape(GString *v)
{
    if (strchr(v->str, '&') == NULL)
        return;
    GString *out = g_string_sized_new(v->len);
    for (const char *p = v->str; *p != '\0';) {
        gunichar c;
        size_t n = *p == '&' ? entity_at(p, &c) : 0;
        if (n == 0) {
            g_string_append_c(out, *p++);
            continue;
        }
        g_string_append_unichar(out, c);
        p += n;
    }
    g_string_assign(v, out->str);
    g_string_free(out, TRUE);
}

/* The old unquoting for the body: "> " quoting and a leading '*' go. */
static const char *body_line(const char *line)
{
    if (*line != '>')
        return line;
    while (*line == '>' || is_wsp(*line))
        line++;
    return *line == '*' ? line + 1 : line;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p != '\0'; p++) {
        if (g_ascii_strncasecmp(p, needle, n) == 0)
            return true;
    }
    return false;
}

/* The boundary parameter of a Content-Type line, or NULL. */
static char *boundary_of(const char *content_type)
{
    for (const char *p = content_type; *p != '\0'; p++) {
        if (g_ascii_strncasecmp(p, "boundary=", 9) != 0)
            continue;
        p += 9;
        bool quoted = *p == '"';
        p += quoted ? 1 : 0;
        size_t n = strcspn(p, quoted ? "\"" : "; \t");
        return n > 0 ? g_strndup(p, n) : NULL;
    }
    return NULL;
}

/* A body as base64 encodes it: a first line of its alphabet only. */
static bool looks_base64(const char *body)
{
    size_t n = strspn(body, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
    return n >= 16 && (body[n] == '\n' || body[n] == '\0');
}

/* A body with HTML tags in it ("<html", "<div>", "<a href"), not text in which a
 * client wrote links as "<https://…>". */
static bool looks_html(const char *body)
{
    static const char *const tags[] = {"html", "head",  "body",   "div",  "p",
                                       "br",   "table", "td",     "a",    "span",
                                       "font", "img",   "center", "meta", "!doctype"};
    for (const char *p = strchr(body, '<'); p != NULL; p = strchr(p + 1, '<')) {
        size_t n = 0;
        while (g_ascii_isalpha(p[1 + n]) || (n == 0 && p[1] == '!'))
            n++;
        char end = p[1 + n];
        if (n == 0 || !(end == '>' || end == '/' || g_ascii_isspace(end)))
            continue;
        for (size_t i = 0; i < G_N_ELEMENTS(tags); i++) {
            if (strlen(tags[i]) == n && g_ascii_strncasecmp(p + 1, tags[i], n) == 0)
                return true;
        }
    }
    return false;
}

static bool stale_mime_field(const char *line, const char *body)
{
    if (g_ascii_strncasecmp(line, "Content-Type:", 13) == 0 && contains_ci(line, "text/html"))
        return !looks_html(body);
    if (g_ascii_strncasecmp(line, "Content-Type:", 13) == 0 && contains_ci(line, "multipart/")) {
        g_autofree char *boundary = boundary_of(line);
        g_autofree char *dashes = boundary != NULL ? g_strconcat("--", boundary, NULL) : NULL;
        return dashes == NULL || strstr(body, dashes) == NULL;
    }
    if (g_ascii_strncasecmp(line, "Content-Transfer-Encoding:", 26) == 0)
        return contains_ci(line, "base64") && !looks_base64(body);
    return false;
}

/*
 * A pasted header's MIME fields describe the body as it was sent. When the text below
 * the header is the client's rendering of it instead (without the multipart's
 * boundary, no base64, no HTML tags), they would hide that text, and its links, from
 * GMime: they are kept under an "X-Original-" name. Only the first of each is looked
 * at, so the body is scanned twice at most.
 */
static void disown_mime_fields(GPtrArray *fields, const char *body)
{
    bool type = false, encoding = false;
    for (guint i = 0; i < fields->len && !(type && encoding); i++) {
        field *f = g_ptr_array_index(fields, i);
        if (f->name != NULL)
            continue;
        bool is_type = g_ascii_strncasecmp(f->value->str, "Content-Type:", 13) == 0;
        bool is_encoding =
            g_ascii_strncasecmp(f->value->str, "Content-Transfer-Encoding:", 26) == 0;
        if ((is_type && type) || (is_encoding && encoding) || !(is_type || is_encoding))
            continue;
        type = type || is_type;
        encoding = encoding || is_encoding;
        if (stale_mime_field(f->value->str, body))
            g_string_prepend(f->value, "X-Original-");
    }
}

/* The lines after the block, from the first that is not blank, unquoted. */
static GString *body_text(char **lines, size_t end)
{
    GString *body = g_string_new(NULL);
    size_t first = end;
    while (lines[first] != NULL && line_is_blank(lines[first]))
        first++; /* the forward's blank lines between the header and the body */
    for (size_t i = first; lines[i] != NULL; i++) {
        const char *line = body_line(lines[i]);
        size_t n = strlen(line);
        while (n > 0 && g_ascii_isspace(line[n - 1]))
            n--;
        g_string_append_len(body, line, (gssize) n);
        g_string_append_c(body, '\n');
    }
    return body;
}

static void build(char **lines, const block *b, fbl_inline *out)
{
    g_autoptr(GString) body = body_text(lines, b->end);
    GString *msg = g_string_new(NULL);
    for (guint i = 0; i < b->fields->len; i++) {
        field *f = g_ptr_array_index(b->fields, i);
        unescape(f->value);
        g_strstrip(f->value->str);
        g_string_set_size(f->value, strlen(f->value->str));
    }
    disown_mime_fields(b->fields, body->str);
    for (guint i = 0; i < b->fields->len; i++) {
        field *f = g_ptr_array_index(b->fields, i);
        if (f->name == NULL) { /* a full "Name: value" line */
            g_string_append_printf(msg, "%s\n", f->value->str);
            continue;
        }
        if (strcmp(f->name, "From") == 0 || strcmp(f->name, "To") == 0 ||
            strcmp(f->name, "Cc") == 0 || strcmp(f->name, "Reply-To") == 0)
            fix_mailto(f->value);
        g_string_append_printf(msg, "%s: %s\n", f->name, f->value->str);
    }
    g_string_append_c(msg, '\n');
    g_string_append_len(msg, body->str, (gssize) body->len);
    out->message = msg;
    out->headers = b->fields->len;
    out->full_source = b->full_source;
    out->repaired = b->repaired;
}

/*
 * The text's lines, without their CR, no-break spaces plain: one copy of the text
 * cut in place, and the lines pointing into it (a pointer a line, not an allocation:
 * a megabyte of empty lines stays a few megabytes). One pass with memchr.
 */
typedef struct text_lines {
    char *copy;
    char **lines; /* NULL-terminated, into copy */
} text_lines;

static void text_lines_split(text_lines *t, const char *text, size_t len)
{
    t->copy = g_strndup(text, len);
    plain_spaces(t->copy);
    GPtrArray *lines = g_ptr_array_new();
    char *end = t->copy + strlen(t->copy); /* stops at a NUL byte, as the line view does */
    for (char *p = t->copy;;) {
        char *eol = memchr(p, '\n', (size_t) (end - p));
        char *stop = eol != NULL ? eol : end;
        while (stop > p && stop[-1] == '\r')
            stop--;
        *stop = '\0';
        g_ptr_array_add(lines, p);
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    g_ptr_array_add(lines, NULL);
    t->lines = (char **) g_ptr_array_free(lines, FALSE);
}

static void text_lines_clear(text_lines *t)
{
    g_free(t->lines);
    g_free(t->copy);
}

bool fbl_inline_recover(const char *text, size_t len, fbl_inline *out)
{
    *out = (fbl_inline){0};
    text_lines t;
    text_lines_split(&t, text, MIN(len, FBL_INLINE_MAX_SCAN));
    char **lines = t.lines;
    /* The first block wins, but a pasted source replaces a client's forward block found
     * before it: the source has the transport, and a forward above it is often the
     * complainant's own or a web form's. Blocks are read one after the other, each
     * line once. */
    block best = {0};
    for (size_t i = 0; lines[i] != NULL && !(best.full_source || best.pasted);) {
        size_t start;
        bool after_marker;
        if (!block_start(lines, i, &start, &after_marker)) {
            i++;
            continue;
        }
        block b = {0};
        read_block(lines, start, after_marker, &b);
        i = MAX(b.end, i + 1);
        if (block_ok(&b) && (best.fields == NULL || (b.full_source && !best.pasted))) {
            block_clear(&best);
            best = b;
        } else {
            block_clear(&b);
        }
    }
    if (best.fields != NULL)
        build(lines, &best, out);
    bool found = best.fields != NULL;
    block_clear(&best);
    text_lines_clear(&t);
    return found;
}

void fbl_inline_clear(fbl_inline *r)
{
    if (r->message != NULL)
        g_string_free(r->message, TRUE);
    *r = (fbl_inline){0};
}
