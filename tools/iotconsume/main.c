/* iotconsume: the reference consumer of the gateways' readings. It keeps a
 * persistent MQTT session (QoS 1), so what is published while it is away
 * waits for it at the broker, and stores each reading once (store.h): a
 * device's retry that reached a second gateway arrives twice and is stored
 * once. The broker's acknowledgement goes out only after the reading is
 * committed, so a crash loses nothing. That is why it uses Paho's MQTT
 * client, which acknowledges when the message callback returns true:
 * libmosquitto 2.0 acknowledges before calling it.
 *
 *   iotconsume --ca FILE --cert FILE --key FILE --db FILE [OPTIONS]
 */
#include <getopt.h>
#include <stddef.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#include "store.h"

static const char USAGE[] =
    "usage: iotconsume --ca FILE --cert FILE --key FILE --db FILE [--host H] [--port P]\n"
    "                  [--client-id ID] [--topic FILTER] [--count N] [--timeout SECONDS]\n"
    "                  [--retention-days D] [--print] [--print-duplicates] [-q]\n"
    "\n"
    "Subscribes to the gateways' readings with a persistent session (MQTT 3.1.1, QoS 1,\n"
    "TLS with a client certificate, as `iotctl cert client NAME --role consumer` makes)\n"
    "and stores each reading once in the SQLite file --db: a reading published by two\n"
    "gateways (a device's retry that reached the second) is stored once and counted as a\n"
    "duplicate. Readings are known by device and the device's sequence number (dseq),\n"
    "or by gateway and seq when a device sends none. A reading is committed before the\n"
    "broker is acknowledged.\n"
    "\n"
    "  --host H             the broker (default localhost)\n"
    "  --port P             its TLS port (default 8883)\n"
    "  --ca FILE            the CA of the broker's certificate\n"
    "  --cert FILE, --key FILE  the consumer's certificate and key\n"
    "  --client-id ID       the session's name at the broker (default iotconsume)\n"
    "  --topic FILTER       default telemetry/+/telemetry\n"
    "  --db FILE            the store (created if missing)\n"
    "  --count N            exit once N new readings are stored\n"
    "  --timeout SECONDS    exit after this long (status 3 if --count was not reached)\n"
    "  --retention-days D   keys of readings seen more than D days ago are forgotten, so a\n"
    "                       duplicate later than that is stored again (default 7)\n"
    "  --print              print each stored reading, one JSON document per line\n"
    "  --print-duplicates   print each duplicate as \"duplicate \" and its JSON document\n"
    "  -q                   no summary line\n"
    "\n"
    "Exit status: 0 done (signal, or --count reached), 1 the broker or the store failed,\n"
    "2 the command line is wrong, 3 --timeout before --count.\n";

typedef struct options {
    const char *host, *ca, *cert, *key, *db, *client_id, *topic;
    long port, count, timeout_s, retention_days;
    bool print, print_duplicates, quiet;
} options;

typedef struct consumer {
    const options *o;
    ic_store store;
    atomic_long received, stored, duplicates, invalid;
    atomic_bool lost, failed;
} consumer;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_lost(void *ctx, char *cause)
{
    (void)cause;
    atomic_store(&((consumer *)ctx)->lost, true);
}

/* Returns 1 (acknowledge) once the reading is stored or known; 0 leaves it
 * unacknowledged, and Paho hands it over again. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTClient_message *m)
{
    (void)topic_len;
    consumer *c = ctx;
    ic_reading r;
    iot_err err = {0};
    ic_result res = ic_store_take(&c->store, m->payload, (size_t)m->payloadlen, &r, &err);
    if (res == IC_FAILED) {
        fprintf(stderr, "iotconsume: cannot store a reading from %s: %s; not acknowledged\n", topic,
                err.msg);
        atomic_store(&c->failed, true);
        return 0;
    }
    atomic_fetch_add(&c->received, 1);
    if (res == IC_DUPLICATE) {
        atomic_fetch_add(&c->duplicates, 1);
        if (c->o->print_duplicates) {
            printf("duplicate %.*s\n", m->payloadlen, (const char *)m->payload);
            fflush(stdout);
        }
    } else if (res == IC_INVALID)
        atomic_fetch_add(&c->invalid, 1);
    if (res == IC_NEW) {
        atomic_fetch_add(&c->stored, 1);
        if (c->o->print) {
            printf("%.*s\n", m->payloadlen, (const char *)m->payload);
            fflush(stdout);
        }
    }
    MQTTClient_freeMessage(&m);
    MQTTClient_free(topic);
    return 1;
}

static int connect_and_subscribe(MQTTClient client, const options *o)
{
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    ssl.trustStore = o->ca;
    ssl.keyStore = o->cert;
    ssl.privateKey = o->key;
    ssl.enableServerCertAuth = 1;
    ssl.verify = 1;
    ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    co.keepAliveInterval = 30;
    co.cleansession = 0; /* the session, and what it holds, survives us */
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.ssl = &ssl;
    int rc = MQTTClient_connect(client, &co);
    if (rc == MQTTCLIENT_SUCCESS)
        rc = MQTTClient_subscribe(client, o->topic, 1);
    return rc;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The options with a value: text, or a number in [lo, hi]. */
