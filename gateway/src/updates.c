#define _GNU_SOURCE /* O_CLOEXEC */
#include "updates.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "conn.h"
#include "iot/fsutil.h"
#include "iot/manifest_crypto.h"
#include "iot/rollout.h"
#include "log.h"
#include "payload.h"
#include "metrics.h"
#include "range.h"
#include "rollshare.h"

#define DIGEST_HEX (2 * IOTD_MANIFEST_DIGEST_LEN)
/* A worker's event loop waits at most this long for iotctl's lock; then
 * the device is told to come back (503). */
#define BUSY_TIMEOUT_MS 200
#define RETRY_AFTER_S   5
#define MANIFEST_TYPE   "text/plain; charset=us-ascii"
#define IMAGE_TYPE      "application/octet-stream"

struct gw_updates {
    pthread_mutex_t lock; /* the rollout handle and the keys */
    iot_rollouts *rollouts;
    char keys_path[GW_PATH_MAX];
    char images[GW_PATH_MAX];
    iotd_manifest_key keys[IOT_MANIFEST_KEYS_MAX];
    size_t n_keys;
    gw_rollshare *share; /* several gateways: final reports go there too */
};

static int64_t now_unix(void)
{
    return (int64_t)time(NULL);
}

static gw_updates *updates_of(gw_conn *c)
{
    return c->env->app->updates;
}

/* A stopping gateway starts no update work: a device downloading on a
 * kept connection would otherwise hold the stop until its last chunk.
 * The device retries later and resumes at its offset. */
static bool refuse_if_stopping(gw_conn *c, const char *device)
{
    if (!atomic_load(&c->env->app->draining))
        return false;
    gw_conn_refuse(c, GW_REF_SHUTTING_DOWN, device, "the gateway is shutting down; retry later",
                   (int)c->env->app->opt.retry_after_s);
    return true;
}

iot_status gw_updates_open(const char *rollouts, const char *firmware_dir, gw_updates **out,
                           iot_err *err)
{
    *out = NULL;
    gw_updates *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    pthread_mutex_init(&u->lock, NULL);
    iot_status st =
        iot_path_join(u->keys_path, sizeof(u->keys_path), firmware_dir, "trusted-keys.pem", err);
    if (st == IOT_OK)
        st = iot_path_join(u->images, sizeof(u->images), firmware_dir, "images", err);
    if (st == IOT_OK)
        st = gw_updates_reload_keys(u, err);
    if (st == IOT_OK)
        st = iot_rollouts_open(rollouts, IOT_ROLLOUTS_WRITE | IOT_ROLLOUTS_CREATE, &u->rollouts,
                               err);
    if (st != IOT_OK) {
        gw_updates_close(u);
        return st;
    }
    iot_rollouts_set_busy_timeout(u->rollouts, BUSY_TIMEOUT_MS);
    gw_log(GW_LOG_INFO, "update.ready", "rollouts=\"%s\" firmware_dir=\"%s\" trusted_keys=%zu",
           rollouts, firmware_dir, u->n_keys);
    *out = u;
    return IOT_OK;
}

