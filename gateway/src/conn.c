/* HTTP connections of the device and admin listeners: admission, TLS, the
 * request loop, answers; conn.h describes the life of one. */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "proxyv2.h"
#include "metrics.h"
#include "est.h"
#include "tls.h"

#define HEAD_MAX      512
#define ADMIN_AUTH    "WWW-Authenticate: Bearer realm=\"iotgw\"\r\n"
#define LINGER_MS     2000
#define CONTINUE_LINE "HTTP/1.1 100 Continue\r\n\r\n"
/* Head and body of an answer written in one SSL_write: every answer but an
 * update image. */
#define GW_DIRECT_MAX 2048
/* Plaintext taken from the TLS session at a time (pull_pending): one record. */
#define GW_PULL_CHUNK 16384

/* Request bytes buffered over all connections (max_buffered_bytes). */
static atomic_size_t buffered_total;
static size_t buffered_max = (size_t)-1;

void gw_conn_set_buffer_limit(size_t max)
{
    buffered_max = max;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

/* ---- buffered bytes -------------------------------------------------- */

static void buffered_release(gw_conn *c)
{
    if (c->buffered == 0)
        return;
    atomic_fetch_sub(&buffered_total, c->buffered);
    gw_gauge_add(GW_G_REQUEST_BYTES, -(int64_t)c->buffered);
    c->buffered = 0;
}

/* Runs as decrypted bytes arrive. Each request is capped on its own
 * (headers, body); this caps their sum, so that many slow uploads cannot
 * take the memory of the whole gateway: the connection that would go
 * beyond it is closed. It runs inside the bufferevent's read, so the
 * socket is shut down and the close comes through the event path. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    gw_conn *c = arg;
    if (info->n_added == 0 || c->over_budget)
        return;
    c->buffered += info->n_added;
    gw_gauge_add(GW_G_REQUEST_BYTES, (int64_t)info->n_added);
    size_t total = atomic_fetch_add(&buffered_total, info->n_added) + info->n_added;
    if (total <= buffered_max)
        return;
    c->over_budget = true;
    gw_refusal_inc(GW_REF_CONN_OVER_CAPACITY);
    gw_log(GW_LOG_WARN, "connection.refused",
           "peer=%s reason=over_capacity detail=\"max_buffered_bytes reached\" buffered=%zu",
           c->peer, total);
    shutdown(c->fd, SHUT_RDWR);
}

/* ---- life and death --------------------------------------------------- */

static void preface_free(gw_conn *c)
{
    if (c->preface != NULL)
        event_free(c->preface);
    c->preface = NULL;
    if (c->preface_wait != NULL)
        event_free(c->preface_wait);
    c->preface_wait = NULL;
}

/* Everything the connection holds, given back once. */
static void conn_close(gw_conn *c)
{
    if (!c->open)
        return;
    c->open = false;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->env->open = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    buffered_release(c);
    if (c->bev != NULL) {
        if (c->input_cb != NULL)
            evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
        if (c->ssl != NULL)
            SSL_set_app_data(c->ssl, NULL);
        bufferevent_free(c->bev); /* closes the socket and frees the SSL */
    } else if (c->fd >= 0) {
        close(c->fd);
    }
    c->bev = NULL;
    c->ssl = NULL;
    c->fd = -1;
    if (c->timer != NULL)
        event_free(c->timer);
    c->timer = NULL;
    if (c->linger != NULL)
        event_free(c->linger);
    c->linger = NULL;
    preface_free(c);
    if (c->holds_address_slot && gw_addr_limit_release(c->env->per_address, &c->address))
        gw_gauge_add(GW_G_CONNECTED_ADDRESSES, -1);
    c->holds_address_slot = false;
    if (c->per_device != NULL)
        gw_dev_limit_release(c->per_device, c->slot_device);
    c->per_device = NULL;
    if (c->serving)
        c->env->serving--;
    c->serving = false;
    gw_http_reader_free(&c->http);
    if (c->counted)
        gw_gauge_add(GW_G_OPEN_CONNECTIONS, -1);
    c->counted = false;
    gw_conn_unref(c);
}

void gw_conn_ref(gw_conn *c)
{
    c->refs++;
}

void gw_conn_unref(gw_conn *c)
{
    if (--c->refs == 0)
        free(c);
}

bool gw_conn_is_open(const gw_conn *c)
{
    return c->open;
}

void gw_conn_close_all(gw_conn_env *env)
{
    while (env->open != NULL)
        conn_close(env->open);
}

bool gw_conn_any_writing(const gw_conn_env *env)
{
    for (const gw_conn *c = env->open; c != NULL; c = c->next)
        if (c->state == GW_CONN_WRITING)
            return true;
    return false;
}

gw_conn *gw_conn_of_ssl(const SSL *ssl)
{
    return SSL_get_app_data(ssl);
}

/* ---- admission ---------------------------------------------------------- */

static void refuse_connection(gw_conn *c, gw_refusal why, const char *detail)
{
    gw_refusal_inc(why);
    gw_log(GW_LOG_WARN, "connection.refused", "address=%s reason=%s detail=\"%s\" peer=%s",
           c->has_address ? c->address_text : c->peer,
           gw_refusal_counter_name(gw_refusal_row_of(why)->counter), detail, c->peer);
}

/* max_connections, then the address's rate of new connections, then the
 * connections it holds: all before the handshake costs anything. */
static bool admit(gw_conn *c)
{
    if (c->env->kind != GW_CONN_DEVICE)
        return true;
    int max = c->env->app->opt.max_connections;
    if (max > 0 && gw_gauge_get(GW_G_OPEN_CONNECTIONS) >= max) {
        refuse_connection(c, GW_REF_CONN_OVER_CAPACITY, "max_connections reached");
        return false;
    }
    if (!c->has_address)
        return true;
    if (c->env->address_rate != NULL &&
        !gw_addr_rate_take(c->env->address_rate, &c->address, now_mono())) {
        refuse_connection(c, GW_REF_CONN_RATE_LIMITED, "connection_rate_per_address exceeded");
        return false;
    }
    if (c->env->per_address == NULL)
        return true;
    bool first = false;
    if (!gw_addr_limit_acquire(c->env->per_address, &c->address, &first)) {
        refuse_connection(c, GW_REF_CONN_OVER_CAPACITY, "max_connections_per_address reached");
        return false;
    }
    c->holds_address_slot = true;
    if (first)
        gw_gauge_add(GW_G_CONNECTED_ADDRESSES, 1);
    return true;
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

static void arm_deadline(gw_conn *c)
{
    struct timeval tv = ms_tv(c->env->request_timeout_ms);
    evtimer_add(c->timer, &tv);
}

/* The TLS session (or the plain socket: the admin listener, a device
 * listener in development mode) and the event wiring of an admitted
 * connection. */
static bool start_io(gw_conn *c)
{
    int opts = BEV_OPT_CLOSE_ON_FREE;
    if (c->env->tls != NULL) {
        c->ssl = gw_tls_new_connection(c->env->tls, c);
        if (c->ssl == NULL)
            return false;
        c->bev = bufferevent_openssl_socket_new(c->env->base, c->fd, c->ssl,
                                                BUFFEREVENT_SSL_ACCEPTING, opts);
        if (c->bev == NULL) {
            SSL_free(c->ssl);
            c->ssl = NULL;
        }
    } else {
        c->bev = bufferevent_socket_new(c->env->base, c->fd, opts);
    }
    if (c->timer == NULL) /* made already when a PROXY header was looked for */
        c->timer = evtimer_new(c->env->base, on_timer, c);
    if (c->bev == NULL || c->timer == NULL)
        return false;
    if (c->env->kind == GW_CONN_DEVICE)
        c->input_cb = evbuffer_add_cb(bufferevent_get_input(c->bev), on_input, c);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    if (c->ssl != NULL) {
        /* An answer that the session could not take at once (send_direct)
         * is retried by the bufferevent from its own buffer. */
        SSL_set_mode(c->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        /* One read per request rather than two (a record's header, then the
         * rest): OpenSSL reads what the socket holds (pull_pending). */
        SSL_set_read_ahead(c->ssl, 1);
    }
    /* While a request is with its handler, what follows it waits in the
     * socket rather than in memory. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, GW_HTTP_HEADERS_MAX + c->env->max_body);
    arm_deadline(c); /* the handshake and the first request */
    return bufferevent_enable(c->bev, EV_READ | EV_WRITE) == 0;
}

/* ---- before TLS: the PROXY header (proxy_protocol_from) ------------------ */

/* Counts an admitted device connection in the open connections. */
static void count_open(gw_conn *c)
{
    if (c->env->kind != GW_CONN_DEVICE)
        return;
    gw_gauge_add(GW_G_OPEN_CONNECTIONS, 1);
    c->counted = true;
}

/* The first bytes are settled: TLS takes the socket from here. */
static void begin_tls(gw_conn *c)
{
    preface_free(c);
    if (start_io(c))
        return;
    gw_refusal_inc(GW_REF_OUT_OF_MEMORY);
    gw_log(GW_LOG_ERROR, "connection.refused",
           "peer=%s reason=out_of_memory detail=\"no memory for the connection\"", c->peer);
    conn_close(c);
}

static void refuse_preface(gw_conn *c, const char *detail)
{
    refuse_connection(c, GW_REF_PROXY_HEADER, detail);
    conn_close(c);
}

/* Part of a header has come: looking again at once would spin on the
 * same bytes (the socket stays readable), so look again shortly; the
 * connection's deadline bounds the wait. */
static void wait_more(gw_conn *c)
{
    struct timeval tv = ms_tv(10);
    event_del(c->preface);
    evtimer_add(c->preface_wait, &tv);
}

/* The balancer's client becomes the connection's peer and address, for the
 * per-address limits and every log line. */
static void take_client_address(gw_conn *c, const gw_proxy_header *h)
{
    char balancer[GW_PEER_MAX];
    memcpy(balancer, c->peer, sizeof(balancer));
    const struct sockaddr *sa = (const struct sockaddr *)&h->source;
    gw_peer_format(sa, h->source_len, c->peer, sizeof(c->peer));
    c->has_address = gw_addr_key_of(sa, h->source_len, &c->address);
    if (c->has_address)
        gw_addr_key_format(&c->address, c->address_text, sizeof(c->address_text));
    gw_log(GW_LOG_DEBUG, "connection.proxied", "peer=%s balancer=%s", c->peer, balancer);
}

/* A balancer's connection: its PROXY v2 header, taken off the socket to
 * the last byte and no further (what follows is the client's TLS), then
 * admission with the client's address. */
static void take_proxy_header(gw_conn *c, const uint8_t *buf, size_t n)
{
    gw_proxy_header h;
    const char *why = NULL;
    gw_proxy_status st = gw_proxy_parse(buf, n, &h, &why);
    if (st == GW_PROXY_MORE) {
        wait_more(c);
        return;
    }
    if (st == GW_PROXY_INVALID) {
        char detail[160];
        snprintf(detail, sizeof(detail), "no valid PROXY v2 header from a balancer: %s", why);
        refuse_preface(c, detail);
        return;
    }
    uint8_t sink[GW_PROXY_MAX];
    if (recv(c->fd, sink, h.length, 0) != (ssize_t)h.length) {
        conn_close(c); /* the bytes just peeked are gone: the socket failed */
        return;
    }
    if (!h.local)
        take_client_address(c, &h);
    if (!admit(c)) {
        conn_close(c);
        return;
    }
    count_open(c);
    begin_tls(c);
}

/* The first bytes of a connection, peeked: a balancer's PROXY header, or
 * anyone else's first TLS record (a PROXY header from them is refused:
 * it would claim an address they may not claim). */
static void on_preface(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    gw_conn *c = arg;
    uint8_t buf[GW_PROXY_MAX];
    ssize_t n = recv(fd, buf, c->from_balancer ? sizeof(buf) : GW_PROXY_SIG_LEN, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c); /* gone before a byte, as a port scan does */
        return;
    }
    if (c->from_balancer) {
        take_proxy_header(c, buf, (size_t)n);
        return;
    }
    gw_proxy_status st = gw_proxy_sniff(buf, (size_t)n);
    if (st == GW_PROXY_DONE)
        refuse_preface(c, "a PROXY header from an address not in proxy_protocol_from");
    else if (st == GW_PROXY_MORE)
        wait_more(c);
    else
        begin_tls(c);
}

static void on_preface_wait(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_conn *c = arg;
    if (event_add(c->preface, NULL) != 0)
        conn_close(c);
}

/* Watches the first bytes within the request deadline (on_timer). */
static bool start_preface(gw_conn *c)
{
    c->timer = evtimer_new(c->env->base, on_timer, c);
    c->preface = event_new(c->env->base, c->fd, EV_READ | EV_PERSIST, on_preface, c);
    c->preface_wait = evtimer_new(c->env->base, on_preface_wait, c);
    if (c->timer == NULL || c->preface == NULL || c->preface_wait == NULL)
        return false;
    arm_deadline(c);
    return event_add(c->preface, NULL) == 0;
}

void gw_conn_accept(gw_conn_env *env, evutil_socket_t fd, const struct sockaddr *sa, socklen_t len)
{
    gw_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        gw_refusal_inc(GW_REF_OUT_OF_MEMORY);
        gw_log(GW_LOG_ERROR, "connection.refused",
               "peer=? reason=out_of_memory detail=\"no memory for a connection\"");
        close(fd);
        return;
    }
    c->env = env;
    c->fd = fd;
    c->refs = 1;
    c->pending = GW_REF_COUNT;
    gw_peer_format(sa, len, c->peer, sizeof(c->peer));
    c->has_address = gw_addr_key_of(sa, len, &c->address);
    if (c->has_address)
        gw_addr_key_format(&c->address, c->address_text, sizeof(c->address_text));
    if (env->kind == GW_CONN_DEVICE)
        gw_metric_inc(GW_M_CONNECTIONS_ACCEPTED);
    /* A balancer's connection is admitted once its header names the client. */
    c->from_balancer = env->proxy_from != NULL && gw_proxy_from_match(env->proxy_from, sa, len);
    if (!c->from_balancer && !admit(c)) {
        close(fd);
        free(c);
        return;
    }
    if (!c->from_balancer)
        count_open(c);
    c->open = true;
    c->next = env->open;
    if (env->open != NULL)
        env->open->prev = c;
    env->open = c;
    gw_http_reader_init(&c->http);
    bool started = env->proxy_from != NULL ? start_preface(c) : start_io(c);
    if (!started) {
        gw_refusal_inc(GW_REF_OUT_OF_MEMORY);
        gw_log(GW_LOG_ERROR, "connection.refused",
               "peer=%s reason=out_of_memory detail=\"no memory for the connection\"", c->peer);
        conn_close(c);
    }
}

/* ---- answers ------------------------------------------------------------ */

static void send_bytes(gw_conn *c, const char *data, size_t len)
{
    evbuffer_add(bufferevent_get_output(c->bev), data, len);
}

/* Whether an answer can be taken: not while one is going out or after the
 * last. */
static bool can_answer(const gw_conn *c)
{
    return c->open && c->state != GW_CONN_WRITING && c->state != GW_CONN_CLOSING;
}

/* Formats the head of an answer of len body bytes into head (HEAD_MAX) and
 * switches to writing; 0 when no answer can go out (the connection is then
 * closed). *send_body: false for a HEAD request. */
static size_t reply_head(gw_conn *c, char *head, int status, const char *content_type,
                         const char *extra_headers, uint64_t len, bool *send_body)
{
    bool keep = c->http.req.keep_alive && !c->close_after && c->http.done;
    *send_body = !(c->http.req.method == HTTP_HEAD && c->http.headers_done) && len > 0;
    size_t n =
        gw_http_format_head(head, HEAD_MAX, status, content_type, extra_headers, (size_t)len, keep);
    if (n == 0) {
        /* Never happens with the gateway's answers; closing is the safe way out. */
        conn_close(c);
        return 0;
    }
    c->close_after = !keep;
    c->state = GW_CONN_WRITING;
    arm_deadline(c); /* a peer that does not read its answer is not waited for */
    return n;
}

/* Writes the head of an answer of len body bytes to the bufferevent and
 * switches to writing; NULL when no answer can go out. */
static struct evbuffer *begin_reply(gw_conn *c, int status, const char *content_type,
                                    const char *extra_headers, uint64_t len, bool *send_body)
{
    if (!can_answer(c))
        return NULL;
    char head[HEAD_MAX];
    size_t n = reply_head(c, head, status, content_type, extra_headers, len, send_body);
    if (n == 0)
        return NULL;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, head, n);
    return out;
}

