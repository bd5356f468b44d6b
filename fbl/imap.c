/*
 * imap.c - one IMAP mailbox over libetpan (fbl/imap.h has the contract)
 */
#include "fbl/imap.h"

#include <poll.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <gio/gio.h>
#include <libetpan/libetpan.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "fbl/daemon.h"

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "fbl-imap"

/* Sequence sets are sent in slices of this many UIDs, keeping commands short. */
#define MOVE_SLICE       256u
#define BACKOFF_FIRST_MS 500u

struct fbl_imap {
    char *host;
    uint16_t port;
    bool implicit_tls;
    bool starttls;
    char *folder;
    char *user;
    char *password;
    char *oauth2_token;
    char *ca_file;
    char *done_folder;
    unsigned poll_interval_ms;
    size_t max_fetch_bytes;
    unsigned batch_max_mails;
    size_t batch_max_bytes;
    unsigned timeout_s;
    unsigned max_backoff_ms;
    uint32_t uidvalidity;
    mailimap *session; /* NULL while not connected */
    bool has_idle;
    bool has_move;
    bool has_uidplus;
};

GQuark fbl_imap_error_quark(void)
{
    return g_quark_from_static_string("fbl-imap-error");
}

/* ---- options ------------------------------------------------------------------------- */

static bool folder_name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 1000)
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        /* modified UTF-7 (RFC 3501 5.1.3) is not encoded here: plain ASCII only */
        if (*p < 0x20 || *p > 0x7e || *p == '&' || *p == '"' || *p == '\\')
            return false;
    }
    return true;
}

static bool host_is_loopback(const char *host)
{
    if (g_ascii_strcasecmp(host, "localhost") == 0)
        return true;
    g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(host);
    return addr != NULL && g_inet_address_get_is_loopback(addr);
}

static bool invalid(GError **error, const char *what)
{
    g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_INVALID, "imap: %s", what);
    return false;
}

static bool parse_url(fbl_imap *imap, const char *url, GError **error)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GUri) uri = g_uri_parse(url != NULL ? url : "", G_URI_FLAGS_NONE, &err);
    if (uri == NULL) {
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_INVALID, "imap: bad URL: %s",
                    err->message);
        return false;
    }
    const char *scheme = g_uri_get_scheme(uri);
    if (g_ascii_strcasecmp(scheme, "imaps") == 0)
        imap->implicit_tls = true;
    else if (g_ascii_strcasecmp(scheme, "imap") != 0)
        return invalid(error, "the URL's scheme is neither imaps nor imap");
    const char *host = g_uri_get_host(uri);
    if (host == NULL || host[0] == '\0')
        return invalid(error, "the URL names no host");
    if (g_uri_get_userinfo(uri) != NULL) /* a password could hide there */
        return invalid(error, "a user or password in the URL: use user and password_file");
    int port = g_uri_get_port(uri);
    imap->host = g_strdup(host);
    imap->port = port > 0 ? (uint16_t) port : (imap->implicit_tls ? 993 : 143);
    const char *path = g_uri_get_path(uri);
    while (*path == '/')
        path++;
    imap->folder = g_strdup(path[0] != '\0' ? path : "INBOX");
    if (!folder_name_ok(imap->folder))
        return invalid(error, "the URL's folder is not a plain ASCII name");
    return true;
}

static bool check_options(fbl_imap *imap, GError **error)
{
    if (imap->user == NULL || imap->user[0] == '\0')
        return invalid(error, "no user");
    if ((imap->password == NULL) == (imap->oauth2_token == NULL))
        return invalid(error, "give exactly one of password and oauth2_token");
    if (!folder_name_ok(imap->done_folder))
        return invalid(error, "done_folder is not a plain ASCII name");
    if (strcmp(imap->done_folder, imap->folder) == 0)
        return invalid(error, "done_folder is the folder read");
    if (imap->implicit_tls && imap->starttls)
        return invalid(error, "starttls with imaps://: imaps is TLS from the start");
    if (!imap->implicit_tls && !imap->starttls && !host_is_loopback(imap->host))
        return invalid(error, "plain imap:// to a host that is not loopback: use imaps:// "
                              "or starttls = true");
    return true;
}

