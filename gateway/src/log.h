/* Structured log lines for the gateway, one per event, on stderr:
 *
 *   2026-11-25T16:50:00.123Z level=warn event=tls.refused peer=10.0.0.7:51234 reason="revoked"
 *
 * `event` is a stable name (documented in docs/gateway.md) that operators
 * and tests match on; the rest is key=value pairs. Bytes outside printable
 * ASCII are replaced with '?', so no input can forge a line or inject
 * terminal escapes. Payloads and secrets are never logged.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

typedef enum gw_log_level {
    GW_LOG_DEBUG,
    GW_LOG_INFO,
    GW_LOG_WARN,
    GW_LOG_ERROR,
} gw_log_level;

/* Returns -1 if name is not a level. */
int gw_log_level_parse(const char *name);
void gw_log_set_level(gw_log_level level);

/* fmt formats the key=value part; it may be NULL. Thread-safe. */
void gw_log(gw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
