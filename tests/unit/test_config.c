/*
 * test_config.c - fbl/value.c, the one reader of each kind of value (a table
 * of accepted and refused spellings per kind), and fbl/config.c loading a
 * real file with every group, [mailbox:NAME] and both vendor types included:
 * every value lands where it should, what --print-config prints loads again
 * and prints the same, and each broken file is refused naming its line and
 * key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "fbl/config.h"
#include "fbl/value.h"
#include "tests/unit/harness.h"

/* ---- the value parsers ------------------------------------------------------------ */

typedef struct number_row {
    const char *text;
    fbl_value_status want;
    guint64 value; /* when FBL_VALUE_OK */
} number_row;

static void check_numbers(const char *kind, fbl_value_status (*parse)(const char *, guint64 *),
                          const number_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        guint64 got = 0;
        fbl_value_status st = parse(rows[i].text, &got);
        if (st != rows[i].want)
            ROW_FAIL("%s '%s': status %d, want %d", kind, rows[i].text, st, rows[i].want);
        else if (st == FBL_VALUE_OK && got != rows[i].value)
            ROW_FAIL("%s '%s': %" G_GUINT64_FORMAT ", want %" G_GUINT64_FORMAT, kind, rows[i].text,
                     got, rows[i].value);
    }
    fbl_test_rows_done();
}

#define OK(text, value)                                                                            \
    {                                                                                              \
        text, FBL_VALUE_OK, value                                                                  \
    }
#define NOT_NUMBER(text)                                                                           \
    {                                                                                              \
        text, FBL_VALUE_NOT_A_NUMBER, 0                                                            \
    }
#define UNIT(text)                                                                                 \
    {                                                                                              \
        text, FBL_VALUE_BAD_UNIT, 0                                                                \
    }
#define TOO_LARGE(text)                                                                            \
    {                                                                                              \
        text, FBL_VALUE_TOO_LARGE, 0                                                               \
    }
#define KIB G_GUINT64_CONSTANT(1024)
#define MIB (KIB * KIB)
#define GIB (KIB * MIB)

static void test_number(void **state)
{
    (void) state;
    static const number_row rows[] = {
        OK("0", 0),
        OK("4096", 4096),
        OK("007", 7),
        OK("18446744073709551615", G_MAXUINT64),
        TOO_LARGE("18446744073709551616"),
        NOT_NUMBER(""),
        NOT_NUMBER("-1"),
        NOT_NUMBER("+1"),
        NOT_NUMBER(" 1"),
        UNIT("1 "), /* the loader trims; anything after the digits is no number */
        UNIT("1.5"),
        UNIT("0x10"),
        UNIT("1k"),
    };
    check_numbers("number", fbl_value_parse_number, rows, G_N_ELEMENTS(rows));
}

static void test_size(void **state)
{
    (void) state;
    static const number_row rows[] = {
        OK("4096", 4096),
        OK("0", 0),
        OK("512B", 512),
        OK("512b", 512),
        OK("64K", 64 * KIB),
        OK("64k", 64 * KIB),
        OK("64KiB", 64 * KIB),
        OK("64kib", 64 * KIB),
        OK("64 KiB", 64 * KIB),
        OK("64\tKiB", 64 * KIB),
        OK("10M", 10 * MIB),
        OK("10MiB", 10 * MIB),
        OK("10MIB", 10 * MIB),
        OK("1G", GIB),
        OK("1GiB", GIB),
        OK("16777215GiB", 16777215 * GIB),
        TOO_LARGE("17179869184GiB"), /* 2^64 bytes */
        NOT_NUMBER("KiB"),
        NOT_NUMBER("-1KiB"),
        NOT_NUMBER(""),
        UNIT("10MB"), /* a megabyte is not a mebibyte: refused, not guessed */
        UNIT("10TiB"),
        UNIT("1.5MiB"),
        UNIT("10 "),
        UNIT("10 MiB x"),
    };
    check_numbers("size", fbl_value_parse_size, rows, G_N_ELEMENTS(rows));
}