fbl_imap *fbl_imap_new(const fbl_imap_options *options, GError **error)
{
    fbl_imap *imap = g_new0(fbl_imap, 1);
    imap->starttls = options->starttls;
    imap->user = g_strdup(options->user);
    imap->password = g_strdup(options->password);
    imap->oauth2_token = g_strdup(options->oauth2_token);
    imap->ca_file = g_strdup(options->ca_file);
    imap->done_folder = g_strdup(options->done_folder);
    imap->poll_interval_ms =
        options->poll_interval_ms ? options->poll_interval_ms : FBL_IMAP_DEFAULT_POLL_MS;
    imap->max_fetch_bytes =
        options->max_fetch_bytes ? options->max_fetch_bytes : FBL_IMAP_DEFAULT_MAX_FETCH;
    imap->batch_max_mails =
        options->batch_max_mails ? options->batch_max_mails : FBL_IMAP_DEFAULT_BATCH;
    imap->batch_max_bytes =
        options->batch_max_bytes ? options->batch_max_bytes : FBL_IMAP_DEFAULT_BATCH_BYTES;
    imap->timeout_s = options->timeout_s ? options->timeout_s : FBL_IMAP_DEFAULT_TIMEOUT_S;
    imap->max_backoff_ms =
        options->max_backoff_ms ? options->max_backoff_ms : FBL_IMAP_DEFAULT_MAX_BACKOFF_MS;
    imap->uidvalidity = options->uidvalidity;
    if (!parse_url(imap, options->url, error) || !check_options(imap, error)) {
        fbl_imap_free(imap);
        return NULL;
    }
    return imap;
}

static void free_secret(char *secret)
{
    if (secret != NULL) {
        explicit_bzero(secret, strlen(secret));
        g_free(secret);
    }
}

static void disconnect(fbl_imap *imap, bool logout)
{
    if (imap->session == NULL)
        return;
    if (logout)
        (void) mailimap_logout(imap->session); /* courtesy only: the close follows */
    mailimap_free(imap->session);
    imap->session = NULL;
}

void fbl_imap_free(fbl_imap *imap)
{
    if (imap == NULL)
        return;
    disconnect(imap, true);
    g_free(imap->host);
    g_free(imap->folder);
    g_free(imap->user);
    free_secret(imap->password);
    free_secret(imap->oauth2_token);
    g_free(imap->ca_file);
    g_free(imap->done_folder);
    g_free(imap);
}

void fbl_imap_mail_free(fbl_imap_mail *mail)
{
    if (mail == NULL)
        return;
    if (mail->bytes != NULL)
        g_bytes_unref(mail->bytes);
    g_free(mail);
}

/* ---- errors -------------------------------------------------------------------------- */

static bool stream_broken(int r)
{
    return r == MAILIMAP_ERROR_STREAM || r == MAILIMAP_ERROR_CONNECTION_REFUSED ||
           r == MAILIMAP_ERROR_FATAL || r == MAILIMAP_ERROR_BAD_STATE;
}

/* libetpan's code for @what, as ours; the server's last answer kept as its text. */
static bool fail(fbl_imap *imap, int r, const char *what, GError **error)
{
    const char *said = imap->session != NULL && imap->session->imap_response != NULL
                           ? imap->session->imap_response
                           : "";
    if (stream_broken(r)) {
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_CONNECT,
                    "imap %s:%u: %s: connection lost or timed out (libetpan %d)", imap->host,
                    imap->port, what, r);
        /* the session is unusable: the next call must reconnect */
        disconnect(imap, false);
    } else {
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_PROTOCOL,
                    "imap %s:%u: %s refused (libetpan %d): %s", imap->host, imap->port, what, r,
                    said);
    }
    return false;
}

bool fbl_imap_error_is_transient(const GError *error)
{
    return error != NULL && error->domain == FBL_IMAP_ERROR &&
           (error->code == FBL_IMAP_ERROR_CONNECT || error->code == FBL_IMAP_ERROR_PROTOCOL);
}

