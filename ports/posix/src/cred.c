/* See iotd_posix/cred.h. */
#include "iotd_posix/cred.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/pem.h>
#include <mbedtls/x509_crt.h>

#include "iot/fsutil.h"
#include "iotd_mbedtls/cred_crypto.h"
#include "iotd_posix/https.h"

#define FILE_MAX  32768
#define PEM_MAX   (FILE_MAX + 4096)
#define KEY_BEGIN "-----BEGIN EC PRIVATE KEY-----\n"
#define KEY_END   "-----END EC PRIVATE KEY-----\n"
#define CRT_BEGIN "-----BEGIN CERTIFICATE-----\n"
#define CRT_END   "-----END CERTIFICATE-----\n"

int iotd_posix_cred_init(iotd_posix_cred *c, const iotd_posix_cred_config *cfg)
{
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
    int a = snprintf(c->active, sizeof(c->active), "%s/device.pem", cfg->state_dir);
    int b = snprintf(c->candidate, sizeof(c->candidate), "%s/candidate.pem", cfg->state_dir);
    int d = snprintf(c->cacerts, sizeof(c->cacerts), "%s/cacerts.pem", cfg->state_dir);
    return a < 0 || b < 0 || d < 0 || (size_t)a >= sizeof(c->active) ||
                   (size_t)b >= sizeof(c->candidate) || (size_t)d >= sizeof(c->cacerts)
               ? -1
               : 0;
}

/* The whole file, NUL-terminated (the caller frees it): IOTD_ENOENT when
 * it does not exist. */
static iotd_status load(const char *path, char **data, size_t *len)
{
    iot_err err = {0};
    if (access(path, F_OK) != 0)
        return errno == ENOENT ? IOTD_ENOENT : IOTD_EIO;
    return iot_file_read(path, FILE_MAX, data, len, &err) == IOT_OK ? IOTD_OK : IOTD_EIO;
}

static iotd_status store(const char *path, const char *data, size_t len)
{
    iot_err err = {0};
    return iot_file_replace(path, data, len, 0600, &err) == IOT_OK ? IOTD_OK : IOTD_EIO;
}

/* ---- keys -------------------------------------------------------------------- */

static iotd_status key_generate(void *ctx)
{
    iotd_posix_cred *c = ctx;
    uint8_t der[IOTD_MBEDTLS_KEY_DER_MAX];
    unsigned char pem[512];
    size_t n = 0, olen = 0;
    iotd_status st = iotd_mbedtls_key_generate(der, sizeof(der), &n);
    if (st != IOTD_OK)
        return st;
    if (mbedtls_pem_write_buffer(KEY_BEGIN, KEY_END, der, n, pem, sizeof(pem), &olen) != 0)
        return IOTD_EIO;
    return store(c->candidate, (const char *)pem, strlen((const char *)pem));
}

static iotd_status csr_make(void *ctx, uint8_t *der, size_t cap, size_t *len)
{
    iotd_posix_cred *c = ctx;
    char *key = NULL;
    size_t n = 0;
    iotd_status st = load(c->candidate, &key, &n);
    if (st == IOTD_OK)
        st = iotd_mbedtls_csr((const uint8_t *)key, n + 1u, c->cfg.device_id, der, cap, len);
    if (st == IOTD_EINVAL)
        st = IOTD_ENOENT; /* no key in the file */
    free(key);
    return st;
}

/* ---- slots --------------------------------------------------------------------- */

static iotd_status cert_info(void *ctx, iotd_cred_slot slot, iotd_cert_info *info)
{
    iotd_posix_cred *c = ctx;
    char *data = NULL;
    size_t n = 0;
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    iotd_status st = load(slot == IOTD_CRED_ACTIVE ? c->active : c->candidate, &data, &n);
    if (st != IOTD_OK)
        goto out;
    if (strstr(data, CRT_BEGIN) == NULL) {
        st = IOTD_ENOENT;
        goto out;
    }
    st = mbedtls_x509_crt_parse(&crt, (const unsigned char *)data, n + 1u) != 0
             ? IOTD_ECORRUPT
             : iotd_mbedtls_cert_validity(crt.raw.p, crt.raw.len, info);
out:
    mbedtls_x509_crt_free(&crt);
    free(data);
    return st;
}

