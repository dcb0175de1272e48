/* iotctl rollout create|pause|resume|abort: staged rollouts of the
 * releases stored by 'firmware add', kept in the rollout file that the
 * gateway reads and writes too (DIR/rollouts.db unless --db). The rules
 * (waves, cap, pause, completion) are those of iot/rollout.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "fwrelease.h"
#include "iot/fsutil.h"
#include "iot/registry.h"
#include "iot/rollout.h"
#include "rollout_cli.h"

#define DEFAULT_WAVES    "10,50,100"
#define CANDIDATES_SHOWN 4

iot_status rollout_db_path(const cli_ctx *ctx, const char *db_opt, char *path, iot_err *err)
{
    if (db_opt == NULL)
        return cli_path(ctx, path, ROLLOUT_DB_NAME, err);
    if (snprintf(path, CLI_PATH_MAX, "%s", db_opt) >= CLI_PATH_MAX)
        return iot_err_set(err, IOT_EINVAL, "--db path is longer than %d bytes", CLI_PATH_MAX - 1);
    return IOT_OK;
}

/* ---- the command line of create ------------------------------------------------ */

/* The options that take a value, in the order of their letters. */
enum {
    O_FIRMWARE,
    O_DEVICES,
    O_CLASS,
    O_CANARY,
    O_WAVES,
    O_MAX_PM,
    O_SUCCESS,
    O_FAILURE,
    O_MIN_REPORTS,
    O_SEED,
    O_DB,
    O_COUNT
};
static const char VALUED[] = "fdCcwmsFreD";

typedef struct create_opts {
    const char *name;
    const char *arg[O_COUNT];
    bool all;
    iot_rollout_plan plan;
} create_opts;

/* Returns CLI_EXIT_OK, the exit status of a usage error, or -1 after --help. */
static int create_getopt(const cli_command *self, int argc, char **argv, create_opts *o)
{
    static const struct option opts[] = {{"firmware", required_argument, NULL, 'f'},
                                         {"devices", required_argument, NULL, 'd'},
                                         {"class", required_argument, NULL, 'C'},
                                         {"canary", required_argument, NULL, 'c'},
                                         {"waves", required_argument, NULL, 'w'},
                                         {"max-per-minute", required_argument, NULL, 'm'},
                                         {"success-percent", required_argument, NULL, 's'},
                                         {"failure-percent", required_argument, NULL, 'F'},
                                         {"min-reports", required_argument, NULL, 'r'},
                                         {"seed", required_argument, NULL, 'e'},
                                         {"db", required_argument, NULL, 'D'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"security", no_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        const char *slot = c > 0 ? strchr(VALUED, c) : NULL;
        if (slot != NULL)
            o->arg[slot - VALUED] = optarg;
        else if (c == 'a')
            o->all = true;
        else if (c == 'S')
            o->plan.security = true;
        else if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (optind == argc)
        return cli_usage(self, "missing the rollout NAME");
    if (optind + 1 != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind + 1]);
    o->name = argv[optind];
    return CLI_EXIT_OK;
}

static iot_status parse_waves(const char *text, iot_rollout_plan *p, iot_err *err)
{
    char buf[64];
    if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
        return iot_err_set(err, IOT_EINVAL, "--waves '%.20s...' is too long", text);
    p->n_waves = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        uint64_t v = 0;
        if (p->n_waves == IOT_ROLLOUT_WAVES_MAX)
            return iot_err_set(err, IOT_EINVAL, "--waves '%s' has more than %d waves", text,
                               IOT_ROLLOUT_WAVES_MAX);
        iot_status st = fw_parse_u64("--waves percentage", tok, 1, 100, &v, err);
        if (st != IOT_OK)
            return st;
        p->waves[p->n_waves++] = (uint8_t)v;
    }
    if (p->n_waves == 0)
        return iot_err_set(err, IOT_EINVAL, "--waves '%s' names no wave", text);
    return IOT_OK;
}

/* A numeric option: its default when not given, else lo..hi. */
static iot_status number_opt(const char *given, const char *what, uint64_t def, uint64_t lo,
                             uint64_t hi, uint64_t *out, iot_err *err)
{
    *out = def;
    return given == NULL ? IOT_OK : fw_parse_u64(what, given, lo, hi, out, err);
}

