#define _GNU_SOURCE /* timegm */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "iot/fsutil.h"

int cli_fail(const iot_err *err)
{
    fprintf(stderr, "iotctl: error: %s\n", err->msg[0] ? err->msg : iot_strerror(err->status));
    return CLI_EXIT_FAILURE;
}

int cli_usage(const cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("iotctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "usage: iotctl %s %s %s\n(see: iotctl %s %s --help)\n", cmd->group, cmd->name,
            cmd->synopsis, cmd->group, cmd->name);
    return CLI_EXIT_USAGE;
}

int cli_help(const cli_command *cmd)
{
    printf("usage: iotctl [--dir DIR] %s %s %s\n\n%s\n", cmd->group, cmd->name, cmd->synopsis,
           cmd->summary);
    if (cmd->help != NULL && cmd->help[0] != '\0')
        printf("\n%s", cmd->help);
    printf("\nThe PKI directory is --dir, else $IOTCTL_DIR, else ./pki.\n");
    return CLI_EXIT_OK;
}

iot_status cli_path(const cli_ctx *ctx, char *buf, const char *name, iot_err *err)
{
    if (ctx->registry != NULL && strcmp(name, "registry.db") == 0) {
        size_t len = strlen(ctx->registry);
        if (len == 0 || len >= CLI_PATH_MAX)
            return iot_err_set(err, IOT_EINVAL, "--registry path is empty or too long");
        memcpy(buf, ctx->registry, len + 1);
        return IOT_OK;
    }
    return iot_path_join(buf, CLI_PATH_MAX, ctx->dir, name, err);
}

/* The gateway's registry is written by the gateway's group too; anyone
 * else who could write it could enroll a device of their own. */
static iot_status check_shared_registry(const char *path, iot_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? IOT_OK
                               : iot_err_set(err, IOT_EIO, "cannot check registry %s: %s", path,
                                             strerror(errno));
    if (sb.st_mode & S_IWOTH)
        return iot_err_set(err, IOT_EPERM,
                           "registry %s has mode %04o; others must not be able to write it (run: "
                           "chmod o-w %s)",
                           path, (unsigned)(sb.st_mode & 07777), path);
    return IOT_OK;
}

iot_status cli_check_pki(const cli_ctx *ctx, iot_err *err)
{
    static const struct {
        const char *file;
        const char *what;
        bool no_access;
    } parts[] = {
        {"ca.key", "CA key", true},
        {"ca.crt", "CA certificate", false},
        {"registry.db", "registry", false},
        {"crl.pem", "CRL", false},
    };
    iot_status st = IOT_OK;
    if (ctx->registry != NULL)
        st = check_shared_registry(ctx->registry, err);
    if (st != IOT_OK)
        return st;
    st = iot_owner_mode_check("PKI directory", ctx->dir, false, err);
    if (st == IOT_ENOENT)
        return IOT_OK;
    if (st != IOT_OK)
        return st;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        char path[CLI_PATH_MAX];
        if (ctx->registry != NULL && strcmp(parts[i].file, "registry.db") == 0)
            continue;
        st = cli_path(ctx, path, parts[i].file, err);
        if (st != IOT_OK)
            return st;
        st = iot_owner_mode_check(parts[i].what, path, parts[i].no_access, err);
        if (st != IOT_OK && st != IOT_ENOENT)
            return st;
    }
    return IOT_OK;
}

iot_status cli_parse_days(const char *what, const char *s, int *out, iot_err *err)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > CLI_MAX_DAYS)
        return iot_err_set(err, IOT_EINVAL, "%s '%s' is not a number of days in 1..%d", what, s,
                           CLI_MAX_DAYS);
    *out = (int)v;
    return IOT_OK;
}

static bool take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Reads s laid out as pattern, where each run of 'n' is a decimal field
 * of exactly that many digits, stored to fields in turn, and any other
 * character must be itself. Returns the rest of s, NULL if it differs. */
static const char *take_pattern(const char *s, const char *pattern, int *fields)
{
    while (*pattern != '\0') {
        size_t digits = strspn(pattern, "n");
        if (digits == 0 && *s != *pattern)
            return NULL;
        if (digits == 0) {
            s++;
            pattern++;
            continue;
        }
        if (!take_digits(&s, (int)digits, fields++))
            return NULL;
        pattern += digits;
    }
    return s;
}

enum { T_YEAR, T_MON, T_DAY, T_HOUR, T_MIN, T_SEC, T_FIELDS };

static bool time_fields_in_range(const int f[T_FIELDS])
{
    static const int lo[T_FIELDS] = {1970, 1, 1, 0, 0, 0};
    static const int hi[T_FIELDS] = {9999, 12, 31, 23, 59, 59};
    for (size_t i = 0; i < T_FIELDS; i++)
        if (f[i] < lo[i] || f[i] > hi[i])
            return false;
    return true;
}

/* The UTC time of the fields; false for a day the month does not have
 * (timegm normalises 02-31 to 03-03: a round trip catches it). */
static bool time_from_fields(const int f[T_FIELDS], time_t *out)
{
    struct tm tm, back;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = f[T_YEAR] - 1900;
    tm.tm_mon = f[T_MON] - 1;
    tm.tm_mday = f[T_DAY];
    tm.tm_hour = f[T_HOUR];
    tm.tm_min = f[T_MIN];
    tm.tm_sec = f[T_SEC];
    time_t t = timegm(&tm);
    *out = t;
    return t != (time_t)-1 && gmtime_r(&t, &back) != NULL && back.tm_mday == f[T_DAY];
}

iot_status cli_parse_time(const char *what, const char *s, time_t *out, iot_err *err)
{
    int f[T_FIELDS] = {0};
    const char *p = take_pattern(s, "nnnn-nn-nn", f);
    if (p != NULL && *p == 'T')
        p = take_pattern(p, "Tnn:nn:nnZ", f + T_HOUR);
    if (p == NULL || *p != '\0' || !time_fields_in_range(f) || !time_from_fields(f, out))
        return iot_err_set(err, IOT_EINVAL,
                           "%s '%s' is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)",
                           what, s);
    return IOT_OK;
}

iot_status cli_validity(const cli_ctx *ctx, const cli_validity_opts *o, int default_days,
                        time_t *from, time_t *to, iot_err *err)
{
    iot_status st = IOT_OK;
    int days = default_days;
    if (o->days && o->not_after)
        return iot_err_set(err, IOT_EINVAL, "--days and --not-after cannot be used together");
    if (o->days)
        st = cli_parse_days("--days", o->days, &days, err);
    if (st != IOT_OK)
        return st;
    *from = ctx->now - 300;
    if (o->not_before)
        st = cli_parse_time("--not-before", o->not_before, from, err);
    if (st != IOT_OK)
        return st;
    *to = *from + (time_t)days * 86400;
    if (o->not_after)
        st = cli_parse_time("--not-after", o->not_after, to, err);
    if (st != IOT_OK)
        return st;
    if (*to <= *from)
        return iot_err_set(err, IOT_EINVAL, "the certificate would expire before it becomes valid");
    return IOT_OK;
}

void cli_format_time(long long t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "@%lld", t);
}

long long cli_days_left(const cli_ctx *ctx, long long t)
{
    long long diff = t - (long long)ctx->now;
    long long days = diff / 86400;
    if (diff < 0 && diff % 86400 != 0)
        days--;
    return days;
}
