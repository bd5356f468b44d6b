/* redact.c - keyed pseudonyms for personal fields, masked addresses (see redact.h) */
#define G_LOG_DOMAIN "fbl-vendor"
#include "sink/redact.h"

#include <string.h>

#include <gmime/gmime.h>

#include "parsers/address.h"

/* Hex digits of the HMAC kept: 128 bits, plenty to tell reporters apart. */
#define PSEUDONYM_HEX 32
/* Clear values shorter than this are replaced in their field only. */
#define MIN_SCRUB_LEN 4

GQuark fbl_redact_error_quark(void)
{
    return g_quark_from_static_string("fbl-redact-error");
}

/* Fields that may be redacted: strings or lists of strings of the contract. */
static const char *const known_fields[] = {
    "reporter.address",
    "reporter.via",
    "reporter.name",
    "reporter.reporting_mta",
    "arf.original_rcpt_to",
    "arf.original_mail_from",
    "arf.original_envelope_id",
    "message.to",
    "message.from",
    "message.sender",
    "message.reply_to",
    "message.return_path",
    "message.subject",
    "mailbox",
};

/* Groups: a name for the fields that hold one kind of person. */
static const struct {
    const char *name;
    const char *fields[4];
} groups[] = {
    /* via: whoever relayed the complaint may be a person too (a customer's Fwd:) */
    {"reporter", {"reporter.address", "reporter.via", "reporter.name", NULL}},
    {"recipients", {"arf.original_rcpt_to", "message.to", NULL}},
};

struct fbl_redact {
    GPtrArray *fields; /* char *, NULL-terminated */
    GBytes *key;
};

typedef struct pair {
    char *clear;
    size_t len;
    char *pseudonym;
    bool address; /* holds '@': found anywhere; other values as whole words only */
} pair;

struct fbl_redact_pairs {
    GPtrArray *pairs;         /* pair *, longest clear value first */
    const fbl_redact *redact; /* borrowed: pseudonyms of the names found in the bytes */
    json_t *doc;              /* a reference: those names are replaced there too */
};

static bool is_known(const char *field)
{
    for (size_t i = 0; i < G_N_ELEMENTS(known_fields); i++) {
        if (strcmp(field, known_fields[i]) == 0)
            return true;
    }
    return false;
}

static void add_field(GPtrArray *fields, const char *field)
{
    for (guint i = 0; i < fields->len; i++) {
        if (strcmp(g_ptr_array_index(fields, i), field) == 0)
            return;
    }
    g_ptr_array_add(fields, g_strdup(field));
}

/* Expand a group, or add a known field; false for anything else. */
static bool expand(GPtrArray *fields, const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(groups); i++) {
        if (strcmp(name, groups[i].name) != 0)
            continue;
        for (size_t j = 0; groups[i].fields[j] != NULL; j++)
            add_field(fields, groups[i].fields[j]);
        return true;
    }
    if (!is_known(name))
        return false;
    add_field(fields, name);
    return true;
}

fbl_redact *fbl_redact_new(const char *const *fields, const void *key, size_t key_len,
                           GError **error)
{
    if (key == NULL || key_len < FBL_REDACT_MIN_KEY) {
        g_set_error(error, FBL_REDACT_ERROR, FBL_REDACT_ERROR_KEY,
                    "the pseudonym key must have at least %d bytes", FBL_REDACT_MIN_KEY);
        return NULL;
    }
    GPtrArray *list = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; fields != NULL && fields[i] != NULL; i++) {
        if (!expand(list, fields[i])) {
            g_autofree char *known = g_strjoinv(", ", (char **) known_fields);
            g_set_error(error, FBL_REDACT_ERROR, FBL_REDACT_ERROR_FIELD,
                        "cannot redact '%s': known are reporter, recipients, %s", fields[i], known);
            g_ptr_array_unref(list);
            return NULL;
        }
    }
    g_ptr_array_add(list, NULL);
    fbl_redact *r = g_new0(fbl_redact, 1);
    r->fields = list;
    r->key = g_bytes_new(key, key_len);
    return r;
}

void fbl_redact_free(fbl_redact *r)
{
    if (r == NULL)
        return;
    g_ptr_array_unref(r->fields);
    gsize key_len = 0; /* the key's bytes are ours alone (g_bytes_new copied them): wiped */
    explicit_bzero((void *) g_bytes_get_data(r->key, &key_len), key_len);
    g_bytes_unref(r->key);
    g_free(r);
}

