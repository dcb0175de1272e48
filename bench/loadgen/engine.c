#define _GNU_SOURCE /* epoll_pwait2: the open-loop schedule needs sub-ms waits */
#include "engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* TCP_INFO with tcpi_bytes_acked, TCP_NODELAY */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <http_parser.h>
#include <openssl/err.h>

#include "request.h"

#define NS              1000000000ull
#define MAX_EVENTS      256
#define SETUP_IN_FLIGHT 64 /* handshakes per thread while connecting: never overflow a backlog */
#define SETUP_MAX_NS    (300 * NS)
#define READ_BUF        16384
#define RESP_BODY_MAX   256
#define TICK_NS         (NS / 10) /* longest sleep, so stop requests are seen */

typedef enum cstate {
    C_FREE,
    C_CONNECTING, /* plain: TCP connect in progress */
    C_HANDSHAKE,
    C_WRITING,
    C_READING,
    C_WAITING, /* keep-alive: between requests */
    C_IDLE,    /* --idle: held */
} cstate;

typedef enum fail_kind { F_CONNECT, F_TLS, F_HTTP, F_CLOSED } fail_kind;

typedef struct worker worker;

typedef struct conn {
    int id; /* over all threads: staggers the first requests of --rate */
    int fd;
    SSL *ssl;
    cstate state;
    uint32_t events; /* epoll interest registered */
    int pending;     /* a request is outstanding */
    http_parser parser;
    int done;
    char resp[RESP_BODY_MAX];
    size_t resp_len;
    uint64_t t_start;  /* when the request was due (--handshake: when its connection began) */
    uint64_t next_due; /* --rate */
    lg_device *dev;
    uint32_t seq;          /* first reading of the request in flight; 0: none */
    uint32_t waits;        /* --handshake: round trips on this connection */
    uint64_t sent_at_wait; /* bytes sent when the last round trip began */
    char *req;
    size_t req_len, req_off, req_cap;
    worker *w;
} conn;

struct worker {
    lg_engine *e;
    pthread_t tid;
    int epfd;
    conn *conns;
    int nconns;
    int issuing; /* new requests may start */
    int pending; /* outstanding requests */
    uint64_t errors;
    lg_stats st;
};

struct lg_engine {
    const lg_options *o;
    lg_devices *devs;
    worker *ws;
    int nworkers;
    conn *conns;
    struct sockaddr_in addr;
    pthread_barrier_t setup_done, go;
    _Atomic uint64_t t_begin, t_measure, t_end;
    atomic_int stop;
    atomic_int failed;
    _Atomic int64_t budget; /* requests left to start */
    uint64_t wall_off;
    double period_ns; /* --rate: between two requests of one connection */
};

static uint64_t wall_offset;

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

uint64_t lg_wall_offset_ns(void)
{
    if (wall_offset == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wall = (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
        wall_offset = wall - lg_now_ns();
    }
    return wall_offset;
}

/* --- connections ------------------------------------------------------- */

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    size_t room = sizeof(c->resp) - 1 - c->resp_len;
    size_t n = len < room ? len : room;
    memcpy(c->resp + c->resp_len, at, n);
    c->resp_len += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->done = 1;
    return 0;
}

