/*
 * maildir.h - the Maildir as fbl's queue: list new/, retire to cur/
 *
 * Layer: fbl/. Blocking file-system calls; no state.
 *
 * The MTA delivers into tmp/ and renames into new/ (the Maildir contract);
 * fbl reads new/ and, once the sink has committed a mail, renames it to
 * cur/NAME:2,S - the standard "seen" state. A crash between the commit and
 * the rename only means the mail is sent again and acknowledged again.
 * fbl never deletes a mail.
 */
#ifndef FBL_MAILDIR_H
#define FBL_MAILDIR_H

#include <stdbool.h>

#include <glib.h>

/*
 * fbl_maildir_check - @path has new/ and cur/ (tmp/ is the MTA's)
 *
 * @create: make missing tmp/, new/ and cur/ (for sample and test mailboxes)
 */
bool fbl_maildir_check(const char *path, bool create, GError **error);

/*
 * fbl_maildir_list_new - the file names in @path/new, sorted (oldest first,
 * as Maildir names start with the delivery time), hidden files skipped
 *
 * Returns: (transfer full) char * names, or NULL with a G_FILE_ERROR.
 */
GPtrArray *fbl_maildir_list_new(const char *path, GError **error);

/*
 * fbl_maildir_retire - rename @path/new/@name to @path/cur/@name:2,S
 * (@name as it is when it already has a ":2," info suffix)
 *
 * Returns: true, also when new/@name is already gone (another watcher or an
 * earlier run retired it); false with a G_FILE_ERROR from rename(2)'s errno
 * otherwise, e.g. NOENT when cur/ is missing, NOTDIR when it is no directory,
 * NAMETOOLONG when @name plus ":2,S" is over NAME_MAX, ACCES, NOSPC, ROFS.
 * The message names both paths and the errno text.
 */
bool fbl_maildir_retire(const char *path, const char *name, GError **error);

#endif /* FBL_MAILDIR_H */
