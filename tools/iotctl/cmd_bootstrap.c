/* iotctl bootstrap init, iotctl bootstrap issue: the factory's CA and the
 * certificates it installs, which let a device ask the gateway for its
 * first real certificate (EST simpleenroll) and for nothing else.
 *
 * The bootstrap CA is a root of its own, apart from the project CA, so a
 * bootstrap certificate never chains to the CA devices are admitted with:
 * the gateway refuses it on every path but enrollment. Bootstrap
 * certificates are not identities and are not in the registry; the
 * enrollment they allow is (once, for the certificate's CN).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cmds.h"
#include "iot/fsutil.h"
#include "iot/identity.h"
#include "iot/pki.h"

#define BOOTSTRAP_CN          "IoT Telemetry Bootstrap CA"
#define BOOTSTRAP_UNIT        "bootstrap"
#define DEFAULT_BOOTSTRAP_DAY 3650 /* a factory certificate waits on a shelf for years */

/* Parses --days and --out, and at most `positional` arguments. */
static int parse_opts(const cli_command *self, int argc, char **argv, cli_validity_opts *validity,
                      const char **out_dir, int positional)
{
    static const struct option opts[] = {{"days", required_argument, NULL, 'd'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        switch (c) {
        case 'd':
            validity->days = optarg;
            break;
        case 'o':
            if (out_dir == NULL)
                return cmd_bad_option(self, argc, argv, c);
            *out_dir = optarg;
            break;
        case 'h':
            cli_help(self);
            return -1;
        default:
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (argc - optind < positional)
        return cli_usage(self, "missing device ID");
    if (argc - optind > positional)
        return cli_usage(self, "unexpected argument '%s'", argv[optind + positional]);
    return CLI_EXIT_OK;
}

static iot_status bootstrap_dir(const cli_ctx *ctx, char *dir, iot_err *err)
{
    iot_status st = cli_path(ctx, dir, "bootstrap", err);
    if (st == IOT_OK && !iot_path_exists(ctx->dir))
        st = iot_err_set(err, IOT_ENOENT, "PKI directory %s does not exist (run 'iotctl pki init')",
                         ctx->dir);
    return st;
}

int cmd_bootstrap_init(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("bootstrap", "init");
    cli_validity_opts validity = {0};
    int rc = parse_opts(self, argc, argv, &validity, NULL, 0);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char dir[CLI_PATH_MAX], key_path[CLI_PATH_MAX + 16], cert_path[CLI_PATH_MAX + 16];
    pki_profile p = {.type = PKI_PROFILE_CA,
                     .common_name = BOOTSTRAP_CN,
                     .organization = PKI_ORGANIZATION,
                     .unit = BOOTSTRAP_UNIT};
    if (cli_validity(ctx, &validity, CLI_DEFAULT_CA_DAYS, &p.not_before, &p.not_after, &err) !=
        IOT_OK)
        return cli_usage(self, "%s", err.msg);
    iot_status st = bootstrap_dir(ctx, dir, &err);
    snprintf(key_path, sizeof(key_path), "%s/ca.key", dir);
    snprintf(cert_path, sizeof(cert_path), "%s/ca.crt", dir);
    if (st == IOT_OK && (iot_path_exists(key_path) || iot_path_exists(cert_path)))
        st = iot_err_set(&err, IOT_EEXIST,
                         "a bootstrap CA already exists in %s; nothing was changed", dir);
    if (st == IOT_OK)
        st = iot_mkdir_p(dir, 0700, &err);
    if (st == IOT_OK)
        st = pki_key_generate(&key, &err);
    if (st == IOT_OK)
        st = pki_issue(NULL, key, &p, &cert, &err);
    if (st == IOT_OK)
        st = cmd_write_key_cert(key, key_path, cert, cert_path, &err);
    if (st == IOT_OK) {
        printf("bootstrap CA created in %s\n", dir);
        printf("  CA           %s (give it to the gateway: est_bootstrap_ca)\n", cert_path);
        printf("  CA key       %s (mode 0600; it belongs in the factory, not on a gateway)\n",
               key_path);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}

static iot_status issue_paths(const cli_ctx *ctx, const char *id, const char *out_dir, char *dir,
                              size_t size, iot_err *err)
{
    char base[CLI_PATH_MAX];
    iot_status st = bootstrap_dir(ctx, base, err);
    if (st != IOT_OK)
        return st;
    int n = out_dir != NULL ? snprintf(dir, size, "%s", out_dir)
                            : snprintf(dir, size, "%s/devices/%s", base, id);
    if (n < 0 || (size_t)n >= size)
        return iot_err_set(err, IOT_EINVAL, "the output path for '%s' is too long", id);
    return IOT_OK;
}

/* Loads the bootstrap CA from `base`; a certificate it signs never
 * outlives it. */
static iot_status load_bootstrap_ca(const char *base, pki_ca *ca, pki_profile *p, iot_err *err)
{
    char key[CLI_PATH_MAX + 16], crt[CLI_PATH_MAX + 16];
    snprintf(key, sizeof(key), "%s/ca.key", base);
    snprintf(crt, sizeof(crt), "%s/ca.crt", base);
    if (!iot_path_exists(key))
        return iot_err_set(err, IOT_ENOENT, "no bootstrap CA in %s (run 'iotctl bootstrap init')",
                           base);
    iot_status st = pki_ca_load(key, crt, ca, err);
    pki_cert_facts facts;
    if (st == IOT_OK)
        st = pki_cert_facts_get(ca->cert, &facts, err);
    if (st == IOT_OK && p->not_after > facts.not_after)
        p->not_after = (time_t)facts.not_after;
    return st;
}

static iot_status issue_bootstrap(const pki_ca *ca, const pki_profile *p, const char *dir,
                                  iot_err *err)
{
    char key_path[CLI_PATH_MAX + 16], cert_path[CLI_PATH_MAX + 16];
    snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    pki_cert_facts f;
    iot_status st = iot_mkdir_p(dir, 0700, err);
    if (st == IOT_OK)
        st = pki_key_generate(&key, err);
    if (st == IOT_OK)
        st = pki_issue(ca, key, p, &cert, err);
    if (st == IOT_OK)
        st = cmd_write_key_cert(key, key_path, cert, cert_path, err);
    if (st == IOT_OK)
        st = pki_cert_facts_get(cert, &f, err);
    if (st == IOT_OK)
        printf("bootstrap certificate for %s (serial %s)\n  key   %s (mode 0600)\n  cert  %s\n",
               p->common_name, f.serial, key_path, cert_path);
    X509_free(cert);
    EVP_PKEY_free(key);
    return st;
}

int cmd_bootstrap_issue(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("bootstrap", "issue");
    cli_validity_opts validity = {0};
    const char *out_dir = NULL;
    int rc = parse_opts(self, argc, argv, &validity, &out_dir, 1);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    const char *id = argv[optind];
    iot_err err = {0};
    pki_profile p = {.type = PKI_PROFILE_CLIENT,
                     .common_name = id,
                     .organization = PKI_ORGANIZATION,
                     .unit = BOOTSTRAP_UNIT};
    if (cli_validity(ctx, &validity, DEFAULT_BOOTSTRAP_DAY, &p.not_before, &p.not_after, &err) !=
        IOT_OK)
        return cli_usage(self, "%s", err.msg);
    pki_ca ca = {0};
    char base[CLI_PATH_MAX], dir[CLI_PATH_MAX];
    iot_status st = iot_id_check("device ID", id, &err);
    if (st == IOT_OK)
        st = bootstrap_dir(ctx, base, &err);
    if (st == IOT_OK)
        st = issue_paths(ctx, id, out_dir, dir, sizeof(dir), &err);
    if (st == IOT_OK)
        st = load_bootstrap_ca(base, &ca, &p, &err);
    if (st == IOT_OK)
        st = issue_bootstrap(&ca, &p, dir, &err);
    pki_ca_free(&ca);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}
