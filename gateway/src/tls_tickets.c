#include "tls_tickets.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ticketkeys.h"

static int ex_keys = -1; /* SSL_CTX ex_data: gw_ticket_keys *, freed with the context */
/* Fetched once: EVP_aes_256_cbc() would make OpenSSL 3 look the cipher up
 * by name (locks, string compares) on every ticket sealed or opened. */
static EVP_CIPHER *ticket_cipher;

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static int secret_random(unsigned char *buf, size_t len)
{
    return RAND_priv_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void free_keys(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (ptr == NULL)
        return;
    gw_ticket_keys_destroy(ptr);
    free(ptr);
}

/* OpenSSL's ticket format (AES-256-CBC, HMAC-SHA256), with our keys. */
static int use_key(const gw_ticket_key *key, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                   EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key->mac, sizeof(key->mac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_CipherInit_ex(cctx, ticket_cipher, NULL, key->cipher, iv, enc) != 1 ||
        EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    return 0;
}

static int ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    gw_ticket_keys *keys = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_keys);
    gw_ticket_key key;
    int rc = -1;
    if (keys == NULL)
        goto out;
    if (enc) {
        if (gw_ticket_keys_sealing(keys, now_s(), &key) != 0) {
            rc = 0; /* no ticket this time; the handshake goes on */
            goto out;
        }
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(ticket_cipher)) != 1)
            goto out;
        memcpy(key_name, key.name, GW_TICKET_NAME_LEN);
        rc = use_key(&key, iv, cctx, hctx, 1) == 0 ? 1 : -1;
        goto out;
    }
    rc = gw_ticket_keys_opening(keys, key_name, now_s(), &key);
    if (rc <= 0) {
        rc = 0; /* unknown or retired key: a full handshake */
        goto out;
    }
    if (use_key(&key, iv, cctx, hctx, 0) != 0)
        rc = -1;
out:
    OPENSSL_cleanse(&key, sizeof(key));
    return rc;
}

iot_status gw_tls_tickets_enable(SSL_CTX *ctx, int64_t lifetime_s, iot_err *err)
{
    if (ex_keys < 0)
        ex_keys = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_keys);
    if (ticket_cipher == NULL)
        ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (ticket_cipher == NULL)
        return iot_err_set(err, IOT_ECRYPTO, "OpenSSL offers no AES-256-CBC for session tickets");
    gw_ticket_keys *keys = calloc(1, sizeof(*keys));
    if (keys == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory for the session ticket keys");
    if (gw_ticket_keys_init(keys, lifetime_s, now_s(), secret_random) != 0) {
        free(keys);
        return iot_err_set(err, IOT_ECRYPTO, "cannot draw session ticket keys (RAND_priv_bytes)");
    }
    if (!SSL_CTX_set_ex_data(ctx, ex_keys, keys)) {
        gw_ticket_keys_destroy(keys);
        free(keys);
        return iot_err_set(err, IOT_ENOMEM, "out of memory for the session ticket keys");
    }
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    SSL_CTX_set_timeout(ctx, (long)lifetime_s);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_max_early_data(ctx, 0);
    return IOT_OK;
}