static const http_parser_settings PARSER = {
    .on_body = on_body,
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

/* clean: the session is healthy, so end it with close_notify as a device would. */
static void conn_close(conn *c, int clean)
{
    if (c->ssl != NULL) {
        if (clean)
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

static void note_error(conn *c, const char *what)
{
    lg_stats *st = &c->w->st;
    if (st->first_error[0] != '\0')
        return;
    int saved = errno;
    char reason[120] = "";
    unsigned long code = ERR_peek_error();
    if (code != 0)
        ERR_error_string_n(code, reason, sizeof(reason));
    /* Cut to the buffer: a long OpenSSL reason may not fit. */
    int n = snprintf(st->first_error, sizeof(st->first_error), "%s (device %s%s%s)%s%s", what,
                     c->dev ? c->dev->name : "?", saved ? ": " : "", saved ? strerror(saved) : "",
                     reason[0] ? " " : "", reason);
    if (n < 0)
        st->first_error[0] = '\0';
}

static int conn_open(conn *c)
{
    lg_engine *e = c->w->e;
    c->dev = &e->devs->dev[c->id % e->devs->n];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        goto fail;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&e->addr, sizeof(e->addr)) != 0 && errno != EINPROGRESS)
        goto fail;
    c->state = C_CONNECTING;
    c->waits = 1; /* the TCP handshake */
    c->sent_at_wait = 0;
    if (!e->o->plain) {
        c->ssl = SSL_new(c->dev->ctx);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
            SSL_set_tlsext_host_name(c->ssl, e->o->sni) != 1 ||
            SSL_set1_host(c->ssl, e->o->sni) != 1)
            goto fail;
        SSL_set_connect_state(c->ssl);
        if (e->o->resume)
            lg_device_offer_session(c->dev, c->ssl);
        c->state = C_HANDSHAKE;
    }
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        goto fail;
    return 0;
fail:
    note_error(c, "cannot open a connection");
    conn_close(c, 0);
    return -1;
}

static int take_budget(lg_engine *e)
{
    return atomic_fetch_sub(&e->budget, 1) > 0;
}

static void count_error(worker *w)
{
    w->errors++;
    int64_t max = w->e->o->max_errors;
    if (max > 0 && w->errors > (uint64_t)max && !atomic_exchange(&w->e->failed, 1))
        atomic_store(&w->e->stop, 1);
}

/* A request ended, answered or not: the schedule moves on. */
static void end_request(conn *c)
{
    if (!c->pending)
        return;
    c->pending = 0;
    c->w->pending--;
    c->next_due += (uint64_t)c->w->e->period_ns;
}

/* Builds the request due at t_start and starts writing it. */
static int prepare_request(conn *c, uint64_t t_start)
{
    const lg_options *o = c->w->e->o;
    c->seq = 0;
    if (o->mode != LG_IDLE) {
        /* --idle readings go without `seq`: several connections of one
         * device would deliver them out of order. */
        c->seq = lg_device_take_seq(c->dev, (uint32_t)o->batch);
        if (c->seq == 0) {
            snprintf(c->w->st.first_error, sizeof(c->w->st.first_error),
                     "device %s: sequence numbers exhausted", c->dev->name);
            atomic_store(&c->w->e->failed, 1);
            atomic_store(&c->w->e->stop, 1);
            return -1;
        }
    }
    c->t_start = t_start;
    c->req_len =
        lg_request_build(o, c->dev->name, c->seq, t_start + c->w->e->wall_off, c->req, c->req_cap);
    c->req_off = 0;
    c->done = 0;
    c->resp_len = 0;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->state = C_WRITING;
    return c->req_len > 0 ? 0 : -1;
}

static void park(conn *c)
{
    c->state = C_WAITING;
    set_interest(c, EPOLLIN);
}

/* Keep-alive: starts the request due at t_start if the budget allows. */
static void start_request(conn *c, uint64_t t_start)
{
    if (!take_budget(c->w->e)) {
        park(c);
        return;
    }
    c->pending = 1;
    c->w->pending++;
    if (prepare_request(c, t_start) != 0)
        park(c);
}

/* Keep-alive: the connection is free for its next request. */
static void schedule(conn *c, uint64_t now)
{
    const lg_options *o = c->w->e->o;
    if (!c->w->issuing || atomic_load(&c->w->e->stop))
        park(c);
    else if (o->rate <= 0)
        start_request(c, now);
    else if (c->next_due <= now)
        start_request(c, c->next_due);
    else
        park(c);
}

/* --handshake: a request is a new connection. With --rate the device
 * sleeps until its next wake-up is due (poll_once opens it then), and its
 * latency counts from that time. */
