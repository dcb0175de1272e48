#include "iotd_posix/https.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <mbedtls/base64.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/version.h>

#include "iot/fsutil.h"
#include "iotd_posix/http_response.h"

#define PEM_MAX            (64 * 1024)
#define HEAD_MAX           512
#define CLOSE_NOTIFY_MS    200
#define DEFAULT_CONNECT_MS 5000
#define DEFAULT_REQUEST_MS 10000

/* Forward secrecy and AEAD only, as the gateway requires; ECDSA first
 * because the project's PKI issues P-256 keys. */
static const int SUITES[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

typedef enum exchange_rc {
    EX_OK,
    EX_STALE, /* failed before any byte of a response: the gateway had closed */
    EX_FAIL,
} exchange_rc;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void net_fail(iotd_posix_https *c, iotd_posix_net_error kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void net_fail(iotd_posix_https *c, iotd_posix_net_error kind, const char *fmt, ...)
{
    va_list ap;
    c->last_error = kind;
    va_start(ap, fmt);
    vsnprintf(c->last_msg, sizeof(c->last_msg), fmt, ap);
    va_end(ap);
}

static void tls_strerror(int ret, char *buf, size_t cap)
{
    mbedtls_strerror(ret, buf, cap);
}

/* --- URL ------------------------------------------------------------------ */

static bool field_is(const char *url, const struct http_parser_url *u, int f, const char *want)
{
    size_t n = strlen(want);
    return (u->field_set & (1u << f)) && u->field_data[f].len == n &&
           strncasecmp(url + u->field_data[f].off, want, n) == 0;
}

iot_status iotd_posix_url_parse(const char *url, char *host, size_t host_cap, char *port,
                                size_t port_cap, iot_err *err)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, strlen(url), 0, &u) != 0)
        return iot_err_set(err, IOT_EINVAL, "'%s' is not a URL; expected https://HOST[:PORT]", url);
    if (!field_is(url, &u, UF_SCHEMA, "https"))
        return iot_err_set(err, IOT_EINVAL, "'%s': only https:// URLs are allowed", url);
    if ((u.field_set & ((1u << UF_QUERY) | (1u << UF_FRAGMENT) | (1u << UF_USERINFO))) ||
        ((u.field_set & (1u << UF_PATH)) && !field_is(url, &u, UF_PATH, "/")))
        return iot_err_set(err, IOT_EINVAL, "'%s': give only https://HOST[:PORT]", url);
    size_t hlen = u.field_data[UF_HOST].len;
    if (!(u.field_set & (1u << UF_HOST)) || hlen == 0 || hlen >= host_cap)
        return iot_err_set(err, IOT_EINVAL, "'%s': missing or overlong host", url);
    memcpy(host, url + u.field_data[UF_HOST].off, hlen);
    host[hlen] = '\0';
    unsigned p = (u.field_set & (1u << UF_PORT)) ? u.port : 443u;
    if (p == 0)
        return iot_err_set(err, IOT_EINVAL, "'%s': port 0", url);
    int n = snprintf(port, port_cap, "%u", p);
    if (n < 0 || (size_t)n >= port_cap)
        return iot_err_set(err, IOT_EINVAL, "'%s': bad port", url);
    return IOT_OK;
}

/* --- credentials ------------------------------------------------------------ */

static iot_status load_crt(mbedtls_x509_crt *crt, const char *path, const char *what, iot_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    iot_status st = iot_file_read(path, PEM_MAX, &pem, &len, err);
    if (st != IOT_OK)
        return iot_err_wrap(err, "%s", what);
    /* PEM input is parsed with its terminating NUL. */
    int ret = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, len + 1);
    if (ret != 0) {
        char why[128];
        tls_strerror(ret < 0 ? ret : MBEDTLS_ERR_X509_INVALID_FORMAT, why, sizeof(why));
        st = iot_err_set(err, IOT_ECRYPTO, "%s %s is not a valid PEM certificate: %s", what, path,
                         why);
    }
    free(pem);
    return st;
}

/* The CRL must be the CA's: mbedTLS ignores a CRL of another issuer, which
 * would leave revocation unchecked without a word. Its signature and dates
 * are checked at every handshake (a CRL past nextUpdate fails it). */