/* The end of an answer written directly (on_write). An answer given while
 * the connection's input is being read (a handler that answers at once)
 * ends from the event loop, after the reader has returned; one given later
 * (from the outbox's answer) ends here, without another pass of the loop. */
static void finish_answer(gw_conn *c)
{
    if (c->feeding)
        bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
    else
        on_write(c->bev, c);
}

/* An answer written to the TLS session at once, when nothing else is
 * waiting to go out. Through the bufferevent it would cost two epoll_ctl
 * per answer (write interest on, then off) and a wait for the socket to be
 * reported writable, which the socket of a device waiting for its answer
 * is. What the session cannot take now (WANT_WRITE) goes to the
 * bufferevent, which retries with the same bytes
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER); an error does too, and the
 * bufferevent reports it and the connection closes. */
static void send_direct(gw_conn *c, const char *data, size_t len)
{
    ERR_clear_error();
    int n = SSL_write(c->ssl, data, (int)len);
    if (n > 0 && (size_t)n == len) {
        finish_answer(c);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, data + done, len - done);
    /* One chunk: after WANT_WRITE the session must be given the same
     * bytes again in one SSL_write. */
    evbuffer_pullup(out, -1);
}

/* Whether an answer of len bytes can be written directly: over TLS, with
 * nothing queued before it (a 100 Continue), and small enough for one
 * record. */