static void open_for_request(conn *c)
{
    lg_engine *e = c->w->e;
    uint64_t now = lg_now_ns();
    if (e->o->rate > 0 && c->next_due > now)
        return; /* asleep */
    while (c->w->issuing && !atomic_load(&e->stop) && lg_now_ns() < atomic_load(&e->t_end) &&
           take_budget(e)) {
        c->pending = 1;
        c->w->pending++;
        c->t_start = e->o->rate > 0 ? c->next_due : lg_now_ns();
        if (e->o->rate > 0)
            c->next_due += (uint64_t)e->period_ns;
        if (conn_open(c) == 0)
            return;
        c->w->st.err_connect++;
        end_request(c);
        count_error(c->w);
    }
}

static void conn_failed(conn *c, fail_kind kind)
{
    worker *w = c->w;
    lg_stats *st = &w->st;
    *(kind == F_CONNECT ? &st->err_connect
      : kind == F_TLS   ? &st->err_tls
      : kind == F_HTTP  ? &st->err_http
                        : &st->err_closed) += 1;
    count_error(w);
    end_request(c);
    conn_close(c, 0);
    const lg_options *o = w->e->o;
    if (o->mode == LG_HANDSHAKE) {
        open_for_request(c);
    } else if (o->mode == LG_KEEPALIVE && w->issuing && !atomic_load(&w->e->stop)) {
        if (conn_open(c) != 0) {
            st->err_connect++;
            count_error(w);
        }
    }
}

static uint64_t duplicates_in(const conn *c)
{
    if (c->resp_len == 0)
        return 0;
    cJSON *j = cJSON_ParseWithLength(c->resp, c->resp_len);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "duplicates");
    uint64_t n = cJSON_IsNumber(d) && d->valuedouble > 0 ? (uint64_t)d->valuedouble : 0;
    cJSON_Delete(j);
    return n;
}

/* What one wake-up cost on the wire, from the kernel's count of the
 * connection's payload bytes (TLS records and HTTP). */
static void count_wake(const conn *c, lg_stats *st)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
        st->wire_out += ti.tcpi_bytes_acked;
        st->wire_in += ti.tcpi_bytes_received;
    }
    st->wakes++;
    st->wakes_resumed += c->ssl != NULL && SSL_session_reused(c->ssl) ? 1 : 0;
    st->waits += c->waits;
}

static void record_answer(conn *c, uint64_t now)
{
    lg_engine *e = c->w->e;
    lg_stats *st = &c->w->st;
    unsigned status = c->parser.status_code;
    st->status[status < LG_STATUS_MAX ? status : 0]++;
    if (status < 200 || status > 299) {
        errno = 0;
        char what[64];
        snprintf(what, sizeof(what), "HTTP status %u", status);
        note_error(c, what);
        count_error(c->w);
        return;
    }
    if (c->seq != 0)
        lg_device_ack(c->dev, c->seq, c->seq + (uint32_t)e->o->batch - 1);
    st->duplicates += duplicates_in(c);
    if (e->o->mode == LG_IDLE && !c->w->issuing)
        st->established++;
    if (now >= atomic_load(&e->t_measure) && now < atomic_load(&e->t_end)) {
        st->ok++;
        st->readings += (uint64_t)e->o->batch;
        bench_hist_add(st->hist, now - c->t_start);
        st->last_answer_ns = now;
        if (e->o->mode == LG_HANDSHAKE)
            count_wake(c, st);
    }
}

static void on_answer(conn *c, uint64_t now)
{
    worker *w = c->w;
    const lg_options *o = w->e->o;
    record_answer(c, now);
    end_request(c);
    int keep = http_should_keep_alive(&c->parser);
    if (o->mode == LG_HANDSHAKE) {
        conn_close(c, keep);
        open_for_request(c);
    } else if (!keep) {
        conn_close(c, 0);
        if (o->mode == LG_IDLE) {
            w->st.closed_by_server++;
        } else if (w->issuing && !atomic_load(&w->e->stop)) {
            w->st.reconnects++;
            if (conn_open(c) != 0)
                conn_failed(c, F_CONNECT);
        }
    } else if (o->mode == LG_IDLE) {
        c->state = C_IDLE;
        set_interest(c, EPOLLIN);
    } else {
        schedule(c, now);
    }
}