int fbl_imap_error_exit_status(const GError *error)
{
    if (error == NULL || error->domain != FBL_IMAP_ERROR)
        return EX_UNAVAILABLE;
    switch ((fbl_imap_error) error->code) {
    case FBL_IMAP_ERROR_AUTH:
        return EX_NOPERM;
    case FBL_IMAP_ERROR_NO_FOLDER:
    case FBL_IMAP_ERROR_INVALID:
        return EX_CONFIG;
    default:
        return EX_UNAVAILABLE;
    }
}

/* ---- TLS ----------------------------------------------------------------------------- */

static void tls_context(struct mailstream_ssl_context *ctx, void *data)
{
    const fbl_imap *imap = data;
    g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(imap->host);
    if (addr == NULL) /* SNI takes names only */
        (void) mailstream_ssl_set_server_name(ctx, imap->host);
}

/* The chain as libetpan received it: leaf first, then what the server sent with it. */
static STACK_OF(X509) * peer_chain(mailstream *stream)
{
    carray *ders = mailstream_get_certificate_chain(stream);
    if (ders == NULL)
        return NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    for (unsigned i = 0; i < carray_count(ders); i++) {
        MMAPString *der = carray_get(ders, i);
        const unsigned char *p = (const unsigned char *) der->str;
        X509 *cert = d2i_X509(NULL, &p, (long) der->len);
        if (cert != NULL && sk_X509_push(chain, cert) == 0)
            X509_free(cert);
    }
    mailstream_certificate_chain_free(ders);
    if (sk_X509_num(chain) == 0) {
        sk_X509_free(chain);
        return NULL;
    }
    return chain;
}

static bool trust_store(const fbl_imap *imap, X509_STORE *store, GError **error)
{
    int ok = imap->ca_file != NULL ? X509_STORE_load_file(store, imap->ca_file)
                                   : X509_STORE_set_default_paths(store);
    if (ok != 1) {
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_TLS,
                    "imap %s:%u: cannot load the CA certificates %s", imap->host, imap->port,
                    imap->ca_file != NULL ? imap->ca_file : "(system default)");
        return false;
    }
    return true;
}

static bool check_chain(const fbl_imap *imap, STACK_OF(X509) * chain, GError **error)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    bool ok = store != NULL && ctx != NULL && trust_store(imap, store, error);
    if (ok && X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), chain) != 1) {
        g_set_error_literal(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_TLS, "imap: X509 init");
        ok = false;
    }
    if (ok) {
        X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
        g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(imap->host);
        int named = addr != NULL ? X509_VERIFY_PARAM_set1_ip_asc(param, imap->host)
                                 : X509_VERIFY_PARAM_set1_host(param, imap->host, 0);
        (void) X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
        if (named != 1 || X509_verify_cert(ctx) != 1) {
            int why = X509_STORE_CTX_get_error(ctx);
            g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_TLS,
                        "imap %s:%u: the server's certificate is not trusted: %s", imap->host,
                        imap->port, X509_verify_cert_error_string(why));
            ok = false;
        }
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static bool verify_peer(fbl_imap *imap, GError **error)
{
    STACK_OF(X509) *chain = peer_chain(imap->session->imap_stream);
    if (chain == NULL) {
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_TLS,
                    "imap %s:%u: the server sent no certificate", imap->host, imap->port);
        return false;
    }
    bool ok = check_chain(imap, chain, error);
    sk_X509_pop_free(chain, X509_free);
    return ok;
}

/* ---- connect ------------------------------------------------------------------------- */

static bool open_stream(fbl_imap *imap, GError **error)
{
    int r;
    if (imap->implicit_tls)
        r = mailimap_ssl_connect_with_callback(imap->session, imap->host, imap->port, tls_context,
                                               imap);
    else
        r = mailimap_socket_connect(imap->session, imap->host, imap->port);
    if (r != MAILIMAP_NO_ERROR_AUTHENTICATED && r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
        /* a refused or silent port is transient; a failed handshake with a live server too
         * (a restart), but the certificate's verdict below is not */
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_CONNECT,
                    "imap %s:%u: cannot connect%s (libetpan %d)", imap->host, imap->port,
                    imap->implicit_tls ? " or TLS handshake failed" : "", r);
        return false;
    }
    if (imap->implicit_tls)
        return verify_peer(imap, error);
    if (!imap->starttls)
        return true;
    if (!mailimap_has_extension(imap->session, "STARTTLS")) {
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_TLS,
                    "imap %s:%u: starttls = true but the server does not offer STARTTLS",
                    imap->host, imap->port);
        return false;
    }
    r = mailimap_socket_starttls_with_callback(imap->session, tls_context, imap);
    if (r != MAILIMAP_NO_ERROR) {
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_CONNECT,
                    "imap %s:%u: STARTTLS failed (libetpan %d)", imap->host, imap->port, r);
        return false;
    }
    return verify_peer(imap, error);
}

