/* PROXY protocol v2 headers and the list of balancers; proxyv2.h. */
#include "proxyv2.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t SIG_V2[GW_PROXY_SIG_LEN] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                                 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const uint8_t SIG_V1[] = {'P', 'R', 'O', 'X', 'Y', ' '};

#define CMD_LOCAL  0x0
#define CMD_PROXY  0x1
#define FAM_UNSPEC 0x00
#define FAM_TCP4   0x11
#define FAM_TCP6   0x21
#define TCP4_BODY  12 /* source, destination, their ports */
#define TCP6_BODY  36

/* Compares the bytes given with a signature: DONE when it is all there,
 * MORE when what is there matches its start, INVALID otherwise. */
static gw_proxy_status match_sig(const uint8_t *buf, size_t len, const uint8_t *sig, size_t sig_len)
{
    size_t n = len < sig_len ? len : sig_len;
    if (memcmp(buf, sig, n) != 0)
        return GW_PROXY_INVALID;
    return n == sig_len ? GW_PROXY_DONE : GW_PROXY_MORE;
}

gw_proxy_status gw_proxy_sniff(const uint8_t *buf, size_t len)
{
    gw_proxy_status v2 = match_sig(buf, len, SIG_V2, sizeof(SIG_V2));
    gw_proxy_status v1 = match_sig(buf, len, SIG_V1, sizeof(SIG_V1));
    if (v2 == GW_PROXY_DONE || v1 == GW_PROXY_DONE)
        return GW_PROXY_DONE;
    if (v2 == GW_PROXY_MORE || v1 == GW_PROXY_MORE)
        return GW_PROXY_MORE;
    return GW_PROXY_INVALID;
}

static gw_proxy_status invalid(const char **why, const char *text)
{
    *why = text;
    return GW_PROXY_INVALID;
}

/* The client's address of a PROXY command over TCP; body is the header's
 * body (body_len bytes, all present). */
static gw_proxy_status take_source(uint8_t fam, const uint8_t *body, size_t body_len,
                                   gw_proxy_header *out, const char **why)
{
    memset(&out->source, 0, sizeof(out->source));
    if (fam == FAM_TCP4) {
        if (body_len < TCP4_BODY)
            return invalid(why, "TCP4 header too short for its addresses");
        struct sockaddr_in *in = (struct sockaddr_in *)&out->source;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, body, 4);
        memcpy(&in->sin_port, body + 8, 2);
        out->source_len = sizeof(*in);
        return GW_PROXY_DONE;
    }
    if (body_len < TCP6_BODY)
        return invalid(why, "TCP6 header too short for its addresses");
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->source;
    in6->sin6_family = AF_INET6;
    memcpy(&in6->sin6_addr, body, 16);
    memcpy(&in6->sin6_port, body + 32, 2);
    out->source_len = sizeof(*in6);
    return GW_PROXY_DONE;
}

/* The 16 fixed bytes: version 2, a command the gateway takes, a body
 * within GW_PROXY_BODY_MAX, a family it takes (any with LOCAL: the
 * receiver then uses the real endpoints). */
static const char *check_fixed(const uint8_t *buf, uint8_t *cmd, size_t *body_len)
{
    uint8_t ver_cmd = buf[12], fam = buf[13];
    *cmd = ver_cmd & 0x0f;
    *body_len = ((size_t)buf[14] << 8) | buf[15];
    if ((ver_cmd >> 4) != 2)
        return "PROXY header version is not 2";
    if (*cmd != CMD_LOCAL && *cmd != CMD_PROXY)
        return "PROXY command is neither LOCAL nor PROXY";
    if (*body_len > GW_PROXY_BODY_MAX)
        return "PROXY header longer than 536 bytes";
    if (*cmd == CMD_PROXY && fam != FAM_UNSPEC && fam != FAM_TCP4 && fam != FAM_TCP6)
        return "PROXY family is not TCP over IPv4 or IPv6, nor UNSPEC";
    return NULL;
}

gw_proxy_status gw_proxy_parse(const uint8_t *buf, size_t len, gw_proxy_header *out,
                               const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (match_sig(buf, len, SIG_V2, sizeof(SIG_V2)) == GW_PROXY_INVALID)
        return invalid(why, match_sig(buf, len, SIG_V1, sizeof(SIG_V1)) != GW_PROXY_INVALID
                                ? "a PROXY v1 (text) header; only v2 is taken"
                                : "no PROXY v2 signature");
    if (len < GW_PROXY_FIXED)
        return GW_PROXY_MORE;
    uint8_t cmd = 0;
    size_t body_len = 0;
    const char *bad = check_fixed(buf, &cmd, &body_len);
    if (bad != NULL)
        return invalid(why, bad);
    if (len < GW_PROXY_FIXED + body_len)
        return GW_PROXY_MORE;
    out->length = GW_PROXY_FIXED + body_len;
    if (cmd == CMD_LOCAL || buf[13] == FAM_UNSPEC) {
        out->local = true;
        return GW_PROXY_DONE;
    }
    /* What follows the addresses (TLVs) is not needed: skipped. */
    gw_proxy_status st = take_source(buf[13], buf + GW_PROXY_FIXED, body_len, out, why);
    if (st != GW_PROXY_DONE)
        out->length = 0;
    return st;
}

