#define _GNU_SOURCE /* timegm */
#include "iot/pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "iot/fsutil.h"

/* Records an error and appends OpenSSL's most recent reason, if any. */
static iot_status ossl_fail(iot_err *err, iot_status st, const char *what)
{
    unsigned long code = ERR_peek_last_error();
    char reason[256] = "";
    if (code != 0)
        ERR_error_string_n(code, reason, sizeof(reason));
    ERR_clear_error();
    if (reason[0] != '\0')
        return iot_err_set(err, st, "%s (%s)", what, reason);
    return iot_err_set(err, st, "%s", what);
}

static void to_hex(const unsigned char *md, unsigned int len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < len; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 0xf];
    }
    out[2 * len] = '\0';
}

void pki_ca_free(pki_ca *ca)
{
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    ca->key = NULL;
    ca->cert = NULL;
}

static iot_status read_pem_bio(const char *path, BIO **out, iot_err *err)
{
    char *data = NULL;
    size_t len = 0;
    iot_status st = iot_file_read(path, PKI_PEM_MAX, &data, &len, err);
    if (st != IOT_OK)
        return st;
    /* BIO_new_mem_buf does not copy; keep the data alive in a new mem BIO. */
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || BIO_write(bio, data, (int)len) != (int)len) {
        BIO_free(bio);
        OPENSSL_clear_free(data, len);
        return ossl_fail(err, IOT_ENOMEM, "out of memory");
    }
    OPENSSL_clear_free(data, len);
    *out = bio;
    return IOT_OK;
}

iot_status pki_ca_load(const char *key_path, const char *cert_path, pki_ca *ca, iot_err *err)
{
    BIO *bio = NULL;
    memset(ca, 0, sizeof(*ca));
    iot_status st = iot_key_mode_check(key_path, err);
    if (st == IOT_ENOENT)
        return iot_err_set(err, IOT_ENOENT,
                           "CA key %s does not exist; create the CA with 'iotctl pki init'",
                           key_path);
    if (st != IOT_OK)
        return st;
    st = read_pem_bio(key_path, &bio, err);
    if (st != IOT_OK)
        goto out;
    ca->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    bio = NULL;
    if (ca->key == NULL) {
        st = ossl_fail(err, IOT_ECRYPTO, "CA key is not a readable PEM private key");
        iot_err_wrap(err, "%s", key_path);
        goto out;
    }
    st = read_pem_bio(cert_path, &bio, err);
    if (st != IOT_OK)
        goto out;
    ca->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (ca->cert == NULL) {
        st = ossl_fail(err, IOT_ECRYPTO, "CA certificate is not a readable PEM certificate");
        iot_err_wrap(err, "%s", cert_path);
        goto out;
    }
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        st = ossl_fail(err, IOT_ECRYPTO, "CA key does not match the CA certificate");
        iot_err_wrap(err, "%s and %s", key_path, cert_path);
        goto out;
    }
out:
    if (st != IOT_OK)
        pki_ca_free(ca);
    return st;
}

iot_status pki_key_generate(EVP_PKEY **out, iot_err *err)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (*out == NULL)
        return ossl_fail(err, IOT_ECRYPTO, "cannot generate an ECDSA P-256 key");
    return IOT_OK;
}

/* 128 random bits, positive and of fixed length (RFC 5280 4.1.2.2 and the
 * CA/B Forum's 64-bit entropy minimum). */
static iot_status set_random_serial(X509 *cert, iot_err *err)
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return ossl_fail(err, IOT_ECRYPTO, "no randomness for a serial number");
    raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
    BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
    iot_status st = IOT_OK;
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
        st = ossl_fail(err, IOT_ECRYPTO, "cannot set the serial number");
    BN_free(bn);
    return st;
}

static iot_status build_name(X509_NAME *name, const pki_profile *p, iot_err *err)
{
    struct {
        const char *field;
        const char *value;
    } parts[] = {{"O", p->organization}, {"OU", p->unit}, {"CN", p->common_name}};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (parts[i].value == NULL || parts[i].value[0] == '\0')
            continue;
        if (!X509_NAME_add_entry_by_txt(name, parts[i].field, MBSTRING_UTF8,
                                        (const unsigned char *)parts[i].value, -1, -1, 0))
            return ossl_fail(err, IOT_EINVAL, "cannot set the certificate subject");
    }
    return IOT_OK;
}

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (ex == NULL)
        return 0;
    int ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok;
}

/* subjectAltName built from typed values, never from a config string, so a
 * name cannot smuggle extra entries in. */
