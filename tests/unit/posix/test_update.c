/* The POSIX update port (iotd_posix/update.h): the simulated image header
 * and `iotsim --make-image`, the two slots with resume, activation, a boot
 * on trial, confirmation, a reset on trial and a rejection rolling back,
 * and power cuts: between any two operations (the port re-opened and the
 * bootloader run again), in the middle of any of them (a process killed at
 * random instants), and a half-written otadata temp file. The selection
 * must always boot a whole image. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iotd_posix/update.h"

#define CAP       (64u * 1024u)
#define IMG_SIZE  10000u /* not a multiple of the chunk */
#define CHUNK     4096u
#define FACTORY_V "1.0.0"

static char dir[64];
static char state[96];

static iotd_posix_kv kv;
static iotd_posix_update pu;
static iotd_update_port port;
static iotd_posix_boot boot;

static int make_dir(void **st)
{
    (void)st;
    snprintf(dir, sizeof(dir), "/tmp/iotd-update.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    return 0;
}

static int remove_dir(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A new device directory for each test. */
static int fresh_state(void **st)
{
    (void)st;
    static int n;
    snprintf(state, sizeof(state), "%s/dev-%d", dir, ++n);
    return 0;
}

static iotd_posix_image image_of(const char *version, uint32_t secure, bool pass)
{
    iotd_posix_image img;
    memset(&img, 0, sizeof(img));
    snprintf(img.version, sizeof(img.version), "%s", version);
    img.secure_version = secure;
    img.self_test_pass = pass;
    return img;
}

/* Starts the device: opens the state directory and runs the bootloader. */
static void power_on(void)
{
    iot_err err = {0};
    assert_int_equal(iotd_posix_kv_open(&kv, state, &err), IOT_OK);
    iotd_posix_update_config cfg = {
        .kv = &kv,
        .slot_capacity = CAP,
        .factory = image_of(FACTORY_V, 0, true),
    };
    iotd_posix_update_init(&pu, &cfg);
    iotd_posix_update_port(&pu, &port);
    assert_int_equal(iotd_posix_update_boot(&pu, &boot), IOTD_OK);
}

static void power_off(void)
{
    iotd_posix_update_close(&pu);
    iotd_posix_kv_close(&kv);
}

static void reboot(void)
{
    power_off();
    power_on();
}

/* The running image's version, through the port. */
static const char *running(void)
{
    static iotd_fw_info info;
    assert_int_equal(port.fw_info(port.ctx, false, &info), IOTD_OK);
    return info.version;
}

/* An image of IMG_SIZE bytes in buf, made by the port's own writer. */
static void make_image(const char *version, bool pass, uint8_t *buf)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/img-%s", dir, version);
    iot_err err = {0};
    iotd_posix_image img = image_of(version, 2, pass);
    assert_int_equal(iotd_posix_image_make(path, &img, IMG_SIZE, &err), IOT_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, IMG_SIZE, f), IMG_SIZE);
    fclose(f);
}

static void write_image(const uint8_t *img, uint32_t from)
{
    for (uint32_t off = from; off < IMG_SIZE; off += CHUNK) {
        uint32_t n = IMG_SIZE - off < CHUNK ? IMG_SIZE - off : CHUNK;
        assert_int_equal(port.slot_write(port.ctx, off, img + off, n), IOTD_OK);
    }
}

/* Downloads and activates an image; it boots at the next start. */
static void install(const char *version, bool pass)
{
    static uint8_t img[IMG_SIZE];
    make_image(version, pass, img);
    assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, 0), IOTD_OK);
    write_image(img, 0);
    assert_int_equal(port.slot_activate(port.ctx), IOTD_OK);
}

/* ---- the image format -------------------------------------------------------------- */