static bool refresh_capabilities(fbl_imap *imap, GError **error)
{
    struct mailimap_capability_data *caps = NULL;
    int r = mailimap_capability(imap->session, &caps);
    if (r != MAILIMAP_NO_ERROR)
        return fail(imap, r, "CAPABILITY", error);
    mailimap_capability_data_free(caps);
    imap->has_idle = mailimap_has_idle(imap->session) != 0;
    imap->has_move = mailimap_has_extension(imap->session, "MOVE") != 0;
    imap->has_uidplus = mailimap_has_uidplus(imap->session) != 0;
    return true;
}

static bool login(fbl_imap *imap, GError **error)
{
    int r;
    if (imap->password != NULL)
        r = mailimap_login(imap->session, imap->user, imap->password);
    else
        r = mailimap_oauth2_authenticate(imap->session, imap->user, imap->oauth2_token);
    if (r == MAILIMAP_NO_ERROR)
        return refresh_capabilities(imap, error);
    if (stream_broken(r))
        return fail(imap, r, "login", error);
    g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_AUTH,
                "imap %s:%u: the server refused the login of %s: %s", imap->host, imap->port,
                imap->user,
                imap->session->imap_response != NULL ? imap->session->imap_response : "");
    return false;
}

/* Whether LIST finds @name itself: '%' and '*' are LIST's wildcards, so every answer is
 * compared by name (INBOX in any case, RFC 3501 5.1). */
static bool folder_exists(fbl_imap *imap, const char *name, bool *exists, GError **error)
{
    clist *list = NULL;
    int r = mailimap_list(imap->session, "", name, &list);
    if (r != MAILIMAP_NO_ERROR)
        return fail(imap, r, "LIST", error);
    *exists = false;
    for (clistiter *it = clist_begin(list); it != NULL; it = clist_next(it)) {
        const struct mailimap_mailbox_list *mb = clist_content(it);
        if (mb->mb_name != NULL &&
            (strcmp(mb->mb_name, name) == 0 || (g_ascii_strcasecmp(name, "INBOX") == 0 &&
                                                g_ascii_strcasecmp(mb->mb_name, "INBOX") == 0)))
            *exists = true;
    }
    mailimap_list_result_free(list);
    return true;
}

static bool no_folder(fbl_imap *imap, const char *name, const char *what, GError **error)
{
    g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_NO_FOLDER, "imap %s:%u: folder \"%s\" %s",
                imap->host, imap->port, name, what);
    return false;
}

static bool select_folder(fbl_imap *imap, GError **error)
{
    int r = mailimap_select(imap->session, imap->folder);
    if (r == MAILIMAP_NO_ERROR)
        return true;
    if (stream_broken(r))
        return fail(imap, r, "SELECT", error);
    bool exists = true;
    if (!folder_exists(imap, imap->folder, &exists, error))
        return false;
    if (!exists)
        return no_folder(imap, imap->folder, "does not exist", error);
    return fail(imap, r, "SELECT", error);
}

static bool ensure_done_folder(fbl_imap *imap, GError **error)
{
    bool exists = false;
    if (!folder_exists(imap, imap->done_folder, &exists, error))
        return false;
    if (exists)
        return true;
    int r = mailimap_create(imap->session, imap->done_folder);
    if (r == MAILIMAP_NO_ERROR) {
        g_message("imap %s:%u: created done_folder \"%s\"", imap->host, imap->port,
                  imap->done_folder);
        return true;
    }
    if (stream_broken(r))
        return fail(imap, r, "CREATE", error);
    /* another client may have made it meanwhile */
    if (!folder_exists(imap, imap->done_folder, &exists, error))
        return false;
    return exists || no_folder(imap, imap->done_folder, "is missing and cannot be created", error);
}

