/* The gateway configuration, on memory only: defaults, a complete text,
 * every kind of malformed line with the message it must produce, quoting,
 * comments, CRLF, validation (which opens no file: the paths below do not
 * exist), the development mode warnings, the paths handed to the file
 * checks, and the committed example file and option reference that must
 * match the option table. Reading the file and checking the files it
 * names: test_config_files.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_test.h"
#include "config.h"
#include "config_parse.h"
#include "iot/fsutil.h"
#include "iotd/protocol.h"

#define ORIGIN "t.conf"
#define BIG    (128 * 1024)

/* A directory that does not exist: validation must not look. */
static const char dir[] = "/nonexistent/iotgw-test";

/* The files a valid configuration names; none of them exists. */
static const char *const required_keys[] = {
    "tls_cert",  "tls_key", "client_ca", "crl_file", "registry",
    "mqtt_host", "mqtt_ca", "mqtt_cert", "mqtt_key",
};

static const char *const all_keys[] = {
    "device_listen",
    "device_tls",
    "require_client_cert",
    "tls_cert",
    "tls_key",
    "client_ca",
    "crl_file",
    "registry",
    "workers",
    "request_timeout",
    "tls_session_lifetime",
    "max_connections",
    "max_connections_per_address",
    "max_connections_per_device",
    "max_buffered_bytes",
    "connection_rate_per_address",
    "connection_burst_per_address",
    "proxy_protocol_from",
    "reload_interval",
    "admin_listen",
    "admin_remote",
    "admin_token_file",
    "admin_max_connections",
    "max_body",
    "max_depth",
    "max_records",
    "max_readings",
    "past_window",
    "future_window",
    "rate_limit",
    "rate_burst",
    "outbox",
    "outbox_max",
    "outbox_max_bytes",
    "outbox_device_share",
    "retry_after",
    "acknowledge",
    "confirm_timeout",
    "rollouts",
    "firmware_dir",
    "est_ca_cert",
    "est_ca_key",
    "est_bootstrap_ca",
    "est_cert_lifetime",
    "est_renewal_grace",
    "est_require_approval",
    "est_retry_after",
    "est_max_failures",
    "est_failure_window",
    "cert_expiry_warning",
    "security_events",
    "security_outbox",
    "security_outbox_max",
    "security_event_window",
    "fleet_inventory",
    "device_silent_after",
    "shared_state",
    "shared_state_ca",
    "shared_state_cert",
    "shared_state_key",
    "shared_state_poll",
    "mqtt_host",
    "mqtt_port",
    "mqtt_protocol",
    "mqtt_ca",
    "mqtt_cert",
    "mqtt_key",
    "mqtt_client_id",
    "topic_prefix",
    "mqtt_keepalive",
    "mqtt_inflight",
    "mqtt_max_packet",
    "reconnect_min",
    "reconnect_max",
    "log_level",
    "development_mode",
};

/* Writes the required keys, pointing at the scratch files, into buf. */
static void required_text(char *buf, size_t size)
{
    gwt_required_text(buf, size, dir, "localhost");
}

static void valid_config(gw_config *cfg)
{
    char text[4096];
    required_text(text, sizeof(text));
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, cfg, &err), IOT_OK);
}

/* ------------------------------------------------------------------------ */

static void defaults_are_the_documented_ones(void **state)
{
    (void)state;
    gw_config c;
    memset(&c, 0xa5, sizeof(c));
    gw_config_defaults(&c);
    assert_string_equal(c.device_listen, "0.0.0.0:8443");
    assert_true(c.device_tls);
    assert_true(c.require_client_cert);
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.tls_key, "");
    assert_string_equal(c.client_ca, "");
    assert_string_equal(c.crl_file, "");
    assert_string_equal(c.registry, "");
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.request_timeout_ms, 10000);
    assert_int_equal(c.max_connections, 20000);
    assert_int_equal(c.reload_interval_ms, 2000);
    assert_string_equal(c.proxy_protocol_from, ""); /* off: no PROXY headers taken */
    assert_string_equal(c.admin_listen, "127.0.0.1:9100");
    /* The payload defaults are the protocol's (docs/protocol.md). */
    assert_int_equal(c.max_body, IOTD_PROTOCOL_BODY_MAX);
    assert_int_equal(c.max_depth, IOTD_PROTOCOL_DEPTH_MAX);
    assert_int_equal(c.max_records, IOTD_PROTOCOL_RECORDS_MAX);
    assert_int_equal(c.max_readings, IOTD_PROTOCOL_READINGS_MAX);
    assert_int_equal(c.past_window_ms, IOTD_PROTOCOL_PAST_WINDOW_S * 1000LL);
    assert_int_equal(c.future_window_ms, IOTD_PROTOCOL_FUTURE_WINDOW_S * 1000LL);
    assert_true(c.rate_limit == 10.0);
    assert_true(c.rate_burst == 20.0);
    assert_string_equal(c.outbox, "/var/lib/iotgw/outbox.db");
    assert_int_equal(c.outbox_max, 1000000);
    assert_int_equal(c.retry_after_s, 5);
    assert_string_equal(c.mqtt_host, "");
    assert_int_equal(c.mqtt_port, 8883);
    assert_string_equal(c.mqtt_ca, "");
    assert_string_equal(c.mqtt_cert, "");
    assert_string_equal(c.mqtt_key, "");
    assert_string_equal(c.mqtt_client_id, "");
    assert_string_equal(c.topic_prefix, "telemetry");
    assert_int_equal(c.mqtt_keepalive_ms, 30000);
    assert_int_equal(c.mqtt_inflight, 256);
    assert_int_equal(c.reconnect_min_ms, 500);
    assert_int_equal(c.reconnect_max_ms, 30000);
    assert_string_equal(c.log_level, "info");
    assert_false(c.development_mode);
}