static bool direct_ok(gw_conn *c, size_t len)
{
    return c->ssl != NULL && len <= GW_DIRECT_MAX &&
           evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

void gw_conn_reply_as(gw_conn *c, int status, const char *content_type, const char *extra_headers,
                      const char *body, size_t len)
{
    bool send_body = false;
    if (!can_answer(c))
        return;
    char msg[HEAD_MAX + GW_DIRECT_MAX];
    size_t n = reply_head(c, msg, status, content_type, extra_headers, len, &send_body);
    if (n == 0)
        return;
    size_t body_len = send_body ? len : 0;
    if (direct_ok(c, n + body_len)) {
        if (body_len > 0)
            memcpy(msg + n, body, body_len);
        send_direct(c, msg, n + body_len);
        return;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, msg, n);
    if (body_len > 0)
        evbuffer_add(out, body, body_len);
    /* One chunk, so bufferevent_openssl sends it as one TLS record. */
    evbuffer_pullup(out, -1);
}

void gw_conn_reply_file(gw_conn *c, int status, const char *content_type, const char *extra_headers,
                        int fd, uint64_t offset, uint64_t len)
{
    bool send_body = false;
    struct evbuffer_file_segment *seg = NULL;
    /* Mapped, not sent with sendfile: the bytes go through TLS. */
    if (len > 0)
        seg = evbuffer_file_segment_new(fd, (ev_off_t)offset, (ev_off_t)len,
                                        EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_SENDFILE);
    if (seg == NULL) {
        close(fd);
        if (len > 0) {
            gw_log(GW_LOG_ERROR, "update.image_unreadable", "peer=%s bytes=%llu", c->peer,
                   (unsigned long long)len);
            conn_close(c);
            return;
        }
    }
    struct evbuffer *out = begin_reply(c, status, content_type, extra_headers, len, &send_body);
    if (out != NULL && send_body)
        evbuffer_add_file_segment(out, seg, 0, (ev_off_t)len);
    if (seg != NULL)
        evbuffer_file_segment_free(seg); /* the buffer holds its own reference */
}

void gw_conn_reply(gw_conn *c, int status, const char *extra_headers, const char *body, size_t len)
{
    gw_conn_reply_as(c, status, NULL, extra_headers, body, len);
}

/* The refusal's line: request.refused on the device listener, admin.refused
 * (reason= first, as operators grep it) on the admin listener. */
static void log_refusal(gw_conn *c, const gw_refusal_row *row, const char *device,
                        const char *detail)
{
    const char *cls = gw_refusal_class_name(row->cls);
    if (c->env->kind == GW_CONN_ADMIN)
        gw_log(row->level, "admin.refused",
               "peer=%s reason=%s status=%d error=%s class=%s detail=\"%s\"", c->peer,
               gw_refusal_counter_name(row->counter), row->status, row->error, cls, detail);
    else
        gw_log(row->level, "request.refused",
               "peer=%s device=%s status=%d error=%s class=%s detail=\"%s\"", c->peer,
               device != NULL && device[0] != '\0' ? device : "-", row->status, row->error, cls,
               detail);
}

void gw_conn_refuse_with(gw_conn *c, gw_refusal why, const char *device, const char *detail,
                         const char *extra_headers)
{
    const gw_refusal_row *row = gw_refusal_row_of(why);
    gw_refusal_inc(why);
    log_refusal(c, row, device, detail);
    char body[512];
    size_t len = gw_http_error_body(body, sizeof(body), row->error, detail);
    gw_conn_reply(c, row->status, extra_headers, body, len);
}

void gw_conn_refuse(gw_conn *c, gw_refusal why, const char *device, const char *detail,
                    int retry_after)
{
    const gw_refusal_row *row = gw_refusal_row_of(why);
    gw_refusal_inc(why);
    log_refusal(c, row, device, detail);
    char headers[160] = "";
    if (why == GW_REF_METHOD_NOT_ALLOWED || why == GW_REF_ADMIN_METHOD_NOT_ALLOWED)
        snprintf(headers, sizeof(headers), "Allow: %s\r\n", c->allow);
    else if (why == GW_REF_ADMIN_UNAUTHORIZED)
        snprintf(headers, sizeof(headers), "%s", ADMIN_AUTH);
    else if (why == GW_REF_ADMIN_OVER_CAPACITY)
        c->close_after = true; /* its slot is not this connection's to keep trying */
    else if (retry_after > 0)
        snprintf(headers, sizeof(headers), "Retry-After: %d\r\n", retry_after);
    char body[512];
    size_t len = gw_http_error_body(body, sizeof(body), row->error, detail);
    gw_conn_reply(c, row->status, headers, body, len);
}

/* ---- identity ------------------------------------------------------------ */

/* The device speaking on this connection, re-checked per request so a
 * revocation loaded after the handshake takes effect at once; the check
 * itself runs once per admission snapshot (tls.c). */
static gw_admission_verdict authenticate(gw_conn *c, char device[IOT_ID_MAX + 1])
{
    gw_app *app = c->env->app;
    device[0] = '\0';
    if (c->ssl != NULL && SSL_get0_peer_certificate(c->ssl) != NULL)
        return gw_tls_peer_device(c, app->identity, device);
    if (app->opt.require_client_cert && app->opt.tls)
        return GW_ADMISSION_UNKNOWN;
    /* Development mode only: a device without a certificate names itself. */
    const char *name = c->http.req.device_id;
    if (!iot_id_is_valid(name))
        return GW_ADMISSION_UNKNOWN;
    gw_admission_verdict v = gw_admission_check_name(app->identity, name);
    if (v == GW_ADMISSION_OK)
        snprintf(device, IOT_ID_MAX + 1, "%s", name);
    return v;
}

/* Who a refused identity is in the log: the certificate's CN when there is
 * one (escaped by the log writer; it is not an identity). */
static void refused_name(gw_conn *c, char cn[IOT_ID_MAX + 1])
{
    cn[0] = '\0';
    X509 *cert = c->ssl != NULL ? SSL_get0_peer_certificate(c->ssl) : NULL;
    if (cert != NULL)
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, IOT_ID_MAX + 1);
}

