/* curve.c - CURVE keys, the ZAP handler, the handshake monitor (see curve.h) */
#define G_LOG_DOMAIN "fbl"
#include "fbl/curve.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <zmq.h>

#include "fbl/daemon.h"
#include "fbl/metrics.h"
#include "fbl/secret.h"

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define THREAD_POLL_MS 200
#define KEY_FILE_MAX   4096
#define LOG_EVERY_MS   60000
#define MONITOR_EVENTS                                                                             \
    (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                        \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

GQuark fbl_curve_error_quark(void)
{
    return g_quark_from_static_string("fbl-curve-error");
}

/* A thread that owns one zmq socket and polls it until asked to stop. */
typedef struct worker {
    GThread *thread;
    void *sock;
    gint stop;
} worker;

struct fbl_curve {
    const char *role;    /* "watch" or "sink" */
    worker zap;          /* sink: the ZAP handler */
    worker monitor;      /* both: handshake events */
    GHashTable *clients; /* sink: Z85 public key -> file name */
    int64_t last_logged[4];
    unsigned suppressed[4];
};

bool fbl_curve_endpoint_is_local(const char *endpoint)
{
    return g_str_has_prefix(endpoint, "inproc://") || g_str_has_prefix(endpoint, "ipc://");
}

/*
 * A secret key on the stack, wiped (explicit_bzero: a memset before the key
 * goes out of scope may be optimised away) on every way out of its scope.
 */
typedef struct secret_key {
    char z85[FBL_CURVE_KEY_LEN + 1];
} secret_key;

static void secret_key_wipe(secret_key *key)
{
    explicit_bzero(key, sizeof *key);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(secret_key, secret_key_wipe)

static bool valid_z85_key(const char *text)
{
    uint8_t bin[32];
    bool ok = strlen(text) == FBL_CURVE_KEY_LEN && zmq_z85_decode(bin, text) != NULL;
    explicit_bzero(bin, sizeof bin);
    return ok;
}

/* The one key among @text's lines (blank lines and '#' comments aside), cut in place. */
static bool find_key(char *text, char out[FBL_CURVE_KEY_LEN + 1])
{
    bool found = false;
    char *next = NULL;
    for (char *line = text; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *l = g_strstrip(line);
        if (*l == '\0' || *l == '#')
            continue;
        if (found || !valid_z85_key(l))
            return false;
        g_strlcpy(out, l, FBL_CURVE_KEY_LEN + 1);
        found = true;
    }
    return found;
}

bool fbl_curve_read_key(const char *path, bool secret, char out[FBL_CURVE_KEY_LEN + 1],
                        GError **error)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_KEY_FILE, "%s: %s", path,
                    g_strerror(e));
        return false;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_KEY_FILE,
                    "%s: not a key file (fbl keygen writes them)", path);
        return false;
    }
    g_autoptr(GError) mode = NULL;
    if (secret && !fbl_secret_check_stat(path, &st, "secret key", &mode)) {
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_KEY_FILE, "%s", mode->message);
        return false;
    }
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(path, &text, &len, &local)) {
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_KEY_FILE, "%s", local->message);
        return false;
    }
    g_auto(secret_key) key = {{0}};
    bool found = find_key(text, key.z85);
    explicit_bzero(text, len);
    if (!found) {
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_KEY_FILE,
                    "%s: expected one CURVE key (40 Z85 characters; fbl keygen writes them)", path);
        return false;
    }
    g_strlcpy(out, key.z85, FBL_CURVE_KEY_LEN + 1);
    return true;
}