static iot_status load_crl(iotd_posix_https *c, const char *path, iot_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    iot_status st = iot_file_read(path, PEM_MAX, &pem, &len, err);
    if (st != IOT_OK)
        return iot_err_wrap(err, "CRL");
    int ret = mbedtls_x509_crl_parse(&c->crl, (const unsigned char *)pem, len + 1);
    free(pem);
    if (ret != 0) {
        char why[128];
        tls_strerror(ret, why, sizeof(why));
        return iot_err_set(err, IOT_ECRYPTO, "CRL %s is not a valid PEM CRL: %s", path, why);
    }
    if (c->crl.issuer_raw.len != c->ca.subject_raw.len ||
        memcmp(c->crl.issuer_raw.p, c->ca.subject_raw.p, c->ca.subject_raw.len) != 0)
        return iot_err_set(err, IOT_ECRYPTO, "CRL %s was not issued by the CA", path);
    c->has_crl = true;
    return IOT_OK;
}

static iot_status check_cn(const mbedtls_x509_crt *crt, const char *path, const char *want,
                           iot_err *err)
{
    for (const mbedtls_x509_name *n = &crt->subject; n != NULL; n = n->next) {
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
            continue;
        if (n->val.len == strlen(want) && memcmp(n->val.p, want, n->val.len) == 0)
            return IOT_OK;
        return iot_err_set(err, IOT_EINVAL, "certificate %s is for '%.*s', not device '%s'", path,
                           (int)(n->val.len > 64 ? 64 : n->val.len), (const char *)n->val.p, want);
    }
    return iot_err_set(err, IOT_EINVAL, "certificate %s has no common name", path);
}

static iot_status load_key(iotd_posix_https *c, const char *path, iot_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    iot_status st = iot_file_read(path, PEM_MAX, &pem, &len, err);
    if (st != IOT_OK)
        return st;
#if MBEDTLS_VERSION_MAJOR >= 3
    /* mbedTLS 3 takes an RNG for blinding. */
    int ret = mbedtls_pk_parse_key(&c->key, (const unsigned char *)pem, len + 1, NULL, 0,
                                   mbedtls_ctr_drbg_random, &c->drbg);
#else
    int ret = mbedtls_pk_parse_key(&c->key, (const unsigned char *)pem, len + 1, NULL, 0);
#endif
    if (ret != 0) {
        char why[128];
        tls_strerror(ret, why, sizeof(why));
        st = iot_err_set(err, IOT_ECRYPTO, "device key %s is not a valid PEM private key: %s", path,
                         why);
    }
    mbedtls_platform_zeroize(pem, len);
    free(pem);
    return st;
}

static iot_status check_pair(iotd_posix_https *c, const char *cert, const char *key, iot_err *err)
{
#if MBEDTLS_VERSION_MAJOR >= 3
    int ret = mbedtls_pk_check_pair(&c->cert.pk, &c->key, mbedtls_ctr_drbg_random, &c->drbg);
#else
    int ret = mbedtls_pk_check_pair(&c->cert.pk, &c->key);
#endif
    if (ret != 0)
        return iot_err_set(err, IOT_ECRYPTO, "device key %s does not belong to certificate %s", key,
                           cert);
    return IOT_OK;
}

static iot_status setup_conf(iotd_posix_https *c, iot_err *err)
{
    int ret = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0)
        return iot_err_set(err, IOT_ECRYPTO, "cannot set up TLS (mbedTLS error -0x%04x)",
                           (unsigned)-ret);
    mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, c->has_crl ? &c->crl : NULL);
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
    mbedtls_ssl_conf_ciphersuites(&c->conf, SUITES);
#if MBEDTLS_VERSION_MAJOR >= 3
    mbedtls_ssl_conf_min_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
    /* 2.28 names TLS 1.2 by its record version, 3.3. */
    mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
#endif
    ret = c->has_cert ? mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key) : 0;
    if (ret != 0)
        return iot_err_set(err, IOT_ECRYPTO, "cannot use the device certificate (-0x%04x)",
                           (unsigned)-ret);
    return IOT_OK;
}

/* Every context in c empty, so that iotd_posix_https_free can run at any
 * point of the setup. */
static void init_contexts(iotd_posix_https *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->last_alert = -1;
    mbedtls_entropy_init(&c->entropy);
    mbedtls_ctr_drbg_init(&c->drbg);
    mbedtls_x509_crt_init(&c->ca);
    mbedtls_x509_crl_init(&c->crl);
    mbedtls_x509_crt_init(&c->cert);
    mbedtls_pk_init(&c->key);
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_ssl_init(&c->ssl);
}

