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
    iot_status st;
    if ((st = cli_path(ctx, path, "ca.key", err)) != IOT_OK ||
        (st = pki_key_pem(key, &pem, &len, err)) != IOT_OK)
        return st;
    st = iot_file_create(path, pem, len, 0600, err);
    OPENSSL_clear_free(pem, len);
    if (st != IOT_OK)
        return st;
    created[0] = true;
    if ((st = cli_path(ctx, path, "ca.crt", err)) != IOT_OK ||
        (st = pki_cert_pem(cert, &pem, &len, err)) != IOT_OK)
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

int cmd_pki_init(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("pki", "init");
    static const struct option opts[] = {{"cn", required_argument, NULL, 'c'},
                                         {"days", required_argument, NULL, 'd'},
                                         {"crl-days", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cn = DEFAULT_CA_CN;
    cli_validity_opts validity = {0};
    const char *crl_days_arg = NULL;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        switch (c) {
        case 'c':
            cn = optarg;
            break;
        case 'd':
            validity.days = optarg;
            break;
        case 'r':
            crl_days_arg = optarg;
            break;
        case 'h':
            return cli_help(self);
        default:
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);

    iot_err err = {0};
    iot_status st;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    iot_registry *reg = NULL;
    bool created[2] = {false, false};
    bool registry_made = false;
    int crl_days = CLI_DEFAULT_CRL_DAYS;
    uint64_t crl_number = 0;
    size_t cn_len = strnlen(cn, 65);
    pki_profile profile = {.type = PKI_PROFILE_CA, .organization = CLI_ORGANIZATION};

    if (cn_len == 0 || cn_len > 64) {
        st = iot_err_set(&err, IOT_EINVAL, "--cn must be 1 to 64 characters");
        goto out;
    }
    profile.common_name = cn;
    if ((crl_days_arg && (st = cli_parse_days("--crl-days", crl_days_arg, &crl_days, &err))) ||
        (st = cli_validity(ctx, &validity, CLI_DEFAULT_CA_DAYS, &profile.not_before,
                           &profile.not_after, &err)) != IOT_OK ||
        (st = check_fresh(ctx, &err)) != IOT_OK ||
        (st = iot_mkdir_p(ctx->dir, 0700, &err)) != IOT_OK ||
        (st = make_private(ctx, &err)) != IOT_OK || (st = pki_key_generate(&key, &err)) != IOT_OK ||
        (st = pki_issue(NULL, key, &profile, &cert, &err)) != IOT_OK ||
        (st = write_ca(ctx, key, cert, created, &err)) != IOT_OK)
        goto out;

    char db[CLI_PATH_MAX];
    if ((st = cli_path(ctx, db, "registry.db", &err)) != IOT_OK ||
        (st = iot_registry_create(db, &reg, &err)) != IOT_OK)
        goto out;
    registry_made = true;
    pki_ca ca = {.key = key, .cert = cert};
    if ((st = iot_registry_begin(reg, &err)) != IOT_OK ||
        (st = crl_regenerate(ctx, &ca, reg, crl_days, &crl_number, &err)) != IOT_OK ||
        (st = iot_registry_commit(reg, &err)) != IOT_OK)
        goto out;

    pki_cert_facts facts;
    if ((st = pki_cert_facts_get(cert, &facts, &err)) != IOT_OK)
        goto out;
    char until[32];
    cli_format_time(facts.not_after, until, sizeof(until));
    printf("PKI created in %s\n", ctx->dir);
    printf("  CA           %s/ca.crt (CN=%s, expires %s)\n", ctx->dir, cn, until);
    printf("  CA key       %s/ca.key (mode 0600; keep it offline in production)\n", ctx->dir);
    printf("  registry     %s/registry.db\n", ctx->dir);
    printf("  CRL          %s/crl.pem (valid %d days; refresh with 'iotctl crl update')\n",
           ctx->dir, crl_days);
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
    iot_status st;
    if ((st = open_pki(ctx, &ca, &reg, &err)) != IOT_OK ||
        (st = iot_registry_begin(reg, &err)) != IOT_OK ||
        (st = crl_regenerate(ctx, &ca, reg, days, &number, &err)) != IOT_OK ||
        (st = iot_registry_commit(reg, &err)) != IOT_OK)
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
