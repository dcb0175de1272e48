/* iotctl vuln scan: OSV advisories matched, offline, against the CycloneDX
 * SBOMs of what we ship and against the fleet inventory.
 *
 * A component is affected when an advisory's affected[].package names it
 * (by purl, or by Debian ecosystem and binary or source package name) and
 * its version is listed in affected[].versions or falls in one of
 * affected[].ranges (ECOSYSTEM: Debian order for Debian packages, SemVer
 * otherwise; SEMVER; GIT ranges cannot be evaluated offline). A device is
 * affected when the firmware version it reports is the version of a
 * firmware SBOM with an affected component. A CycloneDX VEX statement
 * (analysis.state not_affected or false_positive) for the advisory's id or
 * an alias suppresses the match, and the report says so and why.
 *
 * Exit status: 0 nothing affected, 1 something affected, 2 usage or input
 * error (naming the file at fault). docs/vulnerabilities.md.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmds.h"
#include "iot/fsutil.h"
#include "vulnver.h"

#define VULN_ADVISORY_MAX (1u << 20)  /* bytes of one advisory file */
#define VULN_DOC_MAX      (32u << 20) /* bytes of an SBOM, inventory or VEX */
#define VULN_FILES_MAX    20000       /* advisory files in the directory */
#define VULN_SBOMS_MAX    16
#define VULN_STR_MAX      256 /* ids, names and versions taken from input */
#define VULN_SUMMARY_MAX  200 /* characters of a summary in the report */
#define VULN_EXIT_FOUND   1
#define VULN_EXIT_INPUT   2

typedef struct vuln_sbom {
    const char *path;
    cJSON *doc;
    const char *name, *version; /* metadata.component */
    bool firmware;              /* devices run it: their firmware = version */
} vuln_sbom;

typedef struct vuln_scan {
    const char *advisories, *inventory_path, *vex_path;
    bool json;
    vuln_sbom sboms[VULN_SBOMS_MAX];
    size_t n_sboms;
    cJSON *inventory, *vex;
    cJSON *affected, *suppressed, *unevaluated; /* the report's arrays */
    size_t n_read;
    iot_err err;
} vuln_scan;

/* A component as matching sees it. */
typedef struct vuln_comp {
    const vuln_sbom *sbom;
    const char *name, *version, *purl, *bom_ref, *src, *src_version;
} vuln_comp;

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && strnlen(v->valuestring, VULN_STR_MAX + 1) <= VULN_STR_MAX
               ? v->valuestring
               : NULL;
}

static bool str_in(const cJSON *array, const char *s)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, array)
    {
        if (cJSON_IsString(v) && strcmp(v->valuestring, s) == 0)
            return true;
    }
    return false;
}

static iot_status load_json(const char *path, size_t max, cJSON **out, iot_err *err)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    iot_status st = iot_file_read(path, max, &text, &len, err);
    if (st != IOT_OK)
        return st;
    *out = cJSON_ParseWithLength(text, len);
    const char *at = cJSON_GetErrorPtr();
    size_t where =
        *out == NULL && at != NULL && at >= text && at <= text + len ? (size_t)(at - text) : 0;
    free(text);
    if (*out == NULL)
        return iot_err_set(err, IOT_EINVAL, "%s: not valid JSON (near byte %zu)", path, where);
    return IOT_OK;
}

/* --- inputs ------------------------------------------------------------- */

static iot_status load_sbom(vuln_sbom *s, iot_err *err)
{
    iot_status st = load_json(s->path, VULN_DOC_MAX, &s->doc, err);
    if (st != IOT_OK)
        return st;
    const char *format = str_of(s->doc, "bomFormat");
    const cJSON *root = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(s->doc, "metadata"), "component");
    s->name = str_of(root, "name");
    s->version = str_of(root, "version");
    if (format == NULL || strcmp(format, "CycloneDX") != 0)
        return iot_err_set(err, IOT_EINVAL, "%s: not a CycloneDX SBOM (no bomFormat CycloneDX)",
                           s->path);
    if (s->name == NULL || s->version == NULL)
        return iot_err_set(err, IOT_EINVAL,
                           "%s: metadata.component has no name or version (regenerate it with "
                           "'ninja sbom')",
                           s->path);
    const char *type = str_of(root, "type");
    s->firmware = (type != NULL && strcmp(type, "firmware") == 0) ||
                  strcmp(s->name, "iot-firmware-esp32") == 0 || strcmp(s->name, "iotsim") == 0;
    return IOT_OK;
}