/* ---- proxy_protocol_from -------------------------------------------------- */

static bool is_separator(char ch)
{
    return ch == ' ' || ch == '\t' || ch == ',';
}

/* Parses "/N" after an address into net->prefix; false when malformed or
 * too long for the family. */
static bool parse_prefix(const char *s, unsigned max, unsigned *prefix)
{
    if (*s == '\0') {
        *prefix = max;
        return true;
    }
    if (s[0] != '/' || s[1] == '\0' || strlen(s) > 4)
        return false;
    unsigned v = 0;
    for (const char *p = s + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > max || (s[1] == '0' && s[2] != '\0'))
        return false;
    *prefix = v;
    return true;
}

/* One entry: an IPv4 or IPv6 address, optionally with /prefix. */
static bool parse_net(const char *entry, gw_proxy_net *net)
{
    char addr[INET6_ADDRSTRLEN];
    size_t alen = strcspn(entry, "/");
    if (alen == 0 || alen >= sizeof(addr))
        return false;
    memcpy(addr, entry, alen);
    addr[alen] = '\0';
    memset(net, 0, sizeof(*net));
    if (inet_pton(AF_INET, addr, net->addr) == 1)
        net->family = AF_INET;
    else if (inet_pton(AF_INET6, addr, net->addr) == 1)
        net->family = AF_INET6;
    else
        return false;
    return parse_prefix(entry + alen, net->family == AF_INET ? 32 : 128, &net->prefix);
}

bool gw_proxy_from_parse(const char *text, gw_proxy_from *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    const char *p = text;
    for (;;) {
        while (is_separator(*p))
            p++;
        if (*p == '\0')
            return true;
        size_t n = 0;
        while (p[n] != '\0' && !is_separator(p[n]))
            n++;
        char entry[INET6_ADDRSTRLEN + 8];
        if (n >= sizeof(entry)) {
            snprintf(why, why_size, "'%.*s...' is not an IP address or CIDR prefix", 40, p);
            return false;
        }
        memcpy(entry, p, n);
        entry[n] = '\0';
        if (out->n == GW_PROXY_FROM_MAX) {
            snprintf(why, why_size, "'%s': more than %d entries", entry, GW_PROXY_FROM_MAX);
            return false;
        }
        if (!parse_net(entry, &out->net[out->n])) {
            snprintf(why, why_size,
                     "'%s' is not an IP address or CIDR prefix (192.0.2.10, 10.0.0.0/24, "
                     "2001:db8::/64)",
                     entry);
            return false;
        }
        out->n++;
        p += n;
    }
}

/* The table's check returns text it keeps: the configuration is parsed on
 * the main thread only (start and reload), so one buffer will do (a
 * thread-local one would make the program need the dynamic loader's
 * __tls_get_addr). */
const char *gw_proxy_from_check(const char *text)
{
    static char why[160];
    gw_proxy_from from;
    return gw_proxy_from_parse(text, &from, why, sizeof(why)) ? NULL : why;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* The address's family and bytes; an IPv4-mapped IPv6 address as IPv4. */
static bool address_of(const struct sockaddr *sa, socklen_t len, int *family, uint8_t addr[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        *family = AF_INET;
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family != AF_INET6 || len < (socklen_t)sizeof(struct sockaddr_in6))
        return false;
    const uint8_t *a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (memcmp(a6, mapped, sizeof(mapped)) == 0) {
        *family = AF_INET;
        memcpy(addr, a6 + 12, 4);
    } else {
        *family = AF_INET6;
        memcpy(addr, a6, 16);
    }
    return true;
}

bool gw_proxy_from_match(const gw_proxy_from *from, const struct sockaddr *sa, socklen_t len)
{
    int family = 0;
    uint8_t addr[16];
    if (from == NULL || from->n == 0 || !address_of(sa, len, &family, addr))
        return false;
    for (size_t i = 0; i < from->n; i++)
        if (from->net[i].family == family &&
            prefix_equal(from->net[i].addr, addr, from->net[i].prefix))
            return true;
    return false;
}