static void test_duration(void **state)
{
    (void) state;
    static const number_row rows[] = {
        OK("500", 500), /* a bare number is milliseconds */
        OK("500ms", 500),
        OK("500MS", 500),
        OK("30s", 30000),
        OK("30S", 30000),
        OK("5m", 300000),
        OK("5M", 300000),
        OK("1h", 3600000),
        OK("1H", 3600000),
        OK("2 h", 7200000),
        OK("0s", 0),
        TOO_LARGE("5124095576030432h"), /* over 2^64 ms */
        NOT_NUMBER("s"),
        NOT_NUMBER("-1s"),
        NOT_NUMBER(""),
        UNIT("1d"),
        UNIT("1.5s"),
        UNIT("30 sec"),
        UNIT("1hr"),
        UNIT("2 fortnights"),
    };
    check_numbers("duration", fbl_value_parse_duration, rows, G_N_ELEMENTS(rows));
}

static void test_days(void **state)
{
    (void) state;
    static const number_row rows[] = {
        OK("180", 180),   OK("180d", 180),   OK("180D", 180),
        OK("26w", 182),   OK("26W", 182),    OK("1 w", 7),
        OK("0", 0),       OK("0d", 0),       TOO_LARGE("2635249153387078803w"), /* over 2^64 days */
        NOT_NUMBER("d"),  NOT_NUMBER("-1d"), NOT_NUMBER(""),
        UNIT("1m"),       UNIT("1.5d"),      UNIT("26 weeks"),
        UNIT("6 months"),
    };
    check_numbers("days", fbl_value_parse_days, rows, G_N_ELEMENTS(rows));
}

static void test_bool(void **state)
{
    (void) state;
    static const struct {
        const char *text;
        bool ok, value;
    } rows[] = {
        {"true", true, true},    {"TRUE", true, true},    {"True", true, true},
        {"yes", true, true},     {"YES", true, true},     {"on", true, true},
        {"On", true, true},      {"1", true, true},       {"false", true, false},
        {"FALSE", true, false},  {"no", true, false},     {"No", true, false},
        {"off", true, false},    {"OFF", true, false},    {"0", true, false},
        {"", false, false},      {"2", false, false},     {"y", false, false},
        {"n", false, false},     {"t", false, false},     {"enable", false, false},
        {"truee", false, false}, {" true", false, false}, {"01", false, false},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        bool got = !rows[i].value;
        bool ok = fbl_value_parse_bool(rows[i].text, &got);
        if (ok != rows[i].ok)
            ROW_FAIL("bool '%s': %s, want %s", rows[i].text, ok ? "accepted" : "refused",
                     rows[i].ok ? "accepted" : "refused");
        else if (ok && got != rows[i].value)
            ROW_FAIL("bool '%s': %d, want %d", rows[i].text, got, rows[i].value);
    }
    fbl_test_rows_done();
}

/* ---- loading a file --------------------------------------------------------------- */