/* ---- the request loop ------------------------------------------------------ */

static void fail_request(gw_conn *c, gw_refusal why, const char *detail)
{
    c->close_after = true;
    c->state = GW_CONN_BUSY;
    evtimer_del(c->timer);
    gw_conn_refuse(c, why, c->device, detail, 0);
}

/* Whether the device may send the request whose headers are in; a
 * refusal is left in c->pending. */
/* With enrollment on, a connection may come without a certificate (for
 * cacerts and simpleenroll) or with a bootstrap certificate (for
 * simpleenroll): neither is a device. The endpoints that take them are
 * .anyone rows, and see the refusal in c->pending. */
static bool not_a_device_yet(gw_conn *c)
{
    gw_app *app = c->env->app;
    if (c->bootstrap) {
        c->pending = GW_REF_BOOTSTRAP_CERTIFICATE;
        c->pending_detail = "a bootstrap certificate may only ask for enrollment (simpleenroll)";
        refused_name(c, c->pending_who);
    } else if (app->est != NULL && c->ssl != NULL && SSL_get0_peer_certificate(c->ssl) == NULL) {
        c->pending = GW_REF_CERTIFICATE_REQUIRED;
        c->pending_detail = "a device certificate is required; without one only "
                            "/.well-known/est/cacerts and simpleenroll answer";
    } else {
        return false;
    }
    c->close_after = true;
    return true;
}