static iot_status add_sans(X509 *cert, const pki_profile *p, iot_err *err)
{
    if (p->n_dns == 0 && p->n_ips == 0)
        return IOT_OK;
    iot_status st = IOT_OK;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL)
        return ossl_fail(err, IOT_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n_dns; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (g == NULL || s == NULL || !ASN1_STRING_set(s, p->dns[i], -1)) {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(s);
            st = ossl_fail(err, IOT_ENOMEM, "out of memory");
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        sk_GENERAL_NAME_push(gens, g);
    }
    for (size_t i = 0; i < p->n_ips; i++) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(p->ips[i]);
        if (ip == NULL) {
            st = iot_err_set(err, IOT_EINVAL, "'%s' is not an IPv4 or IPv6 address", p->ips[i]);
            ERR_clear_error();
            goto out;
        }
        GENERAL_NAME *g = GENERAL_NAME_new();
        if (g == NULL) {
            ASN1_OCTET_STRING_free(ip);
            st = ossl_fail(err, IOT_ENOMEM, "out of memory");
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
        sk_GENERAL_NAME_push(gens, g);
    }
    if (!X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT))
        st = ossl_fail(err, IOT_ECRYPTO, "cannot add subjectAltName");
out:
    GENERAL_NAMES_free(gens);
    return st;
}

static iot_status add_profile_extensions(X509 *cert, X509 *issuer, const pki_profile *p,
                                         iot_err *err)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    const char *bc = "critical,CA:FALSE";
    const char *ku = "critical,digitalSignature";
    const char *eku = NULL;
    switch (p->type) {
    case PKI_PROFILE_CA:
        /* pathlen 1: the root may sign issuing CAs (the gateway's, for
         * enrollment), which may sign only end-entity certificates. */
        bc = "critical,CA:TRUE,pathlen:1";
        ku = "critical,keyCertSign,cRLSign";
        break;
    case PKI_PROFILE_INTERMEDIATE:
        bc = "critical,CA:TRUE,pathlen:0";
        ku = "critical,keyCertSign,cRLSign";
        break;
    case PKI_PROFILE_SERVER:
        /* A server that is also its peers' client (an etcd member dials
         * its peers, and its own JSON gateway dials its gRPC port, with
         * the one certificate). */
        eku = p->also_client ? "serverAuth,clientAuth" : "serverAuth";
        break;
    case PKI_PROFILE_CLIENT:
        eku = "clientAuth";
        break;
    }
    int ok = add_ext(cert, &ctx, NID_basic_constraints, bc) &&
             add_ext(cert, &ctx, NID_key_usage, ku) &&
             add_ext(cert, &ctx, NID_subject_key_identifier, "hash");
    if (ok && eku != NULL)
        ok = add_ext(cert, &ctx, NID_ext_key_usage, eku);
    if (ok && p->type != PKI_PROFILE_CA)
        ok = add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always");
    if (!ok)
        return ossl_fail(err, IOT_ECRYPTO, "cannot add certificate extensions");
    return add_sans(cert, p, err);
}

/* Everything of the certificate but its signature. */
static iot_status fill_cert(X509 *cert, const pki_ca *ca, EVP_PKEY *subject_key,
                            const pki_profile *p, iot_err *err)
{
    if (!X509_set_version(cert, X509_VERSION_3))
        return ossl_fail(err, IOT_ECRYPTO, "cannot fill in the certificate");
    iot_status st = set_random_serial(cert, err);
    if (st != IOT_OK)
        return st;
    st = build_name(X509_get_subject_name(cert), p, err);
    if (st != IOT_OK)
        return st;
    X509_NAME *issuer_name = ca ? X509_get_subject_name(ca->cert) : X509_get_subject_name(cert);
    if (!X509_set_issuer_name(cert, issuer_name) ||
        !ASN1_TIME_set(X509_getm_notBefore(cert), p->not_before) ||
        !ASN1_TIME_set(X509_getm_notAfter(cert), p->not_after) ||
        !X509_set_pubkey(cert, subject_key))
        return ossl_fail(err, IOT_ECRYPTO, "cannot fill in the certificate");
    return add_profile_extensions(cert, ca ? ca->cert : cert, p, err);
}

