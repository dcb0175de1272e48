/* MQTT client of the console (live.h). */
#include "live.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <mosquitto.h>

#include "server.h"
#include "store.h"

#define MSG_MAX (64 * 1024)

typedef struct msg {
    struct msg *next;
    char *topic;
    char *payload;
} msg;

typedef struct dev_stats {
    char device[65];
    uint64_t total;
    uint64_t dropped;
    int64_t last;
    char *ring[IC_LIVE_READINGS];
    int64_t ring_at[IC_LIVE_READINGS]; /* when each arrived: the rate over the last minute */
    size_t ring_next;
} dev_stats;

struct ic_live {
    ic_app *app;
    struct mosquitto *mosq;
    struct event *wake;
    pthread_mutex_t lock;
    msg *head, *tail;
    size_t queued;
    uint64_t queue_dropped; /* under the lock */
    bool connected;         /* under the lock */
    uint64_t received;
    dev_stats *devs;
    size_t n_devs;
    char sub_readings[160];
};

static void on_connect(struct mosquitto *m, void *ctx, int rc)
{
    ic_live *l = ctx;
    pthread_mutex_lock(&l->lock);
    l->connected = rc == 0;
    pthread_mutex_unlock(&l->lock);
    if (rc != 0)
        return;
    mosquitto_subscribe(m, NULL, l->sub_readings, 0);
    mosquitto_subscribe(m, NULL, "security/#", 1);
}

static void on_disconnect(struct mosquitto *m, void *ctx, int rc)
{
    ic_live *l = ctx;
    (void)m;
    (void)rc;
    pthread_mutex_lock(&l->lock);
    l->connected = false;
    pthread_mutex_unlock(&l->lock);
}

/* libmosquitto's thread: copy and queue; the loop does the rest. */
static void on_message(struct mosquitto *m, void *ctx, const struct mosquitto_message *mm)
{
    ic_live *l = ctx;
    (void)m;
    if (mm->payloadlen <= 0 || mm->payloadlen > MSG_MAX)
        return;
    msg *x = calloc(1, sizeof(*x));
    char *topic = x != NULL ? strdup(mm->topic) : NULL;
    char *payload = topic != NULL ? malloc((size_t)mm->payloadlen + 1) : NULL;
    if (payload == NULL) {
        free(topic);
        free(x);
        return;
    }
    memcpy(payload, mm->payload, (size_t)mm->payloadlen);
    payload[mm->payloadlen] = '\0';
    x->topic = topic;
    x->payload = payload;
    pthread_mutex_lock(&l->lock);
    if (l->queued >= IC_LIVE_QUEUE) {
        l->queue_dropped++;
        pthread_mutex_unlock(&l->lock);
        free(topic);
        free(payload);
        free(x);
        return;
    }
    if (l->tail != NULL)
        l->tail->next = x;
    else
        l->head = x;
    l->tail = x;
    l->queued++;
    pthread_mutex_unlock(&l->lock);
    event_active(l->wake, EV_READ, 0);
}

static dev_stats *stats_of(ic_live *l, const char *device, bool create)
{
    for (size_t i = 0; i < l->n_devs; i++)
        if (strcmp(l->devs[i].device, device) == 0)
            return &l->devs[i];
    if (!create || l->n_devs == IC_LIVE_DEVICES || strlen(device) >= sizeof(l->devs[0].device))
        return NULL;
    dev_stats *d = &l->devs[l->n_devs++];
    memset(d, 0, sizeof(*d));
    memcpy(d->device, device, strlen(device) + 1);
    return d;
}

static void on_reading(ic_live *l, const char *payload, int64_t now)
{
    cJSON *doc = cJSON_Parse(payload);
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(doc, "device");
    dev_stats *d = cJSON_IsString(dev) ? stats_of(l, dev->valuestring, true) : NULL;
    if (d != NULL) {
        const cJSON *dropped = cJSON_GetObjectItemCaseSensitive(doc, "dropped");
        d->total++;
        d->dropped += cJSON_IsNumber(dropped) ? (uint64_t)dropped->valuedouble : 0;
        d->last = now;
        free(d->ring[d->ring_next]);
        d->ring_at[d->ring_next] = now;
        d->ring[d->ring_next] = strdup(payload);
        d->ring_next = (d->ring_next + 1) % IC_LIVE_READINGS;
        ic_stream_broadcast(l->app, "reading", payload);
    }
    cJSON_Delete(doc);
}

static void on_security(ic_live *l, const char *topic, const char *payload, int64_t now)
{
    int64_t id = 0;
    if (ic_store_event_add(l->app->store, now, topic, payload, &id) != IOT_OK)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddStringToObject(o, "topic", topic);
    cJSON *doc = cJSON_Parse(payload);
    cJSON_AddItemToObject(o, "document", doc != NULL ? doc : cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(o);
    if (text != NULL)
        ic_stream_broadcast(l->app, "event", text);
    free(text);
    cJSON_Delete(o);
}

static void drain(evutil_socket_t fd, short what, void *ctx)
{
    ic_live *l = ctx;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&l->lock);
    msg *x = l->head;
    l->head = l->tail = NULL;
    l->queued = 0;
    pthread_mutex_unlock(&l->lock);
    int64_t now = ic_now();
    while (x != NULL) {
        msg *next = x->next;
        l->received++;
        if (strncmp(x->topic, "security/", 9) == 0)
            on_security(l, x->topic, x->payload, now);
        else
            on_reading(l, x->payload, now);
        free(x->topic);
        free(x->payload);
        free(x);
        x = next;
    }
}

