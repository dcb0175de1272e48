/* See shared.h. The JSON gateway of etcd 3.4: int64 fields are strings,
 * fields at their default value (false, 0) are left out of answers. */
#include "shared.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brokers.h"
#include "estcodec.h"
#include "log.h"
#include "metrics.h"

#define DEFAULT_PORT    2379
#define CONNECT_TIMEOUT 2000L /* ms */
#define CALL_TIMEOUT    5000L /* ms */
#define ANSWER_MAX      (1024 * 1024)
#define ERROR_TEXT_MAX  160

struct gw_shared {
    pthread_mutex_t lock;
    CURL *curl;
    struct curl_slist *headers;
    gw_broker members[GW_BROKERS_MAX];
    int n_members;
    int current; /* the member that answered last: asked first */
};

typedef struct answer {
    char *buf;
    size_t len;
} answer;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void init_curl(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Appends what libcurl read, refusing an answer past ANSWER_MAX. */
static size_t take(char *data, size_t size, size_t n, void *ctx)
{
    answer *a = ctx;
    size_t more = size * n;
    if (more > ANSWER_MAX - a->len)
        return 0;
    char *grown = realloc(a->buf, a->len + more + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + a->len, data, more);
    a->buf = grown;
    a->len += more;
    a->buf[a->len] = '\0';
    return more;
}

static iot_status set_tls(gw_shared *s, const gw_shared_options *o, iot_err *err)
{
    CURL *c = s->curl;
    bool ok = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CAINFO, o->ca) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSLCERT, o->cert) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSLKEY, o->key) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, CALL_TIMEOUT) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->headers) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take) == CURLE_OK;
    return ok ? IOT_OK : iot_err_set(err, IOT_EINVAL, "libcurl refused the TLS settings for etcd");
}

iot_status gw_shared_open(const gw_shared_options *o, gw_shared **out, iot_err *err)
{
    *out = NULL;
    pthread_once(&curl_once, init_curl);
    if (curl_init_rc != CURLE_OK)
        return iot_err_set(err, IOT_EIO, "libcurl did not start: %s",
                           curl_easy_strerror(curl_init_rc));
    gw_shared *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    iot_status st = IOT_OK;
    const char *why = gw_brokers_parse(o->members, DEFAULT_PORT, s->members, &s->n_members);
    if (why != NULL) {
        st = iot_err_set(err, IOT_EINVAL, "shared_state '%s': %s", o->members, why);
        goto out;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->curl = curl_easy_init();
    s->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (s->curl == NULL || s->headers == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory");
        goto out;
    }
    st = set_tls(s, o, err);
out:
    if (st != IOT_OK)
        gw_shared_close(s);
    else
        *out = s;
    return st;
}

void gw_shared_close(gw_shared *s)
{
    if (s == NULL)
        return;
    if (s->curl != NULL)
        curl_easy_cleanup(s->curl);
    curl_slist_free_all(s->headers);
    if (s->n_members > 0)
        pthread_mutex_destroy(&s->lock);
    free(s);
}

static void member_url(const gw_broker *m, const char *path, char *url, size_t cap)
{
    bool v6 = strchr(m->host, ':') != NULL;
    snprintf(url, cap, "https://%s%s%s:%d%s", v6 ? "[" : "", m->host, v6 ? "]" : "", m->port, path);
}

/* What etcd said when it refused: its "error" text, or the start of the
 * answer. */
static void refusal_text(const answer *a, char *out, size_t cap)
{
    cJSON *root = a->buf != NULL ? cJSON_Parse(a->buf) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsString(e))
        snprintf(out, cap, "%.*s", ERROR_TEXT_MAX, e->valuestring);
    else
        snprintf(out, cap, "%.*s", ERROR_TEXT_MAX, a->buf != NULL ? a->buf : "no answer");
    cJSON_Delete(root);
}

/* One call to one member: 1 answered 200 (the answer in *a), 0 refused
 * for good (4xx), -1 not reached or unavailable (try another). */