iot_status pki_issue(const pki_ca *ca, EVP_PKEY *subject_key, const pki_profile *p, X509 **out,
                     iot_err *err)
{
    *out = NULL;
    if (ca == NULL && p->type != PKI_PROFILE_CA)
        return iot_err_set(err, IOT_EINVAL, "only a CA certificate may be self-signed");
    if (p->not_after <= p->not_before)
        return iot_err_set(err, IOT_EINVAL, "the validity period ends before it starts");
    X509 *cert = X509_new();
    if (cert == NULL)
        return ossl_fail(err, IOT_ENOMEM, "out of memory");
    iot_status st = fill_cert(cert, ca, subject_key, p, err);
    if (st != IOT_OK)
        goto out;
    EVP_PKEY *signer = ca ? ca->key : subject_key;
    if (X509_sign(cert, signer, EVP_sha256()) <= 0) {
        st = ossl_fail(err, IOT_ECRYPTO, "cannot sign the certificate");
        goto out;
    }
    *out = cert;
    cert = NULL;
out:
    X509_free(cert);
    return st;
}

/* Drains a memory BIO into a malloc'd NUL-terminated buffer. */
static iot_status bio_to_buf(BIO *bio, char **pem, size_t *len, iot_err *err)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0)
        return ossl_fail(err, IOT_ECRYPTO, "cannot encode PEM");
    char *copy = malloc((size_t)n + 1);
    if (copy == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    OPENSSL_cleanse(data, (size_t)n);
    *pem = copy;
    *len = (size_t)n;
    return IOT_OK;
}

iot_status pki_key_pem(EVP_PKEY *key, char **pem, size_t *len, iot_err *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return ossl_fail(err, IOT_ENOMEM, "out of memory");
    iot_status st = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                        ? bio_to_buf(bio, pem, len, err)
                        : ossl_fail(err, IOT_ECRYPTO, "cannot encode the private key");
    BIO_free(bio);
    return st;
}

iot_status pki_cert_pem(X509 *cert, char **pem, size_t *len, iot_err *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return ossl_fail(err, IOT_ENOMEM, "out of memory");
    iot_status st = PEM_write_bio_X509(bio, cert)
                        ? bio_to_buf(bio, pem, len, err)
                        : ossl_fail(err, IOT_ECRYPTO, "cannot encode the certificate");
    BIO_free(bio);
    return st;
}

iot_status pki_crl_pem(X509_CRL *crl, char **pem, size_t *len, iot_err *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return ossl_fail(err, IOT_ENOMEM, "out of memory");
    iot_status st = PEM_write_bio_X509_CRL(bio, crl)
                        ? bio_to_buf(bio, pem, len, err)
                        : ossl_fail(err, IOT_ECRYPTO, "cannot encode the CRL");
    BIO_free(bio);
    return st;
}

