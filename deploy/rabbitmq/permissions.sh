#!/usr/bin/env bash
# The broker's access rules on RabbitMQ: what deploy/broker/acl says for
# Mosquitto, as users, permissions and topic permissions of one vhost.
#
#   permissions.sh [-n NODE] [--vhost VHOST] ROLE NAME...
#
# ROLE is the role the certificate was issued for (iotctl cert client NAME
# --role ROLE): gateway, consumer or operator (a security monitor); NAME is
# its CN, which is the RabbitMQ user (ssl_cert_login_from = common_name).
# Each user is created without a password (only its certificate logs in)
# and given exactly its role's rights; a second run sets them again. The
# guest user of a new cluster is deleted. Run it on any node of the
# cluster: users and permissions are cluster-wide. RABBITMQCTL names the
# rabbitmqctl to run (default: rabbitmqctl).
#
# How the rules map (MQTT plugin, amq.topic): a topic's "/" is "." in a
# routing key, "+" is "*"; topic "write" is checked on every publish, topic
# "read" on every subscription (its filter, as a routing-key pattern).
# {username} is the user's own name: a gateway may write only its own
# status, events and security stream. A publish refused here closes the
# MQTT 3.1.1 connection (docs/cluster.md): the gateway keeps the reading.
# Names hold [A-Za-z0-9._-]; a gateway name with "." would split into two
# routing-key words, so gateways are named without one.
set -euo pipefail

usage() {
  echo "usage: permissions.sh [-n NODE] [--vhost VHOST] gateway|consumer|operator NAME..." >&2
  exit 2
}
node=()
vhost=/
while [ $# -gt 0 ]; do
  case "$1" in
  -n)
    [ $# -ge 2 ] || usage
    node=(-n "$2")
    shift 2
    ;;
  --vhost)
    [ $# -ge 2 ] || usage
    vhost="$2"
    shift 2
    ;;
  -*) usage ;;
  *) break ;;
  esac
done
[ $# -ge 2 ] || usage
role="$1"
shift

ctl() { "${RABBITMQCTL:-rabbitmqctl}" "${node[@]}" -q "$@"; }

# configure, write, read (resources: exchanges and queues), then the topic
# write and read patterns on amq.topic.
case "$role" in
gateway)
  # Publishes only: to amq.topic; its clean session declares no queue.
  perms=('^$' '^amq\.topic$' '^$')
  topic_write='^(telemetry\.[^.]+\.telemetry|gateway\.{username}\.(status|events)|security\.{username}\..+)$'
  topic_read='^$'
  ;;
consumer)
  # Subscribes: its session's queue (mqtt-subscription-<client id>qos1)
  # is declared, bound to amq.topic and read.
  perms=('^mqtt-subscription-.*$' '^mqtt-subscription-.*$' '^(amq\.topic|mqtt-subscription-.*)$')
  topic_write='^$'
  topic_read='^(telemetry\.[^.]+\.telemetry|telemetry\.\*\.telemetry|gateway\.[^.]+\.(status|events)|gateway\.\*\.(status|events))$'
  ;;
operator)
  perms=('^mqtt-subscription-.*$' '^mqtt-subscription-.*$' '^(amq\.topic|mqtt-subscription-.*)$')
  topic_write='^$'
  topic_read='^(security\..+|gateway\.[^.]+\.status|gateway\.\*\.status)$'
  ;;
*) usage ;;
esac

for name in "$@"; do
  [[ "$name" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || {
    echo "permissions.sh: bad name: $name" >&2
    exit 2
  }
  if ! ctl list_users | awk '{ print $1 }' | grep -xF -- "$name" >/dev/null; then
    # A random password, cleared at once: no password can log in.
    ctl add_user "$name" "$(head -c 24 /dev/urandom | base64)" >/dev/null
  fi
  ctl clear_password "$name" >/dev/null
  ctl set_permissions -p "$vhost" "$name" "${perms[@]}" >/dev/null
  ctl set_topic_permissions -p "$vhost" "$name" amq.topic "$topic_write" "$topic_read" >/dev/null
done
if ctl list_users | awk '{ print $1 }' | grep -xF guest >/dev/null; then
  ctl delete_user guest >/dev/null
fi
