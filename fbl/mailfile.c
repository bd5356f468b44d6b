/* mailfile.c - bounded reading of one mail (see mailfile.h) */
#define G_LOG_DOMAIN "fbl-mailfile"
#include "fbl/mailfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <openssl/evp.h>

#define CHUNK ((size_t) 64 * 1024)

/* The end of the header block (just past its empty line), or 0 when it has
 * none within the first @len bytes. */
static size_t header_end(const guint8 *data, size_t len)
{
    for (size_t line = 0; line < len;) {
        if (data[line] == '\n')
            return line + 1;
        if (data[line] == '\r' && line + 1 < len && data[line + 1] == '\n')
            return line + 2;
        const guint8 *nl = memchr(data + line, '\n', len - line);
        if (nl == NULL)
            break;
        line = (size_t) (nl - data) + 1;
    }
    return 0;
}

/* How much of a too_large mail to keep, of the @len > @max_bytes bytes read so far. */
static size_t prefix_len(const guint8 *data, size_t len, size_t max_bytes)
{
    size_t head = header_end(data, MIN(len, FBL_MAILFILE_HEAD_MAX));
    if (head == 0) /* no end of the headers within HEAD_MAX: cut them there */
        head = FBL_MAILFILE_HEAD_MAX;
    return MIN(MIN(head + FBL_MAILFILE_BODY_KEEP, max_bytes), len);
}

/* (transfer full) a right-sized copy of @data's prefix; @data is freed (it
 * holds up to max_mail_bytes, which a mail in flight must not keep). */
static GByteArray *keep_prefix(GByteArray *data, size_t max_bytes)
{
    size_t n = prefix_len(data->data, data->len, max_bytes);
    GByteArray *prefix = g_byte_array_sized_new((guint) n);
    g_byte_array_append(prefix, data->data, (guint) n);
    g_byte_array_unref(data);
    return prefix;
}

/* The hex digits of a SHA-256 digest. */
static void to_hex(const unsigned char *digest, char out[FBL_SHA256_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < FBL_SHA256_HEX_LEN / 2; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xf];
    }
    out[FBL_SHA256_HEX_LEN] = '\0';
}

/* libcrypto fails on SHA-256 only when memory runs out. */
static bool hash_failed(GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libcrypto could not compute a SHA-256");
    return false;
}

/* Read to the end and hash what is read with libcrypto, as fbl_sha256_hex() does
 * (parsers/report.c): it uses the CPU's SHA extensions, several times faster than
 * GLib's GChecksum, and every byte of every mail goes through it. */
static bool read_fd(int fd, size_t max_bytes, fbl_mailfile *out, GError **error)
{
    EVP_MD_CTX *sum = EVP_MD_CTX_new();
    if (sum == NULL || EVP_DigestInit_ex(sum, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(sum);
        return hash_failed(error);
    }
    GByteArray *data = g_byte_array_new();
    guint8 *buf = g_malloc(CHUNK);
    bool ok = true;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "read: %s", g_strerror(e));
            ok = false;
            break;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(sum, buf, (size_t) n) != 1) {
            ok = hash_failed(error);
            break;
        }
        out->size += (size_t) n;
        if (out->too_large)
            continue; /* the prefix is kept: only hash the rest */
        g_byte_array_append(data, buf, (guint) n);
        if (out->size > max_bytes) { /* over the limit: keep the prefix, stop keeping */
            out->too_large = true;
            data = keep_prefix(data, max_bytes);
        }
    }
    g_free(buf);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (ok && (EVP_DigestFinal_ex(sum, digest, &digest_len) != 1 || digest_len != 32))
        ok = hash_failed(error);
    EVP_MD_CTX_free(sum);
    if (!ok) {
        g_byte_array_unref(data);
        return false;
    }
    to_hex(digest, out->mail_id);
    out->data = data;
    return true;
}

int64_t fbl_mailfile_delivery_time(const char *path, const struct stat *st)
{
    g_autofree char *base = g_path_get_basename(path);
    size_t digits = strspn(base, "0123456789");
    guint64 when = 0;
    if (digits >= 9 && digits <= 11 && base[digits] == '.') {
        base[digits] = '\0';
        if (g_ascii_string_to_unsigned(base, 10, 0, G_MAXINT64, &when, NULL))
            return (int64_t) when;
    }
    return st != NULL ? (int64_t) st->st_mtime : (int64_t) (g_get_real_time() / G_USEC_PER_SEC);
}