static void defaults_need_only_the_required_keys(void **state)
{
    (void)state;
    gw_config c;
    gw_config_defaults(&c);
    iot_err err = {0};
    /* The defaults alone are incomplete: the first required key is named. */
    assert_int_equal(gw_config_validate(&c, NULL, NULL, &err), IOT_EINVAL);
    gwt_assert_contains(err.msg, "required key 'tls_cert' is not set");
    valid_config(&c);
    gwt_warnings w = {0};
    assert_int_equal(gw_config_validate(&c, gwt_collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 0);
}

static void full_file_sets_every_key(void **state)
{
    (void)state;
    char req[4096];
    char text[8192];
    gwt_required_text(req, sizeof(req), dir, "2001:db8::1");
    int n = snprintf(text, sizeof(text),
                     "# every key, none at its default\n"
                     "%s"
                     "device_listen = [::1]:9443\n"
                     "device_tls = no\n"
                     "require_client_cert = false\n"
                     "workers = 3\n"
                     "request_timeout = 1500ms\n"
                     "max_connections = 500\n"
                     "reload_interval = 0\n"
                     "admin_listen = \"\"\n"
                     "max_body = 64 KiB\n"
                     "max_depth = 6\n"
                     "max_records = 1000\n"
                     "max_readings = 100\n"
                     "past_window = 30d\n"
                     "future_window = 90s\n"
                     "rate_limit = 2.5\n"
                     "rate_burst = 5\n"
                     "outbox_max = 5000\n"
                     "retry_after = 2m\n"
                     "mqtt_port = 18883\n"
                     "mqtt_client_id = gw-test.1\n"
                     "topic_prefix = site-1/plant_2\n"
                     "mqtt_keepalive = 1m\n"
                     "mqtt_inflight = 32\n"
                     "reconnect_min = 1s\n"
                     "reconnect_max = 1h\n"
                     "log_level = debug\n"
                     "development_mode = on\n",
                     req);
    assert_true(n > 0 && (size_t)n < sizeof(text));

    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, &c, &err), IOT_OK);
    char path[256];
    gwt_path_of(path, sizeof(path), dir, "tls.crt");
    assert_string_equal(c.tls_cert, path);
    gwt_path_of(path, sizeof(path), dir, "mq.key");
    assert_string_equal(c.mqtt_key, path);
    assert_string_equal(c.device_listen, "[::1]:9443");
    assert_false(c.device_tls);
    assert_false(c.require_client_cert);
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.request_timeout_ms, 1500);
    assert_int_equal(c.max_connections, 500);
    assert_int_equal(c.reload_interval_ms, 0);
    assert_string_equal(c.admin_listen, "");
    assert_int_equal(c.max_body, 65536);
    assert_int_equal(c.max_depth, 6);
    assert_int_equal(c.max_records, 1000);
    assert_int_equal(c.max_readings, 100);
    assert_int_equal(c.past_window_ms, 30LL * 86400000);
    assert_int_equal(c.future_window_ms, 90000);
    assert_true(c.rate_limit == 2.5);
    assert_true(c.rate_burst == 5.0);
    assert_int_equal(c.outbox_max, 5000);
    assert_int_equal(c.retry_after_s, 120);
    assert_string_equal(c.mqtt_host, "2001:db8::1");
    assert_int_equal(c.mqtt_port, 18883);
    assert_string_equal(c.mqtt_client_id, "gw-test.1");
    assert_string_equal(c.topic_prefix, "site-1/plant_2");
    assert_int_equal(c.mqtt_keepalive_ms, 60000);
    assert_int_equal(c.mqtt_inflight, 32);
    assert_int_equal(c.reconnect_min_ms, 1000);
    assert_int_equal(c.reconnect_max_ms, 3600000);
    assert_string_equal(c.log_level, "debug");
    assert_true(c.development_mode);

    /* Valid as a whole: development mode turns the two insecure settings
     * into warnings. */
    gwt_warnings w = {0};
    assert_int_equal(gw_config_validate(&c, gwt_collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 2);
    assert_true(gwt_warned(&w, "device_tls"));
    assert_true(gwt_warned(&w, "require_client_cert"));
}

typedef struct bad_case {
    const char *text;
    const char *frag[4];
} bad_case;

