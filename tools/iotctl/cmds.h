/* The commands of iotctl, one function each, and the option-parsing glue
 * they share. The table that binds names to functions is in main.c. */
#ifndef IOTCTL_CMDS_H
#define IOTCTL_CMDS_H

#include <getopt.h>

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "iot/pki.h"

int cmd_pki_init(cli_ctx *ctx, int argc, char **argv);
int cmd_crl_update(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_server(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_client(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_show(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_list(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_revoke(cli_ctx *ctx, int argc, char **argv);
int cmd_device_add(cli_ctx *ctx, int argc, char **argv);
int cmd_device_revoke(cli_ctx *ctx, int argc, char **argv);
int cmd_device_renew(cli_ctx *ctx, int argc, char **argv);
int cmd_device_list(cli_ctx *ctx, int argc, char **argv);
int cmd_device_show(cli_ctx *ctx, int argc, char **argv);
int cmd_device_set_class(cli_ctx *ctx, int argc, char **argv);
int cmd_bootstrap_init(cli_ctx *ctx, int argc, char **argv);
int cmd_bootstrap_issue(cli_ctx *ctx, int argc, char **argv);
int cmd_ca_intermediate(cli_ctx *ctx, int argc, char **argv);
int cmd_ca_list(cli_ctx *ctx, int argc, char **argv);
int cmd_ca_revoke(cli_ctx *ctx, int argc, char **argv);
int cmd_token_create(cli_ctx *ctx, int argc, char **argv);
int cmd_token_list(cli_ctx *ctx, int argc, char **argv);
int cmd_token_revoke(cli_ctx *ctx, int argc, char **argv);
int cmd_enroll_list(cli_ctx *ctx, int argc, char **argv);
int cmd_enroll_approve(cli_ctx *ctx, int argc, char **argv);
int cmd_enroll_deny(cli_ctx *ctx, int argc, char **argv);
int cmd_rollout_create(cli_ctx *ctx, int argc, char **argv);
int cmd_rollout_pause(cli_ctx *ctx, int argc, char **argv);
int cmd_rollout_resume(cli_ctx *ctx, int argc, char **argv);
int cmd_rollout_abort(cli_ctx *ctx, int argc, char **argv);
int cmd_rollout_status(cli_ctx *ctx, int argc, char **argv);
int cmd_firmware_key_create(cli_ctx *ctx, int argc, char **argv);
int cmd_firmware_key_list(cli_ctx *ctx, int argc, char **argv);
int cmd_firmware_key_retire(cli_ctx *ctx, int argc, char **argv);
int cmd_firmware_sign(cli_ctx *ctx, int argc, char **argv);
int cmd_firmware_verify(cli_ctx *ctx, int argc, char **argv);
int cmd_firmware_add(cli_ctx *ctx, int argc, char **argv);
int cmd_firmware_list(cli_ctx *ctx, int argc, char **argv);
int cmd_firmware_show(cli_ctx *ctx, int argc, char **argv);
/* iotctl incident: the CRA Art. 14 register (cmd_incident.c). */
int cmd_incident_open(cli_ctx *ctx, int argc, char **argv);
int cmd_incident_update(cli_ctx *ctx, int argc, char **argv);
int cmd_incident_close(cli_ctx *ctx, int argc, char **argv);
int cmd_incident_list(cli_ctx *ctx, int argc, char **argv);
int cmd_incident_show(cli_ctx *ctx, int argc, char **argv);
int cmd_incident_report(cli_ctx *ctx, int argc, char **argv);
int cmd_vuln_scan(cli_ctx *ctx, int argc, char **argv);
/* iotctl operator: the console's operators (cmd_operator.c). */
int cmd_operator_add(cli_ctx *ctx, int argc, char **argv);
int cmd_operator_remove(cli_ctx *ctx, int argc, char **argv);
int cmd_operator_list(cli_ctx *ctx, int argc, char **argv);

const cli_command *cmd_find(const char *group, const char *name);

/* getopt_long without getopt's own messages: unknown options come back as
 * '?' and missing values as ':' for cmd_bad_option to report. */
int cmd_getopt(int argc, char **argv, const struct option *opts);
int cmd_bad_option(const cli_command *cmd, int argc, char **argv, int c);

/* The options every issuing command takes, for its option table. */
#define CMD_ISSUE_OPTIONS                                                                          \
    {"days", required_argument, NULL, 'd'}, {"not-before", required_argument, NULL, 'b'},          \
        {"not-after", required_argument, NULL, 'a'},                                               \
    {                                                                                              \
        "out", required_argument, NULL, 'o'                                                        \
    }

struct issue_request;

/* Writes a key (0600) and a certificate (0644) at the two paths, refusing
 * to replace either; on failure nothing is left behind. */
iot_status cmd_write_key_cert(EVP_PKEY *key, const char *key_path, X509 *cert,
                              const char *cert_path, iot_err *err);

/* Takes one of CMD_ISSUE_OPTIONS; false if c is not one of them. */
bool cmd_issue_option(int c, cli_validity_opts *validity, struct issue_request *req);

/* After the options: takes the one positional NAME, works out the validity
 * and issues. `what` names the argument in usage errors. */
int cmd_issue(cli_ctx *ctx, const cli_command *self, int argc, char **argv,
              struct issue_request *req, const cli_validity_opts *validity, int default_days,
              const char *what);

/* Parses "[--reason REASON] [--dry-run] NAME" for the revoke commands.
 * Returns CLI_EXIT_OK with *name, *reason and *dry_run set, else the exit
 * status to return (or -1 after printing --help). */
int cmd_parse_revoke(const cli_command *self, int argc, char **argv, const char **name,
                     const char **reason, bool *dry_run);

/* The options of the commands that work on the registry alone (token,
 * enroll): each command's table picks the ones it takes. */
typedef struct cmd_registry_opts {
    const char *registry; /* --registry PATH ('R'); NULL: DIR/registry.db */
    bool json;            /* --json ('j') */
    bool pending;         /* --pending ('p') */
    const char *device;   /* --device ID ('D') */
    const char *ttl;      /* --ttl T ('t') */
} cmd_registry_opts;

/* Parses opts into *o, then `what` names the one positional argument
 * (NULL: none). Returns CLI_EXIT_OK, -1 after --help, else the exit
 * status to return. */
int cmd_parse_registry_opts(const cli_command *self, int argc, char **argv,
                            const struct option *opts, cmd_registry_opts *o, const char *what);

/* Opens the registry at path (NULL: DIR/registry.db) for writing. No CA
 * key is needed, and the file may be shared with the gateway's group. */
iot_status cmd_open_registry(const cli_ctx *ctx, const char *path, iot_registry **reg,
                             iot_err *err);

/* Prints item as JSON on stdout; an error if item is NULL. */
struct cJSON;
int cmd_print_json(struct cJSON *item);

/* Adds t (Unix seconds) to o as "YYYY-MM-DDTHH:MM:SSZ", or null if 0. */
void cmd_json_time(struct cJSON *o, const char *key, int64_t t);

#endif
