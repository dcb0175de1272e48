/* Version ordering and OSV range evaluation (vulnver.h). */
#include "vulnver.h"

#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* --- dpkg (deb-version(7)) -------------------------------------------- */

typedef struct deb_ver {
    unsigned long epoch;
    char upstream[IOT_VULN_VERSION_MAX + 1];
    char revision[IOT_VULN_VERSION_MAX + 1];
} deb_ver;

static bool chars_in(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]) && !is_alpha(s[i]) && strchr(extra, s[i]) == NULL)
            return false;
    return true;
}

/* The epoch before the first ':' of *v, if any, leaving *v after it. */
static bool deb_epoch(const char **v, unsigned long *epoch)
{
    *epoch = 0;
    const char *colon = strchr(*v, ':');
    if (colon == NULL)
        return true;
    if (colon == *v || colon - *v > 9)
        return false;
    for (const char *p = *v; p < colon; p++) {
        if (!is_digit(*p))
            return false;
        *epoch = *epoch * 10 + (unsigned long)(*p - '0');
    }
    *v = colon + 1;
    return true;
}

/* Splits v into epoch, upstream version and revision; false if malformed. */
static bool deb_split(const char *v, deb_ver *out)
{
    size_t len = strnlen(v, IOT_VULN_VERSION_MAX + 1);
    if (len == 0 || len > IOT_VULN_VERSION_MAX || !deb_epoch(&v, &out->epoch))
        return false;
    const char *dash = strrchr(v, '-');
    size_t up_len = dash != NULL ? (size_t)(dash - v) : strlen(v);
    const char *rev = dash != NULL ? dash + 1 : "";
    if (up_len == 0 || !is_digit(v[0]) || (dash != NULL && rev[0] == '\0'))
        return false;
    if (!chars_in(v, up_len, ".+~-") || !chars_in(rev, strlen(rev), ".+~"))
        return false;
    memcpy(out->upstream, v, up_len);
    out->upstream[up_len] = '\0';
    memcpy(out->revision, rev, strlen(rev) + 1);
    return true;
}

/* dpkg's order of a non-digit character: '~' first, then the end of the
 * string (and digits), then letters, then everything else. */
static int deb_order(char c)
{
    if (is_digit(c))
        return 0;
    if (is_alpha(c))
        return (unsigned char)c;
    if (c == '~')
        return -1;
    if (c != '\0')
        return (unsigned char)c + 256;
    return 0;
}

/* The non-digit runs at *a and *b, advancing both; nonzero if they differ. */
static int deb_alpha_cmp(const char **a, const char **b)
{
    while ((**a != '\0' && !is_digit(**a)) || (**b != '\0' && !is_digit(**b))) {
        int ac = deb_order(**a), bc = deb_order(**b);
        if (ac != bc)
            return ac - bc;
        (*a)++;
        (*b)++;
    }
    return 0;
}

/* The digit runs at *a and *b as numbers, advancing both. */
static int deb_num_cmp(const char **a, const char **b)
{
    while (**a == '0')
        (*a)++;
    while (**b == '0')
        (*b)++;
    int first_diff = 0;
    for (; is_digit(**a) && is_digit(**b); (*a)++, (*b)++)
        if (first_diff == 0)
            first_diff = **a - **b;
    if (is_digit(**a))
        return 1;
    if (is_digit(**b))
        return -1;
    return first_diff;
}

/* dpkg's verrevcmp: alternating non-digit and digit runs. */
static int deb_part_cmp(const char *a, const char *b)
{
    while (*a != '\0' || *b != '\0') {
        int c = deb_alpha_cmp(&a, &b);
        if (c == 0)
            c = deb_num_cmp(&a, &b);
        if (c != 0)
            return c;
    }
    return 0;
}

int iot_vuln_dpkg_cmp(const char *a, const char *b)
{
    deb_ver va, vb;
    if (!deb_split(a, &va) || !deb_split(b, &vb))
        return strcmp(a, b); /* callers check validity first */
    if (va.epoch != vb.epoch)
        return va.epoch < vb.epoch ? -1 : 1;
    int c = deb_part_cmp(va.upstream, vb.upstream);
    return c != 0 ? c : deb_part_cmp(va.revision, vb.revision);
}