iot_status ic_live_start(ic_app *app, ic_live **out, iot_err *err)
{
    const ic_config *cfg = &app->cfg;
    *out = NULL;
    if (cfg->mqtt_host[0] == '\0')
        return IOT_OK;
    ic_live *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    pthread_mutex_init(&l->lock, NULL);
    l->app = app;
    snprintf(l->sub_readings, sizeof(l->sub_readings), "%s/+/telemetry", cfg->topic_prefix);
    l->devs = calloc(IC_LIVE_DEVICES, sizeof(*l->devs));
    l->wake = event_new(app->base, -1, 0, drain, l);
    iot_status st = IOT_OK;
    mosquitto_lib_init();
    l->mosq = l->devs != NULL && l->wake != NULL ? mosquitto_new(NULL, true, l) : NULL;
    if (l->mosq == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory");
        goto out;
    }
    mosquitto_connect_callback_set(l->mosq, on_connect);
    mosquitto_disconnect_callback_set(l->mosq, on_disconnect);
    mosquitto_message_callback_set(l->mosq, on_message);
    mosquitto_reconnect_delay_set(l->mosq, 1, 30, true);
    if (mosquitto_tls_set(l->mosq, cfg->mqtt_ca, NULL, cfg->mqtt_cert, cfg->mqtt_key, NULL) !=
        MOSQ_ERR_SUCCESS) {
        st = iot_err_set(err, IOT_ECRYPTO,
                         "MQTT TLS settings refused (mqtt_ca, mqtt_cert, "
                         "mqtt_key)");
        goto out;
    }
    /* The broker may be down at start: connect_async and the loop thread
     * retry until it is up. */
    (void)mosquitto_connect_async(l->mosq, cfg->mqtt_host, cfg->mqtt_port, 30);
    if (mosquitto_loop_start(l->mosq) != MOSQ_ERR_SUCCESS)
        st = iot_err_set(err, IOT_EIO, "MQTT thread did not start");
out:
    if (st != IOT_OK) {
        ic_live_stop(l);
        l = NULL;
    }
    *out = l;
    return st;
}

void ic_live_stop(ic_live *l)
{
    if (l == NULL)
        return;
    if (l->mosq != NULL) {
        mosquitto_disconnect(l->mosq);
        mosquitto_loop_stop(l->mosq, true);
        mosquitto_destroy(l->mosq);
    }
    mosquitto_lib_cleanup();
    for (msg *x = l->head; x != NULL;) {
        msg *next = x->next;
        free(x->topic);
        free(x->payload);
        free(x);
        x = next;
    }
    for (size_t i = 0; l->devs != NULL && i < l->n_devs; i++)
        for (size_t k = 0; k < IC_LIVE_READINGS; k++)
            free(l->devs[i].ring[k]);
    free(l->devs);
    if (l->wake != NULL)
        event_free(l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void ic_live_device_stats(const ic_live *l, const char *device, cJSON *obj)
{
    if (l == NULL)
        return;
    const dev_stats *d = stats_of((ic_live *)l, device, false);
    if (d == NULL)
        return;
    int64_t now = ic_now();
    uint32_t rate = 0; /* at most IC_LIVE_READINGS: "60 or more" a minute */
    for (size_t k = 0; k < IC_LIVE_READINGS; k++)
        rate += d->ring[k] != NULL && now - d->ring_at[k] < 60;
    cJSON_AddNumberToObject(obj, "readings_total", (double)d->total);
    cJSON_AddNumberToObject(obj, "readings_per_min", rate);
    cJSON_AddNumberToObject(obj, "dropped", (double)d->dropped);
    cJSON_AddNumberToObject(obj, "last_reading", (double)d->last);
}

cJSON *ic_live_device_readings(const ic_live *l, const char *device)
{
    cJSON *arr = cJSON_CreateArray();
    const dev_stats *d = l != NULL ? stats_of((ic_live *)l, device, false) : NULL;
    for (size_t k = 0; d != NULL && k < IC_LIVE_READINGS; k++) {
        const char *m = d->ring[(d->ring_next + k) % IC_LIVE_READINGS];
        cJSON *doc = m != NULL ? cJSON_Parse(m) : NULL;
        if (doc != NULL)
            cJSON_AddItemToArray(arr, doc);
    }
    return arr;
}

cJSON *ic_live_status_json(const ic_live *l)
{
    cJSON *o = cJSON_CreateObject();
    bool connected = false;
    uint64_t dropped = 0;
    if (l != NULL) {
        pthread_mutex_lock((pthread_mutex_t *)&l->lock);
        connected = l->connected;
        dropped = l->queue_dropped;
        pthread_mutex_unlock((pthread_mutex_t *)&l->lock);
    }
    cJSON_AddBoolToObject(o, "configured", l != NULL);
    cJSON_AddBoolToObject(o, "connected", connected);
    cJSON_AddNumberToObject(o, "received", l != NULL ? (double)l->received : 0);
    cJSON_AddNumberToObject(o, "queue_dropped", (double)dropped);
    return o;
}
