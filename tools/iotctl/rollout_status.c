/* iotctl rollout status: every rollout in one table, or one in detail,
 * for people or as JSON (--json) for scripts. JSON key names are a
 * stable interface. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmds.h"
#include "iot/rollout.h"
#include "rollout_cli.h"

typedef struct status_opts {
    const char *name; /* NULL: every rollout */
    const char *db;
    bool json, devices;
} status_opts;

/* Devices started and not yet final. */
static uint32_t in_progress(const iot_rollout_info *info)
{
    return info->count[IOT_RDEV_OFFERED] + info->count[IOT_RDEV_DOWNLOADING] +
           info->count[IOT_RDEV_DOWNLOADED] + info->count[IOT_RDEV_INSTALLING];
}

static uint32_t failed(const iot_rollout_info *info)
{
    return info->count[IOT_RDEV_FAILED] + info->count[IOT_RDEV_ROLLED_BACK];
}

/* ---- JSON -------------------------------------------------------------------------- */

static cJSON *plan_json(const iot_rollout_plan *p)
{
    char seed[24];
    cJSON *o = cJSON_CreateObject();
    cJSON *waves = cJSON_AddArrayToObject(o, "waves");
    for (size_t i = 0; waves != NULL && i < p->n_waves; i++)
        cJSON_AddItemToArray(waves, cJSON_CreateNumber(p->waves[i]));
    cJSON_AddNumberToObject(o, "canary", p->canary);
    cJSON_AddNumberToObject(o, "max_per_minute", p->max_per_minute);
    cJSON_AddNumberToObject(o, "success_percent", p->success_percent);
    cJSON_AddNumberToObject(o, "failure_percent", p->failure_percent);
    cJSON_AddNumberToObject(o, "min_reports", p->min_reports);
    /* A string: a 64-bit seed does not fit a JSON number exactly. */
    snprintf(seed, sizeof(seed), "%" PRIu64, p->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    return o;
}

static void add_time(cJSON *o, const char *key, int64_t t)
{
    char when[32];
    if (t == 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    cli_format_time(t, when, sizeof(when));
    cJSON_AddStringToObject(o, key, when);
}

static cJSON *rollout_json(const iot_rollout_info *info)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "name", info->plan.name);
    cJSON_AddStringToObject(o, "state", iot_rollout_state_name(info->state));
    cJSON_AddStringToObject(o, "pause_reason", info->pause_reason);
    cJSON_AddBoolToObject(o, "security", info->plan.security);
    cJSON_AddNumberToObject(o, "sequence", (double)info->sequence);
    cJSON_AddStringToObject(o, "version", info->version);
    cJSON_AddStringToObject(o, "class_id", info->class_id);
    cJSON_AddStringToObject(o, "digest", info->digest);
    cJSON_AddNumberToObject(o, "image_size", info->image_size);
    cJSON_AddNumberToObject(o, "current_wave", info->current_wave);
    cJSON_AddNumberToObject(o, "devices", info->devices);
    cJSON *counts = cJSON_AddObjectToObject(o, "counts");
    for (int s = 0; counts != NULL && s < IOT_RDEV_STATE_COUNT; s++)
        cJSON_AddNumberToObject(counts, iot_rollout_dev_state_name((iot_rollout_dev_state)s),
                                info->count[s]);
    cJSON *waves = cJSON_AddArrayToObject(o, "waves");
    for (uint32_t w = 0; waves != NULL && w <= info->plan.n_waves; w++)
        cJSON_AddItemToArray(waves, cJSON_CreateNumber(info->wave_size[w]));
    cJSON_AddItemToObject(o, "plan", plan_json(&info->plan));
    add_time(o, "created", info->created);
    add_time(o, "updated", info->updated);
    return o;
}

static int add_device_json(const iot_rollout_device *d, void *ctx)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(ctx, o)) {
        cJSON_Delete(o);
        return IOT_ENOMEM;
    }
    cJSON_AddStringToObject(o, "device", d->device);
    cJSON_AddNumberToObject(o, "wave", d->wave);
    cJSON_AddStringToObject(o, "state", iot_rollout_dev_state_name(d->state));
    cJSON_AddStringToObject(o, "reason", d->reason);
    cJSON_AddNumberToObject(o, "offset", d->offset);
    add_time(o, "offered_at", d->offered_at);
    add_time(o, "updated", d->updated);
    return 0;
}

