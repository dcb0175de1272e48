#include "listing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmds.h"
#include "iot/registry.h"

typedef struct list_walk {
    const cli_ctx *ctx;
    int kind;
    cJSON *array; /* NULL for table output */
    size_t count;
} list_walk;

static bool is_expired(const cli_ctx *ctx, const iot_cert_record *rec)
{
    return rec->not_after <= (int64_t)ctx->now;
}

static cJSON *record_json(const cli_ctx *ctx, const iot_cert_record *rec)
{
    char not_before[32], not_after[32], created[32], revoked_at[32];
    cli_format_time(rec->not_before, not_before, sizeof(not_before));
    cli_format_time(rec->not_after, not_after, sizeof(not_after));
    cli_format_time(rec->created, created, sizeof(created));
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    bool device = rec->kind == IOT_KIND_DEVICE;
    cJSON_AddStringToObject(o, device ? "id" : "name", rec->name);
    if (!device) {
        cJSON_AddStringToObject(o, "kind", iot_cert_kind_name(rec->kind));
        if (rec->role[0])
            cJSON_AddStringToObject(o, "role", rec->role);
    }
    if (device && rec->class_id[0])
        cJSON_AddStringToObject(o, "class", rec->class_id);
    else if (device)
        cJSON_AddNullToObject(o, "class");
    cJSON_AddStringToObject(o, "state", rec->revoked ? "revoked" : "active");
    cJSON_AddBoolToObject(o, "expired", is_expired(ctx, rec));
    cJSON_AddStringToObject(o, "serial", rec->serial);
    cJSON_AddStringToObject(o, "sha256", rec->fingerprint);
    if (rec->spki[0])
        cJSON_AddStringToObject(o, "key_sha256", rec->spki);
    else
        cJSON_AddNullToObject(o, "key_sha256");
    cJSON_AddStringToObject(o, "not_before", not_before);
    cJSON_AddStringToObject(o, "not_after", not_after);
    cJSON_AddNumberToObject(o, "days_left", (double)cli_days_left(ctx, rec->not_after));
    cJSON_AddStringToObject(o, "created", created);
    if (rec->revoked) {
        cli_format_time(rec->revoked_at, revoked_at, sizeof(revoked_at));
        cJSON_AddStringToObject(o, "revoked_at", revoked_at);
        cJSON_AddStringToObject(o, "revoke_reason", rec->revoke_reason);
    }
    return o;
}

static const char *state_label(const cli_ctx *ctx, const iot_cert_record *rec)
{
    if (rec->revoked)
        return "revoked";
    return is_expired(ctx, rec) ? "expired" : "active";
}

static int list_one(const iot_cert_record *rec, void *arg)
{
    list_walk *w = arg;
    if (w->kind < 0 && (rec->kind == IOT_KIND_DEVICE || rec->kind == IOT_KIND_ISSUER))
        return 0; /* cert list: servers and clients */
    w->count++;
    if (w->array != NULL) {
        cJSON *o = record_json(w->ctx, rec);
        if (o == NULL)
            return IOT_ENOMEM;
        cJSON_AddItemToArray(w->array, o);
        return 0;
    }
    char until[32];
    cli_format_time(rec->not_after, until, sizeof(until));
    long long days = cli_days_left(w->ctx, rec->not_after);
    if (w->kind == IOT_KIND_DEVICE)
        printf("%-32s %-8s %-21s %9lld  %s\n", rec->name, state_label(w->ctx, rec), until, days,
               rec->class_id[0] ? rec->class_id : "-");
    else if (w->kind == IOT_KIND_ISSUER)
        printf("%-24s %-40s %-8s %-21s %9lld\n", rec->name, rec->serial, state_label(w->ctx, rec),
               until, days);
    else
        printf("%-32s %-7s %-9s %-8s %-21s %9lld\n", rec->name, iot_cert_kind_name(rec->kind),
               rec->role[0] ? rec->role : "-", state_label(w->ctx, rec), until, days);
    return 0;
}