/* Every group, each key away from its default, written as users write them. */
static const char every_group[] =
    "[postgres]\n"
    "conninfo = host=/run/postgresql dbname=fbl_test   # peer authentication\n"
    "unreachable_timeout = 2M\n"
    "[limits]\n"
    "max_mail_bytes = 20 mib\n"
    "max_mime_depth = 16\n"
    "max_mime_parts = 500\n"
    "max_headers = 2000\n"
    "max_header_bytes = 64k\n"
    "reports_per_reporter_per_hour = 0\n"
    "exempt_reporters = fbl@aol.com, *.yahoo.com\n"
    "[parse]\n"
    "trusted_networks = 192.0.2.0/24 2001:db8::/32\n"
    "trusted_hosts = prod.outlook.com\n"
    "authserv_id = mx.example.net\n"
    "[watch]\n"
    "connect = tcp://sink1.example.net:5771, tcp://sink2.example.net:5771\n"
    "window = 64\n"
    "window_bytes = 4MiB\n"
    "queue_max = 100\n"
    "ack_timeout = 1h\n"
    "curve_secret_file = /etc/fbl/watch.key\n"
    "curve_server_public_file = /etc/fbl/sink.pub\n"
    "allow_plaintext = yes\n"
    "allow_insecure_file_modes = On\n"
    "[sink]\n"
    "bind = tcp://0.0.0.0:5771\n"
    "batch_max_mails = 10\n"
    "batch_max_bytes = 1G\n"
    "batch_max_wait = 1s\n"
    "batch_idle = 5\n"
    "retry_max_wait = 10m\n"
    "store_raw = 0\n"
    "curve_secret_file = /etc/fbl/sink.key\n"
    "curve_clients_dir = /etc/fbl/watchers\n"
    "allow_plaintext = true\n"
    "allow_insecure_file_modes = 1\n"
    "[log]\n"
    "level = debug\n"
    "file = /var/log/fbl/fbl.log\n"
    "target = file\n"
    "[metrics]\n"
    "listen = 127.0.0.1:9771\n"
    "watch = 127.0.0.1:9772\n"
    "sink = [::1]:9773\n"
    "forward = 127.0.0.1:9774\n"
    "[retention]\n"
    "keep = 26W\n"
    "raw_keep = 30\n"
    "[mailbox:notspam]\n"
    "path = /var/mail/notspam\n"
    "feedback_type = not-spam\n"
    "raw = off\n"
    "[mailbox:trap]\n"
    "path = /var/mail/trap\n"
    "raw = TRUE\n"
    "[vendor:acme]\n"
    "url = https://api.vendor.example/v1/reports\n"
    "type = http-json                  # after url: the type decides the defaults anyway\n"
    "token_file = /etc/fbl/acme.token\n"
    "ca_file = /etc/fbl/acme-ca.pem\n"
    "batch_size = 250\n"
    "batch_bytes = 64MiB\n"
    "parallel = 8\n"
    "timeout = 30S\n"
    "max_attempts = 3\n"
    "retry_max_wait = 2H\n"
    "redact = reporter, recipients\n"
    "redact_key_file = /etc/fbl/acme.key\n"
    "include_raw = yes\n"
    "allow_plain_http = no\n"
    "allow_insecure_file_modes = off\n"
    "[vendor:rs]\n"
    "type = rspamd\n"
    "url = http://127.0.0.1:11334\n"
    "password_file = /etc/fbl/rspamd.pw\n"
    "learn = false\n"
    "fuzzy_flag = 11\n"
    "fuzzy_weight = 2\n";

typedef struct tmp {
    char *dir;
} tmp;

static int setup_tmp(void **state)
{
    tmp *t = g_new0(tmp, 1);
    t->dir = fbl_test_tmpdir("fbl-config-XXXXXX");
    *state = t;
    return 0;
}

static int teardown_tmp(void **state)
{
    tmp *t = *state;
    fbl_test_remove_tree(t->dir);
    g_free(t->dir);
    g_free(t);
    return 0;
}

static fbl_config *load_text(const tmp *t, const char *text, GError **error)
{
    g_autofree char *path = fbl_test_write_file(t->dir, "fbl.conf", text, 0600);
    return fbl_config_load(path, error);
}

static void check_uint(const char *what, guint64 got, guint64 want)
{
    if (got != want)
        ROW_FAIL("%s: %" G_GUINT64_FORMAT ", want %" G_GUINT64_FORMAT, what, got, want);
}

static void check_list(const char *what, GStrv got, const char *want)
{
    g_autofree char *joined = g_strjoinv("|", got);
    fbl_test_check_str("every group", what, want, joined);
}