bool fbl_curve_write_keypair(const char *prefix, bool force, char public_key[FBL_CURVE_KEY_LEN + 1],
                             GError **error)
{
    g_auto(secret_key) secret = {{0}};
    if (zmq_curve_keypair(public_key, secret.z85) != 0) {
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_ZMQ,
                    "zmq_curve_keypair: %s (libzmq without CURVE?)", zmq_strerror(errno));
        return false;
    }
    g_autofree char *key_path = g_strdup_printf("%s.key", prefix);
    g_autofree char *pub_path = g_strdup_printf("%s.pub", prefix);
    const char *paths[] = {key_path, pub_path};
    for (size_t i = 0; !force && i < G_N_ELEMENTS(paths); i++) {
        if (g_file_test(paths[i], G_FILE_TEST_EXISTS)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                        "%s exists; --force replaces it (and every peer must get the new "
                        "public key)",
                        paths[i]);
            return false;
        }
    }
    g_autofree char *base = g_path_get_basename(prefix);
    g_autofree char *key_text = g_strdup_printf("# fbl CURVE secret key of %s: keep it secret\n"
                                                "# its public key: %s\n%s\n",
                                                base, public_key, secret.z85);
    g_autofree char *pub_text =
        g_strdup_printf("# fbl CURVE public key of %s\n%s\n", base, public_key);
    GFileSetContentsFlags flags = G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE;
    bool ok = g_file_set_contents_full(key_path, key_text, -1, flags, 0600, error) &&
              g_file_set_contents_full(pub_path, pub_text, -1, flags, 0644, error);
    explicit_bzero(key_text, strlen(key_text));
    return ok;
}

/*
 * The key of @key in @group as an FBL_CONFIG_ERROR naming file, line and key;
 * a secret key's mode is not judged when the group's allow_insecure_file_modes says so.
 */
static bool read_config_key(const fbl_config *c, const char *group, const char *key,
                            const char *path, bool secret, char out[FBL_CURVE_KEY_LEN + 1],
                            GError **error)
{
    bool loose = strcmp(group, "sink") == 0 ? c->sink_allow_insecure_file_modes
                                            : c->watch_allow_insecure_file_modes;
    g_autoptr(GError) local = NULL;
    if (fbl_curve_read_key(path, secret && !loose, out, &local))
        return true;
    return fbl_config_error_at(c, group, key, error, "%s", local->message);
}

bool fbl_curve_check_watch(const fbl_config *c, const char *const *endpoints, GError **error)
{
    bool network = false;
    for (size_t i = 0; endpoints != NULL && endpoints[i] != NULL; i++)
        network = network || !fbl_curve_endpoint_is_local(endpoints[i]);
    const char *secret = c->watch_curve_secret_file, *server = c->watch_curve_server_public_file;
    if ((secret == NULL) != (server == NULL))
        return fbl_config_error_at(
            c, "watch", secret == NULL ? "curve_secret_file" : "curve_server_public_file", error,
            "CURVE needs both curve_secret_file and "
            "curve_server_public_file");
    g_auto(secret_key) key = {{0}};
    if (secret != NULL)
        return read_config_key(c, "watch", "curve_secret_file", secret, true, key.z85, error) &&
               read_config_key(c, "watch", "curve_server_public_file", server, false, key.z85,
                               error);
    for (size_t i = 0; network && endpoints[i] != NULL; i++) {
        if (!fbl_curve_endpoint_is_local(endpoints[i]) && !c->watch_allow_plaintext)
            return fbl_config_error_at(
                c, "watch", "connect", error,
                "%s would carry mail unencrypted: set curve_secret_file and "
                "curve_server_public_file (fbl keygen), use ipc://, or allow_plaintext = true",
                endpoints[i]);
    }
    return true;
}

bool fbl_curve_check_sink(const fbl_config *c, const char *endpoint, GError **error)
{
    const char *secret = c->sink_curve_secret_file, *clients = c->sink_curve_clients_dir;
    if (secret == NULL && clients != NULL)
        return fbl_config_error_at(c, "sink", "curve_secret_file", error,
                                   "curve_clients_dir is set: the sink's secret key is needed "
                                   "too");
    if (secret == NULL) {
        if (endpoint != NULL && !fbl_curve_endpoint_is_local(endpoint) && !c->sink_allow_plaintext)
            return fbl_config_error_at(
                c, "sink", "bind", error,
                "%s would take mail unencrypted: set curve_secret_file and curve_clients_dir "
                "(fbl keygen), use ipc://, or allow_plaintext = true",
                endpoint);
        return true;
    }
    if (clients == NULL)
        return fbl_config_error_at(c, "sink", "curve_clients_dir", error,
                                   "CURVE needs the directory of the watchers' public keys");
    g_auto(secret_key) key = {{0}};
    if (!read_config_key(c, "sink", "curve_secret_file", secret, true, key.z85, error))
        return false;
    if (!g_file_test(clients, G_FILE_TEST_IS_DIR))
        return fbl_config_error_at(c, "sink", "curve_clients_dir", error, "%s is not a directory",
                                   clients);
    return true;
}

