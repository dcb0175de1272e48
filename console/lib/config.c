/* The option table of iotconsole (config.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"

#define LINE_MAX_LEN 1200

typedef enum ic__type {
    IC__STR,
    IC__PATH,
    IC__LISTEN,
    IC__INT,
    IC__MS,
    IC__BOOL,
    IC__DOUBLE
} ic__type;

enum {
    IC__REQUIRED = 1u << 0,
    IC__FILE = 1u << 1, /* a file the console reads */
    IC__KEY = 1u << 2,  /* a private key */
};

typedef struct ic__option {
    const char *key;
    ic__type type;
    size_t offset, cap;
    unsigned flags;
    const char *def;
    int64_t min, max;
} ic__option;

#define F(f) .offset = offsetof(ic_config, f), .cap = sizeof(((ic_config *)0)->f)

// clang-format off
static const ic__option ic__options[] = {
    {"listen", IC__LISTEN, F(listen), 0, "127.0.0.1:8444", 0, 0},
    {"listen_remote", IC__BOOL, F(listen_remote), 0, "no", 0, 0},
    {"origin", IC__STR, F(origin), 0, "", 0, 0},
    {"tls_cert", IC__PATH, F(tls_cert), IC__REQUIRED | IC__FILE, NULL, 0, 0},
    {"tls_key", IC__PATH, F(tls_key), IC__REQUIRED | IC__FILE | IC__KEY, NULL, 0, 0},
    {"operators", IC__PATH, F(operators), IC__REQUIRED | IC__FILE | IC__KEY, NULL, 0, 0},
    {"state", IC__PATH, F(state), 0, "/var/lib/iotconsole/console.db", 0, 0},
    {"web_dir", IC__PATH, F(web_dir), 0, "/usr/share/iotconsole/web", 0, 0},
    {"registry", IC__PATH, F(registry), IC__REQUIRED | IC__FILE, NULL, 0, 0},
    {"rollouts", IC__PATH, F(rollouts), 0, "", 0, 0},
    {"gateways", IC__STR, F(gateways), 0, "", 0, 0},
    {"gateway_token_file", IC__PATH, F(gateway_token_file), IC__FILE | IC__KEY, "", 0, 0},
    {"fleet_interval", IC__MS, F(fleet_interval_ms), 0, "5s", 500, 3600000},
    {"mqtt_host", IC__STR, F(mqtt_host), 0, "", 0, 0},
    {"mqtt_port", IC__INT, F(mqtt_port), 0, "8883", 1, 65535},
    {"mqtt_ca", IC__PATH, F(mqtt_ca), IC__FILE, "", 0, 0},
    {"mqtt_cert", IC__PATH, F(mqtt_cert), IC__FILE, "", 0, 0},
    {"mqtt_key", IC__PATH, F(mqtt_key), IC__FILE | IC__KEY, "", 0, 0},
    {"topic_prefix", IC__STR, F(topic_prefix), 0, "telemetry", 0, 0},
    {"session_idle", IC__MS, F(session_idle_ms), 0, "30m", 60000, 86400000},
    {"session_max", IC__MS, F(session_max_ms), 0, "12h", 60000, 7 * 86400000LL},
    {"max_sessions", IC__INT, F(max_sessions), 0, "256", 1, 100000},
    {"max_connections", IC__INT, F(max_connections), 0, "256", 4, 100000},
    {"sse_max_clients", IC__INT, F(sse_max_clients), 0, "32", 1, 10000},
    {"sse_queue_kib", IC__INT, F(sse_queue_kib), 0, "256", 16, 65536},
    {"login_rate", IC__DOUBLE, F(login_rate), 0, "5", 0, 0},
    {"login_burst", IC__INT, F(login_burst), 0, "5", 1, 1000},
    {"login_rate_total", IC__DOUBLE, F(login_rate_total), 0, "60", 0, 0},
};
// clang-format on

#define N_OPTIONS (sizeof(ic__options) / sizeof(ic__options[0]))

static void *field(ic_config *cfg, const ic__option *o)
{
    return (char *)cfg + o->offset;
}

static const char *set_text(ic_config *cfg, const ic__option *o, const char *v)
{
    if (strlen(v) >= o->cap)
        return "value too long";
    memcpy(field(cfg, o), v, strlen(v) + 1);
    return NULL;
}

static const char *set_number(ic_config *cfg, const ic__option *o, const char *v)
{
    int64_t n = 0;
    const char *why = o->type == IC__MS ? gw__parse_duration(v, &n) : gw__parse_int(v, &n);
    if (why != NULL)
        return why;
    if (n < o->min || n > o->max)
        return "out of range";
    if (o->type == IC__MS)
        *(int64_t *)field(cfg, o) = n;
    else
        *(int *)field(cfg, o) = (int)n;
    return NULL;
}

static const char *set_value(ic_config *cfg, const ic__option *o, const char *v)
{
    switch (o->type) {
    case IC__LISTEN: {
        const char *why = gw__check_listen(v);
        return why != NULL ? why : set_text(cfg, o, v);
    }
    case IC__STR:
    case IC__PATH:
        return set_text(cfg, o, v);
    case IC__INT:
    case IC__MS:
        return set_number(cfg, o, v);
    case IC__BOOL:
        return gw__parse_bool(v, (bool *)field(cfg, o));
    case IC__DOUBLE: {
        double d = 0;
        const char *why = gw__parse_double(v, &d);
        if (why == NULL && (d < 0 || d > 10000))
            why = "out of range (0-10000)";
        if (why == NULL)
            *(double *)field(cfg, o) = d;
        return why;
    }
    }
    return "unknown type";
}