static iot_status load_inventory(vuln_scan *v)
{
    iot_status st = load_json(v->inventory_path, VULN_DOC_MAX, &v->inventory, &v->err);
    if (st != IOT_OK)
        return st;
    const cJSON *devices = cJSON_GetObjectItemCaseSensitive(v->inventory, "devices");
    if (!cJSON_IsArray(devices))
        return iot_err_set(&v->err, IOT_EINVAL,
                           "%s: no \"devices\" array (the gateway's GET /fleet)",
                           v->inventory_path);
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, devices)
    {
        const cJSON *fw = cJSON_GetObjectItemCaseSensitive(d, "firmware");
        if (str_of(d, "device") == NULL ||
            (fw != NULL && !cJSON_IsNull(fw) && !str_of(d, "firmware")))
            return iot_err_set(
                &v->err, IOT_EINVAL,
                "%s: devices[%d] needs a \"device\" string and a \"firmware\" string",
                v->inventory_path, i);
        i++;
    }
    return IOT_OK;
}

static iot_status load_vex(vuln_scan *v)
{
    iot_status st = load_json(v->vex_path, VULN_DOC_MAX, &v->vex, &v->err);
    if (st != IOT_OK)
        return st;
    const cJSON *vulns = cJSON_GetObjectItemCaseSensitive(v->vex, "vulnerabilities");
    const char *format = str_of(v->vex, "bomFormat");
    if (format == NULL || strcmp(format, "CycloneDX") != 0 || !cJSON_IsArray(vulns))
        return iot_err_set(&v->err, IOT_EINVAL,
                           "%s: not a CycloneDX VEX document (bomFormat CycloneDX and a "
                           "\"vulnerabilities\" array)",
                           v->vex_path);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vulns)
    {
        const cJSON *analysis = cJSON_GetObjectItemCaseSensitive(e, "analysis");
        if (str_of(e, "id") == NULL || str_of(analysis, "state") == NULL)
            return iot_err_set(&v->err, IOT_EINVAL,
                               "%s: vulnerabilities[%d] needs an \"id\" and an analysis.state",
                               v->vex_path, i);
        i++;
    }
    return IOT_OK;
}

/* --- matching ----------------------------------------------------------- */

static const char *prop_of(const cJSON *comp, const char *name)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(comp, "properties"))
    {
        const char *n = str_of(p, "name");
        if (n != NULL && strcmp(n, name) == 0)
            return str_of(p, "value");
    }
    return NULL;
}

/* A purl without version and qualifiers, with its subpath:
 * pkg:deb/debian/libssl3@3.0?arch=amd64 -> pkg:deb/debian/libssl3. */
static void purl_base(const char *purl, char *out, size_t size)
{
    size_t n = strcspn(purl, "@?#");
    const char *sub = strchr(purl, '#');
    snprintf(out, size, "%.*s%s", (int)n, purl, sub != NULL ? sub : "");
}

static bool is_deb(const vuln_comp *c)
{
    return c->purl != NULL && strncmp(c->purl, "pkg:deb/", 8) == 0;
}

/* An advisory's purl against c's (or, for a Debian package, its source
 * package's). */
static bool purl_matches(const char *purl, const vuln_comp *c, const char **installed)
{
    char want[VULN_STR_MAX + 1], have[VULN_STR_MAX + 1];
    purl_base(purl, want, sizeof(want));
    purl_base(c->purl, have, sizeof(have));
    *installed = c->version;
    if (strcmp(want, have) == 0)
        return true;
    if (!is_deb(c) || c->src == NULL)
        return false;
    snprintf(have, sizeof(have), "pkg:deb/debian/%s", c->src);
    *installed = c->src_version;
    return strcmp(want, have) == 0;
}

