/* The ingest workers alone: started on a free loopback port with real TLS
 * (certificates made by the real iotctl), the real identity snapshot and a
 * real outbox in a temporary directory, and spoken to by an OpenSSL client
 * holding a device certificate. No broker: what is stored is read back
 * from the outbox file.
 *
 * Each test starts its own workers and outbox, so counters are compared
 * before and after, and rows are those of one test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "app.h"
#include "gw_test.h"
#include "admission.h"
#include "ingest.h"
#include "metrics.h"
#include "outbox.h"
#include "tls.h"

#define WAIT_LIMIT_S 60 /* a hang, not a speed: every wait ends on a condition */
#define ANSWER_MAX   8192

static char dir[64];
static char pki[96];
static int test_no;

typedef struct ingest_rig {
    gw_app app;
    gw_ingest *ingest;
    int port;
    char listen[32];
    char outbox_path[160];
    char cert[160], key[160], ca[160], crl[160], registry[160];
    bool stopped;
} ingest_rig;

typedef struct answer {
    char text[ANSWER_MAX + 1];
    size_t len;
    bool closed; /* the gateway ended the connection */
    int status;
} answer;

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    /* A guard against a hang, not a measured time. */
    struct timeval tv = {WAIT_LIMIT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-ingest.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(pki, sizeof(pki), "%s/pki", dir);
    /* As main.c: the outbox wakes the workers' loops from its thread. */
    if (evthread_use_pthreads() != 0)
        return -1;
    return gwt_sh("%s --dir %s pki init >/dev/null && "
                  "%s --dir %s cert server gateway --dns localhost --ip 127.0.0.1 >/dev/null && "
                  "%s --dir %s device add dev-1 >/dev/null && "
                  "%s --dir %s device add dev-2 >/dev/null",
                  IOTCTL, pki, IOTCTL, pki, IOTCTL, pki, IOTCTL, pki) == 0
               ? 0
               : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return gwt_sh("rm -rf %s", dir) == 0 ? 0 : -1;
}

/* Workers, admission snapshot, TLS and outbox as main.c builds them, with
 * the configuration's default values where the test does not care and
 * the test PKI. */
static int setup(void **state)
{
    ingest_rig *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -1;
    gw_app *app = &r->app;
    r->port = gwt_free_port();
    snprintf(r->listen, sizeof(r->listen), "127.0.0.1:%d", r->port);
    snprintf(r->cert, sizeof(r->cert), "%s/servers/gateway/cert.pem", pki);
    snprintf(r->key, sizeof(r->key), "%s/servers/gateway/key.pem", pki);
    snprintf(r->ca, sizeof(r->ca), "%s/ca.crt", pki);
    snprintf(r->crl, sizeof(r->crl), "%s/crl.pem", pki);
    snprintf(r->registry, sizeof(r->registry), "%s/registry.db", pki);
    snprintf(r->outbox_path, sizeof(r->outbox_path), "%s/outbox-%d.db", dir, ++test_no);
    app->opt = (gw_ingest_options){
        .listen = r->listen,
        .workers = 2,
        .tls = true,
        .require_client_cert = true,
        .max_connections = 100,
        .max_connections_per_address = 100,
        .connection_rate_per_address = 0, /* the tests connect often */
        .request_timeout_ms = 10000,
        .max_buffered_bytes = 1 << 20,
        .retry_after_s = 5,
        .topic_prefix = "telemetry",
        .mqtt_max_packet = 65536,
    };
    gw_payload_limits_default(&app->limits);
    iot_err err = {0};
    gw_admission_options iopt = {r->registry, r->crl, r->ca, 0};
    gw_tls_options topt = {.cert_path = r->cert,
                           .key_path = r->key,
                           .client_ca_path = r->ca,
                           .require_client_cert = true,
                           .max_connections_per_device = 4};
    app->ratelimit = gw_ratelimit_new(0, 0); /* no per-device rate limit */
    bool ok = app->ratelimit != NULL && r->port > 0 &&
              gw_admission_open(&iopt, &app->identity, &err) == IOT_OK &&
              gw_outbox_open(r->outbox_path, 1000, &app->outbox, &err) == IOT_OK &&
              gw_outbox_start(app->outbox, NULL, NULL, &err) == IOT_OK &&
              gw_tls_server_ctx(&topt, app->identity, &app->device_tls, &err) == IOT_OK &&
              gw_ingest_start(app, &r->ingest, &err) == IOT_OK;
    if (!ok)
        fprintf(stderr, "setup: %s\n", err.msg);
    *state = r;
    return ok ? 0 : -1;
}

/* main.c's order: stop taking requests and answer those in flight, let the
 * outbox commit what is queued, then free the workers. */
static void stop_ingest(ingest_rig *r)
{
    if (r->stopped)
        return;
    r->stopped = true;
    atomic_store(&r->app.draining, true);
    gw_ingest_stop(r->ingest, 10000);
    gw_outbox_close(r->app.outbox);
    r->app.outbox = NULL;
    gw_ingest_free(r->ingest);
    r->ingest = NULL;
}

