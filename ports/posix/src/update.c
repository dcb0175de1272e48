/* The update port of a simulated device (iotd_posix/update.h): slot files,
 * an otadata record and a bootloader, as esp_ota_ops with app rollback. */
#include "iotd_posix/update.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/version.h>

#include "iotd_posix/port.h"

/* otadata: "OTAD", format 1, the boot slot (0xFF: factory), each slot's
 * state. */
#define OTADATA_KEY  "otadata"
#define OTADATA_LEN  8
#define OTADATA_FMT  1
#define BOOT_FACTORY 0xFF
#define ERASED       0xFF
#define STATE_MAX    IOTD_POSIX_SLOT_INVALID
#define READ_CHUNK   4096

static const char *const STATE_NAMES[] = {"empty", "new", "pending_verify", "valid", "invalid"};

const char *iotd_posix_slot_state_name(iotd_posix_slot_state s)
{
    return (unsigned)s <= STATE_MAX ? STATE_NAMES[s] : "?";
}

static void log_event(const iotd_posix_update *u, iotd_log_level level, const char *event,
                      const char *msg)
{
    const iotd_port *p = u->cfg.log_port;
    if (p != NULL && p->log != NULL)
        p->log(p->ctx, level, event, msg);
}

void iotd_posix_update_init(iotd_posix_update *u, const iotd_posix_update_config *cfg)
{
    memset(u, 0, sizeof(*u));
    u->cfg = *cfg;
    if (u->cfg.slot_capacity == 0)
        u->cfg.slot_capacity = IOTD_POSIX_SLOT_DEFAULT;
    u->boot = IOTD_POSIX_FACTORY;
    u->running = IOTD_POSIX_FACTORY;
    u->image = cfg->factory;
    u->fd = -1;
}

void iotd_posix_update_close(iotd_posix_update *u)
{
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->sha_active)
        mbedtls_sha256_free(&u->sha);
    u->sha_active = false;
}

/* ---- otadata ------------------------------------------------------------------------ */

/* The record, or the defaults (factory, both slots empty) when there is
 * none or it is not one: a bootloader that cannot read its selection
 * boots the factory image. */
static iotd_status otadata_load(iotd_posix_update *u)
{
    uint8_t b[OTADATA_LEN];
    size_t len = 0;
    iotd_status st = iotd_posix_kv_get(u->cfg.kv, OTADATA_KEY, b, sizeof(b), &len);

    u->boot = IOTD_POSIX_FACTORY;
    u->state[0] = u->state[1] = IOTD_POSIX_SLOT_EMPTY;
    if (st == IOTD_ENOENT)
        return IOTD_OK;
    if (st == IOTD_EIO)
        return st;
    if (st != IOTD_OK || len != OTADATA_LEN || memcmp(b, "OTAD", 4) != 0 || b[4] != OTADATA_FMT ||
        (b[5] > 1 && b[5] != BOOT_FACTORY) || b[6] > STATE_MAX || b[7] > STATE_MAX) {
        log_event(u, IOTD_LOG_WARN, "update.otadata_damaged",
                  "the boot selection is damaged; booting the factory image");
        return IOTD_OK;
    }
    u->boot = b[5] == BOOT_FACTORY ? IOTD_POSIX_FACTORY : b[5];
    u->state[0] = b[6];
    u->state[1] = b[7];
    return IOTD_OK;
}

/* Stores the selection boot and the states; on success they are u's. */
static iotd_status otadata_store(iotd_posix_update *u, int boot, uint8_t s0, uint8_t s1)
{
    uint8_t b[OTADATA_LEN] = {'O', 'T', 'A', 'D', OTADATA_FMT};
    b[5] = boot == IOTD_POSIX_FACTORY ? BOOT_FACTORY : (uint8_t)boot;
    b[6] = s0;
    b[7] = s1;
    iotd_status st = iotd_posix_kv_set(u->cfg.kv, OTADATA_KEY, b, sizeof(b));
    if (st != IOTD_OK) {
        log_event(u, IOTD_LOG_ERROR, "update.otadata_failed",
                  "the boot selection could not be stored");
        return IOTD_EIO;
    }
    u->boot = boot;
    u->state[0] = s0;
    u->state[1] = s1;
    return IOTD_OK;
}

/* Stores slot's new state, the selection unchanged unless boot says. */
static iotd_status set_state(iotd_posix_update *u, int boot, int slot, uint8_t state)
{
    uint8_t s[2] = {u->state[0], u->state[1]};
    s[slot] = state;
    return otadata_store(u, boot, s[0], s[1]);
}