static void on_connected(conn *c, uint64_t now)
{
    worker *w = c->w;
    switch (w->e->o->mode) {
    case LG_HANDSHAKE:
        if (prepare_request(c, c->t_start) != 0)
            conn_failed(c, F_HTTP);
        break;
    case LG_IDLE:
        c->pending = 1;
        w->pending++;
        if (prepare_request(c, now) != 0)
            conn_failed(c, F_HTTP);
        break;
    case LG_KEEPALIVE:
        schedule(c, now);
        break;
    }
}

/* --- I/O: TLS or plain ----------------------------------------------- */

#define IO_AGAIN (-1)
#define IO_ERR   (-2)

static int is_connect_errno(int e)
{
    return e == ECONNREFUSED || e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH ||
           e == EADDRNOTAVAIL;
}

/* An SSL call returned r <= 0. */
/* A round trip is a wait for the server after the client sent something
 * new: two reads that wait for parts of one answer (a TLS 1.3 ticket, then
 * the HTTP answer) are one round trip. */
static void note_round_trip(conn *c)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (c->w->e->o->mode != LG_HANDSHAKE)
        return; /* counted per wake-up only: no extra system call on keep-alive reads */
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        ti.tcpi_bytes_sent <= c->sent_at_wait)
        return;
    c->sent_at_wait = ti.tcpi_bytes_sent;
    c->waits++;
}

static ssize_t ssl_wait(conn *c, int r, int *closed)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        note_round_trip(c);
        set_interest(c, EPOLLIN);
        return IO_AGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        set_interest(c, EPOLLOUT);
        return IO_AGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        *closed = 1;
    return IO_ERR;
}

static ssize_t io_read(conn *c, char *buf, size_t size, int *closed)
{
    *closed = 0;
    if (c->ssl != NULL) {
        int r = SSL_read(c->ssl, buf, (int)size);
        return r > 0 ? r : ssl_wait(c, r, closed);
    }
    ssize_t n = read(c->fd, buf, size);
    if (n > 0)
        return n;
    if (n == 0) {
        *closed = 1;
        return IO_ERR;
    }
    if (errno == EAGAIN) { /* EWOULDBLOCK is the same on Linux */
        set_interest(c, EPOLLIN);
        return IO_AGAIN;
    }
    *closed = errno == ECONNRESET;
    return IO_ERR;
}

static ssize_t io_write(conn *c, int *closed)
{
    *closed = 0;
    const char *p = c->req + c->req_off;
    size_t n = c->req_len - c->req_off;
    if (c->ssl != NULL) {
        int r = SSL_write(c->ssl, p, (int)n);
        return r > 0 ? r : ssl_wait(c, r, closed);
    }
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w >= 0)
        return w;
    if (errno == EAGAIN) { /* EWOULDBLOCK is the same on Linux */
        set_interest(c, EPOLLOUT);
        return IO_AGAIN;
    }
    *closed = errno == EPIPE || errno == ECONNRESET;
    return IO_ERR;
}

/* --- the state machine -------------------------------------------------- */

static int step_connecting(conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        errno = err;
        note_error(c, "connect failed");
        conn_failed(c, F_CONNECT);
        return -1;
    }
    on_connected(c, lg_now_ns());
    return 0;
}

static int step_handshake(conn *c)
{
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        on_connected(c, lg_now_ns());
        return 0;
    }
    int closed;
    if (ssl_wait(c, r, &closed) == IO_AGAIN)
        return -1;
    int connect_err = is_connect_errno(errno);
    note_error(c, "TLS handshake failed");
    conn_failed(c, connect_err ? F_CONNECT : F_TLS);
    return -1;
}

static int step_writing(conn *c)
{
    int closed;
    errno = 0;
    ssize_t n = io_write(c, &closed);
    if (n == IO_AGAIN)
        return -1;
    if (n < 0) {
        note_error(c, "sending a request failed");
        conn_failed(c, closed ? F_CLOSED : F_TLS);
        return -1;
    }
    c->req_off += (size_t)n;
    if (c->req_off == c->req_len)
        c->state = C_READING;
    return 0;
}

