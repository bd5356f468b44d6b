/* log.c - key=value log lines on stderr or a file, or to journald or syslog (see log.h) */
#include "fbl/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION /* the caller's CODE_* fields are passed on instead */
#include <systemd/sd-journal.h>

#define RID_DIGITS     12 /* fbl(1): rid is the first 12 hex digits of the mail's SHA-256 */
#define JOURNAL_FIELDS 24 /* at most this many fields per journal entry */
#define SYSLOG_IDENT   "fbl"
#define DEFAULT_DOMAIN "fbl" /* the subcommands' domain (STYLE.md §6) */

static GLogLevelFlags min_level = G_LOG_LEVEL_MESSAGE;
static fbl_log_target target = FBL_LOG_TARGET_STDERR;
/* Lines lead with ts, role and pid (a file; stderr unless it is journald's). */
static bool prefix_lines = true;
static char *role_name;
/* Where lines go: stderr, or the [log] file (reopened onto the same number). */
static int log_fd = STDERR_FILENO;
static char *log_path;
static GMutex reopen_lock;

GQuark fbl_log_error_quark(void)
{
    return g_quark_from_static_string("fbl-log-error");
}

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

/* syslog(3)'s priority of a GLib level, as GLib's own journald writer maps them. */
static int level_priority(GLogLevelFlags level)
{
    if (level & G_LOG_LEVEL_ERROR)
        return LOG_CRIT;
    if (level & G_LOG_LEVEL_CRITICAL)
        return LOG_ERR;
    if (level & G_LOG_LEVEL_WARNING)
        return LOG_WARNING;
    if (level & G_LOG_LEVEL_MESSAGE)
        return LOG_NOTICE;
    if (level & G_LOG_LEVEL_INFO)
        return LOG_INFO;
    return LOG_DEBUG;
}

/* GLib's levels run from ERROR (1<<2) to DEBUG (1<<7): smaller is more severe. */
static bool wanted(GLogLevelFlags level)
{
    return (level & G_LOG_LEVEL_MASK) <= min_level;
}

