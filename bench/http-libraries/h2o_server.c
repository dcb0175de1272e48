/* h2o_server: the ingest endpoint on libh2o-evloop 2.2.5 (h2o's own event loop).
 *
 *   h2o_server --port P --cert FILE --key FILE --ca FILE [--threads N] [--addr A]
 *
 * POST /v1/telemetry reads the body (at most 4 KiB), reads the client
 * certificate's CN (the device ID) and answers 204. TLS 1.2+ with AEAD
 * ciphers only; a client certificate signed by --ca is required.
 *
 * One h2o_evloop and h2o_context per thread, each with its own SO_REUSEPORT
 * listener, sharing one read-only h2o_globalconf_t and SSL_CTX: the model of
 * the h2o server itself. SIGINT or SIGTERM stops it; it then prints what each
 * thread served.
 */
#define _GNU_SOURCE
#define H2O_USE_LIBUV 0
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MAX_THREADS    64
#define MAX_BODY       4096
#define IO_TIMEOUT_MS  60000 /* longer than the idle-connection measurement */
#define LISTEN_BACKLOG 4096
#define ACCEPT_BATCH   8 /* connections taken per readiness event, as h2o's server does */
#define DEVICE_ID_MAX  64
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                                 \
    "ECDHE-ECDSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* h2o 2.2.5 offers no way to reach a connection's SSL object or peer
 * certificate. Its private struct st_h2o_socket_ssl_t (lib/common/socket.c)
 * starts with these two members; socket_ssl() checks that they hold what they
 * should before trusting them, and fails closed otherwise. */
struct st_h2o_socket_ssl_t {
    SSL_CTX *ssl_ctx;
    SSL *ossl;
};

typedef struct options {
    const char *addr;
    int port;
    const char *cert, *key, *ca;
    int threads;
} options;

typedef struct worker {
    int index;
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    int listen_fd;
    unsigned long served;   /* 204s */
    unsigned long rejected; /* 4xx sent by the handler */
} worker;

static h2o_globalconf_t config;
static atomic_int stop_requested;

static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.addr = "127.0.0.1", .threads = 2};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        char *end;
        long n;
        if (strcmp(a, "--addr") == 0) {
            o->addr = v;
        } else if (strcmp(a, "--cert") == 0) {
            o->cert = v;
        } else if (strcmp(a, "--key") == 0) {
            o->key = v;
        } else if (strcmp(a, "--ca") == 0) {
            o->ca = v;
        } else if (strcmp(a, "--port") == 0 || strcmp(a, "--threads") == 0) {
            errno = 0;
            n = strtol(v, &end, 10);
            int is_port = a[2] == 'p';
            if (errno || *end || end == v || n < 1 || n > (is_port ? 65535 : MAX_THREADS))
                return -1;
            *(is_port ? &o->port : &o->threads) = (int)n;
        } else {
            return -1;
        }
    }
    return (argc % 2 == 1 && o->port && o->cert && o->key && o->ca) ? 0 : -1;
}

static SSL_CTX *tls_server_ctx(const options *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    STACK_OF(X509_NAME) *names = NULL;
    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_TICKET);
    /* No resumption anywhere in the comparison: each new connection costs a
     * full handshake on every server. */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Idle connections then hold no TLS record buffers (nginx does the same). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1 || SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1)
        goto fail;
    if ((names = SSL_load_client_CA_file(o->ca)) == NULL)
        goto fail;
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 2);
    return ctx;
fail:
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
}

/* The device ID: the one CN of the verified client certificate. */
static int peer_device_id(SSL *ssl, char *out, size_t size)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return -1;
    X509_NAME *subject = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0)
        return -1;
    const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    int len = ASN1_STRING_length(cn);
    if (len <= 0 || (size_t)len >= size)
        return -1;
    memcpy(out, ASN1_STRING_get0_data(cn), (size_t)len);
    if (memchr(out, '\0', (size_t)len) != NULL)
        return -1;
    out[len] = '\0';
    return 0;
}

