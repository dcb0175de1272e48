# A RabbitMQ node of a test's or a benchmark's own (Debian's 3.10 with its
# MQTT plugin): its own directory, node name, ports, epmd and cookie, MQTT
# over TLS only with certificate login (the CN is the user), and the MQTT
# sessions of consumers on quorum queues. Sourced, not run; the caller
# starts the processes with its own launcher, so that they are stopped
# with it:
#
#   rmq_setup DIR MQTT_PORT CA CERT KEY    # writes the config, exports the environment
#   <launch> epmd -port "$EPMD_PORT"       # (optional) an epmd of its own
#   <launch> "$RMQ_BIN/rabbitmq-server"
#   rmq_wait 90 && rmq_cert_users gateway-mqtt consumer
#   rmq_ctl ...                            # rabbitmqctl on this node
# shellcheck shell=bash

RMQ_BIN=/usr/lib/rabbitmq/bin # as root, without Debian's wrapper that runs as user rabbitmq

# rmq__port: a free loopback port, below the ephemeral range.
rmq__port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

rmq_setup() {
    local dir="$1" port="$2" ca="$3" cert="$4" key="$5"
    [ -x "$RMQ_BIN/rabbitmq-server" ] || {
        echo "rabbitmq-server is missing: run scripts/install-deps.sh" >&2
        return 1
    }
    mkdir -p "$dir/mnesia" "$dir/log"
    EPMD_PORT="$(rmq__port)"
    RMQ_DIST_PORT="$(rmq__port)"
    RMQ_NODE="rabbit-$$-$port@localhost"
    cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp = none
mqtt.listeners.tcp = none
mqtt.listeners.ssl.default = $port
ssl_options.cacertfile = $ca
ssl_options.certfile = $cert
ssl_options.keyfile = $key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
mqtt.ssl_cert_login = true
ssl_cert_login_from = common_name
mqtt.allow_anonymous = false
# A consumer's persistent session (QoS 1) on a quorum queue: Raft-replicated
# across a cluster's nodes (one node here), and the broker's PUBACK to a
# publisher follows the queue's commit.
mqtt.durable_queue_type = quorum
CONF
    echo "[rabbitmq_mqtt,rabbitmq_auth_mechanism_ssl]." >"$dir/enabled_plugins"
    export HOME="$dir" ERL_EPMD_PORT="$EPMD_PORT" RABBITMQ_NODENAME="$RMQ_NODE" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        RABBITMQ_DIST_PORT="$RMQ_DIST_PORT"
}

rmq_ctl() { "$RMQ_BIN/rabbitmqctl" -n "$RMQ_NODE" "$@"; }

# rmq_wait SECONDS: until the node has started; 1 if it has not by then.
rmq_wait() {
    local deadline=$((SECONDS + $1))
    until rmq_ctl -q await_startup >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# rmq_cert_users USER...: users named as the certificates' CNs, without
# passwords (only a certificate logs in), with every permission on /.
rmq_cert_users() {
    local user
    for user in "$@"; do
        rmq_ctl -q add_user "$user" "$(head -c 18 /dev/urandom | base64)" >/dev/null
        rmq_ctl -q clear_password "$user" >/dev/null
        rmq_ctl -q set_permissions -p / "$user" ".*" ".*" ".*" >/dev/null
    done
}