static int64_t asn1_time_to_unix(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!ASN1_TIME_to_tm(t, &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

iot_status pki_cert_facts_get(X509 *cert, pki_cert_facts *f, iot_err *err)
{
    memset(f, 0, sizeof(*f));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    if (hex == NULL || strlen(hex) > IOT_SERIAL_HEX_MAX) {
        OPENSSL_free(hex);
        return ossl_fail(err, IOT_ECRYPTO, "cannot read the serial number");
    }
    snprintf(f->serial, sizeof(f->serial), "%s", hex);
    OPENSSL_free(hex);

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!X509_digest(cert, EVP_sha256(), md, &md_len) || md_len * 2 != IOT_FPR_HEX_LEN)
        return ossl_fail(err, IOT_ECRYPTO, "cannot compute the fingerprint");
    to_hex(md, md_len, f->fingerprint);
    f->not_before = asn1_time_to_unix(X509_get0_notBefore(cert));
    f->not_after = asn1_time_to_unix(X509_get0_notAfter(cert));
    return IOT_OK;
}

iot_status pki_key_fingerprint(EVP_PKEY *key, char out[IOT_FPR_HEX_LEN + 1], iot_err *err)
{
    unsigned char *der = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int n = i2d_PUBKEY(key, &der);
    iot_status st = IOT_OK;
    if (n <= 0 || !EVP_Digest(der, (size_t)n, md, &md_len, EVP_sha256(), NULL) ||
        md_len * 2 != IOT_FPR_HEX_LEN)
        st = ossl_fail(err, IOT_ECRYPTO, "cannot compute the public key's fingerprint");
    else
        to_hex(md, md_len, out);
    OPENSSL_free(der);
    return st;
}

iot_status pki_cert_load(const char *path, X509 **out, iot_err *err)
{
    BIO *bio = NULL;
    *out = NULL;
    iot_status st = read_pem_bio(path, &bio, err);
    if (st != IOT_OK)
        return st;
    *out = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (*out == NULL) {
        st = ossl_fail(err, IOT_ECRYPTO, "not a readable PEM certificate");
        iot_err_wrap(err, "%s", path);
    }
    return st;
}

iot_status pki_subject_text(X509 *cert, char *buf, size_t size, iot_err *err)
{
    iot_status st = IOT_OK;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;
    if (bio != NULL &&
        X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0)
        n = BIO_get_mem_data(bio, &data);
    if (n <= 0) {
        st = ossl_fail(err, IOT_ECRYPTO, "cannot print the certificate subject");
        goto out;
    }
    if ((size_t)n >= size) {
        st = iot_err_set(err, IOT_ENOMEM, "the certificate subject is longer than %zu bytes", size);
        goto out;
    }
    memcpy(buf, data, (size_t)n);
    buf[n] = '\0';
out:
    BIO_free(bio);
    return st;
}

/* The subject must carry exactly one CN, equal to the expected identity:
 * a CSR that names someone else must not be signed for this device. */
static iot_status check_csr_subject(X509_REQ *req, const char *path, const char *expected_cn,
                                    iot_err *err)
{
    X509_NAME *subject = X509_REQ_get_subject_name(req);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx < 0)
        return iot_err_set(err, IOT_EINVAL, "CSR %s has no common name; it must be CN=%s", path,
                           expected_cn);
    if (X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0)
        return iot_err_set(err, IOT_EINVAL, "CSR %s has more than one common name", path);
    ASN1_STRING *value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, value);
    if (n < 0)
        return ossl_fail(err, IOT_EINVAL, "CSR common name is not valid text");
    iot_status st = IOT_OK;
    if ((size_t)n != strlen(expected_cn) || memcmp(utf8, expected_cn, (size_t)n) != 0) {
        char shown[IOT_ID_MAX + 1];
        iot_status valid = iot_id_check("CN", (const char *)utf8, NULL);
        /* Never echo a hostile CN verbatim: it may hold control characters. */
        snprintf(shown, sizeof(shown), "%s",
                 (valid == IOT_OK && (size_t)n == strlen((const char *)utf8)) ? (const char *)utf8
                                                                              : "<not a valid ID>");
        st = iot_err_set(err, IOT_EINVAL,
                         "CSR %s is for CN=%s, but the device ID is %s; the subject must match "
                         "the ID",
                         path, shown, expected_cn);
    }
    OPENSSL_free(utf8);
    return st;
}

static iot_status check_device_key(EVP_PKEY *pk, const char *path, iot_err *err)
{
    char group[64] = "";
    if (!EVP_PKEY_is_a(pk, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        NULL) ||
        strcmp(group, "prime256v1") != 0) {
        ERR_clear_error();
        return iot_err_set(err, IOT_EINVAL,
                           "CSR %s has a %s%s%s key; device keys must be ECDSA P-256", path,
                           EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "unknown",
                           group[0] ? " " : "", group);
    }
    return IOT_OK;
}

iot_status pki_csr_parse(const void *buf, size_t len, const char *source, const char *expected_cn,
                         EVP_PKEY **pubkey, iot_err *err)
{
    *pubkey = NULL;
    if (len > PKI_CSR_MAX)
        return iot_err_set(err, IOT_EINVAL, "CSR %s is larger than %d bytes", source, PKI_CSR_MAX);
    iot_status st = IOT_OK;
    X509_REQ *req = NULL;
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (bio != NULL)
        req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    if (req == NULL) {
        const unsigned char *p = buf;
        req = d2i_X509_REQ(NULL, &p, (long)len);
    }
    BIO_free(bio);
    if (req == NULL) {
        st = iot_err_set(err, IOT_EINVAL,
                         "%s is not a certificate signing request (expected PEM 'BEGIN "
                         "CERTIFICATE REQUEST' or DER)",
                         source);
        ERR_clear_error();
        goto out;
    }
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    if (pk == NULL || X509_REQ_verify(req, pk) != 1) {
        st = iot_err_set(err, IOT_ECRYPTO,
                         "CSR %s has a signature that does not verify; it was altered or "
                         "damaged",
                         source);
        ERR_clear_error();
        goto out;
    }
    st = check_device_key(pk, source, err);
    if (st != IOT_OK)
        goto out;
    st = check_csr_subject(req, source, expected_cn, err);
    if (st != IOT_OK)
        goto out;
    if (!EVP_PKEY_up_ref(pk)) {
        st = ossl_fail(err, IOT_ECRYPTO, "cannot keep the CSR key");
        goto out;
    }
    *pubkey = pk;
out:
    X509_REQ_free(req);
    return st;
}