static int step_reading(conn *c, char *buf)
{
    int closed;
    errno = 0;
    ssize_t n = io_read(c, buf, READ_BUF, &closed);
    if (n == IO_AGAIN)
        return -1;
    if (n < 0 && closed) /* an answer without a length ends with the connection */
        http_parser_execute(&c->parser, &PARSER, NULL, 0);
    else if (n > 0 && http_parser_execute(&c->parser, &PARSER, buf, (size_t)n) != (size_t)n) {
        note_error(c, http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
        conn_failed(c, F_HTTP);
        return -1;
    }
    if (c->done) {
        on_answer(c, lg_now_ns());
        return c->state == C_FREE ? -1 : 0;
    }
    if (n < 0) {
        note_error(c, "connection lost while waiting for an answer");
        conn_failed(c, closed ? F_CLOSED : F_TLS);
        return -1;
    }
    return 0;
}

/* Nothing is expected now: anything readable is the server closing. */
static void step_quiet(conn *c, char *buf)
{
    int closed;
    ssize_t n = io_read(c, buf, READ_BUF, &closed);
    if (n == IO_AGAIN)
        return;
    if (c->state == C_IDLE) {
        c->w->st.closed_by_server++;
        conn_close(c, 0);
    } else {
        note_error(c, "the server closed a kept-alive connection");
        conn_failed(c, F_CLOSED);
    }
}

/* Runs the connection until it has to wait for its socket. */
static void conn_drive(conn *c)
{
    static _Thread_local char buf[READ_BUF];
    int go = 0;
    do {
        switch (c->state) {
        case C_CONNECTING:
            go = step_connecting(c) == 0;
            break;
        case C_HANDSHAKE:
            go = step_handshake(c) == 0;
            break;
        case C_WRITING:
            go = step_writing(c) == 0;
            break;
        case C_READING:
            go = step_reading(c, buf) == 0;
            break;
        case C_WAITING:
        case C_IDLE:
            step_quiet(c, buf);
            go = 0;
            break;
        case C_FREE:
            go = 0;
            break;
        }
    } while (go);
}

/* --- the loop ----------------------------------------------------------- */

/* Starts the parked requests that are due, then waits for the sockets
 * until `until` or the next due request. */
static void poll_once(worker *w, uint64_t until)
{
    struct epoll_event evs[MAX_EVENTS];
    uint64_t wake = until;
    if (w->e->o->rate > 0 && w->issuing && !atomic_load(&w->e->stop)) {
        uint64_t now = lg_now_ns();
        int wakes = w->e->o->mode == LG_HANDSHAKE;
        for (int i = 0; i < w->nconns; i++) {
            conn *c = &w->conns[i];
            if (wakes ? c->state != C_FREE || c->pending : c->state != C_WAITING)
                continue;
            if (c->next_due <= now && wakes) {
                open_for_request(c);
            } else if (c->next_due <= now) {
                start_request(c, c->next_due);
                conn_drive(c);
            } else if (c->next_due < wake) {
                wake = c->next_due;
            }
        }
    }
    uint64_t now = lg_now_ns();
    uint64_t wait = wake > now ? wake - now : 0;
    if (wait > TICK_NS)
        wait = TICK_NS;
    struct timespec ts = {.tv_sec = (time_t)(wait / NS), .tv_nsec = (long)(wait % NS)};
    int n = epoll_pwait2(w->epfd, evs, MAX_EVENTS, &ts, NULL);
    for (int i = 0; i < n; i++)
        conn_drive(evs[i].data.ptr);
}

/* Keep-alive and idle: every connection up (and, idle, one request made)
 * before the clock starts, at most SETUP_IN_FLIGHT at a time. */
static void setup_phase(worker *w)
{
    uint64_t deadline = lg_now_ns() + SETUP_MAX_NS;
    int opened = 0;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < opened; i++) {
            cstate s = w->conns[i].state;
            busy += s == C_CONNECTING || s == C_HANDSHAKE || s == C_WRITING || s == C_READING;
        }
        while (opened < w->nconns && busy < SETUP_IN_FLIGHT) {
            if (conn_open(&w->conns[opened++]) == 0) {
                busy++;
            } else {
                w->st.err_connect++;
                count_error(w);
            }
        }
        if ((busy == 0 && opened == w->nconns) || atomic_load(&w->e->stop) ||
            lg_now_ns() > deadline)
            return;
        poll_once(w, lg_now_ns() + TICK_NS);
    }
}

