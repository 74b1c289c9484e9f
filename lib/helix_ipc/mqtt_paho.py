# helix_ipc.mqtt_paho: the MQTT bridge's client adapter for CPython hosts (paho-mqtt,
# pinned in requirements/host.txt). A module of its own so that a board, which uses
# mqtt.UmqttClient, never loads it. The bridge drives it: no paho thread (loop_start is
# never called); each poll() is one loop(0), paho's own keepalive pings happen there.
# connect/subscribe/QoS 1 publish wait for their CONNACK/SUBACK/PUBACK as umqtt does, so
# both adapters behave alike for the bridge. Contexts: the bridge's task only.

from ._compat import ticks_diff, ticks_ms
from .mqtt import _DEFAULT_PORT, Refused


class PahoClient:
    """paho-mqtt (CPython), driven by the bridge's poll (loop(0)), no thread of its own."""

    def __init__(self, host, port, client_id, user, password, keepalive_s=30,
                 connect_timeout_s=5):
        self.host = host
        self.port = port or _DEFAULT_PORT
        self.client_id = client_id
        self.user = user
        self.password = password
        self.keepalive_s = keepalive_s
        self.connect_timeout_s = connect_timeout_s
        self.c = None

    def connect(self, will_topic, will_payload, deliver):
        import paho.mqtt.client as mqtt  # type: ignore

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        clean_session=True)
        c.username_pw_set(self.user, self.password)
        c.will_set(will_topic, will_payload, 1, True)
        state = {}  # type: dict
        self.subacks = set()  # type: set

        def on_connect(_c, _u, _f, reason, _p):
            state["rc"] = reason.value if hasattr(reason, "value") else int(reason)

        def on_subscribe(_c, _u, mid, _codes, _p):
            self.subacks.add(mid)

        c.on_connect = on_connect
        c.on_subscribe = on_subscribe
        c.on_message = lambda _c, _u, m: deliver(m.topic, m.payload)
        c.connect(self.host, self.port, self.keepalive_s)  # OSError when nobody listens
        try:
            self._wait(c, lambda: "rc" in state, "connect", "CONNACK", 0.05)
        except OSError:
            _close_sock(c)
            raise
        if state["rc"] != 0:
            _close_sock(c)
            raise Refused({134: 4, 135: 5}.get(state["rc"], state["rc"]))
        self.c = c

    def _wait(self, c, done, what, ack, step_s):
        # paho's loop until done() (the CONNACK/SUBACK/PUBACK came), for connect_timeout_s
        t0 = ticks_ms()
        while not done():
            rc = c.loop(step_s)
            if rc != 0 and not done():
                raise OSError("%s: paho error %d" % (what, rc))
            if ticks_diff(ticks_ms(), t0) > self.connect_timeout_s * 1000:
                raise OSError("%s: no %s in %d s" % (what, ack, self.connect_timeout_s))

    def _check(self, rc, what):
        if rc != 0:
            raise OSError("%s: paho error %d" % (what, rc))

    def publish(self, topic, payload, qos, retain):
        if self.c is None:
            raise OSError("not connected")
        info = self.c.publish(topic, payload, qos, retain)
        self._check(info.rc, "publish")
        if qos:  # as umqtt does: return once the broker has it (PUBACK), or fail
            self._wait(self.c, info.is_published, "publish", "PUBACK", 0.01)

    def subscribe(self, topic, qos):
        if self.c is None:
            raise OSError("not connected")
        rc, mid = self.c.subscribe(topic, qos)
        self._check(rc, "subscribe")
        self._wait(self.c, lambda: mid in self.subacks, "subscribe", "SUBACK", 0.05)

    def poll(self, max_messages):
        # paho's loop() reads about one packet per call: call it while the socket has
        # more, up to max_messages times
        import select

        c = self.c
        if c is None:
            raise OSError("not connected")
        for _ in range(max_messages):
            self._check(c.loop(0), "receive")
            sock = c.socket()
            if not sock or not select.select([sock], [], [], 0)[0]:
                break

    def ping(self):
        if self.c is None:
            raise OSError("not connected")  # paho pings by itself inside loop()

    def close(self):
        c, self.c = self.c, None
        if c is not None:
            _close_sock(c)

    def disconnect(self):
        c, self.c = self.c, None
        if c is not None:
            c.loop(0)
            c.disconnect()
            c.loop(0)


def _close_sock(c):
    sock = c.socket()
    if sock:
        try:
            sock.close()
        except OSError:
            pass