static void image_header_round_trips(void **st)
{
    (void)st;
    char buf[IOTD_POSIX_IMAGE_HEADER_MAX];
    size_t len = 0;
    iotd_posix_image img = image_of("1.4.2-rc.1+b7", 4294967295u, false), back;
    assert_int_equal(iotd_posix_image_header(&img, buf, sizeof(buf), &len), IOTD_OK);
    assert_string_equal(buf, "iotsim-image 1\nversion: 1.4.2-rc.1+b7\nsecure-version: 4294967295\n"
                             "self-test: fail\n\n");
    assert_int_equal(len, strlen(buf));
    assert_int_equal(iotd_posix_image_parse(buf, len, &back), IOTD_OK);
    assert_string_equal(back.version, "1.4.2-rc.1+b7");
    assert_int_equal(back.secure_version, 4294967295u);
    assert_false(back.self_test_pass);
    assert_int_equal(iotd_posix_image_header(&img, buf, len, &len), IOTD_ENOSPC);

    /* Only version is required. */
    static const char MIN[] = "iotsim-image 1\nversion: 7\n\nfiller";
    assert_int_equal(iotd_posix_image_parse(MIN, sizeof(MIN) - 1, &back), IOTD_OK);
    assert_string_equal(back.version, "7");
    assert_int_equal(back.secure_version, 0);
    assert_true(back.self_test_pass);

    static const char *const bad[] = {
        "",
        "iotsim-image 2\nversion: 1\n\n",
        "iotsim-image 1\n\n",
        "iotsim-image 1\nversion: 1\n",
        "iotsim-image 1\nversion: 1\nversion: 2\n\n",
        "iotsim-image 1\nversion: 1\ncolour: blue\n\n",
        "iotsim-image 1\nversion: 1 2\n\n",
        "iotsim-image 1\nversion:1\n\n",
        "iotsim-image 1\nversion: 123456789012345678901234567890123\n\n",
        "iotsim-image 1\nversion: 1\nsecure-version: 01\n\n",
        "iotsim-image 1\nversion: 1\nsecure-version: 4294967296\n\n",
        "iotsim-image 1\nversion: 1\nself-test: maybe\n\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(iotd_posix_image_parse(bad[i], strlen(bad[i]), &back), IOTD_ECORRUPT);
    img = image_of("1 0", 0, true);
    assert_int_equal(iotd_posix_image_header(&img, buf, sizeof(buf), &len), IOTD_EINVAL);
}

/* What `iotsim --make-image` writes is what the bootloader and fw_info
 * read once it is installed. */
static void iotsim_make_image_is_what_fw_info_reads(void **st)
{
    (void)st;
    const char *iotsim = getenv("IOTSIM");
    assert_non_null(iotsim); /* set by ctest */
    char path[160], cmd[512];
    snprintf(path, sizeof(path), "%s/made.bin", dir);
    snprintf(cmd, sizeof(cmd),
             "'%s' --make-image '%s' --image-version 2.3.4 --image-secure-version 5 "
             "--image-size 20000 --image-self-test fail",
             iotsim, path);
    assert_int_equal(system(cmd), 0);
    static uint8_t img[20000];
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 20000);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(img, 1, sizeof(img), f), sizeof(img));
    fclose(f);

    power_on();
    assert_int_equal(port.slot_begin(port.ctx, sizeof(img), 0), IOTD_OK);
    assert_int_equal(port.slot_write(port.ctx, 0, img, sizeof(img)), IOTD_OK);
    assert_int_equal(port.slot_activate(port.ctx), IOTD_OK);
    reboot();
    iotd_fw_info info;
    assert_int_equal(port.fw_info(port.ctx, false, &info), IOTD_OK);
    assert_string_equal(info.version, "2.3.4");
    assert_int_equal(info.secure_version, 5);
    assert_false(boot.image.self_test_pass);
    assert_true(boot.on_trial);
    power_off();

    /* Its usage errors. */
    snprintf(cmd, sizeof(cmd), "'%s' --make-image '%s' --image-size 100 2>/dev/null", iotsim, path);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof(cmd),
             "'%s' --make-image '%s' --image-version 1 --image-size 10 2>/dev/null", iotsim, path);
    assert_int_not_equal(WEXITSTATUS(system(cmd)), 0);
}