static void check_bad(const char *text, size_t len, iot_status want, const char *const *frag,
                      size_t nfrag)
{
    gw_config c;
    gw_config_defaults(&c);
    c.workers = 77; /* a failed parse leaves the struct alone */
    iot_err err = {0};
    iot_status st = gw_config_parse(text, len, ORIGIN, &c, &err);
    if (st != want)
        fail_msg("'%s': status %d, want %d (%s)", text, st, want, err.msg);
    for (size_t i = 0; i < nfrag && frag[i] != NULL; i++)
        gwt_assert_contains(err.msg, frag[i]);
    assert_int_equal(c.workers, 77);
    /* Messages are one line of printable ASCII. */
    for (const char *p = err.msg; *p != '\0'; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

static void bad_lines_name_origin_line_key_and_value(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"workers = 12abc",
         {"invalid value '12abc' for 'workers' at t.conf:1", "not a whole number",
          "allowed: 0 to 256"}},
        {"workers = 0x10", {"'0x10' for 'workers'", "not a whole number"}},
        {"workers = +5", {"'+5' for 'workers'", "not a whole number"}},
        {"workers = 4.5", {"'4.5' for 'workers'"}},
        {"workers =", {"'' for 'workers' at t.conf:1", "not a whole number"}},
        {"workers = 257", {"'257' for 'workers'", "out of range", "0 to 256"}},
        {"workers = -1", {"'-1' for 'workers'", "out of range"}},
        {"workers = 99999999999999999999", {"for 'workers'", "number too large"}},
        {"mqtt_port = 0", {"'0' for 'mqtt_port'", "out of range", "1 to 65535"}},
        {"mqtt_port = 65536", {"'65536' for 'mqtt_port'", "out of range"}},
        {"request_timeout = 10", {"'10' for 'request_timeout'", "needs a unit", "ms, s, m, h, d"}},
        {"request_timeout = 10 sec", {"'10 sec' for 'request_timeout'", "unknown unit"}},
        {"request_timeout = 50ms", {"'50ms'", "out of range", "100ms to 10m"}},
        {"request_timeout = -1s", {"'-1s'", "not a duration"}},
        {"past_window = 99999999999999999d", {"'past_window'", "number too large"}},
        {"reload_interval = 50ms",
         {"'reload_interval'", "out of range", "0 (off), or 100ms to 1d"}},
        {"retry_after = 1500ms", {"'retry_after'", "whole number of seconds"}},
        {"mqtt_keepalive = 4s",
         {"'mqtt_keepalive'", "out of range", "5s to 65535s", "whole seconds"}},
        {"max_body = 16KB", {"'16KB' for 'max_body'", "unknown unit", "B, KiB, MiB, GiB"}},
        {"max_body = 2MiB", {"'max_body'", "out of range", "256B to 1MiB"}},
        {"max_body = 4096", {"'max_body'", "needs a unit"}},
        {"proxy_protocol_from = 10.0.0.1, 10.0.0.256",
         {"'10.0.0.1, 10.0.0.256' for 'proxy_protocol_from'", "'10.0.0.256' is not an IP"}},
        {"proxy_protocol_from = 10.0.0.0/40", {"'10.0.0.0/40' is not an IP address or CIDR"}},
        {"rate_limit = nan", {"'nan' for 'rate_limit'", "not a number"}},
        {"rate_limit = inf", {"'inf'", "not a number"}},
        {"rate_limit = 1e999", {"'1e999'", "out of range"}},
        {"rate_limit = 0x10", {"'0x10'", "not a number"}},
        {"rate_limit = -1", {"'-1' for 'rate_limit'", "out of range", "0 to 1000"}},
        {"rate_limit = 1..2", {"'1..2'", "not a number"}},
        {"device_tls = maybe", {"'maybe' for 'device_tls'", "not a boolean", "yes or no"}},
        {"device_tls = Yes", {"'Yes' for 'device_tls'"}},
        {"log_level = verbose", {"'verbose' for 'log_level'", "debug, info, warn, error"}},
        {"device_listen = 0.0.0.0", {"'0.0.0.0' for 'device_listen'", "missing ':port'"}},
        {"device_listen = :8443", {"missing host"}},
        {"device_listen = 0.0.0.0:0", {"port must be 1-65535"}},
        {"device_listen = 0.0.0.0:65536", {"port must be 1-65535"}},
        {"device_listen = 0.0.0.0:84x", {"port must be a number"}},
        {"device_listen = 0.0.0.0:", {"missing port"}},
        {"device_listen = ::1:8443", {"needs brackets"}},
        {"device_listen = [::1]8443", {"missing ':port' after ']'"}},
        {"device_listen = [::1:8443", {"missing ']'"}},
        {"device_listen = [1.2.3.4]:80", {"not a valid IPv6 address"}},
        {"device_listen = [fe80::1%eth0]:80", {"not a valid IPv6 address"}},
        {"device_listen = 256.1.1.1:80", {"not a valid IPv4 address"}},
        {"device_listen = -gw.example.org:80", {"starts or ends with '-'"}},
        {"device_listen = gw..example.org:80", {"empty label"}},
        {"device_listen = gw_1.example.org:80", {"not an IP address or host name"}},
        {"admin_listen = localhost", {"'admin_listen'", "or \"\" (off)"}},
        {"mqtt_host = bad!host", {"'bad!host' for 'mqtt_host'", "not an IP address or host name"}},
        {"mqtt_host = [::1]", {"without brackets"}},
        {"mqtt_host = 1::2::3", {"not a valid IPv6 address"}},
        {"mqtt_host = \"\"", {"'mqtt_host'", "must not be empty"}},
        {"topic_prefix = /a", {"'/a' for 'topic_prefix'", "leading or trailing '/'"}},
        {"topic_prefix = a/", {"leading or trailing '/'"}},
        {"topic_prefix = a//b", {"empty topic segment"}},
        {"topic_prefix = a/+/b", {"MQTT wildcards"}},
        {"topic_prefix = \"a/#\"", {"'a/#' for 'topic_prefix'", "MQTT wildcards"}},
        {"topic_prefix = a/# a comment cuts the value", {"'a/' for 'topic_prefix'"}},
        {"topic_prefix = $SYS/x", {"'$' at the start"}},
        {"topic_prefix = \"a b\"", {"character outside"}},
        {"topic_prefix = \"\"", {"must not be empty"}},
        {"mqtt_client_id = gw/1", {"'gw/1' for 'mqtt_client_id'", "character outside"}},
        {"outbox = \"/var/x", {"unterminated quote in the value of 'outbox' at t.conf:1"}},
        {"outbox = \"/a\" b",
         {"unexpected text 'b' after the quoted value of 'outbox' at t.conf:1"}},
        {"outbox = /a\"b\"", {"stray '\"' in the value of 'outbox' at t.conf:1"}},
        {"outbox = \"\"", {"'outbox'", "must not be empty"}},
        {"workers 4", {"missing '=' at t.conf:1 in 'workers 4'"}},
        {" = 4", {"missing key before '=' at t.conf:1"}},
        {"workers = 1\n# again\nworkers = 2",
         {"duplicate key 'workers' at t.conf:3", "already set at line 1"}},
        {"Workers = 1", {"unknown key 'Workers' at t.conf:1", "did you mean 'workers'?"}},
        {"request_timeout_ms = 10s", {"unknown key 'request_timeout_ms'", "'request_timeout'?"}},
        {"frobnicate = 1", {"unknown key 'frobnicate' at t.conf:1", "iotgw.conf.example"}},
        {"mqtt_host = caf\xc3\xa9",
         {"invalid value 'caf?"
          "?' for 'mqtt_host'"}},
        {"mqtt_host = a\x07"
         "b",
         {"control character 0x07 in column 14", "'mqtt_host'", "t.conf:1"}},
        {"\n\nworkers = 1\r2", {"control character 0x0d", "'workers' at t.conf:3"}},
        {"workers\x1b[31m = 1", {"control character 0x1b", "at t.conf:1"}},
        {"log_level = info\x7f", {"control character 0x7f"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_bad(cases[i].text, strlen(cases[i].text), IOT_EINVAL, cases[i].frag, 4);
}

/* The brief's example message, word for word. */
static void unknown_key_suggests_the_nearest(void **state)
{
    (void)state;
    char text[512] = "";
    for (int i = 1; i < 12; i++)
        strncat(text, "# comment\n", sizeof(text) - strlen(text) - 1);
    strncat(text, "mqtt_hots = broker\n", sizeof(text) - strlen(text) - 1);
    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), "iotgw.conf", &c, &err), IOT_EINVAL);
    assert_string_equal(err.msg, "unknown key 'mqtt_hots' at iotgw.conf:12; did you mean "
                                 "'mqtt_host'?");
    assert_int_equal(gw__edit_distance("mqtt_hots", "mqtt_host"), 2);
    assert_int_equal(gw__edit_distance("MQTT_PORT", "mqtt_port"), 0);
    assert_int_equal(gw__edit_distance("", "abc"), 3);
}