static void kick_off(worker *w, uint64_t begin)
{
    const lg_options *o = w->e->o;
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->state != C_WAITING)
            continue;
        /* Spread the first requests so that the rate is steady from the start. */
        c->next_due = begin + (o->rate > 0 ? (uint64_t)((double)c->id / o->rate * 1e9) : 0);
        if (o->rate <= 0 || c->next_due <= lg_now_ns()) {
            start_request(c, o->rate > 0 ? c->next_due : lg_now_ns());
            conn_drive(c);
        }
    }
}

static int run_over(worker *w)
{
    lg_engine *e = w->e;
    if (atomic_load(&e->stop) || lg_now_ns() >= atomic_load(&e->t_end))
        return 1;
    /* --requests: done once all are started and answered. */
    return atomic_load(&e->budget) <= 0 && w->pending == 0;
}

static void finish(worker *w)
{
    const lg_options *o = w->e->o;
    w->issuing = 0;
    uint64_t deadline = lg_now_ns() + (uint64_t)(o->grace * 1e9);
    while (w->pending > 0 && lg_now_ns() < deadline && !atomic_load(&w->e->failed))
        poll_once(w, deadline);
    w->st.unanswered += (uint64_t)w->pending;
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->state != C_FREE)
            conn_close(c, c->state == C_WAITING || c->state == C_IDLE);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    lg_engine *e = w->e;
    if (e->o->mode != LG_HANDSHAKE)
        setup_phase(w);
    pthread_barrier_wait(&e->setup_done);
    pthread_barrier_wait(&e->go);
    w->issuing = 1;
    if (e->o->mode == LG_HANDSHAKE) {
        uint64_t begin = atomic_load(&e->t_begin);
        for (int i = 0; i < w->nconns; i++) {
            conn *c = &w->conns[i];
            /* Spread the devices' wake-ups over one period. */
            c->next_due =
                begin + (e->o->rate > 0 ? (uint64_t)((double)c->id / e->o->rate * 1e9) : 0);
            open_for_request(c);
        }
    } else if (e->o->mode == LG_KEEPALIVE) {
        kick_off(w, atomic_load(&e->t_begin));
    }
    while (!run_over(w))
        poll_once(w, atomic_load(&e->t_end));
    finish(w);
    return NULL;
}

/* --- the engine --------------------------------------------------------- */

static int init_worker(lg_engine *e, worker *w, int base, int n)
{
    w->e = e;
    w->conns = e->conns + base;
    w->nconns = n;
    w->st.hist = calloc(1, sizeof(*w->st.hist));
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->st.hist == NULL || w->epfd < 0)
        return -1;
    size_t cap = lg_request_cap(e->o);
    for (int j = 0; j < n; j++) {
        conn *c = &w->conns[j];
        c->id = base + j;
        c->fd = -1;
        c->w = w;
        c->req_cap = cap;
        c->req = malloc(cap);
        if (c->req == NULL)
            return -1;
    }
    return 0;
}

