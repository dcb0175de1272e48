/* The brokers the forwarder may use (mqtt_host): a list of "host",
 * "host:port", "[IPv6]:port" or a bare IPv6 address, separated by spaces
 * or commas; an entry without a port takes mqtt_port. The forwarder uses
 * the first that accepts it and moves on to the next when it fails. */
#ifndef GW_BROKERS_H
#define GW_BROKERS_H

#define GW_BROKERS_MAX     8
#define GW_BROKER_HOST_MAX 253 /* a DNS name's longest text */

typedef struct gw_broker {
    char host[GW_BROKER_HOST_MAX + 1]; /* without brackets; checked against its certificate */
    int port;
} gw_broker;

/* Parses list into out[0..*n) (at most GW_BROKERS_MAX), giving the
 * entries without a port default_port. Returns NULL, or why the list is
 * not valid (a fixed text; *n is then 0). */
const char *gw_brokers_parse(const char *list, int default_port, gw_broker out[GW_BROKERS_MAX],
                             int *n);

/* The configuration table's check of an mqtt_host value. */
const char *gw_brokers_check(const char *list);

#endif