static void nul_bytes_and_long_lines_are_refused(void **state)
{
    (void)state;
    static const char nul[] = "workers = 1\nlog_level = in\0fo\n";
    const char *f1[] = {"NUL byte", "'log_level' at t.conf:2"};
    check_bad(nul, sizeof(nul) - 1, IOT_EINVAL, f1, 2);

    /* 1024 bytes is the longest line; CR LF do not count. */
    char *text = malloc(BIG);
    assert_non_null(text);
    memset(text, ' ', 1024);
    text[0] = '#';
    memcpy(text + 1024, "\r\nworkers = 2\n", 15);
    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, &c, &err), IOT_OK);
    assert_int_equal(c.workers, 2);
    memset(text, 'x', 1025);
    memcpy(text, "outbox = /", 10);
    memcpy(text + 1025, "\n", 2);
    const char *f2[] = {"line longer than 1024 bytes", "'outbox' at t.conf:1"};
    check_bad(text, strlen(text), IOT_EINVAL, f2, 2);

    /* A value longer than its field. */
    memset(text, 'a', 600);
    memcpy(text, "tls_cert = /", 12);
    text[600] = '\0';
    const char *f3[] = {"for 'tls_cert' at t.conf:1", "too long (589 bytes, at most 511)", "..."};
    check_bad(text, strlen(text), IOT_EINVAL, f3, 3);

    /* The text as a whole is capped at 64 KiB, comments included. */
    memset(text, '\n', BIG);
    const char *f4[] = {"t.conf is 65537 bytes; the limit is 65536"};
    check_bad(text, 65537, IOT_ENOMEM, f4, 1);
    assert_int_equal(gw_config_parse(text, 65536, ORIGIN, &c, &err), IOT_OK);
    free(text);
}

static void quoting_keeps_blanks_and_hashes(void **state)
{
    (void)state;
    static const char text[] = "outbox = \"/var/lib/my outbox/o#1.db\"   # where readings wait\n"
                               "mqtt_client_id = \"\"\n"
                               "admin_listen=\"\"\n"
                               "topic_prefix = \"plant/a\"#no blank needed before the comment\n"
                               "log_level = \"warn\"\n"
                               "workers = 4 # four threads\n"
                               "\tmax_depth\t=\t8\t\n";
    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, &c, &err), IOT_OK);
    assert_string_equal(c.outbox, "/var/lib/my outbox/o#1.db");
    assert_string_equal(c.mqtt_client_id, "");
    assert_string_equal(c.admin_listen, "");
    assert_string_equal(c.topic_prefix, "plant/a");
    assert_string_equal(c.log_level, "warn");
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.max_depth, 8);
}

static void comments_and_blank_lines_are_ignored(void **state)
{
    (void)state;
    static const char text[] = "\xEF\xBB\xBF# a byte order mark first, then a comment\n"
                               "\n"
                               "   \t \n"
                               "    # indented comment with = and \"quote\n"
                               "#workers = 9\n"
                               "max_depth = 5\n"
                               "# last line without a newline\n"
                               "mqtt_port = 1883";
    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, &c, &err), IOT_OK);
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.max_depth, 5);
    assert_int_equal(c.mqtt_port, 1883);
    assert_int_equal(gw_config_parse("", 0, ORIGIN, &c, &err), IOT_OK);
    assert_int_equal(c.max_depth, 4);
}

