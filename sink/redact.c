/* redact.c - keyed pseudonyms for personal fields (see redact.h) */
#define G_LOG_DOMAIN "fbl-vendor"
#include "sink/redact.h"

#include <string.h>

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
    const char *fields[3];
} groups[] = {
    {"reporter", {"reporter.address", "reporter.name", NULL}},
    {"recipients", {"arf.original_rcpt_to", "message.to", NULL}},
};

struct fbl_redact {
    GPtrArray *fields; /* char *, NULL-terminated */
    GBytes *key;
};

typedef struct pair {
    char *clear;
    char *pseudonym;
} pair;

struct fbl_redact_pairs {
    GPtrArray *pairs; /* pair *, longest clear value first */
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
    g_free(pairs);
}

/* The pseudonym of @value, remembered in @pairs. */
static const char *pseudonym_of(const fbl_redact *r, fbl_redact_pairs *pairs, const char *value)
{
    for (guint i = 0; i < pairs->pairs->len; i++) {
        const pair *p = g_ptr_array_index(pairs->pairs, i);
        if (g_ascii_strcasecmp(p->clear, value) == 0)
            return p->pseudonym;
    }
    pair *p = g_new0(pair, 1);
    p->clear = g_strdup(value);
    p->pseudonym = fbl_redact_pseudonym(r, value);
    g_ptr_array_add(pairs->pairs, p);
    return p->pseudonym;
}

/* Replace the string (or each string of the list) @v in place. */
static void redact_value(const fbl_redact *r, fbl_redact_pairs *pairs, json_t *v)
{
    if (json_is_string(v)) {
        if (json_string_length(v) > 0)
            (void) json_string_set(v, pseudonym_of(r, pairs, json_string_value(v)));
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (json_is_string(item) && json_string_length(item) > 0)
            (void) json_string_set(item, pseudonym_of(r, pairs, json_string_value(item)));
    }
}

static gint longest_first(gconstpointer a, gconstpointer b)
{
    const pair *pa = *(const pair *const *) a, *pb = *(const pair *const *) b;
    size_t la = strlen(pa->clear), lb = strlen(pb->clear);
    return la > lb ? -1 : la < lb ? 1 : 0;
}

/* Where @needle (ASCII case ignored) starts in @hay at or after @from, or -1. */
static gssize find_ci(const char *hay, size_t len, size_t from, const char *needle, size_t nlen)
{
    if (nlen == 0 || len < nlen)
        return -1;
    char first_lo = g_ascii_tolower(needle[0]), first_up = g_ascii_toupper(needle[0]);
    for (size_t i = from; i + nlen <= len; i++) {
        if (hay[i] != first_lo && hay[i] != first_up)
            continue;
        size_t j = 1;
        while (j < nlen && g_ascii_tolower(hay[i + j]) == g_ascii_tolower(needle[j]))
            j++;
        if (j == nlen)
            return (gssize) i;
    }
    return -1;
}

/* @data with every clear value of @pairs replaced; NULL when nothing matched. */
static GString *scrub(const fbl_redact_pairs *pairs, const char *data, size_t len)
{
    GString *out = NULL;
    size_t done = 0;
    for (size_t i = 0; i < len;) {
        const pair *hit = NULL;
        gssize at = -1;
        /* The earliest match; at one position the longest value (pairs are sorted). */
        for (guint k = 0; k < pairs->pairs->len; k++) {
            const pair *p = g_ptr_array_index(pairs->pairs, k);
            size_t plen = strlen(p->clear);
            if (plen < MIN_SCRUB_LEN)
                continue;
            gssize pos = find_ci(data, len, i, p->clear, plen);
            if (pos >= 0 && (at < 0 || pos < at)) {
                at = pos;
                hit = p;
            }
        }
        if (hit == NULL)
            break;
        if (out == NULL)
            out = g_string_sized_new(len + 64);
        g_string_append_len(out, data + done, at - (gssize) done);
        g_string_append(out, hit->pseudonym);
        done = (size_t) at + strlen(hit->clear);
        i = done;
    }
    if (out != NULL)
        g_string_append_len(out, data + done, (gssize) (len - done));
    return out;
}

/* Scrub every string of @doc (depth-first, with an explicit stack). */
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
            redact_value(r, pairs, v);
        (void) json_array_append_new(done, json_string(field));
    }
    g_ptr_array_sort(pairs->pairs, longest_first);
    if (pairs->pairs->len > 0)
        scrub_doc(pairs, doc);
    (void) json_object_set_new(doc, "pseudonymized", done);
    return pairs;
}

GBytes *fbl_redact_bytes(const fbl_redact_pairs *pairs, const void *data, size_t len)
{
    GString *s = pairs != NULL ? scrub(pairs, data, len) : NULL;
    if (s == NULL)
        return g_bytes_new(data, len);
    gsize n = s->len;
    return g_bytes_new_take(g_string_free(s, FALSE), n);
}