/* The device's certificate, key, CA and CRL, checked against each other.
 * The device's own files first: they are what an operator got wrong. */
/* The device's certificate, checked against its ID (before the CA: it is
 * what an operator got wrong). */
static iot_status load_device_cert(iotd_posix_https *c, const iotd_posix_https_config *cfg,
                                   iot_err *err)
{
    iot_status st = iot_key_mode_check(cfg->key_file, err);
    if (st != IOT_OK)
        goto out;
    st = load_crt(&c->cert, cfg->cert_file, "device certificate", err);
    if (st != IOT_OK || cfg->device_id == NULL)
        goto out;
    st = check_cn(&c->cert, cfg->cert_file, cfg->device_id, err);
out:
    return st;
}

static iot_status load_credentials(iotd_posix_https *c, const iotd_posix_https_config *cfg,
                                   iot_err *err)
{
    bool own = cfg->cert_file != NULL; /* none: no client certificate (enrollment) */
    iot_status st = own ? load_device_cert(c, cfg, err) : IOT_OK;
    if (st != IOT_OK)
        goto out;
    st = load_crt(&c->ca, cfg->ca_file, "CA certificate", err);
    if (st != IOT_OK)
        goto out;
    if (cfg->crl_file != NULL) {
        st = load_crl(c, cfg->crl_file, err);
        if (st != IOT_OK)
            goto out;
    }
    if (!own)
        goto out;
    st = load_key(c, cfg->key_file, err);
    if (st != IOT_OK)
        goto out;
    c->has_cert = true;
    st = check_pair(c, cfg->cert_file, cfg->key_file, err);
out:
    return st;
}

iot_status iotd_posix_https_init(iotd_posix_https *c, const iotd_posix_https_config *cfg,
                                 iot_err *err)
{
    static const unsigned char PERS[] = "iotd-posix-https";
    init_contexts(c);
    c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_CONNECT_MS;
    c->request_timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : DEFAULT_REQUEST_MS;
    iot_status st =
        iotd_posix_url_parse(cfg->url, c->host, sizeof(c->host), c->port, sizeof(c->port), err);
    if (st != IOT_OK)
        goto out;
    snprintf(c->authority, sizeof(c->authority), strchr(c->host, ':') ? "[%s]:%s" : "%s:%s",
             c->host, c->port);

    int ret =
        mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy, PERS, sizeof(PERS) - 1);
    if (ret != 0) {
        st = iot_err_set(err, IOT_ECRYPTO, "cannot seed the random generator (-0x%04x)",
                         (unsigned)-ret);
        goto out;
    }
    st = load_credentials(c, cfg, err);
    if (st != IOT_OK)
        goto out;
    st = setup_conf(c, err);
    if (st == IOT_OK)
        iotd_posix_session_init(&c->session, cfg->session_file, c->has_cert ? &c->cert : NULL,
                                &c->ca, c->has_crl ? &c->crl : NULL);
out:
    if (st != IOT_OK)
        iotd_posix_https_free(c);
    return st;
}

static bool header_safe(const char *s, bool spaces);

iot_status iotd_posix_https_set_basic_auth(iotd_posix_https *c, const char *user,
                                           const char *password)
{
    char plain[IOTD_POSIX_AUTH_MAX];
    char b64[sizeof(c->extra_header)];
    size_t n = 0;
    int len = snprintf(plain, sizeof(plain), "%s:%s", user, password);
    if (len <= 0 || (size_t)len >= sizeof(plain) || !header_safe(plain, false) ||
        mbedtls_base64_encode((unsigned char *)b64, sizeof(b64), &n, (const unsigned char *)plain,
                              (size_t)len) != 0)
        return IOT_EINVAL;
    len = snprintf(c->extra_header, sizeof(c->extra_header), "Authorization: Basic %s\r\n", b64);
    return len > 0 && (size_t)len < sizeof(c->extra_header) ? IOT_OK : IOT_EINVAL;
}

/* --- the connection ------------------------------------------------------------ */

/* Waits until fd is ready for `events` or the exchange's deadline passes:
 * 1 ready, 0 timed out, -1 error. */