static void crlf_line_endings_are_accepted(void **state)
{
    (void)state;
    static const char text[] = "# written on Windows\r\n"
                               "outbox = /srv/o.db\r\n"
                               "topic_prefix = \"x/y\"\r\n"
                               "\r\n"
                               "workers = 2\r\n";
    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, &c, &err), IOT_OK);
    assert_string_equal(c.outbox, "/srv/o.db");
    assert_string_equal(c.topic_prefix, "x/y");
    assert_int_equal(c.workers, 2);
    /* Line numbers still count CR LF as one line end. */
    static const char bad[] = "workers = 2\r\nworkers = 3\r\n";
    const char *f[] = {"duplicate key 'workers' at t.conf:2"};
    check_bad(bad, strlen(bad), IOT_EINVAL, f, 1);
}

/* ------------------------------------------------------------------------ */
/* validation                                                                */

static void validate_expect(const gw_config *c, iot_status want, const char *f1, const char *f2)
{
    iot_err err = {0};
    iot_status st = gw_config_validate(c, NULL, NULL, &err);
    if (st != want)
        fail_msg("status %d, want %d (%s)", st, want, err.msg);
    if (f1 != NULL)
        gwt_assert_contains(err.msg, f1);
    if (f2 != NULL)
        gwt_assert_contains(err.msg, f2);
}

static char *field_of(gw_config *c, const char *key)
{
    static const struct {
        const char *key;
        size_t offset;
    } map[] = {
        {"tls_cert", offsetof(gw_config, tls_cert)},
        {"tls_key", offsetof(gw_config, tls_key)},
        {"client_ca", offsetof(gw_config, client_ca)},
        {"crl_file", offsetof(gw_config, crl_file)},
        {"registry", offsetof(gw_config, registry)},
        {"mqtt_host", offsetof(gw_config, mqtt_host)},
        {"mqtt_ca", offsetof(gw_config, mqtt_ca)},
        {"mqtt_cert", offsetof(gw_config, mqtt_cert)},
        {"mqtt_key", offsetof(gw_config, mqtt_key)},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].key, key) == 0)
            return (char *)c + map[i].offset;
    }
    fail_msg("no field for %s", key);
    return NULL;
}

static void validate_requires_every_required_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(required_keys) / sizeof(required_keys[0]); i++) {
        gw_config c;
        valid_config(&c);
        field_of(&c, required_keys[i])[0] = '\0';
        char want[64];
        snprintf(want, sizeof(want), "required key '%s' is not set", required_keys[i]);
        validate_expect(&c, IOT_EINVAL, want, NULL);
    }
}