static iot_status fill_plan(create_opts *o, iot_err *err)
{
    iot_rollout_plan *p = &o->plan;
    uint64_t v[6] = {0};
    iot_status st =
        number_opt(o->arg[O_CANARY], "--canary", 1, 0, IOT_ROLLOUT_DEVICES_MAX, &v[0], err);
    if (st == IOT_OK)
        st = number_opt(o->arg[O_MAX_PM], "--max-per-minute", 0, 0, IOT_ROLLOUT_DEVICES_MAX, &v[1],
                        err);
    if (st == IOT_OK)
        st = number_opt(o->arg[O_SUCCESS], "--success-percent", 90, 1, 100, &v[2], err);
    if (st == IOT_OK)
        st = number_opt(o->arg[O_FAILURE], "--failure-percent", 10, 1, 100, &v[3], err);
    if (st == IOT_OK)
        st = number_opt(o->arg[O_MIN_REPORTS], "--min-reports", 5, 0, IOT_ROLLOUT_DEVICES_MAX,
                        &v[4], err);
    if (st == IOT_OK)
        st = number_opt(o->arg[O_SEED], "--seed", 0, 0, UINT64_MAX, &v[5], err);
    if (st == IOT_OK)
        st = parse_waves(o->arg[O_WAVES] ? o->arg[O_WAVES] : DEFAULT_WAVES, p, err);
    if (st != IOT_OK)
        return st;
    p->canary = (uint32_t)v[0];
    p->max_per_minute = (uint32_t)v[1];
    p->success_percent = (uint8_t)v[2];
    p->failure_percent = (uint8_t)v[3];
    p->min_reports = (uint32_t)v[4];
    p->seed = v[5];
    if (snprintf(p->name, sizeof(p->name), "%s", o->name) >= (int)sizeof(p->name))
        return iot_err_set(err, IOT_EINVAL, "rollout name is longer than %d characters",
                           IOT_ROLLOUT_NAME_MAX);
    return iot_rollout_plan_check(p, err);
}

/* ---- the release ----------------------------------------------------------------- */

static bool is_digits(const char *s)
{
    return s[0] != '\0' && strspn(s, "0123456789") == strlen(s);
}

static bool ref_matches(const fw_release *r, const char *ref)
{
    size_t len = strlen(ref);
    if (is_digits(ref) && ref[0] != '0' && strtoull(ref, NULL, 10) == r->m.sequence)
        return true;
    if (strcmp(r->m.version, ref) == 0)
        return true;
    return len >= 8 && len <= FW_DIGEST_HEX && strspn(ref, "0123456789abcdef") == len &&
           strncmp(r->digest, ref, len) == 0;
}

static iot_status ambiguous_ref(const fw_release_list *l, const char *ref, size_t matches,
                                iot_err *err)
{
    char list[320] = "";
    size_t used = 0, shown = 0;
    for (size_t i = 0; i < l->n && shown < CANDIDATES_SHOWN; i++) {
        const fw_release *r = &l->items[i];
        if (!ref_matches(r, ref))
            continue;
        int n = snprintf(list + used, sizeof(list) - used, "%ssequence %" PRIu64 " (%s, %.12s)",
                         shown++ ? ", " : "", r->m.sequence, r->m.version, r->digest);
        used = n > 0 && used + (size_t)n < sizeof(list) ? used + (size_t)n : used;
    }
    return iot_err_set(err, IOT_EINVAL,
                       "--firmware '%s' names %zu releases: %s%s; give the sequence number or "
                       "more SHA-256 digits",
                       ref, matches, list, matches > shown ? ", ..." : "");
}

/* The stored release that ref names by sequence number, version or
 * SHA-256 prefix (8 hex digits at least). */