iot_status pki_csr_load(const char *path, const char *expected_cn, EVP_PKEY **pubkey, iot_err *err)
{
    *pubkey = NULL;
    char *data = NULL;
    size_t len = 0;
    iot_status st = iot_file_read(path, PKI_CSR_MAX, &data, &len, err);
    if (st != IOT_OK)
        return st;
    st = pki_csr_parse(data, len, path, expected_cn, pubkey, err);
    free(data);
    return st;
}

static const struct {
    const char *name;
    int code;
} REASONS[] = {
    {"unspecified", CRL_REASON_UNSPECIFIED},
    {"key-compromise", CRL_REASON_KEY_COMPROMISE},
    {"affiliation-changed", CRL_REASON_AFFILIATION_CHANGED},
    {"superseded", CRL_REASON_SUPERSEDED},
    {"cessation-of-operation", CRL_REASON_CESSATION_OF_OPERATION},
};

const char *const pki_reason_names =
    "unspecified, key-compromise, affiliation-changed, superseded, cessation-of-operation";

int pki_reason_code(const char *name)
{
    for (size_t i = 0; i < sizeof(REASONS) / sizeof(REASONS[0]); i++)
        if (strcmp(name, REASONS[i].name) == 0)
            return REASONS[i].code;
    return -1;
}

struct crl_walk {
    X509_CRL *crl;
    iot_err *err;
};

static int crl_add_revoked(const iot_cert_record *rec, void *ctx)
{
    struct crl_walk *w = ctx;
    /* The root's CRL speaks for what the root signed: an intermediate's
     * certificates are refused through the registry (issuer_revoked). */
    if (rec->issuer[0] != '\0')
        return 0;
    X509_REVOKED *r = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = NULL;
    ASN1_ENUMERATED *reason = NULL;
    int code = rec->revoke_reason[0] ? pki_reason_code(rec->revoke_reason) : -1;
    int ok = 0;
    if (r == NULL || BN_hex2bn(&bn, rec->serial) <= 0)
        goto out;
    serial = BN_to_ASN1_INTEGER(bn, NULL);
    if (serial == NULL || !X509_REVOKED_set_serialNumber(r, serial))
        goto out;
    when = ASN1_TIME_set(NULL, (time_t)rec->revoked_at);
    if (when == NULL || !X509_REVOKED_set_revocationDate(r, when))
        goto out;
    if (code > 0) {
        reason = ASN1_ENUMERATED_new();
        if (reason == NULL || !ASN1_ENUMERATED_set(reason, code) ||
            !X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0))
            goto out;
    }
    ok = X509_CRL_add0_revoked(w->crl, r);
out:
    BN_free(bn);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(when);
    ASN1_ENUMERATED_free(reason);
    if (!ok) {
        X509_REVOKED_free(r);
        ossl_fail(w->err, IOT_ECRYPTO, "cannot add a revoked certificate to the CRL");
        iot_err_wrap(w->err, "serial %s", rec->serial);
        return IOT_ECRYPTO;
    }
    return 0;
}

iot_status pki_crl_build(const pki_ca *ca, iot_registry *reg, uint64_t number, time_t now,
                         int valid_days, X509_CRL **out, iot_err *err)
{
    *out = NULL;
    iot_status st = IOT_OK;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_set(NULL, now);
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    if (crl == NULL || t == NULL || num == NULL) {
        st = ossl_fail(err, IOT_ENOMEM, "out of memory");
        goto out;
    }
    if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
        !X509_CRL_set1_lastUpdate(crl, t) || !ASN1_TIME_set(t, now + (time_t)valid_days * 86400) ||
        !X509_CRL_set1_nextUpdate(crl, t)) {
        st = ossl_fail(err, IOT_ECRYPTO, "cannot fill in the CRL");
        goto out;
    }
    struct crl_walk walk = {crl, err};
    st = iot_registry_foreach_revoked(reg, crl_add_revoked, &walk, err);
    if (st != IOT_OK)
        goto out;
    X509_CRL_sort(crl);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
    X509_EXTENSION *aki =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    int ok = aki != NULL && X509_CRL_add_ext(crl, aki, -1) &&
             ASN1_INTEGER_set_uint64(num, number) &&
             X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) &&
             X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0;
    X509_EXTENSION_free(aki);
    if (!ok) {
        st = ossl_fail(err, IOT_ECRYPTO, "cannot sign the CRL");
        goto out;
    }
    *out = crl;
    crl = NULL;
out:
    X509_CRL_free(crl);
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(num);
    return st;
}
