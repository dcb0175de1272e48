/* JSON documents of the API (data.h). */
#include "data.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "iot/registry.h"
#include "iot/rollout.h"
#include "live.h"
#include "store.h"

#define ONLINE_S     300 /* seen this recently: online */
#define DAY_S        86400
#define CSV_ROW_MAX  1024
#define DEVICE_LIMIT 100000

static iot_status open_registry(ic_app *app, iot_registry **reg, iot_err *err)
{
    iot_status st = iot_registry_open(app->cfg.registry, IOT_REGISTRY_READONLY, reg, err);
    if (st == IOT_OK)
        iot_registry_set_busy_timeout(*reg, 1000);
    return st;
}

static void add_fleet_fields(ic_app *app, const char *id, cJSON *o, int64_t now)
{
    const char *gw = NULL;
    const cJSON *e = ic_fleet_lookup(app->fleet, id, &gw);
    static const char *const copied[] = {"firmware",   "secure_version", "slot",
                                         "boot_count", "reset_reason",   "connect_failures",
                                         "heap_min",   "last_report",    NULL};
    double seen = 0;
    if (e != NULL) {
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(e, "last_seen");
        seen = cJSON_IsNumber(ls) ? ls->valuedouble : 0;
        for (const char *const *k = copied; *k != NULL; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, *k);
            if (v != NULL)
                cJSON_AddItemToObject(o, *k, cJSON_Duplicate(v, false));
        }
    }
    cJSON_AddStringToObject(o, "gateway", gw != NULL ? gw : "");
    cJSON_AddNumberToObject(o, "last_seen", seen);
    cJSON_AddBoolToObject(o, "online", seen > 0 && (double)now - seen <= ONLINE_S);
}

static cJSON *device_row(ic_app *app, const iot_cert_record *r, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->name);
    cJSON_AddStringToObject(o, "state", r->revoked ? "revoked" : "active");
    cJSON_AddBoolToObject(o, "revoked", r->revoked);
    cJSON_AddNumberToObject(o, "revoked_at", (double)r->revoked_at);
    cJSON_AddStringToObject(o, "revoke_reason", r->revoke_reason);
    cJSON_AddStringToObject(o, "class", r->class_id);
    cJSON_AddStringToObject(o, "serial", r->serial);
    cJSON_AddNumberToObject(o, "not_after", (double)r->not_after);
    cJSON_AddNumberToObject(o, "cert_days_left", (double)((r->not_after - now) / DAY_S));
    add_fleet_fields(app, r->name, o, now);
    cJSON_AddNumberToObject(o, "readings_per_min", 0);
    cJSON_AddNumberToObject(o, "dropped", 0);
    cJSON *stats = cJSON_CreateObject();
    ic_live_device_stats(app->live, r->name, stats);
    const cJSON *v = NULL;
    cJSON_ArrayForEach(v, stats)
    {
        cJSON *copy = cJSON_Duplicate(v, false);
        if (cJSON_GetObjectItemCaseSensitive(o, v->string) != NULL)
            cJSON_ReplaceItemInObjectCaseSensitive(o, v->string, copy);
        else
            cJSON_AddItemToObject(o, v->string, copy);
    }
    cJSON_Delete(stats);
    return o;
}

typedef struct collect_ctx {
    ic_app *app;
    cJSON *arr;
    int64_t now;
    const char *q, *state, *class_id;
    int n;
} collect_ctx;

static bool row_matches(const collect_ctx *c, const cJSON *row, const iot_cert_record *r)
{
    if (c->q != NULL && strstr(r->name, c->q) == NULL)
        return false;
    if (c->class_id != NULL && strcmp(r->class_id, c->class_id) != 0)
        return false;
    if (c->state == NULL)
        return true;
    bool online = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "online"));
    if (strcmp(c->state, "revoked") == 0)
        return r->revoked;
    if (strcmp(c->state, "active") == 0)
        return !r->revoked;
    if (strcmp(c->state, "online") == 0)
        return online;
    return !online; /* "offline" */
}

static int collect_device(const iot_cert_record *r, void *ctx)
{
    collect_ctx *c = ctx;
    if (c->n >= DEVICE_LIMIT)
        return 1;
    cJSON *row = device_row(c->app, r, c->now);
    if (row_matches(c, row, r)) {
        cJSON_AddItemToArray(c->arr, row);
        c->n++;
    } else {
        cJSON_Delete(row);
    }
    return 0;
}

