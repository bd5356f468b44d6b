/*
 * mailfile.h - read one mail from a file or stdin, within the size limit
 *
 * Layer: fbl/. Blocking file I/O; thread-safe (no shared state).
 *
 * A mail within max_mail_bytes is read whole. A larger one is never held in
 * memory: it is streamed through SHA-256 only, so its mail_id and size are
 * known and it can be recorded as a too_large reject.
 */
#ifndef FBL_MAILFILE_H
#define FBL_MAILFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <glib.h>

#include "parsers/parse.h"
#include "parsers/report.h"

typedef struct fbl_mailfile {
    GByteArray *data; /* NULL when the mail is over the limit */
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
 * fbl_mailfile_delivery_time - when the mail arrived: the leading seconds of
 * a Maildir file name ("1700000000.M1P2.host:2,S"), else @st's mtime.
 * The same file gives the same time on every read: redeliveries agree.
 */
int64_t fbl_mailfile_delivery_time(const char *path, const struct stat *st);

/* fbl_mailfile_parse - (transfer full) parse @mail with @parser */
fbl_parse_result *fbl_mailfile_parse(const fbl_parser *parser, const fbl_mailfile *mail,
                                     const fbl_mail_meta *meta);

#endif /* FBL_MAILFILE_H */