static iot_status open_readonly(const cli_ctx *ctx, iot_registry **reg, iot_err *err)
{
    char db[CLI_PATH_MAX];
    iot_status st = cli_check_pki(ctx, err);
    if (st != IOT_OK)
        return st;
    st = cli_path(ctx, db, "registry.db", err);
    if (st != IOT_OK)
        return st;
    return iot_registry_open(db, IOT_REGISTRY_READONLY, reg, err);
}

/* Parses [--json] [--help] and the expected number of positional args. */
static int parse_flags(const cli_command *self, int argc, char **argv, int positional, bool *json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    *json = false;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        switch (c) {
        case 'j':
            *json = true;
            break;
        case 'h':
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        default:
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (argc - optind > positional)
        return cli_usage(self, "unexpected argument '%s'", argv[optind + positional]);
    if (argc - optind < positional)
        return cli_usage(self, "missing argument");
    return CLI_EXIT_OK;
}

static void print_header(int kind)
{
    if (kind == IOT_KIND_DEVICE)
        printf("%-32s %-8s %-21s %9s  %s\n", "ID", "STATE", "NOT AFTER", "DAYS LEFT", "CLASS");
    else if (kind == IOT_KIND_ISSUER)
        printf("%-24s %-40s %-8s %-21s %9s\n", "NAME", "SERIAL", "STATE", "NOT AFTER", "DAYS LEFT");
    else
        printf("%-32s %-7s %-9s %-8s %-21s %9s\n", "NAME", "KIND", "ROLE", "STATE", "NOT AFTER",
               "DAYS LEFT");
}

int listing_run(cli_ctx *ctx, const cli_command *self, int kind, int argc, char **argv)
{
    bool json;
    int rc = parse_flags(self, argc, argv, 0, &json);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    iot_registry *reg = NULL;
    list_walk w = {.ctx = ctx, .kind = kind};
    if (json) {
        w.array = cJSON_CreateArray();
        if (w.array == NULL) {
            iot_err_set(&err, IOT_ENOMEM, "out of memory");
            return cli_fail(&err);
        }
    }
    iot_status st = open_readonly(ctx, &reg, &err);
    if (st != IOT_OK)
        goto out;
    if (!json)
        print_header(kind);
    st = iot_registry_foreach(reg, kind < 0 ? -1 : kind, list_one, &w, &err);
    if (st != IOT_OK)
        goto out;
    rc = json ? cmd_print_json(w.array) : CLI_EXIT_OK;
out:
    iot_registry_close(reg);
    if (st != IOT_OK)
        rc = cli_fail(&err);
    cJSON_Delete(w.array);
    return rc;
}

static void print_record(const cli_ctx *ctx, const iot_cert_record *rec)
{
    char t[32];
    bool device = rec->kind == IOT_KIND_DEVICE;
    printf("%-12s %s\n", device ? "id" : "name", rec->name);
    if (!device) {
        printf("%-12s %s\n", "kind", iot_cert_kind_name(rec->kind));
        if (rec->role[0])
            printf("%-12s %s\n", "role", rec->role);
    }
    if (device)
        printf("%-12s %s\n", "class", rec->class_id[0] ? rec->class_id : "(not set)");
    printf("%-12s %s\n", "state", state_label(ctx, rec));
    printf("%-12s %s\n", "serial", rec->serial);
    printf("%-12s %s\n", "sha256", rec->fingerprint);
    printf("%-12s %s\n", "key sha256",
           rec->spki[0] ? rec->spki : "unknown (recorded before schema 3)");
    cli_format_time(rec->not_before, t, sizeof(t));
    printf("%-12s %s\n", "not before", t);
    cli_format_time(rec->not_after, t, sizeof(t));
    printf("%-12s %s (%lld days left)\n", "not after", t, cli_days_left(ctx, rec->not_after));
    cli_format_time(rec->created, t, sizeof(t));
    printf("%-12s %s\n", "created", t);
    if (rec->revoked) {
        cli_format_time(rec->revoked_at, t, sizeof(t));
        printf("%-12s %s (%s)\n", "revoked", t, rec->revoke_reason);
    }
}

/* The certificates a name had before its renewals, for `show`. */
#define HISTORY_MAX 64
typedef struct history {
    iot_cert_record recs[HISTORY_MAX];
    size_t n, more;
} history;

static int add_history(const iot_cert_record *rec, void *arg)
{
    history *h = arg;
    if (h->n < HISTORY_MAX)
        h->recs[h->n++] = *rec;
    else
        h->more++;
    return 0;
}

static void print_history(const history *h)
{
    char t[32];
    for (size_t i = 0; i < h->n; i++) {
        cli_format_time(h->recs[i].revoked_at, t, sizeof(t));
        printf("%-12s %s, replaced %s\n", i == 0 ? "superseded" : "", h->recs[i].serial, t);
    }
    if (h->more > 0)
        printf("%-12s and %zu more\n", "", h->more);
}

static cJSON *history_json(const history *h)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a != NULL && i < h->n; i++) {
        char t[32];
        cli_format_time(h->recs[i].revoked_at, t, sizeof(t));
        cJSON *o = cJSON_CreateObject();
        if (o == NULL)
            break;
        cJSON_AddStringToObject(o, "serial", h->recs[i].serial);
        cJSON_AddStringToObject(o, "sha256", h->recs[i].fingerprint);
        if (h->recs[i].spki[0])
            cJSON_AddStringToObject(o, "key_sha256", h->recs[i].spki);
        else
            cJSON_AddNullToObject(o, "key_sha256");
        cJSON_AddStringToObject(o, "replaced", t);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* name's record and the certificates it replaced. */
static iot_status show_lookup(const cli_ctx *ctx, int kind, const char *name, iot_cert_record *rec,
                              history *past, iot_err *err)
{
    iot_registry *reg = NULL;
    iot_status st = iot_id_check(kind == IOT_KIND_DEVICE ? "device ID" : "name", name, err);
    if (st != IOT_OK)
        return st;
    st = open_readonly(ctx, &reg, err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_get_by_name(reg, name, rec, err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_foreach_superseded(reg, name, add_history, past, err);
out:
    iot_registry_close(reg);
    return st;
}

/* `device show` shows devices only, `cert show` anything but devices. */
static iot_status check_show_kind(int kind, const char *name, const iot_cert_record *rec,
                                  iot_err *err)
{
    if (kind >= 0 && rec->kind != (iot_cert_kind)kind)
        return iot_err_set(err, IOT_ENOENT, "'%s' is %s %s certificate, not %s %s", name,
                           iot_cert_kind_article(rec->kind), iot_cert_kind_name(rec->kind),
                           iot_cert_kind_article((iot_cert_kind)kind),
                           iot_cert_kind_name((iot_cert_kind)kind));
    if (kind < 0 && rec->kind == IOT_KIND_DEVICE)
        return iot_err_set(err, IOT_ENOENT, "'%s' is a device; use 'iotctl device show %s'", name,
                           name);
    return IOT_OK;
}

int listing_show(cli_ctx *ctx, const cli_command *self, int kind, int argc, char **argv)
{
    bool json;
    int rc = parse_flags(self, argc, argv, 1, &json);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    const char *name = argv[optind];
    iot_err err = {0};
    iot_cert_record rec;
    static history past; /* large: not on the stack */
    past.n = past.more = 0;
    iot_status st = show_lookup(ctx, kind, name, &rec, &past, &err);
    if (st == IOT_ENOENT && kind == IOT_KIND_DEVICE)
        iot_err_set(&err, IOT_ENOENT, "no device '%s' in the registry (see 'iotctl device list')",
                    name);
    if (st != IOT_OK)
        return cli_fail(&err);
    if (check_show_kind(kind, name, &rec, &err) != IOT_OK)
        return cli_fail(&err);
    if (!json) {
        print_record(ctx, &rec);
        print_history(&past);
        return CLI_EXIT_OK;
    }
    cJSON *o = record_json(ctx, &rec);
    if (o != NULL)
        cJSON_AddItemToObject(o, "superseded", history_json(&past));
    rc = cmd_print_json(o);
    cJSON_Delete(o);
    return rc;
}
