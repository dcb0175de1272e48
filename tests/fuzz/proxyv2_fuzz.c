/* libFuzzer harness for the PROXY protocol v2 parser and the balancer list
 * (gateway/lib/proxyv2.c), which read the first bytes of connections and
 * the configuration.
 *
 * Input: the bytes a connection starts with; the same bytes, up to the
 * first NUL, as a proxy_protocol_from value.
 *
 * Checked besides the sanitizers (the input is copied to a heap buffer of
 * its exact size, so a read past its end is caught):
 *   - a whole header is 16 to 16 + 536 bytes, within the input, and parses
 *     the same from exactly its own bytes: nothing after it is read;
 *   - every shorter prefix of a whole header asks for more, and a refusal
 *     stays a refusal as bytes are added (the gateway may decide early);
 *   - a refusal says why; a source address is IPv4 or IPv6 of its size;
 *   - sniff agrees with parse: a whole v2 header starts with a signature;
 *   - a list that parses matches, and an address it matches is matched
 *     again (the result depends on nothing else).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Igateway/lib \
 *     tests/fuzz/proxyv2_fuzz.c gateway/lib/proxyv2.c -o proxyv2_fuzz
 * (tests/fuzz/build.sh and run.sh do the same for every harness.)
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyv2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header(const uint8_t *buf, size_t len)
{
    gw_proxy_header h;
    const char *why = NULL;
    gw_proxy_status st = gw_proxy_parse(buf, len, &h, &why);
    if (st == GW_PROXY_INVALID) {
        if (why == NULL || h.length != 0)
            abort();
        return;
    }
    if (st == GW_PROXY_MORE) {
        if (h.length != 0 || len >= GW_PROXY_MAX)
            abort();
        return;
    }
    if (h.length < GW_PROXY_FIXED || h.length > GW_PROXY_MAX || h.length > len)
        abort();
    if (gw_proxy_sniff(buf, len) != GW_PROXY_DONE)
        abort();
    if (h.local != (h.source_len == 0))
        abort();
    if (!h.local &&
        !((h.source.ss_family == AF_INET && h.source_len == sizeof(struct sockaddr_in)) ||
          (h.source.ss_family == AF_INET6 && h.source_len == sizeof(struct sockaddr_in6))))
        abort();
    gw_proxy_header again;
    if (gw_proxy_parse(buf, h.length, &again, &why) != GW_PROXY_DONE ||
        memcmp(&again, &h, sizeof(h)) != 0)
        abort();
    for (size_t k = 0; k < h.length; k++)
        if (gw_proxy_parse(buf, k, &again, &why) != GW_PROXY_MORE)
            abort();
}

/* A refusal of a prefix is a refusal of the whole. */
static void check_prefixes(const uint8_t *buf, size_t len)
{
    gw_proxy_header h;
    const char *why = NULL;
    gw_proxy_status whole = gw_proxy_parse(buf, len, &h, &why);
    size_t step = len / 64 + 1;
    for (size_t k = 0; k < len; k += step)
        if (gw_proxy_parse(buf, k, &h, &why) == GW_PROXY_INVALID && whole != GW_PROXY_INVALID)
            abort();
}

static void check_list(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    gw_proxy_from from;
    char why[160];
    bool ok = gw_proxy_from_parse(text, &from, why, sizeof(why));
    if (ok != (gw_proxy_from_check(text) == NULL))
        abort();
    if (ok) {
        if (from.n > GW_PROXY_FROM_MAX)
            abort();
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        memcpy(&in6.sin6_addr, data, size < 16 ? size : 16);
        bool m = gw_proxy_from_match(&from, (struct sockaddr *)&in6, sizeof(in6));
        if (m != gw_proxy_from_match(&from, (struct sockaddr *)&in6, sizeof(in6)))
            abort();
    } else if (why[0] == '\0') {
        abort();
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    check_header(buf, size);
    check_prefixes(buf, size);
    (void)gw_proxy_sniff(buf, size);
    free(buf);
    check_list(data, size);
    return 0;
}
