/* The enrollment rules (iot/enroll.h) on a real registry with a real CA
 * chain: tokens, approvals, bootstrap, renewal with grace, lost answers,
 * and that a refusal writes nothing; and a second gateway's registry taking
 * in what the first issued and revoked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "iot/enroll.h"
#include "iot/pki.h"
#include "iot/registry.h"

#define NOW   1800000000
#define DAY   86400
#define GRACE (7 * DAY)

static char dir[64];
static char db[128];
static iot_registry *reg;
/* Gateway B: the same root and issuing CA, a registry of its own, which
 * takes in what gateway A (reg) issues and revokes. */
static char db_b[128];
static iot_registry *reg_b;
static STACK_OF(X509) * trusted; /* B's issuers: the issuing CA's certificate, borrowed */
static pki_ca root;
static pki_ca issuer;
static iot_enroll_policy policy = {.lifetime_s = 90 * DAY, .grace_s = GRACE};

static iot_status make_ca(const pki_ca *parent, pki_profile_type type, const char *cn, pki_ca *out)
{
    pki_profile p = {.type = type,
                     .common_name = cn,
                     .organization = PKI_ORGANIZATION,
                     .unit = type == PKI_PROFILE_CA ? NULL : "issuer",
                     .not_before = NOW - DAY,
                     .not_after = NOW + 365 * DAY};
    iot_err err;
    iot_status s = pki_key_generate(&out->key, &err);
    if (s == IOT_OK)
        s = pki_issue(parent, out->key, &p, &out->cert, &err);
    return s;
}

/* Registers the issuing CA as the registry's issuer (what `iotctl ca
 * intermediate` does). */
static void register_issuer(iot_registry *r, const char *name, const pki_ca *ca)
{
    pki_cert_facts f;
    iot_err err;
    assert_int_equal(pki_cert_facts_get(ca->cert, &f, &err), IOT_OK);
    iot_cert_record rec = {.kind = IOT_KIND_ISSUER,
                           .not_before = f.not_before,
                           .not_after = f.not_after,
                           .created = NOW};
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    snprintf(rec.role, sizeof(rec.role), "issuer");
    snprintf(rec.serial, sizeof(rec.serial), "%s", f.serial);
    snprintf(rec.fingerprint, sizeof(rec.fingerprint), "%s", f.fingerprint);
    assert_int_equal(pki_key_fingerprint(ca->key, rec.spki, &err), IOT_OK);
    assert_int_equal(iot_registry_add(r, &rec, &err), IOT_OK);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-enroll.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db, sizeof(db), "%s/registry.db", dir);
    iot_err err;
    snprintf(db_b, sizeof(db_b), "%s/registry-b.db", dir);
    if (iot_registry_create(db, &reg, &err) != IOT_OK ||
        iot_registry_create(db_b, &reg_b, &err) != IOT_OK)
        return -1;
    if (make_ca(NULL, PKI_PROFILE_CA, "root", &root) != IOT_OK ||
        make_ca(&root, PKI_PROFILE_INTERMEDIATE, "gw-issuer", &issuer) != IOT_OK)
        return -1;
    register_issuer(reg, "gw-issuer", &issuer);
    register_issuer(reg_b, "gw-issuer", &issuer);
    trusted = sk_X509_new_null();
    if (trusted == NULL || sk_X509_push(trusted, issuer.cert) <= 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    iot_registry_close(reg);
    iot_registry_close(reg_b);
    sk_X509_free(trusted);
    pki_ca_free(&root);
    pki_ca_free(&issuer);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct csr {
    EVP_PKEY *key;
    unsigned char der[1024];
    size_t len;
} csr;

static void make_csr_with(EVP_PKEY *key, const char *cn, csr *out)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_REQ_set_pubkey(req, key);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    unsigned char *p = out->der;
    int n = i2d_X509_REQ(req, NULL);
    assert_true(n > 0 && (size_t)n <= sizeof(out->der));
    out->len = (size_t)i2d_X509_REQ(req, &p);
    X509_REQ_free(req);
}

static void make_csr(const char *cn, csr *out)
{
    iot_err err;
    assert_int_equal(pki_key_generate(&out->key, &err), IOT_OK);
    make_csr_with(out->key, cn, out);
}

static iot_enroll_result by_token(const char *device, const char *token, const csr *c, int64_t now)
{
    iot_enroll_request req = {.method = IOT_ENROLL_BY_TOKEN,
                              .device_id = device,
                              .token = token,
                              .csr = c->der,
                              .csr_len = c->len,
                              .peer = "127.0.0.1",
                              .now = now};
    iot_enroll_result res;
    iot_err err;
    assert_int_equal(iot_enroll(reg, &issuer, &policy, &req, &res, &err), IOT_OK);
    return res;
}

static iot_enroll_result renew_with(const char *device, const char *auth_serial, const csr *c,
                                    int64_t now)
{
    iot_enroll_request req = {.method = IOT_ENROLL_RENEW,
                              .device_id = device,
                              .auth_serial = auth_serial,
                              .csr = c->der,
                              .csr_len = c->len,
                              .now = now};
    iot_enroll_result res;
    iot_err err;
    assert_int_equal(iot_enroll(reg, &issuer, &policy, &req, &res, &err), IOT_OK);
    return res;
}

static void new_token(const char *device, int64_t ttl, char token[IOT_TOKEN_LEN + 1])
{
    iot_err err;
    iot_token_record t;
    assert_int_equal(iot_token_create(reg, device, ttl, NOW, token, &t, &err), IOT_OK);
    assert_int_equal(strlen(token), IOT_TOKEN_LEN);
    assert_int_equal(strncmp(t.id, "tok-", 4), 0);
}

/* A registry's content, to show that a refusal wrote nothing. */
static void dump_of(const char *path, char *out, size_t cap)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "sqlite3 %s .dump | sha256sum", path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, (int)cap, f));
    pclose(f);
}

static void dump(char *out, size_t cap)
{
    dump_of(db, out, cap);
}

