/* The PROXY protocol, version 2 (haproxy.org proxy-protocol.txt, section
 * 2.2): the binary header a TCP balancer (HAProxy with send-proxy-v2) puts
 * before the client's bytes, naming the client's address. The gateway
 * takes it only from the balancers of proxy_protocol_from, before TLS, so
 * that per-address limits and logs see the device's address rather than
 * the balancer's.
 *
 * Pure functions over memory: the caller peeks at the socket, asks here
 * how many bytes the header has, and takes exactly those, so the TLS bytes
 * behind it stay in the socket for OpenSSL. */
#ifndef GW_PROXYV2_H
#define GW_PROXYV2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GW_PROXY_SIG_LEN  12  /* "\r\n\r\n\0\r\nQUIT\n" */
#define GW_PROXY_FIXED    16  /* signature, version/command, family, length */
#define GW_PROXY_BODY_MAX 536 /* addresses of any family plus room for TLVs */
#define GW_PROXY_MAX      (GW_PROXY_FIXED + GW_PROXY_BODY_MAX)

typedef enum gw_proxy_status {
    GW_PROXY_DONE,    /* a whole, valid header: *out is filled */
    GW_PROXY_MORE,    /* valid so far; the header is longer than the bytes given */
    GW_PROXY_INVALID, /* not a header the gateway takes; *why says what */
} gw_proxy_status;

typedef struct gw_proxy_header {
    size_t length; /* bytes of the header, TLVs included: what to take off the socket */
    bool local;    /* LOCAL (the balancer's own connection, e.g. a health check) or
                      UNSPEC family: no client address; the balancer's stays */
    struct sockaddr_storage source; /* PROXY over TCP4/TCP6: the client */
    socklen_t source_len;           /* 0 when local */
} gw_proxy_header;

/* Parses a header from the first len bytes of buf. Only version 2 is
 * taken; commands LOCAL and PROXY; families UNSPEC, TCP over IPv4 and
 * TCP over IPv6; a body of at most GW_PROXY_BODY_MAX bytes; TLVs after the
 * addresses are skipped. *why (fixed text) is set on GW_PROXY_INVALID. */
gw_proxy_status gw_proxy_parse(const uint8_t *buf, size_t len, gw_proxy_header *out,
                               const char **why);

/* Whether buf starts with a PROXY header of either version (v2's
 * signature, or v1's "PROXY "); GW_PROXY_MORE when the len bytes given
 * are a strict prefix of one and more are needed to tell. */
gw_proxy_status gw_proxy_sniff(const uint8_t *buf, size_t len);

/* The balancers of proxy_protocol_from: IPv4 and IPv6 addresses or CIDR
 * prefixes. */
#define GW_PROXY_FROM_MAX 32

typedef struct gw_proxy_net {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix; /* bits */
} gw_proxy_net;

typedef struct gw_proxy_from {
    size_t n;
    gw_proxy_net net[GW_PROXY_FROM_MAX];
} gw_proxy_from;

/* Parses a list separated by spaces and/or commas ("" is an empty list).
 * On error returns false and writes a message naming the entry at fault
 * into why. */
bool gw_proxy_from_parse(const char *text, gw_proxy_from *out, char *why, size_t why_size);

/* The configuration check: NULL, or the message (in a per-thread buffer). */
const char *gw_proxy_from_check(const char *text);

/* Whether the address is one of the list's (an IPv4-mapped IPv6 address
 * counts as its IPv4 address). */
bool gw_proxy_from_match(const gw_proxy_from *from, const struct sockaddr *sa, socklen_t len);

#endif
