/* log.c - key=value log lines on stderr */
#include "fbl/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static GLogLevelFlags min_level = G_LOG_LEVEL_MESSAGE;
/* Where lines go: stderr, or the [log] file (reopened onto the same number). */
static int log_fd = STDERR_FILENO;
static char *log_path;
static GMutex reopen_lock;

static const char *level_name(GLogLevelFlags level)
{
    if (level & G_LOG_LEVEL_ERROR)
        return "error";
    if (level & G_LOG_LEVEL_CRITICAL)
        return "critical";
    if (level & G_LOG_LEVEL_WARNING)
        return "warning";
    if (level & G_LOG_LEVEL_MESSAGE)
        return "notice";
    if (level & G_LOG_LEVEL_INFO)
        return "info";
    return "debug";
}

/* GLib's levels run from ERROR (1<<2) to DEBUG (1<<7): smaller is more severe. */
static bool wanted(GLogLevelFlags level)
{
    return (level & G_LOG_LEVEL_MASK) <= min_level;
}

static void append_value(GString *line, const char *value, gssize len)
{
    if (len < 0)
        len = (gssize) strlen(value);
    bool quote = len == 0 || memchr(value, ' ', (size_t) len) != NULL ||
                 memchr(value, '"', (size_t) len) != NULL || memchr(value, '=', (size_t) len);
    if (quote)
        g_string_append_c(line, '"');
    for (gssize i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) value[i];
        if (ch == '"' || ch == '\\')
            g_string_append_printf(line, "\\%c", ch);
        else if (ch == '\n')
            g_string_append(line, "\\n");
        else if (ch < 0x20 || ch == 0x7f)
            g_string_append_printf(line, "\\x%02x", ch);
        else
            g_string_append_c(line, (char) ch);
    }
    if (quote)
        g_string_append_c(line, '"');
}

static GLogWriterOutput writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                               gpointer user_data)
{
    (void) user_data;
    if (!wanted(level))
        return G_LOG_WRITER_HANDLED;
    /* rid and stage lead the line: grep for a mail's whole path through fbl. */
    GString *line = g_string_new(NULL);
    const char *domain = NULL, *message = NULL, *rid = NULL, *stage = NULL;
    for (gsize i = 0; i < n_fields; i++) {
        const char *k = fields[i].key;
        if (strcmp(k, "GLIB_DOMAIN") == 0)
            domain = fields[i].value;
        else if (strcmp(k, "MESSAGE") == 0)
            message = fields[i].value;
        else if (strcmp(k, "RID") == 0)
            rid = fields[i].value;
        else if (strcmp(k, "STAGE") == 0)
            stage = fields[i].value;
    }
    if (rid != NULL)
        g_string_append_printf(line, "rid=%s ", rid);
    if (stage != NULL)
        g_string_append_printf(line, "stage=%s ", stage);
    g_string_append_printf(line, "level=%s domain=%s msg=", level_name(level),
                           domain != NULL ? domain : "fbl");
    append_value(line, message != NULL ? message : "", -1);
    for (gsize i = 0; i < n_fields; i++) {
        const char *k = fields[i].key;
        if (strcmp(k, "MESSAGE") == 0 || strcmp(k, "GLIB_DOMAIN") == 0 ||
            strcmp(k, "PRIORITY") == 0 || strncmp(k, "CODE_", 5) == 0 ||
            strcmp(k, "GLIB_OLD_LOG_API") == 0 || strcmp(k, "RID") == 0 || strcmp(k, "STAGE") == 0)
            continue;
        g_autofree char *key = g_ascii_strdown(k, -1);
        g_string_append_printf(line, " %s=", key);
        append_value(line, fields[i].value, fields[i].length);
    }
    g_string_append_c(line, '\n');
    ssize_t rc = write(log_fd, line->str, line->len);
    g_string_free(line, TRUE);
    return rc < 0 ? G_LOG_WRITER_UNHANDLED : G_LOG_WRITER_HANDLED;
}

void fbl_log_init(GLogLevelFlags level)
{
    min_level = level;
    g_log_set_writer_func(writer, NULL, NULL);
}

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

bool fbl_log_open_file(const char *path, GError **error)
{
    int fd = open_log(path);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "log file %s: %s", path,
                    g_strerror(e));
        return false;
    }
    g_mutex_lock(&reopen_lock);
    g_free(log_path);
    log_path = g_strdup(path);
    if (log_fd == STDERR_FILENO) {
        log_fd = fd;
    } else {
        (void) dup2(fd, log_fd);
        close(fd);
    }
    g_mutex_unlock(&reopen_lock);
    return true;
}

bool fbl_log_reopen(void)
{
    g_mutex_lock(&reopen_lock);
    int fd = log_path != NULL ? open_log(log_path) : -1, e = errno;
    /* dup2 swaps the file under the same number atomically: a line being
     * written by another thread goes wholly to the old file or the new one. */
    if (fd >= 0) {
        (void) dup2(fd, log_fd);
        close(fd);
    }
    g_autofree char *path = g_strdup(log_path);
    g_mutex_unlock(&reopen_lock);
    if (path == NULL)
        return false;
    if (fd < 0)
        g_warning("cannot reopen the log file %s (still writing to the old one): %s", path,
                  g_strerror(e));
    else
        g_message("log file reopened: %s", path);
    return fd >= 0;
}

const char *fbl_log_level_to_string(GLogLevelFlags level)
{
    return level_name(level);
}

bool fbl_log_level_from_string(const char *name, GLogLevelFlags *level)
{
    static const struct {
        const char *name;
        GLogLevelFlags level;
    } levels[] = {
        {"debug", G_LOG_LEVEL_DEBUG},       {"info", G_LOG_LEVEL_INFO},
        {"notice", G_LOG_LEVEL_MESSAGE},    {"message", G_LOG_LEVEL_MESSAGE},
        {"warning", G_LOG_LEVEL_WARNING},   {"error", G_LOG_LEVEL_CRITICAL},
        {"critical", G_LOG_LEVEL_CRITICAL},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++) {
        if (g_ascii_strcasecmp(name, levels[i].name) == 0) {
            *level = levels[i].level;
            return true;
        }
    }
    return false;
}

void fbl_log_event(GLogLevelFlags level, const char *rid, const char *stage, const char *format,
                   ...)
{
    if (!wanted(level))
        return;
    va_list ap;
    va_start(ap, format);
    g_autofree char *message = g_strdup_vprintf(format, ap);
    va_end(ap);
    char short_rid[13] = "-";
    if (rid != NULL && *rid != '\0')
        g_strlcpy(short_rid, rid, sizeof short_rid);
    const GLogField fields[] = {
        {"GLIB_DOMAIN", "fbl", -1},
        {"RID", short_rid, -1},
        {"STAGE", stage, -1},
        {"MESSAGE", message, -1},
    };
    g_log_structured_array(level, fields, G_N_ELEMENTS(fields));
}