/* "Debian" or "Debian:N" (then c must be built for debian-N). */
static bool debian_ecosystem_matches(const char *eco, const vuln_comp *c)
{
    if (eco == NULL || !is_deb(c) || strncmp(eco, "Debian", 6) != 0)
        return false;
    if (eco[6] == '\0')
        return true;
    char want[VULN_STR_MAX + 1];
    snprintf(want, sizeof(want), "distro=debian-%s", eco + 7);
    return eco[6] == ':' && strstr(c->purl, want) != NULL;
}

/* Does pkg name c? *installed: the version to compare (the source
 * package's when matched by source name). */
static bool package_matches(const cJSON *pkg, const vuln_comp *c, const char **installed)
{
    const char *purl = str_of(pkg, "purl"), *name = str_of(pkg, "name");
    const char *eco = str_of(pkg, "ecosystem");
    bool debian = eco != NULL && strncmp(eco, "Debian", 6) == 0;
    if (debian && !debian_ecosystem_matches(eco, c))
        return false; /* another release's package */
    if (purl != NULL && c->purl != NULL)
        return purl_matches(purl, c, installed);
    if (name == NULL || !debian)
        return false;
    if (strcmp(name, c->name) == 0) {
        *installed = c->version;
        return true;
    }
    *installed = c->src_version;
    return c->src != NULL && strcmp(name, c->src) == 0;
}

typedef struct range_result {
    bool affected;
    const char *fixed;
    char problem[IOT_ERR_MSG_MAX]; /* why a range could not be evaluated */
} range_result;

static bool event_of(const cJSON *e, iot_vuln_event *out)
{
    static const struct {
        const char *key;
        iot_vuln_event_kind kind;
    } keys[] = {{"introduced", IOT_VULN_INTRODUCED},
                {"fixed", IOT_VULN_FIXED},
                {"last_affected", IOT_VULN_LAST_AFFECTED}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = str_of(e, keys[i].key);
        if (v != NULL) {
            out->kind = keys[i].kind;
            out->version = v;
            return true;
        }
    }
    return false; /* "limit" and unknown events */
}

/* One of affected[].ranges for installed; false if it could not be
 * evaluated (r->problem says why). */
static bool eval_range(const cJSON *range, iot_ver_scheme eco_scheme, const char *installed,
                       range_result *r)
{
    const char *type = str_of(range, "type");
    if (type == NULL || strcmp(type, "GIT") == 0) {
        snprintf(r->problem, sizeof(r->problem), "%s range: not comparable offline",
                 type != NULL ? type : "untyped");
        return false;
    }
    iot_ver_scheme scheme = strcmp(type, "SEMVER") == 0 ? IOT_VER_SEMVER : eco_scheme;
    iot_vuln_event ev[IOT_VULN_EVENTS_MAX];
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(range, "events"))
    {
        if (n == IOT_VULN_EVENTS_MAX) {
            snprintf(r->problem, sizeof(r->problem), "more than %d events in a range",
                     IOT_VULN_EVENTS_MAX);
            return false;
        }
        n += event_of(e, &ev[n]) ? 1 : 0;
    }
    bool hit = false;
    const char *fixed = NULL;
    iot_err err = {0};
    if (iot_vuln_range_match(scheme, installed, ev, n, &hit, &fixed, &err) != IOT_OK) {
        snprintf(r->problem, sizeof(r->problem), "%s", err.msg);
        return false;
    }
    if (hit) {
        r->affected = true;
        r->fixed = r->fixed != NULL ? r->fixed : fixed;
    }
    return true;
}