/* Appends the certificates of a PKCS#7 from index `from` to out as PEM. */
static iotd_status append_certs(const uint8_t *p7, size_t len, size_t from, char *out, size_t cap,
                                size_t *used)
{
    const uint8_t *crt = NULL;
    size_t crt_len = 0, olen = 0;
    iotd_status st;
    for (size_t i = from; (st = iotd_mbedtls_pkcs7_cert(p7, len, i, &crt, &crt_len)) == IOTD_OK;
         i++) {
        if (mbedtls_pem_write_buffer(CRT_BEGIN, CRT_END, crt, crt_len, (unsigned char *)out + *used,
                                     cap - *used, &olen) != 0)
            return IOTD_ENOSPC;
        *used += olen - 1u; /* olen counts the NUL */
    }
    return st == IOTD_ENOENT ? IOTD_OK : st;
}

/* The key part of a slot file: up to the end of its PEM block. */
static size_t key_part(const char *data)
{
    const char *end = strstr(data, KEY_END);
    return end == NULL ? 0 : (size_t)(end - data) + strlen(KEY_END);
}

/* The CA certificates of the last cacerts answer, appended when the
 * enrollment answer has the device's certificate only. */
static void append_cacerts(const iotd_posix_cred *c, char *out, size_t cap, size_t *used)
{
    char *ca = NULL;
    size_t n = 0;
    if (load(c->cacerts, &ca, &n) == IOTD_OK && *used + n < cap) {
        memcpy(out + *used, ca, n);
        *used += n;
    }
    free(ca);
}

static iotd_status candidate_store(void *ctx, const uint8_t *p7, size_t len)
{
    iotd_posix_cred *c = ctx;
    char *key = NULL, *out = NULL;
    const uint8_t *crt = NULL;
    size_t n = 0, crt_len = 0, used = 0;
    iotd_status st = load(c->candidate, &key, &n);
    if (st != IOTD_OK)
        goto out;
    st = iotd_mbedtls_pkcs7_cert(p7, len, 0, &crt, &crt_len);
    if (st == IOTD_OK)
        st = iotd_mbedtls_cert_matches_key(crt, crt_len, (const uint8_t *)key, n + 1u);
    if (st != IOTD_OK) {
        st = st == IOTD_EIO ? st : IOTD_ECORRUPT;
        goto out;
    }
    out = malloc(PEM_MAX);
    used = key_part(key);
    if (out == NULL || used == 0) {
        st = out == NULL ? IOTD_EIO : IOTD_ENOENT;
        goto out;
    }
    memcpy(out, key, used);
    st = append_certs(p7, len, 0, out, PEM_MAX, &used);
    if (st == IOTD_OK && iotd_mbedtls_pkcs7_cert(p7, len, 1, &crt, &crt_len) == IOTD_ENOENT)
        append_cacerts(c, out, PEM_MAX, &used);
    if (st == IOTD_OK)
        st = store(c->candidate, out, used);
out:
    free(out);
    free(key);
    return st;
}

static iotd_status commit(void *ctx)
{
    iotd_posix_cred *c = ctx;
    iotd_cert_info info;
    iotd_status st = cert_info(c, IOTD_CRED_CANDIDATE, &info);
    if (st != IOTD_OK)
        return st == IOTD_ECORRUPT ? IOTD_EIO : st;
    return rename(c->candidate, c->active) == 0 ? IOTD_OK : IOTD_EIO;
}

static iotd_status candidate_drop(void *ctx)
{
    iotd_posix_cred *c = ctx;
    return unlink(c->candidate) == 0 || errno == ENOENT ? IOTD_OK : IOTD_EIO;
}

static iotd_status cacerts_store(void *ctx, const uint8_t *p7, size_t len)
{
    iotd_posix_cred *c = ctx;
    char *out = malloc(PEM_MAX);
    size_t used = 0;
    iotd_status st = out == NULL ? IOTD_EIO : append_certs(p7, len, 0, out, PEM_MAX, &used);
    if (st == IOTD_OK && used == 0)
        st = IOTD_ECORRUPT;
    if (st == IOTD_OK) {
        iot_err err = {0};
        st = iot_file_replace(c->cacerts, out, used, 0644, &err) == IOT_OK ? IOTD_OK : IOTD_EIO;
    }
    free(out);
    return st;
}