static iot_status resolve_ref(const fw_store *s, const fw_release_list *l, const char *ref,
                              const fw_release **out, iot_err *err)
{
    size_t matches = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (ref_matches(&l->items[i], ref) && matches++ == 0)
            *out = &l->items[i];
    }
    if (matches == 1)
        return IOT_OK;
    if (matches > 1)
        return ambiguous_ref(l, ref, matches, err);
    return iot_err_set(err, IOT_ENOENT,
                       "--firmware '%s' is no release in %s (by sequence number, version or "
                       "SHA-256 prefix of 8+ digits); 'iotctl firmware list' shows them, "
                       "'iotctl firmware add' stores one",
                       ref, s->images);
}

/* The release verified again, today, with the trusted keys and its image;
 * its manifest text in *text (malloc'd). */
typedef struct verified_release {
    fw_verdict v;
    char *text;
    size_t len;
    char digest[FW_DIGEST_HEX + 1];
} verified_release;

static iot_status verify_release(const cli_ctx *ctx, const fw_store *s, const fw_release *r,
                                 verified_release *out, iot_err *err)
{
    char manifest[CLI_PATH_MAX], image[CLI_PATH_MAX];
    fw_policy_opts p = {.now = (int64_t)ctx->now};
    iot_status st = fw_release_paths(s, r->digest, manifest, image, err);
    if (st == IOT_OK)
        st = iot_file_read(manifest, IOTD_MANIFEST_MAX, &out->text, &out->len, err);
    if (st == IOT_OK)
        st = fw_verify_file(s, manifest, image, &p, &out->v, err);
    if (st == IOT_OK)
        st = fw_verdict_error(s, manifest, &p, &out->v, err);
    if (st == IOT_OK)
        memcpy(out->digest, r->digest, sizeof(out->digest));
    return st;
}

static iot_status load_release(const cli_ctx *ctx, const char *ref, verified_release *out,
                               iot_err *err)
{
    fw_store s;
    fw_release_list l = {0};
    const fw_release *r = NULL;
    iot_status st = fw_store_open(ctx, &s, false, err);
    if (st == IOT_OK)
        st = fw_releases_load(&s, &l, err);
    if (st == IOT_OK)
        st = resolve_ref(&s, &l, ref, &r, err);
    if (st == IOT_OK)
        st = verify_release(ctx, &s, r, out, err);
    fw_releases_free(&l);
    fw_store_close(&s);
    return st;
}

/* ---- the devices ----------------------------------------------------------------- */

typedef struct device_set {
    char (*ids)[IOT_ID_MAX + 1];
    size_t n, cap;
    const char *class_id; /* NULL: every active device */
    const char *release_class;
    size_t other_class; /* devices whose class is set and not the release's */
} device_set;

static int add_device(const iot_cert_record *rec, void *ctx)
{
    device_set *set = ctx;
    if (rec->revoked || (set->class_id != NULL && strcmp(rec->class_id, set->class_id) != 0))
        return 0;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        void *grown =
            cap > IOT_ROLLOUT_DEVICES_MAX ? NULL : realloc(set->ids, cap * sizeof(*set->ids));
        if (grown == NULL)
            return IOT_ENOMEM;
        set->ids = grown;
        set->cap = cap;
    }
    memcpy(set->ids[set->n++], rec->name, sizeof(set->ids[0]));
    set->other_class += rec->class_id[0] && strcmp(rec->class_id, set->release_class) != 0;
    return 0;
}

static iot_status open_registry(const cli_ctx *ctx, iot_registry **reg, iot_err *err)
{
    char db[CLI_PATH_MAX];
    iot_status st = cli_check_pki(ctx, err);
    if (st == IOT_OK)
        st = cli_path(ctx, db, "registry.db", err);
    if (st == IOT_OK)
        st = iot_registry_open(db, IOT_REGISTRY_READONLY, reg, err);
    return st;
}

