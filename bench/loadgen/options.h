/* Command line of the load generator. */
#ifndef LG_OPTIONS_H
#define LG_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#define LG_CONNS_MAX   100000
#define LG_THREADS_MAX 64
#define LG_DEVICES_MAX 100000
#define LG_BATCH_MAX   10000

typedef enum lg_mode { LG_KEEPALIVE, LG_HANDSHAKE, LG_IDLE } lg_mode;

typedef struct lg_options {
    const char *host; /* IPv4 literal */
    const char *sni;  /* server name sent and verified */
    int port;
    const char *path;
    const char *pki;    /* iotctl directory: DIR/ca.crt, DIR/devices/ID/{cert,key}.pem */
    const char *prefix; /* device IDs are PREFIX1 .. PREFIXcount */
    int count;          /* devices */
    int conns;          /* connections; 0: one per device */
    int threads;        /* epoll loops */
    double duration;    /* measured seconds */
    double warmup;      /* seconds before measuring */
    double grace;       /* seconds to wait for answers after the end */
    double rate;        /* requests/s in all; 0: closed loop */
    double hold;        /* --idle: longest hold; a signal ends it sooner */
    int64_t requests;   /* stop after this many requests; 0: no limit */
    lg_mode mode;
    int plain;          /* HTTP without TLS */
    int json_body;      /* application/json (the original ESP32 format) */
    int batch;          /* readings per request */
    uint64_t seq_start; /* first device sequence number */
    const char *acked;  /* file for the acknowledged readings */
    int tls12;          /* offer TLS 1.2 only */
    int resume;         /* --handshake: resume the device's last session */
    int64_t max_errors; /* give up after this many; 0: never */
    int json;           /* one JSON line instead of text */
} lg_options;

/* Fills *o from argv. Returns 0, or 2 after printing why on stderr (the
 * exit status for a bad command line); 1 for --help. */
int lg_options_parse(int argc, char **argv, lg_options *o);

#endif
