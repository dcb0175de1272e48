/* iotctl ca intermediate|list|revoke: the intermediate CAs the root
 * issues. An intermediate (kind issuer in the registry) signs the device
 * certificates the gateway hands out by enrollment; the root stays offline
 * with the operator. Rotation is a new intermediate under another name;
 * revocation puts the old one in the root's CRL, and the gateway refuses
 * it and the devices it signed (issuer_revoked).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "iot/fsutil.h"
#include "iot/identity.h"
#include "iot/pki.h"
#include "issue.h"
#include "listing.h"

#define DEFAULT_ISSUER_DAYS 365
#define ISSUER_UNIT         "issuer"
#define ISSUER_FILE_MAX     (CLI_PATH_MAX + IOT_ID_MAX + 8)

/* Parses [--days N] [--out DIR] NAME. */
static int parse_intermediate(const cli_command *self, int argc, char **argv,
                              cli_validity_opts *validity, const char **out_dir)
{
    static const struct option opts[] = {{"days", required_argument, NULL, 'd'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'd')
            validity->days = optarg;
        else if (c == 'o')
            *out_dir = optarg;
        else if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (argc - optind < 1)
        return cli_usage(self, "missing NAME");
    if (argc - optind > 1)
        return cli_usage(self, "unexpected argument '%s'", argv[optind + 1]);
    return CLI_EXIT_OK;
}

/* What making an intermediate holds between its steps. */
typedef struct intermediate_job {
    iot_err err;
    pki_ca root;
    iot_registry *reg;
    EVP_PKEY *key;
    X509 *cert;
    pki_cert_facts facts;
    char dir[CLI_PATH_MAX];
    char key_path[ISSUER_FILE_MAX];
    char cert_path[ISSUER_FILE_MAX];
    bool wrote;
} intermediate_job;

/* DIR/issuers/NAME.key and .pem, or under out_dir; refused before any work
 * if either file exists. */
static iot_status plan_files(const cli_ctx *ctx, const char *name, const char *out_dir,
                             intermediate_job *j)
{
    iot_status st = IOT_OK;
    if (out_dir == NULL)
        st = cli_path(ctx, j->dir, "issuers", &j->err);
    else if ((size_t)snprintf(j->dir, sizeof(j->dir), "%s", out_dir) >= sizeof(j->dir))
        st = iot_err_set(&j->err, IOT_EINVAL, "--out path is too long");
    if (st != IOT_OK)
        return st;
    snprintf(j->key_path, sizeof(j->key_path), "%s/%s.key", j->dir, name);
    snprintf(j->cert_path, sizeof(j->cert_path), "%s/%s.pem", j->dir, name);
    const char *paths[] = {j->key_path, j->cert_path};
    for (size_t i = 0; i < 2; i++)
        if (iot_path_exists(paths[i]))
            return iot_err_set(&j->err, IOT_EEXIST,
                               "%s already exists; refusing to overwrite it (move it away or "
                               "choose another --out)",
                               paths[i]);
    return IOT_OK;
}

/* A name is used once, by whatever kind. */
static iot_status check_name_free(iot_registry *reg, const char *name, iot_err *err)
{
    iot_cert_record rec;
    iot_err lookup;
    iot_status st = iot_registry_get_by_name(reg, name, &rec, &lookup);
    if (st == IOT_ENOENT)
        return IOT_OK;
    if (st != IOT_OK) {
        *err = lookup;
        return st;
    }
    return iot_err_set(err, IOT_EEXIST,
                       "the name '%s' is already taken by %s %s certificate; an intermediate CA "
                       "needs a name of its own",
                       name, rec.revoked ? "a revoked" : iot_cert_kind_article(rec.kind),
                       iot_cert_kind_name(rec.kind));
}

/* The intermediate must not outlive the root that vouches for it. */
static iot_status check_within_root(const pki_ca *root, const pki_profile *p, iot_err *err)
{
    pki_cert_facts f;
    iot_status st = pki_cert_facts_get(root->cert, &f, err);
    if (st != IOT_OK)
        return st;
    if ((int64_t)p->not_after <= f.not_after)
        return IOT_OK;
    char when[32];
    cli_format_time(f.not_after, when, sizeof(when));
    return iot_err_set(err, IOT_EINVAL,
                       "the intermediate CA would outlive the root CA, which expires %s; choose "
                       "a shorter --days",
                       when);
}

static iot_status record_issuer(const cli_ctx *ctx, intermediate_job *j, const char *name)
{
    iot_cert_record rec = {.kind = IOT_KIND_ISSUER, .created = (int64_t)ctx->now};
    iot_status st = pki_cert_facts_get(j->cert, &j->facts, &j->err);
    if (st != IOT_OK)
        return st;
    st = pki_key_fingerprint(j->key, rec.spki, &j->err);
    if (st != IOT_OK)
        return st;
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    snprintf(rec.role, sizeof(rec.role), "%s", ISSUER_UNIT);
    memcpy(rec.serial, j->facts.serial, sizeof(rec.serial));
    memcpy(rec.fingerprint, j->facts.fingerprint, sizeof(rec.fingerprint));
    rec.not_before = j->facts.not_before;
    rec.not_after = j->facts.not_after;
    return iot_registry_add(j->reg, &rec, &j->err);
}

/* The checks, in the registry transaction, before any key is made. */
static iot_status intermediate_begin(const cli_ctx *ctx, const pki_profile *p, const char *out_dir,
                                     intermediate_job *j)
{
    iot_status st = open_pki(ctx, &j->root, &j->reg, &j->err);
    if (st != IOT_OK)
        return st;
    st = iot_registry_begin(j->reg, &j->err);
    if (st != IOT_OK)
        return st;
    st = check_name_free(j->reg, p->common_name, &j->err);
    if (st != IOT_OK)
        return st;
    st = check_within_root(&j->root, p, &j->err);
    if (st != IOT_OK)
        return st;
    return plan_files(ctx, p->common_name, out_dir, j);
}

/* Key, certificate, registry row, files, then the commit. */
static iot_status intermediate_store(const cli_ctx *ctx, const pki_profile *p, intermediate_job *j)
{
    iot_status st = pki_key_generate(&j->key, &j->err);
    if (st != IOT_OK)
        return st;
    st = pki_issue(&j->root, j->key, p, &j->cert, &j->err);
    if (st != IOT_OK)
        return st;
    st = record_issuer(ctx, j, p->common_name);
    if (st != IOT_OK)
        return st;
    st = iot_mkdir_p(j->dir, 0700, &j->err);
    if (st != IOT_OK)
        return st;
    st = cmd_write_key_cert(j->key, j->key_path, j->cert, j->cert_path, &j->err);
    if (st != IOT_OK)
        return st;
    j->wrote = true;
    return iot_registry_commit(j->reg, &j->err);
}

static void print_intermediate(const char *name, const intermediate_job *j)
{
    char until[32];
    cli_format_time(j->facts.not_after, until, sizeof(until));
    printf("issuer %s: intermediate CA issued by the root\n", name);
    printf("  serial       %s\n", j->facts.serial);
    printf("  expires      %s\n", until);
    printf("  certificate  %s\n", j->cert_path);
    printf("  private key  %s (mode 0600)\n", j->key_path);
}

int cmd_ca_intermediate(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("ca", "intermediate");
    cli_validity_opts validity = {0};
    const char *out_dir = NULL;
    int rc = parse_intermediate(self, argc, argv, &validity, &out_dir);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    intermediate_job j = {0};
    pki_profile p = {.type = PKI_PROFILE_INTERMEDIATE,
                     .common_name = argv[optind],
                     .organization = PKI_ORGANIZATION,
                     .unit = ISSUER_UNIT};
    if (cli_validity(ctx, &validity, DEFAULT_ISSUER_DAYS, &p.not_before, &p.not_after, &j.err) !=
        IOT_OK)
        return cli_usage(self, "%s", j.err.msg);
    iot_status st = iot_id_check("intermediate CA name", p.common_name, &j.err);
    if (st == IOT_OK)
        st = intermediate_begin(ctx, &p, out_dir, &j);
    if (st == IOT_OK)
        st = intermediate_store(ctx, &p, &j);
    if (st == IOT_OK)
        print_intermediate(p.common_name, &j);
    if (st != IOT_OK && j.reg != NULL)
        iot_registry_rollback(j.reg);
    if (st != IOT_OK && j.wrote) {
        unlink(j.key_path);
        unlink(j.cert_path);
    }
    X509_free(j.cert);
    EVP_PKEY_free(j.key);
    iot_registry_close(j.reg);
    pki_ca_free(&j.root);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&j.err);
}

int cmd_ca_list(cli_ctx *ctx, int argc, char **argv)
{
    return listing_run(ctx, cmd_find("ca", "list"), IOT_KIND_ISSUER, argc, argv);
}

int cmd_ca_revoke(cli_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL, *reason = NULL;
    bool dry_run = false;
    int rc = cmd_parse_revoke(cmd_find("ca", "revoke"), argc, argv, &name, &reason, &dry_run);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    rc = revoke_identity(ctx, IOT_KIND_ISSUER, name, reason, dry_run);
    if (rc == CLI_EXIT_OK && !dry_run)
        printf("  the gateway refuses enrollments it would sign and the devices it signed "
               "(issuer_revoked)\n");
    return rc;
}
