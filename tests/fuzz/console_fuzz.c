/* libFuzzer harness for what the console reads from the network and from
 * its operators file (console/lib): request targets and query parameters,
 * the Cookie header, and operators file lines.
 *
 * Input: the bytes as a request target; up to the first NUL, as a Cookie
 * header value; the whole input as an operators file.
 *
 * Checked besides the sanitizers (the input is copied to a heap buffer of
 * its size and a NUL, so a read past the end is caught):
 *   - a parsed target's path starts with '/', holds no '%', '#', space or
 *     control byte, and its segments joined by '/' give the path back;
 *   - every parameter key is non-empty, unique and, like every value,
 *     printable ASCII;
 *   - a session id taken from a cookie is exactly 64 lower-case hex digits;
 *   - each operators file line handed out has a hash that verifies as a
 *     valid stored form (no scrypt is run: parsing only).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "operators.h"
#include "query.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s < 0x20 || *s > 0x7e)
            abort();
}

static void check_target(const ic_target *t)
{
    char joined[IC_PATH_MAX + 2] = "";
    if (t->path[0] != '/' || strpbrk(t->path, "%# ") != NULL)
        abort();
    check_printable(t->path);
    for (size_t i = 0; i < t->n_seg; i++) {
        strncat(joined, "/", sizeof(joined) - strlen(joined) - 1);
        strncat(joined, t->seg[i], sizeof(joined) - strlen(joined) - 1);
    }
    if (t->n_seg == 0 ? strcmp(t->path, "/") != 0 : strcmp(joined, t->path) != 0)
        abort();
    for (size_t i = 0; i < t->n_params; i++) {
        if (t->params[i].key[0] == '\0' ||
            ic_target_param(t, t->params[i].key) != t->params[i].value)
            abort();
        check_printable(t->params[i].key);
        check_printable(t->params[i].value);
    }
}

static int check_line(const char *name, const char *hash, void *ctx)
{
    (void)ctx;
    if (name[0] == '\0' || !ic_pwhash_valid(hash))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    ic_target t;
    if (ic_target_parse(buf, size, &t) == NULL)
        check_target(&t);
    char id[IC_SESSION_HEX + 1];
    if (ic_cookie_session_id(buf, id)) {
        if (strlen(id) != IC_SESSION_HEX || strspn(id, "0123456789abcdef") != IC_SESSION_HEX)
            abort();
    }
    iot_err err = {0};
    (void)ic_operators_foreach(buf, size, check_line, NULL, &err);
    free(buf);
    return 0;
}
