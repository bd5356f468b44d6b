/* address.c - addr-specs and domains through GMime's address parser */
#include "parsers/address.h"

#include <string.h>

#include <gmime/gmime.h>

#include "parsers/report.h"

static GMimeParserOptions *loose_options(void)
{
    GMimeParserOptions *o = g_mime_parser_options_new();
    g_mime_parser_options_set_address_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_rfc2047_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(o, TRUE);
    return o;
}

/* A usable addr-spec: has a local part and a domain, fits, is UTF-8. */
static char *clean_spec(const char *addr)
{
    if (addr == NULL)
        return NULL;
    size_t n = strlen(addr);
    const char *at = strrchr(addr, '@');
    if (n == 0 || n > FBL_ADDRESS_MAX || at == NULL || at == addr || at[1] == '\0' ||
        !g_utf8_validate(addr, (gssize) n, NULL) || strpbrk(addr, " \t\r\n<>") != NULL)
        return NULL;
    return g_utf8_strdown(addr, (gssize) n);
}

static void add_mailbox(InternetAddress *ia, GPtrArray *out, GPtrArray *names)
{
    char *spec = clean_spec(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
    if (spec == NULL)
        return;
    if (fbl_strv_add_unique(out, spec) && names != NULL) {
        const char *nm = internet_address_get_name(ia);
        if (nm != NULL && *nm != '\0' && g_utf8_validate(nm, -1, NULL))
            g_ptr_array_add(names, g_strdup(nm));
        else
            g_ptr_array_add(names, g_strdup(""));
    }
    g_free(spec);
}

/* A group's mailboxes; a group inside it is skipped: RFC 5322 groups do not nest. */
static void take_group_members(InternetAddressGroup *group, GPtrArray *out, GPtrArray *names,
                               guint max)
{
    InternetAddressList *members = internet_address_group_get_members(group);
    int m = members != NULL ? internet_address_list_length(members) : 0;
    for (int j = 0; j < m && out->len < max; j++) {
        InternetAddress *member = internet_address_list_get_address(members, j);
        if (INTERNET_ADDRESS_IS_MAILBOX(member))
            add_mailbox(member, out, names);
    }
}

/* Groups are opened one level: RFC 5322 groups do not nest. */
void fbl_address_list_take(InternetAddressList *list, GPtrArray *out, GPtrArray *names, guint max)
{
    int n = list != NULL ? internet_address_list_length(list) : 0;
    for (int i = 0; i < n && out->len < max; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia))
            add_mailbox(ia, out, names);
        else
            take_group_members(INTERNET_ADDRESS_GROUP(ia), out, names, max);
    }
}

static void collect(const char *text, GPtrArray *out, GPtrArray *names, guint max)
{
    if (text == NULL || strlen(text) > (size_t) 64 * 1024)
        return;
    GMimeParserOptions *opts = loose_options();
    InternetAddressList *list = internet_address_list_parse(opts, text);
    g_mime_parser_options_free(opts);
    if (list == NULL)
        return;
    fbl_address_list_take(list, out, names, max);
    g_object_unref(list);
}

char *fbl_address_spec(const char *text, char **name)
{
    if (name != NULL)
        *name = NULL;
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    collect(text, found, names, 1);
    if (found->len == 0)
        return NULL;
    const char *nm = g_ptr_array_index(names, 0);
    if (name != NULL && *nm != '\0')
        *name = g_strdup(nm);
    return g_strdup(g_ptr_array_index(found, 0));
}

void fbl_address_list(const char *text, GPtrArray *out, guint max)
{
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    collect(text, found, NULL, max);
    for (guint i = 0; i < found->len && out->len < max; i++)
        fbl_strv_add_unique(out, g_ptr_array_index(found, i));
}

char *fbl_address_domain(const char *address)
{
    if (address == NULL)
        return NULL;
    const char *at = strrchr(address, '@');
    if (at == NULL || at[1] == '\0')
        return NULL;
    size_t n = strlen(at + 1);
    while (n > 0 && at[1 + n - 1] == '.')
        n--;
    if (n == 0)
        return NULL;
    return g_utf8_strdown(at + 1, (gssize) n);
}
