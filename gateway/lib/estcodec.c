/* Enrollment's wire forms; estcodec.h says what each one accepts. */
#include "estcodec.h"

#include <string.h>
#include <strings.h>

#include <openssl/pkcs7.h>

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

typedef struct b64_state {
    unsigned acc;
    int bits;
    int pad; /* '=' seen: only more '=' and white space may follow */
    size_t digits;
    size_t n;
} b64_state;

/* One byte of input: -1 not base64, -2 over cap, 0 taken. */
static int b64_take(b64_state *st, unsigned char c, unsigned char *out, size_t cap)
{
    if (is_space(c))
        return 0;
    if (c == '=') {
        st->pad++;
        return st->pad > 2 ? -1 : 0;
    }
    int v = b64_value(c);
    if (v < 0 || st->pad > 0)
        return -1;
    st->digits++;
    st->acc = (st->acc << 6) | (unsigned)v;
    st->bits += 6;
    if (st->bits < 8)
        return 0;
    st->bits -= 8;
    if (st->n == cap)
        return -2;
    out[st->n++] = (unsigned char)(st->acc >> st->bits);
    st->acc &= (1u << st->bits) - 1;
    return 0;
}

int gw_est_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                         size_t *out_len)
{
    b64_state st = {0};
    *out_len = 0;
    for (size_t i = 0; i < len; i++) {
        int rc = b64_take(&st, (unsigned char)in[i], out, cap);
        if (rc != 0)
            return rc;
    }
    /* Whole quads only, padded or not, with the unused bits zero. */
    size_t rem = st.digits % 4;
    bool padded_ok = st.pad == 0 || (size_t)st.pad == 4 - rem;
    if (st.digits == 0 || rem == 1 || !padded_ok || st.acc != 0)
        return -1;
    *out_len = st.n;
    return 0;
}

size_t gw_est_base64_size(size_t len)
{
    size_t chars = (len + 2) / 3 * 4;
    return chars + (chars + 63) / 64 * 2 + 1;
}

size_t gw_est_base64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
    if (cap < gw_est_base64_size(len))
        return 0;
    size_t o = 0, line = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        size_t left = len - i;
        if (left > 1)
            v |= (unsigned)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = left > 1 ? B64[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? B64[v & 63] : '=';
        line += 4;
        if (line == 64 || i + 3 >= len) {
            out[o++] = '\r';
            out[o++] = '\n';
            line = 0;
        }
    }
    out[o] = '\0';
    return o;
}

bool gw_est_is_pkcs10(const char *content_type)
{
    static const char want[] = "application/pkcs10";
    size_t n = sizeof(want) - 1;
    if (content_type == NULL || strncasecmp(content_type, want, n) != 0)
        return false;
    char next = content_type[n];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

static bool printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

bool gw_est_basic_parse(const char *authorization, char user[GW_EST_USER_MAX + 1],
                        char password[GW_EST_PASSWORD_MAX + 1])
{
    unsigned char plain[GW_EST_USER_MAX + GW_EST_PASSWORD_MAX + 2];
    size_t n = 0;
    user[0] = password[0] = '\0';
    if (authorization == NULL || strncasecmp(authorization, "Basic ", 6) != 0)
        return false;
    const char *b = authorization + 6;
    if (gw_est_base64_decode(b, strlen(b), plain, sizeof(plain) - 1, &n) != 0)
        return false;
    plain[n] = '\0';
    if (memchr(plain, '\0', n) != NULL)
        return false;
    char *colon = strchr((char *)plain, ':');
    if (colon == NULL)
        return false;
    size_t ulen = (size_t)(colon - (char *)plain), plen = n - ulen - 1;
    if (ulen == 0 || plen == 0 || ulen > GW_EST_USER_MAX || plen > GW_EST_PASSWORD_MAX)
        return false;
    memcpy(user, plain, ulen);
    user[ulen] = '\0';
    memcpy(password, colon + 1, plen);
    password[plen] = '\0';
    return printable(user) && printable(password);
}

bool gw_est_certs_only(X509 *const *certs, size_t n, unsigned char **der, size_t *der_len)
{
    *der = NULL;
    *der_len = 0;
    PKCS7 *p7 = PKCS7_new();
    bool ok = p7 != NULL && PKCS7_set_type(p7, NID_pkcs7_signed) == 1 &&
              PKCS7_content_new(p7, NID_pkcs7_data) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = PKCS7_add_certificate(p7, certs[i]) == 1;
    int len = ok ? i2d_PKCS7(p7, der) : -1;
    PKCS7_free(p7);
    if (len <= 0) {
        OPENSSL_free(*der);
        *der = NULL;
        return false;
    }
    *der_len = (size_t)len;
    return true;
}