void gw_updates_close(gw_updates *u)
{
    if (u == NULL)
        return;
    iot_rollouts_close(u->rollouts);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

void gw_updates_share(gw_updates *u, struct gw_rollshare *share)
{
    u->share = share;
}

iot_status gw_updates_reload_keys(gw_updates *u, iot_err *err)
{
    iotd_manifest_key keys[IOT_MANIFEST_KEYS_MAX];
    size_t n = 0;
    iot_status st = iot_manifest_keys_load(u->keys_path, keys, IOT_MANIFEST_KEYS_MAX, &n, err);
    if (st != IOT_OK)
        return st;
    pthread_mutex_lock(&u->lock);
    memcpy(u->keys, keys, sizeof(keys));
    u->n_keys = n;
    pthread_mutex_unlock(&u->lock);
    return IOT_OK;
}

/* The rollout file could not answer: the device comes back later. */
static void refuse_unavailable(gw_conn *c, const char *device, const iot_err *err)
{
    gw_log(GW_LOG_ERROR, "update.store_error", "device=%s error=\"%s\"", device, err->msg);
    gw_conn_refuse(c, GW_REF_UPDATE_UNAVAILABLE, device,
                   "the rollout file cannot be read now; retry later", RETRY_AFTER_S);
}

/* ---- GET /v1/firmware/manifest ------------------------------------------- */

/* The manifest must verify with the keys trusted now: a rollout whose key
 * was retired since, or a file changed behind iotctl, is not served. */
static iotd_manifest_result verify_offer(gw_updates *u, const iot_rollout_offer *o)
{
    iotd_manifest m;
    iotd_manifest_policy policy = {
        .keys = u->keys, .n_keys = u->n_keys, .has_now = true, .now = now_unix()};
    iotd_manifest_result r = iotd_manifest_verify(o->manifest, o->manifest_len, &policy,
                                                  iot_manifest_crypto_openssl(), &m);
    if (r == IOTD_MANIFEST_OK && (m.sequence != o->sequence || strcmp(m.image_uri, o->image_uri)))
        r = IOTD_MANIFEST_MALFORMED; /* not the release the rollout was made of */
    return r;
}

static void serve_offer(gw_conn *c, const char *device, const iot_rollout_offer *o)
{
    if (o->started) {
        gw_metric_inc(GW_M_UPDATE_DEVICES_STARTED);
        gw_log(GW_LOG_INFO, "update.started", "device=%s rollout=%s sequence=%" PRIu64, device,
               o->name, o->sequence);
    }
    gw_metric_inc(GW_M_UPDATE_OFFERS);
    gw_log(GW_LOG_DEBUG, "update.offered", "device=%s rollout=%s sequence=%" PRIu64 " security=%d",
           device, o->name, o->sequence, o->security ? 1 : 0);
    gw_conn_reply_as(c, 200, MANIFEST_TYPE, NULL, o->manifest, o->manifest_len);
}

void gw_updates_manifest(gw_conn *c, gw_http_request *req, const char *device)
{
    (void)req;
    gw_updates *u = updates_of(c);
    gw_metric_inc(GW_M_UPDATE_CHECKS);
    if (refuse_if_stopping(c, device))
        return;
    if (u == NULL) {
        gw_conn_reply(c, 204, NULL, NULL, 0);
        return;
    }
    iot_rollout_offer *o = malloc(sizeof(*o));
    if (o == NULL) {
        gw_conn_refuse(c, GW_REF_OUT_OF_MEMORY, device, "out of memory; retry later",
                       RETRY_AFTER_S);
        return;
    }
    iot_err err = {0};
    iot_offer_result res = IOT_OFFER_NONE;
    uint32_t retry = 0;
    pthread_mutex_lock(&u->lock);
    iot_status st = iot_rollout_offer_for(u->rollouts, device, now_unix(), &res, o, &retry, &err);
    iotd_manifest_result verdict = IOTD_MANIFEST_OK;
    if (st == IOT_OK && res == IOT_OFFER_MADE)
        verdict = verify_offer(u, o);
    pthread_mutex_unlock(&u->lock);
    if (st != IOT_OK) {
        refuse_unavailable(c, device, &err);
    } else if (res == IOT_OFFER_DEFERRED) {
        gw_conn_refuse(c, GW_REF_UPDATE_DEFERRED, device,
                       "the rollout starts a limited number of devices per minute; retry later",
                       retry > 0 ? (int)retry : 1);
    } else if (res == IOT_OFFER_NONE) {
        gw_conn_reply(c, 204, NULL, NULL, 0);
    } else if (verdict != IOTD_MANIFEST_OK) {
        gw_metric_inc(GW_M_UPDATE_MANIFESTS_REFUSED);
        gw_log(GW_LOG_ERROR, "update.manifest_refused",
               "device=%s rollout=%s sequence=%" PRIu64 " reason=%s action=\"not served; check "
               "the trusted keys in firmware_dir and the release with iotctl firmware verify\"",
               device, o->name, o->sequence, iotd_manifest_result_name(verdict));
        gw_conn_reply(c, 204, NULL, NULL, 0);
    } else {
        serve_offer(c, device, o);
    }
    free(o);
}

/* ---- GET /v1/firmware/images/... ---------------------------------------- */

typedef struct image_req {
    char digest[DIGEST_HEX + 1];
    uint32_t size;
    char etag[DIGEST_HEX + 3];
} image_req;

/* Opens images/DIGEST.bin and checks it is the image the manifest names. */
static int open_image(gw_updates *u, const image_req *im, const char *device)
{
    char name[DIGEST_HEX + 8];
    char path[GW_PATH_MAX];
    snprintf(name, sizeof(name), "%s.bin", im->digest);
    if (iot_path_join(path, sizeof(path), u->images, name, NULL) != IOT_OK)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size != im->size)) {
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        gw_log(GW_LOG_ERROR, "update.image_unavailable",
               "device=%s path=\"%s\" size=%u action=\"copy the release from iotctl's "
               "PKI/firmware/images into firmware_dir/images\"",
               device, path, im->size);
    return fd;
}

