/* See pem.h. */
#include "pem.h"

#include <string.h>

#include "iotd/enroll.h"

#define LINE_BYTES 48 /* 64 base64 characters */

size_t iotd_esp__der_seq_len(const uint8_t *p, size_t n)
{
    size_t len = 0, hdr = 2;

    if (n < 2 || p[0] != 0x30)
        return 0;
    if (p[1] < 0x80) {
        len = p[1];
    } else if (p[1] == 0x81 && n >= 3) {
        len = p[2];
        hdr = 3;
    } else if (p[1] == 0x82 && n >= 4) {
        len = ((size_t)p[2] << 8) | p[3];
        hdr = 4;
    } else {
        return 0;
    }
    return hdr + len <= n ? hdr + len : 0;
}

static bool put(char *out, size_t cap, size_t *used, const char *s, size_t n)
{
    if (n >= cap - *used)
        return false;
    memcpy(out + *used, s, n);
    *used += n;
    out[*used] = '\0';
    return true;
}

/* One PEM block of der[0..len) with the given label. */
static bool block(const uint8_t *der, size_t len, const char *label, char *out, size_t cap,
                  size_t *used)
{
    bool ok = put(out, cap, used, "-----BEGIN ", 11) && put(out, cap, used, label, strlen(label)) &&
              put(out, cap, used, "-----\n", 6);

    for (size_t at = 0; ok && at < len; at += LINE_BYTES) {
        size_t n = len - at < LINE_BYTES ? len - at : LINE_BYTES, w = 0;
        ok = iotd_base64_encode(der + at, n, out + *used, cap - *used, &w) == IOTD_OK;
        if (ok) {
            *used += w;
            ok = put(out, cap, used, "\n", 1);
        }
    }
    return ok && put(out, cap, used, "-----END ", 9) && put(out, cap, used, label, strlen(label)) &&
           put(out, cap, used, "-----\n", 6);
}

bool iotd_esp__pem_chain(const uint8_t *der, size_t len, char *out, size_t cap)
{
    size_t used = 0, at = 0;
    bool ok = cap > 0 && len > 0;

    if (cap > 0)
        out[0] = '\0';
    while (ok && at < len) {
        size_t n = iotd_esp__der_seq_len(der + at, len - at);
        ok = n > 0 && block(der + at, n, "CERTIFICATE", out, cap, &used);
        at += n;
    }
    if (!ok && cap > 0)
        out[0] = '\0';
    return ok;
}

bool iotd_esp__pem_key(const uint8_t *der, size_t len, char *out, size_t cap)
{
    size_t used = 0;
    bool ok = cap > 0 && len > 0 && iotd_esp__der_seq_len(der, len) == len &&
              block(der, len, "EC PRIVATE KEY", out, cap, &used);

    if (!ok && cap > 0)
        out[0] = '\0';
    return ok;
}

/* Printable ASCII without `forbidden` (0: none), at least one character. */
static bool printable(const char *s, char forbidden)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == forbidden)
            return false;
    }
    return true;
}

bool iotd_esp__basic_auth(char *out, size_t cap, const char *user, const char *password)
{
    char joined[IOTD_ESP_AUTH_MAX];
    size_t u = 0, p = 0, w = 0;
    bool ok = cap > 6 && printable(user, ':') && printable(password, 0);

    if (ok) {
        u = strlen(user);
        p = strlen(password);
        ok = u + 1 + p < sizeof(joined);
    }
    if (ok) {
        memcpy(joined, user, u);
        joined[u] = ':';
        memcpy(joined + u + 1, password, p);
        memcpy(out, "Basic ", 6);
        ok =
            iotd_base64_encode((const uint8_t *)joined, u + 1 + p, out + 6, cap - 6, &w) == IOTD_OK;
        memset(joined, 0, sizeof(joined)); /* the token */
    }
    if (!ok && cap > 0)
        out[0] = '\0';
    return ok;
}