/* --- Semantic Versioning 2.0.0 ---------------------------------------- */

typedef struct sem_ver {
    const char *num[3]; /* digits, leading zeros skipped */
    size_t num_len[3];
    const char *pre; /* after '-', up to '+' or the end; NULL if none */
    size_t pre_len;
} sem_ver;

/* MAJOR[.MINOR[.PATCH]] at *v, leaving *v after it. */
static bool sem_numbers(const char **v, sem_ver *out)
{
    const char *p = *v;
    for (int i = 0; i < 3; i++) {
        out->num[i] = "";
        if (i > 0 && *p != '.')
            continue; /* 5.2 is 5.2.0 */
        if (i > 0)
            p++;
        if (!is_digit(*p))
            return false;
        while (*p == '0' && is_digit(p[1]))
            p++;
        out->num[i] = p;
        while (is_digit(*p))
            p++;
        out->num_len[i] = (size_t)(p - out->num[i]);
    }
    *v = p;
    return true;
}

/* [-PRE-RELEASE][+BUILD] at v, then the end. */
static bool sem_tail(const char *v, sem_ver *out)
{
    if (*v == '-') {
        out->pre = ++v;
        while (*v != '\0' && *v != '+')
            v++;
        out->pre_len = (size_t)(v - out->pre);
        if (out->pre_len == 0 || !chars_in(out->pre, out->pre_len, ".-"))
            return false;
    }
    if (*v == '+')
        return v[1] != '\0' && chars_in(v + 1, strlen(v + 1), ".-");
    return *v == '\0';
}

static bool sem_split(const char *v, sem_ver *out)
{
    size_t len = strnlen(v, IOT_VULN_VERSION_MAX + 1);
    if (len == 0 || len > IOT_VULN_VERSION_MAX)
        return false;
    memset(out, 0, sizeof(*out));
    const char *p = v[0] == 'v' ? v + 1 : v;
    return sem_numbers(&p, out) && sem_tail(p, out);
}

/* Digit strings without leading zeros compare by length, then bytes. */
static int num_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    if (la == 1 && a[0] == '0')
        la = 0;
    if (lb == 1 && b[0] == '0')
        lb = 0;
    if (la != lb)
        return la < lb ? -1 : 1;
    return la == 0 ? 0 : memcmp(a, b, la);
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return n > 0;
}

static int ident_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    bool na = all_digits(a, la), nb = all_digits(b, lb);
    if (na && nb)
        return num_cmp(a, la, b, lb);
    if (na != nb)
        return na ? -1 : 1; /* numeric identifiers sort first */
    int c = memcmp(a, b, la < lb ? la : lb);
    if (c != 0)
        return c;
    return la == lb ? 0 : (la < lb ? -1 : 1);
}

static int pre_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    if (a == NULL || b == NULL)
        return a == b ? 0 : (a == NULL ? 1 : -1); /* a release after its pre-releases */
    size_t ia = 0, ib = 0;
    while (ia < la && ib < lb) {
        size_t ea = ia, eb = ib;
        while (ea < la && a[ea] != '.')
            ea++;
        while (eb < lb && b[eb] != '.')
            eb++;
        int c = ident_cmp(a + ia, ea - ia, b + ib, eb - ib);
        if (c != 0)
            return c;
        ia = ea + 1;
        ib = eb + 1;
    }
    if (ia < la)
        return 1;
    return ib < lb ? -1 : 0;
}

int iot_vuln_semver_cmp(const char *a, const char *b)
{
    sem_ver va, vb;
    if (!sem_split(a, &va) || !sem_split(b, &vb))
        return strcmp(a, b); /* callers check validity first */
    for (int i = 0; i < 3; i++) {
        int c = num_cmp(va.num[i], va.num_len[i], vb.num[i], vb.num_len[i]);
        if (c != 0)
            return c;
    }
    return pre_cmp(va.pre, va.pre_len, vb.pre, vb.pre_len);
}

