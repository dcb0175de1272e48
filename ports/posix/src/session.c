#include "iotd_posix/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "iot/fsutil.h"
#include "iotd/tls_session.h"

#if MBEDTLS_VERSION_MAJOR >= 3
#define SESSION_MASTER(s)      ((s)->MBEDTLS_PRIVATE(master))
#define SHA256_STARTS(c)       mbedtls_sha256_starts((c), 0)
#define SHA256_UPDATE(c, p, n) mbedtls_sha256_update((c), (p), (n))
#define SHA256_FINISH(c, out)  mbedtls_sha256_finish((c), (out))
#else
#define SESSION_MASTER(s)      ((s)->master)
#define SHA256_STARTS(c)       mbedtls_sha256_starts_ret((c), 0)
#define SHA256_UPDATE(c, p, n) mbedtls_sha256_update_ret((c), (p), (n))
#define SHA256_FINISH(c, out)  mbedtls_sha256_finish_ret((c), (out))
#endif

/* The file: the core's record (iotd/tls_session.h) around the serialized
 * session. */
#define RECORD_MAX (IOTD_TLS_RECORD_OVERHEAD + IOTD_POSIX_SESSION_MAX)

static void load(iotd_posix_session *ss)
{
    char *buf = NULL;
    size_t len = 0;
    const uint8_t *session = NULL;
    size_t session_len = 0;
    iot_err err = {0};
    if (iot_file_read(ss->path, RECORD_MAX, &buf, &len, &err) != IOT_OK)
        return; /* none yet */
    /* Damaged, or made under another certificate, CA or CRL: not offered,
     * and replaced by the next session kept. */
    ss->have = iotd_tls_record_open((const uint8_t *)buf, len, ss->cert_hash,
                                    IOTD_POSIX_SESSION_MAX, &session, &session_len) == IOTD_OK &&
               mbedtls_ssl_session_load(&ss->kept, session, session_len) == 0;
    if (!ss->have) {
        mbedtls_ssl_session_free(&ss->kept);
        mbedtls_ssl_session_init(&ss->kept);
    }
    mbedtls_platform_zeroize(buf, len);
    free(buf);
}

static void save(const iotd_posix_session *ss)
{
    unsigned char buf[RECORD_MAX];
    size_t len = 0;
    iot_err err = {0};
    /* Serialized in place, then packed around. */
    if (mbedtls_ssl_session_save(&ss->kept, buf + IOTD_TLS_RECORD_HEAD, IOTD_POSIX_SESSION_MAX,
                                 &len) == 0 &&
        iotd_tls_record_pack(ss->cert_hash, buf + IOTD_TLS_RECORD_HEAD, len, buf, sizeof(buf),
                             &len) == IOTD_OK)
        (void)iot_file_replace(ss->path, buf, len, 0600, &err);
    else
        (void)unlink(ss->path); /* too large to keep: the next wake-up is a full handshake */
    mbedtls_platform_zeroize(buf, sizeof(buf));
}

static iotd_status sha_begin(void *ctx)
{
    return SHA256_STARTS((mbedtls_sha256_context *)ctx) == 0 ? IOTD_OK : IOTD_EIO;
}

static iotd_status sha_update(void *ctx, const void *data, size_t len)
{
    return SHA256_UPDATE((mbedtls_sha256_context *)ctx, data, len) == 0 ? IOTD_OK : IOTD_EIO;
}

static iotd_status sha_finish(void *ctx, uint8_t out[IOTD_TLS_BINDING_LEN])
{
    return SHA256_FINISH((mbedtls_sha256_context *)ctx, out) == 0 ? IOTD_OK : IOTD_EIO;
}

/* What a session is valid with: the device's certificate (a renewal
 * starts anew), and the CAs and CRL the gateway's certificate was checked
 * against (a resumption checks nothing, so a new CRL, which may revoke the
 * gateway's certificate, or a new CA, needs a full handshake). */
static bool bind(iotd_posix_session *ss, const mbedtls_x509_crt *own, const mbedtls_x509_crt *ca,
                 const mbedtls_x509_crl *crl)
{
    mbedtls_sha256_context h;
    const iotd_sha256_ops ops = {&h, sha_begin, sha_update, sha_finish};
    iotd_tls_binder b;

    mbedtls_sha256_init(&h);
    iotd_tls_bind_begin(&b, &ops);
    for (const mbedtls_x509_crt *c = own; c != NULL && c->raw.p != NULL; c = c->next)
        iotd_tls_bind_add(&b, IOTD_TLS_PART_OWN_CERT, c->raw.p, c->raw.len);
    for (const mbedtls_x509_crt *c = ca; c != NULL && c->raw.p != NULL; c = c->next)
        iotd_tls_bind_add(&b, IOTD_TLS_PART_CA, c->raw.p, c->raw.len);
    for (const mbedtls_x509_crl *c = crl; c != NULL && c->raw.p != NULL; c = c->next)
        iotd_tls_bind_add(&b, IOTD_TLS_PART_CRL, c->raw.p, c->raw.len);
    iotd_status st = iotd_tls_bind_finish(&b, ss->cert_hash);
    mbedtls_sha256_free(&h);
    return st == IOTD_OK;
}

void iotd_posix_session_init(iotd_posix_session *ss, const char *path, const mbedtls_x509_crt *own,
                             const mbedtls_x509_crt *ca, const mbedtls_x509_crl *crl)
{
    memset(ss, 0, sizeof(*ss));
    mbedtls_ssl_session_init(&ss->kept);
    if (own == NULL || own->raw.p == NULL)
        return;
    ss->bound = bind(ss, own, ca, crl);
    if (!ss->bound || path == NULL || path[0] == '\0' || strlen(path) >= sizeof(ss->path))
        return;
    memcpy(ss->path, path, strlen(path) + 1);
    load(ss);
}

void iotd_posix_session_offer(iotd_posix_session *ss, mbedtls_ssl_context *ssl)
{
    if (ss->have && mbedtls_ssl_set_session(ssl, &ss->kept) != 0)
        iotd_posix_session_forget(ss);
}

bool iotd_posix_session_keep(iotd_posix_session *ss, const mbedtls_ssl_context *ssl)
{
    if (!ss->bound)
        return false;
    mbedtls_ssl_session fresh;
    mbedtls_ssl_session_init(&fresh);
    bool resumed = false;
    if (mbedtls_ssl_get_session(ssl, &fresh) != 0) {
        mbedtls_ssl_session_free(&fresh);
        iotd_posix_session_forget(ss);
        return false;
    }
    /* A resumed session keeps its master secret; a full handshake makes a
     * new one. */
    resumed = ss->have && memcmp(SESSION_MASTER(&fresh), SESSION_MASTER(&ss->kept),
                                 sizeof(SESSION_MASTER(&fresh))) == 0;
    mbedtls_ssl_session_free(&ss->kept);
    ss->kept = fresh;
    ss->have = true;
    if (ss->path[0] != '\0')
        save(ss);
    return resumed;
}

void iotd_posix_session_forget(iotd_posix_session *ss)
{
    if (ss->have) {
        mbedtls_ssl_session_free(&ss->kept);
        mbedtls_ssl_session_init(&ss->kept);
    }
    ss->have = false;
    if (ss->path[0] != '\0')
        (void)unlink(ss->path);
}

void iotd_posix_session_free(iotd_posix_session *ss)
{
    mbedtls_ssl_session_free(&ss->kept);
    mbedtls_platform_zeroize(ss, sizeof(*ss));
}
