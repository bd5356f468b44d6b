/*
 * mailfile.h - read one mail from a file or stdin, within the size limit
 *
 * Layer: fbl/. Blocking file I/O; thread-safe (no shared state).
 *
 * A mail within max_mail_bytes is read whole. A larger one is never held
 * whole: it is streamed through SHA-256, so its mail_id (the SHA-256 of the
 * whole file) and size are known, and only its prefix is kept - the header
 * block (at most FBL_MAILFILE_HEAD_MAX bytes of it) and the first
 * FBL_MAILFILE_BODY_KEEP bytes after it, never more than max_mail_bytes - so
 * that it is recorded as a too_large reject an admin can still read.
 *
 * Two ways in: fbl_mailfile_read() opens what the user named, following a
 * symlink (`fbl parse LINK` reads its target); the watcher opens a Maildir
 * name with fbl_mailfile_open_regular(), which takes regular files only:
 * anyone who can write to new/ must not make fbl store /etc/shadow through a
 * symlink, nor hang it on a FIFO.
 */
#ifndef FBL_MAILFILE_H
#define FBL_MAILFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <glib.h>

#include "parsers/parse.h"
#include "parsers/report.h"

#define FBL_MAILFILE_ERROR (fbl_mailfile_error_quark())
GQuark fbl_mailfile_error_quark(void);

typedef enum {
    FBL_MAILFILE_ERROR_NOT_REGULAR = 1, /* permanent: a symlink, FIFO, socket, device, directory */
} fbl_mailfile_error;                   /* append new codes at the end only */

/* What a too_large mail keeps: its header block up to HEAD_MAX, then BODY_KEEP bytes. */
#define FBL_MAILFILE_HEAD_MAX   ((size_t) 1024 * 1024)
#define FBL_MAILFILE_BODY_KEEP  ((size_t) 64 * 1024)
#define FBL_MAILFILE_PREFIX_MAX (FBL_MAILFILE_HEAD_MAX + FBL_MAILFILE_BODY_KEEP)

typedef struct fbl_mailfile {
    GByteArray *data; /* the whole mail; over the limit, only its prefix */
    bool too_large;   /* over the limit: data is a prefix, shorter than size */
    char mail_id[FBL_SHA256_HEX_LEN + 1];
    size_t size;
    int64_t delivered; /* seconds since the epoch */
} fbl_mailfile;

/*
 * fbl_mailfile_read - read @path ("-" for stdin)
 *
 * Returns: false with a G_FILE_ERROR / G_IO_ERROR on an I/O failure.
 */
bool fbl_mailfile_read(const char *path, size_t max_bytes, fbl_mailfile *out, GError **error);
void fbl_mailfile_clear(fbl_mailfile *mail);

/*
 * fbl_mailfile_open_regular - open @path for reading if it is a regular file,
 * and nothing else: a symlink is not followed, and a FIFO, socket, device or
 * directory is not opened (not even a device's open() side effects happen)
 *
 * @st: (out) the opened file's status; when refused as not regular, the
 *   status of the name itself (lstat: st_dev, st_ino and st_mode say what it is)
 * Returns: a descriptor (read-only, close-on-exec) for fbl_mailfile_read_fd(),
 *   or -1 with FBL_MAILFILE_ERROR_NOT_REGULAR (the message names the type;
 *   nothing was read) or a G_FILE_ERROR (G_FILE_ERROR_NOENT: it is gone).
 */
int fbl_mailfile_open_regular(const char *path, struct stat *st, GError **error);

/*
 * fbl_mailfile_read_fd - read the mail open on @fd to its end; @fd stays open
 *
 * @path: the name it was opened by (its delivery time, and error messages)
 * @st: its status (the delivery time falls back to st_mtime)
 * Returns: false with a G_IO_ERROR on a read failure.
 */
bool fbl_mailfile_read_fd(int fd, const char *path, const struct stat *st, size_t max_bytes,
                          fbl_mailfile *out, GError **error);

/*
 * fbl_mailfile_kind - what @mode is, for logs and metric labels: "regular",
 * "symlink", "fifo", "socket", "device" (character or block), "directory"
 * or "other"
 */
const char *fbl_mailfile_kind(mode_t mode);

/*
 * fbl_mailfile_delivery_time - when the mail arrived: the leading seconds of
 * a Maildir file name ("1700000000.M1P2.host:2,S"), else @st's mtime.
 * The same file gives the same time on every read: redeliveries agree.
 */
int64_t fbl_mailfile_delivery_time(const char *path, const struct stat *st);

/*
 * fbl_mailfile_parse - (transfer full) parse @mail with @parser
 *
 * @mail: its mail_id must be the SHA-256 of its data, as the readers above
 *   make it (or, too_large, of the whole mail): the parser takes it as it is
 *   (fbl_parser_parse_hashed()) rather than hash the bytes again
 */
fbl_parse_result *fbl_mailfile_parse(const fbl_parser *parser, const fbl_mailfile *mail,
                                     const fbl_mail_meta *meta);

#endif /* FBL_MAILFILE_H */