static bool record_uidvalidity(fbl_imap *imap, GError **error)
{
    const struct mailimap_selection_info *sel = imap->session->imap_selection_info;
    uint32_t now = sel != NULL ? sel->sel_uidvalidity : 0;
    if (now == 0) {
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_PROTOCOL,
                    "imap %s:%u: SELECT \"%s\" gave no UIDVALIDITY", imap->host, imap->port,
                    imap->folder);
        return false;
    }
    uint32_t before = imap->uidvalidity;
    imap->uidvalidity = now;
    if (before != 0 && before != now) {
        g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_UIDVALIDITY_CHANGED,
                    "imap %s:%u: UIDVALIDITY of \"%s\" changed from %u to %u: read it again "
                    "from UID 1",
                    imap->host, imap->port, imap->folder, before, now);
        return false;
    }
    return true;
}

bool fbl_imap_connect(fbl_imap *imap, GError **error)
{
    disconnect(imap, true);
    imap->session = mailimap_new(0, NULL);
    mailimap_set_timeout(imap->session, (time_t) imap->timeout_s);
    bool ok = open_stream(imap, error) && login(imap, error) && select_folder(imap, error) &&
              ensure_done_folder(imap, error) && record_uidvalidity(imap, error);
    if (!ok && !g_error_matches(error != NULL ? *error : NULL, FBL_IMAP_ERROR,
                                FBL_IMAP_ERROR_UIDVALIDITY_CHANGED))
        disconnect(imap, false);
    if (ok)
        g_message("imap %s:%u: \"%s\" selected (uidvalidity=%u idle=%s move=%s)", imap->host,
                  imap->port, imap->folder, imap->uidvalidity, imap->has_idle ? "yes" : "no",
                  imap->has_move ? "yes" : "no");
    return ok;
}

static bool sleep_unless_stopped(unsigned ms, fbl_imap_stop_fn stopping)
{
    gint64 end = g_get_monotonic_time() + (gint64) ms * 1000;
    for (;;) {
        if (stopping != NULL && stopping())
            return false;
        gint64 left = end - g_get_monotonic_time();
        if (left <= 0)
            return true;
        g_usleep((gulong) MIN(left, (gint64) FBL_IMAP_STOP_CHECK_MS * 1000));
    }
}

bool fbl_imap_reconnect(fbl_imap *imap, fbl_imap_stop_fn stopping, GError **error)
{
    unsigned pause_ms = 0;
    for (;;) {
        g_autoptr(GError) err = NULL;
        if (fbl_imap_connect(imap, &err))
            return true;
        if (!fbl_imap_error_is_transient(err)) {
            g_propagate_error(error, g_steal_pointer(&err));
            return false;
        }
        pause_ms = fbl_backoff_next(pause_ms, BACKOFF_FIRST_MS, imap->max_backoff_ms);
        g_warning("%s; again in %u ms", err->message, pause_ms);
        if (!sleep_unless_stopped(pause_ms, stopping)) {
            g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_CONNECT,
                        "imap %s:%u: stopped while reconnecting", imap->host, imap->port);
            return false;
        }
    }
}

static bool need_session(const fbl_imap *imap, GError **error)
{
    if (imap->session != NULL)
        return true;
    g_set_error(error, FBL_IMAP_ERROR, FBL_IMAP_ERROR_CONNECT, "imap %s:%u: not connected",
                imap->host, imap->port);
    return false;
}

/* ---- fetch --------------------------------------------------------------------------- */

static gint64 date_to_unix(const struct mailimap_date_time *dt)
{
    /* libetpan keeps the zone as the decimal number it read: +0130 is 130 */
    int zone = dt->dt_zone;
    int sign = zone < 0 ? -1 : 1;
    int minutes = sign * ((sign * zone) / 100 * 60 + (sign * zone) % 100);
    g_autoptr(GTimeZone) tz = g_time_zone_new_offset(minutes * 60);
    g_autoptr(GDateTime) t = g_date_time_new(tz, dt->dt_year, dt->dt_month, dt->dt_day, dt->dt_hour,
                                             dt->dt_min, dt->dt_sec);
    return t != NULL ? g_date_time_to_unix(t) : 0;
}