static const char *sort_key;
static int sort_sign;

static int compare_rows(const void *a, const void *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(*(cJSON *const *)a, sort_key);
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(*(cJSON *const *)b, sort_key);
    int r = 0;
    if (cJSON_IsNumber(x) && cJSON_IsNumber(y))
        r = (x->valuedouble > y->valuedouble) - (x->valuedouble < y->valuedouble);
    else if (cJSON_IsString(x) && cJSON_IsString(y))
        r = strcmp(x->valuestring, y->valuestring);
    return r * sort_sign;
}

/* Sorts the array in place on `key` (the event loop is one thread, so the
 * comparator's statics are safe). */
static void sort_rows(cJSON *arr, const char *key, bool desc)
{
    int n = cJSON_GetArraySize(arr);
    cJSON **items = n > 0 ? calloc((size_t)n, sizeof(*items)) : NULL;
    if (items == NULL)
        return;
    for (int i = n - 1; i >= 0; i--)
        items[i] = cJSON_DetachItemFromArray(arr, i);
    sort_key = key;
    sort_sign = desc ? -1 : 1;
    qsort(items, (size_t)n, sizeof(*items), compare_rows);
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, items[i]);
    free(items);
}

static const char *check_device_query(const ic_target *t, collect_ctx *c, const char **sort,
                                      bool *desc)
{
    static const char *const allowed[] = {"q", "state", "class", "sort", "order", "format", NULL};
    static const char *const states[] = {"active", "revoked", "online", "offline", NULL};
    static const char *const sorts[] = {
        "id",       "state",          "last_seen", "not_after",
        "firmware", "gateway",        "class",     "readings_per_min",
        "dropped",  "cert_days_left", NULL};
    if (ic_target_unknown_param(t, allowed) != NULL)
        return "unknown query parameter (q, state, class, sort, order, format)";
    c->q = ic_target_param(t, "q");
    c->state = ic_target_param(t, "state");
    c->class_id = ic_target_param(t, "class");
    const char *order = ic_target_param(t, "order");
    *sort = ic_target_param(t, "sort");
    *sort = *sort != NULL ? *sort : "id";
    bool ok_state = c->state == NULL, ok_sort = false;
    for (const char *const *s = states; *s != NULL; s++)
        ok_state |= strcmp(*s, c->state != NULL ? c->state : "") == 0;
    for (const char *const *s = sorts; *s != NULL; s++)
        ok_sort |= strcmp(*s, *sort) == 0;
    if (!ok_state)
        return "state must be active, revoked, online or offline";
    if (!ok_sort)
        return "sort must be a column of the fleet table";
    if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
        return "order must be asc or desc";
    *desc = order != NULL && strcmp(order, "desc") == 0;
    return NULL;
}

iot_status ic_data_devices(ic_app *app, const ic_target *t, cJSON **out, const char **why,
                           iot_err *err)
{
    collect_ctx c = {.app = app, .now = ic_now()};
    const char *sort = NULL;
    bool desc = false;
    *out = NULL;
    *why = check_device_query(t, &c, &sort, &desc);
    if (*why != NULL)
        return iot_err_set(err, IOT_EINVAL, "%s", *why);
    iot_registry *reg = NULL;
    iot_status st = open_registry(app, &reg, err);
    cJSON *root = cJSON_CreateObject();
    c.arr = cJSON_AddArrayToObject(root, "devices");
    if (st == IOT_OK)
        st = iot_registry_foreach(reg, IOT_KIND_DEVICE, collect_device, &c, err);
    iot_registry_close(reg);
    if (st != IOT_OK) {
        cJSON_Delete(root);
        return st;
    }
    sort_rows(c.arr, sort, desc);
    cJSON_AddNumberToObject(root, "count", c.n);
    cJSON_AddNumberToObject(root, "generated", (double)c.now);
    *out = root;
    return IOT_OK;
}

/* A CSV field: quoted, quotes doubled; a leading = + - @ is prefixed with
 * ' so that a spreadsheet does not run a device-supplied value (firmware
 * versions come from devices) as a formula. */
