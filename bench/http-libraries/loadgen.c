/* loadgen: a mutual-TLS HTTP/1.1 load generator for the ingest endpoint.
 *
 *   loadgen --port P --cert FILE --key FILE --ca FILE [OPTIONS]
 *
 * Modes:
 *   (default)     C keep-alive connections spread over T threads (one epoll
 *                 loop each) POST a SenML body for D seconds, each sending the
 *                 next request as soon as the answer arrives (closed loop).
 *   --rate R      the same, but R requests/s in all (open loop): latency is
 *                 counted from the time a request was due, so a server that
 *                 stalls cannot hide the queue behind it.
 *   --handshake   a new TLS connection for every request; reports handshakes/s.
 *   --idle N      opens N connections, makes one request on each, prints
 *                 "idle_ready ..." on stdout and holds them for --hold seconds,
 *                 so that the server's memory can be read meanwhile.
 *
 * The result is one line of key=value pairs on stdout. Latency percentiles
 * come from a log-bucketed histogram (32 buckets per power of two, so each
 * value is within about 3% of the truth); there are no averages.
 * Exit status: 0 done, 1 the run failed (too many errors), 2 bad usage.
 */
#define _GNU_SOURCE /* epoll_pwait2 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_THREADS          64
#define MAX_CONNS            20000
#define MAX_EVENTS           256
#define HANDSHAKES_IN_FLIGHT 64 /* per thread, so a burst never overflows the listen queue */
#define READ_BUF             4096
#define NS                   1000000000ull

/* Log-linear histogram of nanoseconds: values below 64 have their own
 * bucket; above, each power of two is split in 32. */
#define HIST_SUB_BITS 5
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  (64 * HIST_SUB)

typedef struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t b[HIST_BUCKETS];
} hist;

typedef enum mode { MODE_KEEPALIVE, MODE_HANDSHAKE, MODE_IDLE } mode;

typedef struct options {
    const char *host;
    const char *sni;
    int port;
    const char *cert, *key, *ca;
    const char *path;
    mode mode;
    int conns;
    int threads;
    double duration;
    double warmup;
    double rate;
    double hold;
    int tls12;
    long max_errors;
} options;

typedef enum cstate { C_FREE, C_HANDSHAKE, C_WRITING, C_READING, C_WAITING, C_IDLE } cstate;

struct worker;

typedef struct conn {
    int id; /* 0..C-1 over all threads: staggers the first requests of --rate */
    int fd;
    SSL *ssl;
    cstate state;
    uint32_t events; /* epoll interest currently registered */
    http_parser parser;
    int done;
    uint64_t t_start;  /* when the request (with --handshake, the connection) began */
    uint64_t next_due; /* --rate: when the next request is due */
    struct worker *w;
} conn;

typedef struct worker {
    pthread_t tid;
    int epfd;
    conn *conns;
    int nconns;
    int running; /* 0 while connections are being set up */
    int failed;  /* more errors than --max-errors */
    uint64_t requests, errors, reconnects, closed_by_server;
    uint64_t err_tls, err_http, err_status; /* what the errors were */
    char first_error[160];
    hist h;
} worker;

static options opt = {
    .host = "127.0.0.1",
    .sni = "localhost",
    .path = "/v1/telemetry",
    .mode = MODE_KEEPALIVE,
    .conns = 64,
    .threads = 2,
    .duration = 5.0,
    .warmup = 1.0,
    .hold = 3.0,
    .max_errors = 1000,
};

static SSL_CTX *client_ctx;
static struct sockaddr_in server_addr;
static char request[1024];
static size_t request_len;
static pthread_barrier_t setup_done, go;
/* Set by the main thread between the two barriers, read-only afterwards. */
static _Atomic uint64_t t_begin, t_measure, t_end;