iotd_posix_slot_state iotd_posix_update_slot_state(const iotd_posix_update *u, int slot)
{
    return slot == 0 || slot == 1 ? (iotd_posix_slot_state)u->state[slot] : IOTD_POSIX_SLOT_EMPTY;
}

/* ---- slot files ------------------------------------------------------------------------ */

static const char *slot_name(int slot)
{
    return slot == 0 ? "slot0" : "slot1";
}

static int open_slot(const iotd_posix_update *u, int slot, int flags)
{
    return openat(u->cfg.kv->dirfd, slot_name(slot), flags | O_CLOEXEC, 0600);
}

/* Reads len bytes at off; bytes past the end of the file read as erased
 * flash. */
static iotd_status read_at(int fd, uint64_t off, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return IOTD_EIO;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    memset(buf + got, ERASED, len - got);
    return IOTD_OK;
}

iotd_status iotd_posix_update_slot_image(const iotd_posix_update *u, int slot,
                                         iotd_posix_image *out)
{
    uint8_t head[IOTD_POSIX_IMAGE_HEADER_MAX];
    if (slot != 0 && slot != 1)
        return IOTD_ENOENT;
    int fd = open_slot(u, slot, O_RDONLY);
    if (fd < 0)
        return errno == ENOENT ? IOTD_ENOENT : IOTD_EIO;
    iotd_status st = read_at(fd, 0, head, sizeof(head));
    close(fd);
    if (st != IOTD_OK)
        return st;
    return iotd_posix_image_parse(head, sizeof(head), out) == IOTD_OK ? IOTD_OK : IOTD_ENOENT;
}

/* ---- the bootloader ------------------------------------------------------------------- */

/* Where the bootloader goes when slot cannot run: the other slot if it
 * holds a confirmed image, else the factory image. */
static int fallback(const iotd_posix_update *u, int slot)
{
    iotd_posix_image img;
    int other = slot == 0 ? 1 : 0;
    if (slot == IOTD_POSIX_FACTORY || u->state[other] != IOTD_POSIX_SLOT_VALID ||
        iotd_posix_update_slot_image(u, other, &img) != IOTD_OK)
        return IOTD_POSIX_FACTORY;
    return other;
}

/* The selected slot's fate at this start: boots (on trial when new), or
 * is marked invalid and its fallback selected. */
static iotd_status select_boot(iotd_posix_update *u, iotd_posix_boot *out)
{
    int b = u->boot;
    if (b == IOTD_POSIX_FACTORY)
        return IOTD_OK;
    uint8_t s = u->state[b];
    bool header_ok = iotd_posix_update_slot_image(u, b, &out->image) == IOTD_OK;
    if (header_ok && s == IOTD_POSIX_SLOT_NEW) {
        out->on_trial = true;
        return set_state(u, b, b, IOTD_POSIX_SLOT_PENDING_VERIFY);
    }
    if (header_ok && s == IOTD_POSIX_SLOT_VALID)
        return IOTD_OK;
    /* On trial at the last start and not confirmed, rejected, or not an
     * image: back to the previous one. */
    out->rolled_back = s == IOTD_POSIX_SLOT_PENDING_VERIFY || s == IOTD_POSIX_SLOT_NEW;
    int to = fallback(u, b);
    return set_state(u, to, b, IOTD_POSIX_SLOT_INVALID);
}

iotd_status iotd_posix_update_boot(iotd_posix_update *u, iotd_posix_boot *out)
{
    iotd_posix_update_close(u);
    memset(out, 0, sizeof(*out));
    out->slot = IOTD_POSIX_FACTORY;
    out->image = u->cfg.factory;
    u->running = IOTD_POSIX_FACTORY;
    u->image = u->cfg.factory;
    iotd_status st = otadata_load(u);
    if (st == IOTD_OK)
        st = select_boot(u, out);
    if (st != IOTD_OK) {
        out->on_trial = false;
        out->image = u->cfg.factory;
        return st;
    }
    /* The selection now holds a bootable image, or is the factory one. */
    if (u->boot != IOTD_POSIX_FACTORY &&
        iotd_posix_update_slot_image(u, u->boot, &out->image) == IOTD_OK)
        u->running = u->boot;
    else
        out->image = u->cfg.factory;
    out->slot = u->running;
    u->image = out->image;
    return IOTD_OK;
}

/* ---- the inactive slot ---------------------------------------------------------------- */