/* ---- slots ---------------------------------------------------------------------------- */

static void the_factory_image_runs_first(void **st)
{
    (void)st;
    power_on();
    assert_int_equal(boot.slot, IOTD_POSIX_FACTORY);
    assert_false(boot.on_trial);
    assert_false(boot.rolled_back);
    assert_string_equal(running(), FACTORY_V);
    assert_false(port.on_trial(port.ctx));
    assert_int_equal(port.slot_capacity(port.ctx), CAP);
    iotd_fw_info info;
    assert_int_equal(port.fw_info(port.ctx, true, &info), IOTD_ENOENT);
    assert_int_equal(port.reject(port.ctx), IOTD_ESTATE);
    assert_int_equal(port.confirm(port.ctx), IOTD_OK);
    /* No gateway configured: no response. */
    iotd_get_result res;
    char buf[8];
    assert_int_equal(
        port.https_get(port.ctx, "/v1/firmware/manifest", 0, 0, buf, sizeof(buf), &res), IOTD_ENET);
    power_off();
}

static void slots_are_written_resumed_and_read_back(void **st)
{
    (void)st;
    static uint8_t img[IMG_SIZE], back[IMG_SIZE];
    make_image("2.0.0", true, img);
    power_on();
    uint8_t b[16];
    /* Contract errors. */
    assert_int_equal(port.slot_write(port.ctx, 0, img, 10), IOTD_ESTATE);
    assert_int_equal(port.slot_activate(port.ctx), IOTD_ESTATE);
    assert_int_equal(port.slot_begin(port.ctx, CAP + 1, 0), IOTD_EINVAL);
    assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, IMG_SIZE + 1), IOTD_EINVAL);
    assert_int_equal(port.slot_read(port.ctx, CAP - 8, b, 16), IOTD_EINVAL);
    /* Never written: erased flash. */
    assert_int_equal(port.slot_read(port.ctx, 0, b, sizeof(b)), IOTD_OK);
    for (size_t i = 0; i < sizeof(b); i++)
        assert_int_equal(b[i], 0xFF);

    assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, 0), IOTD_OK);
    assert_int_equal(port.slot_write(port.ctx, 0, img, CHUNK), IOTD_OK);
    assert_int_equal(port.slot_write(port.ctx, IMG_SIZE - 4, img, 8), IOTD_EINVAL);
    /* A reset after the first chunk: the bytes stay, the download resumes. */
    reboot();
    assert_string_equal(running(), FACTORY_V);
    assert_int_equal(port.slot_read(port.ctx, 0, back, CHUNK), IOTD_OK);
    assert_memory_equal(back, img, CHUNK);
    assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, CHUNK), IOTD_OK);
    /* The chunk in progress is written again: that is allowed. */
    write_image(img, 0);
    assert_int_equal(port.slot_read(port.ctx, 0, back, IMG_SIZE), IOTD_OK);
    assert_memory_equal(back, img, IMG_SIZE);
    /* SHA-256 of the slot, streamed, against a one-shot digest. */
    uint8_t d1[32], d2[32];
    assert_int_equal(port.sha256_begin(port.ctx), IOTD_OK);
    assert_int_equal(port.sha256_update(port.ctx, back, 1000), IOTD_OK);
    assert_int_equal(port.sha256_update(port.ctx, back + 1000, IMG_SIZE - 1000), IOTD_OK);
    assert_int_equal(port.sha256_finish(port.ctx, d1), IOTD_OK);
    assert_int_equal(mbedtls_sha256_ret(img, IMG_SIZE, d2, 0), 0);
    assert_memory_equal(d1, d2, 32);
    assert_int_equal(port.sha256_finish(port.ctx, d1), IOTD_EIO); /* none in progress */
    /* A new image from offset 0 erases what was there. */
    assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, 0), IOTD_OK);
    assert_int_equal(port.slot_read(port.ctx, 0, b, sizeof(b)), IOTD_OK);
    assert_int_equal(b[0], 0xFF);
    power_off();
}