/* A SenML pack as a sensor sends it: about 150 bytes. */
static const char senml_body[] =
    "[{\"bn\":\"urn:dev:id:dev-001:\",\"bt\":1.7e9,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":21.5},"
    "{\"n\":\"humidity\",\"u\":\"%RH\",\"v\":48.2}]";

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static size_t hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - HIST_SUB_BITS;
    return (size_t)shift * HIST_SUB + (size_t)(v >> shift);
}

static uint64_t hist_upper(size_t idx)
{
    if (idx < 2 * HIST_SUB)
        return idx;
    size_t shift = idx / HIST_SUB - 1;
    uint64_t m = idx - shift * HIST_SUB;
    return ((m + 1) << shift) - 1;
}

static void hist_add(hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

static void hist_merge(hist *into, const hist *from)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    if (from->max > into->max)
        into->max = from->max;
}

/* The upper bound of the bucket holding the q-quantile, in microseconds:
 * a percentile is never reported lower than it was. */
static double hist_quantile_us(const hist *h, double q)
{
    if (h->count == 0)
        return 0.0;
    uint64_t target = (uint64_t)ceil(q * (double)h->count);
    if (target == 0)
        target = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= target) {
            uint64_t up = hist_upper(i);
            return (double)(up < h->max ? up : h->max) / 1000.0;
        }
    }
    return (double)h->max / 1000.0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port P --cert FILE --key FILE --ca FILE [options]\n"
            "  --host ADDR        IPv4 address of the server (default 127.0.0.1)\n"
            "  --sni NAME         server name to send and verify (default localhost)\n"
            "  --path PATH        request path (default /v1/telemetry)\n"
            "  --connections C    connections (default 64)\n"
            "  --threads T        threads, one epoll loop each (default 2)\n"
            "  --duration D       measured seconds (default 5)\n"
            "  --warmup W         seconds run before measuring (default 1)\n"
            "  --rate R           requests/s in all (open loop); default: as fast as possible\n"
            "  --handshake        a new TLS connection per request\n"
            "  --idle N           open N connections, one request each, then hold them\n"
            "  --hold S           seconds to hold idle connections (default 3)\n"
            "  --tls12            offer TLS 1.2 only\n"
            "  --max-errors E     give up after E errors (default 1000)\n");
    return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* Options that take a number; the others are handled in parse_args. */
static int parse_number(const char *a, const char *val)
{
    long v;
    if (strcmp(a, "--port") == 0 && parse_long(val, 1, 65535, &v) == 0)
        opt.port = (int)v;
    else if (strcmp(a, "--connections") == 0 && parse_long(val, 1, MAX_CONNS, &v) == 0)
        opt.conns = (int)v;
    else if (strcmp(a, "--threads") == 0 && parse_long(val, 1, MAX_THREADS, &v) == 0)
        opt.threads = (int)v;
    else if (strcmp(a, "--idle") == 0 && parse_long(val, 1, MAX_CONNS, &v) == 0)
        opt.conns = (int)v, opt.mode = MODE_IDLE;
    else if (strcmp(a, "--max-errors") == 0 && parse_long(val, 0, LONG_MAX, &v) == 0)
        opt.max_errors = v;
    else if (strcmp(a, "--duration") == 0 && parse_double(val, 0.1, 3600, &opt.duration) == 0)
        ;
    else if (strcmp(a, "--warmup") == 0 && parse_double(val, 0, 600, &opt.warmup) == 0)
        ;
    else if (strcmp(a, "--hold") == 0 && parse_double(val, 0, 3600, &opt.hold) == 0)
        ;
    else if (strcmp(a, "--rate") == 0 && parse_double(val, 1, 1e7, &opt.rate) == 0)
        ;
    else
        return -1;
    return 0;
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--handshake") == 0) {
            opt.mode = MODE_HANDSHAKE;
            continue;
        }
        if (strcmp(a, "--tls12") == 0) {
            opt.tls12 = 1;
            continue;
        }
        if (val == NULL) {
            fprintf(stderr, "loadgen: unknown option or missing value: %s\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--host") == 0)
            opt.host = val;
        else if (strcmp(a, "--sni") == 0)
            opt.sni = val;
        else if (strcmp(a, "--path") == 0)
            opt.path = val;
        else if (strcmp(a, "--cert") == 0)
            opt.cert = val;
        else if (strcmp(a, "--key") == 0)
            opt.key = val;
        else if (strcmp(a, "--ca") == 0)
            opt.ca = val;
        else if (parse_number(a, val) != 0) {
            fprintf(stderr, "loadgen: unknown option or bad value: %s %s\n", a, val);
            return -1;
        }
    }
    if (opt.port == 0 || !opt.cert || !opt.key || !opt.ca) {
        fprintf(stderr, "loadgen: --port, --cert, --key and --ca are required\n");
        return -1;
    }
    if (opt.threads > opt.conns)
        opt.threads = opt.conns;
    return 0;
}

