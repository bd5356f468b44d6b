/* secret.c - secret files, read only when kept secret (see secret.h) */
#define G_LOG_DOMAIN "fbl"
#include "fbl/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

GQuark fbl_secret_error_quark(void)
{
    return g_quark_from_static_string("fbl-secret-error");
}

/* Permission bits that matter: the owner's own bits are the owner's business. */
#define SHOWN_MODE(m) ((unsigned) ((m) &07777))

bool fbl_secret_check_stat(const char *path, const struct stat *st, const char *what,
                           GError **error)
{
    uid_t me = geteuid();
    unsigned mode = SHOWN_MODE(st->st_mode);
    if (st->st_uid != me && st->st_uid != 0) {
        g_set_error(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_MODE,
                    "%s: a %s owned by uid %u, neither root nor the user fbl runs as (uid %u), "
                    "is not secret: that user may open it up at any time; chown it",
                    path, what, (unsigned) st->st_uid, (unsigned) me);
        return false;
    }
    const char *who = NULL;
    if ((st->st_mode & S_IRWXO) != 0)
        who = "every user";
    else if ((st->st_mode & (S_IWGRP | S_IXGRP)) != 0)
        who = "its group (write)";
    else if ((st->st_mode & S_IRGRP) != 0 && st->st_uid != 0)
        who = "its group (only a file root owns may be shared with a group)";
    if (who == NULL)
        return true;
    g_set_error(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_MODE,
                "%s: a %s readable by %s is not secret (mode %04o); chmod 0600, or chown "
                "root:fbl and chmod 0640, or set allow_insecure_file_modes = true",
                path, what, who, mode);
    return false;
}

/* Read all of @fd (at most FBL_SECRET_MAX_BYTES): a NUL-terminated buffer, or NULL. */
static char *read_all(int fd, const char *path, size_t *len, GError **error)
{
    char *buf = g_malloc(FBL_SECRET_MAX_BYTES + 1);
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, FBL_SECRET_MAX_BYTES + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            explicit_bzero(buf, n);
            g_free(buf);
            g_set_error(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_IO, "%s: %s", path,
                        g_strerror(e));
            return NULL;
        }
        if (got == 0 || n + (size_t) got > FBL_SECRET_MAX_BYTES) {
            n += (size_t) got;
            break;
        }
        n += (size_t) got;
    }
    if (n > FBL_SECRET_MAX_BYTES) {
        explicit_bzero(buf, FBL_SECRET_MAX_BYTES + 1);
        g_free(buf);
        g_set_error(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_FORMAT,
                    "%s: larger than %zu bytes: not a secret file", path, FBL_SECRET_MAX_BYTES);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The file opened for reading after its checks; -1 with @error. */
static int open_checked(const char *path, const char *what, bool check_mode, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_IO, "%s: %s", path, g_strerror(e));
        return -1;
    }
    /* fstat on what was opened: the file judged is the file read. */
    struct stat st;
    bool ok = fstat(fd, &st) == 0;
    if (!ok) {
        int e = errno;
        g_set_error(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_IO, "%s: %s", path, g_strerror(e));
    } else if (!S_ISREG(st.st_mode)) {
        ok = false;
        g_set_error(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_FORMAT, "%s: not a regular file",
                    path);
    } else if (check_mode) {
        ok = fbl_secret_check_stat(path, &st, what, error);
    }
    if (!ok) {
        (void) close(fd);
        return -1;
    }
    return fd;
}

char *fbl_secret_read_file(const char *path, const char *what, bool check_mode, size_t *len,
                           GError **error)
{
    int fd = open_checked(path, what, check_mode, error);
    if (fd < 0)
        return NULL;
    size_t n = 0;
    char *data = read_all(fd, path, &n, error);
    (void) close(fd);
    if (data == NULL)
        return NULL;
    size_t total = n;
    while (n > 0 && g_ascii_isspace(data[n - 1]))
        n--;
    /* A copy of the right size (a key may hold NULs); the read buffer is wiped. */
    data[n] = '\0';
    char *secret = n > 0 ? g_memdup2(data, n + 1) : NULL;
    explicit_bzero(data, total);
    g_free(data);
    if (secret == NULL) {
        g_set_error(error, FBL_SECRET_ERROR, FBL_SECRET_ERROR_FORMAT, "%s: the file is empty",
                    path);
        return NULL;
    }
    if (len != NULL)
        *len = n;
    return secret;
}
