#include "tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "conn.h"
#include "devlimit.h"
#include "log.h"
#include "metrics.h"
#include "tls_tickets.h"

/* TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 suites are all AEAD. */
static const char TLS12_CIPHERS[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

static int ex_identity = -1;  /* SSL_CTX ex_data: gw_admission * */
static int ex_devtable = -1;  /* SSL_CTX ex_data: gw_dev_limit *, freed with the context */
static int ex_bootstrap = -1; /* SSL_CTX ex_data: the bootstrap CA (X509 *), freed with it */

/* Each SSL points to its connection (conn.h), which holds everything the
 * gateway keeps about it; NULL once the connection is closing. */

static gw_dev_limit *per_device_of(SSL *ssl)
{
    return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_devtable);
}

static void free_dev_table(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    gw_dev_limit_free(ptr);
}

static void free_cert(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    X509_free(ptr);
}

/* Whether the verified chain ends at the bootstrap CA. */
static bool chains_to_bootstrap(SSL *ssl, X509_STORE_CTX *store)
{
    X509 *boot = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_bootstrap);
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(store);
    int n = chain != NULL ? sk_X509_num(chain) : 0;
    return boot != NULL && n > 0 && X509_cmp(sk_X509_value(chain, n - 1), boot) == 0;
}

static const char *peer_of(SSL *ssl)
{
    gw_conn *c = ssl != NULL ? gw_conn_of_ssl(ssl) : NULL;
    return c != NULL ? c->peer : "?";
}

static bool logged(SSL *ssl)
{
    gw_conn *c = gw_conn_of_ssl(ssl);
    return c == NULL || c->tls_logged;
}

static void set_logged(SSL *ssl)
{
    gw_conn *c = ssl != NULL ? gw_conn_of_ssl(ssl) : NULL;
    if (c != NULL)
        c->tls_logged = true;
}

static void refuse(SSL *ssl, gw_refusal why, const char *detail, const char *subject)
{
    gw_refusal_inc(why);
    set_logged(ssl);
    gw_log(GW_LOG_WARN, "tls.refused", "peer=%s reason=%s detail=\"%s\" subject=\"%s\"",
           peer_of(ssl), gw_refusal_counter_name(gw_refusal_row_of(why)->counter), detail,
           subject ? subject : "");
}

/* One slot per connection, taken once the device is known; the connection
 * gives it back when it closes. */
static bool take_device_slot(SSL *ssl, const char *device)
{
    gw_dev_limit *per_device = per_device_of(ssl);
    gw_conn *c = gw_conn_of_ssl(ssl);
    if (per_device == NULL || c == NULL || c->per_device != NULL)
        return true;
    if (!gw_dev_limit_acquire(per_device, device))
        return false;
    c->per_device = per_device;
    snprintf(c->slot_device, sizeof(c->slot_device), "%s", device);
    return true;
}

/* The admission of a device's certificate, the same for a full handshake
 * and a resumed session: the verdict of the registry and CRL in force,
 * then a connection slot of the device. Caches the verdict on the
 * connection, so that the first request needs no second check. */
static gw_admission_verdict admit(SSL *ssl, X509 *cert, char device[IOT_ID_MAX + 1],
                                  gw_admission_facts *facts)
{
    gw_conn *c = gw_conn_of_ssl(ssl);
    gw_admission *identity = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_identity);
    uint64_t generation = gw_admission_generation(identity);
    gw_admission_verdict v = gw_admission_check_facts(identity, cert, device, facts);
    if (c != NULL && v == GW_ADMISSION_OK) {
        c->verdict = v;
        c->verdict_generation = generation;
        c->verdict_cached = true;
        c->ends_grace = facts->ends_grace;
        memcpy(c->device, device, sizeof(c->device));
    }
    return v;
}

