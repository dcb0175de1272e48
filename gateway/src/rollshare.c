/* See rollshare.h. */
#include "rollshare.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "iot/identity.h"
#include "log.h"
#include "metrics.h"
#include "shared.h"
#include "updates.h"

#define PREFIX      "/iot/rollouts/"
#define FINAL       "/final/"
#define QUEUE_MAX   10000 /* reports waiting; past it the file is compared again */
#define PAGE        500   /* keys read per call */
#define FULL_READ_S 300   /* the whole prefix is read again this often */
#define BUSY_MS     2000  /* waiting for the workers' and iotctl's writes */
#define GATEWAY_MAX 127

typedef struct report {
    struct report *next;
    char rollout[IOT_ROLLOUT_NAME_MAX + 1];
    char device[IOT_ID_MAX + 1];
    iot_rollout_dev_state state;
    char reason[IOT_ROLLOUT_REASON_MAX + 1];
    uint64_t sequence;
    int64_t at; /* when the device reported it (Unix seconds) */
} report;

struct gw_rollshare {
    gw_rollshare_options opt;
    char gateway[GATEWAY_MAX + 1];
    iot_rollouts *r; /* the thread's own handle */
    pthread_t thread;
    pthread_mutex_t lock; /* the queue and the flags below */
    pthread_cond_t wake;
    report *head, *tail;
    size_t queued;
    bool compare; /* write the local file's final states the shared state lacks */
    bool stopping;
    bool down; /* the last call failed: logged once, until one succeeds */
    int64_t revision;
    time_t full_read_at;
};

static bool is_final(iot_rollout_dev_state s)
{
    return s == IOT_RDEV_CONFIRMED || s == IOT_RDEV_FAILED || s == IOT_RDEV_ROLLED_BACK;
}

/* ---- local reports out ---------------------------------------------------- */

static char *report_value(const gw_rollshare *rs, const report *rep)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "state", iot_rollout_dev_state_name(rep->state));
    if (rep->reason[0] != '\0')
        cJSON_AddStringToObject(v, "reason", rep->reason);
    cJSON_AddNumberToObject(v, "sequence", (double)rep->sequence);
    cJSON_AddNumberToObject(v, "at", (double)rep->at);
    cJSON_AddStringToObject(v, "gateway", rs->gateway);
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return text;
}

/* The state a shared report names; IOT_RDEV_STATE_COUNT if none. */
static iot_rollout_dev_state value_state(const cJSON *v)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "state");
    iot_rollout_dev_state state;
    if (!cJSON_IsString(s) || iot_rollout_dev_state_parse(s->valuestring, &state) != IOT_OK ||
        !is_final(state))
        return IOT_RDEV_STATE_COUNT;
    return state;
}

/* A device whose update ended in one state here and another through
 * another gateway: a device fault; the first written stands in the
 * shared state, each file keeps what it took. */
static void log_conflict(const report *rep, const char *existing)
{
    cJSON *v = cJSON_Parse(existing);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(v, "gateway");
    iot_rollout_dev_state there = value_state(v);
    if (there != rep->state)
        gw_log(GW_LOG_WARN, "update.report_conflict",
               "device=%s rollout=%s here=%s shared=%s shared_from=%.127s", rep->device,
               rep->rollout, iot_rollout_dev_state_name(rep->state),
               there == IOT_RDEV_STATE_COUNT ? "?" : iot_rollout_dev_state_name(there),
               cJSON_IsString(g) ? g->valuestring : "?");
    cJSON_Delete(v);
}

/* false: the shared state did not answer; the report stays queued. */
static bool write_report(gw_rollshare *rs, const report *rep)
{
    char key[GW_SHARED_KEY_MAX];
    char existing[GW_SHARED_VALUE_MAX];
    bool created = false;
    iot_err err = {0};
    snprintf(key, sizeof(key), PREFIX "%s" FINAL "%s", rep->rollout, rep->device);
    char *value = report_value(rs, rep);
    if (value == NULL)
        return false;
    iot_status st =
        gw_shared_create(rs->opt.shared, key, value, &created, existing, sizeof(existing), &err);
    free(value);
    gw_shared_note(&rs->down, "rollouts", st, &err);
    if (st != IOT_OK)
        return false;
    if (!created)
        log_conflict(rep, existing);
    return true;
}

static report *queue_take(gw_rollshare *rs)
{
    pthread_mutex_lock(&rs->lock);
    report *rep = rs->head;
    pthread_mutex_unlock(&rs->lock);
    return rep;
}