static void sha256_matches_the_abc_vector(void **st)
{
    (void)st;
    static const uint8_t ABC[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                    0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    power_on();
    uint8_t d[32];
    assert_int_equal(port.sha256_begin(port.ctx), IOTD_OK);
    assert_int_equal(port.sha256_update(port.ctx, "a", 1), IOTD_OK);
    assert_int_equal(port.sha256_update(port.ctx, "bc", 2), IOTD_OK);
    assert_int_equal(port.sha256_finish(port.ctx, d), IOTD_OK);
    assert_memory_equal(d, ABC, 32);
    power_off();
}

/* ---- activation, trial, confirmation, rollback ------------------------------------------------
 */

static void activation_boots_on_trial_and_confirm_keeps_it(void **st)
{
    (void)st;
    power_on();
    install("2.0.0", true);
    /* The running image is unchanged until the restart. */
    assert_string_equal(running(), FACTORY_V);
    assert_false(port.on_trial(port.ctx));
    assert_int_equal(iotd_posix_update_slot_state(&pu, 0), IOTD_POSIX_SLOT_NEW);
    reboot();
    assert_int_equal(boot.slot, 0);
    assert_true(boot.on_trial);
    assert_string_equal(running(), "2.0.0");
    assert_true(port.on_trial(port.ctx));
    /* esp_ota_begin refuses while the running image is on trial. */
    assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, 0), IOTD_ESTATE);
    assert_int_equal(port.confirm(port.ctx), IOTD_OK);
    assert_false(port.on_trial(port.ctx));
    reboot();
    assert_int_equal(boot.slot, 0);
    assert_false(boot.on_trial);
    assert_string_equal(running(), "2.0.0");
    iotd_fw_info info;
    assert_int_equal(port.fw_info(port.ctx, true, &info), IOTD_ENOENT);

    /* The next release goes to the other slot; the confirmed one is its
     * previous image. */
    install("3.0.0", true);
    reboot();
    assert_int_equal(boot.slot, 1);
    assert_true(boot.on_trial);
    assert_string_equal(running(), "3.0.0");
    assert_int_equal(port.confirm(port.ctx), IOTD_OK);
    assert_int_equal(port.fw_info(port.ctx, true, &info), IOTD_OK);
    assert_string_equal(info.version, "2.0.0");
    assert_int_equal(info.secure_version, 2);
    power_off();
}

static void a_reset_on_trial_rolls_back(void **st)
{
    (void)st;
    power_on();
    install("2.0.0", true);
    reboot();
    assert_int_equal(port.confirm(port.ctx), IOTD_OK);
    install("3.0.0", true);
    reboot();
    assert_true(boot.on_trial);
    assert_string_equal(running(), "3.0.0");
    /* Reset without confirmation: the bootloader returns to 2.0.0. */
    reboot();
    assert_true(boot.rolled_back);
    assert_false(boot.on_trial);
    assert_int_equal(boot.slot, 0);
    assert_string_equal(running(), "2.0.0");
    assert_int_equal(iotd_posix_update_slot_state(&pu, 1), IOTD_POSIX_SLOT_INVALID);
    iotd_posix_image img;
    assert_int_equal(iotd_posix_update_slot_image(&pu, 1, &img), IOTD_OK);
    assert_string_equal(img.version, "3.0.0");
    /* And stays there. */
    reboot();
    assert_false(boot.rolled_back);
    assert_string_equal(running(), "2.0.0");

    /* The first update from the factory image rolls back to it. */
    power_off();
    fresh_state(NULL);
    power_on();
    install("2.0.0", true);
    reboot();
    reboot();
    assert_true(boot.rolled_back);
    assert_int_equal(boot.slot, IOTD_POSIX_FACTORY);
    assert_string_equal(running(), FACTORY_V);
    power_off();
}