static int add_rollout_json(const iot_rollout_info *info, void *ctx)
{
    cJSON *o = rollout_json(info);
    if (o == NULL || !cJSON_AddItemToArray(ctx, o)) {
        cJSON_Delete(o);
        return IOT_ENOMEM;
    }
    return 0;
}

/* Prints item as JSON and frees it. */
static int print_json(cJSON *item)
{
    int rc = cmd_print_json(item);
    cJSON_Delete(item);
    return rc;
}

/* ---- text -------------------------------------------------------------------------- */

static int print_row(const iot_rollout_info *info, void *ctx)
{
    (void)ctx;
    char wave[24];
    snprintf(wave, sizeof(wave), "%" PRIu32 "/%zu", info->current_wave, info->plan.n_waves);
    printf("%-24s %-10s %-7s %8" PRIu64 " %-16s %7" PRIu32 " %7" PRIu32 " %7" PRIu32 " %9" PRIu32
           " %6" PRIu32 "%s\n",
           info->plan.name, iot_rollout_state_name(info->state), wave, info->sequence,
           info->version, info->devices, info->count[IOT_RDEV_PENDING], in_progress(info),
           info->count[IOT_RDEV_CONFIRMED], failed(info), info->plan.security ? "  security" : "");
    return 0;
}

static void print_header(void)
{
    printf("%-24s %-10s %-7s %8s %-16s %7s %7s %7s %9s %6s\n", "NAME", "STATE", "WAVE", "SEQUENCE",
           "VERSION", "DEVICES", "PENDING", "ACTIVE", "CONFIRMED", "FAILED");
}

static void print_waves(const iot_rollout_info *info)
{
    printf("  %-14s", "waves");
    for (uint32_t w = 0; w <= info->plan.n_waves; w++)
        printf("%s%" PRIu32 ": %" PRIu32 "%s", w ? ", " : " ", w, info->wave_size[w],
               w <= info->current_wave ? " started" : "");
    printf(" (wave 0 is the canary)\n");
}

static void print_counts(const iot_rollout_info *info)
{
    printf("  %-14s %" PRIu32 ":", "devices", info->devices);
    for (int s = 0; s < IOT_RDEV_STATE_COUNT; s++)
        printf("%s %s %" PRIu32, s ? "," : "", iot_rollout_dev_state_name((iot_rollout_dev_state)s),
               info->count[s]);
    printf("\n");
}

static void print_detail(const iot_rollout_info *info)
{
    char created[32], updated[32];
    const iot_rollout_plan *p = &info->plan;
    cli_format_time(info->created, created, sizeof(created));
    cli_format_time(info->updated, updated, sizeof(updated));
    printf("rollout %s\n", p->name);
    printf("  %-14s %s%s%s%s\n", "state", iot_rollout_state_name(info->state),
           info->pause_reason[0] ? " (" : "", info->pause_reason, info->pause_reason[0] ? ")" : "");
    printf("  %-14s sequence %" PRIu64 ", class-id %s, version %s%s\n", "release", info->sequence,
           info->class_id, info->version, p->security ? ", security update" : "");
    printf("  %-14s sha-256:%s, %" PRIu32 " bytes\n", "image", info->digest, info->image_size);
    printf("  %-14s %" PRIu32 " of %zu\n", "current wave", info->current_wave, p->n_waves);
    print_waves(info);
    print_counts(info);
    printf("  %-14s canary %" PRIu32 ", waves", "plan", p->canary);
    for (size_t i = 0; i < p->n_waves; i++)
        printf("%s%u", i ? "," : " ", (unsigned)p->waves[i]);
    printf(" %%, success %u %%, failure %u %% after %" PRIu32 " reports, ", p->success_percent,
           p->failure_percent, p->min_reports);
    if (p->max_per_minute > 0)
        printf("%" PRIu32 " starts a minute\n", p->max_per_minute);
    else
        printf("no start cap\n");
    printf("  %-14s %s\n  %-14s %s\n", "created", created, "updated", updated);
}