static int wait_fd(iotd_posix_https *c, short events)
{
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= c->deadline_ms) {
            c->timed_out = true;
            return 0;
        }
        uint64_t left = c->deadline_ms - now;
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    iotd_posix_https *c = ctx;
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) { /* EWOULDBLOCK on Linux */
            int w = wait_fd(c, POLLOUT);
            if (w == 0)
                return MBEDTLS_ERR_SSL_TIMEOUT;
            if (w < 0)
                return MBEDTLS_ERR_NET_SEND_FAILED;
            continue;
        }
        if ((errno == EPIPE || errno == ECONNRESET) && c->handshaking) {
            /* A server that refuses our certificate sends an alert and
             * closes while we are still sending the rest of our flight.
             * Carry on as if sent: the next read returns the alert, which
             * says why, or the reset. */
            c->reset_in_handshake = true;
            return (int)len;
        }
        return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                     : MBEDTLS_ERR_NET_SEND_FAILED;
    }
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    iotd_posix_https *c = ctx;
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) { /* EWOULDBLOCK on Linux */
            int w = wait_fd(c, POLLIN);
            if (w == 0)
                return MBEDTLS_ERR_SSL_TIMEOUT;
            if (w < 0)
                return MBEDTLS_ERR_NET_RECV_FAILED;
            continue;
        }
        return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
    }
}

/* Closes without a goodbye: for a connection that is broken or unusable. */
static void drop(iotd_posix_https *c)
{
    if (!c->open)
        return;
    mbedtls_ssl_free(&c->ssl);
    mbedtls_ssl_init(&c->ssl);
    close(c->fd);
    c->fd = -1;
    c->open = false;
}

void iotd_posix_https_close(iotd_posix_https *c)
{
    if (!c->open)
        return;
    c->deadline_ms = mono_ms() + CLOSE_NOTIFY_MS;
    (void)mbedtls_ssl_close_notify(&c->ssl);
    drop(c);
}

void iotd_posix_https_free(iotd_posix_https *c)
{
    iotd_posix_https_close(c);
    mbedtls_ssl_free(&c->ssl);
    mbedtls_ssl_config_free(&c->conf);
    iotd_posix_session_free(&c->session);
    mbedtls_pk_free(&c->key);
    mbedtls_x509_crt_free(&c->cert);
    mbedtls_x509_crt_free(&c->ca);
    mbedtls_x509_crl_free(&c->crl);
    mbedtls_ctr_drbg_free(&c->drbg);
    mbedtls_entropy_free(&c->entropy);
}

/* A non-blocking connect to one address, bounded by deadline. Returns the
 * socket or -1 with errno set. */
static int connect_one(const struct addrinfo *ai, uint64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    int e = errno;
    while (e == EINPROGRESS || e == EINTR) {
        uint64_t now = mono_ms();
        if (now >= deadline) {
            e = ETIMEDOUT;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            e = r == 0 ? ETIMEDOUT : errno;
            break;
        }
        socklen_t len = sizeof(e);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
            e = errno;
        if (e == 0)
            return fd;
    }
    close(fd);
    errno = e;
    return -1;
}

static bool tcp_connect(iotd_posix_https *c)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0) {
        net_fail(c, IOTD_POSIX_NET_RESOLVE, "cannot resolve %s: %s", c->host, gai_strerror(rc));
        return false;
    }
    uint64_t deadline = mono_ms() + c->connect_timeout_ms;
    int e = ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
        c->fd = connect_one(ai, deadline);
        e = errno;
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        /* Devices connect from several threads: strerror's buffer is shared. */
        char why[96] = "unknown error";
        if (e == ETIMEDOUT)
            snprintf(why, sizeof(why), "timed out");
        else
            (void)strerror_r(e, why, sizeof(why));
        net_fail(c, IOTD_POSIX_NET_CONNECT, "cannot connect to %s: %s", c->authority, why);
        return false;
    }
    /* Requests are small and answered at once: do not let Nagle hold them. */
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return true;
}

/* The code of the alert the gateway just sent, or -1. */
static int received_alert(const mbedtls_ssl_context *ssl)
{
#if MBEDTLS_VERSION_MAJOR >= 3
    /* mbedTLS 3 has no accessor for a received alert; the record is private. */
    const unsigned char *msg = ssl->MBEDTLS_PRIVATE(in_msg);
    int type = ssl->MBEDTLS_PRIVATE(in_msgtype);
#else
    const unsigned char *msg = ssl->in_msg;
    int type = ssl->in_msgtype;
#endif
    return type == MBEDTLS_SSL_MSG_ALERT && msg != NULL ? msg[1] : -1;
}

