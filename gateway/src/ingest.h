/* The device listener: N worker threads, each with its own libevent loop
 * and listening socket on the same port (SO_REUSEPORT), so TLS handshakes and
 * request handling use every core. A request is answered only after the
 * outbox reports its readings durable. */
#ifndef GW_INGEST_H
#define GW_INGEST_H

#include "app.h"
#include "iot/status.h"

typedef struct gw_ingest gw_ingest;

/* Starts app->opt.workers workers listening on app->opt.listen. */
iot_status gw_ingest_start(gw_app *app, gw_ingest **out, iot_err *err);

/* Stops accepting connections, answers what is in flight, then stops the
 * threads. Waits at most grace_ms for in-flight requests. */
void gw_ingest_stop(gw_ingest *in, int grace_ms);

/* Frees the workers. Call after the outbox is closed: the outbox may still
 * hand finished jobs back to a stopped worker until then. */
void gw_ingest_free(gw_ingest *in);

/* Enrollment requests (est.h) go to the enrollment thread and come back
 * like outbox jobs: begin (worker thread) counts one in flight on the
 * connection's worker, so a drain waits for it; done (the enrollment
 * thread) hands the job back and wakes the worker's loop, which answers
 * with gw_est_answer. */
struct gw_conn;
struct gw_est_job;
void gw_ingest_est_begin(struct gw_conn *c);
void gw_ingest_est_done(struct gw_est_job *job);

#endif