static SSL *socket_ssl(h2o_req_t *req, worker *w)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->ssl == NULL || sock->ssl->ssl_ctx != w->accept_ctx.ssl_ctx)
        return NULL;
    SSL *ssl = sock->ssl->ossl;
    if (ssl == NULL || SSL_get_SSL_CTX(ssl) != w->accept_ctx.ssl_ctx)
        return NULL;
    return ssl;
}

static void reject(h2o_req_t *req, worker *w, int status, const char *reason)
{
    w->rejected++;
    h2o_send_error_generic(req, status, reason, reason, 0);
}

static int on_telemetry(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker *w = H2O_STRUCT_FROM_MEMBER(worker, ctx, req->conn->ctx);
    char body[MAX_BODY];
    char device[DEVICE_ID_MAX + 1];

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        reject(req, w, 405, "Method Not Allowed");
        return 0;
    }
    SSL *ssl = socket_ssl(req, w);
    if (ssl == NULL || peer_device_id(ssl, device, sizeof(device)) != 0) {
        reject(req, w, 403, "Forbidden");
        return 0;
    }
    /* h2o has buffered the whole body, and refused one over MAX_BODY with 413. */
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    if (len == 0 || len > sizeof(body)) {
        reject(req, w, 400, "Bad Request");
        return 0;
    }
    memcpy(body, req->entity.base, len);
    if (body[0] != '[') {
        reject(req, w, 400, "Bad Request");
        return 0;
    }
    w->served++;
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = 204;
    req->res.reason = "No Content";
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    worker *w = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        h2o_accept(&w->accept_ctx, sock);
    }
}

static int listen_socket(const options *o)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    int one = 1;
    if (inet_pton(AF_INET, o->addr, &sin.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* h2o keeps per-thread state (buffer pools, the cached clock), so the
 * context is made in the thread that runs the loop. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &config);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = config.hosts;
    w->listener = h2o_evloop_socket_create(w->loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);
    while (!atomic_load(&stop_requested))
        h2o_evloop_run(w->loop, 100);
    /* Live connections are left to the process exit: h2o 2.2.5 has no call
     * that closes them, and h2o_context_dispose expects none. */
    h2o_socket_read_stop(w->listener);
    return NULL;
}

static int setup_config(void)
{
    h2o_config_init(&config);
    config.max_request_entity_size = MAX_BODY;
    config.http1.req_timeout = IO_TIMEOUT_MS;
    config.handshake_timeout = IO_TIMEOUT_MS;
    config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host =
        h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/v1/telemetry", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    if (handler == NULL)
        return -1;
    handler->on_req = on_telemetry;
    return 0;
}

/* 10,000 idle devices need 10,000 descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    options o;
    static worker ws[MAX_THREADS];
    int started = 0, rc = 1;
    SSL_CTX *ctx = NULL;
    sigset_t stop_set;

    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: h2o_server --port P --cert FILE --key FILE --ca FILE "
                        "[--threads N] [--addr IPV4]\n");
        return 2;
    }
    raise_fd_limit();
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((ctx = tls_server_ctx(&o)) == NULL || setup_config() != 0) {
        fprintf(stderr, "h2o_server: cannot set up TLS or the configuration\n");
        goto out;
    }
    for (int i = 0; i < o.threads; i++) {
        ws[i].index = i;
        ws[i].accept_ctx.ssl_ctx = ctx;
        if ((ws[i].listen_fd = listen_socket(&o)) < 0) {
            fprintf(stderr, "h2o_server: cannot listen on %s:%d: %s\n", o.addr, o.port,
                    strerror(errno));
            goto out;
        }
    }
    for (; started < o.threads; started++)
        if (pthread_create(&ws[started].tid, NULL, worker_main, &ws[started]) != 0)
            goto out;
    fprintf(stderr, "h2o_server: h2o %s, %d threads, listening on %s:%d\n", H2O_VERSION, o.threads,
            o.addr, o.port);
    int sig;
    sigwait(&stop_set, &sig);
    rc = 0;
out:
    atomic_store(&stop_requested, 1);
    for (int i = 0; i < started; i++) {
        pthread_join(ws[i].tid, NULL);
        fprintf(stderr, "h2o_server: thread %d served %lu rejected %lu\n", i, ws[i].served,
                ws[i].rejected);
    }
    return rc;
}