static void insecure_settings_need_development_mode(void **state)
{
    (void)state;
    gw_config c;
    valid_config(&c);
    c.require_client_cert = false;
    validate_expect(&c, IOT_EPERM, "require_client_cert = no", "development_mode = yes");
    c.device_tls = false;
    validate_expect(&c, IOT_EPERM, "device_tls = no", "development_mode = yes");
    c.require_client_cert = true;
    validate_expect(&c, IOT_EINVAL, "device_tls = no cannot be combined",
                    "require_client_cert = yes");
    c.development_mode = true;
    validate_expect(&c, IOT_EINVAL, "device_tls = no cannot be combined", NULL);

    c.require_client_cert = false;
    gwt_warnings w = {0};
    iot_err err = {0};
    assert_int_equal(gw_config_validate(&c, gwt_collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.key[0], "device_tls");
    gwt_assert_contains(w.msg[0], "plaintext");
    assert_string_equal(w.key[1], "require_client_cert");
    gwt_assert_contains(w.msg[1], "X-Device-Id");

    /* development_mode alone, with secure settings, warns about nothing. */
    valid_config(&c);
    c.development_mode = true;
    memset(&w, 0, sizeof(w));
    assert_int_equal(gw_config_validate(&c, gwt_collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 0);

    /* Balancers named one by one: no warning; every address: a warning. */
    valid_config(&c);
    snprintf(c.proxy_protocol_from, sizeof(c.proxy_protocol_from), "10.0.0.5, 10.0.1.0/24");
    memset(&w, 0, sizeof(w));
    assert_int_equal(gw_config_validate(&c, gwt_collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 0);
    snprintf(c.proxy_protocol_from, sizeof(c.proxy_protocol_from), "10.0.0.5 ::/0");
    assert_int_equal(gw_config_validate(&c, gwt_collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.key[0], "proxy_protocol_from");
    gwt_assert_contains(w.msg[0], "any client can claim any address");
}

static void validate_checks_related_limits(void **state)
{
    (void)state;
    gw_config c;
    valid_config(&c);
    c.reconnect_min_ms = 60000;
    c.reconnect_max_ms = 30000;
    validate_expect(&c, IOT_EINVAL, "reconnect_min (1m) is greater than reconnect_max (30s)", NULL);
    c.reconnect_min_ms = 30000;
    validate_expect(&c, IOT_OK, NULL, NULL);

    c.rate_burst = 0.5;
    validate_expect(&c, IOT_EINVAL, "rate_burst is 0.5", "at least 1 when rate_limit is on");
    c.rate_limit = 0;
    validate_expect(&c, IOT_OK, NULL, NULL);

    /* The same text-level rules apply to a struct built in code. */
    valid_config(&c);
    c.workers = -1;
    validate_expect(&c, IOT_EINVAL, "invalid value for 'workers': out of range", "0 to 256");
    valid_config(&c);
    c.retry_after_s = 7200;
    validate_expect(&c, IOT_EINVAL, "'retry_after': out of range", "1s to 1h");
    valid_config(&c);
    c.max_body = (size_t)-1;
    validate_expect(&c, IOT_EINVAL, "'max_body': out of range", NULL);
    valid_config(&c);
    snprintf(c.topic_prefix, sizeof(c.topic_prefix), "a//b");
    validate_expect(&c, IOT_EINVAL, "'topic_prefix': empty topic segment", NULL);
    valid_config(&c);
    snprintf(c.log_level, sizeof(c.log_level), "loud");
    validate_expect(&c, IOT_EINVAL, "'log_level'", "debug, info, warn, error");
    valid_config(&c);
    memset(c.device_listen, 'a', sizeof(c.device_listen));
    validate_expect(&c, IOT_EINVAL, "'device_listen': not terminated", NULL);
    valid_config(&c);
    c.rate_limit = 1e9;
    validate_expect(&c, IOT_EINVAL, "'rate_limit': out of range", NULL);
    valid_config(&c);
    snprintf(c.rollouts, sizeof(c.rollouts), "/var/lib/iotgw/rollouts.db");
    validate_expect(&c, IOT_EINVAL, "rollouts and firmware_dir", "set both");
    snprintf(c.firmware_dir, sizeof(c.firmware_dir), "/var/lib/iotgw/firmware");
    validate_expect(&c, IOT_OK, NULL, NULL);
    c.rollouts[0] = '\0';
    validate_expect(&c, IOT_EINVAL, "rollouts and firmware_dir", "or neither");
}

/* Validation is about values: files that do not exist pass it, and the
 * checks of gw_config_check_files are not made here. */
static void validate_opens_no_file(void **state)
{
    (void)state;
    gw_config c;
    valid_config(&c);
    assert_string_equal(c.tls_key, "/nonexistent/iotgw-test/tls.key");
    snprintf(c.admin_token_file, sizeof(c.admin_token_file), "%s", "/nonexistent/token");
    c.admin_remote = true;
    snprintf(c.admin_listen, sizeof(c.admin_listen), "%s", "0.0.0.0:9100");
    validate_expect(&c, IOT_OK, NULL, NULL);
}

/* The paths the file checks get from the table: every file option with
 * what it needs, in the table's order, located in the struct. */
static void paths_name_every_file_and_its_need(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        unsigned need;
    } want[] = {
        {"tls_cert", GW__NEED_READ},       {"tls_key", GW__NEED_READ | GW__NEED_PRIVATE},
        {"client_ca", GW__NEED_READ},      {"crl_file", GW__NEED_READ},
        {"registry", GW__NEED_READ},       {"outbox", GW__NEED_DIR},
        {"rollouts", GW__NEED_DIR},        {"security_outbox", GW__NEED_DIR},
        {"fleet_inventory", GW__NEED_DIR}, {"mqtt_ca", GW__NEED_READ},
        {"mqtt_cert", GW__NEED_READ},      {"mqtt_key", GW__NEED_READ | GW__NEED_PRIVATE},
    };
    const size_t n_want = sizeof(want) / sizeof(want[0]);
    gw_config c;
    valid_config(&c);
    gw__config_path paths[GW_CONFIG_OPTIONS_MAX];
    assert_int_equal(gw__config_paths(&c, paths, GW_CONFIG_OPTIONS_MAX), n_want);
    for (size_t i = 0; i < n_want; i++) {
        assert_string_equal(paths[i].key, want[i].key);
        assert_int_equal(paths[i].need, want[i].need);
    }
    assert_ptr_equal(paths[1].path, c.tls_key);
    assert_ptr_equal(paths[5].path, c.outbox);
    /* A short array is filled, never overrun. */
    memset(paths, 0, sizeof(paths));
    assert_int_equal(gw__config_paths(&c, paths, 2), 2);
    assert_null(paths[2].key);
}

/* Enrollment's files are checked only when set: the key as a key. */
static void est_paths_only_when_set(void **state)
{
    (void)state;
    gw_config c;
    valid_config(&c);
    gw__config_path paths[GW_CONFIG_OPTIONS_MAX];
    size_t off = gw__config_paths(&c, paths, GW_CONFIG_OPTIONS_MAX);
    snprintf(c.est_ca_cert, sizeof(c.est_ca_cert), "%s", "/e/issuer.pem");
    snprintf(c.est_ca_key, sizeof(c.est_ca_key), "%s", "/e/issuer.key");
    size_t on = gw__config_paths(&c, paths, GW_CONFIG_OPTIONS_MAX);
    assert_int_equal(on, off + 2);
    bool key_seen = false;
    for (size_t i = 0; i < on; i++)
        if (strcmp(paths[i].key, "est_ca_key") == 0) {
            assert_int_equal(paths[i].need, GW__NEED_READ | GW__NEED_PRIVATE);
            key_seen = true;
        }
    assert_true(key_seen);
    validate_expect(&c, IOT_OK, NULL, NULL);
    c.est_ca_key[0] = '\0';
    validate_expect(&c, IOT_EINVAL, "est_ca_cert", "go together");
    c.est_ca_cert[0] = '\0';
    snprintf(c.est_bootstrap_ca, sizeof(c.est_bootstrap_ca), "%s", "/e/boot.pem");
    validate_expect(&c, IOT_EINVAL, "est_bootstrap_ca", "needs enrollment on");
}

/* The etcd members come with the TLS files to reach them, and the files
 * only with the members; the key is checked as a key. */
static void shared_state_needs_its_tls_files(void **state)
{
    (void)state;
    gw_config c;
    valid_config(&c);
    snprintf(c.shared_state, sizeof(c.shared_state), "%s", "10.0.0.21 10.0.0.22:2379");
    validate_expect(&c, IOT_EINVAL, "shared_state_ca", "mutual TLS");
    snprintf(c.shared_state_ca, sizeof(c.shared_state_ca), "%s", "/s/ca.pem");
    snprintf(c.shared_state_cert, sizeof(c.shared_state_cert), "%s", "/s/cert.pem");
    validate_expect(&c, IOT_EINVAL, "shared_state_key", "mutual TLS");
    snprintf(c.shared_state_key, sizeof(c.shared_state_key), "%s", "/s/key.pem");
    validate_expect(&c, IOT_OK, NULL, NULL);
    gw__config_path paths[GW_CONFIG_OPTIONS_MAX];
    size_t n = gw__config_paths(&c, paths, GW_CONFIG_OPTIONS_MAX);
    bool key_seen = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(paths[i].key, "shared_state_key") == 0) {
            assert_int_equal(paths[i].need, GW__NEED_READ | GW__NEED_PRIVATE);
            key_seen = true;
        }
    assert_true(key_seen);
    c.shared_state[0] = '\0';
    validate_expect(&c, IOT_EINVAL, "shared_state_ca", "without shared_state");
}

/* The location prefix the file checks put before their messages. */
static void where_names_the_file_and_line(void **state)
{
    (void)state;
    static const char text[] = "workers = 2\n\ntls_key = /k\n";
    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, &c, &err), IOT_OK);
    char where[GW_PATH_MAX + 16];
    gw__config_where(&c, "tls_key", where, sizeof(where));
    assert_string_equal(where, "t.conf:3: ");
    gw__config_where(&c, "mqtt_key", where, sizeof(where));
    assert_string_equal(where, "t.conf: ");
    gw_config_defaults(&c);
    gw__config_where(&c, "tls_key", where, sizeof(where));
    assert_string_equal(where, "");
}