static void eval_affected(const cJSON *aff, const vuln_comp *c, const char *installed,
                          range_result *r)
{
    if (str_in(cJSON_GetObjectItemCaseSensitive(aff, "versions"), installed))
        r->affected = true;
    const cJSON *range;
    cJSON_ArrayForEach(range, cJSON_GetObjectItemCaseSensitive(aff, "ranges"))
    {
        eval_range(range, is_deb(c) ? IOT_VER_DPKG : IOT_VER_SEMVER, installed, r);
    }
}

/* Does a VEX affects[].ref name c (its bom-ref or purl, or urn:cdx:...#bom-ref)? */
static bool vex_ref_names(const char *ref, const vuln_comp *c)
{
    if (ref == NULL)
        return false;
    const char *hash = strrchr(ref, '#');
    if (hash != NULL && strncmp(ref, "urn:cdx:", 8) == 0)
        ref = hash + 1;
    return (c->bom_ref != NULL && strcmp(ref, c->bom_ref) == 0) ||
           (c->purl != NULL && strcmp(ref, c->purl) == 0);
}

static bool vex_suppresses(const cJSON *e)
{
    const char *state = str_of(cJSON_GetObjectItemCaseSensitive(e, "analysis"), "state");
    return strcmp(state, "not_affected") == 0 || strcmp(state, "false_positive") == 0;
}

/* The VEX statement that suppresses advisory adv for component c, NULL if
 * none. */
static const cJSON *vex_for(const vuln_scan *v, const cJSON *adv, const vuln_comp *c)
{
    const char *id = str_of(adv, "id");
    const cJSON *aliases = cJSON_GetObjectItemCaseSensitive(adv, "aliases");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(v->vex, "vulnerabilities"))
    {
        const char *vid = str_of(e, "id");
        if ((strcmp(vid, id) != 0 && !str_in(aliases, vid)) || !vex_suppresses(e))
            continue;
        const cJSON *affects = cJSON_GetObjectItemCaseSensitive(e, "affects");
        if (cJSON_GetArraySize(affects) == 0)
            return e; /* the whole product */
        const cJSON *a;
        cJSON_ArrayForEach(a, affects)
        {
            if (vex_ref_names(str_of(a, "ref"), c))
                return e;
        }
    }
    return NULL;
}

static cJSON *match_json(const vuln_comp *c, const char *installed, const char *fixed)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "sbom", c->sbom->name);
    cJSON_AddStringToObject(m, "sbom_version", c->sbom->version);
    cJSON_AddStringToObject(m, "component", c->name);
    cJSON_AddStringToObject(m, "installed", installed);
    if (installed == c->src_version && c->src != NULL)
        cJSON_AddStringToObject(m, "source_package", c->src);
    if (fixed != NULL)
        cJSON_AddStringToObject(m, "fixed", fixed);
    else
        cJSON_AddNullToObject(m, "fixed");
    if (c->purl != NULL)
        cJSON_AddStringToObject(m, "purl", c->purl);
    return m;
}

typedef struct adv_state {
    const cJSON *adv;
    const char *file;
    cJSON *matches; /* this advisory's unsuppressed matches */
    bool sbom_hit[VULN_SBOMS_MAX];
} adv_state;

static void record(vuln_scan *v, adv_state *a, const vuln_comp *c, const char *installed,
                   const range_result *r)
{
    cJSON *m = match_json(c, installed, r->fixed);
    const cJSON *vex = v->vex != NULL ? vex_for(v, a->adv, c) : NULL;
    if (vex == NULL) {
        cJSON_AddItemToArray(a->matches, m);
        a->sbom_hit[c->sbom - v->sboms] = true;
        return;
    }
    const cJSON *analysis = cJSON_GetObjectItemCaseSensitive(vex, "analysis");
    cJSON_AddStringToObject(m, "id", str_of(a->adv, "id"));
    cJSON_AddStringToObject(m, "vex_id", str_of(vex, "id"));
    cJSON_AddStringToObject(m, "state", str_of(analysis, "state"));
    const char *just = str_of(analysis, "justification"), *detail = str_of(analysis, "detail");
    if (just != NULL)
        cJSON_AddStringToObject(m, "justification", just);
    if (detail != NULL)
        cJSON_AddStringToObject(m, "detail", detail);
    cJSON_AddItemToArray(v->suppressed, m);
}