static int verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    char subject[256] = "";
    if (cert)
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    if (!preverify_ok) {
        int e = X509_STORE_CTX_get_error(store);
        refuse(ssl, GW_REF_TLS_BAD_CERT, X509_verify_cert_error_string(e), subject);
        return 0;
    }
    if (X509_STORE_CTX_get_error_depth(store) != 0)
        return 1;
    gw_conn *c = gw_conn_of_ssl(ssl);
    if (chains_to_bootstrap(ssl, store)) {
        if (c != NULL)
            c->bootstrap = true; /* may ask for enrollment, nothing else (conn.c) */
        return 1;
    }
    char device[IOT_ID_MAX + 1];
    gw_admission_facts facts;
    gw_admission_verdict v = admit(ssl, cert, device, &facts);
    if (v != GW_ADMISSION_OK) {
        refuse(ssl, gw_admission_verdict_refusal(v), gw_admission_verdict_name(v), subject);
        X509_STORE_CTX_set_error(store, v == GW_ADMISSION_REVOKED ? X509_V_ERR_CERT_REVOKED
                                                                  : X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    if (!take_device_slot(ssl, device)) {
        refuse(ssl, GW_REF_CONN_OVER_CAPACITY, "max_connections_per_device reached", subject);
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return 1;
}

/* Whether a session from a ticket may resume: its certificate is admitted
 * by the registry and CRL in force, as in a full handshake, and is not
 * one a renewal replaced (the device has a newer certificate; a bootstrap
 * certificate is not in the registry either). When it may not, the device
 * makes a full handshake, in which a revoked certificate is refused and
 * logged like any other. */
static bool resumable(SSL *ssl, SSL_SESSION *sess)
{
    X509 *cert = SSL_SESSION_get0_peer(sess);
    char device[IOT_ID_MAX + 1];
    gw_admission_facts facts;
    if (cert == NULL)
        return false;
    gw_admission_verdict v = admit(ssl, cert, device, &facts);
    const char *why = v != GW_ADMISSION_OK             ? gw_admission_verdict_name(v)
                      : facts.in_grace                 ? "renewed"
                      : !take_device_slot(ssl, device) ? "max_connections_per_device"
                                                       : NULL;
    if (why == NULL)
        return true;
    gw_conn *c = gw_conn_of_ssl(ssl);
    if (c != NULL)
        c->verdict_cached = false;
    char subject[256] = "";
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    gw_metric_inc(GW_M_TLS_RESUMPTION_REFUSED);
    gw_log(GW_LOG_INFO, "tls.resumption_refused",
           "peer=%s reason=%s subject=\"%s\" action=\"a full handshake follows\"", peer_of(ssl),
           why, subject);
    return false;
}

static SSL_TICKET_RETURN admit_ticket(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                      size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)keyname, (void)keyname_len, (void)arg;
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW; /* none, unknown key, damaged: full handshake */
    if (!resumable(ssl, sess))
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    /* A TLS 1.3 client uses a ticket once (RFC 8446, C.4), so every
     * resumption gives it the next one; a TLS 1.2 ticket is reused until
     * its key retires. */
    if (status == SSL_TICKET_SUCCESS_RENEW || SSL_version(ssl) == TLS1_3_VERSION)
        return SSL_TICKET_RETURN_USE_RENEW;
    return SSL_TICKET_RETURN_USE;
}

/* A failure OpenSSL ends without an alert: a plaintext HTTP request on
 * the TLS port is the usual one (SSL_R_HTTP_REQUEST). The handshake's exit
 * with an error on the queue says so; a mere "want read" leaves the queue
 * empty (bufferevent_openssl drains it after every failure). */
static void handshake_exit(SSL *ssl, int ret)
{
    if (ret > 0 || logged(ssl))
        return;
    unsigned long code = ERR_peek_last_error();
    if (code == 0 || ERR_GET_LIB(code) != ERR_LIB_SSL)
        return;
    int reason = ERR_GET_REASON(code);
    if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST)
        refuse(ssl, GW_REF_TLS_PROTOCOL, "plaintext HTTP on the TLS port; use https://", NULL);
    else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG)
        refuse(ssl, GW_REF_TLS_PROTOCOL, "not a TLS record (another protocol on the TLS port)",
               NULL);
}

/* Logs handshakes the server ends with a fatal alert that verify_cb did not
 * already explain: no certificate, old protocol, no shared cipher. A peer
 * that closes without close_notify after its handshake is an ordinary
 * disconnect (many HTTP clients do it), counted as such. */