static int setup_tls(void)
{
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (client_ctx == NULL)
        return -1;
    SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);
    if (opt.tls12)
        SSL_CTX_set_max_proto_version(client_ctx, TLS1_2_VERSION);
    /* Every --handshake connection is a full handshake, as a device's
     * first one after boot is. */
    SSL_CTX_set_session_cache_mode(client_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(client_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(client_ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(client_ctx, opt.ca, NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(client_ctx, opt.cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(client_ctx, opt.key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(client_ctx) != 1) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    return 0;
}

static int build_request(void)
{
    int n = snprintf(request, sizeof(request),
                     "POST %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Content-Type: application/senml+json\r\n"
                     "Content-Length: %zu\r\n"
                     "\r\n"
                     "%s",
                     opt.path, opt.sni, sizeof(senml_body) - 1, senml_body);
    if (n < 0 || (size_t)n >= sizeof(request))
        return -1;
    request_len = (size_t)n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->done = 1;
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_complete = on_message_complete,
};

static void set_interest(conn *c, uint32_t ev)
{
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* clean: the TLS session is healthy, so say close_notify as a device would. */
static void conn_close(conn *c, int clean)
{
    if (c->ssl != NULL) {
        if (clean && c->state != C_HANDSHAKE)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    ERR_clear_error();
    c->state = C_FREE;
}

static int conn_open(conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&server_addr, sizeof(server_addr)) != 0 &&
        errno != EINPROGRESS)
        goto fail;
    c->ssl = SSL_new(client_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, opt.sni) != 1 || SSL_set1_host(c->ssl, opt.sni) != 1)
        goto fail;
    SSL_set_connect_state(c->ssl);
    c->state = C_HANDSHAKE;
    c->t_start = now_ns();
    c->events = EPOLLOUT;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, c->fd, &e) != 0)
        goto fail;
    return 0;
fail:
    conn_close(c, 0);
    return -1;
}

static void start_request(conn *c, uint64_t t_start)
{
    c->state = C_WRITING;
    c->t_start = t_start;
    c->done = 0;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
}

static void park(conn *c)
{
    c->state = C_WAITING;
    set_interest(c, EPOLLIN);
}

/* A keep-alive connection is ready for its next request. */
static void schedule(conn *c, uint64_t now)
{
    if (!c->w->running)
        park(c);
    else if (opt.rate <= 0)
        start_request(c, now);
    else if (c->next_due <= now)
        start_request(c, c->next_due);
    else
        park(c);
}

typedef enum fail_kind { FAIL_TLS, FAIL_HTTP } fail_kind;

static void conn_failed(conn *c, fail_kind kind)
{
    worker *w = c->w;
    w->errors++;
    if (kind == FAIL_TLS)
        w->err_tls++;
    else
        w->err_http++;
    if (opt.max_errors > 0 && w->errors > (uint64_t)opt.max_errors)
        w->failed = 1;
    conn_close(c, 0);
    if (w->running && !w->failed && opt.mode != MODE_IDLE) {
        w->reconnects++;
        if (conn_open(c) != 0)
            w->errors++;
    }
}

static void on_handshake_done(conn *c, uint64_t now)
{
    if (opt.mode == MODE_HANDSHAKE)
        start_request(c, c->t_start);
    else if (opt.mode == MODE_IDLE)
        start_request(c, now);
    else
        schedule(c, now);
}

static void on_answer(conn *c, uint64_t now)
{
    worker *w = c->w;
    if (c->parser.status_code != 204) {
        w->errors++;
        w->err_status++;
    } else if (opt.mode == MODE_IDLE ||
               (now >= atomic_load(&t_measure) && now < atomic_load(&t_end))) {
        w->requests++;
        hist_add(&w->h, now - c->t_start);
    }
    if (opt.rate > 0)
        c->next_due += (uint64_t)((double)opt.conns / opt.rate * 1e9);
    if (opt.mode == MODE_IDLE) {
        c->state = C_IDLE;
        set_interest(c, EPOLLIN);
    } else if (opt.mode == MODE_HANDSHAKE || !http_should_keep_alive(&c->parser)) {
        conn_close(c, 1);
        if (opt.mode != MODE_HANDSHAKE)
            w->reconnects++;
        if (conn_open(c) != 0)
            conn_failed(c, FAIL_TLS);
    } else {
        schedule(c, now);
    }
}

/* Keeps the first failure of each thread, for the report on stderr. */
static void note_error(conn *c, int ssl_error)
{
    worker *w = c->w;
    if (w->first_error[0] != '\0')
        return;
    int saved = errno;
    char reason[120];
    ERR_error_string_n(ERR_peek_error(), reason, sizeof(reason));
    snprintf(w->first_error, sizeof(w->first_error), "state %d, SSL error %d, errno %d (%s), %s",
             (int)c->state, ssl_error, saved, strerror(saved), reason);
}

/* An SSL call returned r <= 0: wait for the socket, or give up on the connection. */
static void on_ssl_wait(conn *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        set_interest(c, EPOLLIN);
    } else if (e == SSL_ERROR_WANT_WRITE) {
        set_interest(c, EPOLLOUT);
    } else {
        note_error(c, e);
        conn_failed(c, FAIL_TLS);
    }
}