static void csv_field(char *buf, size_t size, size_t *pos, const cJSON *v)
{
    char text[160];
    if (cJSON_IsString(v))
        snprintf(text, sizeof(text), "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(text, sizeof(text), "%s", cJSON_IsTrue(v) ? "yes" : "no");
    else if (cJSON_IsNumber(v))
        snprintf(text, sizeof(text), "%.0f", v->valuedouble);
    else
        text[0] = '\0';
    bool formula = strchr("=+-@", text[0]) != NULL && text[0] != '\0';
    size_t p = *pos;
    if (p + 2 < size)
        buf[p++] = '"';
    if (formula && p + 1 < size)
        buf[p++] = '\'';
    for (const char *s = text; *s != '\0' && p + 3 < size; s++) {
        if (*s == '"')
            buf[p++] = '"';
        buf[p++] = *s;
    }
    if (p + 1 < size)
        buf[p++] = '"';
    buf[p] = '\0';
    *pos = p;
}

char *ic_data_devices_csv(const cJSON *doc, size_t *len)
{
    static const char *const cols[] = {
        "id",        "state",          "online",  "last_seen",        "firmware", "slot",
        "not_after", "cert_days_left", "gateway", "readings_per_min", "dropped",  "class",
        NULL};
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "devices");
    size_t rows = (size_t)cJSON_GetArraySize(arr) + 1;
    size_t cap = rows * CSV_ROW_MAX;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    size_t pos = 0;
    for (const char *const *c = cols; *c != NULL; c++)
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s", c == cols ? "" : ",", *c);
    pos += (size_t)snprintf(buf + pos, cap - pos, "\r\n");
    const cJSON *row = NULL;
    cJSON_ArrayForEach(row, arr)
    {
        size_t start = pos;
        char line[CSV_ROW_MAX];
        size_t lp = 0;
        for (const char *const *c = cols; *c != NULL; c++) {
            if (c != cols && lp + 1 < sizeof(line))
                line[lp++] = ',';
            csv_field(line, sizeof(line) - 2, &lp, cJSON_GetObjectItemCaseSensitive(row, *c));
        }
        line[lp++] = '\r';
        line[lp++] = '\n';
        memcpy(buf + start, line, lp);
        pos = start + lp;
    }
    buf[pos] = '\0';
    *len = pos;
    return buf;
}

static cJSON *cert_json(const iot_cert_record *r, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "kind", iot_cert_kind_name(r->kind));
    cJSON_AddStringToObject(o, "role", r->role);
    cJSON_AddStringToObject(o, "serial", r->serial);
    cJSON_AddStringToObject(o, "fingerprint", r->fingerprint);
    cJSON_AddNumberToObject(o, "not_before", (double)r->not_before);
    cJSON_AddNumberToObject(o, "not_after", (double)r->not_after);
    cJSON_AddNumberToObject(o, "days_left", (double)((r->not_after - now) / DAY_S));
    cJSON_AddBoolToObject(o, "revoked", r->revoked);
    cJSON_AddNumberToObject(o, "revoked_at", (double)r->revoked_at);
    cJSON_AddStringToObject(o, "revoke_reason", r->revoke_reason);
    return o;
}

static int add_superseded(const iot_cert_record *r, void *ctx)
{
    cJSON *o = cert_json(r, ic_now());
    cJSON_ReplaceItemInObjectCaseSensitive(o, "revoke_reason", cJSON_CreateString("superseded"));
    cJSON_AddItemToArray(ctx, o);
    return 0;
}

/* The rollouts, copied out first: iot_rollout_foreach holds a read
 * transaction, and the per-device walk needs its own. */
typedef struct infos {
    iot_rollout_info *v;
    size_t n, cap;
} infos;

static int collect_info(const iot_rollout_info *info, void *ctx)
{
    infos *x = ctx;
    if (x->n == x->cap) {
        size_t cap = x->cap != 0 ? 2 * x->cap : 16;
        iot_rollout_info *v = realloc(x->v, cap * sizeof(*v));
        if (v == NULL)
            return 1;
        x->v = v;
        x->cap = cap;
    }
    x->v[x->n++] = *info;
    return 0;
}

static iot_status load_infos(iot_rollouts *r, infos *x, iot_err *err)
{
    memset(x, 0, sizeof(*x));
    iot_status st = iot_rollout_foreach(r, collect_info, x, err);
    if (st != IOT_OK) {
        free(x->v);
        x->v = NULL;
        x->n = 0;
    }
    return st;
}