static void note_unevaluated(vuln_scan *v, const adv_state *a, const vuln_comp *c,
                             const char *installed, const char *why)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "id", str_of(a->adv, "id"));
    cJSON_AddStringToObject(u, "sbom", c->sbom->name);
    cJSON_AddStringToObject(u, "component", c->name);
    cJSON_AddStringToObject(u, "installed", installed != NULL ? installed : "");
    cJSON_AddStringToObject(u, "reason", why);
    cJSON_AddItemToArray(v->unevaluated, u);
}

static void check_component(vuln_scan *v, adv_state *a, const vuln_comp *c)
{
    const cJSON *aff;
    cJSON_ArrayForEach(aff, cJSON_GetObjectItemCaseSensitive(a->adv, "affected"))
    {
        const char *installed = NULL;
        if (!package_matches(cJSON_GetObjectItemCaseSensitive(aff, "package"), c, &installed))
            continue;
        if (installed == NULL) {
            note_unevaluated(v, a, c, NULL, "the SBOM gives no version to compare");
            continue;
        }
        range_result r = {0};
        eval_affected(aff, c, installed, &r);
        if (r.affected)
            record(v, a, c, installed, &r);
        else if (r.problem[0] != '\0')
            note_unevaluated(v, a, c, installed, r.problem);
    }
}

static void walk_components(vuln_scan *v, adv_state *a, const vuln_sbom *s, const cJSON *list)
{
    const cJSON *comp;
    cJSON_ArrayForEach(comp, list)
    {
        vuln_comp c = {.sbom = s,
                       .name = str_of(comp, "name"),
                       .version = str_of(comp, "version"),
                       .purl = str_of(comp, "purl"),
                       .bom_ref = str_of(comp, "bom-ref"),
                       .src = prop_of(comp, "iot:deb-source"),
                       .src_version = prop_of(comp, "iot:deb-source-version")};
        if (c.name != NULL)
            check_component(v, a, &c);
        walk_components(v, a, s, cJSON_GetObjectItemCaseSensitive(comp, "components"));
    }
}

static cJSON *devices_json(const vuln_scan *v, const adv_state *a)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(v->inventory, "devices"))
    {
        const char *fw = str_of(d, "firmware");
        for (size_t i = 0; fw != NULL && fw[0] != '\0' && i < v->n_sboms; i++) {
            if (!a->sbom_hit[i] || !v->sboms[i].firmware || strcmp(fw, v->sboms[i].version) != 0)
                continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "device", str_of(d, "device"));
            cJSON_AddStringToObject(o, "firmware", fw);
            cJSON_AddStringToObject(o, "image", v->sboms[i].name);
            cJSON_AddItemToArray(out, o);
            break;
        }
    }
    return out;
}

static const char *severity_of(const cJSON *adv)
{
    const char *s = str_of(cJSON_GetObjectItemCaseSensitive(adv, "database_specific"), "severity");
    if (s == NULL)
        s = str_of(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(adv, "severity"), 0),
                   "score");
    return s;
}