static int call_member(gw_shared *s, const gw_broker *m, const char *path, const char *body,
                       answer *a, iot_err *err)
{
    char url[GW_BROKER_HOST_MAX + 64];
    member_url(m, path, url, sizeof(url));
    free(a->buf);
    *a = (answer){NULL, 0};
    curl_easy_setopt(s->curl, CURLOPT_URL, url);
    curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, a);
    CURLcode rc = curl_easy_perform(s->curl);
    long http = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &http);
    if (rc != CURLE_OK) {
        iot_err_set(err, IOT_EIO, "etcd member %s: %s", url, curl_easy_strerror(rc));
        return -1;
    }
    if (http == 200 && a->buf != NULL)
        return 1;
    char why[ERROR_TEXT_MAX + 1];
    refusal_text(a, why, sizeof(why));
    iot_err_set(err, IOT_EIO, "etcd member %s answered %ld: %s", url, http, why);
    return http >= 400 && http < 500 ? 0 : -1;
}

/* The call on the member that answered last, then on each other in turn. */
static iot_status call(gw_shared *s, const char *path, const char *body, answer *a, iot_err *err)
{
    for (int tried = 0; tried < s->n_members; tried++) {
        int i = (s->current + tried) % s->n_members;
        int r = call_member(s, &s->members[i], path, body, a, err);
        if (r == 1) {
            s->current = i;
            return IOT_OK;
        }
        if (r == 0)
            return IOT_EIO;
    }
    return IOT_EIO;
}

/* base64 of text, in a new string. */
static char *b64(const char *text, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)len);
    return out;
}

/* A base64 field of an answer into out (cap bytes, NUL added); false
 * when absent, not base64 or too long. */
static bool unb64(const cJSON *field, char *out, size_t cap)
{
    size_t n = 0;
    if (!cJSON_IsString(field) || cap == 0)
        return false;
    const char *in = field->valuestring;
    if (gw_est_base64_decode(in, strlen(in), (unsigned char *)out, cap - 1, &n) != 0)
        return false;
    out[n] = '\0';
    return memchr(out, '\0', n) == NULL;
}

static int64_t int64_field(const cJSON *obj, const char *name)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(f) ? strtoll(f->valuestring, NULL, 10) : 0;
}

static char *txn_body(const char *k64, const char *v64)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *compare = cJSON_AddArrayToObject(root, "compare");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "key", k64);
    cJSON_AddStringToObject(c, "result", "EQUAL");
    cJSON_AddStringToObject(c, "target", "CREATE");
    cJSON_AddStringToObject(c, "create_revision", "0");
    cJSON_AddItemToArray(compare, c);
    cJSON *put = cJSON_CreateObject();
    cJSON *put_req = cJSON_AddObjectToObject(put, "request_put");
    cJSON_AddStringToObject(put_req, "key", k64);
    cJSON_AddStringToObject(put_req, "value", v64);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "success"), put);
    cJSON *get = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(get, "request_range"), "key", k64);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "failure"), get);
    char *body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return body;
}

/* The existing value a failed create-if-absent read back. */
static bool existing_value(const cJSON *root, char *out, size_t cap)
{
    const cJSON *responses = cJSON_GetObjectItemCaseSensitive(root, "responses");
    const cJSON *range =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(responses, 0), "response_range");
    const cJSON *kv = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(range, "kvs"), 0);
    return unb64(cJSON_GetObjectItemCaseSensitive(kv, "value"), out, cap);
}

iot_status gw_shared_create(gw_shared *s, const char *key, const char *value, bool *created,
                            char *existing, size_t cap, iot_err *err)
{
    *created = false;
    if (cap > 0)
        existing[0] = '\0';
    answer a = {NULL, 0};
    cJSON *root = NULL;
    char *k64 = b64(key, strlen(key));
    char *v64 = b64(value, strlen(value));
    char *body = k64 != NULL && v64 != NULL ? txn_body(k64, v64) : NULL;
    iot_status st = IOT_ENOMEM;
    if (body == NULL)
        goto out;
    pthread_mutex_lock(&s->lock);
    st = call(s, "/v3/kv/txn", body, &a, err);
    pthread_mutex_unlock(&s->lock);
    if (st != IOT_OK)
        goto out;
    root = cJSON_Parse(a.buf);
    if (root == NULL) {
        st = iot_err_set(err, IOT_EIO, "etcd's answer to a transaction is not JSON");
        goto out;
    }
    *created = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "succeeded"));
    if (!*created && !existing_value(root, existing, cap))
        st = iot_err_set(err, IOT_EIO, "etcd has %s but its value could not be read back", key);