/* --devices: each an active device of the registry, named when not. */
static iot_status listed_devices(iot_registry *reg, const char *list, device_set *set, iot_err *err)
{
    size_t len = strlen(list);
    char *buf = malloc(len + 1);
    iot_status st = buf != NULL ? IOT_OK : iot_err_set(err, IOT_ENOMEM, "out of memory");
    if (st != IOT_OK)
        return st;
    memcpy(buf, list, len + 1);
    char *save = NULL;
    for (char *id = strtok_r(buf, ",", &save); id != NULL && st == IOT_OK;
         id = strtok_r(NULL, ",", &save)) {
        iot_cert_record rec;
        st = iot_id_check("--devices entry", id, err);
        if (st == IOT_OK && (iot_registry_get_by_name(reg, id, &rec, NULL) != IOT_OK ||
                             rec.kind != IOT_KIND_DEVICE || rec.revoked))
            st = iot_err_set(err, IOT_ENOENT,
                             "--devices: '%s' is not an active device of the registry (see "
                             "'iotctl device list')",
                             id);
        if (st == IOT_OK && add_device(&rec, set) != 0)
            st = iot_err_set(err, IOT_ENOMEM, "--devices lists too many devices");
    }
    free(buf);
    return st;
}

static iot_status select_devices(const cli_ctx *ctx, const create_opts *o, const iotd_manifest *m,
                                 device_set *set, iot_err *err)
{
    iot_registry *reg = NULL;
    set->class_id = o->arg[O_CLASS];
    set->release_class = m->class_id;
    if (set->class_id != NULL && strcmp(set->class_id, m->class_id) != 0)
        return iot_err_set(err, IOT_EINVAL,
                           "--class '%s' is not the release's class-id '%s'; devices of class "
                           "'%s' would refuse it (wrong_class)",
                           set->class_id, m->class_id, set->class_id);
    iot_status st = open_registry(ctx, &reg, err);
    if (st == IOT_OK && o->arg[O_DEVICES] != NULL)
        st = listed_devices(reg, o->arg[O_DEVICES], set, err);
    else if (st == IOT_OK)
        st = iot_registry_foreach(reg, IOT_KIND_DEVICE, add_device, set, err);
    if (st == IOT_ENOMEM && o->arg[O_DEVICES] == NULL)
        iot_err_set(err, st, "more than %d devices selected", IOT_ROLLOUT_DEVICES_MAX);
    iot_registry_close(reg);
    if (st == IOT_OK && set->n == 0)
        st = iot_err_set(err, IOT_ENOENT, "no active device%s%s%s in the registry of %s",
                         set->class_id ? " of class '" : "", set->class_id ? set->class_id : "",
                         set->class_id ? "'" : "", ctx->dir);
    return st;
}

/* ---- create ------------------------------------------------------------------------ */

static void print_created(const iot_rollout_info *info, const char *path)
{
    printf("rollout %s created: sequence %" PRIu64 ", %s %s%s\n", info->plan.name, info->sequence,
           info->class_id, info->version, info->plan.security ? " (security update)" : "");
    printf("  %-16s %" PRIu32 "\n", "devices", info->devices);
    for (uint32_t w = 0; w <= info->plan.n_waves; w++) {
        char label[16];
        snprintf(label, sizeof(label), "wave %" PRIu32, w);
        printf("  %-16s %" PRIu32 "%s%s\n", label, info->wave_size[w], w == 0 ? " (canary)" : "",
               w == info->current_wave ? ", started" : "");
    }
    if (info->plan.max_per_minute > 0)
        printf("  %-16s %" PRIu32 " devices\n", "per minute", info->plan.max_per_minute);
    else
        printf("  %-16s no cap\n", "per minute");
    printf("  %-16s %u %% confirmed starts the next wave\n", "success", info->plan.success_percent);
    printf("  %-16s %u %% failed pauses, after %" PRIu32 " final reports\n", "failure",
           info->plan.failure_percent, info->plan.min_reports);
    printf("  %-16s %" PRIu64 "\n", "seed", info->plan.seed);
    printf("  %-16s %s\n", "file", path);
}

