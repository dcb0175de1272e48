#define _GNU_SOURCE /* renameat2 and RENAME_NOREPLACE */
#include "iot/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static iot_status dir_of(const char *path, char *dir, size_t size, iot_err *err)
{
    char copy[PATH_MAX];
    if (strlen(path) >= sizeof(copy))
        return iot_err_set(err, IOT_EINVAL, "path too long: %.64s...", path);
    memcpy(copy, path, strlen(path) + 1);
    const char *d = dirname(copy);
    if (strlen(d) >= size)
        return iot_err_set(err, IOT_EINVAL, "path too long: %.64s...", path);
    memcpy(dir, d, strlen(d) + 1);
    return IOT_OK;
}

static iot_status fsync_dir(const char *dir, iot_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return iot_err_set(err, IOT_EIO, "cannot open directory %s: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return iot_err_set(err, IOT_EIO, "cannot sync directory %s: %s", dir, strerror(saved));
    return IOT_OK;
}

/* Writes data into a fresh temp file next to `path`; returns its name. */
static iot_status write_temp(const char *path, const void *data, size_t len, mode_t mode, char *tmp,
                             size_t tmp_size, iot_err *err)
{
    int n = snprintf(tmp, tmp_size, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= tmp_size)
        return iot_err_set(err, IOT_EINVAL, "path too long: %.64s...", path);
    /* mkstemp creates the file 0600, so a key is never briefly readable. */
    int fd = mkstemp(tmp);
    if (fd < 0)
        return iot_err_set(err, IOT_EIO, "cannot create a file next to %s: %s", path,
                           strerror(errno));
    iot_status st = IOT_OK;
    const unsigned char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            st = iot_err_set(err, IOT_EIO, "cannot write %s: %s", tmp, strerror(errno));
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, mode) != 0) {
        st = iot_err_set(err, IOT_EIO, "cannot set mode of %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0)
        st = iot_err_set(err, IOT_EIO, "cannot sync %s: %s", tmp, strerror(errno));
out:
    if (close(fd) != 0 && st == IOT_OK)
        st = iot_err_set(err, IOT_EIO, "cannot close %s: %s", tmp, strerror(errno));
    if (st != IOT_OK)
        unlink(tmp);
    return st;
}

static iot_status install(const char *path, const void *data, size_t len, mode_t mode,
                          unsigned int rename_flags, iot_err *err)
{
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    iot_status st = dir_of(path, dir, sizeof(dir), err);
    if (st != IOT_OK)
        return st;
    if (rename_flags & RENAME_NOREPLACE) {
        /* Early, friendly check; renameat2 below is the atomic guarantee. */
        struct stat sb;
        if (lstat(path, &sb) == 0)
            return iot_err_set(err, IOT_EEXIST, "%s already exists; refusing to overwrite it",
                               path);
    }
    st = write_temp(path, data, len, mode, tmp, sizeof(tmp), err);
    if (st != IOT_OK)
        return st;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, rename_flags) != 0) {
        int saved = errno;
        unlink(tmp);
        if (saved == EEXIST)
            return iot_err_set(err, IOT_EEXIST, "%s already exists; refusing to overwrite it",
                               path);
        return iot_err_set(err, IOT_EIO, "cannot create %s: %s", path, strerror(saved));
    }
    return fsync_dir(dir, err);
}

iot_status iot_file_create(const char *path, const void *data, size_t len, mode_t mode,
                           iot_err *err)
{
    return install(path, data, len, mode, RENAME_NOREPLACE, err);
}

iot_status iot_file_replace(const char *path, const void *data, size_t len, mode_t mode,
                            iot_err *err)
{
    return install(path, data, len, mode, 0, err);
}

/* A growable read buffer: room for `used` bytes, a NUL, and one byte more
 * so that EOF is seen; never past max + 2. */
typedef struct read_buf {
    char *p;
    size_t cap, used;
} read_buf;

static bool make_room(read_buf *b, size_t max)
{
    if (b->used + 1 < b->cap)
        return true;
    size_t more = b->cap - 1 > max / 2 ? max + 2 : 2 * b->cap;
    char *grown = realloc(b->p, more);
    if (grown == NULL)
        return false;
    b->p = grown;
    b->cap = more;
    return true;
}

/* Reads fd to its end into b, failing past max bytes (a file that grows
 * while it is read). */
