/* evhttp_server: the ingest endpoint on libevent 2.1 evhttp + bufferevent_openssl.
 *
 *   evhttp_server --port P --cert FILE --key FILE --ca FILE [--threads N] [--addr A]
 *                 [--accept reuseport|shared]
 *
 * POST /v1/telemetry reads the body (at most 4 KiB), reads the client
 * certificate's CN (the device ID) and answers 204. TLS 1.2+ with AEAD
 * ciphers only; a client certificate signed by --ca is required.
 *
 * One event_base per thread, each with its own SO_REUSEPORT listener: the
 * kernel spreads connections over the threads and nothing is shared on the
 * request path but the read-only SSL_CTX, so libevent's locking stays off.
 * With --accept shared, every thread instead accepts from a duplicate of one
 * listening socket: whichever loop is free takes the next connection.
 * SIGINT or SIGTERM stops it; it then prints what each thread served.
 */
#define _GNU_SOURCE
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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MAX_THREADS    64
#define MAX_BODY       4096
#define MAX_HEADERS    8192
#define IO_TIMEOUT_S   60 /* longer than the idle-connection measurement */
#define LISTEN_BACKLOG 4096
#define DEVICE_ID_MAX  64
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                                 \
    "ECDHE-ECDSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

typedef struct options {
    const char *addr;
    int port;
    const char *cert, *key, *ca;
    int threads;
    int shared; /* one listening socket for all threads */
} options;

typedef struct worker {
    int index;
    pthread_t tid;
    SSL_CTX *ssl_ctx;
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;
    unsigned long served;   /* 204s */
    unsigned long rejected; /* 4xx sent by the handler */
} worker;

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
        } else if (strcmp(a, "--accept") == 0) {
            if (strcmp(v, "shared") != 0 && strcmp(v, "reuseport") != 0)
                return -1;
            o->shared = strcmp(v, "shared") == 0;
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

static void on_telemetry(struct evhttp_request *req, void *arg)
{
    worker *w = arg;
    char body[MAX_BODY];
    char device[DEVICE_ID_MAX + 1];
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    if (ssl == NULL || peer_device_id(ssl, device, sizeof(device)) != 0) {
        w->rejected++;
        evhttp_send_error(req, 403, "Forbidden");
        return;
    }
    /* evhttp has already refused bodies over MAX_BODY with 413. */
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0 || len > sizeof(body) || evbuffer_remove(in, body, len) != (int)len ||
        body[0] != '[') {
        w->rejected++;
        evhttp_send_error(req, 400, "Bad Request");
        return;
    }
    w->served++;
    evhttp_send_reply(req, 204, "No Content", NULL);
}

/* Each connection gets its own SSL, in accepting state; evhttp sets the fd. */
static struct bufferevent *new_tls_bev(struct event_base *base, void *arg)
{
    worker *w = arg;
    SSL *ssl = SSL_new(w->ssl_ctx);
    if (ssl == NULL)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    /* Devices that lose power drop the TCP connection without close_notify. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    if (atomic_load(&stop_requested))
        event_base_loopbreak(w->base);
}

static int make_listen_addr(const options *o, struct sockaddr_in *sin)
{
    *sin = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    return inet_pton(AF_INET, o->addr, &sin->sin_addr) == 1 ? 0 : -1;
}

/* The one socket of --accept shared; each thread listens on a duplicate. */
static int shared_listen_socket(const options *o)
{
    struct sockaddr_in sin;
    int one = 1;
    if (make_listen_addr(o, &sin) != 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static struct evconnlistener *worker_listener(worker *w, const options *o, int shared_fd)
{
    const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
    if (shared_fd >= 0) {
        int fd = fcntl(shared_fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return NULL;
        struct evconnlistener *lev = evconnlistener_new(w->base, NULL, NULL, flags, 0, fd);
        if (lev == NULL)
            close(fd);
        return lev;
    }
    struct sockaddr_in sin;
    if (make_listen_addr(o, &sin) != 0)
        return NULL;
    return evconnlistener_new_bind(w->base, NULL, NULL,
                                   flags | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT,
                                   LISTEN_BACKLOG, (struct sockaddr *)&sin, sizeof(sin));
}

static int worker_init(worker *w, const options *o, int shared_fd)
{
    /* The change list folds the epoll_ctl calls a request makes (read off,
     * write on, write off, read on) into at most one per loop iteration. */
    struct event_config *cfg = event_config_new();
    if (cfg == NULL)
        return -1;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (w->base == NULL || (w->http = evhttp_new(w->base)) == NULL)
        return -1;
    evhttp_set_bevcb(w->http, new_tls_bev, w);
    evhttp_set_max_headers_size(w->http, MAX_HEADERS);
    evhttp_set_max_body_size(w->http, MAX_BODY);
    evhttp_set_timeout(w->http, IO_TIMEOUT_S);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_POST);
    if (evhttp_set_cb(w->http, "/v1/telemetry", on_telemetry, w) != 0)
        return -1;
    struct evconnlistener *lev = worker_listener(w, o, shared_fd);
    if (lev == NULL || evhttp_bind_listener(w->http, lev) == NULL)
        return -1;
    struct timeval period = {0, 100000};
    w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    if (w->tick == NULL || event_add(w->tick, &period) != 0)
        return -1;
    return 0;
}

static void worker_free(worker *w)
{
    if (w->tick != NULL)
        event_free(w->tick);
    if (w->http != NULL)
        evhttp_free(w->http);
    if (w->base != NULL)
        event_base_free(w->base);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
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
    worker ws[MAX_THREADS] = {0};
    int started = 0, rc = 1, shared_fd = -1;
    SSL_CTX *ctx = NULL;
    sigset_t stop_set;

    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: evhttp_server --port P --cert FILE --key FILE --ca FILE "
                        "[--threads N] [--addr IPV4] [--accept reuseport|shared]\n");
        return 2;
    }
    raise_fd_limit();
    /* Only the main thread takes the stop signals; workers inherit the mask. */
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((ctx = tls_server_ctx(&o)) == NULL) {
        fprintf(stderr, "evhttp_server: cannot set up TLS\n");
        goto out;
    }
    if (o.shared && (shared_fd = shared_listen_socket(&o)) < 0) {
        fprintf(stderr, "evhttp_server: cannot listen on %s:%d: %s\n", o.addr, o.port,
                strerror(errno));
        goto out;
    }
    for (int i = 0; i < o.threads; i++) {
        ws[i].index = i;
        ws[i].ssl_ctx = ctx;
        if (worker_init(&ws[i], &o, shared_fd) != 0) {
            fprintf(stderr, "evhttp_server: cannot listen on %s:%d: %s\n", o.addr, o.port,
                    strerror(errno));
            goto out;
        }
    }
    for (; started < o.threads; started++)
        if (pthread_create(&ws[started].tid, NULL, worker_main, &ws[started]) != 0)
            goto out;
    fprintf(stderr, "evhttp_server: libevent %s, %d threads, %s, listening on %s:%d\n",
            event_get_version(), o.threads, o.shared ? "one shared socket" : "SO_REUSEPORT", o.addr,
            o.port);
    int sig;
    sigwait(&stop_set, &sig);
    rc = 0;
out:
    atomic_store(&stop_requested, 1);
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].tid, NULL);
    for (int i = 0; i < o.threads; i++) {
        if (started > 0)
            fprintf(stderr, "evhttp_server: thread %d served %lu rejected %lu\n", i, ws[i].served,
                    ws[i].rejected);
        worker_free(&ws[i]);
    }
    if (shared_fd >= 0)
        close(shared_fd);
    SSL_CTX_free(ctx);
    return rc;
}
