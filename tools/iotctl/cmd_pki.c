/* iotctl pki init, iotctl crl update */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cmds.h"
#include "iot/fsutil.h"
#include "issue.h"

#define DEFAULT_CA_CN "IoT Telemetry Root CA"

/* Refuses, before touching anything, if any part of a PKI is present. */
static iot_status check_fresh(const cli_ctx *ctx, iot_err *err)
{
    static const char *const parts[] = {"ca.key", "ca.crt", "registry.db", "crl.pem"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        char path[CLI_PATH_MAX];
        iot_status st = cli_path(ctx, path, parts[i], err);
        if (st != IOT_OK)
            return st;
        if (iot_path_exists(path))
            return iot_err_set(err, IOT_EEXIST,
                               "a PKI already exists in %s (found %s); nothing was changed",
                               ctx->dir, parts[i]);
    }
    return IOT_OK;
}

/* The directory may have existed with any mode (a 0777 directory stays
 * 0777 under mkdir -p): refuse one that belongs to another user, and make
 * it 0700. */
static iot_status make_private(const cli_ctx *ctx, iot_err *err)
{
    struct stat sb;
    if (stat(ctx->dir, &sb) != 0)
        return iot_err_set(err, IOT_EIO, "cannot check PKI directory %s: %s", ctx->dir,
                           strerror(errno));
    if (sb.st_uid != geteuid())
        return iot_err_set(err, IOT_EPERM,
                           "PKI directory %s belongs to uid %u, not to this user (uid %u); its "
                           "owner could replace the CA key, registry or CRL (run as root: chown "
                           "%u %s, or use a directory of your own); nothing was changed",
                           ctx->dir, (unsigned)sb.st_uid, (unsigned)geteuid(), (unsigned)geteuid(),
                           ctx->dir);
    if (chmod(ctx->dir, 0700) != 0)
        return iot_err_set(err, IOT_EIO, "cannot make PKI directory %s private (chmod 700): %s",
                           ctx->dir, strerror(errno));
    return IOT_OK;
}

static iot_status write_ca(const cli_ctx *ctx, EVP_PKEY *key, X509 *cert, bool created[2],
                           iot_err *err)
{
    char path[CLI_PATH_MAX];
    char *pem = NULL;
    size_t len = 0;
    iot_status st = cli_path(ctx, path, "ca.key", err);
    if (st != IOT_OK)
        return st;
    st = pki_key_pem(key, &pem, &len, err);
    if (st != IOT_OK)
        return st;
    st = iot_file_create(path, pem, len, 0600, err);
    OPENSSL_clear_free(pem, len);
    if (st != IOT_OK)
        return st;
    created[0] = true;
    st = cli_path(ctx, path, "ca.crt", err);
    if (st != IOT_OK)
        return st;
    st = pki_cert_pem(cert, &pem, &len, err);
    if (st != IOT_OK)
        return st;
    st = iot_file_create(path, pem, len, 0644, err);
    free(pem);
    if (st == IOT_OK)
        created[1] = true;
    return st;
}

static void remove_parts(const cli_ctx *ctx, const bool created[2], bool registry)
{
    static const char *const parts[] = {"ca.key", "ca.crt", "registry.db", "crl.pem"};
    for (size_t i = 0; i < 4; i++) {
        char path[CLI_PATH_MAX];
        if ((i < 2 && !created[i]) || (i >= 2 && !registry))
            continue;
        if (cli_path(ctx, path, parts[i], NULL) == IOT_OK)
            unlink(path);
    }
}

typedef struct init_options {
    const char *cn;
    cli_validity_opts validity;
    const char *crl_days;
} init_options;