static void reject_selects_the_previous_image(void **st)
{
    (void)st;
    power_on();
    install("2.0.0", true);
    reboot();
    assert_int_equal(port.confirm(port.ctx), IOTD_OK);
    install("3.0.0", false);
    reboot();
    assert_false(boot.image.self_test_pass);
    assert_int_equal(port.reject(port.ctx), IOTD_OK);
    assert_false(port.on_trial(port.ctx));
    assert_int_equal(port.confirm(port.ctx), IOTD_EIO); /* rejected stays rejected */
    reboot();
    assert_false(boot.on_trial);
    assert_false(boot.rolled_back);
    assert_string_equal(running(), "2.0.0");
    /* A later release may use the rejected slot again. */
    install("3.0.1", true);
    reboot();
    assert_true(boot.on_trial);
    assert_string_equal(running(), "3.0.1");
    power_off();
}

static void activation_refuses_what_is_not_an_image(void **st)
{
    (void)st;
    power_on();
    static uint8_t junk[IMG_SIZE];
    memset(junk, 0x5A, sizeof(junk));
    assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, 0), IOTD_OK);
    assert_int_equal(port.slot_write(port.ctx, 0, junk, IMG_SIZE), IOTD_OK);
    assert_int_equal(port.slot_activate(port.ctx), IOTD_ECORRUPT);
    reboot();
    assert_int_equal(boot.slot, IOTD_POSIX_FACTORY);
    assert_string_equal(running(), FACTORY_V);
    power_off();
}

/* ---- power cuts --------------------------------------------------------------------------- */

/* Every boot runs a whole image: the factory one or a slot's with a valid
 * header, and a version among those installed. */
static void assert_bootable(const char *const *versions, size_t n)
{
    const char *v = running();
    bool known = strcmp(v, FACTORY_V) == 0;
    for (size_t i = 0; i < n; i++)
        known = known || strcmp(v, versions[i]) == 0;
    assert_true(known);
    if (boot.slot != IOTD_POSIX_FACTORY) {
        iotd_posix_image img;
        assert_int_equal(iotd_posix_update_slot_image(&pu, boot.slot, &img), IOTD_OK);
        assert_string_equal(img.version, v);
    }
}

/* Power cut after each operation of an update: the port is re-opened and
 * the bootloader runs before the next one, which resumes where the last
 * one stopped, as the core does. */
static void power_cut_between_any_two_operations(void **st)
{
    (void)st;
    static const char *const versions[] = {"2.0.0"};
    static uint8_t img[IMG_SIZE];
    make_image("2.0.0", true, img);
    power_on();
    for (uint32_t off = 0; off < IMG_SIZE; off += CHUNK) {
        uint32_t n = IMG_SIZE - off < CHUNK ? IMG_SIZE - off : CHUNK;
        assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, off), IOTD_OK);
        reboot();
        assert_bootable(versions, 1);
        assert_string_equal(running(), FACTORY_V);
        assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, off), IOTD_OK);
        assert_int_equal(port.slot_write(port.ctx, off, img + off, n), IOTD_OK);
        reboot();
        assert_bootable(versions, 1);
        assert_string_equal(running(), FACTORY_V);
    }
    assert_int_equal(port.slot_begin(port.ctx, IMG_SIZE, IMG_SIZE), IOTD_OK);
    assert_int_equal(port.slot_activate(port.ctx), IOTD_OK);
    reboot();
    assert_bootable(versions, 1);
    assert_true(boot.on_trial);
    assert_string_equal(running(), "2.0.0");
    assert_int_equal(port.confirm(port.ctx), IOTD_OK);
    reboot();
    assert_bootable(versions, 1);
    assert_false(boot.on_trial);
    assert_string_equal(running(), "2.0.0");
    power_off();
}

