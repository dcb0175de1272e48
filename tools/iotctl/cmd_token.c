/* iotctl token create|list|revoke: one-time enrollment tokens. A token
 * lets one new device ID ask the gateway for its first certificate (EST
 * simpleenroll with HTTP Basic ID:token), once, before it expires. The
 * registry keeps only its SHA-256; the token itself is printed once, alone
 * on stdout, and never again. Tokens need no CA key: the commands work on
 * the registry the gateway uses (--registry).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "cmds.h"
#include "iot/enroll.h"

#define DEFAULT_TTL_S (7 * 86400)

iot_status cmd_open_registry(const cli_ctx *ctx, const char *path, iot_registry **reg, iot_err *err)
{
    char db[CLI_PATH_MAX];
    *reg = NULL;
    bool given = path != NULL;
    if (!given) {
        iot_status st = cli_path(ctx, db, "registry.db", err);
        if (st != IOT_OK)
            return st;
        path = db;
    }
    iot_status st = iot_registry_open(path, IOT_REGISTRY_WRITE, reg, err);
    if (st == IOT_ENOENT && given)
        return iot_err_set(err, IOT_ENOENT, "no registry at %s (--registry)", path);
    if (st == IOT_ENOENT)
        return iot_err_set(err, IOT_ENOENT,
                           "no registry at %s; give the gateway's with --registry, or create a PKI "
                           "with 'iotctl pki init'",
                           path);
    return st;
}

int cmd_parse_registry_opts(const cli_command *self, int argc, char **argv,
                            const struct option *opts, cmd_registry_opts *o, const char *what)
{
    int positional = what != NULL ? 1 : 0;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'R')
            o->registry = optarg;
        else if (c == 'j')
            o->json = true;
        else if (c == 'p')
            o->pending = true;
        else if (c == 'D')
            o->device = optarg;
        else if (c == 't')
            o->ttl = optarg;
        else if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (argc - optind > positional)
        return cli_usage(self, "unexpected argument '%s'", argv[optind + positional]);
    if (argc - optind < positional)
        return cli_usage(self, "missing %s", what);
    return CLI_EXIT_OK;
}

/* "1h", "30m", "7d", "90s" or plain seconds, 1 s to IOT_TOKEN_TTL_MAX. */
static bool parse_ttl(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || s[0] < '0' || s[0] > '9' || v < 1)
        return false;
    static const struct {
        char unit;
        long long seconds;
    } units[] = {{'\0', 1}, {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (end[0] != units[i].unit || (end[0] != '\0' && end[1] != '\0'))
            continue;
        if (v > IOT_TOKEN_TTL_MAX / units[i].seconds)
            return false;
        *out = (int64_t)(v * units[i].seconds);
        return true;
    }
    return false;
}

static void print_created(const iot_token_record *rec)
{
    char until[32];
    cli_format_time(rec->expires, until, sizeof(until));
    fprintf(stderr,
            "iotctl: token %s for device %s, single use, expires %s\n"
            "iotctl: it is shown only this once; the registry keeps only its SHA-256\n",
            rec->id, rec->device, until);
}

