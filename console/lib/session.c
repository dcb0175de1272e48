/* The session table (session.h): linear scans over a small fixed table,
 * every id comparison in constant time. */
#include "session.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

void ic_sessions_init(ic_sessions *s, ic_session *slots, size_t cap, int64_t idle_s,
                      int64_t absolute_s)
{
    memset(slots, 0, cap * sizeof(*slots));
    s->slots = slots;
    s->cap = cap;
    s->idle_s = idle_s;
    s->absolute_s = absolute_s;
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void copy_capped(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static bool expired(const ic_sessions *s, const ic_session *x, int64_t now)
{
    return now - x->last >= s->idle_s || now - x->created >= s->absolute_s || now < x->created;
}

static void end_slot(ic_session *x)
{
    OPENSSL_cleanse(x, sizeof(*x));
    x->used = false;
}

const ic_session *ic_session_create(ic_sessions *s, const char *op, const char *addr,
                                    const unsigned char rnd[2 * IC_SESSION_RANDOM], int64_t now)
{
    ic_session *slot = NULL;
    for (size_t i = 0; i < s->cap && slot == NULL; i++)
        if (!s->slots[i].used || expired(s, &s->slots[i], now))
            slot = &s->slots[i];
    if (slot == NULL && s->cap > 0) {
        slot = &s->slots[0];
        for (size_t i = 1; i < s->cap; i++)
            if (s->slots[i].last < slot->last)
                slot = &s->slots[i];
    }
    if (slot == NULL)
        return NULL;
    end_slot(slot);
    slot->used = true;
    to_hex(rnd, IC_SESSION_RANDOM, slot->id);
    to_hex(rnd + IC_SESSION_RANDOM, IC_SESSION_RANDOM, slot->csrf);
    copy_capped(slot->operator_name, sizeof(slot->operator_name), op);
    copy_capped(slot->addr, sizeof(slot->addr), addr);
    slot->created = now;
    slot->last = now;
    return slot;
}

static ic_session *find_slot(ic_sessions *s, const char *id)
{
    if (strlen(id) != IC_SESSION_HEX)
        return NULL;
    ic_session *found = NULL;
    /* Every slot is compared, so the time taken says nothing of which. */
    for (size_t i = 0; i < s->cap; i++) {
        bool same = CRYPTO_memcmp(s->slots[i].id, id, IC_SESSION_HEX) == 0;
        if (same && s->slots[i].used)
            found = &s->slots[i];
    }
    return found;
}

ic_session *ic_session_find(ic_sessions *s, const char *id, int64_t now)
{
    ic_session *x = find_slot(s, id);
    if (x == NULL)
        return NULL;
    if (expired(s, x, now)) {
        end_slot(x);
        return NULL;
    }
    x->last = now;
    return x;
}

bool ic_session_alive(ic_sessions *s, const char *id, int64_t now)
{
    ic_session *x = find_slot(s, id);
    return x != NULL && !expired(s, x, now);
}

bool ic_session_end(ic_sessions *s, const char *id)
{
    ic_session *x = find_slot(s, id);
    if (x == NULL)
        return false;
    end_slot(x);
    return true;
}

size_t ic_session_end_operator(ic_sessions *s, const char *op)
{
    size_t n = 0;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].used && strcmp(s->slots[i].operator_name, op) == 0) {
            end_slot(&s->slots[i]);
            n++;
        }
    }
    return n;
}

size_t ic_session_count(ic_sessions *s, int64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].used && expired(s, &s->slots[i], now))
            end_slot(&s->slots[i]);
        n += s->slots[i].used;
    }
    return n;
}

static bool is_lower_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

bool ic_cookie_session_id(const char *cookie, char id[IC_SESSION_HEX + 1])
{
    static const char name[] = IC_COOKIE_NAME "=";
    const size_t nlen = sizeof(name) - 1;
    int found = 0;
    const char *p = cookie;
    while (*p != '\0') {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len >= nlen && memcmp(p, name, nlen) == 0) {
            found++;
            if (len - nlen != IC_SESSION_HEX || !is_lower_hex(p + nlen, IC_SESSION_HEX))
                return false;
            memcpy(id, p + nlen, IC_SESSION_HEX);
            id[IC_SESSION_HEX] = '\0';
        }
        p += len;
    }
    /* Two cookies of that name: one was planted (a sibling domain cannot
     * set a __Host- cookie, but refuse rather than guess). */
    return found == 1;
}

bool ic_cookie_format(char *buf, size_t size, const char *id, int64_t max_age_s)
{
    int n =
        snprintf(buf, size, "%s=%s; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=%" PRId64,
                 IC_COOKIE_NAME, id != NULL ? id : "", id != NULL ? max_age_s : 0);
    return n > 0 && (size_t)n < size;
}

ic_csrf_verdict ic_csrf_check(const ic_session *s, const char *token, const char *origin,
                              const char *own_origin)
{
    if (origin[0] == '\0')
        return IC_CSRF_NO_ORIGIN;
    if (strcmp(origin, own_origin) != 0)
        return IC_CSRF_BAD_ORIGIN;
    if (token[0] == '\0')
        return IC_CSRF_NO_TOKEN;
    if (strlen(token) != IC_SESSION_HEX || CRYPTO_memcmp(token, s->csrf, IC_SESSION_HEX) != 0)
        return IC_CSRF_BAD_TOKEN;
    return IC_CSRF_OK;
}

const char *ic_csrf_reason(ic_csrf_verdict v)
{
    switch (v) {
    case IC_CSRF_OK:
        return "ok";
    case IC_CSRF_NO_ORIGIN:
        return "origin_missing";
    case IC_CSRF_BAD_ORIGIN:
        return "origin_mismatch";
    case IC_CSRF_NO_TOKEN:
        return "csrf_token_missing";
    case IC_CSRF_BAD_TOKEN:
        return "csrf_token_mismatch";
    }
    return "?";
}