static iot_status store_rollout(const cli_ctx *ctx, const create_opts *o,
                                const verified_release *rel, const device_set *set, iot_err *err)
{
    char path[CLI_PATH_MAX];
    iot_rollouts *r = NULL;
    int64_t id = 0;
    iot_rollout_info info;
    const char **ids = malloc(set->n * sizeof(*ids));
    iot_status st = ids != NULL ? IOT_OK : iot_err_set(err, IOT_ENOMEM, "out of memory");
    for (size_t i = 0; st == IOT_OK && i < set->n; i++)
        ids[i] = set->ids[i];
    if (st == IOT_OK)
        st = rollout_db_path(ctx, o->arg[O_DB], path, err);
    if (st == IOT_OK)
        st = iot_rollouts_open(path, IOT_ROLLOUTS_WRITE | IOT_ROLLOUTS_CREATE, &r, err);
    if (st == IOT_OK)
        st = iot_rollout_create(r, &o->plan, rel->text, rel->len, &rel->v.m, ids, set->n,
                                (int64_t)ctx->now, &id, err);
    if (st == IOT_OK)
        st = iot_rollout_get(r, o->plan.name, &info, err);
    if (st == IOT_OK)
        print_created(&info, path);
    iot_rollouts_close(r);
    free(ids);
    return st;
}

static int create_usage(const cli_command *self, const create_opts *o)
{
    int sources = (o->arg[O_DEVICES] != NULL) + (o->arg[O_CLASS] != NULL) + o->all;
    if (o->arg[O_FIRMWARE] == NULL)
        return cli_usage(self, "missing --firmware REF");
    if (sources != 1)
        return cli_usage(self, "give exactly one of --devices, --class and --all");
    return CLI_EXIT_OK;
}

int cmd_rollout_create(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("rollout", "create");
    create_opts o = {0};
    int rc = create_getopt(self, argc, argv, &o);
    if (rc == CLI_EXIT_OK)
        rc = create_usage(self, &o);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    if (fill_plan(&o, &err) != IOT_OK)
        return cli_usage(self, "%s", err.msg);
    verified_release rel = {0};
    device_set set = {0};
    iot_status st = load_release(ctx, o.arg[O_FIRMWARE], &rel, &err);
    if (st == IOT_OK)
        st = select_devices(ctx, &o, &rel.v.m, &set, &err);
    if (st == IOT_OK)
        st = store_rollout(ctx, &o, &rel, &set, &err);
    if (st == IOT_OK && set.other_class > 0)
        fprintf(stderr,
                "iotctl: warning: %zu of the devices have a class other than the release's "
                "class-id '%s'; they will refuse it (wrong_class)\n",
                set.other_class, rel.v.m.class_id);
    free(set.ids);
    free(rel.text);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}

/* ---- pause, resume, abort ---------------------------------------------------------- */

typedef iot_status (*rollout_op)(iot_rollouts *, const char *, int64_t, iot_err *);

static int operator_command(cli_ctx *ctx, const char *name, rollout_op op, const char *done,
                            int argc, char **argv)
{
    const cli_command *self = cmd_find("rollout", name);
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'D'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *db = NULL;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'D')
            db = optarg;
        else if (c == 'h')
            return cli_help(self);
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (argc - optind != 1)
        return cli_usage(self, optind == argc ? "missing the rollout NAME" : "too many arguments");
    char path[CLI_PATH_MAX];
    iot_rollouts *r = NULL;
    iot_err err = {0};
    iot_status st = rollout_db_path(ctx, db, path, &err);
    if (st == IOT_OK)
        st = iot_rollouts_open(path, IOT_ROLLOUTS_WRITE, &r, &err);
    if (st == IOT_OK)
        st = op(r, argv[optind], (int64_t)ctx->now, &err);
    iot_rollouts_close(r);
    if (st != IOT_OK)
        return cli_fail(&err);
    printf("rollout %s: %s\n", argv[optind], done);
    return CLI_EXIT_OK;
}

int cmd_rollout_pause(cli_ctx *ctx, int argc, char **argv)
{
    return operator_command(ctx, "pause", iot_rollout_pause,
                            "paused (devices already started may finish)", argc, argv);
}

int cmd_rollout_resume(cli_ctx *ctx, int argc, char **argv)
{
    return operator_command(ctx, "resume", iot_rollout_resume, "running", argc, argv);
}

int cmd_rollout_abort(cli_ctx *ctx, int argc, char **argv)
{
    return operator_command(ctx, "abort", iot_rollout_abort,
                            "aborted (nothing more is offered; it stays aborted)", argc, argv);
}
