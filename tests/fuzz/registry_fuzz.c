/* libFuzzer harness for opening an arbitrary file as the device registry.
 *
 * The gateway opens the registry read-only and looks devices up in it;
 * iotctl opens it for writing. A damaged, truncated or foreign file must be
 * refused with one line of printable text, or read cleanly: never a crash,
 * never a record with an unterminated string or an unknown kind, and a
 * read-only open never changes the file.
 *
 * Each input is written to a file in a private temporary directory and
 * opened twice: read-only (every record, the revoked and replaced ones, a
 * lookup by name, by serial and by key, the shared keys) and for writing (a
 * schema 1 or 2 file is upgraded; the CRL number, a renewal, the rows
 * without a key and recording one, rolled back).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     -Icommon/include tests/fuzz/registry_fuzz.c common/src/status.c \
 *     common/src/identity.c common/src/fsutil.c common/src/registry.c \
 *     -lsqlite3 -o registry_fuzz
 *   ./registry_fuzz -max_len=65536 tests/fuzz/corpus/registry
 * (tests/fuzz/build.sh and run.sh do the same for every harness.)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iot/registry.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char db_path[300];
static const char *const side_files[] = {"-journal", "-wal", "-shm"};

static void require(int ok)
{
    if (!ok)
        abort();
}

static void remove_side_files(void)
{
    char path[320];
    for (size_t i = 0; i < sizeof(side_files) / sizeof(side_files[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", db_path, side_files[i]);
        (void)unlink(path);
    }
}

static void cleanup(void)
{
    remove_side_files();
    (void)unlink(db_path);
    (void)rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/registry_fuzz.XXXXXX", tmp != NULL ? tmp : "/tmp");
    require(mkdtemp(dir) != NULL);
    snprintf(db_path, sizeof(db_path), "%s/registry.db", dir);
    atexit(cleanup);
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    remove_side_files();
    int fd = open(db_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    require(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        require(n > 0);
        off += (size_t)n;
    }
    require(close(fd) == 0);
}

/* True if the file still holds exactly data. */
static int file_is(const uint8_t *data, size_t size)
{
    uint8_t buf[4096];
    size_t off = 0;
    int same = 1;
    int fd = open(db_path, O_RDONLY);
    require(fd >= 0);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        require(n >= 0);
        if (n == 0)
            break;
        if (off + (size_t)n > size || memcmp(buf, data + off, (size_t)n) != 0) {
            same = 0;
            break;
        }
        off += (size_t)n;
    }
    close(fd);
    return same && off == size;
}

static void check_error(iot_status st, const iot_err *err)
{
    size_t n = strnlen(err->msg, sizeof(err->msg));
    require(st != IOT_OK);
    require(n > 0 && n < sizeof(err->msg));
    for (size_t i = 0; i < n; i++)
        require(err->msg[i] >= 0x20 && err->msg[i] < 0x7f);
}

static void check_text(const char *s, size_t size)
{
    require(memchr(s, '\0', size) != NULL);
}

static int check_record(const iot_cert_record *rec, void *ctx)
{
    (void)ctx;
    check_text(rec->name, sizeof(rec->name));
    check_text(rec->role, sizeof(rec->role));
    check_text(rec->serial, sizeof(rec->serial));
    check_text(rec->fingerprint, sizeof(rec->fingerprint));
    check_text(rec->revoke_reason, sizeof(rec->revoke_reason));
    check_text(rec->spki, sizeof(rec->spki));
    require(rec->kind == IOT_KIND_DEVICE || rec->kind == IOT_KIND_SERVER ||
            rec->kind == IOT_KIND_CLIENT);
    return 0;
}

/* A lookup either finds a well-formed record, finds none, or fails cleanly. */
static void lookup(iot_status st, const iot_cert_record *rec, const iot_err *err)
{
    if (st == IOT_OK)
        check_record(rec, NULL);
    else
        check_error(st, err);
}

static void read_only(void)
{
    iot_registry *reg = NULL;
    iot_err err = {0};
    iot_status st = iot_registry_open(db_path, IOT_REGISTRY_READONLY, &reg, &err);
    if (st != IOT_OK) {
        require(reg == NULL);
        check_error(st, &err);
        return;
    }
    iot_registry_set_busy_timeout(reg, 0);
    iot_cert_record rec;
    st = iot_registry_foreach(reg, -1, check_record, NULL, &err);
    if (st != IOT_OK)
        check_error(st, &err);
    st = iot_registry_foreach(reg, IOT_KIND_DEVICE, check_record, NULL, &err);
    if (st != IOT_OK)
        check_error(st, &err);
    st = iot_registry_foreach_revoked(reg, check_record, NULL, &err);
    if (st != IOT_OK)
        check_error(st, &err);
    st = iot_registry_foreach_superseded(reg, "dev-001", check_record, NULL, &err);
    if (st != IOT_OK)
        check_error(st, &err);
    st = iot_registry_get_by_name(reg, "dev-001", &rec, &err);
    lookup(st, &rec, &err);
    st = iot_registry_get_by_serial(reg, "01", &rec, &err);
    lookup(st, &rec, &err);
    st = iot_registry_foreach_shared_key(reg, check_record, NULL, &err);
    if (st != IOT_OK)
        check_error(st, &err);
    char key[IOT_FPR_HEX_LEN + 1];
    memset(key, 'a', IOT_FPR_HEX_LEN);
    key[IOT_FPR_HEX_LEN] = '\0';
    st = iot_registry_find_key(reg, key, "dev-001", &rec, &err);
    lookup(st, &rec, &err);
    st = iot_registry_foreach_in_grace(reg, 0, check_record, NULL, &err);
    if (st != IOT_OK)
        check_error(st, &err);
    unsigned char der[2048];
    size_t der_len = 0;
    st = iot_registry_get_der(reg, "01", der, sizeof(der), &der_len, &err);
    if (st != IOT_OK && st != IOT_ENOENT)
        check_error(st, &err);
    require(der_len <= sizeof(der));
    iot_registry_close(reg);
}

static void read_write(void)
{
    iot_registry *reg = NULL;
    iot_err err = {0};
    iot_status st = iot_registry_open(db_path, IOT_REGISTRY_WRITE, &reg, &err);
    if (st != IOT_OK) {
        check_error(st, &err);
        return;
    }
    iot_registry_set_busy_timeout(reg, 0);
    uint64_t number = 0;
    iot_cert_record next = {.kind = IOT_KIND_DEVICE, .not_before = 1, .not_after = 2};
    snprintf(next.name, sizeof(next.name), "dev-001");
    snprintf(next.serial, sizeof(next.serial), "0123456789ABCDEF");
    memset(next.fingerprint, 'a', IOT_FPR_HEX_LEN);
    if ((st = iot_registry_begin(reg, &err)) != IOT_OK ||
        (st = iot_registry_next_crl_number(reg, &number, &err)) != IOT_OK)
        check_error(st, &err);
    else if ((st = iot_registry_renew(reg, &next, 3, &err)) != IOT_OK)
        check_error(st, &err);
    else if ((st = iot_registry_foreach_unkeyed(reg, check_record, NULL, &err)) != IOT_OK)
        check_error(st, &err);
    else if ((st = iot_registry_set_key(reg, "0123456789ABCDEF", next.fingerprint, &err)) != IOT_OK)
        check_error(st, &err);
    iot_registry_rollback(reg);
    iot_registry_close(reg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_input(data, size);
    read_only();
    require(file_is(data, size));
    read_write();
    return 0;
}