static void token_enrolls_once_and_answers_a_lost_reply(void **state)
{
    (void)state;
    char token[IOT_TOKEN_LEN + 1];
    new_token("dev-1", DAY, token);
    csr c;
    make_csr("dev-1", &c);
    iot_enroll_result r = by_token("dev-1", token, &c, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    assert_non_null(r.cert);
    /* Signed by the issuer, for the CSR's key, with the fixed subject. */
    assert_int_equal(X509_verify(r.cert, issuer.key), 1);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(r.cert), c.key), 1);
    char subject[128];
    iot_err err;
    assert_int_equal(pki_subject_text(r.cert, subject, sizeof(subject), &err), IOT_OK);
    assert_string_equal(subject, "CN=dev-1,OU=device,O=IoT Telemetry");
    assert_true(X509_cmp_time(X509_get0_notAfter(r.cert), &(time_t){NOW + 89 * DAY}) > 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(r.cert), &(time_t){NOW + 91 * DAY}) < 0);
    iot_cert_record rec;
    assert_int_equal(iot_registry_get_by_name(reg, "dev-1", &rec, &err), IOT_OK);
    pki_cert_facts issuer_facts;
    assert_int_equal(pki_cert_facts_get(issuer.cert, &issuer_facts, &err), IOT_OK);
    assert_string_equal(rec.issuer, issuer_facts.serial);
    assert_string_equal(rec.serial, r.issued.serial);
    char serial[IOT_SERIAL_HEX_MAX + 1];
    snprintf(serial, sizeof(serial), "%s", r.issued.serial);
    X509_free(r.cert);

    /* The same token and key again: the answer was lost, the same
     * certificate comes back. */
    r = by_token("dev-1", token, &c, NOW + 60);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_REISSUED);
    assert_string_equal(r.issued.serial, serial);
    X509_free(r.cert);
    /* Another key with the used token: refused as a used token. */
    csr other;
    make_csr("dev-1", &other);
    r = by_token("dev-1", token, &other, NOW + 60);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_BAD_AUTH);
    assert_string_equal(r.reason, "token_used");
    assert_null(r.cert);
    EVP_PKEY_free(c.key);
    EVP_PKEY_free(other.key);
}

