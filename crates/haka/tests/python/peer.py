"""An independent MQTT 3.1.1 peer for haka's tests: Eclipse Paho's Python client, paho-mqtt 2.x.

Run by crates/haka/tests/python_peer.rs as

    peer.py HOST PORT CLIENT_ID [--persistent]

It connects (clean session unless --persistent), then takes commands on stdin, one a line:

    sub FILTER QOS                  subscribe
    pub TOPIC QOS RETAIN HEX        publish the payload given in hex (RETAIN is 0 or 1;
                                    HEX is "-" for an empty payload)
    quit                            disconnect and exit (so does the end of stdin)

and reports on stdout, one JSON object a line, flushed at once:

    {"event": "connected", "rc": 0, "session_present": false}
    {"event": "subscribed", "mid": 1, "granted": [2]}        (128 for a refusal)
    {"event": "queued", "mid": 2}                            (after each pub command)
    {"event": "published", "mid": 2}                         (PUBACK, PUBCOMP, or QoS 0 sent)
    {"event": "message", "topic": "t", "qos": 1, "retain": false, "dup": false,
     "payload": "68656c6c6f"}
    {"event": "disconnected", "rc": 0}
    {"event": "error", "what": "..."}

Errors go to stderr, which the test shows when it fails.
"""

import json
import sys
import threading

import paho.mqtt.client as mqtt

_out = threading.Lock()


def report(**fields):
    with _out:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def code(value):
    """A reason code's number, whatever paho hands over (ReasonCode or int)."""
    return int(getattr(value, "value", value))


def on_connect(client, userdata, flags, reason_code, properties):
    report(
        event="connected",
        rc=code(reason_code),
        session_present=bool(getattr(flags, "session_present", False)),
    )


def on_subscribe(client, userdata, mid, reason_codes, properties):
    report(event="subscribed", mid=mid, granted=[code(rc) for rc in reason_codes])


def on_publish(client, userdata, mid, reason_code, properties):
    report(event="published", mid=mid)


def on_message(client, userdata, message):
    report(
        event="message",
        topic=message.topic,
        qos=message.qos,
        retain=bool(message.retain),
        dup=bool(message.dup),
        payload=message.payload.hex(),
    )


def on_disconnect(client, userdata, flags, reason_code, properties):
    report(event="disconnected", rc=code(reason_code))


def main():
    host, port, client_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    persistent = "--persistent" in sys.argv[4:]
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=mqtt.MQTTv311,
    )
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "sub" and len(words) == 3:
                client.subscribe(words[1], qos=int(words[2]))
            elif words[0] == "pub" and len(words) == 5:
                payload = b"" if words[4] == "-" else bytes.fromhex(words[4])
                info = client.publish(
                    words[1], payload, qos=int(words[2]), retain=words[3] == "1"
                )
                report(event="queued", mid=info.mid)
            elif words[0] == "quit":
                break
            else:
                report(event="error", what="unknown command: " + line.strip())
    finally:
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    main()
