/* arf.c - feedback-report fields (RFC 5965, 6591, 6650) as real senders write them */
#include "parsers/arf.h"

#include <string.h>

#include "parsers/address.h"
#include "parsers/ip.h"
#include "parsers/received.h"

/* Splitting one line at known names is quadratic; real ones are a few hundred bytes. */
#define FBL_ARF_MAX_ONE_LINE 4096

/* Field names whose presence tells a one-line report where each field starts. */
static const char *const known_fields[] = {
    "Feedback-Type",
    "User-Agent",
    "Version",
    "Source-IP",
    "Original-Mail-From",
    "Original-Rcpt-To",
    "Arrival-Date",
    "Received-Date",
    "Reporting-MTA",
    "Reported-Domain",
    "Reported-URI",
    "Incidents",
    "Authentication-Results",
    "Original-Envelope-Id",
    "Redacted-Address",
    "Feedback-Agent",
    "Source-Port",
    "Auth-Failure",
    "Delivery-Result",
    "Removal-Recipient",
    "DKIM-Domain",
    "DKIM-Identity",
    "DKIM-Selector",
    "SPF-DNS",
    "Identity-Alignment",
};

typedef struct field {
    char *name;  /* as written */
    char *value; /* unfolded, trimmed, unquoted */
} field;

static void field_free(gpointer p)
{
    field *f = p;
    g_free(f->name);
    g_free(f->value);
    g_free(f);
}

static bool is_blank(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!g_ascii_isspace(*s))
            return false;
    }
    return true;
}

static bool is_name_char(char c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '_';
}

/* YAML writes 'x' or "x"; an empty quoted value means "none". */
static char *unquote(char *v)
{
    g_strstrip(v);
    size_t n = strlen(v);
    if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
        memmove(v, v + 1, n - 2);
        v[n - 2] = '\0';
        g_strstrip(v);
    }
    return v;
}

/* The fields read so far; past FBL_ARF_MAX_FIELDS they are counted, not kept. */
typedef struct field_list {
    GPtrArray *items; /* field * */
    unsigned dropped;
} field_list;

static void add_field(field_list *fields, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
    if (fields->items->len >= FBL_ARF_MAX_FIELDS) {
        fields->dropped++;
        return;
    }
    field *f = g_new(field, 1);
    f->name = g_strndup(name, name_len);
    f->value = unquote(g_strndup(value, value_len));
    g_ptr_array_add(fields->items, f);
}

/* A "Name:" at @q: known, or capitalised like a field name ("Abuse-Type:"). */
static bool field_name_at(const char *line, const char *q)
{
    if (q != line && !g_ascii_isspace(q[-1]))
        return false;
    if (!g_ascii_isupper(*q))
        return false;
    const char *e = q;
    while (is_name_char(*e))
        e++;
    return *e == ':' && (e[1] == ' ' || e[1] == '\t' || e[1] == '\0');
}

/* Where the next field starts inside a one-line report, after @p, or NULL. */
static const char *next_field(const char *line, const char *p)
{
    for (const char *q = p; *q != '\0'; q++) {
        if (field_name_at(line, q))
            return q;
    }
    return NULL;
}

static bool is_known(const char *name, size_t len)
{
    for (size_t i = 0; i < G_N_ELEMENTS(known_fields); i++) {
        if (strlen(known_fields[i]) == len && g_ascii_strncasecmp(name, known_fields[i], len) == 0)
            return true;
    }
    return false;
}

/*
 * "Feedback-Type: abuse User-Agent: x Version: 1" - all fields on one line.
 * It is one only when at least two known field names are on the line.
 */