/* What a GET of the image asks for: the whole (200), one range (206), or
 * nothing the client lacks (304). RFC 9110 13.2.2: If-None-Match first;
 * an If-Range that does not name this image makes Range ignored. */
static int choose_answer(const gw_http_request *req, const image_req *im, uint64_t *first,
                         uint64_t *last, gw_range_kind *kind)
{
    *first = 0;
    *last = im->size - 1;
    *kind = GW_RANGE_NONE;
    if (req->has_if_none_match && gw_etag_matches(req->if_none_match, im->etag, true))
        return 304;
    if (!req->has_range || (req->has_if_range && !gw_etag_matches(req->if_range, im->etag, false)))
        return 200;
    *kind = gw_range_parse(req->range_bad ? "" : req->range, im->size, first, last);
    if (*kind == GW_RANGE_NONE)
        return 200;
    return *kind == GW_RANGE_OK ? 206 : 416;
}

static void send_image(gw_conn *c, gw_http_request *req, const char *device, gw_updates *u,
                       const image_req *im)
{
    uint64_t first, last;
    gw_range_kind kind;
    int status = choose_answer(req, im, &first, &last, &kind);
    char headers[256];
    if (status == 416) {
        snprintf(headers, sizeof(headers), "Content-Range: bytes */%u\r\n", im->size);
        gw_conn_refuse_with(c, GW_REF_RANGE_NOT_SATISFIABLE, device,
                            kind == GW_RANGE_UNSATISFIABLE
                                ? "the range starts past the end of the image"
                                : "one byte range per request: Range: bytes=FIRST-LAST",
                            headers);
        return;
    }
    int n = snprintf(headers, sizeof(headers), "ETag: %s\r\nAccept-Ranges: bytes\r\n", im->etag);
    if (status == 206)
        snprintf(headers + n, sizeof(headers) - (size_t)n,
                 "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%u\r\n", first, last, im->size);
    gw_metric_inc(GW_M_UPDATE_IMAGE_REQUESTS);
    if (status == 304) {
        gw_conn_reply_as(c, 304, NULL, headers, NULL, 0);
        return;
    }
    int fd = open_image(u, im, device);
    if (fd < 0) {
        gw_conn_refuse(c, GW_REF_UPDATE_UNAVAILABLE, device,
                       "the image cannot be read now; retry later", RETRY_AFTER_S);
        return;
    }
    uint64_t len = last - first + 1;
    if (req->method != HTTP_HEAD)
        gw_metric_add(GW_M_UPDATE_IMAGE_BYTES, len);
    gw_log(GW_LOG_DEBUG, "update.image", "device=%s status=%d first=%" PRIu64 " bytes=%" PRIu64,
           device, status, first, len);
    gw_conn_reply_file(c, status, IMAGE_TYPE, headers, fd, first, len);
}