/* ---- transport -------------------------------------------------------------------- */

/* A TLS client with op's identity; NULL when op has none here. */
static iotd_posix_https *client_for(const iotd_posix_cred *c, iotd_est_op op, bool probe)
{
    iotd_posix_https_config hc = {
        .url = c->cfg.url,
        .ca_file = c->cfg.ca_file,
        .crl_file = c->cfg.crl_file,
        .connect_timeout_ms = c->cfg.connect_timeout_ms,
        .request_timeout_ms = c->cfg.request_timeout_ms,
    };
    if (probe || op == IOTD_EST_REENROLL) {
        hc.cert_file = hc.key_file = probe ? c->candidate : c->active;
        hc.device_id = c->cfg.device_id;
    } else if (op == IOTD_EST_ENROLL_BOOTSTRAP) {
        if (c->cfg.bootstrap_cert == NULL)
            return NULL;
        hc.cert_file = c->cfg.bootstrap_cert;
        hc.key_file = c->cfg.bootstrap_key;
    }
    if (op == IOTD_EST_ENROLL_TOKEN && c->cfg.token == NULL)
        return NULL;
    iotd_posix_https *h = malloc(sizeof(*h));
    iot_err err = {0};
    if (h == NULL || iotd_posix_https_init(h, &hc, &err) != IOT_OK) {
        free(h);
        return NULL;
    }
    if (op == IOTD_EST_ENROLL_TOKEN && !probe &&
        iotd_posix_https_set_basic_auth(h, c->cfg.device_id, c->cfg.token) != IOT_OK) {
        iotd_posix_https_free(h);
        free(h);
        return NULL;
    }
    return h;
}

static iotd_status get(iotd_posix_https *h, const char *path, char *resp, size_t cap,
                       iotd_http_result *r)
{
    iotd_get_result g;
    iotd_status st = iotd_posix_https_get(h, path, 0, 0, resp, cap, &g);
    memset(r, 0, sizeof(*r));
    r->status = g.status;
    r->has_retry_after = g.has_retry_after;
    r->retry_after_s = g.retry_after_s;
    r->body_len = g.body_len;
    return st;
}

static iotd_status est_request(void *ctx, iotd_est_op op, const char *body, size_t body_len,
                               char *resp, size_t cap, iotd_http_result *r)
{
    iotd_posix_cred *c = ctx;
    iotd_posix_https *h = client_for(c, op, false);
    iotd_status st;
    if (h == NULL)
        return IOTD_ENOENT;
    if (op == IOTD_EST_CACERTS)
        st = get(h, IOTD_EST_CACERTS_PATH, resp, cap, r);
    else
        st = iotd_posix_https_post(
            h, op == IOTD_EST_REENROLL ? IOTD_EST_REENROLL_PATH : IOTD_EST_ENROLL_PATH,
            IOTD_EST_CSR_TYPE, body, body_len, resp, cap, r);
    iotd_posix_https_free(h);
    free(h);
    return st;
}

static iotd_status probe(void *ctx, iotd_http_result *r)
{
    iotd_posix_cred *c = ctx;
    char sink[256];
    iotd_posix_https *h = client_for(c, IOTD_EST_REENROLL, true);
    if (h == NULL)
        return IOTD_ENET;
    iotd_status st = get(h, IOTD_EST_PROBE_PATH, sink, sizeof(sink), r);
    iotd_posix_https_free(h);
    free(h);
    return st;
}

void iotd_posix_cred_port(iotd_posix_cred *c, iotd_cred_port *out)
{
    memset(out, 0, sizeof(*out));
    out->ctx = c;
    out->key_generate = key_generate;
    out->csr_make = csr_make;
    out->cert_info = cert_info;
    out->candidate_store = candidate_store;
    out->commit = commit;
    out->candidate_drop = candidate_drop;
    out->cacerts_store = cacerts_store;
    out->est_request = est_request;
    out->probe = probe;
}