out:
    cJSON_Delete(root);
    free(a.buf);
    free(body);
    free(k64);
    free(v64);
    return st;
}

/* The first key after every key that starts with prefix: the range end. */
static char *prefix_end(const char *prefix)
{
    size_t n = strlen(prefix);
    char *end = malloc(n + 1);
    if (end == NULL)
        return NULL;
    memcpy(end, prefix, n + 1);
    end[n - 1] = (char)(end[n - 1] + 1); /* prefixes end in '/' here, never 0xff */
    return end;
}

static char *range_body(const char *prefix, int64_t after, int limit)
{
    char *end = prefix_end(prefix);
    char *k64 = b64(prefix, strlen(prefix));
    char *e64 = end != NULL ? b64(end, strlen(end)) : NULL;
    char *body = NULL;
    char rev[24];
    char lim[24];
    if (k64 != NULL && e64 != NULL) {
        snprintf(rev, sizeof(rev), "%lld", (long long)after + 1);
        snprintf(lim, sizeof(lim), "%d", limit);
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "key", k64);
        cJSON_AddStringToObject(root, "range_end", e64);
        cJSON_AddStringToObject(root, "sort_order", "ASCEND");
        cJSON_AddStringToObject(root, "sort_target", "MOD");
        cJSON_AddStringToObject(root, "min_mod_revision", rev);
        cJSON_AddStringToObject(root, "limit", lim);
        body = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
    }
    free(end);
    free(k64);
    free(e64);
    return body;
}

iot_status gw_shared_changes(gw_shared *s, const char *prefix, int64_t *revision, int limit, int *n,
                             gw_shared_kv_fn fn, void *ctx, iot_err *err)
{
    *n = 0;
    answer a = {NULL, 0};
    cJSON *root = NULL;
    char key[GW_SHARED_KEY_MAX + 1];
    char value[GW_SHARED_VALUE_MAX + 1];
    char *body = prefix[0] != '\0' ? range_body(prefix, *revision, limit) : NULL;
    iot_status st = IOT_ENOMEM;
    if (body == NULL)
        goto out;
    pthread_mutex_lock(&s->lock);
    st = call(s, "/v3/kv/range", body, &a, err);
    pthread_mutex_unlock(&s->lock);
    if (st != IOT_OK)
        goto out;
    root = cJSON_Parse(a.buf);
    if (root == NULL) {
        st = iot_err_set(err, IOT_EIO, "etcd's answer to a range is not JSON");
        goto out;
    }
    const cJSON *kv = NULL;
    const cJSON *kvs = cJSON_GetObjectItemCaseSensitive(root, "kvs");
    *n = cJSON_GetArraySize(kvs);
    cJSON_ArrayForEach(kv, kvs)
    {
        /* A key or value that is not ours to read (too long, not text) is
         * passed over, never a reason to stop reading the rest. */
        if (unb64(cJSON_GetObjectItemCaseSensitive(kv, "key"), key, sizeof(key)) &&
            unb64(cJSON_GetObjectItemCaseSensitive(kv, "value"), value, sizeof(value)) &&
            !fn(ctx, key, value))
            break;
        int64_t mod = int64_field(kv, "mod_revision");
        if (mod > *revision)
            *revision = mod;
    }
out:
    cJSON_Delete(root);
    free(a.buf);
    free(body);
    return st;
}

void gw_shared_note(bool *down, const char *what, iot_status st, const iot_err *err)
{
    if (st != IOT_OK) {
        gw_metric_inc(GW_M_SHARED_ERRORS);
        if (!*down)
            gw_log(GW_LOG_ERROR, "shared.unavailable",
                   "for=%s error=\"%s\" action=\"check the etcd members in shared_state; what "
                   "waits is written when one answers\"",
                   what, err->msg);
        *down = true;
    } else if (*down) {
        *down = false;
        gw_log(GW_LOG_INFO, "shared.available", "for=%s", what);
    }
}

void gw_shared_timedwait(pthread_cond_t *wake, pthread_mutex_t *lock, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(wake, lock, &until);
}