static const struct {
    int ch;
    size_t off;
    bool number;
    long lo, hi;
} VALUES[] = {
    {'H', offsetof(options, host), false, 0, 0},
    {'a', offsetof(options, ca), false, 0, 0},
    {'c', offsetof(options, cert), false, 0, 0},
    {'k', offsetof(options, key), false, 0, 0},
    {'d', offsetof(options, db), false, 0, 0},
    {'i', offsetof(options, client_id), false, 0, 0},
    {'t', offsetof(options, topic), false, 0, 0},
    {'p', offsetof(options, port), true, 1, 65535},
    {'n', offsetof(options, count), true, 1, 1000000000},
    {'T', offsetof(options, timeout_s), true, 1, 86400L * 365},
    {'r', offsetof(options, retention_days), true, 1, 3650},
};

/* 0: taken; 1: a bad value or an unknown option. */
static int take_option(options *o, int ch, const char *arg)
{
    if (ch == 'P' || ch == 'D' || ch == 'q') {
        *(ch == 'P' ? &o->print : ch == 'D' ? &o->print_duplicates : &o->quiet) = true;
        return 0;
    }
    for (size_t i = 0; i < sizeof(VALUES) / sizeof(VALUES[0]); i++) {
        if (VALUES[i].ch != ch)
            continue;
        char *field = (char *)o + VALUES[i].off;
        if (!VALUES[i].number) {
            memcpy(field, &arg, sizeof(arg));
            return 0;
        }
        return parse_long(arg, VALUES[i].lo, VALUES[i].hi, (long *)(void *)field) == 0 ? 0 : 1;
    }
    return 1;
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"host", 1, NULL, 'H'},
        {"port", 1, NULL, 'p'},
        {"ca", 1, NULL, 'a'},
        {"cert", 1, NULL, 'c'},
        {"key", 1, NULL, 'k'},
        {"db", 1, NULL, 'd'},
        {"client-id", 1, NULL, 'i'},
        {"topic", 1, NULL, 't'},
        {"count", 1, NULL, 'n'},
        {"timeout", 1, NULL, 'T'},
        {"retention-days", 1, NULL, 'r'},
        {"print", 0, NULL, 'P'},
        {"print-duplicates", 0, NULL, 'D'},
        {"help", 0, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (options){.host = "localhost",
                   .port = 8883,
                   .client_id = "iotconsume",
                   .topic = "telemetry/+/telemetry",
                   .retention_days = 7};
    for (int ch; (ch = getopt_long(argc, argv, "q", longs, NULL)) != -1;) {
        if (ch == 'h') {
            fputs(USAGE, stdout);
            return 0;
        }
        if (take_option(o, ch, optarg) != 0) {
            fprintf(stderr, "iotconsume: bad value for an option (try --help)\n");
            return 2;
        }
    }
    if (o->ca == NULL || o->cert == NULL || o->key == NULL || o->db == NULL || optind != argc) {
        fprintf(stderr, "iotconsume: --ca, --cert, --key and --db are required (try --help)\n");
        return 2;
    }
    return -1;
}

/* Runs until a signal, --count or --timeout; reconnects when the broker
 * goes (the session keeps what was published meanwhile). */
static int run(consumer *c, MQTTClient client)
{
    const options *o = c->o;
    time_t start = time(NULL);
    int backoff_ms = 100;
    while (!stop) {
        if (o->count > 0 && atomic_load(&c->stored) >= o->count)
            return 0;
        if (o->timeout_s > 0 && time(NULL) - start >= o->timeout_s)
            return o->count > 0 ? 3 : 0;
        if (atomic_exchange(&c->lost, false) || !MQTTClient_isConnected(client)) {
            int rc = connect_and_subscribe(client, o);
            if (rc != MQTTCLIENT_SUCCESS) {
                fprintf(stderr, "iotconsume: cannot connect to %s:%ld: %s; retrying\n", o->host,
                        o->port, MQTTClient_strerror(rc));
                sleep_ms(backoff_ms);
                backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
                continue;
            }
            backoff_ms = 100;
        }
        sleep_ms(50);
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    consumer c = {.o = &o};
    iot_err err = {0};
    if (ic_store_open(o.db, &c.store, &err) != IOT_OK) {
        fprintf(stderr, "iotconsume: %s\n", err.msg);
        return 1;
    }
    if (ic_store_prune(&c.store, (int64_t)time(NULL) - o.retention_days * 86400, &err) != IOT_OK)
        fprintf(stderr, "iotconsume: %s\n", err.msg);
    char uri[300];
    snprintf(uri, sizeof(uri), "ssl://%s:%ld", o.host, o.port);
    MQTTClient client = NULL;
    rc = 1;
    if (MQTTClient_create(&client, uri, o.client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
            MQTTCLIENT_SUCCESS ||
        MQTTClient_setCallbacks(client, &c, on_lost, on_message, NULL) != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "iotconsume: cannot create the MQTT client for %s\n", uri);
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    atomic_store(&c.lost, true);
    rc = run(&c, client);
    if (rc == 0 && atomic_load(&c.failed))
        rc = 1;
    MQTTClient_disconnect(client, 1000);
out:
    if (!o.quiet)
        printf("iotconsume: received %ld, stored %ld, duplicates %ld, invalid %ld\n",
               atomic_load(&c.received), atomic_load(&c.stored), atomic_load(&c.duplicates),
               atomic_load(&c.invalid));
    MQTTClient_destroy(&client);
    ic_store_close(&c.store);
    return rc;
}