static int teardown(void **state)
{
    ingest_rig *r = *state;
    if (r == NULL)
        return 0;
    if (r->ingest != NULL)
        stop_ingest(r);
    gw_outbox_close(r->app.outbox);
    gw_admission_close(r->app.identity);
    SSL_CTX_free(r->app.device_tls);
    gw_ratelimit_free(r->app.ratelimit);
    free(r);
    return 0;
}

/* ---------------------------------------------------------------- client */

typedef struct tls_client {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
} tls_client;

/* A TLS connection as `device`, handshake done. */
static void client_open(tls_client *t, int port, const char *device)
{
    char ca[160], cert[160], key[160];
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    snprintf(cert, sizeof(cert), "%s/devices/%s/cert.pem", pki, device);
    snprintf(key, sizeof(key), "%s/devices/%s/key.pem", pki, device);
    t->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(t->ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(t->ctx, ca, NULL), 1);
    assert_int_equal(SSL_CTX_use_certificate_file(t->ctx, cert, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM), 1);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    t->fd = connect_port(port);
    assert_true(t->fd >= 0);
    t->ssl = SSL_new(t->ctx);
    assert_non_null(t->ssl);
    SSL_set_fd(t->ssl, t->fd);
    SSL_set_tlsext_host_name(t->ssl, "localhost");
    assert_int_equal(SSL_set1_host(t->ssl, "localhost"), 1);
    assert_int_equal(SSL_connect(t->ssl), 1);
}

static void client_send(tls_client *t, const char *bytes)
{
    int len = (int)strlen(bytes);
    assert_int_equal(SSL_write(t->ssl, bytes, len), len);
}

/* Reads until the gateway closes the connection (every request here asks
 * it to, or is refused for good). */
static void client_read_all(tls_client *t, answer *a)
{
    memset(a, 0, sizeof(*a));
    for (;;) {
        int n = SSL_read(t->ssl, a->text + a->len, (int)(ANSWER_MAX - a->len));
        if (n > 0) {
            a->len += (size_t)n;
            if (a->len == ANSWER_MAX)
                break;
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        /* A clean close_notify, or the socket closed under TLS. */
        a->closed = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL;
        break;
    }
    ERR_clear_error();
    a->text[a->len] = '\0';
    if (sscanf(a->text, "HTTP/1.1 %d ", &a->status) != 1)
        a->status = 0;
}

static void client_close(tls_client *t)
{
    SSL_free(t->ssl);
    close(t->fd);
    SSL_CTX_free(t->ctx);
}

/* One request on a new connection as `device`, read to its close. */
static void exchange(int port, const char *device, const char *request, answer *a)
{
    tls_client t;
    client_open(&t, port, device);
    client_send(&t, request);
    client_read_all(&t, a);
    client_close(&t);
}

static void telemetry(char *buf, size_t size, const char *body, const char *extra)
{
    int n = snprintf(buf, size,
                     "POST /v1/telemetry HTTP/1.1\r\nHost: localhost\r\n"
                     "Content-Type: application/senml+json\r\nContent-Length: %zu\r\n%s\r\n%s",
                     strlen(body), extra, body);
    assert_true(n > 0 && (size_t)n < size);
}

/* ------------------------------------------------------------- outbox */

typedef struct rows {
    int n;
    char device[8][IOT_ID_MAX + 1];
    char body[8][512];
} rows;

static int keep_row(const gw_outbox_row *row, void *ctx)
{
    rows *r = ctx;
    if (r->n >= 8)
        return 1;
    snprintf(r->device[r->n], sizeof(r->device[0]), "%s", row->device);
    snprintf(r->body[r->n], sizeof(r->body[0]), "%.*s", (int)row->body_len, row->body);
    r->n++;
    return 0;
}

/* The rows in the outbox file, read by its own connection, as the
 * forwarder reads them. */
static void read_rows(const char *path, rows *out)
{
    memset(out, 0, sizeof(*out));
    gw_outbox_reader *reader = NULL;
    iot_err err = {0};
    assert_int_equal(gw_outbox_reader_open(path, &reader, &err), IOT_OK);
    int count = 0;
    assert_int_equal(gw_outbox_fetch(reader, 0, 8, keep_row, out, &count, &err), IOT_OK);
    assert_int_equal(count, out->n);
    gw_outbox_reader_close(reader);
}

static const char *header_of(const answer *a, const char *name)
{
    const char *end = strstr(a->text, "\r\n\r\n");
    for (const char *p = strstr(a->text, "\r\n"); p != NULL && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, strlen(name)) == 0 && p[2 + strlen(name)] == ':')
            return p + 2;
    }
    return NULL;
}

static const char *body_of(const answer *a)
{
    const char *end = strstr(a->text, "\r\n\r\n");
    return end != NULL ? end + 4 : "";
}

/* --------------------------------------------------------------- tests */

