#include "dn.h"

#include <string.h>

bool dn_common_name(const char *dn, char *out, size_t cap)
{
    const char *found = NULL;

    /* Attributes are separated by ", "; a device ID never holds a comma
     * (docs/pki.md), so the first ", " after "CN=" ends the value. */
    for (const char *p = dn;;) {
        if (strncmp(p, "CN=", 3) == 0)
            found = p + 3;
        const char *next = strstr(p, ", ");
        if (next == NULL)
            break;
        p = next + 2;
    }
    if (found == NULL || cap == 0)
        return false;
    const char *end = strstr(found, ", ");
    size_t n = end != NULL ? (size_t)(end - found) : strlen(found);
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, found, n);
    out[n] = '\0';
    return true;
}