static void bad_tokens_are_refused_and_write_nothing(void **state)
{
    (void)state;
    char token[IOT_TOKEN_LEN + 1], other[IOT_TOKEN_LEN + 1];
    new_token("dev-2", 3600, token);
    new_token("dev-3", 3600, other);
    csr c;
    make_csr("dev-2", &c);
    char before[128], after[128];
    dump(before, sizeof(before));
    char guessed[IOT_TOKEN_LEN + 1];
    memset(guessed, 'A', IOT_TOKEN_LEN);
    guessed[IOT_TOKEN_LEN] = '\0';
    struct {
        const char *device;
        const char *token;
        int64_t now;
        const char *reason;
    } cases[] = {
        {"dev-2", guessed, NOW, "token_unknown"},    {"dev-2", "short", NOW, "token_unknown"},
        {"dev-2", other, NOW, "token_wrong_device"}, {"dev-2", token, NOW + 3600, "token_expired"},
        {"bad/id", token, NOW, "token_unknown"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        iot_enroll_result r = by_token(cases[i].device, cases[i].token, &c, cases[i].now);
        assert_int_equal(r.outcome, IOT_ENROLL_OUT_BAD_AUTH);
        assert_string_equal(r.reason, cases[i].reason);
        assert_null(r.cert);
    }
    /* A revoked token. */
    iot_err err;
    char id[IOT_TOKEN_ID_LEN + 1] = "";
    iot_token_record t;
    assert_int_equal(iot_token_revoke(reg, "tok-000000000000", NOW, &err), IOT_ENOENT);
    char t4[IOT_TOKEN_LEN + 1];
    assert_int_equal(iot_token_create(reg, "dev-4", 60, NOW, t4, &t, &err), IOT_OK);
    snprintf(id, sizeof(id), "%s", t.id);
    assert_int_equal(iot_token_revoke(reg, id, NOW, &err), IOT_OK);
    assert_int_equal(iot_token_revoke(reg, id, NOW, &err), IOT_ESTATE);
    csr c4;
    make_csr("dev-4", &c4);
    dump(before, sizeof(before));
    iot_enroll_result r = by_token("dev-4", t4, &c4, NOW);
    assert_string_equal(r.reason, "token_revoked");
    /* A CSR for another name, and one whose key another device has. */
    csr wrong_cn;
    make_csr("dev-9", &wrong_cn);
    r = by_token("dev-2", token, &wrong_cn, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_BAD_CSR);
    iot_cert_record dev1;
    assert_int_equal(iot_registry_get_by_name(reg, "dev-1", &dev1, &err), IOT_OK);
    dump(after, sizeof(after));
    assert_string_equal(before, after);
    /* The token was not spent by the refusals: it still enrolls. */
    r = by_token("dev-2", token, &c, NOW + 10);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    X509_free(r.cert);
    EVP_PKEY_free(c.key);
    EVP_PKEY_free(c4.key);
    EVP_PKEY_free(wrong_cn.key);
}

static void a_key_seen_before_is_refused(void **state)
{
    (void)state;
    char token[IOT_TOKEN_LEN + 1];
    new_token("dev-5", DAY, token);
    csr first;
    make_csr("dev-5", &first);
    iot_enroll_result r = by_token("dev-5", token, &first, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    X509_free(r.cert);
    /* dev-6 presents dev-5's key. */
    char t6[IOT_TOKEN_LEN + 1];
    new_token("dev-6", DAY, t6);
    csr stolen;
    stolen.key = first.key;
    make_csr_with(first.key, "dev-6", &stolen);
    r = by_token("dev-6", t6, &stolen, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_KEY_REUSED);
    /* ... and with a key of its own it enrolls: the token was not spent. */
    csr own;
    make_csr("dev-6", &own);
    r = by_token("dev-6", t6, &own, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    X509_free(r.cert);
    /* A token cannot be made for a name that exists. */
    iot_err err;
    char t[IOT_TOKEN_LEN + 1];
    assert_int_equal(iot_token_create(reg, "dev-5", DAY, NOW, t, NULL, &err), IOT_EEXIST);
    assert_int_equal(iot_token_create(reg, "gw-issuer", DAY, NOW, t, NULL, &err), IOT_EEXIST);
    assert_int_equal(iot_token_create(reg, "dev-7", 0, NOW, t, NULL, &err), IOT_EINVAL);
    assert_int_equal(iot_token_create(reg, "dev-7", DAY, NOW, t, NULL, &err), IOT_OK);
    assert_int_equal(iot_token_create(reg, "dev-7", DAY, NOW, t, NULL, &err), IOT_EEXIST);
    EVP_PKEY_free(first.key);
    EVP_PKEY_free(own.key);
}

static void approval_waits_then_issues_or_denies(void **state)
{
    (void)state;
    policy.require_approval = true;
    char ta[IOT_TOKEN_LEN + 1], td[IOT_TOKEN_LEN + 1];
    new_token("dev-a", DAY, ta);
    new_token("dev-d", DAY, td);
    csr a, d;
    make_csr("dev-a", &a);
    make_csr("dev-d", &d);
    iot_enroll_result r = by_token("dev-a", ta, &a, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_PENDING);
    r = by_token("dev-a", ta, &a, NOW + 60);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_PENDING);
    r = by_token("dev-d", td, &d, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_PENDING);
    iot_err err;
    assert_int_equal(iot_enroll_decide(reg, "dev-a", true, NOW + 100, &err), IOT_OK);
    assert_int_equal(iot_enroll_decide(reg, "dev-a", true, NOW + 100, &err), IOT_ESTATE);
    assert_int_equal(iot_enroll_decide(reg, "dev-d", false, NOW + 100, &err), IOT_OK);
    assert_int_equal(iot_enroll_decide(reg, "nobody", false, NOW + 100, &err), IOT_ENOENT);
    r = by_token("dev-a", ta, &a, NOW + 120);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    X509_free(r.cert);
    r = by_token("dev-d", td, &d, NOW + 120);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_FORBIDDEN);
    assert_string_equal(r.reason, "denied");
    policy.require_approval = false;
    EVP_PKEY_free(a.key);
    EVP_PKEY_free(d.key);
}

static int count_in_grace(const iot_cert_record *rec, void *arg)
{
    (void)rec;
    (*(int *)arg)++;
    return 0;
}

static void renewal_keeps_the_old_certificate_in_grace(void **state)
{
    (void)state;
    char token[IOT_TOKEN_LEN + 1];
    new_token("dev-r", DAY, token);
    csr c1;
    make_csr("dev-r", &c1);
    iot_enroll_result r = by_token("dev-r", token, &c1, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    char s1[IOT_SERIAL_HEX_MAX + 1];
    snprintf(s1, sizeof(s1), "%s", r.issued.serial);
    X509_free(r.cert);
    iot_err err;
    assert_int_equal(iot_registry_set_class(reg, "dev-r", "sensor", &err), IOT_OK);

    /* Renewing with the same key is refused: a renewal takes a new key. */
    r = renew_with("dev-r", s1, &c1, NOW + 60 * DAY);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_KEY_REUSED);
    csr c2;
    make_csr("dev-r", &c2);
    r = renew_with("dev-r", s1, &c2, NOW + 60 * DAY);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    char s2[IOT_SERIAL_HEX_MAX + 1];
    snprintf(s2, sizeof(s2), "%s", r.issued.serial);
    X509_free(r.cert);
    iot_cert_record rec;
    assert_int_equal(iot_registry_get_by_name(reg, "dev-r", &rec, &err), IOT_OK);
    assert_string_equal(rec.serial, s2);
    assert_string_equal(rec.class_id, "sensor"); /* kept */
    int n = 0;
    assert_int_equal(iot_registry_foreach_in_grace(reg, NOW + 60 * DAY, count_in_grace, &n, &err),
                     IOT_OK);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(
        iot_registry_foreach_in_grace(reg, NOW + 60 * DAY + GRACE, count_in_grace, &n, &err),
        IOT_OK);
    assert_int_equal(n, 0);

    /* The answer was lost: the old certificate asks again with the new
     * key and gets the same certificate; with a third key it is refused. */
    r = renew_with("dev-r", s1, &c2, NOW + 60 * DAY + 30);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_REISSUED);
    assert_string_equal(r.issued.serial, s2);
    X509_free(r.cert);
    csr c3;
    make_csr("dev-r", &c3);
    r = renew_with("dev-r", s1, &c3, NOW + 60 * DAY + 30);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_CONFLICT);
    /* Once the new one is used, the old one's grace ends. */
    int ended = 0;
    assert_int_equal(iot_registry_end_grace(reg, s2, NOW + 60 * DAY + 40, &ended, &err), IOT_OK);
    assert_int_equal(ended, 1);
    n = 0;
    assert_int_equal(
        iot_registry_foreach_in_grace(reg, NOW + 60 * DAY + 40, count_in_grace, &n, &err), IOT_OK);
    assert_int_equal(n, 0);
    r = renew_with("dev-r", s1, &c2, NOW + 60 * DAY + 50);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_FORBIDDEN);
    assert_string_equal(r.reason, "certificate_replaced");
    /* A revoked device does not renew. */
    assert_int_equal(iot_registry_begin(reg, &err), IOT_OK);
    assert_int_equal(
        iot_registry_revoke(reg, IOT_KIND_DEVICE, "dev-r", "key-compromise", NOW + 61 * DAY, &err),
        IOT_OK);
    assert_int_equal(iot_registry_commit(reg, &err), IOT_OK);
    r = renew_with("dev-r", s2, &c3, NOW + 61 * DAY);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_FORBIDDEN);
    assert_string_equal(r.reason, "device_revoked");
    EVP_PKEY_free(c1.key);
    EVP_PKEY_free(c2.key);
    EVP_PKEY_free(c3.key);
}

