/*
 * secret.h - the files that hold secrets (the *_file keys): read only when no
 * other user can read or change them
 *
 * Layer: fbl/. No state; every function may be called from any thread.
 *
 * The rule, one for every secret file (vendor tokens and passwords, redaction
 * keys, CURVE secret keys), is PostgreSQL's for its server key: a regular
 * file, owned by the user fbl runs as or by root, that gives others no
 * permission at all and its group no write. The group may read it only when
 * root owns it, which is how an administrator shares a file with the daemons
 * on purpose (chown root:fbl, chmod 0640). So: 0600 or 0400, or 0640/0440
 * when owned by root. A file another user owns is refused too: that user could
 * open it up at any time.
 *
 * The configuration may waive the mode check for one section
 * (allow_insecure_file_modes = true); the caller decides, this module only
 * judges.
 */
#ifndef FBL_SECRET_H
#define FBL_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <glib.h>

#define FBL_SECRET_ERROR (fbl_secret_error_quark())
GQuark fbl_secret_error_quark(void);

typedef enum {
    FBL_SECRET_ERROR_IO = 1, /* permanent: cannot open, read or stat the file */
    FBL_SECRET_ERROR_MODE,   /* permanent: others may read or change it */
    FBL_SECRET_ERROR_FORMAT, /* permanent: not a regular file, empty or too large */
} fbl_secret_error;          /* append new codes at the end only */

/* The largest secret file read: tokens, passwords and keys are short. */
#define FBL_SECRET_MAX_BYTES ((size_t) 64 * 1024)

/*
 * fbl_secret_check_stat - judge the owner and mode in @st of the file @path
 *
 * @what: what the file holds, for the message ("token", "secret key", ...)
 * Returns: true, or false with FBL_SECRET_ERROR_MODE naming @path, the mode
 *   found (e.g. 0644) and what to do.
 */
bool fbl_secret_check_stat(const char *path, const struct stat *st, const char *what,
                           GError **error);

/*
 * fbl_secret_read_file - read the secret in @path, trailing white space cut
 *
 * @check_mode: false when the configuration waived the check
 * @len: (out) (optional) its length
 * Returns: (transfer full) the contents, NUL-terminated; or NULL with
 *   FBL_SECRET_ERROR. The caller wipes it (explicit_bzero) before g_free.
 */
char *fbl_secret_read_file(const char *path, const char *what, bool check_mode, size_t *len,
                           GError **error);

#endif /* FBL_SECRET_H */
