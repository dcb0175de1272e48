/* The firmware manifest's rules: parsing and verification, which the device
 * links. manifest.h has the format; the writer the signing tool uses is
 * manifest_write.c, kept out of the device. */
#include "iotd/manifest.h"

#include <string.h>

#include "iotd/protocol.h"
#include "manifest_internal.h"

#define DIGEST_PREFIX    IOTD__MANIFEST_DIGEST_PREFIX
#define SIGNATURE_PREFIX IOTD__MANIFEST_SIGNATURE_PREFIX

typedef iotd__manifest_field field;

const char *const iotd__manifest_field_names[F_COUNT] = {
    "manifest-version", "sequence-number", "vendor-id",      "class-id",
    "version",          "secure-version",  "image-size",     "image-digest",
    "image-uri",        "not-after",       "signing-key-id", "signature",
};

static const char *const RESULT_NAMES[IOTD_MANIFEST_RESULT_COUNT] = {
    "ok",          "malformed",    "unsupported", "unknown_key", "bad_signature", "wrong_vendor",
    "wrong_class", "old_sequence", "rollback",    "too_large",   "expired",       "crypto_error",
};

const char *iotd_manifest_result_name(iotd_manifest_result r)
{
    return (unsigned)r < (unsigned)IOTD_MANIFEST_RESULT_COUNT ? RESULT_NAMES[r] : "?";
}

/* ---- values ------------------------------------------------------------------ */

