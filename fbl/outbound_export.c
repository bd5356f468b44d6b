/* outbound_export.c - locked accounts as Postfix access tables (see outbound_export.h) */
#include "fbl/outbound_export.h"

#include <string.h>

bool fbl_accounts_format_from_string(const char *text, fbl_accounts_format *out)
{
    if (g_strcmp0(text, "postfix-sender") == 0)
        *out = FBL_ACCOUNTS_POSTFIX_SENDER;
    else if (g_strcmp0(text, "postfix-sasl") == 0)
        *out = FBL_ACCOUNTS_POSTFIX_SASL;
    else
        return false;
    return true;
}

bool fbl_outbound_account_is_safe(const char *account)
{
    if (account == NULL || *account == '\0' || strlen(account) > 255 || account[0] == '@')
        return false;
    for (const char *p = account; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && strchr(".-_+=@", *p) == NULL)
            return false;
    }
    return true;
}

/* A lock_text of the config is one line already (config.c); this holds whatever is passed. */
static char *one_line(const char *text)
{
    char *t = g_strdup(text != NULL ? text : "");
    for (char *p = t; *p != '\0'; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = ' ';
    }
    return t;
}

char *fbl_outbound_export_render(fbl_accounts_format format, const GPtrArray *accounts,
                                 const char *const *domains, const char *lock_text, guint *skipped)
{
    GString *out = g_string_new(
        "# Written by fbl export accounts: locked after spam complaints. Do not edit.\n");
    g_autofree char *text = one_line(lock_text);
    guint left_out = 0;
    for (guint i = 0; i < accounts->len; i++) {
        const char *a = g_ptr_array_index(accounts, i);
        if (!fbl_outbound_account_is_safe(a)) {
            left_out++;
            continue;
        }
        if (format == FBL_ACCOUNTS_POSTFIX_SASL || strchr(a, '@') != NULL) {
            g_string_append_printf(out, "%s REJECT 5.7.1 %s\n", a, text);
            continue;
        }
        bool written = false;
        for (size_t d = 0; domains != NULL && domains[d] != NULL; d++) {
            const char *dom = domains[d];
            dom += g_str_has_prefix(dom, "*.") ? 2 : dom[0] == '.' ? 1 : 0;
            g_autofree char *addr = g_strdup_printf("%s@%s", a, dom);
            g_autofree char *lower = g_ascii_strdown(addr, -1);
            if (fbl_outbound_account_is_safe(lower)) {
                g_string_append_printf(out, "%s REJECT 5.7.1 %s\n", lower, text);
                written = true;
            }
        }
        if (!written)
            left_out++;
    }
    if (skipped != NULL)
        *skipped = left_out;
    return g_string_free(out, FALSE);
}