lg_engine *lg_engine_start(const lg_options *o, lg_devices *devs, char *err, size_t err_size)
{
    lg_engine *e = calloc(1, sizeof(*e));
    if (e == NULL)
        goto nomem;
    e->o = o;
    e->devs = devs;
    e->wall_off = lg_wall_offset_ns();
    e->period_ns = o->rate > 0 ? (double)o->conns / o->rate * 1e9 : 0;
    atomic_init(&e->budget, o->requests > 0 ? o->requests : INT64_MAX);
    atomic_init(&e->t_end, UINT64_MAX);
    atomic_init(&e->t_measure, UINT64_MAX);
    e->addr.sin_family = AF_INET;
    e->addr.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &e->addr.sin_addr) != 1) {
        snprintf(err, err_size, "--host must be an IPv4 address: %s", o->host);
        goto fail;
    }
    e->nworkers = o->threads;
    e->ws = calloc((size_t)o->threads, sizeof(*e->ws));
    e->conns = calloc((size_t)o->conns, sizeof(*e->conns));
    if (e->ws == NULL || e->conns == NULL)
        goto nomem;
    for (int i = 0, base = 0; i < o->threads; i++) {
        int n = o->conns / o->threads + (i < o->conns % o->threads);
        if (init_worker(e, &e->ws[i], base, n) != 0)
            goto nomem;
        base += n;
    }
    pthread_barrier_init(&e->setup_done, NULL, (unsigned)o->threads + 1);
    pthread_barrier_init(&e->go, NULL, (unsigned)o->threads + 1);
    for (int i = 0; i < o->threads; i++) {
        if (pthread_create(&e->ws[i].tid, NULL, worker_main, &e->ws[i]) != 0) {
            /* Threads already started wait on the barrier: the caller exits. */
            snprintf(err, err_size, "cannot start thread %d", i);
            return NULL;
        }
    }
    pthread_barrier_wait(&e->setup_done);
    return e;
nomem:
    snprintf(err, err_size, "out of memory");
fail:
    lg_engine_free(e);
    return NULL;
}

uint64_t lg_engine_go(lg_engine *e)
{
    const lg_options *o = e->o;
    uint64_t begin = lg_now_ns() + NS / 1000;
    double warm = o->mode == LG_IDLE ? 0.0 : o->warmup;
    double span = o->mode == LG_IDLE ? o->hold : o->duration;
    atomic_store(&e->t_begin, begin);
    atomic_store(&e->t_measure, begin + (uint64_t)(warm * 1e9));
    atomic_store(&e->t_end, begin + (uint64_t)((warm + span) * 1e9));
    pthread_barrier_wait(&e->go);
    return begin + (uint64_t)(warm * 1e9);
}

void lg_engine_stop(lg_engine *e)
{
    atomic_store(&e->stop, 1);
}

void lg_engine_setup_figures(lg_engine *e, uint64_t *established, uint64_t *errors)
{
    *established = 0;
    *errors = 0;
    for (int i = 0; i < e->nworkers; i++) {
        *established += e->ws[i].st.established;
        *errors += e->ws[i].errors;
    }
}

int lg_engine_join(lg_engine *e, lg_stats *out)
{
    for (int i = 0; i < e->nworkers; i++) {
        worker *w = &e->ws[i];
        pthread_join(w->tid, NULL);
        const lg_stats *s = &w->st;
        out->ok += s->ok;
        out->readings += s->readings;
        for (int k = 0; k < LG_STATUS_MAX; k++)
            out->status[k] += s->status[k];
        out->err_connect += s->err_connect;
        out->err_tls += s->err_tls;
        out->err_http += s->err_http;
        out->err_closed += s->err_closed;
        out->unanswered += s->unanswered;
        out->duplicates += s->duplicates;
        out->reconnects += s->reconnects;
        out->established += s->established;
        out->closed_by_server += s->closed_by_server;
        out->wakes += s->wakes;
        out->wakes_resumed += s->wakes_resumed;
        out->wire_out += s->wire_out;
        out->wire_in += s->wire_in;
        out->waits += s->waits;
        if (s->last_answer_ns > out->last_answer_ns)
            out->last_answer_ns = s->last_answer_ns;
        bench_hist_merge(out->hist, s->hist);
        if (out->first_error[0] == '\0' && s->first_error[0] != '\0')
            snprintf(out->first_error, sizeof(out->first_error), "%s", s->first_error);
    }
    pthread_barrier_destroy(&e->setup_done);
    pthread_barrier_destroy(&e->go);
    return atomic_load(&e->failed);
}

void lg_engine_free(lg_engine *e)
{
    if (e == NULL)
        return;
    for (int i = 0; e->ws != NULL && i < e->nworkers; i++) {
        worker *w = &e->ws[i];
        for (int j = 0; j < w->nconns; j++)
            free(w->conns[j].req);
        free(w->st.hist);
        if (w->epfd > 0) /* 0: never created (calloc) */
            close(w->epfd);
    }
    free(e->ws);
    free(e->conns);
    free(e);
}