/* Log @what at most once a minute per kind of event. */
static void log_limited(fbl_curve *cv, unsigned kind, GLogLevelFlags level, const char *what,
                        const char *endpoint)
{
    int64_t now = fbl_now_ms();
    if (cv->last_logged[kind] != 0 && now - cv->last_logged[kind] < LOG_EVERY_MS) {
        cv->suppressed[kind]++;
        return;
    }
    g_log(G_LOG_DOMAIN, level, "%s: %s endpoint=%s%s", cv->role, what, endpoint,
          cv->suppressed[kind] > 0 ? " (and more like it this last minute)" : "");
    cv->last_logged[kind] = now;
    cv->suppressed[kind] = 0;
}

static void on_event(fbl_curve *cv, uint16_t event, uint32_t value, const char *endpoint)
{
    bool sink = strcmp(cv->role, "sink") == 0;
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
        g_info("%s: CURVE handshake done endpoint=%s", cv->role, endpoint);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && !sink) /* the sink's ZAP logs it */
        log_limited(cv, 0, G_LOG_LEVEL_WARNING,
                    "the sink refused our key: add our .pub file to its curve_clients_dir",
                    endpoint);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
             event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        log_limited(cv, 1, G_LOG_LEVEL_WARNING,
                    sink ? "a peer failed the CURVE handshake (plain, or not our public key?)"
                         : "the CURVE handshake with the sink failed (is "
                           "curve_server_public_file the sink's key?)",
                    endpoint);
    (void) value;
}

static gpointer monitor_main(gpointer data)
{
    fbl_curve *cv = data;
    while (!g_atomic_int_get(&cv->monitor.stop)) {
        zmq_pollitem_t item = {cv->monitor.sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, THREAD_POLL_MS) <= 0)
            continue;
        zmq_msg_t head, addr;
        zmq_msg_init(&head);
        zmq_msg_init(&addr);
        if (zmq_msg_recv(&head, cv->monitor.sock, 0) >= 0 && zmq_msg_more(&head) &&
            zmq_msg_recv(&addr, cv->monitor.sock, 0) >= 0 && zmq_msg_size(&head) >= 6) {
            const uint8_t *h = zmq_msg_data(&head);
            uint16_t event;
            uint32_t value;
            memcpy(&event, h, sizeof event);
            memcpy(&value, h + 2, sizeof value);
            g_autofree char *endpoint = g_strndup(zmq_msg_data(&addr), zmq_msg_size(&addr));
            on_event(cv, event, value, endpoint);
        }
        zmq_msg_close(&head);
        zmq_msg_close(&addr);
    }
    zmq_close(cv->monitor.sock);
    return NULL;
}

static bool start_monitor(fbl_curve *cv, void *ctx, void *socket, GError **error)
{
    g_autofree char *endpoint = g_strdup_printf("inproc://fbl-curve-monitor-%p", (void *) cv);
    if (zmq_socket_monitor(socket, endpoint, MONITOR_EVENTS) != 0) {
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_ZMQ, "zmq_socket_monitor: %s",
                    zmq_strerror(errno));
        return false;
    }
    cv->monitor.sock = zmq_socket(ctx, ZMQ_PAIR);
    if (cv->monitor.sock == NULL || zmq_connect(cv->monitor.sock, endpoint) != 0) {
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_ZMQ, "monitor socket: %s",
                    zmq_strerror(errno));
        return false;
    }
    cv->monitor.thread = g_thread_new("fbl-curve-mon", monitor_main, cv);
    return true;
}