/* len bytes at p, not NUL-terminated. */
typedef struct span {
    const char *p;
    size_t len;
} span;

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Lower-case hex only: the format has one spelling of each document. */
static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decimal, no sign, no leading zero ("0" itself where min is 0), min..max. */
static bool parse_decimal(span v, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;

    if (v.len == 0 || v.len > 20 || (v.p[0] == '0' && v.len > 1))
        return false;
    for (size_t i = 0; i < v.len; i++) {
        if (!is_digit(v.p[i]))
            return false;
        unsigned d = (unsigned)(v.p[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    if (n < min || n > max)
        return false;
    *out = n;
    return true;
}

/* prefix, then exactly 2n lower-case hex digits. */
static bool parse_hex(span v, const char *prefix, uint8_t *out, size_t n)
{
    size_t pl = strlen(prefix);

    if (v.len != pl + 2 * n || memcmp(v.p, prefix, pl) != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(v.p[pl + 2 * i]);
        int lo = hex_value(v.p[pl + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return true;
}

/* v into dst (max + 1 bytes), NUL-terminated. */
static bool copy_text(span v, char *dst, size_t max)
{
    if (v.len == 0 || v.len > max)
        return false;
    memcpy(dst, v.p, v.len);
    dst[v.len] = '\0';
    return true;
}

bool iotd__manifest_id_valid(const char *s)
{
    return iotd_protocol_device_id_check(s, NULL) == IOTD_PROTOCOL_OK;
}

bool iotd__manifest_version_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > IOTD_MANIFEST_FW_VERSION_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '+' && s[i] != '-')
            return false;
    return true;
}

static bool is_uri_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

/* One segment of a path: not empty, not "." or "..". */
static bool valid_segment(const char *p, size_t n)
{
    return n != 0 && !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.');
}

/* A path of segments of [A-Za-z0-9._-], each valid_segment. */
bool iotd__manifest_uri_valid(const char *s)
{
    size_t len = strlen(s), start = 1;

    if (len == 0 || len > IOTD_MANIFEST_URI_MAX || s[0] != '/')
        return false;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && s[i] != '/') {
            if (!is_uri_char(s[i]))
                return false;
            continue;
        }
        if (!valid_segment(s + start, i - start))
            return false;
        start = i + 1;
    }
    return true;
}

/* ---- parsing ------------------------------------------------------------------- */

static bool set_number(field f, span v, iotd_manifest *m)
{
    uint64_t n = 0;

    if (f == F_SEQUENCE && parse_decimal(v, 1, (uint64_t)INT64_MAX, &n)) {
        m->sequence = n;
        return true;
    }
    if (f == F_SECURE_VERSION && parse_decimal(v, 0, UINT32_MAX, &n)) {
        m->secure_version = (uint32_t)n;
        return true;
    }
    if (f == F_IMAGE_SIZE && parse_decimal(v, 1, UINT32_MAX, &n)) {
        m->image_size = (uint32_t)n;
        return true;
    }
    return false;
}

/* The fields that are text, copied and then checked. */
static bool set_text(field f, span v, iotd_manifest *m)
{
    if (f == F_VENDOR)
        return copy_text(v, m->vendor_id, IOTD_MANIFEST_ID_MAX) &&
               iotd__manifest_id_valid(m->vendor_id);
    if (f == F_CLASS)
        return copy_text(v, m->class_id, IOTD_MANIFEST_ID_MAX) &&
               iotd__manifest_id_valid(m->class_id);
    if (f == F_VERSION)
        return copy_text(v, m->version, IOTD_MANIFEST_FW_VERSION_MAX) &&
               iotd__manifest_version_valid(m->version);
    if (f == F_IMAGE_URI)
        return copy_text(v, m->image_uri, IOTD_MANIFEST_URI_MAX) &&
               iotd__manifest_uri_valid(m->image_uri);
    return false;
}

static bool set_field(field f, span v, iotd_manifest *m)
{
    switch (f) {
    case F_VENDOR:
    case F_CLASS:
    case F_VERSION:
    case F_IMAGE_URI:
        return set_text(f, v, m);
    case F_IMAGE_DIGEST:
        return parse_hex(v, DIGEST_PREFIX, m->image_digest, IOTD_MANIFEST_DIGEST_LEN);
    case F_NOT_AFTER:
        m->has_not_after = iotd_protocol_utc_time(v.p, v.len, &m->not_after);
        return m->has_not_after;
    case F_KEY_ID:
        return parse_hex(v, "", m->key_id, IOTD_MANIFEST_KEY_ID_LEN);
    case F_SIGNATURE:
        return parse_hex(v, SIGNATURE_PREFIX, m->signature, IOTD_MANIFEST_SIG_LEN);
    case F_SEQUENCE:
    case F_SECURE_VERSION:
    case F_IMAGE_SIZE:
        return set_number(f, v, m);
    case F_MANIFEST_VERSION: /* read by the caller: it decides the format */
    case F_COUNT:
        break;
    }
    return false;
}

/* The line at pos: "name: value" up to an LF, printable ASCII only (so no
 * NUL or control byte can hide in a value). *next is past the LF. */
static bool split_line(const char *text, size_t len, size_t pos, span *name, span *value,
                       size_t *next)
{
    size_t colon = 0;

    for (size_t i = pos; i < len; i++) {
        char c = text[i];
        if (c == '\n') {
            if (colon == 0 || colon + 1 >= i || text[colon + 1] != ' ')
                return false;
            *name = (span){text + pos, colon - pos};
            *value = (span){text + colon + 2, i - colon - 2};
            *next = i + 1;
            return true;
        }
        if (c < 0x20 || c > 0x7e)
            return false;
        if (c == ':' && colon == 0)
            colon = i;
    }
    return false; /* no LF: the text ends inside a line */
}

/* The field named `name`, expected at `next` or later: only an optional
 * field may be left out. F_COUNT for any other name. */
static field match(span name, field next)
{
    for (int i = (int)next; i < F_COUNT; i++) {
        const char *want = iotd__manifest_field_names[i];
        if (strlen(want) == name.len && memcmp(want, name.p, name.len) == 0)
            return (field)i;
        if (i != F_NOT_AFTER)
            break;
    }
    return F_COUNT;
}

/* The line at *pos, expected to be field *next or a later optional one:
 * OK (and *pos, *next past it), MALFORMED or UNSUPPORTED. */
static iotd_manifest_result parse_line(const char *text, size_t len, size_t *pos, field *next,
                                       iotd_manifest *out)
{
    span name, value;
    size_t after = 0;
    uint64_t version = 0;

    if (!split_line(text, len, *pos, &name, &value, &after))
        return IOTD_MANIFEST_MALFORMED;
    field f = match(name, *next);
    if (f == F_COUNT)
        return IOTD_MANIFEST_MALFORMED;
    if (f == F_SIGNATURE)
        out->signed_len = *pos;
    if (f == F_MANIFEST_VERSION) {
        if (!parse_decimal(value, 0, UINT32_MAX, &version))
            return IOTD_MANIFEST_MALFORMED;
        out->manifest_version = (uint32_t)version;
        if (version != IOTD_MANIFEST_VERSION)
            return IOTD_MANIFEST_UNSUPPORTED; /* what follows may be another format */
    } else if (!set_field(f, value, out)) {
        return IOTD_MANIFEST_MALFORMED;
    }
    *next = (field)(f + 1);
    *pos = after;
    return IOTD_MANIFEST_OK;
}

iotd_manifest_result iotd_manifest_parse(const char *text, size_t len, iotd_manifest *out,
                                         unsigned *line)
{
    iotd_manifest_result r = IOTD_MANIFEST_MALFORMED;
    size_t pos = 0;
    unsigned ln = 0;
    field next = F_MANIFEST_VERSION;

    memset(out, 0, sizeof(*out));
    if (text == NULL || len > IOTD_MANIFEST_MAX)
        goto out;
    while (pos < len && next < F_COUNT) {
        ln++;
        r = parse_line(text, len, &pos, &next, out);
        if (r != IOTD_MANIFEST_OK)
            goto out;
    }
    r = IOTD_MANIFEST_MALFORMED;
    if (next != F_COUNT) {
        ln = 0; /* the text ended before the signature */
        goto out;
    }
    if (pos != len) {
        ln++; /* something after the signature */
        goto out;
    }
    r = IOTD_MANIFEST_OK;
out:
    if (line != NULL)
        *line = r == IOTD_MANIFEST_MALFORMED ? ln : 0;
    return r;
}

/* ---- verification ---------------------------------------------------------------- */

static const iotd_manifest_key *find_key(const iotd_manifest_policy *policy,
                                         const uint8_t id[IOTD_MANIFEST_KEY_ID_LEN])
{
    for (size_t i = 0; i < policy->n_keys; i++)
        if (memcmp(policy->keys[i].id, id, IOTD_MANIFEST_KEY_ID_LEN) == 0)
            return &policy->keys[i];
    return NULL;
}

/* The rules of the device or release, once the signature is known good. */
static iotd_manifest_result check_policy(const iotd_manifest *m, const iotd_manifest_policy *p)
{
    if (p->vendor_id != NULL && strcmp(p->vendor_id, m->vendor_id) != 0)
        return IOTD_MANIFEST_WRONG_VENDOR;
    if (p->class_id != NULL && strcmp(p->class_id, m->class_id) != 0)
        return IOTD_MANIFEST_WRONG_CLASS;
    if (m->sequence <= p->last_sequence)
        return IOTD_MANIFEST_OLD_SEQUENCE;
    if (m->secure_version < p->secure_version)
        return IOTD_MANIFEST_ROLLBACK;
    if (p->slot_size != 0 && m->image_size > p->slot_size)
        return IOTD_MANIFEST_TOO_LARGE;
    if (p->has_now && m->has_not_after && p->now > m->not_after)
        return IOTD_MANIFEST_EXPIRED;
    return IOTD_MANIFEST_OK;
}

iotd_manifest_result iotd_manifest_verify(const char *text, size_t len,
                                          const iotd_manifest_policy *policy,
                                          const iotd_manifest_crypto *crypto, iotd_manifest *out)
{
    uint8_t digest[IOTD_MANIFEST_DIGEST_LEN];
    iotd_manifest_result r = iotd_manifest_parse(text, len, out, NULL);

    if (r != IOTD_MANIFEST_OK)
        return r;
    const iotd_manifest_key *key = find_key(policy, out->key_id);
    if (key == NULL)
        return IOTD_MANIFEST_UNKNOWN_KEY;
    if (crypto->sha256(crypto->ctx, text, out->signed_len, digest) != IOTD_OK)
        return IOTD_MANIFEST_CRYPTO_ERROR;
    iotd_status st = crypto->p256_verify(crypto->ctx, key->pub, digest, out->signature);
    if (st == IOTD_EINVAL)
        return IOTD_MANIFEST_BAD_SIGNATURE;
    if (st != IOTD_OK)
        return IOTD_MANIFEST_CRYPTO_ERROR;
    return check_policy(out, policy);
}

iotd_status iotd_manifest_key_id(const iotd_manifest_crypto *crypto,
                                 const uint8_t pub[IOTD_MANIFEST_PUBKEY_LEN],
                                 uint8_t id[IOTD_MANIFEST_KEY_ID_LEN])
{
    uint8_t digest[IOTD_MANIFEST_DIGEST_LEN];
    iotd_status st = crypto->sha256(crypto->ctx, pub, IOTD_MANIFEST_PUBKEY_LEN, digest);

    if (st == IOTD_OK)
        memcpy(id, digest, IOTD_MANIFEST_KEY_ID_LEN);
    return st;
}