/* One FETCH answer's items into @mail: UID, size, date, and the body section's bytes. */
static void read_items(const struct mailimap_msg_att *att, fbl_imap_mail *mail, GBytes **body)
{
    for (clistiter *it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
        const struct mailimap_msg_att_item *item = clist_content(it);
        if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
            continue;
        const struct mailimap_msg_att_static *st = item->att_data.att_static;
        switch (st->att_type) {
        case MAILIMAP_MSG_ATT_UID:
            mail->uid = st->att_data.att_uid;
            break;
        case MAILIMAP_MSG_ATT_RFC822_SIZE:
            mail->size = st->att_data.att_rfc822_size;
            break;
        case MAILIMAP_MSG_ATT_INTERNALDATE:
            if (st->att_data.att_internal_date != NULL)
                mail->internaldate = date_to_unix(st->att_data.att_internal_date);
            break;
        case MAILIMAP_MSG_ATT_BODY_SECTION: {
            const struct mailimap_msg_att_body_section *sec = st->att_data.att_body_section;
            if (body != NULL && sec != NULL && *body == NULL)
                *body = g_bytes_new(sec->sec_body_part != NULL ? sec->sec_body_part : "",
                                    sec->sec_body_part != NULL ? sec->sec_length : 0);
            break;
        }
        default:
            break;
        }
    }
}

/* UID, size and date of the mails with UID >= @next_uid, at most batch_max_mails. */
static GPtrArray *list_from(fbl_imap *imap, uint32_t next_uid, GError **error)
{
    struct mailimap_set *set = mailimap_set_new_interval(next_uid, 0); /* next:* */
    struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
    (void) mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
    (void) mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
    (void) mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_internaldate());
    clist *answers = NULL;
    int r = mailimap_uid_fetch(imap->session, set, ft, &answers);
    mailimap_fetch_type_free(ft);
    mailimap_set_free(set);
    if (r != MAILIMAP_NO_ERROR) {
        (void) fail(imap, r, "UID FETCH (list)", error);
        return NULL;
    }
    GPtrArray *mails = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_imap_mail_free);
    for (clistiter *it = clist_begin(answers); it != NULL; it = clist_next(it)) {
        fbl_imap_mail seen = {0};
        read_items(clist_content(it), &seen, NULL);
        /* "n:*" names the last mail even when its UID is below n (RFC 3501 6.4.8) */
        if (seen.uid >= next_uid)
            g_ptr_array_add(mails, g_memdup2(&seen, sizeof seen));
    }
    mailimap_fetch_list_free(answers);
    return mails;
}

/* BODY.PEEK[@section]<0.@limit> of @uid; *@bytes stays NULL when the mail is gone. */
static bool fetch_section(fbl_imap *imap, uint32_t uid, struct mailimap_section *section,
                          size_t limit, GBytes **bytes, GError **error)
{
    struct mailimap_set *set = mailimap_set_new_single(uid);
    struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
    struct mailimap_fetch_att *att =
        limit > 0 ? mailimap_fetch_att_new_body_peek_section_partial(section, 0, (uint32_t) limit)
                  : mailimap_fetch_att_new_body_peek_section(section);
    (void) mailimap_fetch_type_new_fetch_att_list_add(ft, att);
    (void) mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
    clist *answers = NULL;
    int r = mailimap_uid_fetch(imap->session, set, ft, &answers);
    mailimap_fetch_type_free(ft);
    mailimap_set_free(set);
    if (r != MAILIMAP_NO_ERROR)
        return fail(imap, r, "UID FETCH (body)", error);
    for (clistiter *it = clist_begin(answers); it != NULL && *bytes == NULL; it = clist_next(it)) {
        fbl_imap_mail probe = {0};
        GBytes *got = NULL;
        read_items(clist_content(it), &probe, &got);
        if (probe.uid == uid)
            *bytes = got;
        else if (got != NULL)
            g_bytes_unref(got);
    }
    mailimap_fetch_list_free(answers);
    return true;
}