static void scan_advisory(vuln_scan *v, const cJSON *adv, const char *file)
{
    if (cJSON_GetObjectItemCaseSensitive(adv, "withdrawn") != NULL)
        return; /* the database took it back */
    adv_state a = {.adv = adv, .file = file, .matches = cJSON_CreateArray()};
    for (size_t i = 0; i < v->n_sboms; i++) {
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(v->sboms[i].doc, "metadata");
        cJSON *root = cJSON_CreateArray();
        cJSON_AddItemReferenceToArray(root, cJSON_GetObjectItemCaseSensitive(md, "component"));
        walk_components(v, &a, &v->sboms[i], root);
        cJSON_Delete(root);
        walk_components(v, &a, &v->sboms[i],
                        cJSON_GetObjectItemCaseSensitive(v->sboms[i].doc, "components"));
    }
    if (cJSON_GetArraySize(a.matches) == 0) {
        cJSON_Delete(a.matches);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", str_of(adv, "id"));
    const cJSON *aliases = cJSON_GetObjectItemCaseSensitive(adv, "aliases");
    cJSON_AddItemToObject(o, "aliases",
                          aliases != NULL ? cJSON_Duplicate(aliases, true) : cJSON_CreateArray());
    const char *summary = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(adv, "summary"));
    char sum[VULN_SUMMARY_MAX + 1];
    snprintf(sum, sizeof(sum), "%s", summary != NULL ? summary : "");
    cJSON_AddStringToObject(o, "summary", sum);
    const char *sev = severity_of(adv);
    if (sev != NULL)
        cJSON_AddStringToObject(o, "severity", sev);
    else
        cJSON_AddNullToObject(o, "severity");
    cJSON_AddStringToObject(o, "file", file);
    cJSON_AddItemToObject(o, "components", a.matches);
    cJSON_AddItemToObject(o, "devices", devices_json(v, &a));
    cJSON_AddItemToArray(v->affected, o);
}

/* The advisory's shape, as far as matching relies on it. */
static iot_status check_advisory(const cJSON *adv, const char *path, iot_err *err)
{
    if (!cJSON_IsObject(adv) || str_of(adv, "id") == NULL)
        return iot_err_set(err, IOT_EINVAL,
                           "%s: not an OSV advisory (no \"id\" string of at most %d characters)",
                           path, VULN_STR_MAX);
    const cJSON *affected = cJSON_GetObjectItemCaseSensitive(adv, "affected");
    if (affected != NULL && !cJSON_IsArray(affected))
        return iot_err_set(err, IOT_EINVAL, "%s: \"affected\" is not an array", path);
    int i = 0;
    const cJSON *aff;
    cJSON_ArrayForEach(aff, affected)
    {
        const cJSON *ranges = cJSON_GetObjectItemCaseSensitive(aff, "ranges");
        const cJSON *versions = cJSON_GetObjectItemCaseSensitive(aff, "versions");
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(aff, "package")) ||
            (ranges != NULL && !cJSON_IsArray(ranges)) ||
            (versions != NULL && !cJSON_IsArray(versions)))
            return iot_err_set(err, IOT_EINVAL,
                               "%s: affected[%d] needs a \"package\" object, and \"ranges\" and "
                               "\"versions\" must be arrays",
                               path, i);
        i++;
    }
    return IOT_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_json_name(const char *n)
{
    size_t len = strlen(n);
    return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".json") == 0;
}

/* The *.json names in the advisory directory, sorted. */
static iot_status list_advisories(vuln_scan *v, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(v->advisories);
    if (d == NULL)
        return iot_err_set(&v->err, IOT_ENOENT,
                           "%s: %s (--advisories needs a directory of OSV JSON files)",
                           v->advisories, strerror(errno));
    iot_status st = IOT_OK;
    char **list = calloc(VULN_FILES_MAX, sizeof(*list));
    for (struct dirent *e = readdir(d); list != NULL && st == IOT_OK && e != NULL; e = readdir(d)) {
        if (!is_json_name(e->d_name))
            continue;
        if (*n == VULN_FILES_MAX) {
            st =
                iot_err_set(&v->err, IOT_ENOMEM, "%s: more than %d advisories; split the directory",
                            v->advisories, VULN_FILES_MAX);
            continue;
        }
        list[*n] = strdup(e->d_name);
        if (list[*n] == NULL)
            st = iot_err_set(&v->err, IOT_ENOMEM, "out of memory");
        else
            (*n)++;
    }
    closedir(d);
    if (list == NULL)
        return iot_err_set(&v->err, IOT_ENOMEM, "out of memory");
    qsort(list, *n, sizeof(*list), name_cmp);
    *names = list;
    return st;
}

