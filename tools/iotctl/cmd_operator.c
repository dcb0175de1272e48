/* iotctl operator add|remove|list: the console's operators (docs/console.md).
 * The operators file holds one "NAME HASH" line each, the hash scrypt with
 * its parameters (console/lib/pwhash.h), mode 0600: the console reads it
 * at every login, so a removal locks the operator out at once. The
 * password is read from stdin (one line) or --password-file, never from
 * the command line, where other users could read it in the process list. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cmds.h"
#include "iot/fsutil.h"
#include "iot/identity.h"
#include "operators.h"
#include "pwhash.h"

typedef struct operator_opts {
    const char *file;
    const char *password_file;
} operator_opts;

static int parse_opts(const cli_command *self, int argc, char **argv, operator_opts *o,
                      int positional)
{
    static const struct option opts[] = {{"file", required_argument, NULL, 'f'},
                                         {"password-file", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'f')
            o->file = optarg;
        else if (c == 'p')
            o->password_file = optarg;
        else if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (argc - optind > positional)
        return cli_usage(self, "unexpected argument '%s'", argv[optind + positional]);
    if (argc - optind < positional)
        return cli_usage(self, "missing the operator NAME");
    return CLI_EXIT_OK;
}

static iot_status file_path(const cli_ctx *ctx, const operator_opts *o, char path[CLI_PATH_MAX],
                            iot_err *err)
{
    if (o->file == NULL)
        return cli_path(ctx, path, "operators", err);
    size_t n = strlen(o->file);
    if (n >= CLI_PATH_MAX)
        return iot_err_set(err, IOT_EINVAL, "--file path too long");
    memcpy(path, o->file, n + 1);
    return IOT_OK;
}

/* The operators file's text; "" when it does not exist yet (want_existing
 * false), which is how the first operator is added. */
static iot_status read_operators(const char *path, bool want_existing, char **text, size_t *len,
                                 iot_err *err)
{
    iot_status st = iot_file_read(path, IC_OPERATORS_FILE_MAX, text, len, err);
    if (st == IOT_ENOENT && !want_existing) {
        *text = calloc(1, 1);
        *len = 0;
        return *text != NULL ? IOT_OK : iot_err_set(err, IOT_ENOMEM, "out of memory");
    }
    if (st == IOT_OK)
        st = iot_key_mode_check(path, err);
    return st;
}

/* One line of the password: from the file, or stdin. */
static iot_status read_password(const operator_opts *o, char *buf, size_t size, size_t *len,
                                iot_err *err)
{
    FILE *f = o->password_file != NULL ? fopen(o->password_file, "r") : stdin;
    if (f == NULL)
        return iot_err_set(err, IOT_ENOENT, "cannot open %s", o->password_file);
    iot_status st = IOT_OK;
    if (fgets(buf, (int)size, f) == NULL) {
        st = iot_err_set(err, IOT_EINVAL,
                         "no password given (one line on stdin or in "
                         "--password-file)");
        goto out;
    }
    *len = strcspn(buf, "\r\n");
    if (buf[*len] == '\0' && *len == size - 1)
        st = iot_err_set(err, IOT_EINVAL, "password longer than %d characters", IC_PASSWORD_MAX);
    buf[*len] = '\0';
out:
    if (f != stdin)
        fclose(f);
    return st;
}

static iot_status add_operator(const cli_ctx *ctx, const operator_opts *o, const char *name,
                               iot_err *err)
{
    char path[CLI_PATH_MAX], pw[IC_PASSWORD_MAX + 2], hash[IC_PWHASH_MAX];
    char *text = NULL, *out_text = NULL;
    size_t len = 0, out_len = 0, pw_len = 0;
    iot_status st = iot_id_check("operator name", name, err);
    if (st == IOT_OK)
        st = file_path(ctx, o, path, err);
    if (st == IOT_OK)
        st = read_operators(path, false, &text, &len, err);
    if (st == IOT_OK)
        st = read_password(o, pw, sizeof(pw), &pw_len, err);
    if (st != IOT_OK)
        goto out;
    const char *weak = ic_password_weak(name, pw, pw_len);
    if (weak != NULL) {
        st = iot_err_set(err, IOT_EINVAL, "password refused: %s", weak);
        goto out;
    }
    st = ic_pwhash_make(pw, pw_len, &IC_SCRYPT_DEFAULT, hash, err);
    if (st == IOT_OK)
        st = ic_operators_set(text, len, name, hash, false, &out_text, &out_len, err);
    if (st == IOT_OK)
        st = iot_file_replace(path, out_text, out_len, 0600, err);
out:
    OPENSSL_cleanse(pw, sizeof(pw));
    free(text);
    free(out_text);
    return st;
}

int cmd_operator_add(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("operator", "add");
    operator_opts o = {0};
    int rc = parse_opts(self, argc, argv, &o, 1);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    if (add_operator(ctx, &o, argv[optind], &err) != IOT_OK)
        return cli_fail(&err);
    printf("operator %s added\n", argv[optind]);
    return CLI_EXIT_OK;
}

int cmd_operator_remove(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("operator", "remove");
    operator_opts o = {0};
    int rc = parse_opts(self, argc, argv, &o, 1);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    char path[CLI_PATH_MAX];
    char *text = NULL, *out_text = NULL;
    size_t len = 0, out_len = 0;
    iot_err err = {0};
    iot_status st = file_path(ctx, &o, path, &err);
    if (st == IOT_OK)
        st = read_operators(path, true, &text, &len, &err);
    if (st == IOT_OK)
        st = ic_operators_remove(text, len, argv[optind], &out_text, &out_len, &err);
    if (st == IOT_OK)
        st = iot_file_replace(path, out_text, out_len, 0600, &err);
    free(text);
    free(out_text);
    if (st != IOT_OK)
        return cli_fail(&err);
    printf("operator %s removed (the console refuses its sessions from now on)\n", argv[optind]);
    return CLI_EXIT_OK;
}

static int print_name(const char *name, const char *hash, void *ctx)
{
    (void)hash;
    (void)ctx;
    printf("%s\n", name);
    return 0;
}

int cmd_operator_list(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("operator", "list");
    operator_opts o = {0};
    int rc = parse_opts(self, argc, argv, &o, 0);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    char path[CLI_PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    iot_err err = {0};
    iot_status st = file_path(ctx, &o, path, &err);
    if (st == IOT_OK)
        st = read_operators(path, false, &text, &len, &err);
    if (st == IOT_OK)
        st = ic_operators_foreach(text, len, print_name, NULL, &err);
    free(text);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}