static GBytes *concat(GBytes *a, GBytes *b)
{
    GByteArray *all = g_byte_array_new();
    gsize n = 0;
    const guint8 *p = g_bytes_get_data(a, &n);
    g_byte_array_append(all, p, (guint) n);
    if (b != NULL) {
        p = g_bytes_get_data(b, &n);
        g_byte_array_append(all, p, (guint) n);
    }
    return g_byte_array_free_to_bytes(all);
}

/*
 * The header block (bounded), then the body's first bytes when the whole
 * block came: at most max_fetch_bytes in all, as the Maildir watcher keeps a
 * too_large mail's start (the sink refuses a RAW over limits.max_mail_bytes).
 */
static bool fetch_prefix(fbl_imap *imap, fbl_imap_mail *mail, GError **error)
{
    size_t head_max = MIN(FBL_IMAP_PREFIX_HEADER_BYTES, imap->max_fetch_bytes);
    GBytes *head = NULL;
    if (!fetch_section(imap, mail->uid, mailimap_section_new_header(), head_max, &head, error))
        return false;
    mail->truncated = true;
    if (head == NULL || g_bytes_get_size(head) >= head_max) {
        mail->bytes = head;
        return true;
    }
    size_t body_max =
        MIN(FBL_IMAP_PREFIX_BODY_BYTES, imap->max_fetch_bytes - g_bytes_get_size(head));
    GBytes *body = NULL;
    if (!fetch_section(imap, mail->uid, mailimap_section_new_text(), body_max, &body, error)) {
        g_bytes_unref(head);
        return false;
    }
    mail->bytes = concat(head, body);
    g_bytes_unref(head);
    if (body != NULL)
        g_bytes_unref(body);
    return true;
}

static bool fetch_mail(fbl_imap *imap, fbl_imap_mail *mail, GError **error)
{
    if (mail->size > imap->max_fetch_bytes)
        return fetch_prefix(imap, mail, error);
    return fetch_section(imap, mail->uid, mailimap_section_new(NULL), 0, &mail->bytes, error);
}

/* What fetching @mail adds to a batch: its size, or the bound of its prefix. */
static uint64_t fetch_cost(const fbl_imap *imap, const fbl_imap_mail *mail)
{
    if (mail->size > imap->max_fetch_bytes)
        return MIN(FBL_IMAP_PREFIX_HEADER_BYTES + FBL_IMAP_PREFIX_BODY_BYTES,
                   imap->max_fetch_bytes);
    return mail->size;
}

static gint by_uid(gconstpointer a, gconstpointer b)
{
    const fbl_imap_mail *x = *(fbl_imap_mail *const *) a;
    const fbl_imap_mail *y = *(fbl_imap_mail *const *) b;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

GPtrArray *fbl_imap_next_batch(fbl_imap *imap, uint32_t next_uid, GError **error)
{
    if (!need_session(imap, error))
        return NULL;
    g_autoptr(GPtrArray) listed = list_from(imap, MAX(next_uid, 1u), error);
    if (listed == NULL)
        return NULL;
    g_ptr_array_sort(listed, by_uid);
    GPtrArray *batch = g_ptr_array_new_with_free_func((GDestroyNotify) fbl_imap_mail_free);
    uint64_t bytes = 0;
    for (guint i = 0; i < listed->len && batch->len < imap->batch_max_mails; i++) {
        fbl_imap_mail *mail = listed->pdata[i];
        bytes += fetch_cost(imap, mail);
        if (batch->len > 0 && bytes > imap->batch_max_bytes)
            break; /* the next batch starts with it */
        if (!fetch_mail(imap, mail, error)) {
            g_ptr_array_unref(batch);
            return NULL;
        }
        if (mail->bytes != NULL) /* else expunged meanwhile */
            g_ptr_array_add(batch, g_ptr_array_steal_index(listed, i--));
    }
    return batch;
}

/* ---- wait ---------------------------------------------------------------------------- */

/* Poll @fd for input up to @ms, asking @stopping every FBL_IMAP_STOP_CHECK_MS. */
static void poll_input(int fd, unsigned ms, fbl_imap_stop_fn stopping)
{
    gint64 end = g_get_monotonic_time() + (gint64) ms * 1000;
    for (;;) {
        if (stopping != NULL && stopping())
            return;
        gint64 left_ms = (end - g_get_monotonic_time()) / 1000;
        if (left_ms <= 0)
            return;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int) MIN(left_ms, (gint64) FBL_IMAP_STOP_CHECK_MS));
        if (r != 0) /* input, hang-up, or an error the next read reports */
            return;
    }
}

