/* iotctl incident open|update|close|list|show|report: the register of
 * vulnerabilities and incidents in the registry, with the reporting
 * deadlines of CRA Art. 14 (common/src/incident.c holds the rules). The
 * clock can be set with --now or IOTCTL_NOW (Unix seconds or a date), for
 * tests and audits: "what was overdue on that day". */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmds.h"
#include "incident_cli.h"
#include "iot/incident.h"

/* `incident list --overdue` exits with this when a report is overdue. */
#define EXIT_OVERDUE 3

typedef struct incident_opts {
    const char *registry, *now, *kind, *aware_at, *fixed_at, *submitted, *submitted_at, *type,
        *note;
    const char *texts[13]; /* by TEXT_OPTS index */
    int reportable;        /* -1 unchanged, 0 not, 1 exploited/severe */
    bool json, overdue, all, exploited, severe;
} incident_opts;

/* The options that set a text field, in the order of incident_opts.texts. */
static const struct {
    int val;
    const char *option;
    size_t offset, size;
} TEXT_OPTS[] = {
#define T(v, opt, field)                                                                           \
    {                                                                                              \
        v, opt, offsetof(iot_incident, field), sizeof(((iot_incident *)0)->field)                  \
    }
    T('t', "title", title),
    T('d', "description", description),
    T('s', "severity", severity),
    T('m', "malicious", malicious),
    T('D', "devices", devices),
    T('V', "versions", versions),
    T('M', "member-states", member_states),
    T('c', "corrective", corrective),
    T('u', "user-measures", user_measures),
    T('A', "actor", actor),
    T('r', "root-cause", root_cause),
    T('y', "sensitivity", sensitivity),
    T('C', "cve", cve),
#undef T
};
#define N_TEXT_OPTS (sizeof(TEXT_OPTS) / sizeof(TEXT_OPTS[0]))
_Static_assert(sizeof(((incident_opts *)0)->texts) / sizeof(const char *) == N_TEXT_OPTS,
               "one slot in incident_opts.texts per text option");

#define TEXT_OPTIONS                                                                               \
    {"title", required_argument, NULL, 't'}, {"description", required_argument, NULL, 'd'},        \
        {"severity", required_argument, NULL, 's'}, {"malicious", required_argument, NULL, 'm'},   \
        {"devices", required_argument, NULL, 'D'}, {"versions", required_argument, NULL, 'V'},     \
        {"member-states", required_argument, NULL, 'M'},                                           \
        {"corrective", required_argument, NULL, 'c'},                                              \
        {"user-measures", required_argument, NULL, 'u'}, {"actor", required_argument, NULL, 'A'},  \
        {"root-cause", required_argument, NULL, 'r'},                                              \
        {"sensitivity", required_argument, NULL, 'y'}, {"cve", required_argument, NULL, 'C'},      \
        {"note", required_argument, NULL, 'N'}, {"aware-at", required_argument, NULL, 'a'},        \
        {"fixed-at", required_argument, NULL, 'f'}, {"exploited", no_argument, NULL, 'x'},         \
        {"severe", no_argument, NULL, 'S'},                                                        \
    {                                                                                              \
        "not-reportable", no_argument, NULL, 'n'                                                   \
    }
#define COMMON_OPTIONS                                                                             \
    {"registry", required_argument, NULL, 'R'}, {"now", required_argument, NULL, 'w'},             \
        {"help", no_argument, NULL, 'h'},                                                          \
    {                                                                                              \
        NULL, 0, NULL, 0                                                                           \
    }

static bool take_text(int c, incident_opts *o)
{
    for (size_t i = 0; i < N_TEXT_OPTS; i++)
        if (TEXT_OPTS[i].val == c) {
            o->texts[i] = optarg;
            return true;
        }
    return false;
}

static bool take_flag(int c, incident_opts *o)
{
    switch (c) {
    case 'j':
        o->json = true;
        return true;
    case 'o':
        o->overdue = true;
        return true;
    case 'l':
        o->all = true;
        return true;
    case 'x':
        o->exploited = true;
        o->reportable = 1;
        return true;
    case 'S':
        o->severe = true;
        o->reportable = 1;
        return true;
    case 'n':
        o->reportable = 0;
        return true;
    default:
        return false;
    }
}