bool iot_vuln_version_valid(iot_ver_scheme scheme, const char *v)
{
    if (scheme == IOT_VER_DPKG) {
        deb_ver d;
        return deb_split(v, &d);
    }
    sem_ver s;
    return sem_split(v, &s);
}

int iot_vuln_version_cmp(iot_ver_scheme scheme, const char *a, const char *b)
{
    return scheme == IOT_VER_DPKG ? iot_vuln_dpkg_cmp(a, b) : iot_vuln_semver_cmp(a, b);
}

/* --- OSV ranges ------------------------------------------------------- */

/* "0" in an introduced event: before every version. */
static bool is_zero(const iot_vuln_event *e)
{
    return e->kind == IOT_VULN_INTRODUCED && strcmp(e->version, "0") == 0;
}

static int event_cmp(iot_ver_scheme scheme, const iot_vuln_event *a, const iot_vuln_event *b)
{
    if (is_zero(a) || is_zero(b))
        return is_zero(a) && is_zero(b) ? 0 : (is_zero(a) ? -1 : 1);
    int c = iot_vuln_version_cmp(scheme, a->version, b->version);
    return c != 0 ? c : (int)a->kind - (int)b->kind;
}

static const char *scheme_name(iot_ver_scheme scheme)
{
    return scheme == IOT_VER_DPKG ? "Debian" : "SemVer";
}

/* Checks the events' versions and sorts them into sorted[]. */
static iot_status sort_events(iot_ver_scheme scheme, const iot_vuln_event *events, size_t n,
                              iot_vuln_event *sorted, iot_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_zero(&events[i]) && !iot_vuln_version_valid(scheme, events[i].version))
            return iot_err_set(err, IOT_EINVAL, "event version '%.*s' is not a valid %s version",
                               IOT_VULN_VERSION_MAX, events[i].version, scheme_name(scheme));
        size_t j = i;
        for (; j > 0 && event_cmp(scheme, &sorted[j - 1], &events[i]) > 0; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = events[i];
    }
    return IOT_OK;
}

/* One sorted event against version's comparison c with it (c > 0: the
 * version is above the event). */
static void apply_event(const iot_vuln_event *e, int c, bool *affected, bool *span_open,
                        const char **fixed)
{
    bool at_or_above = c >= 0;
    switch (e->kind) {
    case IOT_VULN_INTRODUCED:
        if (at_or_above)
            *affected = true;
        break;
    case IOT_VULN_FIXED:
        if (at_or_above)
            *affected = false;
        else if (*span_open && *fixed == NULL)
            *fixed = e->version; /* the first fix above version */
        break;
    case IOT_VULN_LAST_AFFECTED:
        if (c > 0)
            *affected = false;
        else
            *span_open = false; /* the span ends there; no fix known */
        break;
    }
}

iot_status iot_vuln_range_match(iot_ver_scheme scheme, const char *version,
                                const iot_vuln_event *events, size_t n, bool *affected,
                                const char **fixed, iot_err *err)
{
    *affected = false;
    *fixed = NULL;
    if (n > IOT_VULN_EVENTS_MAX)
        return iot_err_set(err, IOT_EINVAL, "%zu events in one range (at most %d)", n,
                           IOT_VULN_EVENTS_MAX);
    if (!iot_vuln_version_valid(scheme, version))
        return iot_err_set(err, IOT_EINVAL, "'%.*s' is not a valid %s version",
                           IOT_VULN_VERSION_MAX, version, scheme_name(scheme));
    iot_vuln_event sorted[IOT_VULN_EVENTS_MAX];
    iot_status st = sort_events(scheme, events, n, sorted, err);
    if (st != IOT_OK)
        return st;
    bool span_open = true;
    for (size_t i = 0; i < n; i++) {
        int c = is_zero(&sorted[i]) ? 1 : iot_vuln_version_cmp(scheme, version, sorted[i].version);
        apply_event(&sorted[i], c, affected, &span_open, fixed);
    }
    if (!*affected)
        *fixed = NULL;
    return IOT_OK;
}