/* One ZAP request (RFC 27) on the handler's REP socket, answered. */
static void zap_answer(fbl_curve *cv, GPtrArray *frames)
{
    /* version, request id, domain, address, routing id, mechanism, credentials... */
    const char *status = "400", *text = "unknown client key";
    g_autofree char *who = NULL;
    GBytes *request_id = frames->len > 1 ? g_ptr_array_index(frames, 1) : NULL;
    if (frames->len >= 7) {
        gsize n = 0;
        const char *mech = g_bytes_get_data(g_ptr_array_index(frames, 5), &n);
        const uint8_t *key = g_bytes_get_data(g_ptr_array_index(frames, 6), NULL);
        gsize addr_len = 0;
        const char *addr = g_bytes_get_data(g_ptr_array_index(frames, 3), &addr_len);
        who = g_strndup(addr, addr_len);
        char z85[FBL_CURVE_KEY_LEN + 1] = "";
        if (n == 5 && memcmp(mech, "CURVE", 5) == 0 &&
            g_bytes_get_size(g_ptr_array_index(frames, 6)) == 32 &&
            zmq_z85_encode(z85, key, 32) != NULL) {
            const char *name = g_hash_table_lookup(cv->clients, z85);
            if (name != NULL) {
                status = "200";
                text = "OK";
                g_info("sink: watcher %s (%s) authenticated", name, who);
            } else {
                fbl_metrics_curve_refused();
                log_limited(cv, 2, G_LOG_LEVEL_WARNING,
                            "refused a watcher: its public key is not in curve_clients_dir", who);
                g_info("sink: refused public key %s from %s", z85, who);
            }
        }
    }
    const char *reply[] = {"1.0", NULL, status, text, "", ""};
    for (size_t i = 0; i < G_N_ELEMENTS(reply); i++) {
        int more = i + 1 < G_N_ELEMENTS(reply) ? ZMQ_SNDMORE : 0;
        if (i == 1) {
            gsize len = 0;
            const void *id = request_id != NULL ? g_bytes_get_data(request_id, &len) : "";
            (void) zmq_send(cv->zap.sock, id, len, more);
        } else {
            (void) zmq_send(cv->zap.sock, reply[i], strlen(reply[i]), more);
        }
    }
}

static gpointer zap_main(gpointer data)
{
    fbl_curve *cv = data;
    while (!g_atomic_int_get(&cv->zap.stop)) {
        zmq_pollitem_t item = {cv->zap.sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, THREAD_POLL_MS) <= 0)
            continue;
        g_autoptr(GPtrArray) frames =
            g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
        int more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, cv->zap.sock, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
            g_ptr_array_add(frames, g_bytes_new(zmq_msg_data(&m), zmq_msg_size(&m)));
            more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
        zap_answer(cv, frames);
    }
    zmq_close(cv->zap.sock);
    return NULL;
}

/* Every public key file in @dir (names starting with '.' are skipped). */
static bool load_clients(fbl_curve *cv, const fbl_config *c, GError **error)
{
    const char *dir = c->sink_curve_clients_dir;
    g_autoptr(GError) local = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &local);
    if (d == NULL)
        return fbl_config_error_at(c, "sink", "curve_clients_dir", error, "%s", local->message);
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        if (name[0] == '.')
            continue;
        g_autofree char *path = g_build_filename(dir, name, NULL);
        char key[FBL_CURVE_KEY_LEN + 1];
        if (!fbl_curve_read_key(path, false, key, &local)) {
            g_warning("sink: skipping %s", local->message);
            g_clear_error(&local);
            continue;
        }
        g_hash_table_insert(cv->clients, g_strdup(key), g_strdup(name));
    }
    if (g_hash_table_size(cv->clients) == 0)
        g_warning("sink: curve_clients_dir %s holds no public key: every watcher is refused", dir);
    else
        g_message("sink: %u watcher key(s) allowed from %s", g_hash_table_size(cv->clients), dir);
    return true;
}

static fbl_curve *curve_new(const char *role)
{
    fbl_curve *cv = g_new0(fbl_curve, 1);
    cv->role = role;
    cv->clients = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return cv;
}

static bool set_key_option(void *socket, int option, const char *z85, GError **error)
{
    if (zmq_setsockopt(socket, option, z85, FBL_CURVE_KEY_LEN) != 0) {
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_ZMQ, "zmq_setsockopt(CURVE): %s",
                    zmq_strerror(errno));
        return false;
    }
    return true;
}