const char *const *fbl_redact_fields(const fbl_redact *r)
{
    return (const char *const *) r->fields->pdata;
}

char *fbl_redact_pseudonym(const fbl_redact *r, const char *value)
{
    gsize key_len = 0;
    const guint8 *key = g_bytes_get_data(r->key, &key_len);
    g_autofree char *lower = g_utf8_strdown(value, -1);
    g_autoptr(GHmac) hmac = g_hmac_new(G_CHECKSUM_SHA256, key, key_len);
    g_hmac_update(hmac, (const guchar *) lower, (gssize) strlen(lower));
    char hex[PSEUDONYM_HEX + 1];
    g_strlcpy(hex, g_hmac_get_string(hmac), sizeof hex);
    if (strchr(value, '@') != NULL)
        return g_strdup_printf("%s@redacted.invalid", hex);
    return g_strdup(hex);
}

static void pair_free(pair *p)
{
    g_free(p->clear);
    g_free(p->pseudonym);
    g_free(p);
}

void fbl_redact_pairs_free(fbl_redact_pairs *pairs)
{
    if (pairs == NULL)
        return;
    g_ptr_array_unref(pairs->pairs);
    json_decref(pairs->doc);
    g_free(pairs);
}

/* The pseudonym of @value, remembered in @pairs. */
static const char *pseudonym_of(fbl_redact_pairs *pairs, const char *value)
{
    for (guint i = 0; i < pairs->pairs->len; i++) {
        const pair *p = g_ptr_array_index(pairs->pairs, i);
        if (g_ascii_strcasecmp(p->clear, value) == 0)
            return p->pseudonym;
    }
    pair *p = g_new0(pair, 1);
    p->clear = g_strdup(value);
    p->len = strlen(value);
    p->pseudonym = fbl_redact_pseudonym(pairs->redact, value);
    p->address = strchr(value, '@') != NULL;
    g_ptr_array_add(pairs->pairs, p);
    return p->pseudonym;
}

/* Replace the string (or each string of the list) @v in place. */
static void redact_value(fbl_redact_pairs *pairs, json_t *v)
{
    if (json_is_string(v)) {
        if (json_string_length(v) > 0)
            (void) json_string_set(v, pseudonym_of(pairs, json_string_value(v)));
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (json_is_string(item) && json_string_length(item) > 0)
            (void) json_string_set(item, pseudonym_of(pairs, json_string_value(item)));
    }
}

static gint longest_first(gconstpointer a, gconstpointer b)
{
    const pair *pa = *(const pair *const *) a, *pb = *(const pair *const *) b;
    return pa->len > pb->len ? -1 : pa->len < pb->len ? 1 : 0;
}

/* ---- finding a value however it is written ------------------------------------------- */

/* "&#64;", "&#x40;" (any number of digits up to 7) or "&commat;" at @p: its length and value. */
static size_t entity_at(const char *d, size_t len, size_t p, int *value)
{
    static const char commat[] = "&commat;";
    if (len - p >= sizeof commat - 1 &&
        g_ascii_strncasecmp(d + p, commat, sizeof commat - 1) == 0) {
        *value = '@';
        return sizeof commat - 1;
    }
    if (len - p < 4 || d[p + 1] != '#')
        return 0;
    bool hex = d[p + 2] == 'x' || d[p + 2] == 'X';
    size_t q = p + (hex ? 3 : 2);
    int v = 0;
    size_t digits = 0;
    for (; q < len && digits < 7 && (hex ? g_ascii_isxdigit(d[q]) : g_ascii_isdigit(d[q]));
         q++, digits++)
        v = v * (hex ? 16 : 10) + (hex ? g_ascii_xdigit_value(d[q]) : g_ascii_digit_value(d[q]));
    if (digits == 0 || q >= len || d[q] != ';' || v > 255)
        return 0;
    *value = v;
    return q + 1 - p;
}

/*
 * The bytes at @p that stand for the character @want: itself (ASCII case
 * ignored), or an escape of it (%XX, =XX, an HTML character reference); 0
 * when they do not.
 */
static size_t char_at(const char *d, size_t len, size_t p, char want)
{
    if (p >= len)
        return 0;
    int v = -1;
    size_t n = 0;
    if ((d[p] == '%' || d[p] == '=') && len - p >= 3 && g_ascii_isxdigit(d[p + 1]) &&
        g_ascii_isxdigit(d[p + 2])) {
        v = g_ascii_xdigit_value(d[p + 1]) * 16 + g_ascii_xdigit_value(d[p + 2]);
        n = 3;
    } else if (d[p] == '&') {
        n = entity_at(d, len, p, &v);
    }
    if (n > 0 && g_ascii_tolower((char) v) == g_ascii_tolower(want))
        return n;
    return g_ascii_tolower(d[p]) == g_ascii_tolower(want) ? 1 : 0;
}

