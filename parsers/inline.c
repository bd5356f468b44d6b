/* inline.c - the forwarded message inside a forward's text (see inline.h) */
#include "parsers/inline.h"

#include <string.h>

typedef struct alias {
    const char *name;
    const char *canonical;
} alias;

/* The localised names mail clients write above a forwarded message. */
static const alias aliases[] = {
    {"From", "From"},         {"Von", "From"},          {"De", "From"},
    {"Da", "From"},           {"Van", "From"},          {"Från", "From"},
    {"Fra", "From"},          {"Od", "From"},           {"Date", "Date"},
    {"Sent", "Date"},         {"Gesendet", "Date"},     {"Datum", "Date"},
    {"Envoyé", "Date"},       {"Enviado", "Date"},      {"Fecha", "Date"},
    {"Inviato", "Date"},      {"Verzonden", "Date"},    {"Skickat", "Date"},
    {"Sendt", "Date"},        {"To", "To"},             {"An", "To"},
    {"À", "To"},              {"A", "To"},              {"Para", "To"},
    {"Aan", "To"},            {"Till", "To"},           {"Til", "To"},
    {"Cc", "Cc"},             {"Kopie", "Cc"},          {"Subject", "Subject"},
    {"Betreff", "Subject"},   {"Objet", "Subject"},     {"Asunto", "Subject"},
    {"Oggetto", "Subject"},   {"Onderwerp", "Subject"}, {"Ämne", "Subject"},
    {"Emne", "Subject"},      {"Temat", "Subject"},     {"Assunto", "Subject"},
    {"Reply-To", "Reply-To"}, {"Return-Path", "Return-Path"}, {"Received", "Received"},
    {"Message-ID", "Message-ID"},
};

static const char *const markers[] = {
    "---------- Forwarded message", "-----Original Message-----", "Begin forwarded message:",
    "-------- Original Message --------", "-------- Weitergeleitete Nachricht --------",
    "-------- Message transféré --------", "----- Forwarded Message -----",
    "________________________________",
};

typedef struct field {
    const char *name; /* canonical, or as written for other fields */
    GString *value;
} field;

/* Drop "> " quoting and "*From:*"-style emphasis at the start of a line. */
static const char *unquote(const char *line)
{
    while (*line == '>' || *line == ' ' || *line == '\t')
        line++;
    if (*line == '*')
        line++;
    return line;
}

/* The canonical name of a known forward field at @p, and where its value starts. */
static const alias *known_field(const char *p, const char **value)
{
    for (size_t i = 0; i < G_N_ELEMENTS(aliases); i++) {
        size_t n = strlen(aliases[i].name);
        if (g_ascii_strncasecmp(p, aliases[i].name, n) != 0)
            continue;
        const char *q = p + n;
        if (*q == '*') /* "*From:*" */
            q++;
        if (*q != ':')
            continue;
        q++;
        if (*q == '*')
            q++;
        *value = q;
        return &aliases[i];
    }
    return NULL;
}

/* Any RFC 5322 field ("X-Mailer: …"), for pasted full sources. */
static bool any_field(const char *p, size_t *name_len)
{
    size_t n = 0;
    while (g_ascii_isalnum(p[n]) || p[n] == '-' || p[n] == '_')
        n++;
    if (n == 0 || p[n] != ':' || (p[n + 1] == '/' && p[n + 2] == '/')) /* not "http://" */
        return false;
    *name_len = n;
    return true;
}

/*
 * A forward's header block is complete once it names the sender, the subject and
 * the date or the recipient: an unindented line after that is the body, not a
 * header the client wrapped.
 */
static bool block_complete(const GPtrArray *fields)
{
    bool from = false, subject = false, date_or_to = false;
    for (guint i = 0; i < fields->len; i++) {
        const field *f = g_ptr_array_index(fields, i);
        if (f->name == NULL)
            continue;
        from = from || strcmp(f->name, "From") == 0;
        subject = subject || strcmp(f->name, "Subject") == 0;
        date_or_to = date_or_to || strcmp(f->name, "Date") == 0 || strcmp(f->name, "To") == 0;
    }
    return from && subject && date_or_to;
}

static bool is_blank(const char *s);
static bool any_field(const char *p, size_t *name_len);

/* The line after a blank one is a header field with a hyphenated name ("X-Spam-…"),
 * a known one, or a folded continuation: in a pasted full source, that blank was
 * double spacing. */
static bool next_is_field(char **lines, size_t i)
{
    if (lines[i] == NULL)
        return false;
    if ((lines[i][0] == ' ' || lines[i][0] == '\t') && !is_blank(lines[i]))
        return true;
    const char *line = unquote(lines[i]);
    const char *v;
    size_t n;
    if (known_field(line, &v) != NULL)
        return true;
    return any_field(line, &n) && memchr(line, '-', n) != NULL;
}

static bool is_blank(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!g_ascii_isspace(*s))
            return false;
    }
    return true;
}

static bool is_marker(const char *line)
{
    if (g_str_has_prefix(line, "From ") && strchr(line, '@') != NULL && strchr(line, ':') != NULL)
        return true; /* mbox "From a@b Thu Oct 26 20:34:04 2023" */
    if (g_str_has_prefix(line, "From - "))
        return true; /* Thunderbird's "From - Wed May 10 05:10:37 2023" */
    for (size_t i = 0; i < G_N_ELEMENTS(markers); i++) {
        if (strstr(line, markers[i]) != NULL)
            return true;
    }
    return false;
}

static void field_free(gpointer p)
{
    field *f = p;
    g_string_free(f->value, TRUE);
    g_free(f);
}