/* Runs the connection's state machine until it has to wait for the socket. */
static void conn_drive(conn *c)
{
    char buf[READ_BUF];
    int r;
    for (;;) {
        switch (c->state) {
        case C_HANDSHAKE:
            if ((r = SSL_do_handshake(c->ssl)) != 1)
                goto wait;
            on_handshake_done(c, now_ns());
            break;
        case C_WRITING:
            if ((r = SSL_write(c->ssl, request, (int)request_len)) <= 0)
                goto wait;
            c->state = C_READING;
            break;
        case C_READING:
            if ((r = SSL_read(c->ssl, buf, sizeof(buf))) <= 0)
                goto wait;
            size_t n = http_parser_execute(&c->parser, &parser_settings, buf, (size_t)r);
            if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || n != (size_t)r) {
                conn_failed(c, FAIL_HTTP);
                return;
            }
            if (c->done)
                on_answer(c, now_ns());
            break;
        case C_WAITING:
        case C_IDLE:
            /* Nothing is expected now: anything readable is the server closing. */
            r = SSL_read(c->ssl, buf, sizeof(buf));
            if (r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ)
                return;
            if (c->state == C_IDLE) {
                c->w->closed_by_server++;
                conn_close(c, 0);
            } else {
                conn_failed(c, FAIL_TLS);
            }
            return;
        case C_FREE:
            return;
        }
    }
wait:
    on_ssl_wait(c, r);
}

/* Starts the parked requests that are due, then waits for the sockets until
 * `until` or the next due request. */
