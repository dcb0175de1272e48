/* The simulated firmware image's header (iotd_posix/update.h). */
#include "iotd_posix/update.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iot/fsutil.h"

static const char MAGIC[] = "iotsim-image 1\n";

/* The header's fields, by bit in a seen mask. */
enum { F_VERSION = 1u, F_SECURE = 2u, F_SELF_TEST = 4u };

/* The manifest's version rule: 1-32 of [A-Za-z0-9._+-]. */
static bool version_ok(const char *s, size_t len)
{
    if (len == 0 || len > IOTD_MANIFEST_FW_VERSION_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '+' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Decimal, no sign, no leading zero, at most UINT32_MAX. */
static bool u32_ok(const char *s, size_t len, uint32_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10u + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool is(const char *s, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

/* One "name: value" line (without its LF) into out; the field's bit, or 0
 * when the line is not a valid field. */
static unsigned take_field(const char *line, size_t len, iotd_posix_image *out)
{
    const char *sep = memchr(line, ':', len);
    if (sep == NULL || (size_t)(sep - line) + 2 > len || sep[1] != ' ')
        return 0;
    size_t nlen = (size_t)(sep - line);
    const char *v = sep + 2;
    size_t vlen = len - nlen - 2;
    if (is(line, nlen, "version") && version_ok(v, vlen)) {
        memcpy(out->version, v, vlen);
        out->version[vlen] = '\0';
        return F_VERSION;
    }
    if (is(line, nlen, "secure-version") && u32_ok(v, vlen, &out->secure_version))
        return F_SECURE;
    if (is(line, nlen, "self-test") && (is(v, vlen, "pass") || is(v, vlen, "fail"))) {
        out->self_test_pass = is(v, vlen, "pass");
        return F_SELF_TEST;
    }
    return 0;
}

iotd_status iotd_posix_image_parse(const void *data, size_t len, iotd_posix_image *out)
{
    const char *p = data;
    size_t n = len < IOTD_POSIX_IMAGE_HEADER_MAX ? len : IOTD_POSIX_IMAGE_HEADER_MAX;
    size_t at = sizeof(MAGIC) - 1;
    unsigned seen = 0;
    iotd_posix_image img = {.self_test_pass = true};

    if (n < at || memcmp(p, MAGIC, at) != 0)
        return IOTD_ECORRUPT;
    while (at < n && p[at] != '\n') {
        const char *nl = memchr(p + at, '\n', n - at);
        if (nl == NULL)
            return IOTD_ECORRUPT;
        size_t llen = (size_t)(nl - (p + at));
        unsigned f = take_field(p + at, llen, &img);
        if (f == 0 || (seen & f) != 0)
            return IOTD_ECORRUPT;
        seen |= f;
        at += llen + 1;
    }
    if (at >= n || (seen & F_VERSION) == 0)
        return IOTD_ECORRUPT;
    *out = img;
    return IOTD_OK;
}

iotd_status iotd_posix_image_header(const iotd_posix_image *img, char *buf, size_t cap, size_t *len)
{
    if (!version_ok(img->version, strlen(img->version)))
        return IOTD_EINVAL;
    int n =
        snprintf(buf, cap, "%sversion: %s\nsecure-version: %" PRIu32 "\nself-test: %s\n\n", MAGIC,
                 img->version, img->secure_version, img->self_test_pass ? "pass" : "fail");
    if (n < 0 || (size_t)n >= cap)
        return IOTD_ENOSPC;
    *len = (size_t)n;
    return IOTD_OK;
}

/* Filler that depends on the header: xorshift64 seeded with its FNV-1a. */
static void fill(uint8_t *p, size_t from, size_t to)
{
    uint64_t x = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < from; i++)
        x = (x ^ p[i]) * 0x100000001b3ull;
    for (size_t i = from; i < to; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

iot_status iotd_posix_image_make(const char *path, const iotd_posix_image *img, uint32_t size,
                                 iot_err *err)
{
    char head[IOTD_POSIX_IMAGE_HEADER_MAX];
    size_t hlen = 0;
    uint8_t *data = NULL;
    iot_status st = IOT_OK;

    if (iotd_posix_image_header(img, head, sizeof(head), &hlen) != IOTD_OK) {
        st = iot_err_set(err, IOT_EINVAL, "image version '%s' is not 1-32 of [A-Za-z0-9._+-]",
                         img->version);
        goto out;
    }
    if (size < hlen || size > IOTD_POSIX_IMAGE_MAKE_MAX) {
        st = iot_err_set(err, IOT_EINVAL, "image size %" PRIu32 " is not in %zu..%u", size, hlen,
                         IOTD_POSIX_IMAGE_MAKE_MAX);
        goto out;
    }
    data = malloc(size);
    if (data == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory for an image of %" PRIu32 " bytes", size);
        goto out;
    }
    memcpy(data, head, hlen);
    fill(data, hlen, size);
    st = iot_file_replace(path, data, size, 0644, err);
out:
    free(data);
    return st;
}