static void bootstrap_enrolls_with_a_new_key_only(void **state)
{
    (void)state;
    csr boot;
    make_csr("dev-b", &boot); /* stands for the bootstrap certificate's key */
    char boot_spki[IOT_FPR_HEX_LEN + 1];
    iot_err err;
    assert_int_equal(pki_key_fingerprint(boot.key, boot_spki, &err), IOT_OK);
    iot_enroll_request req = {.method = IOT_ENROLL_BY_BOOTSTRAP,
                              .device_id = "dev-b",
                              .auth_serial = "B0075E71A1",
                              .auth_spki = boot_spki,
                              .csr = boot.der,
                              .csr_len = boot.len,
                              .now = NOW};
    iot_enroll_result r;
    assert_int_equal(iot_enroll(reg, &issuer, &policy, &req, &r, &err), IOT_OK);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_KEY_REUSED);
    csr fresh;
    make_csr("dev-b", &fresh);
    req.csr = fresh.der;
    req.csr_len = fresh.len;
    assert_int_equal(iot_enroll(reg, &issuer, &policy, &req, &r, &err), IOT_OK);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    X509_free(r.cert);
    /* Again with the same bootstrap certificate and key: the same answer. */
    assert_int_equal(iot_enroll(reg, &issuer, &policy, &req, &r, &err), IOT_OK);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_REISSUED);
    X509_free(r.cert);
    /* Another bootstrap certificate with the key that has the name: the
     * certificate issued for that key again (it proves the key; a gateway
     * whose registry took the certificate in from another answers so). */
    req.auth_serial = "B0075E71A2";
    assert_int_equal(iot_enroll(reg, &issuer, &policy, &req, &r, &err), IOT_OK);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_REISSUED);
    X509_free(r.cert);
    /* ... and with another key, for a name that is taken: refused. */
    csr other;
    make_csr("dev-b", &other);
    req.csr = other.der;
    req.csr_len = other.len;
    assert_int_equal(iot_enroll(reg, &issuer, &policy, &req, &r, &err), IOT_OK);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_FORBIDDEN);
    EVP_PKEY_free(boot.key);
    EVP_PKEY_free(fresh.key);
    EVP_PKEY_free(other.key);
}

typedef struct found_token {
    const char *device;
    iot_token_record rec;
    char hash[65];
} found_token;

static int find_token(const iot_token_record *rec, const char *hash, void *ctx)
{
    found_token *f = ctx;
    if (strcmp(rec->device, f->device) == 0) {
        f->rec = *rec;
        snprintf(f->hash, sizeof(f->hash), "%s", hash);
    }
    return 0;
}

/* A token made at gateway A is good at gateway B once B took it in. */
static void a_token_made_elsewhere_is_good_here(void **state)
{
    (void)state;
    char token[IOT_TOKEN_LEN + 1];
    new_token("dev-tokb", DAY, token);
    found_token f = {.device = "dev-tokb"};
    iot_err err;
    assert_int_equal(iot_token_foreach_hash(reg, find_token, &f, &err), IOT_OK);
    assert_int_equal(strlen(f.hash), 64);
    bool added = true;
    iot_token_record bad = f.rec;
    bad.id[5] ^= 1; /* not the hash's id */
    assert_int_equal(iot_token_import(reg_b, &bad, f.hash, &added, &err), IOT_EINVAL);
    assert_false(added);
    assert_int_equal(iot_token_import(reg_b, &f.rec, "ABC", &added, &err), IOT_EINVAL);
    assert_int_equal(iot_token_import(reg_b, &f.rec, f.hash, &added, &err), IOT_OK);
    assert_true(added);
    assert_int_equal(iot_token_import(reg_b, &f.rec, f.hash, &added, &err), IOT_OK);
    assert_false(added);
    csr c;
    make_csr("dev-tokb", &c);
    iot_enroll_request req = {.method = IOT_ENROLL_BY_TOKEN,
                              .device_id = "dev-tokb",
                              .token = token,
                              .csr = c.der,
                              .csr_len = c.len,
                              .now = NOW};
    iot_enroll_result r;
    assert_int_equal(iot_enroll(reg_b, &issuer, &policy, &req, &r, &err), IOT_OK);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    X509_free(r.cert);
    EVP_PKEY_free(c.key);
}

static int find_request(const iot_enroll_record *e, void *ctx)
{
    iot_enroll_record *want = ctx;
    if (strcmp(e->device, want->device) == 0)
        *want = *e;
    return 0;
}

static iot_enroll_state request_state_in_b(const char *device)
{
    iot_enroll_record e = {0};
    iot_err err;
    snprintf(e.device, sizeof(e.device), "%s", device);
    e.state = (iot_enroll_state)-1;
    assert_int_equal(iot_enroll_foreach(reg_b, find_request, &e, &err), IOT_OK);
    return e.state;
}

/* A request waiting at gateway A is listed at B, and a decision taken at
 * either reaches the other; a decision is never undone. */
static void a_request_and_its_decision_travel(void **state)
{
    (void)state;
    iot_enroll_record e = {.requested = NOW, .state = IOT_ENROLL_PENDING};
    snprintf(e.device, sizeof(e.device), "dev-req");
    snprintf(e.method, sizeof(e.method), "bootstrap");
    snprintf(e.auth, sizeof(e.auth), "B0075E71A9");
    memset(e.spki, 'a', 64);
    snprintf(e.peer, sizeof(e.peer), "192.0.2.7");
    bool changed = false;
    iot_err err;
    iot_enroll_record bad = e;
    snprintf(bad.method, sizeof(bad.method), "magic");
    assert_int_equal(iot_enroll_import_request(reg_b, &bad, &changed, &err), IOT_EINVAL);
    assert_false(changed);
    assert_int_equal(iot_enroll_import_request(reg_b, &e, &changed, &err), IOT_OK);
    assert_true(changed);
    assert_int_equal(request_state_in_b("dev-req"), IOT_ENROLL_PENDING);
    assert_int_equal(iot_enroll_import_request(reg_b, &e, &changed, &err), IOT_OK);
    assert_false(changed);
    iot_enroll_record other = e; /* a decision on another key changes nothing */
    other.state = IOT_ENROLL_APPROVED;
    memset(other.spki, 'b', 64);
    assert_int_equal(iot_enroll_import_request(reg_b, &other, &changed, &err), IOT_OK);
    assert_false(changed);
    e.state = IOT_ENROLL_APPROVED;
    e.decided = NOW + 10;
    assert_int_equal(iot_enroll_import_request(reg_b, &e, &changed, &err), IOT_OK);
    assert_true(changed);
    assert_int_equal(request_state_in_b("dev-req"), IOT_ENROLL_APPROVED);
    e.state = IOT_ENROLL_DENIED;
    assert_int_equal(iot_enroll_import_request(reg_b, &e, &changed, &err), IOT_OK);
    assert_false(changed);
    assert_int_equal(request_state_in_b("dev-req"), IOT_ENROLL_APPROVED);
}