const char *iotd_posix_tls_alert_name(int alert)
{
    switch (alert) {
    case 42:
        return "bad_certificate";
    case 43:
        return "unsupported_certificate";
    case 44:
        return "certificate_revoked";
    case 45:
        return "certificate_expired";
    case 46:
        return "certificate_unknown";
    case 48:
        return "unknown_ca";
    case 49:
        return "access_denied";
    case 116:
        return "certificate_required";
    default:
        return NULL;
    }
}

static void handshake_failed(iotd_posix_https *c, int ret)
{
    char why[160];
    if (c->timed_out) {
        net_fail(c, IOTD_POSIX_NET_TIMEOUT, "no TLS handshake with %s within %u ms", c->authority,
                 (unsigned)c->request_timeout_ms);
        return;
    }
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);
        char info[256] = "";
        mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
        for (char *p = info; *p != '\0'; p++)
            if (*p == '\n')
                *p = p[1] == '\0' ? '\0' : ';';
        net_fail(c, IOTD_POSIX_NET_SERVER_CERT,
                 "the gateway at %s presented a certificate that does not verify: %s", c->authority,
                 info);
        return;
    }
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
        c->last_alert = received_alert(&c->ssl);
        const char *name = iotd_posix_tls_alert_name(c->last_alert);
        if (name != NULL)
            net_fail(c, IOTD_POSIX_NET_REFUSED,
                     "the gateway at %s refused the device certificate (TLS alert %s)",
                     c->authority, name);
        else
            net_fail(c, IOTD_POSIX_NET_TLS, "the gateway at %s ended the TLS handshake (alert %d)",
                     c->authority, c->last_alert);
        return;
    }
    if (ret == MBEDTLS_ERR_NET_CONN_RESET || ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        net_fail(c, IOTD_POSIX_NET_TLS,
                 "the gateway at %s closed the connection during the TLS handshake%s", c->authority,
                 c->reset_in_handshake ? " without saying why" : "");
        return;
    }
    tls_strerror(ret, why, sizeof(why));
    net_fail(c, IOTD_POSIX_NET_TLS, "TLS handshake with %s failed: %s", c->authority, why);
}

/* A TLS session on the configuration, for the gateway's name. */
static int session_setup(iotd_posix_https *c)
{
    int ret = mbedtls_ssl_setup(&c->ssl, &c->conf);
    if (ret != 0)
        goto out;
    ret = mbedtls_ssl_set_hostname(&c->ssl, c->host);
out:
    return ret;
}