void gw_updates_image(gw_conn *c, gw_http_request *req, const char *device)
{
    gw_updates *u = updates_of(c);
    if (refuse_if_stopping(c, device))
        return;
    if (u == NULL) {
        gw_conn_refuse(c, GW_REF_IMAGE_NOT_OFFERED, device, "firmware updates are off", 0);
        return;
    }
    image_req im;
    iot_err err = {0};
    pthread_mutex_lock(&u->lock);
    iot_status st =
        iot_rollout_image_for(u->rollouts, device, req->target, im.digest, &im.size, &err);
    pthread_mutex_unlock(&u->lock);
    if (st == IOT_ENOENT) {
        gw_conn_refuse(c, GW_REF_IMAGE_NOT_OFFERED, device,
                       "no rollout offers this image to this device", 0);
        return;
    }
    if (st != IOT_OK || im.size == 0) {
        refuse_unavailable(c, device, &err);
        return;
    }
    snprintf(im.etag, sizeof(im.etag), "\"%s\"", im.digest);
    send_image(c, req, device, u, &im);
}

/* ---- POST /v1/firmware/status ------------------------------------------- */

typedef struct report_in {
    iot_rollout_report rep;
    char reason[IOT_ROLLOUT_REASON_MAX + 1];
    char status[16];
} report_in;

/* A whole number in [lo, hi] (a JSON double is exact up to 2^53). */
static bool json_uint(const cJSON *item, double hi, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= hi) || floor(v) != v)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* 1-32 of [a-z0-9_]: the reasons of iotd/update.h and iotd/manifest.h. */
static bool reason_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > IOT_ROLLOUT_REASON_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

static const char *take_strings(const cJSON *root, report_in *in)
{
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(root, "reason");
    if (!cJSON_IsString(status) || strlen(status->valuestring) >= sizeof(in->status))
        return "\"status\" must be a report state";
    snprintf(in->status, sizeof(in->status), "%s", status->valuestring);
    if (iot_rollout_dev_state_parse(in->status, &in->rep.state) != IOT_OK)
        return "\"status\" must be downloading, downloaded, installing, confirmed, failed or "
               "rolled_back";
    if (reason != NULL && (!cJSON_IsString(reason) || !reason_ok(reason->valuestring)))
        return "\"reason\" must be 1-32 of a-z, 0-9 and _";
    if (reason != NULL)
        snprintf(in->reason, sizeof(in->reason), "%s", reason->valuestring);
    bool final_bad = in->rep.state == IOT_RDEV_FAILED || in->rep.state == IOT_RDEV_ROLLED_BACK;
    if (final_bad != (reason != NULL))
        return "\"reason\" is given with failed and rolled_back, and only then";
    in->rep.reason = in->reason;
    return NULL;
}

static const char *take_numbers(const cJSON *root, report_in *in)
{
    uint64_t seq = 0, offset = 0, size = 0;
    if (!json_uint(cJSON_GetObjectItemCaseSensitive(root, "sequence"), 9007199254740992.0, &seq) ||
        seq == 0)
        return "\"sequence\" must be the manifest's sequence-number (1 to 2^53)";
    if (!json_uint(cJSON_GetObjectItemCaseSensitive(root, "offset"), 4294967295.0, &offset) ||
        !json_uint(cJSON_GetObjectItemCaseSensitive(root, "size"), 4294967295.0, &size))
        return "\"offset\" and \"size\" must be whole numbers from 0 to 4294967295";
    if (offset > size)
        return "\"offset\" is past \"size\"";
    in->rep.sequence = seq;
    in->rep.offset = (uint32_t)offset;
    in->rep.size = (uint32_t)size;
    return NULL;
}

/* The report's fields, each once, no other; NULL or what is wrong. */
static const char *parse_report(const gw_http_request *req, report_in *in)
{
    static const char *const KEYS[] = {"status", "reason", "sequence", "offset", "size"};
    memset(in, 0, sizeof(*in));
    cJSON *root = cJSON_ParseWithLength((const char *)req->body, req->body_len);
    const char *why = NULL;
    if (!cJSON_IsObject(root)) {
        why = "the body must be one JSON object";
        goto out;
    }
    unsigned seen = 0;
    for (const cJSON *it = root->child; it != NULL && why == NULL; it = it->next) {
        size_t k = 0;
        while (k < 5 && strcmp(it->string, KEYS[k]) != 0)
            k++;
        if (k == 5 || (seen & (1u << k)))
            why = "keys are status, reason, sequence, offset and size, each at most once";
        seen |= 1u << k;
    }
    if (why == NULL)
        why = take_strings(root, in);
    if (why == NULL)
        why = take_numbers(root, in);
out:
    cJSON_Delete(root);
    return why;
}

