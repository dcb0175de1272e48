/* Operator passwords: scrypt (OpenSSL 3's EVP_KDF "SCRYPT"), memory-hard so
 * that a stolen operators file costs an attacker memory as well as time per
 * guess. The stored form records its parameters, so they can be raised
 * later without invalidating existing entries:
 *
 *     scrypt$N$r$p$SALT$HASH      (SALT 16 bytes, HASH 32 bytes, lower-case hex)
 *
 * Used by iotctl (operator add) and iotconsole (login). */
#ifndef IC_PWHASH_H
#define IC_PWHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iot/status.h"

#define IC_PASSWORD_MIN 12
#define IC_PASSWORD_MAX 256
#define IC_PWHASH_MAX   192 /* the stored form, with its NUL */

typedef struct ic_scrypt_params {
    uint64_t n; /* CPU/memory cost, a power of two */
    uint32_t r; /* block size */
    uint32_t p; /* parallelism */
} ic_scrypt_params;

/* N = 2^15, r = 8, p = 1: 32 MiB and about 0.1 s per guess on a server. */
extern const ic_scrypt_params IC_SCRYPT_DEFAULT;

/* NULL when `pw` is acceptable for operator `name`, else why not: shorter
 * than IC_PASSWORD_MIN, longer than IC_PASSWORD_MAX, a control byte, fewer
 * than 6 distinct characters, or it contains the operator's name. */
const char *ic_password_weak(const char *name, const char *pw, size_t len);

/* Hashes `pw` with a fresh random salt into out (IC_PWHASH_MAX bytes). */
iot_status ic_pwhash_make(const char *pw, size_t len, const ic_scrypt_params *params,
                          char out[IC_PWHASH_MAX], iot_err *err);

/* As ic_pwhash_make with the salt given (tests, and verification). */
iot_status ic_pwhash_make_salted(const char *pw, size_t len, const ic_scrypt_params *params,
                                 const unsigned char salt[16], char out[IC_PWHASH_MAX],
                                 iot_err *err);

/* Whether `pw` matches the stored form, compared in constant time. A form
 * that does not parse, or whose parameters are outside what the console
 * accepts (N above 2^20, r above 32, p above 4: a damaged or hostile file
 * must not make a login cost gigabytes), never matches. */
bool ic_pwhash_verify(const char *pw, size_t len, const char *stored);

/* Whether a stored form parses with acceptable parameters. */
bool ic_pwhash_valid(const char *stored);

#endif