static void queue_drop_head(gw_rollshare *rs)
{
    pthread_mutex_lock(&rs->lock);
    report *rep = rs->head;
    rs->head = rep->next;
    if (rs->head == NULL)
        rs->tail = NULL;
    rs->queued--;
    pthread_mutex_unlock(&rs->lock);
    free(rep);
}

/* Writes the queue in order until the shared state stops answering. */
static void write_queue(gw_rollshare *rs)
{
    for (report *rep = queue_take(rs); rep != NULL && write_report(rs, rep); rep = queue_take(rs))
        queue_drop_head(rs);
}

typedef struct finals {
    gw_rollshare *rs;
    const char *rollout;
    report *list;
} finals;

static int collect_final(const iot_rollout_device *d, void *ctx)
{
    finals *f = ctx;
    if (!is_final(d->state))
        return 0;
    report *rep = calloc(1, sizeof(*rep));
    if (rep == NULL)
        return 1;
    snprintf(rep->rollout, sizeof(rep->rollout), "%s", f->rollout);
    snprintf(rep->device, sizeof(rep->device), "%s", d->device);
    snprintf(rep->reason, sizeof(rep->reason), "%s", d->reason);
    rep->state = d->state;
    rep->at = d->updated;
    rep->next = f->list;
    f->list = rep;
    return 0;
}

static void free_reports(report *list)
{
    while (list != NULL) {
        report *next = list->next;
        free(list);
        list = next;
    }
}

static int collect_name(const iot_rollout_info *info, void *ctx)
{
    report **names = ctx;
    report *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return 1;
    snprintf(n->rollout, sizeof(n->rollout), "%s", info->plan.name);
    n->next = *names;
    *names = n;
    return 0;
}

/* The final states of every rollout of the file. The names are read
 * first: each walk of the file is a transaction of its own, and one
 * cannot run inside another. */
static iot_status collect_finals(gw_rollshare *rs, finals *f, iot_err *err)
{
    report *names = NULL;
    iot_status st = iot_rollout_foreach(rs->r, collect_name, &names, err);
    for (report *n = names; st == IOT_OK && n != NULL; n = n->next) {
        f->rollout = n->rollout;
        st = iot_rollout_foreach_device(rs->r, n->rollout, collect_final, f, err);
    }
    free_reports(names);
    return st;
}

/* Writes every final state of the local file; the reads are done before
 * the first write, so no read transaction waits on the network. false:
 * to be done again. */
static bool compare_file(gw_rollshare *rs)
{
    finals f = {.rs = rs};
    iot_err err = {0};
    iot_status st = collect_finals(rs, &f, &err);
    bool done = st == IOT_OK;
    for (report *rep = f.list; done && rep != NULL; rep = rep->next) {
        rep->sequence = 0; /* not kept per device: 0 says "from the file" */
        done = write_report(rs, rep);
    }
    free_reports(f.list);
    if (st != IOT_OK)
        gw_log(GW_LOG_ERROR, "shared.compare_failed", "rollouts=\"%s\" error=\"%s\"",
               rs->opt.rollouts, err.msg);
    return done;
}

/* ---- other gateways' reports in ------------------------------------------ */

/* "/iot/rollouts/<rollout>/final/<device>", both by the device ID rule. */
static bool parse_key(const char *key, char *rollout, char *device)
{
    const char *name = key + strlen(PREFIX);
    const char *final = strstr(name, FINAL);
    if (strncmp(key, PREFIX, strlen(PREFIX)) != 0 || final == NULL ||
        (size_t)(final - name) > IOT_ROLLOUT_NAME_MAX)
        return false;
    memcpy(rollout, name, (size_t)(final - name));
    rollout[final - name] = '\0';
    const char *dev = final + strlen(FINAL);
    if (strlen(dev) > IOT_ID_MAX)
        return false;
    snprintf(device, IOT_ID_MAX + 1, "%s", dev);
    return iot_id_is_valid(rollout) && iot_id_is_valid(device);
}

/* A report the shared state holds that is not ours to read: counted,
 * logged, passed over. */
static bool refuse_value(const char *key, const char *why)
{
    gw_metric_inc(GW_M_SHARED_REFUSED);
    gw_log(GW_LOG_WARN, "shared.value_refused", "key=\"%.200s\" why=\"%s\"", key, why);
    return true;
}

