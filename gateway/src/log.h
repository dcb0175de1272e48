/* Structured log lines for the gateway, one per event, on stderr:
 *
 *   2026-11-25T16:50:00.123Z level=warn event=tls.refused peer=10.0.0.7:51234 reason=revoked
 *
 * `event` is a stable name (documented in docs/gateway.md) that operators
 * and tests match on; the rest is key=value pairs (logfmt).
 *
 * No input can forge a field or a line: gw_log formats its arguments
 * itself, and every string argument (%s) is escaped where it lands.
 * - Inside quotes in the format ("%s"): '"' and '\' become \" and \\, and
 *   bytes outside printable ASCII become \xHH.
 * - Unquoted (key=%s): a value of only [A-Za-z0-9._:/@+,?[]-] stays as it is;
 *   any other value (a space, '=', '"', a control byte, an empty string) is
 *   written quoted and escaped as above.
 * So a value can neither end its field nor start a line, and a reader
 * splitting on unquoted spaces sees exactly the fields of the format.
 * Payloads and secrets are never logged.
 *
 * When stderr is the systemd journal (JOURNAL_STREAM names it), each line
 * starts with its syslog priority, <7> debug .. <3> error, so the journal
 * keeps the level (sd-daemon(3) prefixes).
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "log_level.h"

#define GW_LOG_LINE_MAX 1024

/* Returns -1 if name is not a level. */
int gw_log_level_parse(const char *name);
void gw_log_set_level(gw_log_level level);

/* fmt formats the key=value part; it may be NULL. Conversions: %s, %c, %%
 * and the integer and floating-point conversions of printf with their
 * flags, width, precision and length modifiers (not %n, not '*').
 * Thread-safe; one write(2) per line. Lines longer than GW_LOG_LINE_MAX are
 * cut, never split. */
void gw_log(gw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A tap sees the key=value part of the lines it wants, whatever the log
 * level: the security event stream (secevent.c) is made from the same
 * calls as the log lines, so the two never disagree. `wants` is called for
 * every line with its event name and must be cheap; `take` gets the
 * fields as formatted (escaped as above, NUL-terminated), on the logging
 * thread, and must not log an event it wants. The tap must outlive every
 * thread that logs; gw_log_set_tap(NULL) stops calling it. */
typedef struct gw_log_tap {
    bool (*wants)(const char *event);
    void (*take)(gw_log_level level, const char *event, const char *fields, size_t len);
} gw_log_tap;

void gw_log_set_tap(const gw_log_tap *tap);

/* Formats like gw_log without the time, level and event, into buf (always
 * NUL-terminated); returns the length. For tests. */
size_t gw_log_format(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
