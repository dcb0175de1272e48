/* The part of the configuration module that opens files. Which options
 * name files, and what each needs, is the option table's (gw__config_paths
 * in gateway/lib/config.c); this file only asks the file system. */
#include "config_files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iot/fsutil.h"

static void gw__warn(gw_config_warn_fn warn, void *ctx, const char *key, const char *message)
{
    if (warn != NULL)
        warn(ctx, key, message);
}

static iot_status gw__check_readable(const char *key, const char *path, iot_err *err)
{
    /* O_NONBLOCK: a FIFO put in place of a certificate must not hang us. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int saved = errno;
        return iot_err_set(err, saved == ENOENT ? IOT_ENOENT : IOT_EPERM, "%s: cannot read %s: %s",
                           key, path, strerror(saved));
    }
    struct stat sb;
    iot_status st = IOT_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        st = iot_err_set(err, IOT_EINVAL, "%s: %s is not a regular file", key, path);
    close(fd);
    return st;
}

static iot_status gw__check_dir_of(const char *key, const char *path, iot_err *err)
{
    char copy[GW_PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", path);
    const char *dir = dirname(copy);
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return iot_err_set(err, IOT_ENOENT, "%s: directory %s of %s does not exist (%s)", key, dir,
                           path, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return iot_err_set(err, IOT_EINVAL, "%s: %s is not a directory", key, dir);
    return IOT_OK;
}

/* The file a path names can be read, and the directory it is created in
 * exists, as its needs ask. */
static iot_status gw__check_path(const gw__config_path *p, iot_err *err)
{
    iot_status st = IOT_OK;
    if (p->need & GW__NEED_READ) {
        st = gw__check_readable(p->key, p->path, err);
        if (st != IOT_OK)
            goto out;
    }
    if (p->need & GW__NEED_DIR)
        st = gw__check_dir_of(p->key, p->path, err);
out:
    return st;
}

/* The admin token file is protected like a key, without development
 * mode's exception: whoever reads the token holds the admin listener. */
static iot_status gw__check_token_file(const gw_config *cfg, iot_err *err)
{
    if (cfg->admin_token_file[0] == '\0')
        return IOT_OK;
    iot_err kerr = {0};
    iot_status st = iot_key_mode_check(cfg->admin_token_file, &kerr);
    if (st != IOT_OK)
        return gw__config_invalid(cfg, err, st, "admin_token_file", "admin_token_file: %s",
                                  kerr.msg);
    return IOT_OK;
}

iot_status gw_config_check_files(const gw_config *cfg, gw_config_warn_fn warn, void *warn_ctx,
                                 iot_err *err)
{
    gw__config_path paths[GW_CONFIG_OPTIONS_MAX];
    size_t n = gw__config_paths(cfg, paths, GW_CONFIG_OPTIONS_MAX);
    iot_status st = gw__check_token_file(cfg, err);
    for (size_t i = 0; i < n && st == IOT_OK; i++) {
        const gw__config_path *p = &paths[i];
        st = gw__check_path(p, err);
        if (st != IOT_OK) {
            st = gw__config_invalid(cfg, err, st, p->key, "%s", err != NULL ? err->msg : "");
            continue;
        }
        if (!(p->need & GW__NEED_PRIVATE))
            continue;
        iot_err kerr = {0};
        st = iot_key_mode_check(p->path, &kerr);
        if (st == IOT_EPERM && cfg->development_mode) {
            gw__warn(warn, warn_ctx, p->key, kerr.msg);
            st = IOT_OK;
        } else if (st != IOT_OK) {
            st = gw__config_invalid(cfg, err, st, p->key, "%s: %s", p->key, kerr.msg);
        }
    }
    return st;
}

iot_status gw_config_load(const char *path, gw_config *cfg, gw_config_warn_fn warn, void *warn_ctx,
                          iot_err *err)
{
    char *text = NULL;
    size_t len = 0;
    iot_status st = iot_file_read(path, GW_CONFIG_FILE_MAX, &text, &len, err);
    if (st != IOT_OK)
        goto out;
    st = gw_config_parse(text, len, path, cfg, err);
    if (st != IOT_OK)
        goto out;
    /* Its errors name the file (and line) themselves. */
    st = gw_config_validate(cfg, warn, warn_ctx, err);
    if (st != IOT_OK)
        goto out;
    st = gw_config_check_files(cfg, warn, warn_ctx, err);
out:
    free(text);
    return st;
}