/* The slot updates go to: the one not running (slot 0 from the factory
 * image), as esp_ota_get_next_update_partition. */
static int target(const iotd_posix_update *u)
{
    return u->running == 0 ? 1 : 0;
}

static bool on_trial(void *ctx)
{
    const iotd_posix_update *u = ctx;
    return u->running != IOTD_POSIX_FACTORY &&
           u->state[u->running] == IOTD_POSIX_SLOT_PENDING_VERIFY;
}

static uint32_t slot_capacity(void *ctx)
{
    const iotd_posix_update *u = ctx;
    return u->cfg.slot_capacity;
}

/* The target is not bootable while it is written: empty in otadata, and
 * not the selection (an activated image not booted yet is given up). */
static iotd_status unselect_target(iotd_posix_update *u, int t)
{
    if (u->state[t] == IOTD_POSIX_SLOT_EMPTY && u->boot != t)
        return IOTD_OK;
    return set_state(u, u->boot == t ? u->running : u->boot, t, IOTD_POSIX_SLOT_EMPTY);
}

static iotd_status slot_begin(void *ctx, uint32_t image_size, uint32_t resume_offset)
{
    iotd_posix_update *u = ctx;
    if (on_trial(u))
        return IOTD_ESTATE;
    if (image_size > u->cfg.slot_capacity || resume_offset > image_size)
        return IOTD_EINVAL;
    int t = target(u);
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (unselect_target(u, t) != IOTD_OK)
        return IOTD_EIO;
    int fd = open_slot(u, t, O_RDWR | O_CREAT);
    if (fd < 0)
        return IOTD_EIO;
    /* A new image starts from erased flash; a resumed one keeps its bytes. */
    if (resume_offset == 0 && (ftruncate(fd, 0) != 0 || fdatasync(fd) != 0)) {
        close(fd);
        return IOTD_EIO;
    }
    u->fd = fd;
    u->image_size = image_size;
    return IOTD_OK;
}

static iotd_status slot_write(void *ctx, uint32_t offset, const void *data, size_t len)
{
    iotd_posix_update *u = ctx;
    const uint8_t *p = data;
    if (u->fd < 0)
        return IOTD_ESTATE;
    if (offset > u->image_size || len > u->image_size - offset)
        return IOTD_EINVAL;
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(u->fd, p + done, len - done, (off_t)offset + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return IOTD_EIO;
        done += (size_t)n;
    }
    /* IOTD_OK means the bytes survive power loss. */
    return fdatasync(u->fd) == 0 ? IOTD_OK : IOTD_EIO;
}

static iotd_status slot_read(void *ctx, uint32_t offset, void *buf, size_t len)
{
    iotd_posix_update *u = ctx;
    if (offset > u->cfg.slot_capacity || len > u->cfg.slot_capacity - offset)
        return IOTD_EINVAL;
    if (u->fd >= 0)
        return read_at(u->fd, offset, buf, len);
    /* After a restart the digest is checked before the slot is opened. */
    int fd = open_slot(u, target(u), O_RDONLY);
    if (fd < 0 && errno == ENOENT) {
        memset(buf, ERASED, len);
        return IOTD_OK;
    }
    if (fd < 0)
        return IOTD_EIO;
    iotd_status st = read_at(fd, offset, buf, len);
    close(fd);
    return st;
}

static iotd_status slot_activate(void *ctx)
{
    iotd_posix_update *u = ctx;
    uint8_t head[IOTD_POSIX_IMAGE_HEADER_MAX];
    iotd_posix_image img;
    int t = target(u);
    if (u->fd < 0)
        return IOTD_ESTATE;
    if (read_at(u->fd, 0, head, sizeof(head)) != IOTD_OK || fdatasync(u->fd) != 0)
        return IOTD_EIO;
    if (iotd_posix_image_parse(head, sizeof(head), &img) != IOTD_OK)
        return IOTD_ECORRUPT;
    iotd_status st = set_state(u, t, t, IOTD_POSIX_SLOT_NEW);
    if (st != IOTD_OK)
        return st;
    close(u->fd);
    u->fd = -1;
    return IOTD_OK;
}

/* ---- the running image ------------------------------------------------------------- */

static iotd_status confirm(void *ctx)
{
    iotd_posix_update *u = ctx;
    if (u->running == IOTD_POSIX_FACTORY || u->state[u->running] == IOTD_POSIX_SLOT_VALID)
        return IOTD_OK;
    if (u->state[u->running] != IOTD_POSIX_SLOT_PENDING_VERIFY)
        return IOTD_EIO; /* rejected: it cannot become permanent */
    return set_state(u, u->boot, u->running, IOTD_POSIX_SLOT_VALID);
}