static const char *role_or_default(void)
{
    if (role_name != NULL)
        return role_name;
    const char *prg = g_get_prgname();
    return prg != NULL ? prg : "fbl";
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

/* "2026-11-29T15:30:59.123Z": now, UTC, to the millisecond. */
static void append_timestamp(GString *line)
{
    gint64 us = g_get_real_time();
    time_t secs = (time_t) (us / G_USEC_PER_SEC);
    struct tm tm;
    char buf[32] = "1970-01-01T00:00:00";
    if (gmtime_r(&secs, &tm) != NULL)
        (void) strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    g_string_append_printf(line, "%s.%03dZ", buf, (int) ((us / 1000) % 1000));
}

/* The fields the line shows in front or not at all (not as key=value at its end). */
static bool field_is_led(const char *k)
{
    return strcmp(k, "MESSAGE") == 0 || strcmp(k, "GLIB_DOMAIN") == 0 ||
           strcmp(k, "PRIORITY") == 0 || strncmp(k, "CODE_", 5) == 0 ||
           strcmp(k, "GLIB_OLD_LOG_API") == 0 || strcmp(k, "RID") == 0 || strcmp(k, "STAGE") == 0;
}

/* The leading fields of an event. */
typedef struct led {
    const char *domain, *message, *rid, *stage;
} led;

static led find_led(const GLogField *fields, gsize n_fields)
{
    led l = {0};
    for (gsize i = 0; i < n_fields; i++) {
        const char *k = fields[i].key;
        if (strcmp(k, "GLIB_DOMAIN") == 0)
            l.domain = fields[i].value;
        else if (strcmp(k, "MESSAGE") == 0)
            l.message = fields[i].value;
        else if (strcmp(k, "RID") == 0)
            l.rid = fields[i].value;
        else if (strcmp(k, "STAGE") == 0)
            l.stage = fields[i].value;
    }
    return l;
}

/* rid: at most RID_DIGITS characters of @rid (some callers pass the whole SHA-256). */
static void short_rid(const char *rid, char out[RID_DIGITS + 1])
{
    g_strlcpy(out, rid != NULL && *rid != '\0' ? rid : "-", RID_DIGITS + 1);
}

char *fbl_log_format(GLogLevelFlags level, const GLogField *fields, gsize n_fields, bool prefixed)
{
    /* rid and stage lead the line: grep for a mail's whole path through fbl. */
    GString *line = g_string_new(NULL);
    led l = find_led(fields, n_fields);
    if (prefixed) {
        g_string_append(line, "ts=");
        append_timestamp(line);
        g_string_append(line, " role=");
        append_value(line, role_or_default(), -1);
        g_string_append_printf(line, " pid=%ld ", (long) getpid());
    }
    if (l.rid != NULL) {
        char rid[RID_DIGITS + 1];
        short_rid(l.rid, rid);
        g_string_append_printf(line, "rid=%s ", rid);
    }
    if (l.stage != NULL)
        g_string_append_printf(line, "stage=%s ", l.stage);
    g_string_append_printf(line, "level=%s domain=%s msg=", level_name(level),
                           l.domain != NULL ? l.domain : DEFAULT_DOMAIN);
    append_value(line, l.message != NULL ? l.message : "", -1);
    for (gsize i = 0; i < n_fields; i++) {
        if (field_is_led(fields[i].key))
            continue;
        g_autofree char *key = g_ascii_strdown(fields[i].key, -1);
        g_string_append_printf(line, " %s=", key);
        append_value(line, fields[i].value, fields[i].length);
    }
    return g_string_free(line, FALSE);
}

/* ---- journald ------------------------------------------------------------------ */

/* A field journald takes as it is: upper case letters, digits, '_', not leading. */
static bool journal_name_ok(const char *k)
{
    if (*k == '\0' || *k == '_')
        return false;
    for (const char *p = k; *p != '\0'; p++) {
        if (!g_ascii_isupper(*p) && !g_ascii_isdigit(*p) && *p != '_')
            return false;
    }
    return true;
}

/* The caller's own fields (CODE_*, and any it added) that journald can take. */
static void journal_passthrough(GPtrArray *items, const GLogField *fields, gsize n_fields)
{
    for (gsize i = 0; i < n_fields && items->len < JOURNAL_FIELDS; i++) {
        const char *k = fields[i].key;
        if (strcmp(k, "MESSAGE") == 0 || strcmp(k, "PRIORITY") == 0 || strcmp(k, "RID") == 0 ||
            strcmp(k, "STAGE") == 0 || strcmp(k, "GLIB_OLD_LOG_API") == 0 || !journal_name_ok(k) ||
            fields[i].length >= 0)
            continue; /* a binary value (length >= 0) is not a string: left out */
        g_ptr_array_add(items, g_strdup_printf("%s=%s", k, (const char *) fields[i].value));
    }
}

/* One entry: the line as MESSAGE, and fields to select by. */
static bool journal_write(GLogLevelFlags level, const GLogField *fields, gsize n_fields)
{
    g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *line = fbl_log_format(level, fields, n_fields, false);
    led l = find_led(fields, n_fields);
    g_ptr_array_add(items, g_strdup_printf("MESSAGE=%s", line));
    g_ptr_array_add(items, g_strdup_printf("PRIORITY=%d", level_priority(level)));
    g_ptr_array_add(items, g_strdup("SYSLOG_IDENTIFIER=" SYSLOG_IDENT));
    g_ptr_array_add(items, g_strdup_printf("FBL_ROLE=%s", role_or_default()));
    if (l.rid != NULL) {
        char rid[RID_DIGITS + 1];
        short_rid(l.rid, rid);
        g_ptr_array_add(items, g_strdup_printf("FBL_RID=%s", rid));
    }
    if (l.stage != NULL)
        g_ptr_array_add(items, g_strdup_printf("FBL_STAGE=%s", l.stage));
    g_ptr_array_add(items, g_strdup_printf("FBL_LEVEL=%s", level_name(level)));
    journal_passthrough(items, fields, n_fields);
    struct iovec iov[JOURNAL_FIELDS + 8];
    guint n = MIN(items->len, (guint) G_N_ELEMENTS(iov));
    for (guint i = 0; i < n; i++) {
        iov[i].iov_base = g_ptr_array_index(items, i);
        iov[i].iov_len = strlen(g_ptr_array_index(items, i));
    }
    return sd_journal_sendv(iov, (int) n) >= 0;
}

/* ---- the writer ---------------------------------------------------------------------- */

static bool write_line(GLogLevelFlags level, const GLogField *fields, gsize n_fields)
{
    g_autofree char *line = fbl_log_format(level, fields, n_fields, prefix_lines);
    size_t len = strlen(line);
    line[len] = '\n'; /* the terminator becomes the newline: one write(2) per line */
    return write(log_fd, line, len + 1) >= 0;
}

static GLogWriterOutput writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                               gpointer user_data)
{
    (void) user_data;
    if (!wanted(level))
        return G_LOG_WRITER_HANDLED;
    bool ok = false;
    if (target == FBL_LOG_TARGET_JOURNAL) {
        /* journald not there (yet): the line goes to stderr rather than nowhere. */
        ok = journal_write(level, fields, n_fields) || write_line(level, fields, n_fields);
    } else if (target == FBL_LOG_TARGET_SYSLOG) {
        g_autofree char *line = fbl_log_format(level, fields, n_fields, false);
        syslog(level_priority(level), "role=%s %s", role_or_default(), line);
        ok = true;
    } else {
        ok = write_line(level, fields, n_fields);
    }
    return ok ? G_LOG_WRITER_HANDLED : G_LOG_WRITER_UNHANDLED;
}