/* The options whose value is kept as given, and where. */
static const struct {
    int val;
    size_t offset;
} VALUE_OPTS[] = {
    {'R', offsetof(incident_opts, registry)},     {'w', offsetof(incident_opts, now)},
    {'k', offsetof(incident_opts, kind)},         {'a', offsetof(incident_opts, aware_at)},
    {'f', offsetof(incident_opts, fixed_at)},     {'b', offsetof(incident_opts, submitted)},
    {'B', offsetof(incident_opts, submitted_at)}, {'T', offsetof(incident_opts, type)},
    {'N', offsetof(incident_opts, note)},
};

static bool take_value(int c, incident_opts *o)
{
    for (size_t i = 0; i < sizeof(VALUE_OPTS) / sizeof(VALUE_OPTS[0]); i++)
        if (VALUE_OPTS[i].val == c) {
            *(const char **)((char *)o + VALUE_OPTS[i].offset) = optarg;
            return true;
        }
    return false;
}

/* Parses the options, then `what` names the one positional argument (NULL:
 * none). CLI_EXIT_OK, -1 after --help, else the exit status. */
static int parse(const cli_command *self, int argc, char **argv, const struct option *opts,
                 incident_opts *o, const char *what)
{
    memset(o, 0, sizeof(*o));
    o->reportable = -1;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        if (!take_text(c, o) && !take_flag(c, o) && !take_value(c, o))
            return cmd_bad_option(self, argc, argv, c);
    }
    int positional = what != NULL ? 1 : 0;
    if (argc - optind > positional)
        return cli_usage(self, "unexpected argument '%s'", argv[optind + positional]);
    if (argc - optind < positional)
        return cli_usage(self, "missing %s", what);
    return CLI_EXIT_OK;
}

/* "now", Unix seconds, or YYYY-MM-DD[THH:MM:SSZ]. */
static iot_status parse_when(const char *what, const char *s, int64_t now, int64_t *out,
                             iot_err *err)
{
    if (strcmp(s, "now") == 0) {
        *out = now;
        return IOT_OK;
    }
    if (s[0] >= '0' && s[0] <= '9' && strchr(s, '-') == NULL) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || v <= 0)
            return iot_err_set(err, IOT_EINVAL, "%s '%s' is not a time in Unix seconds", what, s);
        *out = v;
        return IOT_OK;
    }
    time_t t = 0;
    iot_status st = cli_parse_time(what, s, &t, err);
    *out = (int64_t)t;
    return st;
}

/* The clock: --now, else IOTCTL_NOW, else the system's. */
static iot_status clock_now(const cli_ctx *ctx, const incident_opts *o, int64_t *now, iot_err *err)
{
    *now = (int64_t)ctx->now;
    const char *env = getenv("IOTCTL_NOW");
    if (o->now != NULL)
        return parse_when("--now", o->now, *now, now, err);
    if (env != NULL && env[0] != '\0')
        return parse_when("IOTCTL_NOW", env, *now, now, err);
    return IOT_OK;
}

static iot_status parse_id(const char *s, int64_t *id, iot_err *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0 || s[0] < '0' || s[0] > '9')
        return iot_err_set(err, IOT_EINVAL,
                           "'%s' is not an incident id (a number, see 'iotctl incident list')", s);
    *id = v;
    return IOT_OK;
}

/* Appends "YYYY-MM-DDTHH:MM:SSZ note" as a line of inc->notes. */
static iot_status add_note(iot_incident *inc, const char *note, int64_t now, iot_err *err)
{
    char when[32];
    cli_format_time(now, when, sizeof(when));
    size_t used = strlen(inc->notes);
    int n = snprintf(inc->notes + used, sizeof(inc->notes) - used, "%s%s %s", used > 0 ? "\n" : "",
                     when, note);
    if (n < 0 || (size_t)n >= sizeof(inc->notes) - used) {
        inc->notes[used] = '\0';
        return iot_err_set(err, IOT_ENOMEM, "the notes of incident %lld are full (%d bytes)",
                           (long long)inc->id, IOT_INCIDENT_NOTES_MAX);
    }
    return IOT_OK;
}

