/* What every iotctl command shares: the command table entry, the context,
 * error and usage reporting, and strict parsing of option values. */
#ifndef IOTCTL_CLI_H
#define IOTCTL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "iot/status.h"

#define CLI_EXIT_OK      0
#define CLI_EXIT_FAILURE 1 /* the command could not do its job */
#define CLI_EXIT_USAGE   2 /* the command line is wrong */

#define CLI_PATH_MAX 1024

#define CLI_DEFAULT_CA_DAYS     3650
#define CLI_DEFAULT_SERVER_DAYS 397
#define CLI_DEFAULT_CLIENT_DAYS 397
#define CLI_DEFAULT_DEVICE_DAYS 90
#define CLI_DEFAULT_CRL_DAYS    30
#define CLI_MAX_DAYS            36500

#define CLI_ORGANIZATION "IoT Telemetry"

typedef struct cli_ctx {
    const char *dir; /* the PKI directory */
    time_t now;
} cli_ctx;

typedef struct cli_command {
    const char *group;
    const char *name;
    int (*run)(cli_ctx *ctx, int argc, char **argv);
    const char *brief;    /* one whole sentence for the command overview */
    const char *synopsis; /* arguments after "iotctl GROUP NAME" */
    const char *summary;  /* what the command does, for its --help */
    const char *help;     /* the options, one per line */
} cli_command;

/* Prints "iotctl: error: <message>" to stderr; returns CLI_EXIT_FAILURE. */
int cli_fail(const iot_err *err);

/* Prints a usage error and the command's synopsis; returns CLI_EXIT_USAGE. */
int cli_usage(const cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the command's full help to stdout; returns CLI_EXIT_OK. */
int cli_help(const cli_command *cmd);

/* Path of a file in the PKI directory. */
iot_status cli_path(const cli_ctx *ctx, char *buf, const char *name, iot_err *err);

/* Checks the PKI directory before it is used: it and the files another
 * user could abuse (ca.key, ca.crt, registry.db, crl.pem) belong to this
 * user or root and are not writable by group or others; ca.key is not
 * accessible to them at all. A missing directory or file passes (the
 * command reports it in its own terms). */
iot_status cli_check_pki(const cli_ctx *ctx, iot_err *err);

/* Parses a number of days in 1..CLI_MAX_DAYS. */
iot_status cli_parse_days(const char *what, const char *s, int *out, iot_err *err);

/* Parses YYYY-MM-DD (midnight UTC) or YYYY-MM-DDTHH:MM:SSZ. */
iot_status cli_parse_time(const char *what, const char *s, time_t *out, iot_err *err);

/* Validity from --days / --not-before / --not-after. The default start is
 * five minutes ago, so clocks a little behind still accept the result. */
typedef struct cli_validity_opts {
    const char *days;
    const char *not_before;
    const char *not_after;
} cli_validity_opts;
iot_status cli_validity(const cli_ctx *ctx, const cli_validity_opts *opts, int default_days,
                        time_t *from, time_t *to, iot_err *err);

/* Formats Unix seconds as YYYY-MM-DDTHH:MM:SSZ. */
void cli_format_time(long long t, char *buf, size_t size);

/* Days from now to t, rounded down (negative once t has passed). */
long long cli_days_left(const cli_ctx *ctx, long long t);

extern const cli_command cli_commands[];
extern const size_t cli_command_count;

#endif
