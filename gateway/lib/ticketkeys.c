#include "ticketkeys.h"

#include <string.h>

#include <openssl/crypto.h>

static int draw(gw_ticket_keys *k, gw_ticket_key *key, int64_t since)
{
    if (k->random(key->name, sizeof(key->name)) != 0 ||
        k->random(key->cipher, sizeof(key->cipher)) != 0 ||
        k->random(key->mac, sizeof(key->mac)) != 0)
        return -1;
    key->since = since;
    return 0;
}

/* Called with the lock held. Rotates once per lifetime that has passed; a
 * gateway idle for two lifetimes or more keeps no previous key, since
 * every ticket it sealed has expired. */
static int rotate(gw_ticket_keys *k, int64_t now)
{
    int64_t age = now - k->current.since;
    if (age < k->lifetime_s)
        return 0;
    gw_ticket_key fresh;
    if (draw(k, &fresh, now) != 0)
        return -1;
    k->have_previous = age < 2 * k->lifetime_s;
    k->previous = k->current;
    k->current = fresh;
    k->rotations++;
    OPENSSL_cleanse(&fresh, sizeof(fresh));
    if (!k->have_previous)
        OPENSSL_cleanse(&k->previous, sizeof(k->previous));
    return 0;
}

int gw_ticket_keys_init(gw_ticket_keys *k, int64_t lifetime_s, int64_t now, gw_random_fn random)
{
    memset(k, 0, sizeof(*k));
    k->lifetime_s = lifetime_s > 0 ? lifetime_s : 1;
    k->random = random;
    if (draw(k, &k->current, now) != 0)
        return -1;
    pthread_mutex_init(&k->lock, NULL);
    return 0;
}

void gw_ticket_keys_destroy(gw_ticket_keys *k)
{
    pthread_mutex_destroy(&k->lock);
    OPENSSL_cleanse(k, sizeof(*k));
}

int gw_ticket_keys_sealing(gw_ticket_keys *k, int64_t now, gw_ticket_key *out)
{
    pthread_mutex_lock(&k->lock);
    int rc = rotate(k, now);
    if (rc == 0)
        *out = k->current;
    pthread_mutex_unlock(&k->lock);
    return rc;
}

int gw_ticket_keys_opening(gw_ticket_keys *k, const unsigned char name[GW_TICKET_NAME_LEN],
                           int64_t now, gw_ticket_key *out)
{
    pthread_mutex_lock(&k->lock);
    int rc = rotate(k, now);
    if (rc == 0) {
        if (CRYPTO_memcmp(name, k->current.name, GW_TICKET_NAME_LEN) == 0) {
            *out = k->current;
            rc = 1;
        } else if (k->have_previous &&
                   CRYPTO_memcmp(name, k->previous.name, GW_TICKET_NAME_LEN) == 0) {
            *out = k->previous;
            rc = 2;
        }
    }
    pthread_mutex_unlock(&k->lock);
    return rc;
}