GQuark fbl_mailfile_error_quark(void)
{
    return g_quark_from_static_string("fbl-mailfile-error");
}

const char *fbl_mailfile_kind(mode_t mode)
{
    if (S_ISREG(mode))
        return "regular";
    if (S_ISLNK(mode))
        return "symlink";
    if (S_ISFIFO(mode))
        return "fifo";
    if (S_ISSOCK(mode))
        return "socket";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "device";
    if (S_ISDIR(mode))
        return "directory";
    return "other";
}

static int errno_error(const char *path, int e, GError **error)
{
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s", path, g_strerror(e));
    return -1;
}

static int not_regular(const char *path, mode_t mode, GError **error)
{
    g_set_error(error, FBL_MAILFILE_ERROR, FBL_MAILFILE_ERROR_NOT_REGULAR,
                "%s: not a regular file but a %s; not read", path, fbl_mailfile_kind(mode));
    return -1;
}

/* close() of a descriptor only read from: a failure loses nothing, but is not hidden. */
static void close_read_fd(int fd, const char *path)
{
    if (close(fd) != 0)
        g_debug("close %s: %s", path, g_strerror(errno));
}

int fbl_mailfile_open_regular(const char *path, struct stat *st, GError **error)
{
    /* lstat first, so that a device is refused without an open(), whose side
     * effects (a tape rewinds, a terminal hangs up) are not ours to cause. */
    if (lstat(path, st) != 0)
        return errno_error(path, errno, error);
    if (!S_ISREG(st->st_mode))
        return not_regular(path, st->st_mode, error);
    /* The name may have been replaced since: O_NOFOLLOW refuses a symlink
     * (ELOOP), O_NONBLOCK keeps a FIFO from waiting for a writer, and fstat
     * checks what was really opened. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (lstat(path, st) == 0 && !S_ISREG(st->st_mode))
            return not_regular(path, st->st_mode, error);
        return errno_error(path, e, error);
    }
    if (fstat(fd, st) != 0) {
        int e = errno;
        close_read_fd(fd, path);
        return errno_error(path, e, error);
    }
    if (!S_ISREG(st->st_mode)) {
        close_read_fd(fd, path);
        return not_regular(path, st->st_mode, error);
    }
    return fd;
}

bool fbl_mailfile_read_fd(int fd, const char *path, const struct stat *st, size_t max_bytes,
                          fbl_mailfile *out, GError **error)
{
    *out = (fbl_mailfile){0};
    out->delivered = fbl_mailfile_delivery_time(path, st);
    if (read_fd(fd, max_bytes, out, error))
        return true;
    g_prefix_error(error, "%s: ", path);
    return false;
}

bool fbl_mailfile_read(const char *path, size_t max_bytes, fbl_mailfile *out, GError **error)
{
    *out = (fbl_mailfile){0};
    if (strcmp(path, "-") == 0) {
        out->delivered = g_get_real_time() / G_USEC_PER_SEC;
        return read_fd(STDIN_FILENO, max_bytes, out, error);
    }
    /* What the user named, a symlink followed: `fbl parse` reads what it is asked to. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        (void) errno_error(path, errno, error);
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not a regular file", path);
        close_read_fd(fd, path);
        return false;
    }
    bool ok = fbl_mailfile_read_fd(fd, path, &st, max_bytes, out, error);
    close_read_fd(fd, path);
    return ok;
}

void fbl_mailfile_clear(fbl_mailfile *mail)
{
    if (mail->data != NULL)
        g_byte_array_unref(mail->data);
    mail->data = NULL;
}

fbl_parse_result *fbl_mailfile_parse(const fbl_parser *parser, const fbl_mailfile *mail,
                                     const fbl_mail_meta *meta)
{
    if (mail->too_large)
        return fbl_parser_too_large(parser, mail->mail_id, mail->size, meta);
    /* An empty file has no buffer (data is NULL): hand the parser "", never NULL. */
    const guint8 *bytes = mail->data->len > 0 ? mail->data->data : (const guint8 *) "";
    /* read_fd() hashed the whole of it: the parser need not again */
    return fbl_parser_parse_hashed(parser, bytes, mail->data->len, mail->mail_id, meta);
}