static void check_fixed(const fbl_config *c)
{
    fbl_test_check_str("every group", "conninfo", "host=/run/postgresql dbname=fbl_test",
                       c->pg_conninfo);
    check_uint("unreachable_timeout", c->pg_unreachable_timeout_ms, 120000);
    check_uint("max_mail_bytes", c->max_mail_bytes, 20 * MIB);
    check_uint("max_mime_depth", c->max_mime_depth, 16);
    check_uint("max_mime_parts", c->max_mime_parts, 500);
    check_uint("max_headers", c->max_headers, 2000);
    check_uint("max_header_bytes", c->max_header_bytes, 64 * KIB);
    check_uint("reports_per_reporter_per_hour", c->reports_per_reporter_per_hour, 0);
    check_list("exempt_reporters", c->exempt_reporters, "fbl@aol.com|*.yahoo.com");
    check_list("trusted_networks", c->trusted_networks, "192.0.2.0/24|2001:db8::/32");
    check_list("trusted_hosts", c->trusted_hosts, "prod.outlook.com");
    fbl_test_check_str("every group", "authserv_id", "mx.example.net", c->authserv_id);
    check_list("connect", c->watch_connect,
               "tcp://sink1.example.net:5771|tcp://sink2.example.net:5771");
    check_uint("window", c->watch_window, 64);
    check_uint("window_bytes", c->watch_window_bytes, 4 * MIB);
    check_uint("queue_max", c->watch_queue_max, 100);
    check_uint("ack_timeout", c->watch_ack_timeout_ms, 3600000);
    fbl_test_check_str("every group", "watch curve_secret_file", "/etc/fbl/watch.key",
                       c->watch_curve_secret_file);
    fbl_test_check_str("every group", "curve_server_public_file", "/etc/fbl/sink.pub",
                       c->watch_curve_server_public_file);
    check_uint("watch allow_plaintext", c->watch_allow_plaintext, true);
    check_uint("watch allow_insecure_file_modes", c->watch_allow_insecure_file_modes, true);
    fbl_test_check_str("every group", "bind", "tcp://0.0.0.0:5771", c->sink_bind);
    check_uint("batch_max_mails", c->sink_batch_max_mails, 10);
    check_uint("batch_max_bytes", c->sink_batch_max_bytes, GIB);
    check_uint("batch_max_wait", c->sink_batch_max_wait_ms, 1000);
    check_uint("batch_idle", c->sink_batch_idle_ms, 5);
    check_uint("sink retry_max_wait", c->sink_retry_max_wait_ms, 600000);
    check_uint("store_raw", c->sink_store_raw, false);
    fbl_test_check_str("every group", "sink curve_secret_file", "/etc/fbl/sink.key",
                       c->sink_curve_secret_file);
    fbl_test_check_str("every group", "curve_clients_dir", "/etc/fbl/watchers",
                       c->sink_curve_clients_dir);
    check_uint("sink allow_plaintext", c->sink_allow_plaintext, true);
    check_uint("sink allow_insecure_file_modes", c->sink_allow_insecure_file_modes, true);
    check_uint("level", c->log_level, G_LOG_LEVEL_DEBUG);
    fbl_test_check_str("every group", "log file", "/var/log/fbl/fbl.log", c->log_file);
    fbl_test_check_str("every group", "target", "file", c->log_target);
    fbl_test_check_str("every group", "listen", "127.0.0.1:9771", c->metrics_listen);
    fbl_test_check_str("every group", "metrics watch", "127.0.0.1:9772", c->metrics_watch);
    fbl_test_check_str("every group", "metrics sink", "[::1]:9773", c->metrics_sink);
    fbl_test_check_str("every group", "metrics forward", "127.0.0.1:9774", c->metrics_forward);
    check_uint("keep", c->retention_keep_days, 182);
    check_uint("raw_keep", c->retention_raw_keep_days, 30);
}