/* Copies the given text options into inc; names them in *changed. */
static iot_status apply_texts(const incident_opts *o, iot_incident *inc, char *changed, size_t size,
                              iot_err *err)
{
    for (size_t i = 0; i < N_TEXT_OPTS; i++) {
        const char *v = o->texts[i];
        if (v == NULL)
            continue;
        size_t cap = TEXT_OPTS[i].size;
        if (strlen(v) >= cap)
            return iot_err_set(err, IOT_EINVAL, "--%s is longer than %zu bytes",
                               TEXT_OPTS[i].option, cap - 1);
        snprintf((char *)inc + TEXT_OPTS[i].offset, cap, "%s", v);
        size_t used = strlen(changed);
        snprintf(changed + used, size - used, "%s%s", used ? ", " : "", TEXT_OPTS[i].option);
    }
    return IOT_OK;
}

/* --exploited suits a vulnerability, --severe an incident. */
static iot_status check_reportable(const incident_opts *o, const iot_incident *inc, iot_err *err)
{
    if (o->exploited && inc->kind != IOT_INCIDENT_VULNERABILITY)
        return iot_err_set(err, IOT_EINVAL,
                           "--exploited is for a vulnerability; for an incident use --severe");
    if (o->severe && inc->kind != IOT_INCIDENT_INCIDENT)
        return iot_err_set(err, IOT_EINVAL,
                           "--severe is for an incident; for a vulnerability use --exploited");
    return IOT_OK;
}

/* Applies the field options (texts, times, reportable, note) to inc. */
static iot_status apply(const incident_opts *o, iot_incident *inc, int64_t now, char *changed,
                        size_t size, iot_err *err)
{
    iot_status st = apply_texts(o, inc, changed, size, err);
    if (st == IOT_OK)
        st = check_reportable(o, inc, err);
    if (st == IOT_OK && o->aware_at != NULL)
        st = parse_when("--aware-at", o->aware_at, now, &inc->aware_at, err);
    if (st == IOT_OK && o->fixed_at != NULL)
        st = parse_when("--fixed-at", o->fixed_at, now, &inc->fixed_at, err);
    if (st == IOT_OK && o->reportable >= 0)
        inc->reportable = o->reportable == 1;
    if (st == IOT_OK && o->note != NULL)
        st = add_note(inc, o->note, now, err);
    return st;
}

/* One line per report with a deadline or a state worth telling. */
static void print_deadlines(const iot_incident *inc, int64_t now, FILE *out)
{
    if (!inc->reportable) {
        fprintf(out, "  not reportable under CRA Art. 14 (not actively exploited / not severe)\n");
        return;
    }
    for (int r = 0; r < IOT_REPORT_COUNT; r++) {
        int64_t due = 0;
        char when[32] = "-", sent[32] = "-";
        if (iot_incident_deadline(inc, (iot_report_type)r, &due))
            cli_format_time(due, when, sizeof(when));
        if (inc->submitted[r] != 0)
            cli_format_time(inc->submitted[r], sent, sizeof(sent));
        fprintf(out, "  %-14s due %-20s %-15s submitted %s\n",
                iot_report_type_name((iot_report_type)r), when,
                iot_report_status_name(iot_incident_report_status(inc, (iot_report_type)r, now)),
                sent);
    }
}

/* Opens the registry and reads entry ID (argv[optind]) into a new
 * allocation. */
