#include "devices.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

static void ossl_reason(char *buf, size_t size)
{
    unsigned long code = ERR_peek_last_error();
    if (code != 0)
        ERR_error_string_n(code, buf, size);
    else
        snprintf(buf, size, "unknown error");
    ERR_clear_error();
}

/* --resume: keeps the session a server gives (with TLS 1.3 after the
 * handshake, in a NewSessionTicket) as the device's next one. */
static int keep_session(SSL *ssl, SSL_SESSION *sess)
{
    lg_device *d = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (d == NULL)
        return 0;
    pthread_mutex_lock(&d->lock);
    SSL_SESSION_free(d->session);
    d->session = sess;
    pthread_mutex_unlock(&d->lock);
    return 1; /* the reference is ours */
}

void lg_device_offer_session(lg_device *d, SSL *ssl)
{
    pthread_mutex_lock(&d->lock);
    if (d->session != NULL)
        SSL_set_session(ssl, d->session);
    pthread_mutex_unlock(&d->lock);
}

/* A client context per device: every connection of the device presents its
 * certificate. Without --resume no session cache and no tickets, so every
 * connection makes a full handshake, as a device does after booting; with
 * it, the device keeps its last session, as a sleeping device does. */
static SSL_CTX *device_ctx(const lg_options *o, const char *name, char *err, size_t err_size)
{
    char cert[1024], key[1024], ca[1024], why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int n1 = snprintf(cert, sizeof(cert), "%s/devices/%s/cert.pem", o->pki, name);
    int n2 = snprintf(key, sizeof(key), "%s/devices/%s/key.pem", o->pki, name);
    int n3 = snprintf(ca, sizeof(ca), "%s/ca.crt", o->pki);
    if (ctx == NULL || n1 < 0 || (size_t)n1 >= sizeof(cert) || n2 < 0 ||
        (size_t)n2 >= sizeof(key) || n3 < 0 || (size_t)n3 >= sizeof(ca)) {
        snprintf(err, err_size, "cannot set up TLS for device %s", name);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (o->tls12)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (o->resume) {
        SSL_CTX_set_session_cache_mode(ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, keep_session);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        ossl_reason(why, sizeof(why));
        snprintf(err, err_size, "cannot load CA %s: %s", ca, why);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ossl_reason(why, sizeof(why));
        snprintf(err, err_size, "cannot load %s and %s (run iotctl device add %s): %s", cert, key,
                 name, why);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int lg_devices_load(const lg_options *o, lg_devices *out, char *err, size_t err_size)
{
    out->n = 0;
    out->dev = calloc((size_t)o->count, sizeof(*out->dev));
    if (out->dev == NULL) {
        snprintf(err, err_size, "out of memory for %d devices", o->count);
        return -1;
    }
    for (int i = 0; i < o->count; i++) {
        lg_device *d = &out->dev[i];
        snprintf(d->name, sizeof(d->name), "%s%d", o->prefix, i + 1);
        atomic_init(&d->next_seq, o->seq_start);
        pthread_mutex_init(&d->lock, NULL);
        out->n++;
        if (!o->plain && (d->ctx = device_ctx(o, d->name, err, err_size)) == NULL)
            return -1;
        if (d->ctx != NULL)
            SSL_CTX_set_app_data(d->ctx, d);
    }
    return 0;
}

uint32_t lg_device_take_seq(lg_device *d, uint32_t count)
{
    uint64_t first = atomic_fetch_add(&d->next_seq, count);
    if (first + count - 1 > UINT32_MAX)
        return 0;
    return (uint32_t)first;
}

void lg_device_ack(lg_device *d, uint32_t lo, uint32_t hi)
{
    pthread_mutex_lock(&d->lock);
    d->acked_readings += (uint64_t)(hi - lo) + 1;
    if (d->n_acked > 0 && d->acked[d->n_acked - 1].hi + 1 == lo) {
        d->acked[d->n_acked - 1].hi = hi;
        goto out;
    }
    if (d->n_acked == d->cap_acked) {
        size_t cap = d->cap_acked ? d->cap_acked * 2 : 16;
        lg_range *grown = realloc(d->acked, cap * sizeof(*grown));
        if (grown == NULL)
            goto out; /* the file then under-reports: loss is over-counted, never hidden */
        d->acked = grown;
        d->cap_acked = cap;
    }
    d->acked[d->n_acked++] = (lg_range){lo, hi};
out:
    pthread_mutex_unlock(&d->lock);
}

uint64_t lg_devices_seq_next(const lg_devices *ds)
{
    uint64_t next = 1;
    for (int i = 0; i < ds->n; i++) {
        uint64_t v = atomic_load(&ds->dev[i].next_seq);
        if (v > next)
            next = v;
    }
    return next;
}

uint64_t lg_devices_acked(const lg_devices *ds)
{
    uint64_t n = 0;
    for (int i = 0; i < ds->n; i++)
        n += ds->dev[i].acked_readings;
    return n;
}

int lg_devices_write_acked(const lg_devices *ds, const char *path, uint64_t start_ns,
                           uint64_t end_ns)
{
    int rc = -1;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    if (fprintf(f, "window %" PRIu64 " %" PRIu64 "\n", start_ns, end_ns) < 0)
        goto out;
    for (int i = 0; i < ds->n; i++) {
        const lg_device *d = &ds->dev[i];
        for (size_t r = 0; r < d->n_acked; r++)
            if (fprintf(f, "%s %" PRIu32 " %" PRIu32 "\n", d->name, d->acked[r].lo,
                        d->acked[r].hi) < 0)
                goto out;
    }
    rc = 0;
out:
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

void lg_devices_free(lg_devices *ds)
{
    for (int i = 0; i < ds->n; i++) {
        SSL_CTX_free(ds->dev[i].ctx);
        SSL_SESSION_free(ds->dev[i].session);
        free(ds->dev[i].acked);
        pthread_mutex_destroy(&ds->dev[i].lock);
    }
    free(ds->dev);
    ds->dev = NULL;
    ds->n = 0;
}