void ic_config_defaults(ic_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (ic__options[i].def != NULL)
            (void)set_value(cfg, &ic__options[i], ic__options[i].def);
}

static const ic__option *find(const char *key)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(ic__options[i].key, key) == 0)
            return &ic__options[i];
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* One line: "" or comment, else key = value (quotes around the value
 * are taken off). */
static iot_status parse_line(char *line, const char *origin, unsigned no, ic_config *cfg,
                             bool seen[N_OPTIONS], iot_err *err)
{
    char *s = trim(line);
    if (s[0] == '\0' || s[0] == '#')
        return IOT_OK;
    char *eq = strchr(s, '=');
    if (eq == NULL)
        return iot_err_set(err, IOT_EINVAL, "%s:%u: expected key = value", origin, no);
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    }
    const ic__option *o = find(key);
    char shown[64];
    gw__sanitize(key, strlen(key), shown, sizeof(shown));
    if (o == NULL)
        return iot_err_set(err, IOT_EINVAL, "%s:%u: unknown key '%s'", origin, no, shown);
    size_t idx = (size_t)(o - ic__options);
    if (seen[idx])
        return iot_err_set(err, IOT_EINVAL, "%s:%u: %s given twice", origin, no, o->key);
    seen[idx] = true;
    const char *why = set_value(cfg, o, value);
    if (why != NULL)
        return iot_err_set(err, IOT_EINVAL, "%s:%u: %s: %s", origin, no, o->key, why);
    return IOT_OK;
}

iot_status ic_config_parse(const char *text, size_t len, const char *origin, ic_config *cfg,
                           iot_err *err)
{
    if (len > IC_CONFIG_FILE_MAX)
        return iot_err_set(err, IOT_EINVAL, "%s: larger than %d bytes", origin, IC_CONFIG_FILE_MAX);
    bool seen[N_OPTIONS] = {false};
    char line[LINE_MAX_LEN];
    unsigned no = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        no++;
        if (n >= sizeof(line))
            return iot_err_set(err, IOT_EINVAL, "%s:%u: line too long", origin, no);
        memcpy(line, text + pos, n);
        line[n] = '\0';
        if (memchr(line, '\0', n) != NULL)
            return iot_err_set(err, IOT_EINVAL, "%s:%u: NUL byte", origin, no);
        iot_status st = parse_line(line, origin, no, cfg, seen, err);
        if (st != IOT_OK)
            return st;
        pos += n + 1;
    }
    for (size_t i = 0; i < N_OPTIONS; i++)
        if ((ic__options[i].flags & IC__REQUIRED) && !seen[i])
            return iot_err_set(err, IOT_EINVAL, "%s: %s is required", origin, ic__options[i].key);
    return IOT_OK;
}

static bool all_or_none(const ic_config *cfg)
{
    bool any = cfg->mqtt_ca[0] || cfg->mqtt_cert[0] || cfg->mqtt_key[0];
    bool all = cfg->mqtt_ca[0] && cfg->mqtt_cert[0] && cfg->mqtt_key[0];
    return cfg->mqtt_host[0] ? all : !any;
}

iot_status ic_config_validate(ic_config *cfg, iot_err *err)
{
    if (!cfg->listen_remote && !gw__listen_is_loopback(cfg->listen))
        return iot_err_set(err, IOT_EINVAL,
                           "listen %s is not loopback: the console is for the operators' VPN "
                           "side; set listen_remote = yes to mean it",
                           cfg->listen);
    if (!all_or_none(cfg))
        return iot_err_set(err, IOT_EINVAL,
                           "mqtt_host needs mqtt_ca, mqtt_cert and mqtt_key (and they need it)");
    if (cfg->session_max_ms < cfg->session_idle_ms)
        return iot_err_set(err, IOT_EINVAL, "session_max is shorter than session_idle");
    if (cfg->origin[0] == '\0') {
        const char *port = strrchr(cfg->listen, ':');
        int n = snprintf(cfg->origin, sizeof(cfg->origin), "https://localhost%s",
                         strcmp(port, ":443") == 0 ? "" : port);
        if (n < 0 || (size_t)n >= sizeof(cfg->origin))
            return iot_err_set(err, IOT_EINVAL, "origin does not fit");
    }
    if (strncmp(cfg->origin, "https://", 8) != 0 || strchr(cfg->origin + 8, '/') != NULL)
        return iot_err_set(err, IOT_EINVAL,
                           "origin must be https://HOST[:PORT], with no path (it is compared "
                           "with the browser's Origin header)");
    return IOT_OK;
}

size_t ic_config_keys(const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < N_OPTIONS && n < max; i++)
        out[n++] = ic__options[i].key;
    return n;
}

size_t ic_config_files(const ic_config *cfg, ic_config_path *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < N_OPTIONS && n < max; i++) {
        const ic__option *o = &ic__options[i];
        const char *path = (const char *)cfg + o->offset;
        if (!(o->flags & IC__FILE) || path[0] == '\0')
            continue;
        out[n].key = o->key;
        out[n].path = path;
        out[n].private_key = (o->flags & IC__KEY) != 0;
        n++;
    }
    return n;
}
