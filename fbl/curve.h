/*
 * curve.h - encryption and authentication between watchers and sinks
 * (ZeroMQ CURVE), and the rule that keeps mail off plain TCP
 *
 * Layer: fbl/. Keys are Z85 text in files (fbl keygen writes them): a
 * secret key file (mode 0600, or 0640 when root owns it: the rule of
 * secret.h, unless allow_insecure_file_modes = true) and a public key file. Lines starting with '#'
 * are comments.
 *
 * Sink (server): [sink] curve_secret_file is its secret key; every watcher
 * must be listed by its public key file in [sink] curve_clients_dir (a ZAP
 * handler in the sink process refuses any other key, logs it and counts it
 * in fbl_curve_refused_total). Watcher (client): [watch] curve_secret_file
 * is its own secret key, curve_server_public_file the sinks' public key
 * (sinks that share watchers share one key pair).
 *
 * The rule: an endpoint other than inproc:// or ipc:// carries mail only
 * with CURVE, unless [watch]/[sink] allow_plaintext = true says otherwise.
 * A handshake that fails (unknown client key, wrong server key) is logged
 * on both sides, at most once a minute per kind; the mail stays in new/.
 *
 * Threads: a server starts one thread for the ZAP handler, and both sides
 * one for the socket monitor; fbl_curve_free() stops and joins them (call it
 * after closing the socket, before terminating the zmq context).
 */
#ifndef FBL_CURVE_H
#define FBL_CURVE_H

#include <stdbool.h>

#include <glib.h>

#include "fbl/config.h"

#define FBL_CURVE_KEY_LEN 40 /* Z85 text of a 32-byte key */

#define FBL_CURVE_ERROR (fbl_curve_error_quark())
GQuark fbl_curve_error_quark(void);

typedef enum {
    FBL_CURVE_ERROR_KEY_FILE = 1, /* permanent: unreadable, not a key, or readable by others */
    FBL_CURVE_ERROR_PLAINTEXT,    /* permanent: a network endpoint without CURVE */
    FBL_CURVE_ERROR_ZMQ,          /* permanent: libzmq refused an option or a socket */
} fbl_curve_error;                /* append new codes at the end only */

typedef struct fbl_curve fbl_curve;

/* fbl_curve_endpoint_is_local - inproc:// or ipc://: plain is allowed */
bool fbl_curve_endpoint_is_local(const char *endpoint);

/*
 * fbl_curve_read_key - read one Z85 key from @path
 *
 * @secret: the file holds a secret key: refuse it when others may read it
 *   (fbl_secret_check_stat)
 * @out: (out) the 40 Z85 characters and a NUL
 * Returns: true, or false with FBL_CURVE_ERROR_KEY_FILE.
 */
bool fbl_curve_read_key(const char *path, bool secret, char out[FBL_CURVE_KEY_LEN + 1],
                        GError **error);

/*
 * fbl_curve_write_keypair - a new key pair: PREFIX.key (secret, mode 0600)
 * and PREFIX.pub (public, mode 0644), each written, synced and renamed
 *
 * @force: replace existing files; otherwise they are an error
 * @public_key: (out) the public key
 * Returns: true, or false with a G_FILE_ERROR or FBL_CURVE_ERROR.
 */
bool fbl_curve_write_keypair(const char *prefix, bool force, char public_key[FBL_CURVE_KEY_LEN + 1],
                             GError **error);

/*
 * fbl_curve_check_watch / fbl_curve_check_sink - the rule and the key files,
 * without touching a socket (--check-config, and before the sockets)
 *
 * Returns: true, or false with FBL_CONFIG_ERROR naming the file, the line and
 *   the key.
 */
bool fbl_curve_check_watch(const fbl_config *config, const char *const *endpoints, GError **error);
bool fbl_curve_check_sink(const fbl_config *config, const char *endpoint, GError **error);

/*
 * fbl_curve_client_new - check, then set the CURVE options of the watcher's
 * @socket before it connects to @endpoints (nothing when every endpoint is
 * inproc://, or no key is configured and plain is allowed)
 *
 * Returns: (transfer full) or NULL with FBL_CONFIG_ERROR or FBL_CURVE_ERROR.
 */
fbl_curve *fbl_curve_client_new(const fbl_config *config, void *zmq_context, void *socket,
                                const char *const *endpoints, GError **error);

/*
 * fbl_curve_server_new - check, then make @socket a CURVE server with a ZAP
 * handler for [sink] curve_clients_dir, before it binds @endpoint
 *
 * Returns: (transfer full) or NULL with FBL_CONFIG_ERROR or FBL_CURVE_ERROR.
 */
fbl_curve *fbl_curve_server_new(const fbl_config *config, void *zmq_context, void *socket,
                                const char *endpoint, GError **error);

void fbl_curve_free(fbl_curve *curve);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(fbl_curve, fbl_curve_free)

#endif /* FBL_CURVE_H */