static void a_revoked_issuer_signs_nothing(void **state)
{
    (void)state;
    char token[IOT_TOKEN_LEN + 1];
    new_token("dev-x", DAY, token);
    csr c;
    make_csr("dev-x", &c);
    iot_err err;
    assert_int_equal(iot_registry_begin(reg, &err), IOT_OK);
    assert_int_equal(
        iot_registry_revoke(reg, IOT_KIND_ISSUER, "gw-issuer", "key-compromise", NOW, &err),
        IOT_OK);
    assert_int_equal(iot_registry_commit(reg, &err), IOT_OK);
    iot_enroll_result r = by_token("dev-x", token, &c, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_UNAVAILABLE);
    assert_string_equal(r.reason, "issuer_revoked");
    /* An issuer the registry does not know signs nothing either. */
    pki_ca stranger = {0};
    assert_int_equal(make_ca(&root, PKI_PROFILE_INTERMEDIATE, "stranger", &stranger), IOT_OK);
    iot_enroll_request req = {.method = IOT_ENROLL_BY_TOKEN,
                              .device_id = "dev-x",
                              .token = token,
                              .csr = c.der,
                              .csr_len = c.len,
                              .now = NOW};
    assert_int_equal(iot_enroll(reg, &stranger, &policy, &req, &r, &err), IOT_OK);
    assert_string_equal(r.reason, "issuer_unknown");
    pki_ca_free(&stranger);
    EVP_PKEY_free(c.key);
}

/* What the shared state answers to a claim, and what it was asked. */
static iot_status claim_answer;
static char claimed_device[64];
static char claimed_spki[IOT_FPR_HEX_LEN + 1];
static int claims;

static iot_status fake_claim(void *ctx, const char *token_hash, const char *device,
                             const char *spki, iot_err *err)
{
    (void)ctx;
    claims++;
    assert_int_equal(strlen(token_hash), IOT_FPR_HEX_LEN);
    snprintf(claimed_device, sizeof(claimed_device), "%s", device);
    snprintf(claimed_spki, sizeof(claimed_spki), "%s", spki);
    return claim_answer == IOT_OK
               ? IOT_OK
               : iot_err_set(err, claim_answer, "the claim was answered %d", (int)claim_answer);
}

/* Several gateways: a token valid here is claimed before it is spent; a
 * claim lost to another gateway refuses it as used, and a claim without
 * an answer fails the enrollment with nothing written. A token refused
 * here is never claimed. */
static void a_token_is_claimed_before_it_is_spent(void **state)
{
    (void)state;
    iot_enroll_policy shared = policy;
    shared.claim_token = fake_claim;
    char token[IOT_TOKEN_LEN + 1];
    new_token("dev-claim", DAY, token);
    csr c;
    make_csr("dev-claim", &c);
    iot_enroll_request req = {.method = IOT_ENROLL_BY_TOKEN,
                              .device_id = "dev-claim",
                              .token = token,
                              .csr = c.der,
                              .csr_len = c.len,
                              .peer = "127.0.0.1",
                              .now = NOW};
    iot_enroll_result r;
    iot_err err;
    char before[128];
    char after[128];
    dump(before, sizeof(before));
    claim_answer = IOT_EIO;
    assert_int_equal(iot_enroll(reg, &issuer, &shared, &req, &r, &err), IOT_EIO);
    dump(after, sizeof(after));
    assert_string_equal(before, after);
    claim_answer = IOT_EEXIST;
    assert_int_equal(iot_enroll(reg, &issuer, &shared, &req, &r, &err), IOT_OK);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_BAD_AUTH);
    assert_string_equal(r.reason, "token_used");
    dump(after, sizeof(after));
    assert_string_equal(before, after);
    int asked = claims;
    req.now = NOW + 2 * DAY; /* refused here: never claimed */
    assert_int_equal(iot_enroll(reg, &issuer, &shared, &req, &r, &err), IOT_OK);
    assert_string_equal(r.reason, "token_expired");
    assert_int_equal(claims, asked);
    req.now = NOW;
    claim_answer = IOT_OK;
    assert_int_equal(iot_enroll(reg, &issuer, &shared, &req, &r, &err), IOT_OK);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    assert_string_equal(claimed_device, "dev-claim");
    char spki[IOT_FPR_HEX_LEN + 1];
    assert_int_equal(pki_key_fingerprint(c.key, spki, &err), IOT_OK);
    assert_string_equal(claimed_spki, spki);
    X509_free(r.cert);
    EVP_PKEY_free(c.key);
}

/* ---- a second gateway takes in what the first issued and revoked ---------- */

typedef struct der {
    unsigned char buf[4096];
    size_t len;
} der;

static void der_of(X509 *cert, der *out)
{
    int n = i2d_X509(cert, NULL);
    assert_true(n > 0 && (size_t)n <= sizeof(out->buf));
    unsigned char *p = out->buf;
    out->len = (size_t)i2d_X509(cert, &p);
}

/* What B's import said last, to check that a refusal names the device. */
static iot_err import_err;

static iot_status import_b(const der *d, const char *device, const char *previous,
                           int64_t grace_until, int64_t now, iot_import_outcome *out)
{
    iot_enroll_import in = {.der = d->buf,
                            .der_len = d->len,
                            .device = device,
                            .previous = previous,
                            .grace_until = grace_until,
                            .issuers = trusted};
    memset(&import_err, 0, sizeof(import_err));
    return iot_enroll_import_cert(reg_b, &in, now, out, &import_err);
}

