#include "iotd_posix/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "iot/fsutil.h"

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

#define HASH_LEN 32

static void load(iotd_posix_session *ss)
{
    char *buf = NULL;
    size_t len = 0;
    iot_err err = {0};
    if (iot_file_read(ss->path, HASH_LEN + IOTD_POSIX_SESSION_MAX, &buf, &len, &err) != IOT_OK)
        return; /* none yet */
    ss->have = len > HASH_LEN && memcmp(buf, ss->cert_hash, HASH_LEN) == 0 &&
               mbedtls_ssl_session_load(&ss->kept, (const unsigned char *)buf + HASH_LEN,
                                        len - HASH_LEN) == 0;
    if (!ss->have) {
        mbedtls_ssl_session_free(&ss->kept);
        mbedtls_ssl_session_init(&ss->kept);
    }
    mbedtls_platform_zeroize(buf, len);
    free(buf);
}

static void save(const iotd_posix_session *ss)
{
    unsigned char buf[HASH_LEN + IOTD_POSIX_SESSION_MAX];
    size_t len = 0;
    iot_err err = {0};
    memcpy(buf, ss->cert_hash, HASH_LEN);
    if (mbedtls_ssl_session_save(&ss->kept, buf + HASH_LEN, sizeof(buf) - HASH_LEN, &len) == 0)
        (void)iot_file_replace(ss->path, buf, HASH_LEN + len, 0600, &err);
    else
        (void)unlink(ss->path); /* too large to keep: the next wake-up is a full handshake */
    mbedtls_platform_zeroize(buf, sizeof(buf));
}

/* What a session is valid with: the device's certificate (a renewal
 * starts anew), and the CAs and CRL the gateway's certificate was checked
 * against (a resumption checks nothing, so a new CRL, which may revoke the
 * gateway's certificate, or a new CA, needs a full handshake). */
static bool bind(iotd_posix_session *ss, const mbedtls_x509_crt *own, const mbedtls_x509_crt *ca,
                 const mbedtls_x509_crl *crl)
{
    mbedtls_sha256_context h;
    int rc;
    mbedtls_sha256_init(&h);
    rc = SHA256_STARTS(&h);
    for (const mbedtls_x509_crt *c = own; rc == 0 && c != NULL && c->raw.p != NULL; c = c->next)
        rc = SHA256_UPDATE(&h, c->raw.p, c->raw.len);
    for (const mbedtls_x509_crt *c = ca; rc == 0 && c != NULL && c->raw.p != NULL; c = c->next)
        rc = SHA256_UPDATE(&h, c->raw.p, c->raw.len);
    for (const mbedtls_x509_crl *c = crl; rc == 0 && c != NULL && c->raw.p != NULL; c = c->next)
        rc = SHA256_UPDATE(&h, c->raw.p, c->raw.len);
    if (rc == 0)
        rc = SHA256_FINISH(&h, ss->cert_hash);
    mbedtls_sha256_free(&h);
    return rc == 0;
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