static iot_status read_to_end(int fd, const char *path, size_t max, read_buf *b, iot_err *err)
{
    for (;;) {
        if (!make_room(b, max))
            return iot_err_set(err, IOT_ENOMEM, "out of memory reading %s", path);
        ssize_t r = read(fd, b->p + b->used, b->cap - 1 - b->used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return iot_err_set(err, IOT_EIO, "cannot read %s: %s", path, strerror(errno));
        if (r == 0)
            return IOT_OK;
        b->used += (size_t)r;
        if (b->used > max)
            return iot_err_set(err, IOT_ENOMEM, "%s grew past the limit of %zu bytes", path, max);
    }
}

iot_status iot_file_read(const char *path, size_t max, char **out, size_t *out_len, iot_err *err)
{
    *out = NULL;
    *out_len = 0;
    iot_status st = IOT_OK;
    read_buf b = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        return iot_err_set(err, saved == ENOENT ? IOT_ENOENT : IOT_EIO, "cannot read %s: %s", path,
                           strerror(saved));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = iot_err_set(err, IOT_EINVAL, "%s is not a regular file", path);
        goto out;
    }
    if ((size_t)sb.st_size > max) {
        st = iot_err_set(err, IOT_ENOMEM, "%s is %lld bytes; the limit is %zu", path,
                         (long long)sb.st_size, max);
        goto out;
    }
    /* The file's size as it is now, not the cap: a CRL's cap is 16 MiB. */
    b.cap = (size_t)sb.st_size + 2;
    b.p = malloc(b.cap);
    if (b.p == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory reading %s", path);
        goto out;
    }
    st = read_to_end(fd, path, max, &b, err);
    if (st != IOT_OK)
        goto out;
    b.p[b.used] = '\0';
    *out = b.p;
    *out_len = b.used;
    b.p = NULL;
out:
    free(b.p);
    close(fd);
    return st;
}

iot_status iot_key_mode_check(const char *path, iot_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int saved = errno;
        return iot_err_set(err, saved == ENOENT ? IOT_ENOENT : IOT_EIO, "cannot read key %s: %s",
                           path, strerror(saved));
    }
    if (sb.st_mode & (S_IRWXG | S_IRWXO))
        return iot_err_set(err, IOT_EPERM,
                           "private key %s has mode %04o; it must not be accessible by group or "
                           "others (run: chmod 600 %s)",
                           path, (unsigned)(sb.st_mode & 07777), path);
    return IOT_OK;
}

iot_status iot_owner_mode_check(const char *what, const char *path, bool no_access, iot_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int saved = errno;
        return iot_err_set(err, saved == ENOENT ? IOT_ENOENT : IOT_EIO, "cannot check %s %s: %s",
                           what, path, strerror(saved));
    }
    uid_t me = geteuid();
    if (sb.st_uid != me && sb.st_uid != 0)
        return iot_err_set(err, IOT_EPERM,
                           "%s %s belongs to uid %u, not to this user (uid %u) or root; its owner "
                           "could replace what it holds (run as root: chown %u %s, or use a "
                           "directory of your own)",
                           what, path, (unsigned)sb.st_uid, (unsigned)me, (unsigned)me, path);
    mode_t bad = no_access ? (S_IRWXG | S_IRWXO) : (S_IWGRP | S_IWOTH);
    if (sb.st_mode & bad) {
        bool dir = S_ISDIR(sb.st_mode);
        return iot_err_set(err, IOT_EPERM,
                           "%s %s has mode %04o; group and others must not %s it (run: chmod %s "
                           "%s)",
                           what, path, (unsigned)(sb.st_mode & 07777),
                           no_access ? "have any access to" : "be able to write",
                           dir ? "700" : (no_access ? "600" : "go-w"), path);
    }
    return IOT_OK;
}

iot_status iot_mkdir_p(const char *path, mode_t mode, iot_err *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf))
        return iot_err_set(err, IOT_EINVAL, "bad directory path '%.64s'", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return iot_err_set(err, IOT_EIO, "cannot create directory %s: %s", buf,
                               strerror(errno));
        buf[i] = saved;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return iot_err_set(err, IOT_EIO, "%s is not a directory", path);
    return IOT_OK;
}

int iot_path_exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

iot_status iot_path_join(char *buf, size_t size, const char *dir, const char *name, iot_err *err)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return iot_err_set(err, IOT_ENOMEM, "path %s/%s is too long", dir, name);
    return IOT_OK;
}