static iot_status revoke_b(const char *device, const char *serial, const char *reason, int64_t now,
                           bool *changed)
{
    iot_err err;
    return iot_enroll_import_revocation(reg_b, device, serial, reason, now, changed, &err);
}

/* A first enrollment on gateway A at NOW: its certificate as DER, and
 * its record in A. */
static void enroll_on_a(const char *device, der *d, iot_cert_record *rec)
{
    char token[IOT_TOKEN_LEN + 1];
    new_token(device, DAY, token);
    csr c;
    make_csr(device, &c);
    iot_enroll_result r = by_token(device, token, &c, NOW);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    der_of(r.cert, d);
    *rec = r.issued;
    X509_free(r.cert);
    EVP_PKEY_free(c.key);
}

/* A renewal on gateway A of the certificate `serial`, with a new key. */
static void renew_on_a(const char *device, const char *serial, int64_t now, der *d,
                       iot_cert_record *rec)
{
    csr c;
    make_csr(device, &c);
    iot_enroll_result r = renew_with(device, serial, &c, now);
    assert_int_equal(r.outcome, IOT_ENROLL_OUT_ISSUED);
    der_of(r.cert, d);
    *rec = r.issued;
    X509_free(r.cert);
    EVP_PKEY_free(c.key);
}

/* A certificate signed directly by `ca`, as a forger or a careless tool
 * would make one. */
static void sign_directly(const pki_ca *ca, pki_profile_type type, const char *unit, const char *cn,
                          der *d)
{
    EVP_PKEY *key = NULL;
    iot_err err;
    assert_int_equal(pki_key_generate(&key, &err), IOT_OK);
    pki_profile p = {.type = type,
                     .common_name = cn,
                     .organization = PKI_ORGANIZATION,
                     .unit = unit,
                     .not_before = NOW - 300,
                     .not_after = NOW + 90 * DAY};
    if (type == PKI_PROFILE_SERVER) {
        p.dns[0] = cn;
        p.n_dns = 1;
    }
    X509 *cert = NULL;
    assert_int_equal(pki_issue(ca, key, &p, &cert, &err), IOT_OK);
    der_of(cert, d);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* A certificate for `cn` signed by the issuer that reuses `serial`. */
static void sign_with_serial(const char *cn, const char *serial, der *d)
{
    sign_directly(&issuer, PKI_PROFILE_CLIENT, "device", cn, d);
    const unsigned char *p = d->buf;
    X509 *cert = d2i_X509(NULL, &p, (long)d->len);
    assert_non_null(cert);
    BIGNUM *bn = NULL;
    assert_true(BN_hex2bn(&bn, serial) > 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)));
    assert_true(X509_sign(cert, issuer.key, EVP_sha256()) > 0);
    der_of(cert, d);
    BN_free(bn);
    X509_free(cert);
}

static void a_certificate_issued_elsewhere_is_taken_in_once(void **state)
{
    (void)state;
    der d;
    iot_cert_record a;
    enroll_on_a("dev-imp", &d, &a);
    iot_import_outcome o = IOT_IMPORT_KNOWN;
    assert_int_equal(import_b(&d, "dev-imp", NULL, 0, NOW + 5, &o), IOT_OK);
    assert_int_equal(o, IOT_IMPORT_ADDED);
    /* B records it as A did, created when B took it in, the DER kept. */
    iot_cert_record b;
    iot_err err;
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-imp", &b, &err), IOT_OK);
    assert_int_equal(b.kind, IOT_KIND_DEVICE);
    assert_false(b.revoked);
    assert_string_equal(b.serial, a.serial);
    assert_string_equal(b.fingerprint, a.fingerprint);
    assert_string_equal(b.spki, a.spki);
    assert_string_equal(b.issuer, a.issuer);
    assert_true(b.issuer[0] != '\0');
    assert_int_equal(b.not_before, a.not_before);
    assert_int_equal(b.not_after, a.not_after);
    assert_int_equal(b.created, NOW + 5);
    unsigned char kept[4096];
    size_t len = 0;
    assert_int_equal(iot_registry_get_der(reg_b, b.serial, kept, sizeof(kept), &len, &err), IOT_OK);
    assert_int_equal(len, d.len);
    assert_memory_equal(kept, d.buf, len);
    /* The same certificate again, later or as a renewal of nothing: known,
     * nothing written. */
    char before[128], after[128];
    dump_of(db_b, before, sizeof(before));
    o = IOT_IMPORT_ADDED;
    assert_int_equal(import_b(&d, "dev-imp", "", 0, NOW + DAY, &o), IOT_OK);
    assert_int_equal(o, IOT_IMPORT_KNOWN);
    dump_of(db_b, after, sizeof(after));
    assert_string_equal(before, after);
}

/* Each refusal names the device and writes nothing. */
static void refused(const der *d, const char *device, const char *previous, int64_t now,
                    iot_status expected)
{
    char before[128], after[128];
    dump_of(db_b, before, sizeof(before));
    iot_import_outcome o = IOT_IMPORT_KNOWN;
    assert_int_equal(import_b(d, device, previous, 0, now, &o), expected);
    if (device != NULL && strchr(device, '/') == NULL)
        assert_non_null(strstr(import_err.msg, device));
    dump_of(db_b, after, sizeof(after));
    assert_string_equal(before, after);
}