/*
 * Line breaks that may split a value, one or more: a quoted-printable soft
 * break ("=" CRLF or LF) or a folded line (CRLF or LF, then blanks), with
 * the blanks after it. Returns the bytes they take (0: none).
 */
static size_t breaks_at(const char *d, size_t len, size_t p)
{
    size_t q = p;
    for (;;) {
        size_t s = q < len && d[q] == '=' ? q + 1 : q;
        bool soft = s > q;
        if (s < len && d[s] == '\r')
            s++;
        if (s >= len || d[s] != '\n')
            break;
        size_t b = s + 1;
        while (b < len && (d[b] == ' ' || d[b] == '\t'))
            b++;
        if (!soft && b == s + 1)
            break; /* a line that ends without folding ends the value */
        q = b;
    }
    return q - p;
}

/* The blanks at @p that stand for a space of a value (line ends and escapes included). */
static size_t blanks_at(const char *d, size_t len, size_t p)
{
    size_t q = p;
    for (;;) {
        size_t n =
            q < len && (d[q] == '\t' || d[q] == '\r' || d[q] == '\n') ? 1 : char_at(d, len, q, ' ');
        if (n == 0)
            n = breaks_at(d, len, q);
        if (n == 0)
            break;
        q += n;
    }
    return q - p;
}

/* A match: where it ends, and how the '@' of an address was written there. */
typedef struct match {
    size_t end;
    size_t at_pos, at_len;
} match;

static bool word_edge(const char *d, size_t len, size_t p, size_t end)
{
    return (p == 0 || !g_ascii_isalnum(d[p - 1])) && (end >= len || !g_ascii_isalnum(d[end]));
}

/* Does the clear value of @v start at @p (see redact.h for the spellings)? */
static bool match_at(const char *d, size_t len, size_t p, const pair *v, match *m)
{
    size_t q = p;
    m->at_len = 0;
    for (size_t j = 0; j < v->len; j++) {
        if (j > 0)
            q += breaks_at(d, len, q);
        char want = v->clear[j];
        size_t n = 0;
        if (want == ' ') {
            n = blanks_at(d, len, q);
            while (j + 1 < v->len && v->clear[j + 1] == ' ')
                j++;
        } else {
            n = char_at(d, len, q, want);
        }
        if (n == 0)
            return false;
        if (want == '@') {
            m->at_pos = q;
            m->at_len = n;
        }
        q += n;
    }
    m->end = q;
    return v->address || word_edge(d, len, p, q);
}

/* The pseudonym of @v, its '@' written as the match wrote it (%40 stays %40 in a URL). */
static void append_pseudonym(GString *out, const pair *v, const char *d, const match *m)
{
    const char *at = strchr(v->pseudonym, '@');
    if (at == NULL || m->at_len <= 1) {
        g_string_append(out, v->pseudonym);
        return;
    }
    g_string_append_len(out, v->pseudonym, at - v->pseudonym);
    g_string_append_len(out, d + m->at_pos, (gssize) m->at_len);
    g_string_append(out, at + 1);
}

/* The bytes a match of some value may start with: its first character, or an escape. */
static void first_bytes(const fbl_redact_pairs *pairs, bool starts[256])
{
    starts['%'] = starts['='] = starts['&'] = true;
    for (guint k = 0; k < pairs->pairs->len; k++) {
        const pair *v = g_ptr_array_index(pairs->pairs, k);
        guchar c = (guchar) v->clear[0];
        starts[(guchar) g_ascii_tolower((char) c)] = starts[(guchar) g_ascii_toupper((char) c)] =
            true;
    }
}

/* The longest value (pairs are sorted so) that starts at @i, or NULL. */
static const pair *value_at(const fbl_redact_pairs *pairs, const char *d, size_t len, size_t i,
                            match *m)
{
    for (guint k = 0; k < pairs->pairs->len; k++) {
        const pair *v = g_ptr_array_index(pairs->pairs, k);
        if (v->len >= MIN_SCRUB_LEN && match_at(d, len, i, v, m))
            return v;
    }
    return NULL;
}