static void check_named(const fbl_config *c)
{
    check_uint("mailboxes", c->mailboxes->len, 2);
    const fbl_mailbox_config *m = fbl_config_find_mailbox(c, "notspam");
    const fbl_mailbox_config *trap = fbl_config_find_mailbox(c, "trap");
    if (m == NULL || trap == NULL) {
        ROW_FAIL("a mailbox is missing");
        return;
    }
    fbl_test_check_str("every group", "notspam path", "/var/mail/notspam", m->path);
    check_uint("notspam feedback_type", m->feedback_type, FBL_FEEDBACK_NOT_SPAM);
    check_uint("notspam raw", m->raw, false);
    check_uint("trap feedback_type (default)", trap->feedback_type, FBL_FEEDBACK_ABUSE);
    check_uint("trap raw", trap->raw, true);

    const fbl_vendor_config *a = fbl_config_find_vendor(c, "acme");
    const fbl_vendor_config *r = fbl_config_find_vendor(c, "rs");
    if (a == NULL || r == NULL) {
        ROW_FAIL("a vendor is missing");
        return;
    }
    check_uint("acme type", a->type, FBL_VENDOR_HTTP_JSON);
    fbl_test_check_str("every group", "acme url", "https://api.vendor.example/v1/reports", a->url);
    fbl_test_check_str("every group", "acme token_file", "/etc/fbl/acme.token", a->token_file);
    fbl_test_check_str("every group", "acme password_file", NULL, a->password_file);
    fbl_test_check_str("every group", "acme ca_file", "/etc/fbl/acme-ca.pem", a->ca_file);
    check_uint("acme batch_size", a->batch_size, 250);
    check_uint("acme batch_bytes", a->batch_bytes, 64 * MIB);
    check_uint("acme parallel", a->parallel, 8);
    check_uint("acme timeout", a->timeout_ms, 30000);
    check_uint("acme max_attempts", a->max_attempts, 3);
    check_uint("acme retry_max_wait", a->retry_max_wait_ms, 7200000);
    check_list("acme redact", a->redact, "reporter|recipients");
    fbl_test_check_str("every group", "acme redact_key_file", "/etc/fbl/acme.key",
                       a->redact_key_file);
    check_uint("acme include_raw", a->include_raw, true);
    check_uint("acme allow_plain_http", a->allow_plain_http, false);
    check_uint("acme allow_insecure_file_modes", a->allow_insecure_file_modes, false);

    check_uint("rs type", r->type, FBL_VENDOR_RSPAMD);
    fbl_test_check_str("every group", "rs password_file", "/etc/fbl/rspamd.pw", r->password_file);
    check_uint("rs batch_size (rspamd's default)", r->batch_size, 32);
    check_uint("rs parallel (default)", r->parallel, 4);
    check_uint("rs timeout (default)", r->timeout_ms, 10000);
    check_uint("rs retry_max_wait (default)", r->retry_max_wait_ms, 600000);
    check_uint("rs batch_bytes (default)", r->batch_bytes, 32 * MIB);
    check_list("rs redact (default)", r->redact, "");
    check_uint("rs learn", r->learn, false);
    check_uint("rs fuzzy_flag", r->fuzzy_flag, 11);
    check_uint("rs fuzzy_weight", r->fuzzy_weight, 2);
}

static void test_every_group(void **state)
{
    const tmp *t = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_config) c = load_text(t, every_group, &error);
    if (c == NULL) {
        fail_msg("the file with every group does not load: %s", error->message);
        return;
    }
    check_fixed(c);
    check_named(c);
    fbl_test_rows_done();
}

/* The body of --print-config: the heading names the file, which differs. */
static char *printed_body(const fbl_config *c)
{
    g_autoptr(GString) out = g_string_new(NULL);
    fbl_config_print(c, "run", out);
    const char *body = strstr(out->str, "\n[");
    return g_strdup(body != NULL ? body : out->str);
}

/* --print-config loads as a file, and that file prints the same and holds the same values. */
static void test_print_reloads(void **state)
{
    const tmp *t = *state;
    static const char *const texts[] = {every_group, "",
                                        "[vendor:r]\ntype = rspamd\nurl = "
                                        "http://127.0.0.1:11334\n"};
    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(fbl_config) c = load_text(t, texts[i], &error);
        if (c == NULL) {
            fail_msg("text %zu does not load: %s", i, error->message);
            return;
        }
        g_autofree char *first = printed_body(c);
        g_autoptr(fbl_config) again = load_text(t, first, &error);
        if (again == NULL) {
            ROW_FAIL("text %zu: its --print-config does not load: %s", i, error->message);
            continue;
        }
        g_autofree char *second = printed_body(again);
        if (strcmp(first, second) != 0)
            ROW_FAIL("text %zu: --print-config of its --print-config differs:\n%s\n---\n%s", i,
                     first, second);
        if (i == 0) {
            check_fixed(again);
            check_named(again);
        }
    }
    fbl_test_rows_done();
}