static iot_status scan_all(vuln_scan *v)
{
    char **names = NULL;
    size_t n = 0;
    iot_status st = list_advisories(v, &names, &n);
    for (size_t i = 0; st == IOT_OK && i < n; i++) {
        char path[CLI_PATH_MAX];
        cJSON *adv = NULL;
        st = iot_path_join(path, sizeof(path), v->advisories, names[i], &v->err);
        if (st == IOT_OK)
            st = load_json(path, VULN_ADVISORY_MAX, &adv, &v->err);
        if (st == IOT_OK)
            st = check_advisory(adv, path, &v->err);
        if (st == IOT_OK) {
            scan_advisory(v, adv, names[i]);
            v->n_read++;
        }
        cJSON_Delete(adv);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

/* --- output ------------------------------------------------------------- */

static int num_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valueint : 0;
}

static void print_match(const cJSON *m)
{
    const char *fixed = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "fixed"));
    const char *src = str_of(m, "source_package");
    printf("  %s %s%s%s%s in %s %s: fixed in %s\n", str_of(m, "component"), str_of(m, "installed"),
           src != NULL ? " (source " : "", src != NULL ? src : "", src != NULL ? ")" : "",
           str_of(m, "sbom"), str_of(m, "sbom_version"), fixed != NULL ? fixed : "(no fix known)");
}

static void print_text(const vuln_scan *v, const cJSON *report)
{
    const cJSON *a, *m;
    cJSON_ArrayForEach(a, v->affected)
    {
        const char *sev = str_of(a, "severity");
        printf("%s [%s] %s (%s)\n", str_of(a, "id"), sev != NULL ? sev : "severity unknown",
               str_of(a, "summary"), str_of(a, "file"));
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(a, "components")) print_match(m);
        const cJSON *devices = cJSON_GetObjectItemCaseSensitive(a, "devices");
        if (cJSON_GetArraySize(devices) > 0)
            printf("  devices (%d):", cJSON_GetArraySize(devices));
        cJSON_ArrayForEach(m, devices)
            printf(" %s (%s)", str_of(m, "device"), str_of(m, "firmware"));
        if (cJSON_GetArraySize(devices) > 0)
            putchar('\n');
    }
    cJSON_ArrayForEach(m, v->suppressed)
    {
        const char *just = str_of(m, "justification"), *detail = str_of(m, "detail");
        printf("suppressed: %s for %s %s in %s: VEX %s%s%s%s\n", str_of(m, "id"),
               str_of(m, "component"), str_of(m, "installed"), str_of(m, "sbom"),
               str_of(m, "state"), just != NULL ? " (" : "", just != NULL ? just : "",
               just != NULL ? ")" : "");
        if (detail != NULL)
            printf("  reason: %s\n", detail);
    }
    cJSON_ArrayForEach(m, v->unevaluated)
        printf("not evaluated: %s for %s %s in %s: %s\n", str_of(m, "id"), str_of(m, "component"),
               str_of(m, "installed"), str_of(m, "sbom"), str_of(m, "reason"));
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(report, "summary");
    printf("%d advisories read, %d affect us (%d devices), %d matches suppressed by VEX\n",
           num_of(s, "advisories"), num_of(s, "affected"), num_of(s, "devices"),
           num_of(s, "suppressed"));
}