static bool check_device(gw_conn *c)
{
    char device[IOT_ID_MAX + 1];
    if (not_a_device_yet(c))
        return false;
    gw_admission_verdict v = authenticate(c, device);
    if (v != GW_ADMISSION_OK) {
        c->pending = gw_admission_verdict_refusal(v);
        c->pending_detail = gw_admission_verdict_name(v);
        refused_name(c, c->pending_who);
        c->close_after = true; /* this identity may no longer speak */
        return false;
    }
    snprintf(c->device, sizeof(c->device), "%s", device);
    snprintf(c->pending_who, sizeof(c->pending_who), "%s", device);
    if (c->ends_grace && c->env->app->est != NULL)
        gw_est_end_grace(c->env->app->est, device);
    c->ends_grace = false;
    return true;
}

/* Whether the admin request may be served: a slot (kept until the
 * connection closes), then the listener's own check. */
static bool check_admin(gw_conn *c)
{
    gw_conn_env *env = c->env;
    if (!c->serving && env->serving >= env->max_serving) {
        c->pending = GW_REF_ADMIN_OVER_CAPACITY;
        c->pending_detail = "admin_max_connections reached";
        return false;
    }
    if (!c->serving)
        env->serving++;
    c->serving = true;
    c->pending = env->authorize(c, &c->http.req, &c->pending_detail);
    return c->pending == GW_REF_COUNT;
}