/* Marks the running image invalid and selects the previous one; the
 * caller restarts. */
static iotd_status reject(void *ctx)
{
    iotd_posix_update *u = ctx;
    if (u->running == IOTD_POSIX_FACTORY)
        return IOTD_ESTATE;
    return set_state(u, fallback(u, u->running), u->running, IOTD_POSIX_SLOT_INVALID);
}

static iotd_status fw_info(void *ctx, bool previous, iotd_fw_info *out)
{
    const iotd_posix_update *u = ctx;
    iotd_posix_image img = u->image;
    if (previous) {
        int other = u->running == 0 ? 1 : 0;
        if (u->running == IOTD_POSIX_FACTORY || u->state[other] != IOTD_POSIX_SLOT_VALID ||
            iotd_posix_update_slot_image(u, other, &img) != IOTD_OK)
            return IOTD_ENOENT;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->version, img.version, sizeof(out->version));
    out->secure_version = img.secure_version;
    return IOTD_OK;
}

/* ---- the network and SHA-256 ------------------------------------------------------------- */

static iotd_status https_get(void *ctx, const char *path, uint32_t range_start, uint32_t range_len,
                             void *buf, size_t cap, iotd_get_result *result)
{
    iotd_posix_update *u = ctx;
    iotd_posix_https *h = u->cfg.https;
    memset(result, 0, sizeof(*result));
    if (h == NULL)
        return IOTD_ENET;
    uint32_t connects = h->stats.connects;
    iotd_status st = iotd_posix_https_get(h, path, range_start, range_len, buf, cap, result);
    if (h->stats.connects != connects)
        log_event(u, IOTD_LOG_DEBUG, "https.connected", h->authority);
    if (st != IOTD_OK)
        log_event(u, h->last_error == IOTD_POSIX_NET_REFUSED ? IOTD_LOG_ERROR : IOTD_LOG_WARN,
                  iotd_posix_net_event(h->last_error), h->last_msg);
    return st;
}

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define sha256_starts(c)       mbedtls_sha256_starts((c), 0)
#define sha256_update(c, d, n) mbedtls_sha256_update((c), (d), (n))
#define sha256_finish(c, out)  mbedtls_sha256_finish((c), (out))
#else
#define sha256_starts(c)       mbedtls_sha256_starts_ret((c), 0)
#define sha256_update(c, d, n) mbedtls_sha256_update_ret((c), (d), (n))
#define sha256_finish(c, out)  mbedtls_sha256_finish_ret((c), (out))
#endif

static iotd_status sha_begin(void *ctx)
{
    iotd_posix_update *u = ctx;
    if (u->sha_active)
        mbedtls_sha256_free(&u->sha);
    mbedtls_sha256_init(&u->sha);
    u->sha_active = true;
    return sha256_starts(&u->sha) == 0 ? IOTD_OK : IOTD_EIO;
}

static iotd_status sha_update(void *ctx, const void *data, size_t len)
{
    iotd_posix_update *u = ctx;
    if (!u->sha_active)
        return IOTD_EIO;
    return sha256_update(&u->sha, data, len) == 0 ? IOTD_OK : IOTD_EIO;
}

static iotd_status sha_finish(void *ctx, uint8_t out[IOTD_MANIFEST_DIGEST_LEN])
{
    iotd_posix_update *u = ctx;
    if (!u->sha_active)
        return IOTD_EIO;
    int rc = sha256_finish(&u->sha, out);
    mbedtls_sha256_free(&u->sha);
    u->sha_active = false;
    return rc == 0 ? IOTD_OK : IOTD_EIO;
}

void iotd_posix_update_port(iotd_posix_update *u, iotd_update_port *port)
{
    memset(port, 0, sizeof(*port));
    port->ctx = u;
    port->slot_capacity = slot_capacity;
    port->slot_begin = slot_begin;
    port->slot_write = slot_write;
    port->slot_read = slot_read;
    port->slot_activate = slot_activate;
    port->on_trial = on_trial;
    port->confirm = confirm;
    port->reject = reject;
    port->fw_info = fw_info;
    port->https_get = https_get;
    port->sha256_begin = sha_begin;
    port->sha256_update = sha_update;
    port->sha256_finish = sha_finish;
}