static bool tls_connect(iotd_posix_https *c)
{
    c->last_alert = -1;
    c->timed_out = false;
    if (!tcp_connect(c))
        return false;
    c->open = true;
    int ret = session_setup(c);
    if (ret != 0) {
        char why[128];
        tls_strerror(ret, why, sizeof(why));
        net_fail(c, IOTD_POSIX_NET_TLS, "cannot set up a TLS session: %s", why);
        drop(c);
        return false;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    iotd_posix_session_offer(&c->session, &c->ssl);
    c->deadline_ms = mono_ms() + c->request_timeout_ms;
    c->handshaking = true;
    c->reset_in_handshake = false;
    do {
        ret = mbedtls_ssl_handshake(&c->ssl);
    } while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
    c->handshaking = false;
    if (ret != 0) {
        handshake_failed(c, ret);
        if (!c->timed_out && !c->reset_in_handshake)
            iotd_posix_session_forget(&c->session); /* refused: the next one is full */
        drop(c);
        return false;
    }
    c->stats.connects++;
    if (iotd_posix_session_keep(&c->session, &c->ssl))
        c->stats.resumed++;
    return true;
}

/* A kept connection the gateway closed (idle timeout, restart) shows as
 * readable: EOF or a close_notify waiting. Anything readable before a
 * request is unusable either way. */
static bool still_open(const iotd_posix_https *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

static int write_all(iotd_posix_https *c, const unsigned char *p, size_t len)
{
    while (len > 0) {
        int n = mbedtls_ssl_write(&c->ssl, p, len);
        if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (n < 0)
            return n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Header values come from the core and the caller: refuse anything that
 * could end a header line early. */
static bool header_safe(const char *s, bool spaces)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < (spaces ? 0x20 : 0x21) || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* Sends the head already in buf (head bytes of cap) and the body. */
static int write_request(iotd_posix_https *c, unsigned char *buf, size_t cap, size_t head,
                         const char *body, size_t body_len)
{
    /* Small requests go out as one TLS record and one segment. */
    if (head + body_len <= cap) {
        if (body_len > 0)
            memcpy(buf + head, body, body_len);
        return write_all(c, buf, head + body_len);
    }
    int ret = write_all(c, buf, head);
    if (ret != 0)
        return ret;
    return write_all(c, (const unsigned char *)body, body_len);
}

/* One request: a POST with a body, or a GET with an optional byte range. */
typedef struct request {
    const char *path;
    const char *content_type; /* NULL: a GET */
    const char *body;
    size_t body_len;
    uint32_t range_start; /* GET: the range asked for; range_len 0: none */
    uint32_t range_len;
} request;

/* The request's head into buf; its length, or -1 when it does not fit. */
static int format_head(const iotd_posix_https *c, const request *req, char *buf, size_t cap)
{
    int n;
    if (req->content_type != NULL)
        n = snprintf(buf, cap,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: iotd-posix\r\n%s"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                     req->path, c->authority, c->extra_header, req->content_type, req->body_len);
    else if (req->range_len > 0)
        n = snprintf(buf, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: iotd-posix\r\n"
                     "Range: bytes=%" PRIu32 "-%" PRIu64 "\r\n\r\n",
                     req->path, c->authority, req->range_start,
                     (uint64_t)req->range_start + req->range_len - 1u);
    else
        n = snprintf(buf, cap, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: iotd-posix\r\n%s\r\n",
                     req->path, c->authority, c->extra_header);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

static exchange_rc send_request(iotd_posix_https *c, const request *req)
{
    unsigned char buf[4096];
    int n = format_head(c, req, (char *)buf, HEAD_MAX);
    if (n < 0) {
        net_fail(c, IOTD_POSIX_NET_HTTP, "request head too long");
        return EX_FAIL;
    }
    int ret = write_request(c, buf, sizeof(buf), (size_t)n, req->body, req->body_len);
    if (ret == 0)
        return EX_OK;
    if (c->timed_out) {
        net_fail(c, IOTD_POSIX_NET_TIMEOUT, "sending to %s timed out", c->authority);
        return EX_FAIL;
    }
    char why[128];
    tls_strerror(ret, why, sizeof(why));
    net_fail(c, IOTD_POSIX_NET_IO, "sending to %s failed: %s", c->authority, why);
    return EX_STALE;
}

/* Reads the response into r (set up by the caller with its body buffer). */
static exchange_rc read_response(iotd_posix_https *c, iotd_posix_http_response *r)
{
    unsigned char buf[1024];
    bool got_any = false;
    iotd_posix_http_rc rc = IOTD_POSIX_HTTP_MORE;
    while (rc == IOTD_POSIX_HTTP_MORE) {
        int n = mbedtls_ssl_read(&c->ssl, buf, sizeof(buf));
        if (n > 0) {
            got_any = true;
            rc = iotd_posix_http_response_feed(r, (const char *)buf, (size_t)n);
            continue;
        }
        if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
        if (n == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
            continue;
#endif
        if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            rc = iotd_posix_http_response_eof(r);
            if (rc == IOTD_POSIX_HTTP_DONE)
                break;
            net_fail(c, IOTD_POSIX_NET_IO, "%s closed the connection before answering",
                     c->authority);
            return got_any ? EX_FAIL : EX_STALE;
        }
        if (c->timed_out) {
            net_fail(c, IOTD_POSIX_NET_TIMEOUT, "no answer from %s within %u ms", c->authority,
                     (unsigned)c->request_timeout_ms);
            return EX_FAIL;
        }
        /* With TLS 1.3 (mbedTLS 3) the server judges the client certificate
         * after the client's handshake is done: its refusal arrives here. */
        if (n == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
            c->last_alert = received_alert(&c->ssl);
            const char *name = iotd_posix_tls_alert_name(c->last_alert);
            if (name != NULL) {
                net_fail(c, IOTD_POSIX_NET_REFUSED,
                         "the gateway at %s refused the device certificate (TLS alert %s)",
                         c->authority, name);
                return EX_FAIL;
            }
        }
        char why[128];
        tls_strerror(n, why, sizeof(why));
        net_fail(c, IOTD_POSIX_NET_IO, "reading from %s failed: %s", c->authority, why);
        return got_any ? EX_FAIL : EX_STALE;
    }
    if (rc == IOTD_POSIX_HTTP_ERROR) {
        net_fail(c, IOTD_POSIX_NET_HTTP, "%s sent an invalid HTTP response: %s", c->authority,
                 r->error);
        return EX_FAIL;
    }
    return EX_OK;
}

static exchange_rc exchange(iotd_posix_https *c, const request *req, iotd_posix_http_response *r)
{
    c->timed_out = false;
    c->deadline_ms = mono_ms() + c->request_timeout_ms;
    exchange_rc rc = send_request(c, req);
    if (rc != EX_OK)
        goto out;
    rc = read_response(c, r);
    if (rc != EX_OK)
        goto out;
    if (!r->keep_alive)
        iotd_posix_https_close(c);
out:
    return rc;
}

/* A path and content type that cannot split the request's header. */
static bool request_valid(const request *req)
{
    return req->path != NULL && req->path[0] == '/' && header_safe(req->path, false) &&
           (req->content_type == NULL || header_safe(req->content_type, true)) &&
           (req->body != NULL || req->body_len == 0) &&
           (uint64_t)req->range_start + req->range_len <= (uint64_t)UINT32_MAX + 1u;
}

/* Sends req and reads its response into r: on a kept connection that
 * turns out closed, once more on a new one. IOTD_OK when a response came. */
static iotd_status perform(iotd_posix_https *c, const request *req, char *resp, size_t resp_cap,
                           iotd_posix_http_response *r)
{
    c->last_error = IOTD_POSIX_NET_NONE;
    c->last_msg[0] = '\0';
    c->last_alert = -1;
    if (!request_valid(req)) {
        net_fail(c, IOTD_POSIX_NET_HTTP, "invalid request path or content type");
        c->stats.failures++;
        return IOTD_ENET;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->open && !still_open(c))
            drop(c);
        bool reused = c->open;
        if (!c->open && !tls_connect(c))
            break;
        if (reused)
            c->stats.reuses++;
        iotd_posix_http_response_init(r, resp, resp_cap, (int64_t)time(NULL));
        exchange_rc rc = exchange(c, req, r);
        if (rc == EX_OK) {
            c->stats.responses++;
            return IOTD_OK;
        }
        drop(c);
        /* Only a kept connection that died before answering gets a second
         * chance; a fresh one failing is the gateway's answer. */
        if (rc != EX_STALE || !reused)
            break;
    }
    c->stats.failures++;
    return IOTD_ENET;
}

iotd_status iotd_posix_https_post(iotd_posix_https *c, const char *path, const char *content_type,
                                  const char *body, size_t body_len, char *resp, size_t resp_cap,
                                  iotd_http_result *result)
{
    iotd_posix_http_response r;
    request req = {.path = path, .content_type = content_type, .body = body, .body_len = body_len};

    memset(result, 0, sizeof(*result));
    if (content_type == NULL) {
        net_fail(c, IOTD_POSIX_NET_HTTP, "invalid request path or content type");
        c->stats.failures++;
        return IOTD_ENET;
    }
    iotd_status st = perform(c, &req, resp, resp_cap, &r);
    if (st != IOTD_OK)
        return st;
    result->status = r.status;
    result->has_retry_after = r.has_retry_after;
    result->retry_after_s = r.retry_after_s;
    result->body_len = r.body_len;
    return IOTD_OK;
}

iotd_status iotd_posix_https_get(iotd_posix_https *c, const char *path, uint32_t range_start,
                                 uint32_t range_len, void *buf, size_t cap, iotd_get_result *result)
{
    iotd_posix_http_response r;
    request req = {.path = path, .range_start = range_start, .range_len = range_len};

    memset(result, 0, sizeof(*result));
    iotd_status st = perform(c, &req, buf, cap, &r);
    if (st != IOTD_OK)
        return st;
    result->status = r.status;
    result->body_len = r.body_len;
    result->truncated = r.body_total > r.body_len;
    result->has_range = r.has_range;
    if (r.has_range) {
        result->range_start = r.range_first;
        result->range_len = r.range_last - r.range_first + 1u;
        result->range_total = r.range_total;
    }
    result->has_retry_after = r.has_retry_after;
    result->retry_after_s = r.retry_after_s;
    return IOTD_OK;
}