/* A peer that closes without close_notify after its handshake. */
static bool unclean_close(const gw_conn *c)
{
    unsigned long last = ERR_peek_last_error();
    return c->handshake_done && ERR_GET_LIB(last) == ERR_LIB_SSL &&
           ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* Refuses the connection the server ends with fatal alert ret, naming the
 * missing client certificate when that is the cause. */
static void refuse_alert(SSL *ssl, int ret)
{
    const char *desc = SSL_alert_desc_string_long(ret);
    gw_refusal why = GW_REF_TLS_PROTOCOL;
    if ((ret & 0xff) == SSL_AD_CERTIFICATE_REQUIRED || (ret & 0xff) == SSL_AD_HANDSHAKE_FAILURE) {
        /* A handshake failure with no peer certificate is the missing-cert case. */
        X509 *peer = SSL_get0_peer_certificate(ssl);
        if (peer == NULL && SSL_get_state(ssl) != TLS_ST_BEFORE)
            why = (ret & 0xff) == SSL_AD_CERTIFICATE_REQUIRED ? GW_REF_TLS_NO_CERT : why;
    }
    unsigned long code = ERR_peek_last_error();
    char reason[128] = "";
    if (code)
        ERR_error_string_n(code, reason, sizeof(reason));
    if (strstr(reason, "peer did not return a certificate"))
        why = GW_REF_TLS_NO_CERT;
    refuse(ssl, why, reason[0] ? reason : desc, NULL);
}

static void info_cb(const SSL *cssl, int where, int ret)
{
    SSL *ssl = (SSL *)cssl;
    gw_conn *c = gw_conn_of_ssl(ssl);
    if (c == NULL)
        return; /* closing */
    if ((where & SSL_CB_HANDSHAKE_DONE) && !c->handshake_done) {
        c->handshake_done = true;
        gw_metric_inc(SSL_session_reused(ssl) ? GW_M_TLS_RESUMED : GW_M_TLS_FULL_HANDSHAKES);
    }
    if (where & SSL_CB_EXIT)
        handshake_exit(ssl, ret);
    if (!(where & SSL_CB_WRITE_ALERT) || (ret >> 8) != 2 /* fatal */)
        return;
    if (c->tls_logged)
        return;
    if (unclean_close(c)) {
        c->tls_logged = true;
        gw_metric_inc(GW_M_CONNECTIONS_UNCLEAN_CLOSE);
        gw_log(GW_LOG_DEBUG, "connection.closed", "peer=%s detail=\"no close_notify\"",
               peer_of(ssl));
        return;
    }
    refuse_alert(ssl, ret);
}

SSL *gw_tls_new_connection(SSL_CTX *ctx, gw_conn *conn)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl != NULL)
        SSL_set_app_data(ssl, conn);
    return ssl;
}

static iot_status ossl_fail(iot_err *err, const char *what, const char *path)
{
    unsigned long code = ERR_peek_last_error();
    char reason[256] = "";
    if (code)
        ERR_error_string_n(code, reason, sizeof(reason));
    ERR_clear_error();
    return iot_err_set(err, IOT_ECRYPTO, "%s %s: %s", what, path, reason);
}

/* The issuing intermediate, and those it replaced while still active,
 * help build device chains (the root stays the only trust anchor: no
 * partial chains); the bootstrap CA is an anchor of its own, whose
 * certificates verify_cb marks. */
static iot_status trust_enrollment(SSL_CTX *ctx, const gw_tls_options *opt, iot_err *err)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (opt->est_issuer != NULL && X509_STORE_add_cert(store, opt->est_issuer) != 1)
        return ossl_fail(err, "cannot trust the issuing CA", "est_ca_cert");
    for (int i = 0; opt->est_issuers != NULL && i < sk_X509_num(opt->est_issuers); i++)
        if (X509_STORE_add_cert(store, sk_X509_value(opt->est_issuers, i)) != 1)
            return ossl_fail(err, "cannot trust an earlier issuing CA", "registry");
    if (opt->bootstrap_ca == NULL)
        return IOT_OK;
    if (X509_STORE_add_cert(store, opt->bootstrap_ca) != 1 ||
        SSL_CTX_add_client_CA(ctx, opt->bootstrap_ca) != 1)
        return ossl_fail(err, "cannot trust the bootstrap CA", "est_bootstrap_ca");
    X509_up_ref(opt->bootstrap_ca);
    SSL_CTX_set_ex_data(ctx, ex_bootstrap, opt->bootstrap_ca);
    return IOT_OK;
}