static int print_device(const iot_rollout_device *d, void *ctx)
{
    (void)ctx;
    char when[32] = "-";
    if (d->updated != 0)
        cli_format_time(d->updated, when, sizeof(when));
    printf("%-32s %4" PRIu32 " %-12s %-16s %10" PRIu32 " %s\n", d->device, d->wave,
           iot_rollout_dev_state_name(d->state), d->reason[0] ? d->reason : "-", d->offset, when);
    return 0;
}

/* ---- the command ------------------------------------------------------------------- */

static iot_status show_one(iot_rollouts *r, const status_opts *o, int *rc, iot_err *err)
{
    iot_rollout_info info;
    iot_status st = iot_rollout_get(r, o->name, &info, err);
    if (st != IOT_OK)
        return st;
    if (!o->json) {
        print_detail(&info);
        if (!o->devices)
            return IOT_OK;
        printf("\n%-32s %4s %-12s %-16s %10s %s\n", "DEVICE", "WAVE", "STATE", "REASON", "OFFSET",
               "UPDATED");
        return iot_rollout_foreach_device(r, o->name, print_device, NULL, err);
    }
    cJSON *obj = rollout_json(&info);
    cJSON *devs = obj != NULL ? cJSON_AddArrayToObject(obj, "device_states") : NULL;
    st = devs != NULL ? iot_rollout_foreach_device(r, o->name, add_device_json, devs, err)
                      : IOT_ENOMEM;
    if (st == IOT_OK)
        *rc = print_json(obj);
    else
        cJSON_Delete(obj);
    return st == IOT_ENOMEM ? iot_err_set(err, st, "out of memory listing the devices") : st;
}

static iot_status show_all(iot_rollouts *r, const status_opts *o, int *rc, iot_err *err)
{
    if (!o->json) {
        print_header();
        return r != NULL ? iot_rollout_foreach(r, print_row, NULL, err) : IOT_OK;
    }
    cJSON *a = cJSON_CreateArray();
    iot_status st = a == NULL ? IOT_ENOMEM : IOT_OK;
    if (st == IOT_OK && r != NULL)
        st = iot_rollout_foreach(r, add_rollout_json, a, err);
    if (st == IOT_OK)
        *rc = print_json(a);
    else
        cJSON_Delete(a);
    return st == IOT_ENOMEM ? iot_err_set(err, st, "out of memory listing the rollouts") : st;
}

static int status_getopt(const cli_command *self, int argc, char **argv, status_opts *o)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"devices", no_argument, NULL, 'v'},
                                         {"db", required_argument, NULL, 'D'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'j')
            o->json = true;
        else if (c == 'v')
            o->devices = true;
        else if (c == 'D')
            o->db = optarg;
        else if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (optind < argc)
        o->name = argv[optind++];
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    if (o->devices && o->name == NULL)
        return cli_usage(self, "--devices needs a rollout NAME");
    return CLI_EXIT_OK;
}

int cmd_rollout_status(cli_ctx *ctx, int argc, char **argv)
{
    status_opts o = {0};
    int rc = status_getopt(cmd_find("rollout", "status"), argc, argv, &o);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    char path[CLI_PATH_MAX];
    iot_rollouts *r = NULL;
    iot_err err = {0};
    iot_status st = rollout_db_path(ctx, o.db, path, &err);
    if (st == IOT_OK)
        st = iot_rollouts_open(path, IOT_ROLLOUTS_READONLY, &r, &err);
    /* No file yet is no rollout yet, for the list. */
    if (st == IOT_ENOENT && o.name == NULL)
        st = IOT_OK;
    if (st == IOT_OK)
        st = o.name != NULL ? show_one(r, &o, &rc, &err) : show_all(r, &o, &rc, &err);
    iot_rollouts_close(r);
    return st == IOT_OK ? rc : cli_fail(&err);
}