/* @data with every clear value of @pairs replaced; NULL when nothing matched. */
static GString *scrub(const fbl_redact_pairs *pairs, const char *data, size_t len)
{
    if (pairs->pairs->len == 0)
        return NULL;
    bool starts[256] = {false};
    first_bytes(pairs, starts);
    GString *out = NULL;
    size_t done = 0;
    for (size_t i = 0; i < len; i++) {
        match m;
        const pair *hit = starts[(guchar) data[i]] ? value_at(pairs, data, len, i, &m) : NULL;
        if (hit == NULL)
            continue;
        if (out == NULL)
            out = g_string_sized_new(len + 64);
        g_string_append_len(out, data + done, (gssize) (i - done));
        append_pseudonym(out, hit, data, &m);
        done = m.end;
        i = m.end - 1;
    }
    if (out != NULL)
        g_string_append_len(out, data + done, (gssize) (len - done));
    return out;
}

/* ---- the document -------------------------------------------------------------------- */

/* Push the members of object or array @v (not the ids: digests, never personal). */
static void push_members(GPtrArray *stack, json_t *v)
{
    const char *key;
    json_t *child;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, key, child)
        {
            if (strcmp(key, "id") != 0 && strcmp(key, "mail_id") != 0)
                g_ptr_array_add(stack, child);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child)
        {
            g_ptr_array_add(stack, child);
        }
    }
}

/* Scrub every string of @doc (depth-first, with an explicit stack). */
static void scrub_doc(const fbl_redact_pairs *pairs, json_t *doc)
{
    g_autoptr(GPtrArray) stack = g_ptr_array_new();
    g_ptr_array_add(stack, doc);
    while (stack->len > 0) {
        json_t *v = g_ptr_array_steal_index(stack, stack->len - 1);
        if (!json_is_string(v)) {
            push_members(stack, v);
            continue;
        }
        GString *s = scrub(pairs, json_string_value(v), json_string_length(v));
        if (s != NULL) {
            (void) json_string_setn(v, s->str, s->len);
            g_string_free(s, TRUE);
        }
    }
}

fbl_redact_pairs *fbl_redact_doc(const fbl_redact *r, json_t *doc)
{
    fbl_redact_pairs *pairs = g_new0(fbl_redact_pairs, 1);
    pairs->pairs = g_ptr_array_new_with_free_func((GDestroyNotify) pair_free);
    pairs->redact = r;
    pairs->doc = json_incref(doc);
    json_t *done = json_array();
    for (guint i = 0; i + 1 < r->fields->len; i++) {
        const char *field = g_ptr_array_index(r->fields, i);
        const char *dot = strchr(field, '.');
        json_t *v = doc;
        if (dot != NULL) {
            g_autofree char *parent = g_strndup(field, (gsize) (dot - field));
            v = json_object_get(json_object_get(doc, parent), dot + 1);
        } else {
            v = json_object_get(doc, field);
        }
        if (v != NULL)
            redact_value(pairs, v);
        (void) json_array_append_new(done, json_string(field));
    }
    g_ptr_array_sort(pairs->pairs, longest_first);
    if (pairs->pairs->len > 0)
        scrub_doc(pairs, doc);
    (void) json_object_set_new(doc, "pseudonymized", done);
    return pairs;
}

/* ---- names that go with a redacted address ------------------------------------------- */

/* The address fields whose display names may name a person we redact. */
static const char *const address_fields[] = {
    "to",
    "cc",
    "bcc",
    "from",
    "sender",
    "reply-to",
    "resent-to",
    "resent-cc",
    "resent-bcc",
    "resent-from",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "apparently-to",
};

/* Headers longer than this are not read for names (the message's own limits are larger). */
#define MAX_HEADER_SCAN ((size_t) 256 * 1024)
/* An address field longer than this is not parsed for names. */
#define MAX_FIELD ((size_t) 64 * 1024)

static bool is_address_field(const char *name, size_t n)
{
    for (size_t i = 0; i < G_N_ELEMENTS(address_fields); i++) {
        if (strlen(address_fields[i]) == n && g_ascii_strncasecmp(name, address_fields[i], n) == 0)
            return true;
    }
    return false;
}

static bool is_redacted_address(const fbl_redact_pairs *pairs, const char *address)
{
    for (guint k = 0; k < pairs->pairs->len; k++) {
        const pair *v = g_ptr_array_index(pairs->pairs, k);
        if (v->address && g_ascii_strcasecmp(v->clear, address) == 0)
            return true;
    }
    return false;
}