typedef struct fw_dev_ctx {
    const iot_rollout_info *info;
    const char *device;
    cJSON *arr;
} fw_dev_ctx;

static int fw_device(const iot_rollout_device *d, void *ctx)
{
    fw_dev_ctx *c = ctx;
    if (strcmp(d->device, c->device) != 0)
        return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rollout", c->info->plan.name);
    cJSON_AddStringToObject(o, "version", c->info->version);
    cJSON_AddNumberToObject(o, "wave", d->wave);
    cJSON_AddStringToObject(o, "state", iot_rollout_dev_state_name(d->state));
    cJSON_AddStringToObject(o, "reason", d->reason);
    cJSON_AddNumberToObject(o, "offered_at", (double)d->offered_at);
    cJSON_AddNumberToObject(o, "updated", (double)d->updated);
    cJSON_AddItemToArray(c->arr, o);
    return 1;
}

static cJSON *firmware_history(ic_app *app, const char *device)
{
    cJSON *arr = cJSON_CreateArray();
    iot_rollouts *r = NULL;
    iot_err err = {0};
    if (app->cfg.rollouts[0] == '\0' ||
        iot_rollouts_open(app->cfg.rollouts, IOT_ROLLOUTS_READONLY, &r, &err) != IOT_OK)
        return arr;
    infos x;
    if (load_infos(r, &x, &err) == IOT_OK) {
        for (size_t i = 0; i < x.n; i++) {
            fw_dev_ctx d = {.info = &x.v[i], .device = device, .arr = arr};
            (void)iot_rollout_foreach_device(r, x.v[i].plan.name, fw_device, &d, &err);
        }
    }
    free(x.v);
    iot_rollouts_close(r);
    return arr;
}

iot_status ic_data_device(ic_app *app, const char *id, cJSON **out, iot_err *err)
{
    iot_registry *reg = NULL;
    iot_cert_record rec;
    int64_t now = ic_now();
    *out = NULL;
    iot_status st = open_registry(app, &reg, err);
    if (st == IOT_OK)
        st = iot_registry_get_by_name(reg, id, &rec, err);
    if (st == IOT_OK && rec.kind != IOT_KIND_DEVICE)
        st = iot_err_set(err, IOT_ENOENT, "no device %s", id);
    if (st != IOT_OK) {
        iot_registry_close(reg);
        return st;
    }
    cJSON *root = device_row(app, &rec, now);
    cJSON *certs = cJSON_AddArrayToObject(root, "certificates");
    (void)iot_registry_foreach_superseded(reg, id, add_superseded, certs, err);
    cJSON_AddItemToArray(certs, cert_json(&rec, now));
    iot_registry_close(reg);
    cJSON_AddItemToObject(root, "firmware_history", firmware_history(app, id));
    cJSON *ev = ic_store_events_json(app->store, 100, false, id);
    cJSON *list = cJSON_DetachItemFromObjectCaseSensitive(ev, "events");
    cJSON_AddItemToObject(root, "events", list != NULL ? list : cJSON_CreateArray());
    cJSON_Delete(ev);
    cJSON_AddItemToObject(root, "readings", ic_live_device_readings(app->live, id));
    *out = root;
    return IOT_OK;
}

typedef struct cert_ctx {
    cJSON *arr;
    int64_t now, until;
} cert_ctx;

static int collect_cert(const iot_cert_record *r, void *ctx)
{
    cert_ctx *c = ctx;
    if (!r->revoked && r->not_after <= c->until)
        cJSON_AddItemToArray(c->arr, cert_json(r, c->now));
    return 0;
}

iot_status ic_data_certificates(ic_app *app, long days, cJSON **out, iot_err *err)
{
    iot_registry *reg = NULL;
    int64_t now = ic_now();
    cert_ctx c = {.now = now, .until = now + (int64_t)days * DAY_S};
    *out = NULL;
    iot_status st = open_registry(app, &reg, err);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "days", (double)days);
    c.arr = cJSON_AddArrayToObject(root, "certificates");
    if (st == IOT_OK)
        st = iot_registry_foreach(reg, -1, collect_cert, &c, err);
    iot_registry_close(reg);
    if (st != IOT_OK) {
        cJSON_Delete(root);
        return st;
    }
    sort_rows(c.arr, "not_after", false);
    *out = root;
    return IOT_OK;
}

