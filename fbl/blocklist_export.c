/* blocklist_export.c - blocklist files for rbldnsd, rspamd and Postfix (see blocklist_export.h) */
#define G_LOG_DOMAIN "fbl"
#include "fbl/blocklist_export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "fbl/blocklist.h"

bool fbl_export_format_from_string(const char *text, fbl_export_format *out)
{
    static const char *const names[] = {"rbldnsd", "rspamd", "postfix"};
    for (size_t i = 0; text != NULL && i < G_N_ELEMENTS(names); i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (fbl_export_format) i;
            return true;
        }
    }
    return false;
}

char *fbl_export_ip6_path(const char *path)
{
    return g_strconcat(path, ".ip6", NULL);
}

/*
 * @entry is one word of the characters an IP or a host name has: a line of a
 * table must not be able to smuggle in a second one (the SQL takes only such
 * entries; this holds whatever it returns).
 */
static bool is_safe(const char *entry)
{
    if (*entry == '\0')
        return false;
    for (const char *p = entry; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && strchr(".-_:", *p) == NULL)
            return false;
    }
    return true;
}

static bool is_ipv6(const char *entry)
{
    return strchr(entry, ':') != NULL;
}

/* "Listed by ORG for spam complaints, see URL/" (the entry follows). */
static char *answer_text(const fbl_export_text *t)
{
    const char *url = t->url != NULL ? t->url : "";
    size_t n = strlen(url);
    return g_strdup_printf("Listed by %s for spam complaints, see %.*s/",
                           t->org != NULL ? t->org : "",
                           (int) (n > 0 && url[n - 1] == '/' ? n - 1 : n), url);
}

/* A name as rbldnsd takes it absolute: with its final dot. */
static void append_absolute(GString *out, const char *name)
{
    g_string_append(out, name);
    if (!g_str_has_suffix(name, "."))
        g_string_append_c(out, '.');
}

static void rbldnsd_header(GString *out, const fbl_export_text *t)
{
    const char *const *ns = t->nameservers;
    bool has_ns = ns != NULL && ns[0] != NULL;
    g_string_append(out, "# Written by fbl export: listed for spam complaints. Do not edit.\n");
    /* Serial 0: rbldnsd takes the newest data file's mtime, which each export moves. */
    g_string_append_printf(out, "$SOA %u ", t->ttl_s);
    append_absolute(out, has_ns ? ns[0] : "localhost");
    g_string_append_printf(out, " %s 0 600 300 86400 %u\n", t->hostmaster, t->ttl_s);
    if (has_ns) {
        g_string_append_printf(out, "$NS %u", t->ttl_s);
        for (size_t i = 0; ns[i] != NULL; i++) {
            g_string_append_c(out, ' ');
            append_absolute(out, ns[i]);
        }
        g_string_append_c(out, '\n');
    }
    g_string_append_printf(out, "$TTL %u\n", t->ttl_s);
    g_autofree char *text = answer_text(t);
    g_string_append_printf(out, ":127.0.0.2:%s$\n", text);
}

char *fbl_export_render(fbl_blocklist_kind kind, fbl_export_format format, const GPtrArray *entries,
                        const fbl_export_text *text, bool ipv6)
{
    GString *out = g_string_new(NULL);
    g_autofree char *answer = answer_text(text);
    if (format == FBL_EXPORT_RBLDNSD)
        rbldnsd_header(out, text);
    else
        g_string_append(out, "# Written by fbl export: listed for spam complaints. Do not edit.\n");
    for (guint i = 0; i < entries->len; i++) {
        const char *e = g_ptr_array_index(entries, i);
        if (!is_safe(e))
            continue;
        bool v6 = kind == FBL_BLOCKLIST_IP && is_ipv6(e);
        switch (format) {
        case FBL_EXPORT_RBLDNSD:
            if (kind == FBL_BLOCKLIST_DOMAIN || v6 == ipv6)
                g_string_append_printf(out, "%s\n", e);
            break;
        case FBL_EXPORT_RSPAMD:
            g_string_append_printf(out, "%s\n", e);
            break;
        case FBL_EXPORT_POSTFIX:
            if (kind == FBL_BLOCKLIST_IP)
                g_string_append_printf(out, "%s/%d REJECT 5.7.1 %s%s\n", e, v6 ? 128 : 32, answer,
                                       e);
            else
                g_string_append_printf(out, "%s REJECT 5.7.1 %s%s\n", e, answer, e);
            break;
        }
    }
    return g_string_free(out, FALSE);
}

static bool write_failed(const char *path, const char *what, int err, GError **error)
{
    g_set_error(error, FBL_BLOCKLIST_ERROR, FBL_BLOCKLIST_ERROR_WRITE, "%s: %s: %s", path, what,
                g_strerror(err));
    return false;
}

/* Write all of @data to @fd. */
static bool write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t) n;
    }
    return true;
}

/* fsync the directory holding @path, so that the rename survives a crash. */
static bool sync_dir(const char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    (void) close(fd);
    return ok;
}

/* @data into @path by way of a temporary file beside it. */
static bool write_atomically(const char *path, const char *data, GError **error)
{
    g_autofree char *tmp = g_strconcat(path, ".XXXXXX", NULL);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
        return write_failed(path, "cannot create a temporary file beside it", errno, error);
    bool ok = write_all(fd, data, strlen(data)) && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    int err = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        (void) g_unlink(tmp);
        return write_failed(path, "cannot write it", err, error);
    }
    if (!sync_dir(path))
        return write_failed(path, "cannot sync its directory", errno, error);
    return true;
}

bool fbl_export_write_text(const char *path, const char *data, GError **error)
{
    return write_atomically(path, data, error);
}

bool fbl_export_write(const char *path, fbl_blocklist_kind kind, fbl_export_format format,
                      const GPtrArray *entries, const fbl_export_text *text, GError **error)
{
    g_autofree char *data = fbl_export_render(kind, format, entries, text, false);
    if (!write_atomically(path, data, error))
        return false;
    if (format != FBL_EXPORT_RBLDNSD || kind != FBL_BLOCKLIST_IP)
        return true;
    g_autofree char *v6_path = fbl_export_ip6_path(path);
    g_autofree char *v6 = fbl_export_render(kind, format, entries, text, true);
    return write_atomically(v6_path, v6, error);
}
