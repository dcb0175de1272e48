/* Option handling shared by the issuing and revoking commands. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "cmds.h"
#include "iot/fsutil.h"
#include "issue.h"

iot_status cmd_write_key_cert(EVP_PKEY *key, const char *key_path, X509 *cert,
                              const char *cert_path, iot_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    iot_status st = pki_key_pem(key, &pem, &len, err);
    if (st != IOT_OK)
        return st;
    st = iot_file_create(key_path, pem, len, 0600, err);
    OPENSSL_clear_free(pem, len);
    if (st != IOT_OK)
        return st;
    st = pki_cert_pem(cert, &pem, &len, err);
    if (st == IOT_OK)
        st = iot_file_create(cert_path, pem, len, 0644, err);
    free(pem);
    if (st != IOT_OK)
        unlink(key_path);
    return st;
}

bool cmd_issue_option(int c, cli_validity_opts *validity, issue_request *req)
{
    switch (c) {
    case 'd':
        validity->days = optarg;
        return true;
    case 'b':
        validity->not_before = optarg;
        return true;
    case 'a':
        validity->not_after = optarg;
        return true;
    case 'o':
        req->out_dir = optarg;
        return true;
    default:
        return false;
    }
}

int cmd_issue(cli_ctx *ctx, const cli_command *self, int argc, char **argv, issue_request *req,
              const cli_validity_opts *validity, int default_days, const char *what)
{
    if (optind == argc)
        return cli_usage(self, "missing %s", what);
    if (optind + 1 != argc)
        return cli_usage(self, "too many arguments");
    req->name = argv[optind];
    iot_err err = {0};
    if (cli_validity(ctx, validity, default_days, &req->profile.not_before, &req->profile.not_after,
                     &err) != IOT_OK)
        return cli_usage(self, "%s", err.msg);
    return issue_identity(ctx, req);
}

int cmd_parse_revoke(const cli_command *self, int argc, char **argv, const char **name,
                     const char **reason, bool *dry_run)
{
    static const struct option opts[] = {{"reason", required_argument, NULL, 'r'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *reason = "unspecified";
    *dry_run = false;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        switch (c) {
        case 'r':
            if (pki_reason_code(optarg) < 0)
                return cli_usage(self, "--reason '%s' is not one of: %s", optarg, pki_reason_names);
            *reason = optarg;
            break;
        case 'n':
            *dry_run = true;
            break;
        case 'h':
            cli_help(self);
            return -1;
        default:
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (optind == argc)
        return cli_usage(self, "missing %s", self->group[0] == 'd' ? "device ID" : "NAME");
    if (optind + 1 != argc)
        return cli_usage(self, "too many arguments");
    *name = argv[optind];
    return CLI_EXIT_OK;
}

int cmd_print_json(cJSON *item)
{
    char *text = item != NULL ? cJSON_Print(item) : NULL;
    if (text == NULL) {
        iot_err err;
        iot_err_set(&err, IOT_ENOMEM, "out of memory formatting JSON");
        return cli_fail(&err);
    }
    puts(text);
    cJSON_free(text);
    return CLI_EXIT_OK;
}
