/* The forwarder alone: its state table, and the real thing against a real
 * Mosquitto (TLS, certificates made by iotctl) started by the test on a
 * free loopback port, reading from an in-memory store instead of the
 * outbox. What the broker delivers is seen by a subscriber in the test.
 *
 * The broker is paused (SIGSTOP) to hold PUBACKs back: rows published
 * then are in flight and must not be acknowledged to the store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "gw_test.h"
#include "forwarder.h"
#include "admission.h"
#include "metrics.h"

#define ROWS_MAX     64
#define STATES_MAX   256
#define WAIT_LIMIT_S 60 /* a hang, not a speed: every wait ends on a condition */

/* ---------------------------------------------------------------- store */

typedef struct fake_row {
    gw_outbox_row row;
    char body[1024];
    bool acked;
    bool quarantined;
    char reason[64];
    int ack_count;
} fake_row;

typedef struct fake_store {
    fake_row rows[ROWS_MAX];
    int n;
    int64_t delivered_max;  /* highest id handed to the forwarder */
    int fetches_from_start; /* fetches with after_id 0: one per connection at least */
    int acks;
} fake_store;

static iot_status fake_fetch(void *ctx, int64_t after_id, int limit, gw_outbox_row_fn fn,
                             void *fn_ctx, int *count, iot_err *err)
{
    (void)err;
    fake_store *s = ctx;
    *count = 0;
    if (after_id == 0)
        s->fetches_from_start++;
    for (int i = 0; i < s->n && *count < limit; i++) {
        fake_row *r = &s->rows[i];
        if (r->row.id <= after_id || r->acked || r->quarantined)
            continue;
        (*count)++;
        if (r->row.id > s->delivered_max)
            s->delivered_max = r->row.id;
        if (fn(&r->row, fn_ctx) != 0)
            break;
    }
    return IOT_OK;
}

static fake_row *find_row(fake_store *s, int64_t id)
{
    for (int i = 0; i < s->n; i++)
        if (s->rows[i].row.id == id)
            return &s->rows[i];
    return NULL;
}

static void fake_ack(void *ctx, const int64_t *ids, size_t n)
{
    fake_store *s = ctx;
    for (size_t i = 0; i < n; i++) {
        fake_row *r = find_row(s, ids[i]);
        assert_non_null(r);
        r->acked = true;
        r->ack_count++;
        s->acks++;
    }
}

static void fake_quarantine(void *ctx, int64_t id, const char *reason)
{
    fake_store *s = ctx;
    fake_row *r = find_row(s, id);
    assert_non_null(r);
    r->quarantined = true;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

static int64_t fake_depth(void *ctx)
{
    fake_store *s = ctx;
    int64_t depth = 0;
    for (int i = 0; i < s->n; i++)
        depth += !s->rows[i].acked && !s->rows[i].quarantined;
    return depth;
}

/* Row `id` of device dev-1 with gseq = id and a body of body_len bytes
 * (at least the minimal reading). */
static void add_row(fake_store *s, int64_t id, size_t body_len)
{
    assert_true(s->n < ROWS_MAX);
    fake_row *r = &s->rows[s->n++];
    memset(r, 0, sizeof(*r));
    r->row.id = id;
    snprintf(r->row.device, sizeof(r->row.device), "dev-1");
    r->row.gseq = id;
    int n = snprintf(r->body, sizeof(r->body), "\"dseq\":%lld,\"t\":1,\"rx\":1.000,\"values\":[]}",
                     (long long)id);
    assert_true(n > 0 && body_len < sizeof(r->body));
    if (body_len > (size_t)n) { /* leading blanks: still one valid JSON message */
        memmove(r->body + (body_len - (size_t)n), r->body, (size_t)n + 1);
        memset(r->body, ' ', body_len - (size_t)n);
        n = (int)body_len;
    }
    r->row.body = r->body;
    r->row.body_len = (size_t)n;
}

/* ------------------------------------------------------------ consumer */

typedef struct consumer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool subscribed;
    long long seqs[ROWS_MAX * 4];
    int n;
    struct mosquitto *mosq;
} consumer;

static consumer sub = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, {0}, 0, NULL};

static void on_sub_connect(struct mosquitto *mosq, void *arg, int rc)
{
    (void)arg;
    if (rc == 0)
        mosquitto_subscribe(mosq, NULL, "telemetry/#", 1);
}