/* @name, and each word of it long enough to be found on its own ("Dear John"). */
static bool add_name(fbl_redact_pairs *pairs, const char *name)
{
    g_autofree char *whole = g_strstrip(g_strdup(name));
    if (*whole == '\0' || !g_utf8_validate(whole, -1, NULL))
        return false;
    (void) pseudonym_of(pairs, whole);
    g_auto(GStrv) words = g_strsplit_set(whole, " \t,;:\"'()<>[]", -1);
    for (size_t i = 0; words[i] != NULL; i++) {
        g_strstrip(words[i]);
        if (strlen(words[i]) >= MIN_SCRUB_LEN && strcmp(words[i], whole) != 0)
            (void) pseudonym_of(pairs, words[i]);
    }
    return true;
}

/* The display names of the redacted addresses in one address field's @value. */
static bool names_of_field(fbl_redact_pairs *pairs, const char *value)
{
    GMimeParserOptions *o = g_mime_parser_options_new();
    g_mime_parser_options_set_address_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_rfc2047_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    InternetAddressList *list = internet_address_list_parse(o, value);
    g_mime_parser_options_free(o);
    if (list == NULL)
        return false;
    g_autoptr(GPtrArray) addresses = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    fbl_address_list_take(list, addresses, names, 1000);
    g_object_unref(list);
    bool added = false;
    for (guint i = 0; i < addresses->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        if (*name != '\0' && is_redacted_address(pairs, g_ptr_array_index(addresses, i)))
            added = add_name(pairs, name) || added;
    }
    return added;
}

/* The length of the header section of @d (up to its empty line, or all of it). */
static size_t header_len(const char *d, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (d[i] == '\n' &&
            (d[i + 1] == '\n' || (d[i + 1] == '\r' && i + 2 < len && d[i + 2] == '\n')))
            return i + 1;
    }
    return len;
}

/* One header field unfolded, from @p: its end, name (borrowed) and value (owned). */
static size_t next_field(const char *d, size_t len, size_t p, size_t *name_len, GString *value)
{
    size_t e = p;
    while (e < len && d[e] != '\n')
        e++;
    while (e + 1 < len && (d[e + 1] == ' ' || d[e + 1] == '\t')) {
        e++;
        while (e < len && d[e] != '\n')
            e++;
    }
    const char *colon = memchr(d + p, ':', e - p);
    *name_len = colon != NULL ? (size_t) (colon - (d + p)) : 0;
    g_string_truncate(value, 0);
    for (size_t i = colon != NULL ? (size_t) (colon - d) + 1 : e; i < e; i++) {
        if (d[i] != '\r' && d[i] != '\n' && d[i] != '\0')
            g_string_append_c(value, d[i]);
    }
    return e < len ? e + 1 : e;
}

/* Add the display names of redacted addresses in @d's header; true when any was new. */
static bool learn_names(fbl_redact_pairs *pairs, const char *d, size_t len)
{
    size_t n = MIN(header_len(d, len), MAX_HEADER_SCAN);
    guint before = pairs->pairs->len;
    g_autoptr(GString) value = g_string_new(NULL);
    for (size_t p = 0; p < n;) {
        size_t name_len = 0;
        size_t next = next_field(d, n, p, &name_len, value);
        if (name_len > 0 && is_address_field(d + p, name_len) && value->len < MAX_FIELD &&
            g_utf8_validate(value->str, (gssize) value->len, NULL))
            (void) names_of_field(pairs, value->str);
        p = next;
    }
    if (pairs->pairs->len == before)
        return false;
    g_ptr_array_sort(pairs->pairs, longest_first);
    return true;
}

/* ---- RFC 2047 encoded words ---------------------------------------------------------- */

/* Longest charset name and encoded text read in one word (RFC 2047 says 75 in all). */
#define MAX_CHARSET  64
#define MAX_WORD_LEN 4096
/* Bytes of UTF-8 text per encoded word written: 60 base64 characters. */
#define WORD_BYTES 45

/* Q encoding: "_" is a space, =XX a byte. */
static void decode_q(const char *t, size_t n, GString *out)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '_') {
            g_string_append_c(out, ' ');
        } else if (t[i] == '=' && i + 2 < n && g_ascii_isxdigit(t[i + 1]) &&
                   g_ascii_isxdigit(t[i + 2])) {
            g_string_append_c(
                out, (char) (g_ascii_xdigit_value(t[i + 1]) * 16 + g_ascii_xdigit_value(t[i + 2])));
            i += 2;
        } else {
            g_string_append_c(out, t[i]);
        }
    }
}