/* --print-config has a line for every key of the table, and marks defaults in vendor groups. */
static void test_print_every_key(void **state)
{
    const tmp *t = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_config) c = load_text(t, every_group, &error);
    assert_non_null(c);
    g_autoptr(GString) printed = g_string_new(NULL);
    fbl_config_print(c, "run", printed);
    g_autoptr(GString) table = g_string_new(NULL);
    fbl_config_print_table(table);
    g_auto(GStrv) rows = g_strsplit(table->str, "\n", -1);
    for (size_t i = 0; rows[i] != NULL && *rows[i] != '\0'; i++) {
        g_auto(GStrv) cols = g_strsplit(rows[i], "\t", -1);
        if (g_strv_length(cols) != 6) {
            ROW_FAIL("table row '%s': %u columns, want 6", rows[i], g_strv_length(cols));
            continue;
        }
        g_autofree char *line = g_strdup_printf("\n%s = ", cols[1]);
        g_autofree char *commented = g_strdup_printf("\n#%s =", cols[1]);
        if (strstr(printed->str, line) == NULL && strstr(printed->str, commented) == NULL)
            ROW_FAIL("[%s] %s: not in --print-config", cols[0], cols[1]);
    }
    static const char *const lines[] = {
        "\n[vendor:rs]\ntype = rspamd\nurl = http://127.0.0.1:11334\n#token_file =   # only "
        "for type http-json\npassword_file = /etc/fbl/rspamd.pw\nca_file =   # default\n"
        "batch_size = 32  # default\n",
        "\nlearn = false\nfuzzy_flag = 11\nfuzzy_weight = 2\nallow_plain_http = false  # "
        "default\n",
        "\n[vendor:acme]\ntype = http-json\n",
        "\ntimeout = 30s\n",
        "\n#learn =   # only for type rspamd\n",
        "\n[retention]\nkeep = 182d\nraw_keep = 30d\n",
        "\nunreachable_timeout = 2m\n",
        "\n[mailbox:trap]\npath = /var/mail/trap\nfeedback_type = abuse  # default\nraw = true\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
        if (strstr(printed->str, lines[i]) == NULL)
            ROW_FAIL("--print-config lacks:%s", lines[i]);
    }
    fbl_test_rows_done();
}

/*
 * [mailbox:NAME] imap = URL: the IMAP keys land where they should, their
 * defaults are fbl.conf(5)'s, plain imap:// is taken to loopback or with
 * starttls, and --print-config of such mailboxes loads again and prints the same.
 */
static void test_imap_mailbox(void **state)
{
    const tmp *t = *state;
    static const char text[] = "[mailbox:abuse]\n"
                               "imap = imaps://imap.example.net/INBOX\n"
                               "user = abuse@example.net\n"
                               "password_file = /etc/fbl/imap.pw\n"
                               "ca_file = /etc/fbl/imap-ca.pem\n"
                               "[mailbox:local]\n"
                               "imap = imap://[::1]:10143/Junk\n"
                               "user = fbl\n"
                               "oauth2_token_file = /etc/fbl/imap.token\n"
                               "done_folder = Archive/fbl\n"
                               "poll_interval = 2m\n"
                               "[mailbox:tls]\n"
                               "imap = imap://imap.example.net/INBOX\n"
                               "starttls = on\n"
                               "user = u\n"
                               "password_file = /p\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(fbl_config) c = load_text(t, text, &error);
    if (c == NULL) {
        fail_msg("the IMAP mailboxes do not load: %s", error->message);
        return;
    }
    const fbl_mailbox_config *a = fbl_config_find_mailbox(c, "abuse");
    const fbl_mailbox_config *l = fbl_config_find_mailbox(c, "local");
    const fbl_mailbox_config *s = fbl_config_find_mailbox(c, "tls");
    assert_non_null(a);
    assert_non_null(l);
    assert_non_null(s);
    assert_null(a->path);
    assert_string_equal(a->imap, "imaps://imap.example.net/INBOX");
    assert_string_equal(a->user, "abuse@example.net");
    assert_string_equal(a->password_file, "/etc/fbl/imap.pw");
    assert_null(a->oauth2_token_file);
    assert_string_equal(a->ca_file, "/etc/fbl/imap-ca.pem");
    assert_false(a->starttls);
    assert_string_equal(a->done_folder, "fbl/done");
    assert_int_equal(a->poll_interval_ms, 60000);
    assert_null(l->password_file);
    assert_string_equal(l->oauth2_token_file, "/etc/fbl/imap.token");
    assert_null(l->ca_file);
    assert_string_equal(l->done_folder, "Archive/fbl");
    assert_int_equal(l->poll_interval_ms, 120000);
    assert_true(s->starttls);

    g_autofree char *body = printed_body(c);
    g_autoptr(fbl_config) again = load_text(t, body, &error);
    if (again == NULL) {
        fail_msg("--print-config of IMAP mailboxes does not load: %s\n%s", error->message, body);
        return;
    }
    g_autofree char *body2 = printed_body(again);
    assert_string_equal(body, body2);
}