/* ------------------------------------------------------------------------ */
/* the example file and the documentation                                    */

static char *generated_example(size_t *len)
{
    size_t need = 0;
    char small[16];
    /* Too small: refused, and the size it needs is reported. */
    assert_int_equal(gw_config_write_example(small, sizeof(small), &need), IOT_ENOMEM);
    assert_true(need > 1000);
    char *buf = malloc(need + 1);
    assert_non_null(buf);
    assert_int_equal(gw_config_write_example(buf, need, len), IOT_ENOMEM);
    assert_int_equal(gw_config_write_example(buf, need + 1, len), IOT_OK);
    assert_int_equal(*len, need);
    assert_int_equal(strlen(buf), need);
    return buf;
}

static char *read_source(const char *rel, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", IOT_SOURCE_DIR, rel);
    char *data = NULL;
    iot_err err = {0};
    if (iot_file_read(path, 1024 * 1024, &data, len, &err) != IOT_OK)
        fail_msg("%s", err.msg);
    return data;
}

static void example_file_matches_the_table(void **state)
{
    (void)state;
    size_t glen = 0;
    size_t flen = 0;
    char *gen = generated_example(&glen);
    char *file = read_source("deploy/gateway/iotgw.conf.example", &flen);
    if (glen != flen || memcmp(gen, file, glen) != 0)
        fail_msg("deploy/gateway/iotgw.conf.example differs from the option table; regenerate "
                 "it with: gen_config_example > deploy/gateway/iotgw.conf.example");
    for (size_t i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "\n%s = ", all_keys[i]);
        if (strstr(gen, line) == NULL) {
            snprintf(line, sizeof(line), "\n#%s = ", all_keys[i]);
            gwt_assert_contains(gen, line);
        }
    }
    free(gen);
    free(file);
}

/* Uncommenting every "#key = value" line must give the defaults: the
 * example shows the values the daemon really uses. */