void gw_updates_log_outcome(const iot_report_outcome *o)
{
    if (o->wave_started) {
        gw_metric_inc(GW_M_ROLLOUT_WAVES_STARTED);
        gw_log(GW_LOG_INFO, "rollout.wave_started", "rollout=%s wave=%u", o->name, o->new_wave);
    }
    if (o->paused) {
        gw_metric_inc(GW_M_ROLLOUTS_PAUSED);
        gw_log(GW_LOG_WARN, "rollout.paused",
               "rollout=%s reason=failure_threshold action=\"inspect with iotctl rollout status, "
               "then resume or abort\"",
               o->name);
    }
    if (o->completed) {
        gw_metric_inc(GW_M_ROLLOUTS_COMPLETED);
        gw_log(GW_LOG_INFO, "rollout.completed", "rollout=%s", o->name);
    }
}

static void log_outcome(const char *device, const report_in *in, const iot_report_outcome *o)
{
    gw_log_level level = in->rep.state == IOT_RDEV_FAILED || in->rep.state == IOT_RDEV_ROLLED_BACK
                             ? GW_LOG_WARN
                             : GW_LOG_INFO;
    gw_log(level, "update.report",
           "device=%s rollout=%s sequence=%" PRIu64 " status=%s reason=%s offset=%u size=%u",
           device, o->name, in->rep.sequence, in->status, in->reason[0] ? in->reason : "-",
           in->rep.offset, in->rep.size);
    gw_updates_log_outcome(o);
}

static bool is_json(const char *content_type)
{
    gw_content_type ct;
    return content_type[0] != '\0' && gw_content_type_parse(content_type, &ct) == 0;
}

void gw_updates_report(gw_conn *c, gw_http_request *req, const char *device)
{
    gw_updates *u = updates_of(c);
    report_in in;
    if (!is_json(req->content_type)) {
        gw_conn_refuse(c, GW_REF_MEDIA_TYPE, device, "use application/json", 0);
        return;
    }
    const char *why = parse_report(req, &in);
    if (why != NULL) {
        gw_conn_refuse(c, GW_REF_INVALID_REPORT, device, why, 0);
        return;
    }
    if (u == NULL) {
        gw_conn_refuse(c, GW_REF_ROLLOUT_UNKNOWN, device, "firmware updates are off", 0);
        return;
    }
    iot_report_outcome o;
    memset(&o, 0, sizeof(o));
    iot_err err = {0};
    pthread_mutex_lock(&u->lock);
    iot_status st = iot_rollout_record_report(u->rollouts, device, &in.rep, now_unix(), &o, &err);
    pthread_mutex_unlock(&u->lock);
    if (st == IOT_ENOENT) {
        gw_conn_refuse(c, GW_REF_ROLLOUT_UNKNOWN, device,
                       "no rollout started this device with that sequence number", 0);
    } else if (st == IOT_ESTATE) {
        gw_conn_refuse(c, GW_REF_REPORT_CONFLICT, device,
                       "this device's update already ended in another state", 0);
    } else if (st != IOT_OK) {
        refuse_unavailable(c, device, &err);
    } else {
        gw_update_report_inc((int)in.rep.state);
        log_outcome(device, &in, &o);
        bool final = in.rep.state == IOT_RDEV_CONFIRMED || in.rep.state == IOT_RDEV_FAILED ||
                     in.rep.state == IOT_RDEV_ROLLED_BACK;
        if (u->share != NULL && final && o.previous != in.rep.state)
            gw_rollshare_put(u->share, o.name, device, in.rep.state, in.reason, in.rep.sequence);
        gw_conn_reply(c, 204, NULL, NULL, 0);
    }
}