/* Broken files: refused naming the file's line and the key, with the reason. */
static void test_refused(void **state)
{
    const tmp *t = *state;
    static const struct {
        const char *name, *text, *want;
    } rows[] = {
        {"unknown group", "[postgress]\nconninfo = x\n", ":1: [postgress]: unknown group"},
        {"unknown key", "[log]\nlevel = debug\nfilee = x\n", ":3: [log] filee: unknown key"},
        {"bad duration", "[sink]\nbatch_max_wait = 2 fortnights\n",
         ":2: [sink] batch_max_wait: expected a duration"},
        {"out of range", "[watch]\nwindow = 0\n", ":2: [watch] window: 0 is out of range [1, "},
        {"too large", "[limits]\nmax_mail_bytes = 17179869184GiB\n",
         ":2: [limits] max_mail_bytes: 17179869184GiB is out of range"},
        {"bad boolean", "[sink]\nstore_raw = maybe\n",
         ":2: [sink] store_raw: expected true or false"},
        {"a month is no day count", "[retention]\nkeep = 6m\n",
         ":2: [retention] keep: expected a number of days"},
        {"mailbox without path", "[mailbox:box]\nraw = true\n", ":1: [mailbox:box] path: required"},
        {"bad feedback type", "[mailbox:box]\npath = /x\nfeedback_type = spam\n",
         ":3: [mailbox:box] feedback_type: expected abuse"},
        {"unknown vendor key", "[vendor:v]\ntype = http-json\nurl = http://x/\ntokn_file = t\n",
         ":4: [vendor:v] tokn_file: unknown key"},
        {"vendor without type", "[vendor:v]\nurl = http://x/\n",
         ":1: [vendor:v] type: required: http-json or rspamd"},
        {"vendor type", "[vendor:v]\ntype = smtp\nurl = http://x/\n",
         ":2: [vendor:v] type: expected http-json or rspamd"},
        {"vendor without url", "[vendor:v]\n\ntype = rspamd\n", ":1: [vendor:v] url: required"},
        {"vendor url scheme", "[vendor:v]\ntype = http-json\nurl = ftp://x/\n",
         ":3: [vendor:v] url: expected an http:// or https:// URL"},
        {"vendor url blank", "[vendor:v]\ntype = http-json\nurl = https://exa mple.net/\n",
         ":3: [vendor:v] url: holds a blank"},
        {"rspamd key on http-json", "[vendor:v]\ntype = http-json\nurl = http://x/\nlearn = no\n",
         ":4: [vendor:v] learn: only for type rspamd"},
        {"http-json key on rspamd", "[vendor:v]\ntype = rspamd\nurl = http://x/\ntoken_file = t\n",
         ":4: [vendor:v] token_file: only for type http-json"},
        {"vendor range", "[vendor:v]\ntype = http-json\nurl = http://x/\nbatch_size = 0\n",
         ":4: [vendor:v] batch_size: 0 is out of range [1, 10000]"},
        {"vendor unit", "[vendor:v]\ntype = http-json\nurl = http://x/\ntimeout = 3 fortnights\n",
         ":4: [vendor:v] timeout: bad unit: expected a duration"},
        {"empty vendor number", "[vendor:v]\ntype = http-json\nurl = http://x/\nparallel =\n",
         ":4: [vendor:v] parallel: expected a whole number"},
        {"vendor boolean", "[vendor:v]\ntype = http-json\nurl = http://x/\ninclude_raw = si\n",
         ":4: [vendor:v] include_raw: expected true or false"},
        {"redact without key", "[vendor:v]\ntype = http-json\nurl = http://x/\nredact = reporter\n",
         ":1: [vendor:v] redact_key_file: required with redact"},
        {"key without redact",
         "[vendor:v]\ntype = http-json\nurl = http://x/\nredact_key_file = /k\n",
         ":4: [vendor:v] redact_key_file: set, but redact lists no field"},
        {"rspamd with nothing to send",
         "[vendor:v]\ntype = rspamd\nurl = http://x/\nlearn = false\n",
         ":4: [vendor:v] learn: false and no fuzzy_flag: nothing would be sent"},
        {"conninfo with a password", "[postgres]\nconninfo = host=db password=hunter2\n",
         ":2: [postgres] conninfo: holds a password"},
        {"path and imap",
         "[mailbox:box]\npath = /x\nimap = imaps://h/INBOX\nuser = u\n"
         "password_file = /p\n",
         ":3: [mailbox:box] imap: a mailbox has either path or imap, not both"},
        {"imap without user", "[mailbox:box]\nimap = imaps://h/INBOX\npassword_file = /p\n",
         ":1: [mailbox:box] user: required with imap"},
        {"imap without secret", "[mailbox:box]\nimap = imaps://h/INBOX\nuser = u\n",
         ":2: [mailbox:box] imap: an IMAP mailbox takes exactly one of password_file and "
         "oauth2_token_file"},
        {"imap with two secrets",
         "[mailbox:box]\nimap = imaps://h/INBOX\nuser = u\npassword_file = /p\n"
         "oauth2_token_file = /t\n",
         ":5: [mailbox:box] oauth2_token_file: an IMAP mailbox takes exactly one"},
        {"plain imap off loopback",
         "[mailbox:box]\nimap = imap://mail.example.net/INBOX\nuser = u\npassword_file = /p\n",
         ":2: [mailbox:box] imap: plain imap:// to a host that is not loopback"},
        {"plain imap to a loopback-looking name",
         "[mailbox:box]\nimap = imap://127.0.0.1.example.net/INBOX\nuser = u\n"
         "password_file = /p\n",
         ":2: [mailbox:box] imap: plain imap:// to a host that is not loopback"},
        {"starttls with imaps",
         "[mailbox:box]\nimap = imaps://h/INBOX\nuser = u\npassword_file = /p\nstarttls = yes\n",
         ":5: [mailbox:box] starttls: only with imap://"},
        {"imap scheme", "[mailbox:box]\nimap = https://h/INBOX\n",
         ":2: [mailbox:box] imap: expected an imap:// or imaps:// URL"},
        {"imap URL with a password", "[mailbox:box]\nimap = imaps://u:pw@h/INBOX\n",
         ":2: [mailbox:box] imap: holds a user or password"},
        {"imap URL without host", "[mailbox:box]\nimap = imaps:///INBOX\n",
         ":2: [mailbox:box] imap: the URL names no host"},
        {"poll interval range",
         "[mailbox:box]\nimap = imaps://h/INBOX\nuser = u\npassword_file = /p\n"
         "poll_interval = 10ms\n",
         ":5: [mailbox:box] poll_interval: 10ms is out of range [1000, 3600000]"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(fbl_config) c = load_text(t, rows[i].text, &error);
        if (c != NULL) {
            ROW_FAIL("row '%s': loaded", rows[i].name);
            continue;
        }
        if (error->domain != FBL_CONFIG_ERROR || strstr(error->message, rows[i].want) == NULL ||
            strstr(error->message, "fbl.conf:") == NULL)
            ROW_FAIL("row '%s': %s, want …fbl.conf%s…", rows[i].name, error->message, rows[i].want);
    }
    fbl_test_rows_done();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_days),
        cmocka_unit_test(test_bool),
        cmocka_unit_test_setup_teardown(test_every_group, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_print_reloads, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_print_every_key, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_refused, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_imap_mailbox, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