static void example_is_valid_and_shows_the_defaults(void **state)
{
    (void)state;
    size_t len = 0;
    char *gen = generated_example(&len);
    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_parse(gen, len, "example", &c, &err), IOT_OK);
    assert_string_equal(c.tls_key, "/etc/iotgw/tls/key.pem");
    assert_string_equal(c.mqtt_host, "broker.example.org");

    int uncommented = 0;
    for (char *line = gen; line != NULL;) {
        char *nl = strchr(line, '\n');
        char *eq = strstr(line, " = ");
        if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' && eq != NULL && nl != NULL &&
            eq < nl) {
            line[0] = ' ';
            uncommented++;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    assert_int_equal(uncommented, (int)(sizeof(all_keys) / sizeof(all_keys[0]) -
                                        sizeof(required_keys) / sizeof(required_keys[0])));
    gw_config all;
    assert_int_equal(gw_config_parse(gen, len, "example", &all, &err), IOT_OK);
    gw_config def;
    gw_config_defaults(&def);
    /* Same as the defaults apart from the placeholders of required keys. */
    for (size_t i = 0; i < sizeof(required_keys) / sizeof(required_keys[0]); i++) {
        memcpy(field_of(&def, required_keys[i]), field_of(&all, required_keys[i]),
               strlen(field_of(&all, required_keys[i])) + 1);
        assert_string_equal(field_of(&all, required_keys[i]), field_of(&c, required_keys[i]));
    }
    assert_string_equal(all.device_listen, def.device_listen);
    assert_string_equal(all.admin_listen, def.admin_listen);
    assert_string_equal(all.outbox, def.outbox);
    assert_string_equal(all.mqtt_client_id, def.mqtt_client_id);
    assert_string_equal(all.topic_prefix, def.topic_prefix);
    assert_string_equal(all.log_level, def.log_level);
    assert_int_equal(all.device_tls, def.device_tls);
    assert_int_equal(all.require_client_cert, def.require_client_cert);
    assert_int_equal(all.development_mode, def.development_mode);
    assert_int_equal(all.workers, def.workers);
    assert_int_equal(all.request_timeout_ms, def.request_timeout_ms);
    assert_int_equal(all.max_connections, def.max_connections);
    assert_int_equal(all.reload_interval_ms, def.reload_interval_ms);
    assert_int_equal(all.max_body, def.max_body);
    assert_int_equal(all.max_depth, def.max_depth);
    assert_int_equal(all.max_records, def.max_records);
    assert_int_equal(all.max_readings, def.max_readings);
    assert_int_equal(all.past_window_ms, def.past_window_ms);
    assert_int_equal(all.future_window_ms, def.future_window_ms);
    assert_true(all.rate_limit == def.rate_limit);
    assert_true(all.rate_burst == def.rate_burst);
    assert_int_equal(all.outbox_max, def.outbox_max);
    assert_int_equal(all.retry_after_s, def.retry_after_s);
    assert_int_equal(all.mqtt_port, def.mqtt_port);
    assert_int_equal(all.mqtt_keepalive_ms, def.mqtt_keepalive_ms);
    assert_int_equal(all.mqtt_inflight, def.mqtt_inflight);
    assert_int_equal(all.reconnect_min_ms, def.reconnect_min_ms);
    assert_int_equal(all.reconnect_max_ms, def.reconnect_max_ms);

    /* Its placeholders name files this machine lacks; validation does
     * not open them, so it passes as it is. */
    assert_int_equal(gw_config_validate(&c, NULL, NULL, &err), IOT_OK);
    free(gen);
}

static void docs_list_every_option(void **state)
{
    (void)state;
    static const char begin[] = "<!-- options:begin -->\n";
    static const char end[] = "<!-- options:end -->";
    size_t need = 0;
    assert_int_equal(gw__config_write_markdown(NULL, 0, &need), IOT_ENOMEM);
    char *table = malloc(need + 1);
    assert_non_null(table);
    assert_int_equal(gw__config_write_markdown(table, need + 1, &need), IOT_OK);
    size_t len = 0;
    char *doc = read_source("docs/configuration.md", &len);
    char *b = strstr(doc, begin);
    assert_non_null(b);
    b += strlen(begin);
    char *e = strstr(b, end);
    assert_non_null(e);
    if ((size_t)(e - b) != need || memcmp(b, table, need) != 0)
        fail_msg("the option reference in docs/configuration.md differs from the option table; "
                 "replace the text between the options markers with the output of "
                 "gen_config_example --markdown");
    for (size_t i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
        char cell[64];
        snprintf(cell, sizeof(cell), "| `%s` |", all_keys[i]);
        gwt_assert_contains(table, cell);
    }
    free(table);
    free(doc);
}

static void units_are_spelled_exactly(void **state)
{
    (void)state;
    char buf[32];
    gw__format_duration(7LL * 86400000, buf, sizeof(buf));
    assert_string_equal(buf, "7d");
    gw__format_duration(1500, buf, sizeof(buf));
    assert_string_equal(buf, "1500ms");
    gw__format_duration(90000, buf, sizeof(buf));
    assert_string_equal(buf, "90s");
    gw__format_size(16384, buf, sizeof(buf));
    assert_string_equal(buf, "16KiB");
    gw__format_size(1000, buf, sizeof(buf));
    assert_string_equal(buf, "1000B");
    int64_t v = 0;
    assert_null(gw__parse_size("1 GiB", &v));
    assert_int_equal(v, 1073741824);
    assert_null(gw__parse_duration("0", &v));
    assert_int_equal(v, 0);
    assert_non_null(gw__parse_duration("9223372036854775807ms0", &v));
    assert_null(gw__parse_int("-9223372036854775808", &v));
    assert_non_null(gw__parse_int("9223372036854775808", &v));
    char out[8];
    gw__sanitize("abc\x01"
                 "defghij",
                 11, out, sizeof(out));
    assert_string_equal(out, "abc?...");
    gw__sanitize("a\tb", 3, out, sizeof(out));
    assert_string_equal(out, "a?b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_documented_ones),
        cmocka_unit_test(defaults_need_only_the_required_keys),
        cmocka_unit_test(full_file_sets_every_key),
        cmocka_unit_test(bad_lines_name_origin_line_key_and_value),
        cmocka_unit_test(unknown_key_suggests_the_nearest),
        cmocka_unit_test(nul_bytes_and_long_lines_are_refused),
        cmocka_unit_test(quoting_keeps_blanks_and_hashes),
        cmocka_unit_test(comments_and_blank_lines_are_ignored),
        cmocka_unit_test(crlf_line_endings_are_accepted),
        cmocka_unit_test(validate_requires_every_required_key),
        cmocka_unit_test(insecure_settings_need_development_mode),
        cmocka_unit_test(validate_checks_related_limits),
        cmocka_unit_test(validate_opens_no_file),
        cmocka_unit_test(paths_name_every_file_and_its_need),
        cmocka_unit_test(est_paths_only_when_set),
        cmocka_unit_test(shared_state_needs_its_tls_files),
        cmocka_unit_test(where_names_the_file_and_line),
        cmocka_unit_test(example_file_matches_the_table),
        cmocka_unit_test(example_is_valid_and_shows_the_defaults),
        cmocka_unit_test(docs_list_every_option),
        cmocka_unit_test(units_are_spelled_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