/* The router's refusals as the admin listener counts them. */
static gw_refusal admin_route_refusal(gw_refusal why)
{
    switch (why) {
    case GW_REF_INVALID_TARGET:
        return GW_REF_ADMIN_INVALID_TARGET;
    case GW_REF_NOT_FOUND:
        return GW_REF_ADMIN_NOT_FOUND;
    case GW_REF_METHOD_NOT_ALLOWED:
        return GW_REF_ADMIN_METHOD_NOT_ALLOWED;
    default:
        return why;
    }
}

/* The headers are in: who is asking, for which row, with how big a body.
 * A refusal decided here is answered once the body has been read past
 * (unless the body itself is too big), so the connection can go on. */
static bool on_headers(gw_conn *c)
{
    gw_http_request *req = &c->http.req;
    gw_conn_env *env = c->env;
    c->route = NULL;
    c->pending = GW_REF_COUNT;
    c->pending_who[0] = '\0';
    bool admitted = env->kind == GW_CONN_ADMIN ? check_admin(c) : check_device(c);
    gw_refusal miss = GW_REF_COUNT;
    const char *miss_detail = NULL;
    const gw_route *route = gw_route_find(env->routes, env->n_routes, req->method, req->target,
                                          req->target_len, &miss, &miss_detail, c->allow);
    if (gw_route_allows(route, admitted)) {
        c->route = route;
    } else if (admitted) {
        c->pending = miss;
        c->pending_detail = miss_detail;
    } /* else: the caller's refusal, set by its check, comes first */
    if (c->route == NULL && env->kind == GW_CONN_ADMIN)
        c->pending = admin_route_refusal(c->pending);
    size_t max = env->max_body;
    if (c->route != NULL && c->route->body_max != GW_ROUTE_BODY_CONFIGURED)
        max = c->route->body_max;
    if (!gw_http_set_body_max(&c->http, max, c->route == NULL)) {
        fail_request(c, c->http.refusal, c->http.detail);
        return false;
    }
    if (req->expect_continue && c->route != NULL)
        send_bytes(c, CONTINUE_LINE, sizeof(CONTINUE_LINE) - 1);
    return true;
}