typedef struct wave_ctx {
    uint32_t devices[IOT_ROLLOUT_WAVES_MAX + 1];
    uint32_t confirmed[IOT_ROLLOUT_WAVES_MAX + 1];
    uint32_t failed[IOT_ROLLOUT_WAVES_MAX + 1];
    uint32_t started[IOT_ROLLOUT_WAVES_MAX + 1];
} wave_ctx;

static int count_wave(const iot_rollout_device *d, void *ctx)
{
    wave_ctx *w = ctx;
    if (d->wave > IOT_ROLLOUT_WAVES_MAX)
        return 0;
    w->devices[d->wave]++;
    w->confirmed[d->wave] += d->state == IOT_RDEV_CONFIRMED;
    w->failed[d->wave] += d->state == IOT_RDEV_FAILED || d->state == IOT_RDEV_ROLLED_BACK;
    w->started[d->wave] += d->state != IOT_RDEV_PENDING;
    return 0;
}

static cJSON *waves_json(iot_rollouts *r, const iot_rollout_info *info)
{
    wave_ctx w;
    iot_err err = {0};
    memset(&w, 0, sizeof(w));
    (void)iot_rollout_foreach_device(r, info->plan.name, count_wave, &w, &err);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i <= info->plan.n_waves && i <= IOT_ROLLOUT_WAVES_MAX; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "wave", (double)i);
        cJSON_AddStringToObject(o, "name", i == 0 ? "canary" : "wave");
        cJSON_AddNumberToObject(o, "target_percent", i == 0 ? 0 : info->plan.waves[i - 1]);
        cJSON_AddNumberToObject(o, "devices", w.devices[i]);
        cJSON_AddNumberToObject(o, "started", w.started[i]);
        cJSON_AddNumberToObject(o, "confirmed", w.confirmed[i]);
        cJSON_AddNumberToObject(o, "failed", w.failed[i]);
        cJSON_AddBoolToObject(o, "begun", i <= info->current_wave);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

typedef struct rollouts_ctx {
    iot_rollouts *r;
    cJSON *arr;
} rollouts_ctx;

static void add_rollout(const iot_rollout_info *info, rollouts_ctx *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)info->id);
    cJSON_AddStringToObject(o, "name", info->plan.name);
    cJSON_AddStringToObject(o, "state", iot_rollout_state_name(info->state));
    cJSON_AddStringToObject(o, "pause_reason", info->pause_reason);
    cJSON_AddStringToObject(o, "version", info->version);
    cJSON_AddStringToObject(o, "class", info->class_id);
    cJSON_AddBoolToObject(o, "security", info->plan.security);
    cJSON_AddNumberToObject(o, "current_wave", info->current_wave);
    cJSON_AddNumberToObject(o, "devices", info->devices);
    cJSON_AddNumberToObject(o, "created", (double)info->created);
    cJSON_AddNumberToObject(o, "updated", (double)info->updated);
    cJSON *counts = cJSON_AddObjectToObject(o, "counts");
    for (int s = 0; s < IOT_RDEV_STATE_COUNT; s++)
        cJSON_AddNumberToObject(counts, iot_rollout_dev_state_name((iot_rollout_dev_state)s),
                                info->count[s]);
    cJSON_AddItemToObject(o, "waves", waves_json(c->r, info));
    cJSON_AddItemToArray(c->arr, o);
}

iot_status ic_data_rollouts(ic_app *app, cJSON **out, iot_err *err)
{
    cJSON *root = cJSON_CreateObject();
    rollouts_ctx c = {.arr = cJSON_AddArrayToObject(root, "rollouts")};
    *out = root;
    if (app->cfg.rollouts[0] == '\0')
        return IOT_OK;
    iot_status st = iot_rollouts_open(app->cfg.rollouts, IOT_ROLLOUTS_READONLY, &c.r, err);
    if (st == IOT_ENOENT)
        return IOT_OK; /* none created yet */
    infos x = {0};
    if (st == IOT_OK)
        st = load_infos(c.r, &x, err);
    for (size_t i = 0; st == IOT_OK && i < x.n; i++)
        add_rollout(&x.v[i], &c);
    free(x.v);
    iot_rollouts_close(c.r);
    if (st != IOT_OK) {
        cJSON_Delete(root);
        *out = NULL;
    }
    return st;
}