static void on_sub_subscribe(struct mosquitto *mosq, void *arg, int mid, int n, const int *qos)
{
    (void)mosq, (void)arg, (void)mid, (void)n, (void)qos;
    pthread_mutex_lock(&sub.lock);
    sub.subscribed = true;
    pthread_cond_broadcast(&sub.cond);
    pthread_mutex_unlock(&sub.lock);
}

static void on_sub_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *m)
{
    (void)mosq, (void)arg;
    char text[2048];
    int len = m->payloadlen < (int)sizeof(text) - 1 ? m->payloadlen : (int)sizeof(text) - 1;
    memcpy(text, m->payload, (size_t)len);
    text[len] = '\0';
    long long seq = -1;
    char device[IOT_ID_MAX + 1];
    if (sscanf(text, "{\"device\":\"%64[^\"]\",\"seq\":%lld,", device, &seq) != 2)
        seq = -1;
    pthread_mutex_lock(&sub.lock);
    if (sub.n < (int)(sizeof(sub.seqs) / sizeof(sub.seqs[0])))
        sub.seqs[sub.n++] = seq;
    pthread_cond_broadcast(&sub.cond);
    pthread_mutex_unlock(&sub.lock);
}

static int consumer_count(void)
{
    pthread_mutex_lock(&sub.lock);
    int n = sub.n;
    pthread_mutex_unlock(&sub.lock);
    return n;
}

/* -------------------------------------------------------------- fixture */

static char dir[64];
static char pki[96];
static char conf[128];
static char broker_log[128];
static int port;
static pid_t broker_pid;