static iot_status load(const cli_ctx *ctx, const incident_opts *o, const char *arg,
                       iot_registry **reg, iot_incident **inc, iot_err *err)
{
    int64_t id = 0;
    *reg = NULL;
    *inc = calloc(1, sizeof(**inc));
    if (*inc == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    iot_status st = parse_id(arg, &id, err);
    if (st == IOT_OK)
        st = cmd_open_registry(ctx, o->registry, reg, err);
    if (st == IOT_OK)
        st = iot_incident_get(*reg, id, *inc, err);
    return st;
}

int cmd_incident_open(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("incident", "open");
    static const struct option opts[] = {
        {"kind", required_argument, NULL, 'k'}, TEXT_OPTIONS, COMMON_OPTIONS};
    incident_opts o;
    int rc = parse(self, argc, argv, opts, &o, NULL);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_incident *inc = calloc(1, sizeof(*inc));
    iot_err err = {0};
    iot_registry *reg = NULL;
    int64_t now = 0;
    char changed[256] = "";
    if (inc == NULL)
        return cli_fail(&(iot_err){.status = IOT_ENOMEM, .msg = "out of memory"});
    if (o.kind == NULL || !iot_incident_kind_parse(o.kind, &inc->kind)) {
        rc = cli_usage(self, "--kind vulnerability or --kind incident is required");
        goto out;
    }
    snprintf(inc->malicious, sizeof(inc->malicious), "unknown");
    iot_status st = clock_now(ctx, &o, &now, &err);
    inc->aware_at = now;
    if (st == IOT_OK)
        st = apply(&o, inc, now, changed, sizeof(changed), &err);
    if (st == IOT_OK)
        st = cmd_open_registry(ctx, o.registry, &reg, &err);
    if (st == IOT_OK)
        st = iot_incident_open(reg, inc, now, &err);
    if (st != IOT_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    printf("%lld\n", (long long)inc->id);
    fprintf(stderr, "iotctl: %s %lld opened (%s)\n", iot_incident_kind_name(inc->kind),
            (long long)inc->id, inc->title);
    print_deadlines(inc, now, stderr);
    rc = CLI_EXIT_OK;
out:
    iot_registry_close(reg);
    free(inc);
    return rc;
}

/* --submitted TYPE [--submitted-at WHEN]: records when a report went out. */
static iot_status apply_submitted(const incident_opts *o, iot_incident *inc, int64_t now,
                                  char *changed, size_t size, iot_err *err)
{
    if (o->submitted == NULL)
        return o->submitted_at == NULL
                   ? IOT_OK
                   : iot_err_set(err, IOT_EINVAL, "--submitted-at needs --submitted TYPE");
    iot_report_type type;
    if (!iot_report_type_parse(o->submitted, &type))
        return iot_err_set(err, IOT_EINVAL,
                           "--submitted '%s' is not early-warning, notification, final or "
                           "user-notice",
                           o->submitted);
    int64_t at = now;
    iot_status st = o->submitted_at != NULL
                        ? parse_when("--submitted-at", o->submitted_at, now, &at, err)
                        : IOT_OK;
    if (st != IOT_OK)
        return st;
    if (at > now)
        return iot_err_set(err, IOT_EINVAL, "--submitted-at lies in the future");
    inc->submitted[type] = at;
    size_t used = strlen(changed);
    char when[32];
    cli_format_time(at, when, sizeof(when));
    snprintf(changed + used, size - used, "%s%s submitted %s", used ? "; " : "",
             iot_report_type_name(type), when);
    return IOT_OK;
}

static bool changes_something(const incident_opts *o, const char *changed)
{
    return changed[0] != '\0' || o->note != NULL || o->aware_at != NULL || o->fixed_at != NULL ||
           o->reportable >= 0;
}

int cmd_incident_update(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("incident", "update");
    static const struct option opts[] = {TEXT_OPTIONS,
                                         {"submitted", required_argument, NULL, 'b'},
                                         {"submitted-at", required_argument, NULL, 'B'},
                                         COMMON_OPTIONS};
    incident_opts o;
    int rc = parse(self, argc, argv, opts, &o, "ID");
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    iot_registry *reg = NULL;
    iot_incident *inc = NULL;
    int64_t now = 0;
    char changed[400] = "";
    iot_status st = clock_now(ctx, &o, &now, &err);
    if (st == IOT_OK)
        st = load(ctx, &o, argv[optind], &reg, &inc, &err);
    if (st == IOT_OK)
        st = apply(&o, inc, now, changed, sizeof(changed), &err);
    if (st == IOT_OK)
        st = apply_submitted(&o, inc, now, changed, sizeof(changed), &err);
    if (st == IOT_OK && !changes_something(&o, changed))
        st =
            iot_err_set(&err, IOT_EINVAL, "nothing to change: give a field, --submitted or --note");
    char event[512];
    snprintf(event, sizeof(event), "updated: %s", changed[0] ? changed : "times or note");
    if (st == IOT_OK)
        st = iot_incident_update(reg, inc, event, now, &err);
    if (st == IOT_OK) {
        printf("incident %lld: %s\n", (long long)inc->id, iot_incident_state_name(inc->state));
        print_deadlines(inc, now, stdout);
    }
    rc = st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
    iot_registry_close(reg);
    free(inc);
    return rc;
}

/* Warns about each report that was due and never submitted. */
static void warn_unsubmitted(const iot_incident *inc, int64_t now)
{
    for (int r = 0; r < IOT_REPORT_COUNT; r++) {
        iot_report_status s = iot_incident_report_status(inc, (iot_report_type)r, now);
        if (s == IOT_REPORT_DUE || s == IOT_REPORT_OVERDUE || s == IOT_REPORT_WAITING)
            fprintf(stderr, "iotctl: warning: incident %lld is closed without its %s (%s)\n",
                    (long long)inc->id, iot_report_type_name((iot_report_type)r),
                    iot_report_status_name(s));
    }
}

int cmd_incident_close(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("incident", "close");
    static const struct option opts[] = {{"note", required_argument, NULL, 'N'}, COMMON_OPTIONS};
    incident_opts o;
    int rc = parse(self, argc, argv, opts, &o, "ID");
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    iot_registry *reg = NULL;
    iot_incident *inc = NULL;
    int64_t now = 0;
    iot_status st = clock_now(ctx, &o, &now, &err);
    if (st == IOT_OK)
        st = load(ctx, &o, argv[optind], &reg, &inc, &err);
    char event[700];
    snprintf(event, sizeof(event), "closed%s%s", o.note ? ": " : "", o.note ? o.note : "");
    if (st == IOT_OK)
        st = iot_incident_close(reg, inc->id, event, now, &err);
    if (st == IOT_OK) {
        warn_unsubmitted(inc, now);
        printf("incident %lld: closed\n", (long long)inc->id);
    }
    rc = st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
    iot_registry_close(reg);
    free(inc);
    return rc;
}

typedef struct list_walk {
    int64_t now;
    const incident_opts *o;
    cJSON *array; /* NULL for table output */
    int overdue;  /* reports overdue among the entries listed */
} list_walk;

/* The earliest deadline of a report not yet submitted, 0 if none. */
static int64_t next_due(const iot_incident *inc, int64_t now)
{
    int64_t best = 0;
    for (int r = 0; r < IOT_REPORT_COUNT; r++) {
        int64_t due = 0;
        iot_report_status s = iot_incident_report_status(inc, (iot_report_type)r, now);
        bool open = s == IOT_REPORT_DUE || s == IOT_REPORT_OVERDUE;
        if (open && iot_incident_deadline(inc, (iot_report_type)r, &due) && (!best || due < best))
            best = due;
    }
    return best;
}

static int list_one(const iot_incident *inc, void *arg)
{
    list_walk *w = arg;
    int overdue = iot_incident_overdue(inc, w->now);
    if ((w->o->overdue && overdue == 0) ||
        (!w->o->all && !w->o->overdue && inc->state == IOT_INCIDENT_CLOSED))
        return 0;
    w->overdue += overdue;
    if (w->array != NULL) {
        cJSON *o = incident_json(inc, w->now);
        if (o == NULL)
            return IOT_ENOMEM;
        cJSON_AddItemToArray(w->array, o);
        return 0;
    }
    char aware[32], due[32] = "-";
    cli_format_time(inc->aware_at, aware, sizeof(aware));
    int64_t next = next_due(inc, w->now);
    if (next != 0)
        cli_format_time(next, due, sizeof(due));
    printf("%-5lld %-13s %-9s %-8s %-10s %-20s %-20s %-7d %s\n", (long long)inc->id,
           iot_incident_kind_name(inc->kind), iot_incident_state_name(inc->state), inc->severity,
           inc->reportable ? "yes" : "no", aware, due, overdue, inc->title);
    return 0;
}

/* What `list --overdue` exits with, after saying how many are late. */
static int overdue_status(int overdue)
{
    if (overdue == 0)
        return CLI_EXIT_OK;
    fprintf(stderr, "iotctl: %d report%s overdue\n", overdue, overdue == 1 ? " is" : "s are");
    return EXIT_OVERDUE;
}

int cmd_incident_list(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("incident", "list");
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"overdue", no_argument, NULL, 'o'},
                                         {"all", no_argument, NULL, 'l'},
                                         COMMON_OPTIONS};
    incident_opts o;
    int rc = parse(self, argc, argv, opts, &o, NULL);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    iot_registry *reg = NULL;
    list_walk w = {.o = &o, .array = o.json ? cJSON_CreateArray() : NULL};
    iot_status st = clock_now(ctx, &o, &w.now, &err);
    if (st == IOT_OK && o.json && w.array == NULL)
        st = iot_err_set(&err, IOT_ENOMEM, "out of memory");
    if (st == IOT_OK)
        st = cmd_open_registry(ctx, o.registry, &reg, &err);
    if (st == IOT_OK && !o.json)
        printf("%-5s %-13s %-9s %-8s %-10s %-20s %-20s %-7s %s\n", "ID", "KIND", "STATE",
               "SEVERITY", "REPORTABLE", "AWARE", "NEXT-DUE", "OVERDUE", "TITLE");
    if (st == IOT_OK)
        st = iot_incident_foreach(reg, list_one, &w, &err);
    iot_registry_close(reg);
    rc = st != IOT_OK ? cli_fail(&err) : (o.json ? cmd_print_json(w.array) : CLI_EXIT_OK);
    cJSON_Delete(w.array);
    return rc == CLI_EXIT_OK && o.overdue ? overdue_status(w.overdue) : rc;
}