/* A client certificate is asked for always, required unless enrollment
 * lets a device without one reach its endpoints. */
static void set_verify(SSL_CTX *ctx, const gw_tls_options *opt)
{
    int mode = SSL_VERIFY_PEER;
    if (opt->require_client_cert && !opt->enrollment)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, verify_cb);
}

/* No session cache: with tickets, a device carries its own session, and
 * the gateway keeps nothing per device. The context id is required by
 * OpenSSL whenever client certificates are verified. */
static iot_status set_sessions(SSL_CTX *ctx, const gw_tls_options *opt, iot_err *err)
{
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"iotgw", 5);
    SSL_CTX_set_num_tickets(ctx, 0);
    if (opt->session_lifetime_s <= 0)
        return IOT_OK;
    iot_status st = gw_tls_tickets_enable(ctx, opt->session_lifetime_s, err);
    if (st == IOT_OK)
        SSL_CTX_set_session_ticket_cb(ctx, NULL, admit_ticket, NULL);
    return st;
}

iot_status gw_tls_server_ctx(const gw_tls_options *opt, gw_admission *identity, SSL_CTX **out,
                             iot_err *err)
{
    *out = NULL;
    if (ex_identity < 0) {
        ex_identity = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        ex_devtable = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_dev_table);
        ex_bootstrap = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_cert);
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return ossl_fail(err, "cannot create a TLS context", "");
    iot_status st = IOT_OK;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_max_cert_list(ctx, GW_TLS_MAX_CERT_LIST);
    if (!SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
        st = ossl_fail(err, "cannot set TLS 1.2 ciphers", "");
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, opt->cert_path) != 1) {
        st = ossl_fail(err, "cannot load certificate", opt->cert_path);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, opt->key_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        st = ossl_fail(err, "cannot load private key (or it does not match the certificate)",
                       opt->key_path);
        goto out;
    }
    if (SSL_CTX_load_verify_locations(ctx, opt->client_ca_path, NULL) != 1) {
        st = ossl_fail(err, "cannot load client CA", opt->client_ca_path);
        goto out;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(opt->client_ca_path);
    if (names != NULL)
        SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_ex_data(ctx, ex_identity, identity);
    st = trust_enrollment(ctx, opt, err);
    if (st != IOT_OK)
        goto out;
    if (opt->max_connections_per_device > 0) {
        gw_dev_limit *per_device = gw_dev_limit_new((uint32_t)opt->max_connections_per_device);
        if (per_device == NULL || !SSL_CTX_set_ex_data(ctx, ex_devtable, per_device)) {
            gw_dev_limit_free(per_device);
            st = iot_err_set(err, IOT_ENOMEM, "out of memory for the per-device table");
            goto out;
        }
    }
    set_verify(ctx, opt);
    /* root -> issuing intermediate -> device: levels 0, 1 and 2 */
    SSL_CTX_set_verify_depth(ctx, 2);
    SSL_CTX_set_info_callback(ctx, info_cb);
    st = set_sessions(ctx, opt, err);
out:
    if (st != IOT_OK) {
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
    *out = ctx;
    return st;
}

/* A connection's certificate cannot change (no renegotiation; a resumed
 * session is admitted before it is used), so its verdict only changes
 * with the admission snapshot:
 * checked once per connection and snapshot, not once per request (the
 * check hashes the certificate). */
gw_admission_verdict gw_tls_peer_device(gw_conn *c, gw_admission *identity,
                                        char device_id[IOT_ID_MAX + 1])
{
    device_id[0] = '\0';
    X509 *cert = c->ssl != NULL ? SSL_get0_peer_certificate(c->ssl) : NULL;
    if (cert == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK)
        return GW_ADMISSION_UNKNOWN;
    uint64_t generation = gw_admission_generation(identity);
    if (!c->verdict_cached || c->verdict_generation != generation) {
        gw_admission_facts facts;
        c->verdict = gw_admission_check_facts(identity, cert, c->device, &facts);
        c->verdict_generation = generation;
        c->verdict_cached = true;
        c->ends_grace = c->verdict == GW_ADMISSION_OK && facts.ends_grace;
        if (c->verdict != GW_ADMISSION_OK)
            c->device[0] = '\0';
    }
    memcpy(device_id, c->device, sizeof(c->device));
    return (gw_admission_verdict)c->verdict;
}