static void on_request(gw_conn *c)
{
    evtimer_del(c->timer);
    c->state = GW_CONN_BUSY;
    if (c->env->kind == GW_CONN_DEVICE)
        gw_metric_inc(GW_M_REQUESTS);
    if (c->route == NULL) {
        gw_conn_refuse(c, c->pending, c->pending_who, c->pending_detail, 0);
        return;
    }
    c->route->handler(c, &c->http.req, c->device);
}

/* With read-ahead (start_io) one read takes whatever the socket holds,
 * which may be more than one TLS record: a request sent as headers and
 * body, or pipelined requests. bufferevent_openssl decrypts the first and
 * then waits for the socket, which will not become readable for records
 * already read; they are decrypted here, when the reader needs more. A
 * session error shuts the socket down, and the event path reports it and
 * closes, as for an error seen by the bufferevent. */
static bool pull_pending(gw_conn *c)
{
    if (c->ssl == NULL || !SSL_has_pending(c->ssl))
        return false;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(in, GW_PULL_CHUNK, &v, 1) < 1)
        return false;
    ERR_clear_error();
    int n = SSL_read(c->ssl, v.iov_base, (int)v.iov_len);
    if (n <= 0) {
        int e = SSL_get_error(c->ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            shutdown(c->fd, SHUT_RDWR);
        return false;
    }
    v.iov_len = (size_t)n;
    evbuffer_commit_space(in, &v, 1);
    return true;
}

