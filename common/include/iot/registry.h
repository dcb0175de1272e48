/* The registry of every certificate the project CA has issued: devices,
 * servers (gateway, broker) and clients (the gateway's MQTT identity,
 * operators, consumers). SQLite, one file, written by the admin CLI and read
 * by the gateway to decide whether a device may speak.
 *
 * A name (device ID or certificate name) is unique across all kinds: a
 * name means one certificate holder in the broker's ACL (which names the
 * subject, CN and role), the logs and the registry. Names are not reused after
 * revocation; the row stays as the audit trail. A renewal keeps the name:
 * the row then describes the new certificate and the replaced one moves to
 * the `superseded` table, from where the CRL lists it.
 *
 * The database uses a rollback journal, not WAL, so readers need only read
 * access to the file. Every call that touches the file may return IOT_EBUSY
 * when another process holds the lock past the busy timeout.
 */
#ifndef IOT_REGISTRY_H
#define IOT_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "iot/identity.h"
#include "iot/status.h"

#define IOT_SERIAL_HEX_MAX 64 /* 20 octets at most in X.509, as hex */
#define IOT_FPR_HEX_LEN    64 /* SHA-256 */
#define IOT_ROLE_MAX       16
#define IOT_CLASS_ID_MAX   64 /* the firmware manifest's class-id */

typedef struct iot_registry iot_registry;

typedef enum iot_cert_kind {
    IOT_KIND_DEVICE,
    IOT_KIND_SERVER,
    IOT_KIND_CLIENT,
    IOT_KIND_ISSUER, /* an intermediate CA the root issued (iotctl ca intermediate) */
} iot_cert_kind;

typedef struct iot_cert_record {
    char name[IOT_ID_MAX + 1];
    iot_cert_kind kind;
    char role[IOT_ROLE_MAX + 1];           /* client role; "" for other kinds */
    char serial[IOT_SERIAL_HEX_MAX + 1];   /* upper-case hex, no separators */
    char fingerprint[IOT_FPR_HEX_LEN + 1]; /* SHA-256 of the DER, lower-case hex */
    int64_t not_before;                    /* Unix seconds */
    int64_t not_after;
    int64_t created;
    bool revoked;
    int64_t revoked_at; /* 0 while active */
    char revoke_reason[32];
    char spki[IOT_FPR_HEX_LEN + 1];      /* SHA-256 of the SubjectPublicKeyInfo (DER), lower-case
                                            hex; "" if unknown (files older than schema 3) */
    char class_id[IOT_CLASS_ID_MAX + 1]; /* a device's class (the class-id of the firmware
                                            it takes); "" if not set, and for other kinds */
    char issuer[IOT_SERIAL_HEX_MAX + 1]; /* serial of the intermediate CA that signed it;
                                            "" when the root did */
    /* Replaced certificates only (iot_registry_foreach_superseded, _in_grace):
     * the serial of the certificate that replaced it, and until when it
     * still works if that successor is not used first (0: not at all). */
    char successor[IOT_SERIAL_HEX_MAX + 1];
    int64_t grace_until;
} iot_cert_record;

enum {
    IOT_REGISTRY_READONLY = 1, /* open for lookups only (the gateway) */
    IOT_REGISTRY_WRITE = 2,    /* open for changes (the admin CLI) */
};

typedef int (*iot_registry_fn)(const struct iot_cert_record *rec, void *ctx);

const char *iot_cert_kind_name(iot_cert_kind kind);
/* The article for the kind's name in a sentence: "an" for issuer, else "a". */
const char *iot_cert_kind_article(iot_cert_kind kind);

/* Creates a new, empty registry; IOT_EEXIST if `path` exists. */
iot_status iot_registry_create(const char *path, iot_registry **out, iot_err *err);

/* Opens an existing registry. IOT_ENOENT if missing; IOT_ECORRUPT if the
 * file is not a registry or is damaged; IOT_EBUSY if locked. */
iot_status iot_registry_open(const char *path, int mode, iot_registry **out, iot_err *err);

void iot_registry_close(iot_registry *reg);

/* Sets how long a call waits for another process's lock (default 2000 ms). */
void iot_registry_set_busy_timeout(iot_registry *reg, int ms);

/* Write transaction: begin takes the write lock at once (BEGIN IMMEDIATE),
 * so a concurrent writer is reported before any work is done. */
iot_status iot_registry_begin(iot_registry *reg, iot_err *err);
iot_status iot_registry_commit(iot_registry *reg, iot_err *err);
void iot_registry_rollback(iot_registry *reg);

/* The class-id rule of the firmware manifest, as iotctl signs it: 1-64 of
 * [A-Za-z0-9._-], the first a letter or a digit. */
bool iot_class_id_is_valid(const char *s);

/* Inserts a record, with rec->class_id ("" or a valid class, devices
 * only: IOT_EINVAL otherwise). IOT_EEXIST (with a message saying which kind holds the
 * name) if the name or serial is already taken, or if rec->spki is the key
 * of a certificate (active, revoked or replaced) of another name: one key,
 * one identity. */
iot_status iot_registry_add(iot_registry *reg, const iot_cert_record *rec, iot_err *err);

/* Sets (or, with "", clears) the class of the active device `name`.
 * IOT_ENOENT if there is no active device of that name; IOT_EINVAL for a
 * class that breaks the rule. */
iot_status iot_registry_set_class(iot_registry *reg, const char *name, const char *class_id,
                                  iot_err *err);

/* Looks a record up; IOT_ENOENT if absent. */
iot_status iot_registry_get_by_name(iot_registry *reg, const char *name, iot_cert_record *out,
                                    iot_err *err);
iot_status iot_registry_get_by_serial(iot_registry *reg, const char *serial_hex,
                                      iot_cert_record *out, iot_err *err);