fbl_curve *fbl_curve_client_new(const fbl_config *config, void *zmq_context, void *socket,
                                const char *const *endpoints, GError **error)
{
    const fbl_config *c = config;
    void *ctx = zmq_context;
    bool all_inproc = true;
    for (size_t i = 0; endpoints != NULL && endpoints[i] != NULL; i++)
        all_inproc = all_inproc && g_str_has_prefix(endpoints[i], "inproc://");
    if (!all_inproc && !fbl_curve_check_watch(c, endpoints, error))
        return NULL;
    g_autoptr(fbl_curve) cv = curve_new("watch");
    if (all_inproc || c->watch_curve_secret_file == NULL)
        return g_steal_pointer(&cv); /* inproc, or plain as allowed */
    g_auto(secret_key) secret = {{0}};
    char public[FBL_CURVE_KEY_LEN + 1], server[FBL_CURVE_KEY_LEN + 1];
    if (!read_config_key(c, "watch", "curve_secret_file", c->watch_curve_secret_file, true,
                         secret.z85, error) ||
        !read_config_key(c, "watch", "curve_server_public_file", c->watch_curve_server_public_file,
                         false, server, error))
        return NULL;
    bool ok = zmq_curve_public(public, secret.z85) == 0 &&
              set_key_option(socket, ZMQ_CURVE_SERVERKEY, server, error) &&
              set_key_option(socket, ZMQ_CURVE_PUBLICKEY, public, error) &&
              set_key_option(socket, ZMQ_CURVE_SECRETKEY, secret.z85, error);
    if (!ok) {
        if (error != NULL && *error == NULL)
            g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_ZMQ, "zmq_curve_public: %s",
                        zmq_strerror(errno));
        return NULL;
    }
    if (!start_monitor(cv, ctx, socket, error))
        return NULL;
    g_message("watch: CURVE on, our public key %s", public);
    return g_steal_pointer(&cv);
}

fbl_curve *fbl_curve_server_new(const fbl_config *config, void *zmq_context, void *socket,
                                const char *endpoint, GError **error)
{
    const fbl_config *c = config;
    void *ctx = zmq_context;
    bool inproc = g_str_has_prefix(endpoint, "inproc://");
    if (!inproc && !fbl_curve_check_sink(c, endpoint, error))
        return NULL;
    g_autoptr(fbl_curve) cv = curve_new("sink");
    if (inproc || c->sink_curve_secret_file == NULL)
        return g_steal_pointer(&cv); /* inproc, or plain as allowed */
    g_auto(secret_key) secret = {{0}};
    char public[FBL_CURVE_KEY_LEN + 1];
    if (!read_config_key(c, "sink", "curve_secret_file", c->sink_curve_secret_file, true,
                         secret.z85, error) ||
        !load_clients(cv, c, error))
        return NULL;
    /* The ZAP handler must be there before the socket takes its first peer. */
    cv->zap.sock = zmq_socket(ctx, ZMQ_REP);
    int linger = 0, server = 1;
    if (cv->zap.sock == NULL ||
        zmq_setsockopt(cv->zap.sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(cv->zap.sock, ZAP_ENDPOINT) != 0) {
        g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_ZMQ, "ZAP handler: %s",
                    zmq_strerror(errno));
        return NULL;
    }
    cv->zap.thread = g_thread_new("fbl-zap", zap_main, cv);
    bool ok = zmq_curve_public(public, secret.z85) == 0 &&
              zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &server, sizeof server) == 0 &&
              set_key_option(socket, ZMQ_CURVE_SECRETKEY, secret.z85, error) &&
              zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, "fbl", 3) == 0;
    if (!ok) {
        if (error != NULL && *error == NULL)
            g_set_error(error, FBL_CURVE_ERROR, FBL_CURVE_ERROR_ZMQ, "CURVE server: %s",
                        zmq_strerror(errno));
        return NULL;
    }
    if (!start_monitor(cv, ctx, socket, error))
        return NULL;
    g_message("sink: CURVE on, our public key %s", public);
    return g_steal_pointer(&cv);
}

static void stop_worker(worker *w)
{
    if (w->thread != NULL) {
        g_atomic_int_set(&w->stop, 1);
        g_thread_join(w->thread);
        w->thread = NULL;
    } else if (w->sock != NULL) {
        zmq_close(w->sock);
    }
    w->sock = NULL;
}

void fbl_curve_free(fbl_curve *curve)
{
    fbl_curve *cv = curve;
    if (cv == NULL)
        return;
    stop_worker(&cv->zap);
    stop_worker(&cv->monitor);
    g_hash_table_unref(cv->clients);
    g_free(cv);
}