static void add_field(GPtrArray *fields, const char *name, const char *value, size_t len)
{
    if (fields->len >= FBL_INLINE_MAX_HEADERS)
        return;
    field *f = g_new(field, 1);
    f->name = name;
    f->value = g_string_new_len(value, (gssize) len);
    g_ptr_array_add(fields, f);
}

/* "From: a Sent: b To: c Subject: d" on one line: split at the known names. */
static bool split_collapsed(const char *line, GPtrArray *fields)
{
    const char *starts[32];
    const alias *which[32];
    const char *values[32];
    unsigned n = 0;
    for (const char *p = line; *p != '\0' && n < G_N_ELEMENTS(starts); p++) {
        if (p != line && p[-1] != ' ' && p[-1] != '\t')
            continue;
        const char *v;
        const alias *a = known_field(p, &v);
        if (a != NULL) {
            starts[n] = p;
            which[n] = a;
            values[n] = v;
            n++;
        }
    }
    if (n < 2)
        return false;
    for (unsigned i = 0; i < n; i++) {
        const char *end = i + 1 < n ? starts[i + 1] : values[i] + strlen(values[i]);
        add_field(fields, which[i]->canonical, values[i], (size_t) (end - values[i]));
    }
    return true;
}

typedef struct block {
    GPtrArray *fields;
    size_t end; /* first line after the block */
    bool full_source;
    bool repaired;
} block;

/* Read a header block starting at line @start. */
static void read_block(char **lines, size_t start, block *b)
{
    b->fields = g_ptr_array_new_with_free_func(field_free);
    size_t i = start;
    for (; lines[i] != NULL && b->fields->len < FBL_INLINE_MAX_HEADERS; i++) {
        const char *raw = lines[i];
        const char *line = unquote(raw);
        if (is_blank(line) && b->full_source && next_is_field(lines, i + 1)) {
            b->repaired = true; /* a pasted source double-spaced by the client */
            continue;
        }
        if (is_blank(line))
            break;
        field *prev = b->fields->len > 0 ? g_ptr_array_index(b->fields, b->fields->len - 1) : NULL;
        const char *value;
        const alias *a = known_field(line, &value);
        size_t name_len;
        if (a != NULL && !split_collapsed(line, b->fields)) {
            add_field(b->fields, a->canonical, value, strlen(value));
            if (strcmp(a->canonical, "Received") == 0 || strcmp(a->canonical, "Return-Path") == 0)
                b->full_source = true;
        } else if (a != NULL) {
            b->repaired = true;
        } else if ((raw[0] == ' ' || raw[0] == '\t') && prev != NULL) {
            g_string_append_printf(prev->value, " %s", line); /* unquote() trimmed it */
        } else if (any_field(line, &name_len) && b->fields->len > 0) {
            add_field(b->fields, NULL, line, strlen(line)); /* whole line, name kept */
        } else if (prev != NULL && (b->full_source || !block_complete(b->fields))) {
            /* Wrapped without indentation by the forwarding client (a pasted source
             * runs to its blank line; a client's block ends once it is complete). */
            g_string_append_printf(prev->value, " %s", line);
            b->repaired = true;
        } else {
            break;
        }
    }
    b->end = i;
}

static bool block_ok(const block *b, bool after_marker)
{
    bool from = false, subject = false;
    for (guint i = 0; i < b->fields->len; i++) {
        const field *f = g_ptr_array_index(b->fields, i);
        from = from || (f->name != NULL && strcmp(f->name, "From") == 0);
        subject = subject || (f->name != NULL && strcmp(f->name, "Subject") == 0);
    }
    guint need = after_marker ? 2 : 3;
    return (from || subject) && b->fields->len >= need;
}

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

static void build(char **lines, const block *b, fbl_inline *out)
{
    GString *msg = g_string_new(NULL);
    for (guint i = 0; i < b->fields->len; i++) {
        field *f = g_ptr_array_index(b->fields, i);
        g_strstrip(f->value->str);
        g_string_set_size(f->value, strlen(f->value->str));
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
    for (size_t i = b->end; lines[i] != NULL; i++) {
        g_string_append(msg, g_str_has_prefix(lines[i], ">") ? unquote(lines[i]) : lines[i]);
        g_string_append_c(msg, '\n');
    }
    out->message = msg;
    out->headers = b->fields->len;
    out->full_source = b->full_source;
    out->repaired = b->repaired;
}

bool fbl_inline_recover(const char *text, size_t len, fbl_inline *out)
{
    memset(out, 0, sizeof *out);
    if (len > FBL_INLINE_MAX_SCAN)
        len = FBL_INLINE_MAX_SCAN;
    g_autofree char *copy = g_strndup(text, len);
    g_auto(GStrv) lines = g_strsplit(copy, "\n", -1);
    for (size_t i = 0; lines[i] != NULL; i++)
        g_strchomp(lines[i]); /* "\r" too */

    bool found = false;
    for (size_t i = 0; lines[i] != NULL && !found; i++) {
        const char *line = unquote(lines[i]);
        bool marker = is_marker(line);
        const char *v;
        if (!marker && known_field(line, &v) == NULL)
            continue;
        size_t start = i + (marker ? 1 : 0);
        while (marker && lines[start] != NULL && is_blank(lines[start]))
            start++;
        if (lines[start] == NULL)
            break;
        block b = {0};
        read_block(lines, start, &b);
        if (block_ok(&b, marker)) {
            build(lines, &b, out);
            found = true;
        } else {
            /* A start inside a failed block reads a part of it: skip them (else quadratic). */
            i = b.end - 1;
        }
        g_ptr_array_unref(b.fields);
    }
    return found;
}

void fbl_inline_clear(fbl_inline *r)
{
    if (r->message != NULL)
        g_string_free(r->message, TRUE);
    memset(r, 0, sizeof *r);
}