static bool split_one_line(const char *line, field_list *fields)
{
    unsigned known = 0;
    for (const char *q = next_field(line, line); q != NULL; q = next_field(line, q + 1)) {
        if (is_known(q, (size_t) (strchr(q, ':') - q)))
            known++;
    }
    if (known < 2)
        return false;
    const char *p = next_field(line, line);
    while (p != NULL) {
        const char *colon = strchr(p, ':');
        const char *next = next_field(line, colon + 1);
        const char *end = next != NULL ? next : colon + strlen(colon);
        add_field(fields, p, (size_t) (colon - p), colon + 1, (size_t) (end - colon - 1));
        p = next;
    }
    return true;
}

/* The usual shape: one field per line, continuation lines start with white space. */
static void split_lines(char **lines, field_list *fields, GPtrArray *warnings)
{
    GString *value = NULL;
    const char *name = NULL;
    size_t name_len = 0;
    unsigned unreadable = 0;
    for (size_t i = 0; lines[i] != NULL; i++) {
        char *line = lines[i];
        g_strchomp(line);
        if ((line[0] == ' ' || line[0] == '\t') && value != NULL) {
            g_string_append_c(value, ' ');
            g_string_append(value, g_strchug(line));
            continue;
        }
        if (value != NULL)
            add_field(fields, name, name_len, value->str, value->len);
        if (value != NULL)
            g_string_free(value, TRUE);
        value = NULL;
        if (line[0] == '\0' || strcmp(line, "---") == 0 || strcmp(line, "...") == 0)
            continue;
        size_t n = 0;
        while (is_name_char(line[n]))
            n++;
        size_t colon = n;
        while (line[colon] == ' ' || line[colon] == '\t')
            colon++;
        if (n == 0 || line[colon] != ':') {
            unreadable++;
            continue;
        }
        name = line;
        name_len = n;
        value = g_string_new(line + colon + 1);
    }
    if (value != NULL) {
        add_field(fields, name, name_len, value->str, value->len);
        g_string_free(value, TRUE);
    }
    if (unreadable > 0) {
        g_autofree char *w =
            g_strdup_printf("arf: %u unreadable line(s) in the feedback report", unreadable);
        fbl_strv_add_unique(warnings, w);
    }
}

static bool name_is(const field *f, const char *name)
{
    return g_ascii_strcasecmp(f->name, name) == 0;
}

static void add_value(GPtrArray *list, const char *value, unsigned *dropped)
{
    if (*value == '\0')
        return;
    if (list->len >= FBL_ARF_MAX_VALUES) {
        (*dropped)++;
        return;
    }
    fbl_strv_add_unique(list, value);
}

static void set_once(char **slot, const char *value)
{
    if (*slot == NULL && *value != '\0')
        *slot = g_strdup(value);
}

/* "arf: <what> '<value>'"; the value is cut at 80 bytes, it came from strangers. */
static void warn(GPtrArray *warnings, const char *what, const char *value)
{
    g_autofree char *shown = g_utf8_make_valid(value, MIN((gssize) strlen(value), 80));
    g_autofree char *w = g_strdup_printf("arf: %s '%s'", what, shown);
    fbl_strv_add_unique(warnings, w);
}

/* "dns; mta.example.com" - RFC 5965 writes a type before the name. */
static const char *strip_mta_type(const char *v)
{
    const char *semi = strchr(v, ';');
    if (semi == NULL)
        return v;
    semi++;
    while (g_ascii_isspace(*semi))
        semi++;
    return semi;
}

static void take_source_ip(fbl_arf *arf, const char *value, GPtrArray *warnings)
{
    if (arf->source_ip != NULL || *value == '\0')
        return;
    arf->source_ip = fbl_ip_canonical(value);
    if (arf->source_ip == NULL)
        warn(warnings, "Source-IP is not an IP address:", value);
}

static void take_rcpt(GPtrArray *list, const char *value, unsigned *dropped)
{
    g_autofree char *spec = fbl_address_spec(value, NULL);
    if (spec != NULL) {
        add_value(list, spec, dropped);
        return;
    }
    /* "redacted", "****": keep what was written, it tells redaction apart. */
    g_autofree char *raw = g_utf8_strdown(value, -1);
    g_strstrip(g_strdelimit(raw, "<>", ' '));
    add_value(list, raw, dropped);
}

