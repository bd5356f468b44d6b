/* value.c - the value syntax of fbl.conf (see value.h) */
#include "fbl/value.h"

#include <string.h>

typedef struct unit {
    const char *suffix; /* "" for a bare number */
    guint64 factor;
} unit;

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

static const unit size_units[] = {{"", 1},    {"B", 1},     {"K", KIB}, {"KiB", KIB},
                                  {"M", MIB}, {"MiB", MIB}, {"G", GIB}, {"GiB", GIB}};
static const unit duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60ull * 1000}, {"h", 3600ull * 1000}};
static const unit day_units[] = {{"", 1}, {"d", 1}, {"w", 7}};

/* The leading digits of @text as a number; @end after them. */
static fbl_value_status leading_number(const char *text, guint64 *out, const char **end)
{
    size_t n = 0;
    while (g_ascii_isdigit(text[n]))
        n++;
    if (n == 0)
        return FBL_VALUE_NOT_A_NUMBER;
    g_autofree char *digits = g_strndup(text, n);
    if (!g_ascii_string_to_unsigned(digits, 10, 0, G_MAXUINT64, out, NULL))
        return FBL_VALUE_TOO_LARGE;
    *end = text + n;
    return FBL_VALUE_OK;
}

/* A number, blanks, one of @units (any case); the product must fit in 64 bits. */
static fbl_value_status with_unit(const char *text, const unit *units, size_t n_units, guint64 *out)
{
    guint64 n = 0;
    const char *rest = NULL;
    fbl_value_status st = leading_number(text, &n, &rest);
    if (st != FBL_VALUE_OK)
        return st;
    const char *suffix = rest;
    while (*suffix == ' ' || *suffix == '\t')
        suffix++;
    if (suffix != rest && *suffix == '\0')
        return FBL_VALUE_BAD_UNIT; /* trailing blanks: the caller trims */
    for (size_t i = 0; i < n_units; i++) {
        if (g_ascii_strcasecmp(suffix, units[i].suffix) != 0)
            continue;
        if (n > G_MAXUINT64 / units[i].factor)
            return FBL_VALUE_TOO_LARGE;
        *out = n * units[i].factor;
        return FBL_VALUE_OK;
    }
    return FBL_VALUE_BAD_UNIT;
}

fbl_value_status fbl_value_parse_number(const char *text, guint64 *out)
{
    static const unit none[] = {{"", 1}};
    return with_unit(text, none, G_N_ELEMENTS(none), out);
}

fbl_value_status fbl_value_parse_size(const char *text, guint64 *bytes)
{
    return with_unit(text, size_units, G_N_ELEMENTS(size_units), bytes);
}

fbl_value_status fbl_value_parse_duration(const char *text, guint64 *ms)
{
    return with_unit(text, duration_units, G_N_ELEMENTS(duration_units), ms);
}

fbl_value_status fbl_value_parse_days(const char *text, guint64 *days)
{
    return with_unit(text, day_units, G_N_ELEMENTS(day_units), days);
}

fbl_value_status fbl_value_parse_percent(const char *text, guint64 *ppm)
{
    if (!g_ascii_isdigit(*text))
        return FBL_VALUE_NOT_A_NUMBER;
    guint64 whole = 0, frac = 0, scale = 10000; /* 1 % is 10,000 ppm */
    const char *p = text;
    for (; g_ascii_isdigit(*p); p++) {
        if (whole > G_MAXUINT64 / 100000)
            return FBL_VALUE_TOO_LARGE;
        whole = whole * 10 + (guint64) (*p - '0');
    }
    if (*p == '.') {
        p++;
        if (!g_ascii_isdigit(*p))
            return FBL_VALUE_NOT_A_NUMBER;
        for (; g_ascii_isdigit(*p); p++) {
            if (scale == 1)
                return FBL_VALUE_BAD_UNIT; /* finer than a ppm */
            scale /= 10;
            frac += (guint64) (*p - '0') * scale;
        }
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '%')
        p++;
    if (*p != '\0')
        return FBL_VALUE_BAD_UNIT;
    *ppm = whole * 10000 + frac;
    return FBL_VALUE_OK;
}

bool fbl_value_parse_bool(const char *text, bool *out)
{
    static const struct {
        const char *word;
        bool value;
    } words[] = {{"true", true},   {"yes", true}, {"on", true},   {"1", true},
                 {"false", false}, {"no", false}, {"off", false}, {"0", false}};
    for (size_t i = 0; i < G_N_ELEMENTS(words); i++) {
        if (g_ascii_strcasecmp(text, words[i].word) == 0) {
            *out = words[i].value;
            return true;
        }
    }
    return false;
}