static int print_event(int64_t at, const char *event, void *ctx)
{
    cJSON *array = ctx;
    char when[32];
    cli_format_time(at, when, sizeof(when));
    if (array == NULL) {
        printf("  %s  %s\n", when, event);
        return 0;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return IOT_ENOMEM;
    cJSON_AddStringToObject(o, "at", when);
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddItemToArray(array, o);
    return 0;
}

static void print_entry(const iot_incident *inc, int64_t now)
{
    char aware[32], fixed[32] = "-", closed[32] = "-";
    cli_format_time(inc->aware_at, aware, sizeof(aware));
    if (inc->fixed_at)
        cli_format_time(inc->fixed_at, fixed, sizeof(fixed));
    if (inc->closed_at)
        cli_format_time(inc->closed_at, closed, sizeof(closed));
    printf("incident %lld: %s\n", (long long)inc->id, inc->title);
    printf("kind:          %s\nstate:         %s\nseverity:      %s\n",
           iot_incident_kind_name(inc->kind), iot_incident_state_name(inc->state), inc->severity);
    printf("reportable:    %s\nmalicious:     %s\naware at:      %s\nfixed at:      %s\n"
           "closed at:     %s\n",
           inc->reportable ? (inc->kind == IOT_INCIDENT_VULNERABILITY ? "yes (actively exploited)"
                                                                      : "yes (severe incident)")
                           : "no",
           inc->malicious, aware, fixed, closed);
    printf("devices:       %s\nversions:      %s\ncve:           %s\n", inc->devices, inc->versions,
           inc->cve);
    printf("reports:\n");
    print_deadlines(inc, now, stdout);
    if (inc->notes[0])
        printf("notes:\n%s\n", inc->notes);
    printf("history:\n");
}

int cmd_incident_show(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("incident", "show");
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, COMMON_OPTIONS};
    incident_opts o;
    int rc = parse(self, argc, argv, opts, &o, "ID");
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    iot_registry *reg = NULL;
    iot_incident *inc = NULL;
    int64_t now = 0;
    cJSON *obj = NULL, *history = NULL;
    iot_status st = clock_now(ctx, &o, &now, &err);
    if (st == IOT_OK)
        st = load(ctx, &o, argv[optind], &reg, &inc, &err);
    if (st == IOT_OK && o.json) {
        obj = incident_json(inc, now);
        history = cJSON_AddArrayToObject(obj, "history");
        if (history == NULL)
            st = iot_err_set(&err, IOT_ENOMEM, "out of memory");
    }
    if (st == IOT_OK && !o.json)
        print_entry(inc, now);
    if (st == IOT_OK)
        st = iot_incident_history(reg, inc->id, print_event, history, &err);
    rc = st != IOT_OK ? cli_fail(&err) : (o.json ? cmd_print_json(obj) : CLI_EXIT_OK);
    cJSON_Delete(obj);
    iot_registry_close(reg);
    free(inc);
    return rc;
}

int cmd_incident_report(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("incident", "report");
    static const struct option opts[] = {
        {"type", required_argument, NULL, 'T'}, {"json", no_argument, NULL, 'j'}, COMMON_OPTIONS};
    incident_opts o;
    int rc = parse(self, argc, argv, opts, &o, "ID");
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_report_type type;
    if (o.type == NULL || !iot_report_type_parse(o.type, &type))
        return cli_usage(self, "--type early-warning, notification, final or user-notice is "
                               "required");
    iot_err err = {0};
    iot_registry *reg = NULL;
    iot_incident *inc = NULL;
    int64_t now = 0;
    iot_status st = clock_now(ctx, &o, &now, &err);
    if (st == IOT_OK)
        st = load(ctx, &o, argv[optind], &reg, &inc, &err);
    iot_registry_close(reg);
    rc = st != IOT_OK ? cli_fail(&err) : incident_report_print(inc, type, now, o.json);
    free(inc);
    return rc;
}