/* RFC 6591's DKIM and SPF details, RFC 6692's Source-Port. */
static bool take_auth_detail(fbl_arf *arf, const field *f, unsigned *dropped)
{
    const char *v = f->value;
    if (name_is(f, "DKIM-Domain")) {
        g_autofree char *d = g_utf8_strdown(v, -1);
        set_once(&arf->dkim_domain, d);
    } else if (name_is(f, "DKIM-Identity"))
        set_once(&arf->dkim_identity, v);
    else if (name_is(f, "DKIM-Selector"))
        set_once(&arf->dkim_selector, v);
    else if (name_is(f, "SPF-DNS"))
        add_value(arf->spf_dns, v, dropped);
    else if (name_is(f, "Identity-Alignment"))
        set_once(&arf->identity_alignment, v);
    else if (name_is(f, "Source-Port")) {
        guint64 n;
        if (g_ascii_string_to_unsigned(v, 10, 0, 65535, &n, NULL))
            arf->source_port = (int64_t) n;
    } else
        return false;
    return true;
}

static void take_mail_from(fbl_arf *arf, const char *value)
{
    if (arf->original_mail_from == NULL)
        arf->original_mail_from = fbl_address_spec(value, NULL);
}

static void take_arrival_date(fbl_arf *arf, const char *value, GPtrArray *warnings)
{
    if (arf->arrival_date != NULL || *value == '\0')
        return;
    arf->arrival_date = fbl_date_to_iso(value);
    if (arf->arrival_date == NULL)
        warn(warnings, "unreadable Arrival-Date", value);
}

static void take_reported_domain(fbl_arf *arf, const char *value, unsigned *dropped)
{
    g_autofree char *d = g_utf8_strdown(value, -1);
    add_value(arf->reported_domain, d, dropped);
}

static void take_incidents(fbl_arf *arf, const char *value, GPtrArray *warnings)
{
    guint64 n;
    if (g_ascii_string_to_unsigned(value, 10, 0, G_MAXINT64, &n, NULL))
        arf->incidents = (int64_t) n;
    else if (*value != '\0')
        warn(warnings, "Incidents is not a number:", value);
}

static void take_field(fbl_arf *arf, const field *f, GPtrArray *warnings, unsigned *dropped)
{
    const char *v = f->value;
    if (take_auth_detail(arf, f, dropped))
        return;
    if (name_is(f, "Feedback-Type"))
        set_once(&arf->feedback_type_raw, v);
    else if (name_is(f, "User-Agent") || name_is(f, "Feedback-Agent"))
        set_once(&arf->user_agent, v);
    else if (name_is(f, "Version"))
        set_once(&arf->version, v);
    else if (name_is(f, "Source-IP"))
        take_source_ip(arf, v, warnings);
    else if (name_is(f, "Original-Mail-From"))
        take_mail_from(arf, v);
    else if (name_is(f, "Original-Rcpt-To"))
        take_rcpt(arf->original_rcpt_to, v, dropped);
    else if (name_is(f, "Removal-Recipient"))
        take_rcpt(arf->removal_recipient, v, dropped);
    else if (name_is(f, "Arrival-Date") || name_is(f, "Received-Date"))
        take_arrival_date(arf, v, warnings);
    else if (name_is(f, "Reporting-MTA"))
        set_once(&arf->reporting_mta, strip_mta_type(v));
    else if (name_is(f, "Reported-Domain"))
        take_reported_domain(arf, v, dropped);
    else if (name_is(f, "Reported-URI"))
        add_value(arf->reported_uri, v, dropped);
    else if (name_is(f, "Incidents"))
        take_incidents(arf, v, warnings);
    else if (name_is(f, "Authentication-Results"))
        add_value(arf->authentication_results, v, dropped);
    else if (name_is(f, "Original-Envelope-Id"))
        set_once(&arf->original_envelope_id, v);
    else if (name_is(f, "Redacted-Address"))
        arf->redacted_address = true;
    else if (name_is(f, "Auth-Failure"))
        set_once(&arf->auth_failure, v);
    else if (name_is(f, "Delivery-Result"))
        set_once(&arf->delivery_result, v);
}