/* CLI_EXIT_OK to go on, -1 after --help, else the usage error's status. */
static int parse_init_options(const cli_command *self, int argc, char **argv, init_options *o)
{
    static const struct option opts[] = {{"cn", required_argument, NULL, 'c'},
                                         {"days", required_argument, NULL, 'd'},
                                         {"crl-days", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        switch (c) {
        case 'c':
            o->cn = optarg;
            break;
        case 'd':
            o->validity.days = optarg;
            break;
        case 'r':
            o->crl_days = optarg;
            break;
        case 'h':
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        default:
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    return CLI_EXIT_OK;
}

/* The CA certificate's profile and the CRL's validity from the options. */
static iot_status init_profile(const cli_ctx *ctx, const init_options *o, pki_profile *profile,
                               int *crl_days, iot_err *err)
{
    size_t cn_len = strnlen(o->cn, 65);
    if (cn_len == 0 || cn_len > 64)
        return iot_err_set(err, IOT_EINVAL, "--cn must be 1 to 64 characters");
    profile->common_name = o->cn;
    if (o->crl_days != NULL) {
        iot_status st = cli_parse_days("--crl-days", o->crl_days, crl_days, err);
        if (st != IOT_OK)
            return st;
    }
    return cli_validity(ctx, &o->validity, CLI_DEFAULT_CA_DAYS, &profile->not_before,
                        &profile->not_after, err);
}

/* The CA key and self-signed certificate, in a fresh private directory. */
static iot_status create_ca(const cli_ctx *ctx, const pki_profile *profile, EVP_PKEY **key,
                            X509 **cert, bool created[2], iot_err *err)
{
    iot_status st = check_fresh(ctx, err);
    if (st != IOT_OK)
        return st;
    st = iot_mkdir_p(ctx->dir, 0700, err);
    if (st != IOT_OK)
        return st;
    st = make_private(ctx, err);
    if (st != IOT_OK)
        return st;
    st = pki_key_generate(key, err);
    if (st != IOT_OK)
        return st;
    st = pki_issue(NULL, *key, profile, cert, err);
    if (st != IOT_OK)
        return st;
    return write_ca(ctx, *key, *cert, created, err);
}

/* An empty registry and the first CRL, signed by the new CA. */
static iot_status create_registry(const cli_ctx *ctx, pki_ca *ca, int crl_days, iot_registry **reg,
                                  bool *made, iot_err *err)
{
    char db[CLI_PATH_MAX];
    uint64_t crl_number = 0;
    iot_status st = cli_path(ctx, db, "registry.db", err);
    if (st != IOT_OK)
        return st;
    st = iot_registry_create(db, reg, err);
    if (st != IOT_OK)
        return st;
    *made = true;
    st = iot_registry_begin(*reg, err);
    if (st != IOT_OK)
        return st;
    st = crl_regenerate(ctx, ca, *reg, crl_days, &crl_number, err);
    if (st != IOT_OK)
        return st;
    return iot_registry_commit(*reg, err);
}

static iot_status print_created(const cli_ctx *ctx, const char *cn, X509 *cert, int crl_days,
                                iot_err *err)
{
    pki_cert_facts facts;
    iot_status st = pki_cert_facts_get(cert, &facts, err);
    if (st != IOT_OK)
        return st;
    char until[32];
    cli_format_time(facts.not_after, until, sizeof(until));
    printf("PKI created in %s\n", ctx->dir);
    printf("  CA           %s/ca.crt (CN=%s, expires %s)\n", ctx->dir, cn, until);
    printf("  CA key       %s/ca.key (mode 0600; keep it offline in production)\n", ctx->dir);
    printf("  registry     %s/registry.db\n", ctx->dir);
    printf("  CRL          %s/crl.pem (valid %d days; refresh with 'iotctl crl update')\n",
           ctx->dir, crl_days);
    return IOT_OK;
}

int cmd_pki_init(cli_ctx *ctx, int argc, char **argv)
{
    init_options o = {.cn = DEFAULT_CA_CN};
    int rc = parse_init_options(cmd_find("pki", "init"), argc, argv, &o);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;

    iot_err err = {0};
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    iot_registry *reg = NULL;
    bool created[2] = {false, false};
    bool registry_made = false;
    int crl_days = CLI_DEFAULT_CRL_DAYS;
    pki_profile profile = {.type = PKI_PROFILE_CA, .organization = CLI_ORGANIZATION};

    iot_status st = init_profile(ctx, &o, &profile, &crl_days, &err);
    if (st != IOT_OK)
        goto out;
    st = create_ca(ctx, &profile, &key, &cert, created, &err);
    if (st != IOT_OK)
        goto out;
    pki_ca ca = {.key = key, .cert = cert};
    st = create_registry(ctx, &ca, crl_days, &reg, &registry_made, &err);
    if (st != IOT_OK)
        goto out;
    st = print_created(ctx, o.cn, cert, crl_days, &err);
out:
    if (st != IOT_OK && st != IOT_EEXIST) {
        iot_registry_close(reg);
        reg = NULL;
        remove_parts(ctx, created, registry_made);
    }
    iot_registry_close(reg);
    X509_free(cert);
    EVP_PKEY_free(key);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}

int cmd_crl_update(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("crl", "update");
    static const struct option opts[] = {{"days", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int days = CLI_DEFAULT_CRL_DAYS;
    iot_err err = {0};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        switch (c) {
        case 'd':
            if (cli_parse_days("--days", optarg, &days, &err) != IOT_OK)
                return cli_usage(self, "%s", err.msg);
            break;
        case 'h':
            return cli_help(self);
        default:
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    pki_ca ca = {0};
    iot_registry *reg = NULL;
    uint64_t number = 0;
    iot_status st = open_pki(ctx, &ca, &reg, &err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_begin(reg, &err);
    if (st != IOT_OK)
        goto out;
    st = crl_regenerate(ctx, &ca, reg, days, &number, &err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_commit(reg, &err);
    if (st != IOT_OK)
        goto out;
    printf("%s/crl.pem regenerated (CRL number %llu, valid %d days)\n", ctx->dir,
           (unsigned long long)number, days);
out:
    if (st != IOT_OK && reg != NULL)
        iot_registry_rollback(reg);
    iot_registry_close(reg);
    pki_ca_free(&ca);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}