/* Base64 (RFC 2047 B): padded as needed; characters outside the alphabet are skipped. */
static void decode_b(const char *t, size_t n, GString *out)
{
    g_autoptr(GString) text = g_string_new_len(t, (gssize) n);
    while (text->len % 4 != 0)
        g_string_append_c(text, '=');
    gsize len = 0;
    g_autofree guchar *bin = g_base64_decode(text->str, &len);
    g_string_append_len(out, (const char *) bin, (gssize) len);
}

/* @raw in @charset, appended to @out as UTF-8 (as it is when iconv cannot convert it). */
static void append_utf8(GString *out, const char *charset, const GString *raw)
{
    gsize written = 0;
    g_autofree char *conv = NULL;
    if (g_ascii_strcasecmp(charset, "utf-8") != 0 && g_ascii_strcasecmp(charset, "us-ascii") != 0)
        conv = g_convert(raw->str, (gssize) raw->len, "UTF-8", charset, NULL, &written, NULL);
    if (conv != NULL)
        g_string_append_len(out, conv, (gssize) written);
    else
        g_string_append_len(out, raw->str, (gssize) raw->len);
}

/*
 * An encoded word at @p, "=?charset[*lang]?B|Q?text?=": its end in @end and
 * its text, in UTF-8, appended to @out; false when there is none.
 */
static bool encoded_word_at(const char *d, size_t len, size_t p, size_t *end, GString *out)
{
    if (len - p < 8 || d[p] != '=' || d[p + 1] != '?')
        return false;
    size_t c = p + 2, ce = c;
    while (ce < len && ce - c <= MAX_CHARSET && d[ce] != '?' && !g_ascii_isspace(d[ce]))
        ce++;
    if (ce == c || ce + 2 >= len || d[ce] != '?' || d[ce + 2] != '?')
        return false;
    char enc = g_ascii_toupper(d[ce + 1]);
    if (enc != 'B' && enc != 'Q')
        return false;
    size_t t = ce + 3, te = t;
    while (te + 1 < len && te - t <= MAX_WORD_LEN && !(d[te] == '?' && d[te + 1] == '=') &&
           !g_ascii_isspace(d[te]))
        te++;
    if (te + 1 >= len || d[te] != '?' || d[te + 1] != '=')
        return false;
    g_autoptr(GString) raw = g_string_new(NULL);
    if (enc == 'Q')
        decode_q(d + t, te - t, raw);
    else
        decode_b(d + t, te - t, raw);
    g_autofree char *charset = g_strndup(d + c, ce - c);
    char *lang = strchr(charset, '*');
    if (lang != NULL)
        *lang = '\0';
    append_utf8(out, charset, raw);
    *end = te + 2;
    return true;
}

/* Blanks between encoded words: spaces, tabs and folded line ends. */
static size_t word_gap(const char *d, size_t len, size_t p)
{
    size_t q = p;
    while (q < len) {
        size_t n = d[q] == ' ' || d[q] == '\t' ? 1 : breaks_at(d, len, q);
        if (n == 0)
            break;
        q += n;
    }
    return q - p;
}

/* The decoded text of the run of encoded words from @p (the blanks between them dropped). */
static GString *decode_run(const char *d, size_t len, size_t p, size_t *end)
{
    GString *text = g_string_new(NULL);
    size_t e = 0;
    if (!encoded_word_at(d, len, p, &e, text)) {
        g_string_free(text, TRUE);
        return NULL;
    }
    for (;;) {
        size_t gap = word_gap(d, len, e), next = 0;
        if (gap == 0 || !encoded_word_at(d, len, e + gap, &next, text))
            break;
        e = next;
    }
    *end = e;
    return text;
}

/* @text as UTF-8 B encoded words of WORD_BYTES bytes at most, split between characters. */
static void append_encoded(GString *out, const GString *text)
{
    bool utf8 = g_utf8_validate(text->str, (gssize) text->len, NULL);
    for (size_t i = 0; i < text->len;) {
        size_t take = MIN((size_t) WORD_BYTES, text->len - i);
        while (utf8 && take > 1 && i + take < text->len &&
               ((guchar) text->str[i + take] & 0xC0) == 0x80)
            take--;
        g_autofree char *b64 = g_base64_encode((const guchar *) text->str + i, take);
        g_string_append_printf(out, "%s=?UTF-8?B?%s?=", i > 0 ? " " : "", b64);
        i += take;
    }
}

