/* See iotd_posix/reset.h. */
#define _DEFAULT_SOURCE /* fdopendir's d_type */
#include "iotd_posix/reset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define MARKER_FILE IOTD_RESET_MARKER_KEY ".kv"

static iotd_status remove_file(int dirfd, const char *name)
{
    return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? IOTD_OK : IOTD_EIO;
}

static iotd_status sync_dir(int dirfd)
{
    return fsync(dirfd) == 0 ? IOTD_OK : IOTD_EIO;
}

static iotd_status erase_credentials(void *ctx)
{
    iotd_posix_kv *kv = ctx;
    /* tls-session holds a master secret: a credential too (session.h) */
    static const char *const files[] = {"device.pem", "candidate.pem", "cacerts.pem",
                                        "tls-session"};
    iotd_status st = IOTD_OK;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (remove_file(kv->dirfd, files[i]) != IOTD_OK)
            st = IOTD_EIO;
    return st == IOTD_OK ? sync_dir(kv->dirfd) : st;
}

static iotd_status erase_settings(void *ctx)
{
    (void)ctx;
    return IOTD_OK;
}

static bool kept(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "lock") == 0 ||
           strcmp(name, MARKER_FILE) == 0;
}

static iotd_status erase_storage(void *ctx)
{
    iotd_posix_kv *kv = ctx;
    int fd = dup(kv->dirfd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    iotd_status st = IOTD_OK;
    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return IOTD_EIO;
    }
    rewinddir(dir);
    for (struct dirent *e = readdir(dir); e != NULL; e = readdir(dir))
        if (!kept(e->d_name) && remove_file(kv->dirfd, e->d_name) != IOTD_OK)
            st = IOTD_EIO;
    closedir(dir);
    /* The marker goes last, and only once everything else is gone. */
    if (st == IOTD_OK)
        st = sync_dir(kv->dirfd);
    if (st == IOTD_OK)
        st = remove_file(kv->dirfd, MARKER_FILE);
    return st == IOTD_OK ? sync_dir(kv->dirfd) : st;
}

void iotd_posix_reset_port(iotd_posix_kv *kv, iotd_reset_port *out)
{
    out->ctx = kv;
    out->erase_credentials = erase_credentials;
    out->erase_settings = erase_settings;
    out->erase_storage = erase_storage;
}