static const char READINGS[] =
    "[{\"bn\":\"dev-1:\",\"n\":\"temperature\",\"u\":\"Cel\",\"v\":21.5,\"seq\":1},"
    "{\"n\":\"temperature\",\"u\":\"Cel\",\"v\":21.75,\"seq\":2,\"t\":-10}]";

static void valid_post_is_stored(void **state)
{
    ingest_rig *r = *state;
    char req[1024];
    telemetry(req, sizeof(req), READINGS, "Connection: close\r\n");
    uint64_t requests = gw_metric_get(GW_M_REQUESTS);
    answer a;
    exchange(r->port, "dev-1", req, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(body_of(&a), "{\"stored\":2,\"duplicates\":0}\n");
    assert_true(gw_metric_get(GW_M_REQUESTS) == requests + 1);
    /* Acknowledged means durable: the rows are in the file now. */
    rows got;
    read_rows(r->outbox_path, &got);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.device[0], "dev-1");
    assert_string_equal(got.device[1], "dev-1");
    assert_non_null(strstr(got.body[0], "\"v\":21.5"));
    assert_non_null(strstr(got.body[1], "\"v\":21.75"));
    assert_non_null(strstr(got.body[0], "\"dseq\":1"));
}

/* dev-1's certificate, a body naming dev-2: refused, nothing stored. */
static void another_devices_body_is_refused(void **state)
{
    ingest_rig *r = *state;
    char req[1024];
    telemetry(req, sizeof(req), "[{\"bn\":\"dev-2:\",\"n\":\"temperature\",\"v\":1,\"seq\":1}]",
              "Connection: close\r\n");
    uint64_t before = gw_refusal_counter_get(GW_RC_IDENTITY_MISMATCH);
    answer a;
    exchange(r->port, "dev-1", req, &a);
    assert_int_equal(a.status, 403);
    assert_non_null(strstr(body_of(&a), "\"error\":\"identity_mismatch\""));
    assert_true(gw_refusal_counter_get(GW_RC_IDENTITY_MISMATCH) == before + 1);
    rows got;
    read_rows(r->outbox_path, &got);
    assert_int_equal(got.n, 0);
}

/* Two different Content-Length headers: where the request ends is not
 * known, so it is answered 400 in JSON and the connection closed, even
 * though the request asked to keep it. */
static void framing_error_closes(void **state)
{
    ingest_rig *r = *state;
    static const char req[] = "POST /v1/telemetry HTTP/1.1\r\nHost: localhost\r\n"
                              "Content-Type: application/senml+json\r\n"
                              "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"
                              "[{}]  GET / HTTP/1.1\r\n\r\n";
    uint64_t framing = gw_refusal_counter_get(GW_RC_HTTP_FRAMING);
    uint64_t protocol = gw_refusal_counter_get(GW_RC_HTTP_PROTOCOL);
    answer a;
    exchange(r->port, "dev-1", req, &a);
    assert_int_equal(a.status, 400);
    assert_true(a.closed);
    const char *ctype = header_of(&a, "Content-Type");
    assert_non_null(ctype);
    assert_int_equal(strncmp(ctype, "Content-Type: application/json\r\n", 32), 0);
    const char *conn = header_of(&a, "Connection");
    assert_non_null(conn);
    assert_int_equal(strncmp(conn, "Connection: close\r\n", 19), 0);
    assert_non_null(strstr(body_of(&a), "\"error\":\"invalid_framing\""));
    /* One answer: the bytes after the headers were not read as a request. */
    assert_null(strstr(body_of(&a), "HTTP/1.1"));
    assert_true(gw_refusal_counter_get(GW_RC_HTTP_FRAMING) == framing + 1);
    assert_true(gw_refusal_counter_get(GW_RC_HTTP_PROTOCOL) == protocol);
    rows got;
    read_rows(r->outbox_path, &got);
    assert_int_equal(got.n, 0);
}

/* A request stored when the shutdown begins is answered before the workers
 * stop, and its rows stay; then nothing listens. */
static void shutdown_drains(void **state)
{
    ingest_rig *r = *state;
    char req[1024];
    telemetry(req, sizeof(req), READINGS, "");
    tls_client t;
    client_open(&t, r->port, "dev-1");
    client_send(&t, req);
    /* The outbox has committed it: the answer is decided, maybe not sent. */
    struct timespec pause = {0, 5 * 1000 * 1000};
    for (int i = 0; i < WAIT_LIMIT_S * 200 && gw_outbox_depth(r->app.outbox) < 2; i++)
        nanosleep(&pause, NULL);
    assert_int_equal(gw_outbox_depth(r->app.outbox), 2);
    stop_ingest(r);
    answer a;
    client_read_all(&t, &a);
    client_close(&t);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(body_of(&a), "{\"stored\":2,\"duplicates\":0}"));
    assert_true(a.closed); /* the workers closed it on the way out */
    rows got;
    read_rows(r->outbox_path, &got);
    assert_int_equal(got.n, 2);
    int fd = connect_port(r->port);
    if (fd >= 0)
        close(fd);
    assert_int_equal(fd, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(valid_post_is_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(another_devices_body_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(framing_error_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(shutdown_drains, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