/* Marks the named record of `kind` revoked at `now`. IOT_ENOENT if there is
 * no such record; IOT_ESTATE if it is already revoked. */
iot_status iot_registry_revoke(iot_registry *reg, iot_cert_kind kind, const char *name,
                               const char *reason, int64_t now, iot_err *err);

/* The checks of iot_registry_revoke without the change, for a dry run:
 * IOT_OK with the record in *out if `name` is an active record of `kind`;
 * otherwise the status and message iot_registry_revoke would give. Works on
 * a read-only registry. */
iot_status iot_registry_revoke_check(iot_registry *reg, iot_cert_kind kind, const char *name,
                                     iot_cert_record *out, iot_err *err);

/* Renewal under the same name: `rec` (name, kind, serial, fingerprint,
 * validity) replaces the active record of that name and kind, whose
 * certificate is kept as superseded at `now` (listed by
 * iot_registry_foreach_revoked with reason "superseded"). IOT_ENOENT if
 * there is no such record; IOT_ESTATE if it is revoked; IOT_EEXIST if the
 * new serial is taken. */
iot_status iot_registry_renew(iot_registry *reg, const iot_cert_record *rec, int64_t now,
                              iot_err *err);

/* As iot_registry_renew, but the replaced certificate keeps working until
 * `grace_until` or until its successor is first used (iot_registry_end_grace),
 * whichever comes first: a device that lost the answer to its renewal can
 * still connect and ask again. */
iot_status iot_registry_renew_with_grace(iot_registry *reg, const iot_cert_record *rec, int64_t now,
                                         int64_t grace_until, iot_err *err);

/* The certificate with serial `successor` was used: the certificates it
 * replaced stop working at `now`. *ended (may be NULL) is how many did;
 * 0 when there was none in grace. */
iot_status iot_registry_end_grace(iot_registry *reg, const char *successor, int64_t now, int *ended,
                                  iot_err *err);

/* Calls fn for each replaced certificate still working at `now` (its
 * grace_until is later), ordered by serial. */
iot_status iot_registry_foreach_in_grace(iot_registry *reg, int64_t now, iot_registry_fn fn,
                                         void *ctx, iot_err *err);

/* The DER of a certificate the registry keeps (those the gateway issued,
 * so that a device that lost the answer gets the same one again):
 * set_der stores it for `serial` (active or replaced); get_der copies it
 * into buf (IOT_ENOENT if none is kept, IOT_ENOMEM if larger than cap). */
iot_status iot_registry_set_der(iot_registry *reg, const char *serial, const void *der, size_t len,
                                iot_err *err);
iot_status iot_registry_get_der(iot_registry *reg, const char *serial, void *buf, size_t cap,
                                size_t *len, iot_err *err);

/* Calls fn for each record (of `kind`, or all kinds if kind < 0), ordered
 * by name. A non-zero return from fn stops the walk and is returned. */
iot_status iot_registry_foreach(iot_registry *reg, int kind, iot_registry_fn fn, void *ctx,
                                iot_err *err);

/* Calls fn for each certificate `name` had before its renewals, oldest
 * first (revoked_at is when it was replaced, revoke_reason "superseded").
 * Nothing for a registry of schema 1, which has none. */
iot_status iot_registry_foreach_superseded(iot_registry *reg, const char *name, iot_registry_fn fn,
                                           void *ctx, iot_err *err);

/* Calls fn for each revoked or superseded certificate (all kinds), ordered
 * by serial, for building the CRL. */
iot_status iot_registry_foreach_revoked(iot_registry *reg, iot_registry_fn fn, void *ctx,
                                        iot_err *err);

/* (iot_registry_renew also refuses, with IOT_EEXIST, a key that a
 * certificate of another name has or had; the name's own keys may be used
 * again.) */

/* Looks up a certificate, active, revoked or replaced, whose key has the
 * SPKI fingerprint `spki` and whose name is not `other_than` (NULL: any
 * name). IOT_OK with the first one in *out (active and revoked rows before
 * replaced ones); IOT_ENOENT if there is none, or if the file is older than
 * schema 3 and records no keys. An indexed lookup. */
iot_status iot_registry_find_key(iot_registry *reg, const char *spki, const char *other_than,
                                 iot_cert_record *out, iot_err *err);

/* Calls fn for every certificate (active, revoked or replaced) whose key is
 * also the key of a certificate of another name, grouped by key (ordered by
 * spki, then name, then serial). iotctl refuses such keys since schema 3;
 * this finds those from before, or written by other means, for an audit.
 * Nothing for a file older than schema 3 (no keys recorded). */
iot_status iot_registry_foreach_shared_key(iot_registry *reg, iot_registry_fn fn, void *ctx,
                                           iot_err *err);

/* Calls fn for every certificate (active, revoked or replaced) whose key is
 * not recorded: rows from before schema 3. IOT_ESTATE on a file older than
 * schema 3 (opened read-only). */
iot_status iot_registry_foreach_unkeyed(iot_registry *reg, iot_registry_fn fn, void *ctx,
                                        iot_err *err);

/* Records the key fingerprint of the certificate with serial `serial_hex`
 * where none is recorded (active, revoked or replaced); IOT_ENOENT if there
 * is no such certificate without a key. For filling in rows from before
 * schema 3 from the certificate files. */
iot_status iot_registry_set_key(iot_registry *reg, const char *serial_hex, const char *spki,
                                iot_err *err);

/* The schema version this open upgraded the file from (1 to 4), or 0 if it
 * upgraded nothing. */
int iot_registry_upgraded_from(const iot_registry *reg);

/* Increments and returns the CRL number (RFC 5280 5.2.3). */
iot_status iot_registry_next_crl_number(iot_registry *reg, uint64_t *out, iot_err *err);

#endif