/* @d with each run of encoded words that held a clear value written anew; NULL: unchanged. */
static GString *scrub_encoded_words(const fbl_redact_pairs *pairs, const char *d, size_t len)
{
    GString *out = NULL;
    size_t done = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        size_t end = 0;
        GString *run = d[i] == '=' && d[i + 1] == '?' ? decode_run(d, len, i, &end) : NULL;
        if (run == NULL)
            continue;
        GString *clean = scrub(pairs, run->str, run->len);
        if (clean != NULL) {
            if (out == NULL)
                out = g_string_sized_new(len + 64);
            g_string_append_len(out, d + done, (gssize) (i - done));
            append_encoded(out, clean);
            done = end;
            g_string_free(clean, TRUE);
        }
        g_string_free(run, TRUE);
        i = end - 1;
    }
    if (out != NULL)
        g_string_append_len(out, d + done, (gssize) (len - done));
    return out;
}

/* Encoded words, then every other spelling: NULL when nothing changed. */
static GString *scrub_text(const fbl_redact_pairs *pairs, const char *d, size_t len)
{
    GString *words = scrub_encoded_words(pairs, d, len);
    GString *plain = words != NULL ? scrub(pairs, words->str, words->len) : scrub(pairs, d, len);
    if (plain == NULL)
        return words;
    if (words != NULL)
        g_string_free(words, TRUE);
    return plain;
}

/* ---- base64 bodies ------------------------------------------------------------------- */

#define BASE64_LINE 76

/* Where the next base64 body starts (after a header saying so), at or after @from; @len: none. */
static size_t next_base64_body(const char *d, size_t len, size_t from)
{
    static const char cte[] = "content-transfer-encoding:";
    const size_t n = sizeof cte - 1;
    for (size_t i = from; i + n < len; i++) {
        if ((i > 0 && d[i - 1] != '\n') || g_ascii_strncasecmp(d + i, cte, n) != 0)
            continue;
        size_t v = i + n;
        while (v < len && (d[v] == ' ' || d[v] == '\t'))
            v++;
        if (len - v < 6 || g_ascii_strncasecmp(d + v, "base64", 6) != 0)
            continue;
        size_t blank = v + header_len(d + v, len - v); /* the empty line */
        if (blank >= len)
            return len;
        return blank + (d[blank] == '\r' ? 2 : 1);
    }
    return len;
}

static bool base64_line(const char *d, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (!g_ascii_isalnum(d[i]) && d[i] != '+' && d[i] != '/' && d[i] != '=')
            return false;
    }
    return to > from;
}

/* The end of the base64 lines from @p: the first empty or other line, or the end. */
static size_t base64_end(const char *d, size_t len, size_t p)
{
    size_t q = p;
    while (q < len) {
        const char *nl = memchr(d + q, '\n', len - q);
        size_t e = nl != NULL ? (size_t) (nl - d) : len;
        if (!base64_line(d, q, e > q && d[e - 1] == '\r' ? e - 1 : e))
            break;
        q = e < len ? e + 1 : e;
    }
    return q;
}

/* One base64 body decoded, scrubbed and encoded again as it was written; NULL: unchanged. */
static GString *scrub_base64(const fbl_redact_pairs *pairs, const char *d, size_t n)
{
    g_autoptr(GString) text = g_string_sized_new(n);
    for (size_t i = 0; i < n; i++) {
        if (d[i] != '\r' && d[i] != '\n')
            g_string_append_c(text, d[i]);
    }
    gsize bin_len = 0;
    g_autofree guchar *bin = g_base64_decode(text->str, &bin_len);
    GString *clean = scrub_text(pairs, (const char *) bin, bin_len);
    if (clean == NULL)
        return NULL;
    const char *nl = memchr(d, '\n', n);
    size_t line = nl != NULL ? (size_t) (nl - d) : n;
    bool crlf = nl != NULL && line > 0 && d[line - 1] == '\r';
    line -= crlf ? 1 : 0;
    if (line == 0 || line > 998)
        line = BASE64_LINE;
    g_autofree char *b64 = g_base64_encode((const guchar *) clean->str, clean->len);
    g_string_free(clean, TRUE);
    size_t b64_len = strlen(b64);
    GString *out = g_string_sized_new(b64_len + b64_len / line * 2 + 2);
    for (size_t i = 0; i < b64_len; i += line) {
        g_string_append_len(out, b64 + i, (gssize) MIN(line, b64_len - i));
        g_string_append(out, crlf ? "\r\n" : "\n");
    }
    return out;
}

