#include "iotd/tls_session.h"

#include <string.h>

#include "iotd/record.h"

#define HEAD_LEN IOTD_TLS_RECORD_HEAD

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void iotd_tls_bind_begin(iotd_tls_binder *b, const iotd_sha256_ops *hash)
{
    b->hash = hash;
    b->st = hash == NULL ? IOTD_EINVAL : hash->begin(hash->ctx);
}

void iotd_tls_bind_add(iotd_tls_binder *b, iotd_tls_part kind, const void *data, size_t len)
{
    uint8_t head[5];

    if (b->st != IOTD_OK)
        return;
    if (len > UINT32_MAX || (data == NULL && len > 0)) {
        b->st = IOTD_EINVAL;
        return;
    }
    head[0] = (uint8_t)kind;
    put_u32(head + 1, (uint32_t)len);
    b->st = b->hash->update(b->hash->ctx, head, sizeof(head));
    if (b->st == IOTD_OK && len > 0)
        b->st = b->hash->update(b->hash->ctx, data, len);
}

iotd_status iotd_tls_bind_finish(iotd_tls_binder *b, uint8_t out[IOTD_TLS_BINDING_LEN])
{
    if (b->st == IOTD_OK)
        b->st = b->hash->finish(b->hash->ctx, out);
    if (b->st != IOTD_OK)
        memset(out, 0, IOTD_TLS_BINDING_LEN);
    return b->st;
}

size_t iotd_tls_record_size(size_t session_len)
{
    if (session_len > UINT32_MAX - IOTD_TLS_RECORD_OVERHEAD)
        return 0;
    return session_len + IOTD_TLS_RECORD_OVERHEAD;
}

iotd_status iotd_tls_record_pack(const uint8_t binding[IOTD_TLS_BINDING_LEN],
                                 const uint8_t *session, size_t session_len, uint8_t *out,
                                 size_t cap, size_t *out_len)
{
    size_t need = iotd_tls_record_size(session_len);

    if (binding == NULL || session == NULL || out == NULL || out_len == NULL)
        return IOTD_EINVAL;
    *out_len = 0;
    if (need == 0 || need > cap) {
        memset(out, 0, cap < HEAD_LEN ? cap : HEAD_LEN);
        return IOTD_ENOSPC;
    }
    put_u32(out, IOTD_TLS_RECORD_MAGIC);
    put_u32(out + 4, (uint32_t)session_len);
    memcpy(out + 8, binding, IOTD_TLS_BINDING_LEN);
    memmove(out + HEAD_LEN, session, session_len);
    put_u32(out + HEAD_LEN + session_len, iotd_crc32(out, HEAD_LEN + session_len));
    *out_len = need;
    return IOTD_OK;
}

/* Constant time: the binding is no secret, but nothing is lost by it. */
static int differ(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d = (uint8_t)(d | (a[i] ^ b[i]));
    return d != 0;
}

iotd_status iotd_tls_record_open(const uint8_t *rec, size_t rec_len,
                                 const uint8_t binding[IOTD_TLS_BINDING_LEN], size_t max_session,
                                 const uint8_t **session, size_t *session_len)
{
    if (rec == NULL || binding == NULL || session == NULL || session_len == NULL)
        return IOTD_EINVAL;
    *session = NULL;
    *session_len = 0;
    if (rec_len < IOTD_TLS_RECORD_OVERHEAD)
        return IOTD_ECORRUPT;
    uint32_t magic = get_u32(rec);
    if (magic == 0)
        return IOTD_ENOENT;
    size_t len = get_u32(rec + 4);
    if (magic != IOTD_TLS_RECORD_MAGIC || len > max_session ||
        len > rec_len - IOTD_TLS_RECORD_OVERHEAD)
        return IOTD_ECORRUPT;
    if (get_u32(rec + HEAD_LEN + len) != iotd_crc32(rec, HEAD_LEN + len))
        return IOTD_ECORRUPT;
    if (differ(rec + 8, binding, IOTD_TLS_BINDING_LEN))
        return IOTD_ESTATE;
    *session = rec + HEAD_LEN;
    *session_len = len;
    return IOTD_OK;
}