static cJSON *report_json(vuln_scan *v)
{
    cJSON *r = cJSON_CreateObject(), *s = cJSON_CreateObject(), *sboms = cJSON_CreateArray();
    int devices = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, v->affected)
    {
        devices += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(a, "devices"));
    }
    for (size_t i = 0; i < v->n_sboms; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", v->sboms[i].path);
        cJSON_AddStringToObject(o, "name", v->sboms[i].name);
        cJSON_AddStringToObject(o, "version", v->sboms[i].version);
        cJSON_AddBoolToObject(o, "firmware", v->sboms[i].firmware);
        cJSON_AddItemToArray(sboms, o);
    }
    cJSON_AddNumberToObject(s, "advisories", (double)v->n_read);
    cJSON_AddNumberToObject(s, "affected", cJSON_GetArraySize(v->affected));
    cJSON_AddNumberToObject(s, "devices", devices); /* device-advisory pairs */
    cJSON_AddNumberToObject(s, "suppressed", cJSON_GetArraySize(v->suppressed));
    cJSON_AddItemToObject(r, "summary", s);
    cJSON_AddItemToObject(r, "sboms", sboms);
    cJSON_AddItemReferenceToObject(r, "affected", v->affected);
    cJSON_AddItemReferenceToObject(r, "suppressed", v->suppressed);
    cJSON_AddItemReferenceToObject(r, "unevaluated", v->unevaluated);
    return r;
}

/* --- the command -------------------------------------------------------- */

static int parse_opts(const cli_command *self, int argc, char **argv, vuln_scan *v)
{
    static const struct option opts[] = {{"advisories", required_argument, NULL, 'a'},
                                         {"sbom", required_argument, NULL, 's'},
                                         {"inventory", required_argument, NULL, 'i'},
                                         {"vex", required_argument, NULL, 'v'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'a')
            v->advisories = optarg;
        else if (c == 's' && v->n_sboms == VULN_SBOMS_MAX)
            return cli_usage(self, "at most %d --sbom files", VULN_SBOMS_MAX);
        else if (c == 's')
            v->sboms[v->n_sboms++].path = optarg;
        else if (c == 'i')
            v->inventory_path = optarg;
        else if (c == 'v')
            v->vex_path = optarg;
        else if (c == 'j')
            v->json = true;
        else if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (optind < argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    if (v->advisories == NULL)
        return cli_usage(self, "--advisories DIR is required");
    if (v->n_sboms == 0)
        return cli_usage(self, "give at least one --sbom FILE (the build writes them to "
                               "build/<dir>/sbom/)");
    return CLI_EXIT_OK;
}

static iot_status load_inputs(vuln_scan *v)
{
    iot_status st = IOT_OK;
    for (size_t i = 0; st == IOT_OK && i < v->n_sboms; i++)
        st = load_sbom(&v->sboms[i], &v->err);
    if (st == IOT_OK && v->inventory_path != NULL)
        st = load_inventory(v);
    if (st == IOT_OK && v->vex_path != NULL)
        st = load_vex(v);
    v->affected = cJSON_CreateArray();
    v->suppressed = cJSON_CreateArray();
    v->unevaluated = cJSON_CreateArray();
    if (st == IOT_OK && (v->affected == NULL || v->suppressed == NULL || v->unevaluated == NULL))
        st = iot_err_set(&v->err, IOT_ENOMEM, "out of memory");
    return st;
}

int cmd_vuln_scan(cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    const cli_command *self = cmd_find("vuln", "scan");
    vuln_scan v = {0};
    int rc = parse_opts(self, argc, argv, &v);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    cJSON *report = NULL;
    iot_status st = load_inputs(&v);
    if (st == IOT_OK)
        st = scan_all(&v);
    if (st != IOT_OK) {
        cli_fail(&v.err);
        rc = VULN_EXIT_INPUT;
        goto out;
    }
    report = report_json(&v);
    if (v.json && cmd_print_json(report) != CLI_EXIT_OK) {
        rc = VULN_EXIT_INPUT;
        goto out;
    }
    if (!v.json)
        print_text(&v, report);
    rc = cJSON_GetArraySize(v.affected) > 0 ? VULN_EXIT_FOUND : CLI_EXIT_OK;
out:
    cJSON_Delete(report);
    for (size_t i = 0; i < v.n_sboms; i++)
        cJSON_Delete(v.sboms[i].doc);
    cJSON_Delete(v.inventory);
    cJSON_Delete(v.vex);
    cJSON_Delete(v.affected);
    cJSON_Delete(v.suppressed);
    cJSON_Delete(v.unevaluated);
    return rc;
}