/* @d with every base64 body that held a clear value written anew; NULL: unchanged. */
static GString *scrub_base64_bodies(const fbl_redact_pairs *pairs, const char *d, size_t len)
{
    GString *out = NULL;
    size_t done = 0;
    for (size_t p = next_base64_body(d, len, 0); p < len;) {
        size_t end = base64_end(d, len, p);
        GString *clean = end > p ? scrub_base64(pairs, d + p, end - p) : NULL;
        if (clean != NULL) {
            if (out == NULL)
                out = g_string_sized_new(len + 64);
            g_string_append_len(out, d + done, (gssize) (p - done));
            g_string_append_len(out, clean->str, (gssize) clean->len);
            done = end;
            g_string_free(clean, TRUE);
        }
        p = next_base64_body(d, len, end);
    }
    if (out != NULL)
        g_string_append_len(out, d + done, (gssize) (len - done));
    return out;
}

GBytes *fbl_redact_bytes(fbl_redact_pairs *pairs, const void *data, size_t len)
{
    if (pairs == NULL || pairs->pairs->len == 0)
        return g_bytes_new(data, len);
    /* Names first: they are scrubbed with the rest, here and in the document. */
    if (learn_names(pairs, data, len) && pairs->doc != NULL)
        scrub_doc(pairs, pairs->doc);
    GString *b64 = scrub_base64_bodies(pairs, data, len);
    GString *s = b64 != NULL ? scrub_text(pairs, b64->str, b64->len) : scrub_text(pairs, data, len);
    if (s == NULL) {
        s = b64;
    } else if (b64 != NULL) {
        g_string_free(b64, TRUE);
    }
    if (s == NULL)
        return g_bytes_new(data, len);
    gsize n = s->len;
    return g_bytes_new_take(g_string_free(s, FALSE), n);
}

/* ---- addresses out of log lines ------------------------------------------------------ */

static bool local_char(guchar c)
{
    return g_ascii_isalnum(c) || c >= 0x80 || (c != '\0' && strchr(".!#$%'*+^_`{|}~-", c) != NULL);
}

static bool domain_char(guchar c)
{
    return g_ascii_isalnum(c) || c >= 0x80 || c == '-' || c == '_' || c == '.';
}

/* An at sign at @p, however written: its length, 0 when there is none. */
static size_t at_sign_at(const char *s, size_t len, size_t p)
{
    static const char fullwidth[] = "\xef\xbc\xa0", json[] = "\\u0040";
    if (s[p] == '@')
        return 1;
    if (len - p >= 3 && memcmp(s + p, fullwidth, 3) == 0)
        return 3;
    if (len - p >= 6 && g_ascii_strncasecmp(s + p, json, 6) == 0)
        return 6;
    if (s[p] == '%' || s[p] == '=' || s[p] == '&')
        return char_at(s, len, p, '@');
    return 0;
}

/* Where the local part before @p starts (not before @floor); @p when there is none. */
static size_t local_start(const char *s, size_t floor, size_t p)
{
    size_t q = p;
    if (q > floor && s[q - 1] == '"') {
        const char *open =
            q - 1 > floor ? g_strrstr_len(s + floor, (gssize) (q - 1 - floor), "\"") : NULL;
        return open != NULL ? (size_t) (open - s) : p;
    }
    while (q > floor && local_char((guchar) s[q - 1]))
        q--;
    return q;
}

/* Where the domain from @p ends (trailing dots and dashes left out); @p when there is none. */
static size_t domain_end(const char *s, size_t len, size_t p)
{
    if (p >= len || !(g_ascii_isalnum(s[p]) || (guchar) s[p] >= 0x80))
        return p;
    size_t q = p;
    while (q < len && domain_char((guchar) s[q]))
        q++;
    while (q > p && (s[q - 1] == '.' || s[q - 1] == '-' || s[q - 1] == '_'))
        q--;
    return q;
}

char *fbl_redact_mask_addresses(const char *text)
{
    if (text == NULL)
        return NULL;
    size_t len = strlen(text);
    GString *out = g_string_sized_new(len);
    size_t done = 0;
    for (size_t i = 0; i < len; i++) {
        size_t n = at_sign_at(text, len, i);
        if (n == 0)
            continue;
        size_t lo = local_start(text, done, i), hi = domain_end(text, len, i + n);
        if (lo == i || hi == i + n)
            continue;
        g_string_append_len(out, text + done, (gssize) (lo - done));
        g_string_append(out, FBL_REDACT_MASK);
        done = hi;
        i = hi - 1;
    }
    g_string_append(out, text + done);
    return g_string_free(out, FALSE);
}