static bool port_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void start_broker(void)
{
    broker_pid = fork();
    assert_true(broker_pid >= 0);
    if (broker_pid == 0) {
        int fd = open(broker_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    struct timespec pause = {0, 25 * 1000 * 1000};
    for (int i = 0; i < 400 && !port_open(); i++)
        nanosleep(&pause, NULL);
    assert_true(port_open());
}

/* Returns once the broker is stopped, not when the signal is sent: a
 * broker still running could PUBACK what the test expects to be held. */
static void pause_broker(void)
{
    int status = 0;
    assert_int_equal(kill(broker_pid, SIGSTOP), 0);
    assert_int_equal(waitpid(broker_pid, &status, WUNTRACED), broker_pid);
    assert_true(WIFSTOPPED(status));
}

static void stop_broker(int sig)
{
    if (broker_pid <= 0)
        return;
    /* SIGKILL takes a paused broker as it is: resumed first, it could
     * still acknowledge what it holds. */
    if (sig != SIGKILL)
        kill(broker_pid, SIGCONT);
    kill(broker_pid, sig);
    waitpid(broker_pid, NULL, 0);
    broker_pid = 0;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-fwd.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(pki, sizeof(pki), "%s/pki", dir);
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", dir);
    snprintf(broker_log, sizeof(broker_log), "%s/broker.log", dir);
    if (gwt_sh("%s --dir %s pki init >/dev/null && "
               "%s --dir %s cert server broker --dns localhost --ip 127.0.0.1 >/dev/null && "
               "%s --dir %s cert client gateway-mqtt --role gateway >/dev/null && "
               "%s --dir %s cert client consumer --role consumer >/dev/null",
               IOTCTL, pki, IOTCTL, pki, IOTCTL, pki, IOTCTL, pki) != 0)
        return -1;
    port = gwt_free_port();
    FILE *f = fopen(conf, "w");
    if (f == NULL || port <= 0)
        return -1;
    fprintf(f,
            "%slistener %d 127.0.0.1\n"
            "cafile %s/ca.crt\n"
            "certfile %s/servers/broker/cert.pem\n"
            "keyfile %s/servers/broker/key.pem\n"
            "require_certificate true\n"
            "use_subject_as_username true\n"
            "allow_anonymous false\n"
            "tls_version tlsv1.2\n"
            "persistence false\n"
            "log_dest stdout\n",
            geteuid() == 0 ? "user root\n" : "", port, pki, pki, pki);
    fclose(f);
    mosquitto_lib_init();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mosquitto_lib_cleanup();
    return gwt_sh("rm -rf %s", dir) == 0 ? 0 : -1;
}

/* A broker and a subscriber that has its subscription. */
static int setup(void **state)
{
    (void)state;
    start_broker();
    char ca[160], cert[160], key[160];
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    snprintf(cert, sizeof(cert), "%s/clients/consumer/cert.pem", pki);
    snprintf(key, sizeof(key), "%s/clients/consumer/key.pem", pki);
    sub.n = 0;
    sub.subscribed = false;
    sub.mosq = mosquitto_new("consumer-test", true, NULL);
    if (sub.mosq == NULL)
        return -1;
    mosquitto_connect_callback_set(sub.mosq, on_sub_connect);
    mosquitto_subscribe_callback_set(sub.mosq, on_sub_subscribe);
    mosquitto_message_callback_set(sub.mosq, on_sub_message);
    if (mosquitto_tls_set(sub.mosq, ca, NULL, cert, key, NULL) != MOSQ_ERR_SUCCESS ||
        mosquitto_connect(sub.mosq, "localhost", port, 30) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(sub.mosq) != MOSQ_ERR_SUCCESS)
        return -1;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_LIMIT_S;
    pthread_mutex_lock(&sub.lock);
    while (!sub.subscribed)
        if (pthread_cond_timedwait(&sub.cond, &sub.lock, &until) == ETIMEDOUT)
            break;
    bool ok = sub.subscribed;
    pthread_mutex_unlock(&sub.lock);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (sub.mosq != NULL) {
        mosquitto_disconnect(sub.mosq);
        mosquitto_loop_stop(sub.mosq, true);
        mosquitto_destroy(sub.mosq);
        sub.mosq = NULL;
    }
    stop_broker(SIGTERM);
    return 0;
}

/* ------------------------------------------------------------ forwarder */

typedef struct harness {
    struct event_base *base;
    struct event *tick;
    gw_admission *identity;
    fake_store store;
    gw_forwarder *fw;
    gw_forwarder_state states[STATES_MAX];
    int n_states;
} harness;

static void record_state(void *ctx, gw_forwarder_state from, gw_forwarder_state to)
{
    harness *h = ctx;
    assert_true(gw_forwarder_transition_allowed(from, to));
    if (h->n_states < STATES_MAX)
        h->states[h->n_states++] = to;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

static void start_forwarder(harness *h, int inflight, size_t max_packet)
{
    memset(h, 0, sizeof(*h));
    h->base = event_base_new();
    assert_non_null(h->base);
    /* Wakes the loop now and then so conditions set by the subscriber's
     * thread are seen. */
    h->tick = event_new(h->base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 20 * 1000};
    event_add(h->tick, &tv);
    char reg[160], crl[160], ca[160], cert[160], key[160];
    snprintf(reg, sizeof(reg), "%s/registry.db", pki);
    snprintf(crl, sizeof(crl), "%s/crl.pem", pki);
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    snprintf(cert, sizeof(cert), "%s/clients/gateway-mqtt/cert.pem", pki);
    snprintf(key, sizeof(key), "%s/clients/gateway-mqtt/key.pem", pki);
    gw_admission_options iopt = {reg, crl, ca, 0};
    iot_err err = {0};
    assert_int_equal(gw_admission_open(&iopt, &h->identity, &err), IOT_OK);
    gw_forwarder_options opt = {
        .brokers = {{.host = "127.0.0.1", .port = port}},
        .n_brokers = 1,
        .ca_path = ca,
        .cert_path = cert,
        .key_path = key,
        .crl_path = crl,
        .client_id = "iotgw-unit",
        .topic_prefix = "telemetry",
        .keepalive_ms = 30000,
        .inflight = inflight,
        .max_packet = max_packet,
        .reconnect_min_ms = 50,
        .reconnect_max_ms = 200,
        .identity = h->identity,
        .on_state = record_state,
        .on_state_ctx = h,
    };
    gw_forwarder_store store = {&h->store, fake_fetch, fake_ack, fake_quarantine, fake_depth};
    assert_int_equal(gw_forwarder_start(&opt, &store, h->base, &h->fw, &err), IOT_OK);
    assert_int_equal(gw_forwarder_get_state(h->fw), GW_FWD_BACKOFF);
}

static void stop_forwarder(harness *h)
{
    gw_forwarder_stop(h->fw);
    assert_int_equal(h->states[h->n_states - 1], GW_FWD_STOPPING);
    event_free(h->tick);
    gw_admission_close(h->identity);
    event_base_free(h->base);
}

typedef bool (*cond_fn)(harness *h, int arg);

static void run_until(harness *h, cond_fn cond, int arg, const char *what)
{
    time_t limit = time(NULL) + WAIT_LIMIT_S;
    while (!cond(h, arg)) {
        if (time(NULL) > limit)
            fail_msg("gave up waiting for %s", what);
        event_base_loop(h->base, EVLOOP_ONCE);
    }
}

/* Runs the loop for about `ms` whatever happens: lets a forwarder that
 * would wrongly acknowledge do so. */
static void run_for(harness *h, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(h->base, &tv);
    event_base_dispatch(h->base);
}

static bool is_state(harness *h, int state)
{
    return gw_forwarder_get_state(h->fw) == (gw_forwarder_state)state;
}

static bool acks_at_least(harness *h, int n)
{
    return h->store.acks >= n;
}

static bool delivered_at_least(harness *h, int id)
{
    return h->store.delivered_max >= id;
}

static bool consumed_at_least(harness *h, int n)
{
    (void)h;
    return consumer_count() >= n;
}

static bool seen_state_after(harness *h, int state, int from_index)
{
    for (int i = from_index; i < h->n_states; i++)
        if (h->states[i] == (gw_forwarder_state)state)
            return true;
    return false;
}

static bool reached_backoff_since(harness *h, int from_index)
{
    return seen_state_after(h, GW_FWD_BACKOFF, from_index);
}

/* ---------------------------------------------------------------- tests */

/* The diagram in forwarder.h, written out: every pair is checked. */
static void test_transition_table(void **state)
{
    (void)state;
    enum {
        I = GW_FWD_IDLE,
        N = GW_FWD_CONNECTING,
        C = GW_FWD_CONNECTED,
        L = GW_FWD_CLOSING,
        R = GW_FWD_REFUSED,
        B = GW_FWD_BACKOFF,
        S = GW_FWD_STOPPING,
        K = GW_FWD_STATE_COUNT
    };
    static const bool allowed[K][K] = {
        [I] = {[B] = 1, [S] = 1},
        [N] = {[C] = 1, [L] = 1, [B] = 1, [S] = 1},
        [C] = {[L] = 1, [R] = 1, [S] = 1},
        [L] = {[R] = 1, [B] = 1, [S] = 1},
        [R] = {[B] = 1, [S] = 1},
        [B] = {[N] = 1, [S] = 1},
        [S] = {0},
    };
    int n_allowed = 0;
    for (int from = 0; from < K; from++) {
        for (int to = 0; to < K; to++) {
            bool got =
                gw_forwarder_transition_allowed((gw_forwarder_state)from, (gw_forwarder_state)to);
            if (got != allowed[from][to])
                fail_msg("%s -> %s: allowed=%d, want %d",
                         gw_forwarder_state_name((gw_forwarder_state)from),
                         gw_forwarder_state_name((gw_forwarder_state)to), got, allowed[from][to]);
            n_allowed += got;
        }
        assert_false(gw_forwarder_transition_allowed((gw_forwarder_state)from, GW_FWD_STATE_COUNT));
        assert_false(gw_forwarder_transition_allowed(GW_FWD_STATE_COUNT, (gw_forwarder_state)from));
        assert_string_not_equal(gw_forwarder_state_name((gw_forwarder_state)from), "invalid");
    }
    assert_int_equal(n_allowed, 16);
}

/* 30 rows through a window of 4: every one published once, in order, and
 * acknowledged to the store exactly once. */
static void test_publishes_in_order_and_acks(void **state)
{
    (void)state;
    harness h;
    start_forwarder(&h, 4, 65536);
    for (int i = 1; i <= 30; i++)
        add_row(&h.store, i, 0);
    run_until(&h, is_state, GW_FWD_CONNECTED, "the connection");
    assert_true(gw_forwarder_connected(h.fw));
    run_until(&h, acks_at_least, 30, "30 acknowledgements");
    run_until(&h, consumed_at_least, 30, "30 messages at the subscriber");
    for (int i = 0; i < 30; i++) {
        assert_int_equal(h.store.rows[i].ack_count, 1);
        assert_false(h.store.rows[i].quarantined);
    }
    pthread_mutex_lock(&sub.lock);
    int n = sub.n;
    long long seqs[30];
    memcpy(seqs, sub.seqs, sizeof(seqs));
    pthread_mutex_unlock(&sub.lock);
    assert_int_equal(n, 30);
    for (int i = 0; i < 30; i++)
        assert_int_equal(seqs[i], i + 1);
    stop_forwarder(&h);
    assert_false(gw_forwarder_connected(NULL));
}

/* While the broker is paused no PUBACK can come: rows in flight are not
 * acknowledged; they are once it resumes. */
static void test_acks_only_after_puback(void **state)
{
    (void)state;
    harness h;
    start_forwarder(&h, 8, 65536);
    run_until(&h, is_state, GW_FWD_CONNECTED, "the connection");
    pause_broker();
    for (int i = 1; i <= 5; i++)
        add_row(&h.store, i, 0);
    gw_forwarder_notify(h.fw);
    run_until(&h, delivered_at_least, 5, "the rows to be read");
    assert_int_equal(gw_gauge_get(GW_G_MQTT_INFLIGHT), 5);
    run_for(&h, 1500);
    assert_int_equal(h.store.acks, 0);
    assert_int_equal(consumer_count(), 0);
    kill(broker_pid, SIGCONT);
    run_until(&h, acks_at_least, 5, "5 acknowledgements");
    for (int i = 0; i < 5; i++)
        assert_int_equal(h.store.rows[i].ack_count, 1);
    assert_int_equal(gw_gauge_get(GW_G_MQTT_INFLIGHT), 0);
    stop_forwarder(&h);
}

/* Rows in flight when the broker dies are not acknowledged; after it
 * comes back the forwarder reconnects, starts again from the oldest row
 * still in the store and gets every one acknowledged. */
static void test_resends_after_broker_restart(void **state)
{
    (void)state;
    harness h;
    start_forwarder(&h, 8, 65536);
    run_until(&h, is_state, GW_FWD_CONNECTED, "the connection");
    int fetches = h.store.fetches_from_start;
    uint64_t connects = gw_metric_get(GW_M_MQTT_CONNECTS);
    pause_broker();
    for (int i = 1; i <= 5; i++)
        add_row(&h.store, i, 0);
    gw_forwarder_notify(h.fw);
    run_until(&h, delivered_at_least, 5, "the rows to be read");
    int mark = h.n_states;
    stop_broker(SIGKILL);
    run_until(&h, reached_backoff_since, mark, "the lost connection");
    assert_false(gw_forwarder_connected(h.fw));
    assert_int_equal(h.store.acks, 0);
    start_broker();
    run_until(&h, acks_at_least, 5, "5 acknowledgements after the restart");
    for (int i = 0; i < 5; i++)
        assert_int_equal(h.store.rows[i].ack_count, 1);
    assert_true(h.store.fetches_from_start > fetches);
    assert_true(gw_metric_get(GW_M_MQTT_CONNECTS) > connects);
    assert_true(seen_state_after(&h, GW_FWD_CONNECTED, mark));
    stop_forwarder(&h);
}

/* A row too large for max_packet goes to quarantine with its reason; the
 * rows behind it are published and acknowledged, in order. */
static void test_quarantines_oversize_row(void **state)
{
    (void)state;
    harness h;
    start_forwarder(&h, 4, 512);
    add_row(&h.store, 1, 0);
    add_row(&h.store, 2, 800);
    add_row(&h.store, 3, 0);
    add_row(&h.store, 4, 0);
    run_until(&h, acks_at_least, 3, "3 acknowledgements");
    run_until(&h, consumed_at_least, 3, "3 messages at the subscriber");
    assert_true(h.store.rows[1].quarantined);
    assert_string_equal(h.store.rows[1].reason, "message_too_large");
    assert_int_equal(h.store.rows[1].ack_count, 0);
    for (int i = 0; i < 4; i++)
        if (i != 1)
            assert_int_equal(h.store.rows[i].ack_count, 1);
    pthread_mutex_lock(&sub.lock);
    long long got[3] = {sub.seqs[0], sub.seqs[1], sub.seqs[2]};
    int n = sub.n;
    pthread_mutex_unlock(&sub.lock);
    assert_int_equal(n, 3);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 3);
    assert_int_equal(got[2], 4);
    assert_true(gw_forwarder_connected(h.fw));
    stop_forwarder(&h);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test_setup_teardown(test_publishes_in_order_and_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_only_after_puback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resends_after_broker_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantines_oversize_row, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