static bool idle_once(fbl_imap *imap, unsigned ms, fbl_imap_stop_fn stopping, GError **error)
{
    int r = mailimap_idle(imap->session);
    if (r != MAILIMAP_NO_ERROR)
        return fail(imap, r, "IDLE", error);
    /* what arrived with the continuation is already read: no need to wait for it */
    if (imap->session->imap_stream->read_buffer_len == 0)
        poll_input(mailimap_idle_get_fd(imap->session), ms, stopping);
    r = mailimap_idle_done(imap->session);
    if (r != MAILIMAP_NO_ERROR)
        return fail(imap, r, "IDLE DONE", error);
    return true;
}

bool fbl_imap_wait(fbl_imap *imap, unsigned timeout_ms, fbl_imap_stop_fn stopping, GError **error)
{
    if (!need_session(imap, error))
        return false;
    if (imap->has_idle)
        return idle_once(imap, MIN(timeout_ms, FBL_IMAP_IDLE_RENEW_MS), stopping, error);
    (void) sleep_unless_stopped(MIN(timeout_ms, imap->poll_interval_ms), stopping);
    int r = mailimap_noop(imap->session);
    return r == MAILIMAP_NO_ERROR || fail(imap, r, "NOOP", error);
}

/* ---- move ---------------------------------------------------------------------------- */

static bool copy_delete_expunge(fbl_imap *imap, struct mailimap_set *set, GError **error)
{
    int r = mailimap_uid_copy(imap->session, set, imap->done_folder);
    if (r != MAILIMAP_NO_ERROR)
        return fail(imap, r, "UID COPY", error);
    struct mailimap_flag_list *flags = mailimap_flag_list_new_empty();
    (void) mailimap_flag_list_add(flags, mailimap_flag_new_deleted());
    struct mailimap_store_att_flags *store = mailimap_store_att_flags_new_add_flags_silent(flags);
    r = mailimap_uid_store(imap->session, set, store);
    mailimap_store_att_flags_free(store);
    if (r != MAILIMAP_NO_ERROR)
        return fail(imap, r, "UID STORE", error);
    r = imap->has_uidplus ? mailimap_uid_expunge(imap->session, set)
                          : mailimap_expunge(imap->session);
    return r == MAILIMAP_NO_ERROR || fail(imap, r, "EXPUNGE", error);
}

static bool move_slice(fbl_imap *imap, const uint32_t *uids, size_t n, GError **error)
{
    struct mailimap_set *set = mailimap_set_new_empty();
    for (size_t i = 0; i < n; i++)
        (void) mailimap_set_add_single(set, uids[i]);
    bool ok;
    if (imap->has_move) {
        int r = mailimap_uid_move(imap->session, set, imap->done_folder);
        ok = r == MAILIMAP_NO_ERROR || fail(imap, r, "UID MOVE", error);
    } else {
        ok = copy_delete_expunge(imap, set, error);
    }
    mailimap_set_free(set);
    return ok;
}

bool fbl_imap_move_done(fbl_imap *imap, const uint32_t *uids, size_t n, GError **error)
{
    if (!need_session(imap, error))
        return false;
    for (size_t i = 0; i < n; i += MOVE_SLICE) {
        if (!move_slice(imap, uids + i, MIN(MOVE_SLICE, n - i), error))
            return false;
    }
    return true;
}

/* ---- getters ------------------------------------------------------------------------- */

uint32_t fbl_imap_get_uidvalidity(const fbl_imap *imap)
{
    return imap->uidvalidity;
}

bool fbl_imap_has_idle(const fbl_imap *imap)
{
    return imap->has_idle;
}

bool fbl_imap_has_move(const fbl_imap *imap)
{
    return imap->has_move;
}

bool fbl_imap_is_connected(const fbl_imap *imap)
{
    return imap->session != NULL;
}