static void what_is_not_a_trusted_device_certificate_is_refused(void **state)
{
    (void)state;
    /* Signed by a CA B does not trust; then trusted by the caller but no
     * issuer of B's registry. */
    pki_ca stranger = {0};
    assert_int_equal(make_ca(&root, PKI_PROFILE_INTERMEDIATE, "stranger", &stranger), IOT_OK);
    der d;
    sign_directly(&stranger, PKI_PROFILE_CLIENT, "device", "dev-s", &d);
    refused(&d, "dev-s", NULL, NOW, IOT_EPERM);
    STACK_OF(X509) *mine = trusted;
    trusted = sk_X509_new_null();
    assert_non_null(trusted);
    assert_true(sk_X509_push(trusted, stranger.cert) > 0);
    refused(&d, "dev-s", NULL, NOW, IOT_EPERM);
    assert_non_null(strstr(import_err.msg, "not an issuer"));
    sk_X509_free(trusted);
    trusted = mine;
    pki_ca_free(&stranger);
    /* A's certificate of another device, or for a name that is no device
     * ID; then expired. */
    iot_cert_record a;
    enroll_on_a("dev-wrong", &d, &a);
    refused(&d, "dev-other", NULL, NOW, IOT_EINVAL);
    refused(&d, "DEV-WRONG", NULL, NOW, IOT_EINVAL);
    refused(&d, "bad/id", NULL, NOW, IOT_EINVAL);
    refused(&d, "dev-wrong", NULL, a.not_after, IOT_EINVAL);
    assert_non_null(strstr(import_err.msg, "expired"));
    /* Signed by the issuer, but no device certificate: another unit, a
     * server profile. */
    sign_directly(&issuer, PKI_PROFILE_CLIENT, "gateway", "dev-gw", &d);
    refused(&d, "dev-gw", NULL, NOW, IOT_EINVAL);
    sign_directly(&issuer, PKI_PROFILE_SERVER, "device", "dev-srv", &d);
    refused(&d, "dev-srv", NULL, NOW, IOT_EINVAL);
    /* Not one DER certificate: garbage, a byte too many, nothing, too big;
     * then A's certificate with its signature altered, names intact. */
    enroll_on_a("dev-bytes", &d, &a);
    der tampered = d;
    tampered.buf[tampered.len - 1] ^= 0x01;
    refused(&tampered, "dev-bytes", NULL, NOW, IOT_EPERM);
    d.buf[d.len++] = 0;
    refused(&d, "dev-bytes", NULL, NOW, IOT_EINVAL);
    d.len--;
    der junk = {.len = 16};
    memset(junk.buf, 0x30, junk.len);
    refused(&junk, "dev-bytes", NULL, NOW, IOT_EINVAL);
    junk.len = 0;
    refused(&junk, "dev-bytes", NULL, NOW, IOT_EINVAL);
    junk.len = sizeof(junk.buf);
    refused(&junk, "dev-bytes", NULL, NOW, IOT_EINVAL);
    /* A name B has with another certificate; a serial B has for another
     * certificate. */
    sign_directly(&issuer, PKI_PROFILE_CLIENT, "device", "dev-imp", &d);
    refused(&d, "dev-imp", NULL, NOW, IOT_EEXIST);
    iot_cert_record b;
    iot_err err;
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-imp", &b, &err), IOT_OK);
    sign_with_serial("dev-clash", b.serial, &d);
    refused(&d, "dev-clash", NULL, NOW, IOT_EEXIST);
    /* None of them was refused for want of the device in B: this one is
     * taken in. */
    enroll_on_a("dev-fine", &d, &a);
    iot_import_outcome o = IOT_IMPORT_KNOWN;
    assert_int_equal(import_b(&d, "dev-fine", NULL, 0, NOW, &o), IOT_OK);
    assert_int_equal(o, IOT_IMPORT_ADDED);
}

typedef struct successor_walk {
    const char *serial;
    const char *successor;
    int found;
} successor_walk;

static int match_successor(const iot_cert_record *rec, void *arg)
{
    successor_walk *w = arg;
    if (strcmp(rec->serial, w->serial) == 0 && strcmp(rec->successor, w->successor) == 0)
        w->found++;
    return 0;
}

/* How many times B lists `serial` as replaced by `successor`: among the
 * superseded certificates of `device`, or among those in grace at `now`. */
static int superseded_in_b(const char *device, const char *serial, const char *successor)
{
    successor_walk w = {.serial = serial, .successor = successor};
    iot_err err;
    assert_int_equal(iot_registry_foreach_superseded(reg_b, device, match_successor, &w, &err),
                     IOT_OK);
    return w.found;
}

static int in_grace_in_b(const char *serial, const char *successor, int64_t now)
{
    successor_walk w = {.serial = serial, .successor = successor};
    iot_err err;
    assert_int_equal(iot_registry_foreach_in_grace(reg_b, now, match_successor, &w, &err), IOT_OK);
    return w.found;
}

static void a_renewal_elsewhere_replaces_the_certificate_it_renewed(void **state)
{
    (void)state;
    der d1, d2, d3;
    iot_cert_record a1, a2, a3;
    enroll_on_a("dev-ren", &d1, &a1);
    iot_import_outcome o = IOT_IMPORT_KNOWN;
    assert_int_equal(import_b(&d1, "dev-ren", NULL, 0, NOW, &o), IOT_OK);
    assert_int_equal(o, IOT_IMPORT_ADDED);
    int64_t t = NOW + 60 * DAY;
    renew_on_a("dev-ren", a1.serial, t, &d2, &a2);
    assert_int_equal(import_b(&d2, "dev-ren", a1.serial, t + GRACE, t, &o), IOT_OK);
    assert_int_equal(o, IOT_IMPORT_RENEWED);
    iot_cert_record b;
    iot_err err;
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-ren", &b, &err), IOT_OK);
    assert_string_equal(b.serial, a2.serial);
    assert_string_equal(b.fingerprint, a2.fingerprint);
    assert_string_equal(b.spki, a2.spki);
    assert_int_equal(superseded_in_b("dev-ren", a1.serial, a2.serial), 1);
    assert_int_equal(in_grace_in_b(a1.serial, a2.serial, t), 1);
    assert_int_equal(in_grace_in_b(a1.serial, a2.serial, t + GRACE), 0);
    size_t len = 0;
    unsigned char kept[4096];
    assert_int_equal(iot_registry_get_der(reg_b, a2.serial, kept, sizeof(kept), &len, &err),
                     IOT_OK);
    assert_int_equal(len, d2.len);
    /* Replays of both, the replaced one included: known. */
    char before[128], after[128];
    dump_of(db_b, before, sizeof(before));
    assert_int_equal(import_b(&d2, "dev-ren", a1.serial, t + GRACE, t + 10, &o), IOT_OK);
    assert_int_equal(o, IOT_IMPORT_KNOWN);
    o = IOT_IMPORT_ADDED;
    assert_int_equal(import_b(&d1, "dev-ren", NULL, 0, t + 10, &o), IOT_OK);
    assert_int_equal(o, IOT_IMPORT_KNOWN);
    dump_of(db_b, after, sizeof(after));
    assert_string_equal(before, after);
    /* The next renewal must name the certificate B has, a2; without a
     * grace the replaced one stops at once. */
    renew_on_a("dev-ren", a2.serial, t + DAY, &d3, &a3);
    refused(&d3, "dev-ren", a1.serial, t + DAY, IOT_ESTATE);
    assert_int_equal(import_b(&d3, "dev-ren", a2.serial, 0, t + DAY, &o), IOT_OK);
    assert_int_equal(o, IOT_IMPORT_RENEWED);
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-ren", &b, &err), IOT_OK);
    assert_string_equal(b.serial, a3.serial);
    assert_int_equal(superseded_in_b("dev-ren", a2.serial, a3.serial), 1);
    assert_int_equal(in_grace_in_b(a2.serial, a3.serial, t + DAY), 0);
    /* A renewal of a device B never saw admits it. */
    enroll_on_a("dev-late", &d1, &a1);
    renew_on_a("dev-late", a1.serial, t, &d2, &a2);
    assert_int_equal(import_b(&d2, "dev-late", a1.serial, t + GRACE, t, &o), IOT_OK);
    assert_int_equal(o, IOT_IMPORT_ADDED);
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-late", &b, &err), IOT_OK);
    assert_string_equal(b.serial, a2.serial);
}

