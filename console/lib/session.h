/* Operator sessions in memory: a fixed table (max_sessions), each session
 * with a random 256-bit id (the cookie), its own random CSRF token, an idle
 * and an absolute expiry. Pure: time and random bytes are given by the
 * caller, so the rules are unit-tested with a fake clock. A restart of the
 * console ends every session (they are not persisted: one less secret on
 * disk).
 *
 * Also here: the cookie that carries the id, and the check of every
 * state-changing request (CSRF token header and Origin). */
#ifndef IC_SESSION_H
#define IC_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IC_SESSION_RANDOM 32 /* bytes of the id, and of the CSRF token */
#define IC_SESSION_HEX    (2 * IC_SESSION_RANDOM)
#define IC_OPERATOR_MAX   64
#define IC_ADDR_MAX       64
#define IC_COOKIE_NAME    "__Host-iotconsole"

typedef struct ic_session {
    bool used;
    char id[IC_SESSION_HEX + 1];
    char csrf[IC_SESSION_HEX + 1];
    char operator_name[IC_OPERATOR_MAX + 1];
    char addr[IC_ADDR_MAX];
    int64_t created, last; /* Unix seconds */
} ic_session;

typedef struct ic_sessions {
    ic_session *slots;
    size_t cap;
    int64_t idle_s;     /* a session unused this long ends */
    int64_t absolute_s; /* a session this old ends, used or not */
} ic_sessions;

/* slots[0..cap) are cleared and owned by the caller. */
void ic_sessions_init(ic_sessions *s, ic_session *slots, size_t cap, int64_t idle_s,
                      int64_t absolute_s);

/* A new session for `op` from `addr`, id and CSRF token made from the
 * 2 * IC_SESSION_RANDOM bytes of `rnd`. When the table is full, the
 * session least recently used ends to make room (an attacker who logs in
 * many times can only push out sessions, never read them). */
const ic_session *ic_session_create(ic_sessions *s, const char *op, const char *addr,
                                    const unsigned char rnd[2 * IC_SESSION_RANDOM], int64_t now);

/* The live session with this id (hex, compared in constant time), its
 * last use set to now; NULL if none, or if it expired (then it is ended). */
ic_session *ic_session_find(ic_sessions *s, const char *id, int64_t now);

/* Whether the session with this id is live at `now`, without counting
 * this as a use (a live stream checks its session at each message; only
 * requests keep a session from going idle). */
bool ic_session_alive(ic_sessions *s, const char *id, int64_t now);

/* Ends the session; false if there was none. */
bool ic_session_end(ic_sessions *s, const char *id);

/* Ends every session of operator `op` (removed from the operators file);
 * returns how many. */
size_t ic_session_end_operator(ic_sessions *s, const char *op);

/* Live sessions at `now` (expired ones are ended on the way). */
size_t ic_session_count(ic_sessions *s, int64_t now);

/* The session id from a Cookie header ("a=b; __Host-iotconsole=ID"):
 * true with id filled when the cookie is there once and is IC_SESSION_HEX
 * lower-case hex digits. */
bool ic_cookie_session_id(const char *cookie, char id[IC_SESSION_HEX + 1]);

/* Set-Cookie value for the session (max_age_s: its absolute lifetime), or
 * with id NULL the one that deletes it. Returns false if it does not fit. */
bool ic_cookie_format(char *buf, size_t size, const char *id, int64_t max_age_s);

typedef enum ic_csrf_verdict {
    IC_CSRF_OK,
    IC_CSRF_NO_ORIGIN,  /* no Origin header */
    IC_CSRF_BAD_ORIGIN, /* Origin is not the console's own */
    IC_CSRF_NO_TOKEN,   /* no X-CSRF-Token header */
    IC_CSRF_BAD_TOKEN,  /* not the session's token */
} ic_csrf_verdict;

/* A state-changing request is the operator's own only if it carries the
 * session's CSRF token (which a page of another origin cannot read) and an
 * Origin equal to the console's (which a browser sets and a page cannot
 * forge). Both, because each alone has gaps (a token leaked into a log;
 * an old browser without Origin on same-site POSTs). token and origin are
 * "" when absent. */
ic_csrf_verdict ic_csrf_check(const ic_session *s, const char *token, const char *origin,
                              const char *own_origin);

/* "ok", "origin_missing", "origin_mismatch", "csrf_token_missing",
 * "csrf_token_mismatch". */
const char *ic_csrf_reason(ic_csrf_verdict v);

#endif