fbl_arf *fbl_arf_parse_fields(const char *text, size_t len, GPtrArray *warnings)
{
    fbl_arf *arf = fbl_arf_new();
    g_autofree char *copy = g_strndup(text, len); /* stops at a NUL, as it should */
    /* CRLF to LF first, then lone CRs: a CRLF is one line end, not two. */
    char *out = copy;
    for (const char *r = copy; *r != '\0'; r++) {
        if (r[0] == '\r' && r[1] == '\n')
            continue;
        *out++ = (char) (*r == '\r' ? '\n' : *r);
    }
    *out = '\0';
    g_auto(GStrv) lines = g_strsplit(copy, "\n", -1);
    field_list fields = {g_ptr_array_new_with_free_func(field_free), 0};

    /* One non-empty line with several known fields in it is a one-line report. */
    const char *only = NULL;
    unsigned nonempty = 0;
    for (size_t i = 0; lines[i] != NULL; i++) {
        if (!is_blank(lines[i])) {
            nonempty++;
            only = lines[i];
        }
    }
    bool one_line = nonempty == 1 && strlen(only) <= FBL_ARF_MAX_ONE_LINE;
    if (!(one_line && split_one_line(only, &fields)))
        split_lines(lines, &fields, warnings);

    unsigned dropped = 0;
    for (guint i = 0; i < fields.items->len; i++)
        take_field(arf, g_ptr_array_index(fields.items, i), warnings, &dropped);
    if (dropped > 0) {
        g_autofree char *w =
            g_strdup_printf("arf: %u repeated field value(s) over the limit of %d dropped", dropped,
                            FBL_ARF_MAX_VALUES);
        fbl_strv_add_unique(warnings, w);
    }
    if (fields.dropped > 0)
        fbl_strv_add_unique(warnings, "arf: too many fields, the rest ignored");
    g_ptr_array_unref(fields.items);
    return arf;
}

bool fbl_arf_feedback_type(const char *raw, fbl_feedback_type *type)
{
    static const struct {
        const char *name;
        fbl_feedback_type type;
    } aliases[] = {
        {"abuse", FBL_FEEDBACK_ABUSE},         {"spam", FBL_FEEDBACK_ABUSE},
        {"complaint", FBL_FEEDBACK_ABUSE},     {"fraud", FBL_FEEDBACK_FRAUD},
        {"phishing", FBL_FEEDBACK_FRAUD},      {"virus", FBL_FEEDBACK_VIRUS},
        {"malware", FBL_FEEDBACK_VIRUS},       {"other", FBL_FEEDBACK_OTHER},
        {"not-spam", FBL_FEEDBACK_NOT_SPAM},   {"not spam", FBL_FEEDBACK_NOT_SPAM},
        {"notspam", FBL_FEEDBACK_NOT_SPAM},    {"ham", FBL_FEEDBACK_NOT_SPAM},
        {"opt-out", FBL_FEEDBACK_OPT_OUT},     {"opt-out-list", FBL_FEEDBACK_OPT_OUT},
        {"unsubscribe", FBL_FEEDBACK_OPT_OUT}, {"auth-failure", FBL_FEEDBACK_AUTH_FAILURE},
        {"dmarc", FBL_FEEDBACK_AUTH_FAILURE},
    };
    *type = FBL_FEEDBACK_OTHER;
    if (raw == NULL)
        return false;
    g_autofree char *v = g_strstrip(g_ascii_strdown(raw, -1));
    for (size_t i = 0; i < G_N_ELEMENTS(aliases); i++) {
        if (strcmp(v, aliases[i].name) == 0) {
            *type = aliases[i].type;
            return true;
        }
    }
    return false;
}