static void poll_once(worker *w, uint64_t until)
{
    struct epoll_event evs[MAX_EVENTS];
    uint64_t wake = until;
    if (opt.rate > 0 && w->running) {
        uint64_t now = now_ns();
        for (int i = 0; i < w->nconns; i++) {
            conn *c = &w->conns[i];
            if (c->state != C_WAITING)
                continue;
            if (c->next_due <= now) {
                start_request(c, c->next_due);
                conn_drive(c);
            } else if (c->next_due < wake) {
                wake = c->next_due;
            }
        }
    }
    uint64_t now = now_ns();
    uint64_t wait = wake > now ? wake - now : 0;
    struct timespec ts = {.tv_sec = (time_t)(wait / NS), .tv_nsec = (long)(wait % NS)};
    int n = epoll_pwait2(w->epfd, evs, MAX_EVENTS, &ts, NULL);
    for (int i = 0; i < n; i++)
        conn_drive(evs[i].data.ptr);
}

/* Opens the connections, at most HANDSHAKES_IN_FLIGHT at a time, and parks
 * them; in idle mode each first makes its one request. Bounded to 120 s. */
static void setup_phase(worker *w)
{
    uint64_t deadline = now_ns() + 120 * NS;
    int opened = 0;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < opened; i++) {
            cstate s = w->conns[i].state;
            busy += s == C_HANDSHAKE || s == C_WRITING || s == C_READING;
        }
        while (opened < w->nconns && busy < HANDSHAKES_IN_FLIGHT) {
            if (conn_open(&w->conns[opened++]) != 0)
                w->errors++;
            else
                busy++;
        }
        if ((busy == 0 && opened == w->nconns) || w->failed || now_ns() > deadline)
            return;
        poll_once(w, now_ns() + NS / 10);
    }
}

/* The first requests of a measured keep-alive run. */
static void kick_off(worker *w, uint64_t begin)
{
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->state != C_WAITING)
            continue;
        /* Spread the first requests evenly so the rate is steady from the start. */
        c->next_due = begin + (opt.rate > 0 ? (uint64_t)((double)c->id / opt.rate * 1e9) : 0);
        if (opt.rate <= 0 || c->next_due <= now_ns()) {
            start_request(c, opt.rate > 0 ? c->next_due : now_ns());
            conn_drive(c);
        }
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    if (opt.mode != MODE_HANDSHAKE)
        setup_phase(w);
    pthread_barrier_wait(&setup_done);
    pthread_barrier_wait(&go);

    w->running = 1;
    if (opt.mode == MODE_HANDSHAKE) {
        for (int i = 0; i < w->nconns; i++)
            if (conn_open(&w->conns[i]) != 0)
                w->errors++;
    } else if (opt.mode == MODE_KEEPALIVE) {
        kick_off(w, atomic_load(&t_begin));
    }
    uint64_t end = atomic_load(&t_end);
    while (!w->failed && now_ns() < end)
        poll_once(w, end);
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i].state != C_FREE)
            conn_close(&w->conns[i], w->conns[i].state == C_WAITING || w->conns[i].state == C_IDLE);
    return NULL;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)opt.conns + 64)
        fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE %llu is below %d connections\n",
                (unsigned long long)rl.rlim_cur, opt.conns);
}

static const char *mode_name(void)
{
    return opt.mode == MODE_HANDSHAKE ? "handshake" : opt.mode == MODE_IDLE ? "idle" : "keepalive";
}

static void report(worker *ws, double seconds)
{
    hist all = {0};
    uint64_t requests = 0, errors = 0, reconnects = 0, closed = 0;
    uint64_t e_tls = 0, e_http = 0, e_status = 0;
    for (int i = 0; i < opt.threads; i++) {
        hist_merge(&all, &ws[i].h);
        requests += ws[i].requests;
        errors += ws[i].errors;
        e_tls += ws[i].err_tls;
        e_http += ws[i].err_http;
        e_status += ws[i].err_status;
        if (ws[i].first_error[0] != '\0')
            fprintf(stderr, "loadgen: thread %d: first TLS failure: %s\n", i, ws[i].first_error);
        reconnects += ws[i].reconnects;
        closed += ws[i].closed_by_server;
    }
    printf("mode=%s tls=%s body=%zu connections=%d threads=%d seconds=%.3f rate_target=%.0f "
           "requests=%" PRIu64 " errors=%" PRIu64 " err_tls=%" PRIu64 " err_http=%" PRIu64
           " err_status=%" PRIu64 " reconnects=%" PRIu64 " closed_by_server=%" PRIu64
           " rps=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f\n",
           mode_name(), opt.tls12 ? "1.2" : "1.3", sizeof(senml_body) - 1, opt.conns, opt.threads,
           seconds, opt.rate, requests, errors, e_tls, e_http, e_status, reconnects, closed,
           seconds > 0 ? (double)requests / seconds : 0.0, hist_quantile_us(&all, 0.50),
           hist_quantile_us(&all, 0.90), hist_quantile_us(&all, 0.99),
           hist_quantile_us(&all, 0.999), (double)all.max / 1000.0);
}

