/* iotctl enroll list|approve|deny: first enrollments that wait for an
 * operator (the gateway's est_require_approval). The gateway records a
 * pending request when a device with a valid token or bootstrap
 * certificate asks; an approval lets its next request get the certificate,
 * a denial refuses it for good. The commands need no CA key: they work on
 * the registry the gateway uses (--registry).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmds.h"
#include "iot/enroll.h"
#include "iot/identity.h"

typedef struct enroll_walk {
    bool pending_only;
    cJSON *array; /* NULL for table output */
} enroll_walk;

static int enroll_json(const iot_enroll_record *e, cJSON *array)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return IOT_ENOMEM;
    cJSON_AddStringToObject(o, "device", e->device);
    cJSON_AddStringToObject(o, "state", iot_enroll_state_name(e->state));
    cJSON_AddStringToObject(o, "method", e->method);
    cJSON_AddStringToObject(o, "auth", e->auth);
    cJSON_AddStringToObject(o, "key_sha256", e->spki);
    cJSON_AddStringToObject(o, "peer", e->peer);
    cmd_json_time(o, "requested", e->requested);
    cmd_json_time(o, "decided", e->decided);
    if (e->serial[0])
        cJSON_AddStringToObject(o, "serial", e->serial);
    else
        cJSON_AddNullToObject(o, "serial");
    cJSON_AddItemToArray(array, o);
    return 0;
}

static int enroll_one(const iot_enroll_record *e, void *arg)
{
    enroll_walk *w = arg;
    if (w->pending_only && e->state != IOT_ENROLL_PENDING)
        return 0;
    if (w->array != NULL)
        return enroll_json(e, w->array);
    char requested[32];
    cli_format_time(e->requested, requested, sizeof(requested));
    printf("%-32s %-8s %-9s %-20s %-18s %s\n", e->device, iot_enroll_state_name(e->state),
           e->method, requested, e->auth, e->peer[0] ? e->peer : "-");
    return 0;
}

int cmd_enroll_list(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("enroll", "list");
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"pending", no_argument, NULL, 'p'},
                                         {"registry", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    cmd_registry_opts o = {0};
    int rc = cmd_parse_registry_opts(self, argc, argv, opts, &o, NULL);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    iot_registry *reg = NULL;
    enroll_walk w = {.pending_only = o.pending, .array = o.json ? cJSON_CreateArray() : NULL};
    iot_status st = o.json && w.array == NULL ? iot_err_set(&err, IOT_ENOMEM, "out of memory")
                                              : cmd_open_registry(ctx, o.registry, &reg, &err);
    if (st == IOT_OK && !o.json)
        printf("%-32s %-8s %-9s %-20s %-18s %s\n", "DEVICE", "STATE", "METHOD", "REQUESTED", "AUTH",
               "PEER");
    if (st == IOT_OK)
        st = iot_enroll_foreach(reg, enroll_one, &w, &err);
    iot_registry_close(reg);
    rc = st != IOT_OK ? cli_fail(&err) : (o.json ? cmd_print_json(w.array) : CLI_EXIT_OK);
    cJSON_Delete(w.array);
    return rc;
}

/* enroll approve and enroll deny: ID [--registry PATH]. */
static int enroll_decide(cli_ctx *ctx, const char *command, bool approve, int argc, char **argv)
{
    const cli_command *self = cmd_find("enroll", command);
    static const struct option opts[] = {{"registry", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    cmd_registry_opts o = {0};
    int rc = cmd_parse_registry_opts(self, argc, argv, opts, &o, "device ID");
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    const char *id = argv[optind];
    iot_err err = {0};
    iot_registry *reg = NULL;
    iot_status st = iot_id_check("device ID", id, &err);
    if (st == IOT_OK)
        st = cmd_open_registry(ctx, o.registry, &reg, &err);
    if (st == IOT_OK)
        st = iot_enroll_decide(reg, id, approve, (int64_t)ctx->now, &err);
    if (st == IOT_ENOENT && reg != NULL)
        iot_err_set(&err, IOT_ENOENT,
                    "device '%s' has no enrollment request waiting for a decision (see 'iotctl "
                    "enroll list --pending')",
                    id);
    iot_registry_close(reg);
    if (st != IOT_OK)
        return cli_fail(&err);
    if (approve)
        printf("device %s: enrollment approved; its next request gets its certificate\n", id);
    else
        printf("device %s: enrollment denied\n", id);
    return CLI_EXIT_OK;
}

int cmd_enroll_approve(cli_ctx *ctx, int argc, char **argv)
{
    return enroll_decide(ctx, "approve", true, argc, argv);
}

int cmd_enroll_deny(cli_ctx *ctx, int argc, char **argv)
{
    return enroll_decide(ctx, "deny", false, argc, argv);
}
