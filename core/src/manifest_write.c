/* The firmware manifest's writer, for the signing tool (iotctl): the
 * signed part from the fields, then the signature line. Not linked by the
 * device, which only reads manifests (manifest.c). */
#include <string.h>

#include "iotd/manifest.h"
#include "manifest_internal.h"

#define SECONDS_PER_DAY 86400

typedef iotd__manifest_field field;

/* ---- writing --------------------------------------------------------------------- */

/* An append-only buffer that remembers running out of room. */
typedef struct writer {
    char *buf;
    size_t cap, len;
    bool full;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_str(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_u64(writer *w, uint64_t v)
{
    char digits[20];
    size_t n = 0;

    do {
        digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(w, digits + sizeof(digits) - n, n);
}

/* n decimal digits, zero-padded. */
static void put_padded(writer *w, int64_t v, size_t n)
{
    char digits[4];

    for (size_t i = n; i > 0; i--) {
        digits[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    put(w, digits, n);
}

static void put_hex(writer *w, const uint8_t *bytes, size_t n)
{
    static const char HEX[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        char pair[2] = {HEX[bytes[i] >> 4], HEX[bytes[i] & 15]};
        put(w, pair, 2);
    }
}

static void put_name(writer *w, field f)
{
    put_str(w, iotd__manifest_field_names[f]);
    put(w, ": ", 2);
}

/* Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" (H. Hinnant's civil_from_days). */
static void put_utc(writer *w, int64_t t)
{
    int64_t days = t / SECONDS_PER_DAY, secs = t % SECONDS_PER_DAY;
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);

    put_padded(w, year, 4);
    put(w, "-", 1);
    put_padded(w, month, 2);
    put(w, "-", 1);
    put_padded(w, day, 2);
    put(w, "T", 1);
    put_padded(w, secs / 3600, 2);
    put(w, ":", 1);
    put_padded(w, secs / 60 % 60, 2);
    put(w, ":", 1);
    put_padded(w, secs % 60, 2);
    put(w, "Z", 1);
}

/* The latest time not-after can be written: 9999-12-31T23:59:59Z. */
#define NOT_AFTER_MAX INT64_C(253402300799)

static bool fields_valid(const iotd_manifest *m)
{
    return m->manifest_version == IOTD_MANIFEST_VERSION && m->sequence >= 1 &&
           m->sequence <= (uint64_t)INT64_MAX && iotd__manifest_id_valid(m->vendor_id) &&
           iotd__manifest_id_valid(m->class_id) && iotd__manifest_version_valid(m->version) &&
           m->image_size >= 1 && iotd__manifest_uri_valid(m->image_uri) &&
           (!m->has_not_after || (m->not_after >= 0 && m->not_after <= NOT_AFTER_MAX));
}

iotd_status iotd_manifest_format_signed_part(const iotd_manifest *m, char *buf, size_t cap,
                                             size_t *len)
{
    writer w = {buf, cap, 0, false};

    if (!fields_valid(m))
        return IOTD_EINVAL;
    put_name(&w, F_MANIFEST_VERSION);
    put_u64(&w, m->manifest_version);
    put_str(&w, "\n");
    put_name(&w, F_SEQUENCE);
    put_u64(&w, m->sequence);
    put_str(&w, "\n");
    put_name(&w, F_VENDOR);
    put_str(&w, m->vendor_id);
    put_str(&w, "\n");
    put_name(&w, F_CLASS);
    put_str(&w, m->class_id);
    put_str(&w, "\n");
    put_name(&w, F_VERSION);
    put_str(&w, m->version);
    put_str(&w, "\n");
    put_name(&w, F_SECURE_VERSION);
    put_u64(&w, m->secure_version);
    put_str(&w, "\n");
    put_name(&w, F_IMAGE_SIZE);
    put_u64(&w, m->image_size);
    put_str(&w, "\n");
    put_name(&w, F_IMAGE_DIGEST);
    put_str(&w, IOTD__MANIFEST_DIGEST_PREFIX);
    put_hex(&w, m->image_digest, IOTD_MANIFEST_DIGEST_LEN);
    put_str(&w, "\n");
    put_name(&w, F_IMAGE_URI);
    put_str(&w, m->image_uri);
    put_str(&w, "\n");
    if (m->has_not_after) {
        put_name(&w, F_NOT_AFTER);
        put_utc(&w, m->not_after);
        put_str(&w, "\n");
    }
    put_name(&w, F_KEY_ID);
    put_hex(&w, m->key_id, IOTD_MANIFEST_KEY_ID_LEN);
    put_str(&w, "\n");
    if (w.full)
        return IOTD_ENOSPC;
    *len = w.len;
    return IOTD_OK;
}

iotd_status iotd_manifest_append_signature(const uint8_t sig[IOTD_MANIFEST_SIG_LEN], char *buf,
                                           size_t cap, size_t *len)
{
    writer w = {buf, cap, *len, *len > cap};

    put_name(&w, F_SIGNATURE);
    put_str(&w, IOTD__MANIFEST_SIGNATURE_PREFIX);
    put_hex(&w, sig, IOTD_MANIFEST_SIG_LEN);
    put_str(&w, "\n");
    if (w.full)
        return IOTD_ENOSPC;
    *len = w.len;
    return IOTD_OK;
}