static void log_applied(const report *rep, const char *from, const iot_report_outcome *o)
{
    gw_metric_inc(GW_M_SHARED_REPORTS_APPLIED);
    gw_log(GW_LOG_INFO, "update.report_shared", "device=%s rollout=%s status=%s from=%s",
           rep->device, rep->rollout, iot_rollout_dev_state_name(rep->state), from);
    gw_updates_log_outcome(o);
}

/* Applies one shared report to the local file. false: the file is busy;
 * this key is read again next time. */
static bool apply_report(gw_rollshare *rs, const char *key, report *rep, const char *from)
{
    iot_report_outcome o;
    memset(&o, 0, sizeof(o));
    iot_err err = {0};
    iot_status st = iot_rollout_apply_final(rs->r, rep->rollout, rep->device, rep->state,
                                            rep->reason, rep->at, &o, &err);
    if (st == IOT_OK) {
        if (o.previous != rep->state)
            log_applied(rep, from, &o);
        return true;
    }
    if (st == IOT_ENOENT) {
        gw_log(GW_LOG_WARN, "update.report_unknown",
               "device=%s rollout=%s from=%s action=\"create the rollout in every gateway's "
               "rollout file\"",
               rep->device, rep->rollout, from);
        return true;
    }
    if (st == IOT_ESTATE || st == IOT_EINVAL) {
        gw_log(GW_LOG_WARN, "update.report_conflict", "device=%s rollout=%s shared=%s from=%s",
               rep->device, rep->rollout, iot_rollout_dev_state_name(rep->state), from);
        return true;
    }
    gw_log(GW_LOG_ERROR, "update.store_error", "key=\"%s\" error=\"%s\"", key, err.msg);
    return false;
}

/* When the device reported: failures from before an operator's resume
 * are not judged again when a gateway that was away reads them late. A
 * time missing, or ahead of this clock, is taken as now. */
static int64_t report_time(const cJSON *at)
{
    int64_t now = (int64_t)time(NULL);
    if (!cJSON_IsNumber(at) || !(at->valuedouble > 0) || at->valuedouble > (double)now)
        return now;
    return (int64_t)at->valuedouble;
}

static bool take_shared(void *ctx, const char *key, const char *value)
{
    gw_rollshare *rs = ctx;
    report rep;
    memset(&rep, 0, sizeof(rep));
    if (!parse_key(key, rep.rollout, rep.device))
        return refuse_value(key, "not /iot/rollouts/<rollout>/final/<device>");
    cJSON *v = cJSON_Parse(value);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(v, "gateway");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(v, "reason");
    char from[GATEWAY_MAX + 1] = "";
    bool ok = true;
    rep.state = value_state(v);
    if (rep.state == IOT_RDEV_STATE_COUNT || !cJSON_IsString(g) ||
        strlen(g->valuestring) > GATEWAY_MAX ||
        (reason != NULL &&
         (!cJSON_IsString(reason) || strlen(reason->valuestring) > IOT_ROLLOUT_REASON_MAX))) {
        refuse_value(key, "the value is not a final report with its gateway");
        goto out;
    }
    snprintf(from, sizeof(from), "%s", g->valuestring);
    rep.at = report_time(cJSON_GetObjectItemCaseSensitive(v, "at"));
    if (reason != NULL)
        snprintf(rep.reason, sizeof(rep.reason), "%s", reason->valuestring);
    if (strcmp(from, rs->gateway) != 0) /* ours are in the file already */
        ok = apply_report(rs, key, &rep, from);
out:
    cJSON_Delete(v);
    return ok;
}

/* Reads what was written since the last read, page by page. */
static void read_shared(gw_rollshare *rs)
{
    time_t now = time(NULL);
    if (now - rs->full_read_at >= FULL_READ_S) {
        /* A rollout created here after other gateways' reports on it
         * were read gets them now. */
        rs->revision = 0;
        rs->full_read_at = now;
    }
    int n = PAGE;
    while (n == PAGE) {
        iot_err err = {0};
        int64_t before = rs->revision;
        iot_status st = gw_shared_changes(rs->opt.shared, PREFIX, &rs->revision, PAGE, &n,
                                          take_shared, rs, &err);
        gw_shared_note(&rs->down, "rollouts", st, &err);
        if (st != IOT_OK || rs->revision == before)
            return;
    }
}

/* ---- the thread ----------------------------------------------------------- */