static int start_workers(worker *ws, conn *conns)
{
    int base = 0;
    for (int i = 0; i < opt.threads; i++) {
        worker *w = &ws[i];
        w->nconns = opt.conns / opt.threads + (i < opt.conns % opt.threads);
        w->conns = conns + base;
        for (int j = 0; j < w->nconns; j++) {
            w->conns[j].id = base + j;
            w->conns[j].fd = -1;
            w->conns[j].w = w;
        }
        base += w->nconns;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0 || pthread_create(&w->tid, NULL, worker_main, w) != 0)
            return -1;
    }
    return 0;
}

/* Sets the run's clock between the two barriers, so that every thread
 * starts measuring at the same moment. */
static double set_clock(void)
{
    uint64_t begin = now_ns() + NS / 1000;
    double warm = opt.mode == MODE_IDLE ? 0.0 : opt.warmup;
    double span = opt.mode == MODE_IDLE ? opt.hold : opt.duration;
    atomic_store(&t_begin, begin);
    atomic_store(&t_measure, begin + (uint64_t)(warm * 1e9));
    atomic_store(&t_end, begin + (uint64_t)((warm + span) * 1e9));
    return opt.mode == MODE_IDLE ? span : opt.duration;
}

int main(int argc, char **argv)
{
    int rc = 1;
    worker *ws = NULL;
    conn *conns = NULL;
    if (parse_args(argc, argv) != 0)
        return usage();
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen: --host must be an IPv4 address: %s\n", opt.host);
        return 2;
    }
    raise_fd_limit();
    if (setup_tls() != 0 || build_request() != 0) {
        fprintf(stderr, "loadgen: cannot set up TLS or the request\n");
        goto out;
    }
    ws = calloc((size_t)opt.threads, sizeof(*ws));
    conns = calloc((size_t)opt.conns, sizeof(*conns));
    if (ws == NULL || conns == NULL)
        goto out;
    pthread_barrier_init(&setup_done, NULL, (unsigned)opt.threads + 1);
    pthread_barrier_init(&go, NULL, (unsigned)opt.threads + 1);
    if (start_workers(ws, conns) != 0) {
        fprintf(stderr, "loadgen: cannot start threads\n");
        goto out;
    }
    pthread_barrier_wait(&setup_done);
    if (opt.mode == MODE_IDLE) {
        uint64_t up = 0, errors = 0;
        for (int i = 0; i < opt.threads; i++)
            up += ws[i].requests, errors += ws[i].errors;
        printf("idle_ready target=%d established=%" PRIu64 " errors=%" PRIu64 "\n", opt.conns, up,
               errors);
        fflush(stdout);
    }
    double seconds = set_clock();
    pthread_barrier_wait(&go);
    int failed = 0;
    for (int i = 0; i < opt.threads; i++) {
        pthread_join(ws[i].tid, NULL);
        failed |= ws[i].failed;
    }
    report(ws, seconds);
    rc = failed ? 1 : 0;
    if (failed)
        fprintf(stderr, "loadgen: stopped after more than %ld errors\n", opt.max_errors);
out:
    free(conns);
    free(ws);
    SSL_CTX_free(client_ctx);
    return rc;
}