void fbl_log_init(GLogLevelFlags level)
{
    min_level = level;
    if (target == FBL_LOG_TARGET_STDERR || target == FBL_LOG_TARGET_JOURNAL)
        prefix_lines = !fbl_log_stderr_is_journal();
    g_log_set_writer_func(writer, NULL, NULL);
}

/* ---- journald on stderr ---------------------------------------------------------------- */

bool fbl_log_stderr_is_journal(void)
{
    /* systemd.exec(5): "device:inode" of the stream, when stdout or stderr is journald's. */
    const char *e = g_getenv("JOURNAL_STREAM");
    struct stat st;
    if (e == NULL || fstat(STDERR_FILENO, &st) != 0)
        return false;
    char *end = NULL;
    guint64 dev = g_ascii_strtoull(e, &end, 10);
    if (end == e || *end != ':')
        return false;
    const char *ino_text = end + 1;
    guint64 ino = g_ascii_strtoull(ino_text, &end, 10);
    if (end == ino_text || *end != '\0')
        return false;
    return (guint64) st.st_dev == dev && (guint64) st.st_ino == ino;
}

/* ---- targets ------------------------------------------------------------------------------ */

static bool target_from_string(const char *name, fbl_log_target *out)
{
    static const char *const names[] = {
        [FBL_LOG_TARGET_AUTO] = "auto",     [FBL_LOG_TARGET_STDERR] = "stderr",
        [FBL_LOG_TARGET_FILE] = "file",     [FBL_LOG_TARGET_JOURNAL] = "journal",
        [FBL_LOG_TARGET_SYSLOG] = "syslog",
    };
    if (name == NULL || *name == '\0') {
        *out = FBL_LOG_TARGET_AUTO;
        return true;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (g_ascii_strcasecmp(name, names[i]) == 0) {
            *out = (fbl_log_target) i;
            return true;
        }
    }
    return false;
}

/* The target @name means with [log] file @file; false with why. */
static bool resolve_target(const char *name, const char *file, fbl_log_target *out, GError **error)
{
    bool has_file = file != NULL && *file != '\0';
    if (!target_from_string(name, out)) {
        g_set_error(error, FBL_LOG_ERROR, FBL_LOG_ERROR_TARGET,
                    "'%s' is not a log target: stderr, file, journal, syslog or auto", name);
        return false;
    }
    if (*out == FBL_LOG_TARGET_AUTO)
        *out = has_file ? FBL_LOG_TARGET_FILE : FBL_LOG_TARGET_STDERR;
    if (*out == FBL_LOG_TARGET_FILE && !has_file) {
        g_set_error(error, FBL_LOG_ERROR, FBL_LOG_ERROR_TARGET,
                    "target file needs [log] file (the path to append to)");
        return false;
    }
    if (*out != FBL_LOG_TARGET_FILE && has_file) {
        g_set_error(error, FBL_LOG_ERROR, FBL_LOG_ERROR_TARGET,
                    "[log] file is set, but target is %s: set target = file (or auto), or "
                    "remove file",
                    name);
        return false;
    }
    return true;
}

bool fbl_log_check_target(const char *name, const char *file, GError **error)
{
    fbl_log_target t;
    return resolve_target(name, file, &t, error);
}

bool fbl_log_setup(const char *role, const char *name, const char *file, GError **error)
{
    fbl_log_target t;
    if (!resolve_target(name, file, &t, error))
        return false;
    g_free(role_name);
    role_name = g_strdup(role);
    if (t == FBL_LOG_TARGET_FILE && !fbl_log_open_file(file, error))
        return false;
    if (t == FBL_LOG_TARGET_SYSLOG)
        openlog(SYSLOG_IDENT, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    target = t;
    prefix_lines = t == FBL_LOG_TARGET_FILE || !fbl_log_stderr_is_journal();
    return true;
}

/* ---- the file ---------------------------------------------------------------------------- */

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
    target = FBL_LOG_TARGET_FILE;
    prefix_lines = true;
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

/* ---- levels and events ------------------------------------------------------------------------
 */

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

void fbl_log_event_in(const char *domain, GLogLevelFlags level, const char *rid, const char *stage,
                      const char *format, ...)
{
    if (!wanted(level))
        return;
    va_list ap;
    va_start(ap, format);
    g_autofree char *message = g_strdup_vprintf(format, ap);
    va_end(ap);
    char short_id[RID_DIGITS + 1];
    short_rid(rid, short_id);
    const GLogField fields[] = {
        {"GLIB_DOMAIN", domain != NULL ? domain : DEFAULT_DOMAIN, -1},
        {"RID", short_id, -1},
        {"STAGE", stage, -1},
        {"MESSAGE", message, -1},
    };
    g_log_structured_array(level, fields, G_N_ELEMENTS(fields));
}