static bool should_stop(gw_rollshare *rs, bool wait)
{
    pthread_mutex_lock(&rs->lock);
    if (wait && !rs->stopping && rs->head == NULL)
        gw_shared_timedwait(&rs->wake, &rs->lock, rs->opt.poll_ms);
    bool stop = rs->stopping;
    pthread_mutex_unlock(&rs->lock);
    return stop;
}

static bool take_compare(gw_rollshare *rs)
{
    pthread_mutex_lock(&rs->lock);
    bool compare = rs->compare;
    rs->compare = false;
    pthread_mutex_unlock(&rs->lock);
    return compare;
}

static void *run(void *arg)
{
    gw_rollshare *rs = arg;
    while (!should_stop(rs, false)) {
        read_shared(rs);
        if (take_compare(rs) && !compare_file(rs)) {
            pthread_mutex_lock(&rs->lock);
            rs->compare = true;
            pthread_mutex_unlock(&rs->lock);
        }
        write_queue(rs);
        if (should_stop(rs, true))
            break;
    }
    return NULL;
}

iot_status gw_rollshare_start(const gw_rollshare_options *o, gw_rollshare **out, iot_err *err)
{
    *out = NULL;
    if (strlen(o->gateway) > GATEWAY_MAX)
        return iot_err_set(err, IOT_EINVAL, "the gateway name '%s' is over %d characters",
                           o->gateway, GATEWAY_MAX);
    gw_rollshare *rs = calloc(1, sizeof(*rs));
    if (rs == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    rs->opt = *o;
    snprintf(rs->gateway, sizeof(rs->gateway), "%s", o->gateway);
    rs->opt.gateway = rs->gateway;
    rs->compare = true;
    rs->full_read_at = time(NULL);
    pthread_mutex_init(&rs->lock, NULL);
    pthread_cond_init(&rs->wake, NULL);
    iot_status st =
        iot_rollouts_open(o->rollouts, IOT_ROLLOUTS_WRITE | IOT_ROLLOUTS_CREATE, &rs->r, err);
    if (st != IOT_OK)
        goto out;
    iot_rollouts_set_busy_timeout(rs->r, BUSY_MS);
    int rc = pthread_create(&rs->thread, NULL, run, rs);
    if (rc != 0)
        st = iot_err_set(err, IOT_EIO, "cannot start the rollout sharing thread: %s", strerror(rc));
out:
    if (st == IOT_OK) {
        *out = rs;
    } else {
        iot_rollouts_close(rs->r);
        pthread_cond_destroy(&rs->wake);
        pthread_mutex_destroy(&rs->lock);
        free(rs);
    }
    return st;
}

void gw_rollshare_stop(gw_rollshare *rs)
{
    if (rs == NULL)
        return;
    pthread_mutex_lock(&rs->lock);
    rs->stopping = true;
    pthread_cond_signal(&rs->wake);
    pthread_mutex_unlock(&rs->lock);
    pthread_join(rs->thread, NULL);
    if (rs->queued > 0)
        gw_log(GW_LOG_INFO, "shared.pending_at_stop",
               "reports=%zu note=\"in the rollout file; written at the next start\"", rs->queued);
    free_reports(rs->head);
    iot_rollouts_close(rs->r);
    pthread_cond_destroy(&rs->wake);
    pthread_mutex_destroy(&rs->lock);
    free(rs);
}

void gw_rollshare_put(gw_rollshare *rs, const char *rollout, const char *device,
                      iot_rollout_dev_state state, const char *reason, uint64_t sequence)
{
    report *rep = calloc(1, sizeof(*rep));
    pthread_mutex_lock(&rs->lock);
    if (rep == NULL || rs->queued >= QUEUE_MAX) {
        rs->compare = true; /* it is in the file: compared once the queue is written */
        free(rep);
        goto out;
    }
    snprintf(rep->rollout, sizeof(rep->rollout), "%s", rollout);
    snprintf(rep->device, sizeof(rep->device), "%s", device);
    snprintf(rep->reason, sizeof(rep->reason), "%s", reason != NULL ? reason : "");
    rep->state = state;
    rep->sequence = sequence;
    rep->at = (int64_t)time(NULL);
    if (rs->tail != NULL)
        rs->tail->next = rep;
    else
        rs->head = rep;
    rs->tail = rep;
    rs->queued++;
    pthread_cond_signal(&rs->wake);
out:
    pthread_mutex_unlock(&rs->lock);
}
