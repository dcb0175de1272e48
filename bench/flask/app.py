"""The original design's ingest, as the seed README describes it: a small
Flask app that takes the ESP32's JSON POST and forwards each reading to
Mosquitto over MQTT, here with QoS 1. It answers as soon as the message is
handed to the MQTT client, as such an app does: nothing is stored, and a
reading in the client's queue when the process stops is lost.

Used by bench/run.sh as the baseline, under Flask's own server
(`python3 app.py`) and under gunicorn (`gunicorn app:app`). Settings come
from the environment:

  FLASK_HOST, FLASK_PORT    where Flask's own server listens (127.0.0.1:5000)
  MQTT_HOST, MQTT_PORT      the broker (localhost:8883)
  MQTT_CA, MQTT_CERT, MQTT_KEY
                            TLS to the broker with a client certificate; the
                            seed relied on a VPN instead, which this machine
                            does not have
  TOPIC_PREFIX              first topic levels (telemetry)
"""

import json
import os
import ssl
import threading

import paho.mqtt.client as mqtt
from flask import Flask, jsonify, request

app = Flask(__name__)

_client = None
_client_pid = None
_client_lock = threading.Lock()


def mqtt_client():
    """One connection per process: gunicorn forks its workers after import."""
    global _client, _client_pid
    with _client_lock:
        if _client is None or _client_pid != os.getpid():
            client = mqtt.Client(client_id="flask-%d" % os.getpid(), clean_session=True)
            ca = os.environ.get("MQTT_CA")
            if ca:
                client.tls_set(
                    ca_certs=ca,
                    certfile=os.environ.get("MQTT_CERT"),
                    keyfile=os.environ.get("MQTT_KEY"),
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            client.connect(
                os.environ.get("MQTT_HOST", "localhost"),
                int(os.environ.get("MQTT_PORT", "8883")),
                keepalive=30,
            )
            client.loop_start()
            _client, _client_pid = client, os.getpid()
        return _client


@app.route("/v1/telemetry", methods=["POST"])
def telemetry():
    data = request.get_json(silent=True)
    if data is None:
        return jsonify(error="malformed_json"), 400
    device = request.headers.get("X-Device-Id", "esp32")
    topic = "%s/%s/telemetry" % (os.environ.get("TOPIC_PREFIX", "telemetry"), device)
    mqtt_client().publish(topic, json.dumps(data), qos=1)
    return jsonify(status="ok"), 200


if __name__ == "__main__":
    app.run(
        host=os.environ.get("FLASK_HOST", "127.0.0.1"),
        port=int(os.environ.get("FLASK_PORT", "5000")),
    )