int cmd_token_create(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("token", "create");
    static const struct option opts[] = {{"device", required_argument, NULL, 'D'},
                                         {"ttl", required_argument, NULL, 't'},
                                         {"registry", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    cmd_registry_opts o = {0};
    int rc = cmd_parse_registry_opts(self, argc, argv, opts, &o, NULL);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if (o.device == NULL)
        return cli_usage(self, "--device ID is required");
    int64_t ttl = DEFAULT_TTL_S;
    if (o.ttl != NULL && !parse_ttl(o.ttl, &ttl)) {
        fprintf(stderr,
                "iotctl: --ttl '%s' is not a lifetime of 1 s to %d days (1h, 30m, 7d or "
                "seconds)\n",
                o.ttl, IOT_TOKEN_TTL_MAX / 86400);
        return CLI_EXIT_USAGE;
    }
    iot_err err = {0};
    iot_registry *reg = NULL;
    char token[IOT_TOKEN_LEN + 1];
    iot_token_record rec;
    iot_status st = cmd_open_registry(ctx, o.registry, &reg, &err);
    if (st == IOT_OK)
        st = iot_token_create(reg, o.device, ttl, (int64_t)ctx->now, token, &rec, &err);
    iot_registry_close(reg);
    if (st != IOT_OK)
        return cli_fail(&err);
    printf("%s\n", token);
    fflush(stdout);
    OPENSSL_cleanse(token, sizeof(token));
    print_created(&rec);
    return CLI_EXIT_OK;
}

typedef struct token_walk {
    const cli_ctx *ctx;
    cJSON *array; /* NULL for table output */
} token_walk;

static const char *token_state(const cli_ctx *ctx, const iot_token_record *t)
{
    if (t->revoked_at != 0)
        return "revoked";
    if (t->used_at != 0)
        return "used";
    return t->expires <= (int64_t)ctx->now ? "expired" : "unused";
}

void cmd_json_time(cJSON *o, const char *key, int64_t t)
{
    char buf[32];
    if (t == 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    cli_format_time(t, buf, sizeof(buf));
    cJSON_AddStringToObject(o, key, buf);
}

static int token_one(const iot_token_record *t, void *arg)
{
    token_walk *w = arg;
    if (w->array == NULL) {
        char created[32], expires[32];
        cli_format_time(t->created, created, sizeof(created));
        cli_format_time(t->expires, expires, sizeof(expires));
        printf("%-16s %-32s %-7s %-20s %-20s %s\n", t->id, t->device, token_state(w->ctx, t),
               created, expires, t->serial[0] ? t->serial : "-");
        return 0;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return IOT_ENOMEM;
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "device", t->device);
    cJSON_AddStringToObject(o, "state", token_state(w->ctx, t));
    cmd_json_time(o, "created", t->created);
    cmd_json_time(o, "expires", t->expires);
    cmd_json_time(o, "used_at", t->used_at);
    cmd_json_time(o, "revoked_at", t->revoked_at);
    if (t->serial[0])
        cJSON_AddStringToObject(o, "serial", t->serial);
    else
        cJSON_AddNullToObject(o, "serial");
    cJSON_AddItemToArray(w->array, o);
    return 0;
}

int cmd_token_list(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("token", "list");
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"registry", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    cmd_registry_opts o = {0};
    int rc = cmd_parse_registry_opts(self, argc, argv, opts, &o, NULL);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    iot_registry *reg = NULL;
    token_walk w = {.ctx = ctx, .array = o.json ? cJSON_CreateArray() : NULL};
    iot_status st = o.json && w.array == NULL ? iot_err_set(&err, IOT_ENOMEM, "out of memory")
                                              : cmd_open_registry(ctx, o.registry, &reg, &err);
    if (st == IOT_OK && !o.json)
        printf("%-16s %-32s %-7s %-20s %-20s %s\n", "ID", "DEVICE", "STATE", "CREATED", "EXPIRES",
               "CERTIFICATE");
    if (st == IOT_OK)
        st = iot_token_foreach(reg, token_one, &w, &err);
    iot_registry_close(reg);
    rc = st != IOT_OK ? cli_fail(&err) : (o.json ? cmd_print_json(w.array) : CLI_EXIT_OK);
    cJSON_Delete(w.array);
    return rc;
}

int cmd_token_revoke(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("token", "revoke");
    static const struct option opts[] = {{"registry", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    cmd_registry_opts o = {0};
    int rc = cmd_parse_registry_opts(self, argc, argv, opts, &o, "TOKEN-ID");
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    const char *id = argv[optind];
    iot_err err = {0};
    iot_registry *reg = NULL;
    iot_status st = cmd_open_registry(ctx, o.registry, &reg, &err);
    if (st == IOT_OK)
        st = iot_token_revoke(reg, id, (int64_t)ctx->now, &err);
    iot_registry_close(reg);
    if (st != IOT_OK)
        return cli_fail(&err);
    printf("token %s: revoked\n", id);
    return CLI_EXIT_OK;
}