/* Feeds what has arrived to the reader until it stops at a whole request
 * or an error, or runs out of bytes. */
static void feed(gw_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->open && c->state == GW_CONN_READING) {
        struct evbuffer_iovec v = {NULL, 0};
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 && !c->http.done) {
            if (pull_pending(c))
                continue;
            break;
        }
        size_t used = 0;
        gw_http_status st = gw_http_feed(&c->http, v.iov_base, v.iov_len, &used);
        evbuffer_drain(in, used);
        if (st == GW_HTTP_HEADERS && !on_headers(c))
            return;
        if (st == GW_HTTP_REQUEST) {
            on_request(c);
            return;
        }
        if (st == GW_HTTP_ERROR) {
            fail_request(c, c->http.refusal, c->http.detail);
            return;
        }
    }
}

/* The connection stays allocated until the reader has returned, whatever
 * a handler does with it; an answer given meanwhile ends from the event
 * loop (finish_answer). */
static void process_input(gw_conn *c)
{
    bool outer = !c->feeding;
    gw_conn_ref(c);
    c->feeding = true;
    feed(c);
    if (outer)
        c->feeding = false;
    gw_conn_unref(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    gw_conn *c = arg;
    if (c->state == GW_CONN_CLOSING) {
        evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
        return;
    }
    process_input(c);
}

/* Reads and drops the peer's bytes, undecrypted, until it goes. */
static void on_linger_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    gw_conn *c = arg;
    char sink[4096];
    ssize_t n = recv(fd, sink, sizeof(sink), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        conn_close(c);
}

/* After the last answer: half-close, then drop whatever the peer still
 * sends until it goes (or for LINGER_MS). Closing with unread bytes would
 * reset the connection, which can destroy the answer before the peer has
 * read it. The TLS session is done with: nothing more is decrypted or
 * logged. */
static void linger(gw_conn *c)
{
    c->state = GW_CONN_CLOSING;
    c->tls_logged = true;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    evbuffer_drain(bufferevent_get_input(c->bev), (size_t)-1);
    buffered_release(c);
    shutdown(c->fd, SHUT_WR);
    struct timeval tv = ms_tv(LINGER_MS);
    c->linger = event_new(c->env->base, c->fd, EV_READ | EV_PERSIST, on_linger_read, c);
    if (c->linger == NULL || event_add(c->linger, NULL) != 0) {
        conn_close(c);
        return;
    }
    evtimer_add(c->timer, &tv);
}

/* The answer is out: the connection ends, or waits for its next request. */
static void on_write(struct bufferevent *bev, void *arg)
{
    gw_conn *c = arg;
    if (c->state != GW_CONN_WRITING || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    if (c->close_after) {
        linger(c);
        return;
    }
    buffered_release(c);
    gw_http_next(&c->http);
    c->state = GW_CONN_READING;
    arm_deadline(c);
    process_input(c); /* a pipelined request may be waiting */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    gw_conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        conn_close(c);
        return;
    }
    /* The handshake is done: the first request may have come with the
     * client's last handshake record, read with it (pull_pending). */
    if ((what & BEV_EVENT_CONNECTED) && c->state == GW_CONN_READING)
        process_input(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_conn *c = arg;
    /* An admin connection idle between requests (a scraper's keep-alive)
     * is closed quietly; one part-way through a request is not. */
    bool idle = c->env->kind == GW_CONN_ADMIN && !c->http.started;
    if (c->preface != NULL && c->from_balancer) {
        refuse_preface(c, "no PROXY v2 header from a balancer within request_timeout");
        return;
    }
    if (c->state == GW_CONN_READING && !idle) {
        gw_refusal_inc(GW_REF_REQUEST_TIMEOUT);
        gw_log(GW_LOG_WARN, "request.timeout",
               "peer=%s detail=\"no complete request within request_timeout\"", c->peer);
    }
    conn_close(c);
}