static int first_serial(const iot_cert_record *rec, void *arg)
{
    char *serial = arg;
    if (serial[0] == '\0')
        snprintf(serial, IOT_SERIAL_HEX_MAX + 1, "%s", rec->serial);
    return 0;
}

static void a_revocation_elsewhere_is_applied_once(void **state)
{
    (void)state;
    iot_cert_record imp, ren, late;
    iot_err err;
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-imp", &imp, &err), IOT_OK);
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-ren", &ren, &err), IOT_OK);
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-late", &late, &err), IOT_OK);
    bool changed = false;
    assert_int_equal(revoke_b("dev-imp", imp.serial, "key-compromise", NOW + DAY, &changed),
                     IOT_OK);
    assert_true(changed);
    iot_cert_record b;
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-imp", &b, &err), IOT_OK);
    assert_true(b.revoked);
    assert_int_equal(b.revoked_at, NOW + DAY);
    assert_string_equal(b.revoke_reason, "key-compromise");
    /* Again, and for a certificate a renewal replaced: nothing to do. */
    char before[128], after[128];
    dump_of(db_b, before, sizeof(before));
    changed = true;
    assert_int_equal(revoke_b("dev-imp", imp.serial, "key-compromise", NOW + DAY, &changed),
                     IOT_OK);
    assert_false(changed);
    char replaced[IOT_SERIAL_HEX_MAX + 1] = "";
    assert_int_equal(
        iot_registry_foreach_superseded(reg_b, "dev-ren", first_serial, replaced, &err), IOT_OK);
    assert_true(replaced[0] != '\0');
    assert_int_equal(revoke_b("dev-ren", replaced, "key-compromise", NOW + DAY, &changed), IOT_OK);
    assert_false(changed);
    /* A serial B does not have, one of another device, malformed ones. */
    assert_int_equal(revoke_b("dev-ren", "00AB", "key-compromise", NOW + DAY, &changed),
                     IOT_ENOENT);
    assert_int_equal(revoke_b("dev-imp", ren.serial, "key-compromise", NOW + DAY, &changed),
                     IOT_EINVAL);
    assert_int_equal(revoke_b("dev-ren", "00ab", "key-compromise", NOW + DAY, &changed),
                     IOT_EINVAL);
    assert_int_equal(revoke_b("bad/id", ren.serial, "key-compromise", NOW + DAY, &changed),
                     IOT_EINVAL);
    assert_false(changed);
    dump_of(db_b, after, sizeof(after));
    assert_string_equal(before, after);
    /* A reason iotctl would not record is recorded as unspecified. */
    assert_int_equal(revoke_b("dev-late", late.serial, "it's; gone", NOW + DAY, &changed), IOT_OK);
    assert_true(changed);
    assert_int_equal(iot_registry_get_by_name(reg_b, "dev-late", &b, &err), IOT_OK);
    assert_string_equal(b.revoke_reason, "unspecified");
    /* A revoked device does not come back with a certificate from
     * elsewhere, new or renewed. */
    der d;
    sign_directly(&issuer, PKI_PROFILE_CLIENT, "device", "dev-imp", &d);
    refused(&d, "dev-imp", NULL, NOW + DAY, IOT_ESTATE);
    refused(&d, "dev-imp", imp.serial, NOW + DAY, IOT_ESTATE);
}

int main(void)
{
    /* One registry through all cases, in order: later ones rely on the
     * names earlier ones took. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_enrolls_once_and_answers_a_lost_reply),
        cmocka_unit_test(bad_tokens_are_refused_and_write_nothing),
        cmocka_unit_test(a_key_seen_before_is_refused),
        cmocka_unit_test(approval_waits_then_issues_or_denies),
        cmocka_unit_test(renewal_keeps_the_old_certificate_in_grace),
        cmocka_unit_test(bootstrap_enrolls_with_a_new_key_only),
        cmocka_unit_test(a_token_is_claimed_before_it_is_spent),
        cmocka_unit_test(a_certificate_issued_elsewhere_is_taken_in_once),
        cmocka_unit_test(what_is_not_a_trusted_device_certificate_is_refused),
        cmocka_unit_test(a_renewal_elsewhere_replaces_the_certificate_it_renewed),
        cmocka_unit_test(a_revocation_elsewhere_is_applied_once),
        cmocka_unit_test(a_token_made_elsewhere_is_good_here),
        cmocka_unit_test(a_request_and_its_decision_travel),
        cmocka_unit_test(a_revoked_issuer_signs_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