/* What a selection change cut short before its rename leaves behind. */
static void a_half_written_otadata_temp_file_is_ignored(void **st)
{
    (void)st;
    power_on();
    install("2.0.0", true);
    power_off();
    char path[160];
    snprintf(path, sizeof(path), "%s/.otadata.kv.tmp", state);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("OTA", f);
    fclose(f);
    power_on();
    assert_true(boot.on_trial);
    assert_string_equal(running(), "2.0.0");
    assert_int_equal(port.confirm(port.ctx), IOTD_OK);
    reboot();
    assert_false(boot.on_trial);
    assert_string_equal(running(), "2.0.0");

    /* A damaged otadata record boots the factory image, never a guess. */
    power_off();
    snprintf(path, sizeof(path), "%s/otadata.kv", state);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("OTAD\x01\x07", f);
    fclose(f);
    power_on();
    assert_int_equal(boot.slot, IOTD_POSIX_FACTORY);
    assert_string_equal(running(), FACTORY_V);
    power_off();
}

/* The child installs, boots, confirms or rejects images without end; the
 * parent kills it at random instants and boots what it left. The child
 * reports the start of its first rounds on a pipe. */
enum { REPORTED_ROUNDS = 1 };
static uint8_t imgs[3][IMG_SIZE];

static void updater(int done)
{
    power_on();
    for (unsigned i = 0;; i++) {
        if (i < REPORTED_ROUNDS && write(done, "r", 1) != 1)
            _exit(7);
        const uint8_t *img = imgs[i % 3];
        if (port.slot_begin(port.ctx, IMG_SIZE, 0) == IOTD_OK) {
            for (uint32_t off = 0; off < IMG_SIZE; off += CHUNK) {
                uint32_t n = IMG_SIZE - off < CHUNK ? IMG_SIZE - off : CHUNK;
                if (port.slot_write(port.ctx, off, img + off, n) != IOTD_OK)
                    _exit(3);
            }
            if (port.slot_activate(port.ctx) != IOTD_OK)
                _exit(4);
        }
        iotd_posix_update_close(&pu);
        if (iotd_posix_update_boot(&pu, &boot) != IOTD_OK)
            _exit(5);
        if (boot.on_trial &&
            (boot.image.self_test_pass ? port.confirm(port.ctx) : port.reject(port.ctx)) != IOTD_OK)
            _exit(6);
    }
}

static void killed_at_any_instant_boots_a_whole_image(void **st)
{
    (void)st;
    static const char *const versions[] = {"2.0.0", "3.0.0", "4.0.0"};
    for (int i = 0; i < 3; i++)
        make_image(versions[i], i != 1, imgs[i]);
    srand((unsigned)time(NULL));
    for (int round = 0; round < 25; round++) {
        int done[2];
        assert_int_equal(pipe(done), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(done[0]);
            updater(done[1]);
        }
        close(done[1]);
        /* Killed after its first round at the earliest, so that every kill
         * lands in the middle of the work, whatever this disk's speed. */
        char c;
        assert_int_equal(read(done[0], &c, 1), 1);
        close(done[0]);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(rand() % 20) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status)); /* it never stopped on an error */
        power_on();
        assert_bootable(versions, 3);
        power_off();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(image_header_round_trips),
        cmocka_unit_test_setup(iotsim_make_image_is_what_fw_info_reads, fresh_state),
        cmocka_unit_test_setup(the_factory_image_runs_first, fresh_state),
        cmocka_unit_test_setup(slots_are_written_resumed_and_read_back, fresh_state),
        cmocka_unit_test_setup(sha256_matches_the_abc_vector, fresh_state),
        cmocka_unit_test_setup(activation_boots_on_trial_and_confirm_keeps_it, fresh_state),
        cmocka_unit_test_setup(a_reset_on_trial_rolls_back, fresh_state),
        cmocka_unit_test_setup(reject_selects_the_previous_image, fresh_state),
        cmocka_unit_test_setup(activation_refuses_what_is_not_an_image, fresh_state),
        cmocka_unit_test_setup(power_cut_between_any_two_operations, fresh_state),
        cmocka_unit_test_setup(a_half_written_otadata_temp_file_is_ignored, fresh_state),
        cmocka_unit_test_setup(killed_at_any_instant_boots_a_whole_image, fresh_state),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
