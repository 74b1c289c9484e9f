# helix_ipc.mqtt: one bus across boards and hosts through an MQTT broker.
#
# A Bridge joins a node's EventBus and MessageRouter to a broker through a thin client
# adapter (UmqttClient: micropython-lib umqtt.simple on MicroPython; PahoClient: paho-mqtt
# on CPython; anything with the same five methods works). Topic scheme (docs/mqtt.md):
#   helix/<node>/status                   b"online" (retained), last will b"offline"
#   helix/<node>/event/<topic>            an exported event, QoS 0 (wire.event_to_obj)
#   helix/<node>/req/<to>/<module>        a request from <node> to <to>'s <module>, QoS 1
#                                         {"c": id, "r": reply topic, "q": request}
#   helix/<node>/reply/<to>               <node>'s answer to <to>, QoS 1 {"c": id, "p": resp}
# A node only ever publishes under helix/<its name>/ (the broker's ACL enforces it), so
# the reply topic a request carries must be helix/<answerer>/reply/<requester>; any other
# is malformed. Payloads are wire.encode()d plain values; wire.decode builds only plain
# values, and nothing received is executed, evaluated or imported. A payload that does not
# decode, has the wrong shape, or arrives on a topic outside the scheme is dropped,
# counted in `malformed` and passed to error_hook.
#
# Remote modules: bridge.proxy(node, module) registers "<node>/<module>" in the local
# router; `await router.request("B/stats", req, timeout_ms)` (or router.queue with a
# callback) puts the request in that proxy's mailbox, the bridge takes it from there,
# publishes it with a correlation id and calls the request's callback once, with the
# answer, or Response.Error when none came within request_timeout_ms (counted in
# `timeouts`). A reply for no request in flight (late, or a second copy) is counted in
# `late_replies`. router.send() to a proxy answers Response.Error (it cannot wait).
# Incoming requests are put in the named local module's mailbox (router.queue): the module
# must be served (router.serve, ModuleHost.start_tasks or process_mailbox). A request seen
# before (same requester and id, the last `dedup` of them) is not delivered again: counted
# in `duplicates`, so a request MQTT delivers twice is answered once.
#
# Faults: every publish goes through one bounded FIFO (`queue_capacity`). While the broker
# is away it fills; past capacity the oldest is dropped and counted in `queue_dropped`.
# A lost connection (any OSError from the client) is counted in `disconnects`; poll()
# reconnects with a growing back-off (100 ms .. 5 s), publishes `online` again, restores
# every subscription, then flushes the queue. Messages received go through a bounded
# inbox (`inbox_capacity`, overflow counted in `inbox_dropped`); at most that many are
# handled per poll. A peer's status change (its `online`, or its last will `offline`) is
# kept in bridge.peers and passed to status_hook(node, online).
#
# Contexts: poll(), start(), stop(), proxy(), export(), listen() from task context, one
# thread at a time (the bridge's task: `await bridge.run()` polls the client's socket
# without blocking, check_msg / paho loop(0)). The export subscription and the callbacks
# of incoming requests only put bytes in the queue under a lock, so they may run in any
# task, thread or scheduled callback; never a hard IRQ (they allocate). The umqtt client
# blocks in a QoS 1 publish until its PUBACK (short on a LAN; the broker going away ends
# it with OSError).

from ._compat import new_lock, ticks_add, ticks_diff, ticks_ms
from . import wire
from .errors import ChannelFull, ModuleNotFound
from .bus import EventSubscription
from .events import EventResponse, EventTopic
from .messages import Name, Response

_MASK = 0x1FFFFFFF
_PROXY_BASE = 0x10000000  # router ids of proxy modules start here
_BACKOFF_MIN = 100
_BACKOFF_MAX = 5000
_ONLINE = b"online"
_OFFLINE = b"offline"
_DEFAULT_PORT = 1883
_COUNTERS = ("connects", "disconnects", "refused", "published", "received", "events_out",
             "events_in", "requests_out", "requests_in", "replies_out", "replies_in",
             "duplicates", "malformed", "timeouts", "late_replies", "queue_dropped",
             "inbox_dropped", "not_sent")


class Refused(OSError):
    """The broker refused the connection (CONNACK code: 4 bad user name or password,
    5 not authorised)."""


def _check_level(name, what):
    if not isinstance(name, str) or not name:
        raise ValueError("%s must be a non-empty str" % what)
    for ch in "+#\x00":
        if ch in name:
            raise ValueError("%s %r may not contain '+', '#' or NUL (MQTT wildcards)" % (what, name))
    return name


def topic_level(topic):
    """The MQTT topic levels for an EventTopic: "tick", "memory_pressure", ... for the
    built-in ones, "custom/<name>" for EventTopic.Custom(name). ValueError for a custom
    name holding an MQTT wildcard."""
    if not isinstance(topic, EventTopic) or topic is EventTopic.ALL:
        raise ValueError("an EventTopic other than ALL is needed, got %r" % (topic,))
    if isinstance(topic._key, str):
        return "custom/" + _check_level(topic.name, "custom topic name")
    return topic.name.lower()


def _default_hook(where, error):
    print("helix_ipc.mqtt: %s: %s" % (where, error))


class Bridge:
    """Bridge(node, client, bus=None, router=None, queue_capacity=32, inbox_capacity=32,
    dedup=32, request_timeout_ms=5000, keepalive_ms=30000, max_in_flight=16).
    `client` is an adapter (UmqttClient, PahoClient or client_for()); bus/router default to
    the global ones."""

    def __init__(self, node, client, bus=None, router=None, queue_capacity=32,
                 inbox_capacity=32, dedup=32, request_timeout_ms=5000, keepalive_ms=30000,
                 max_in_flight=16):
        from .bus import global_event_bus
        from .router import global_router

        _check_level(node, "node name")
        if "/" in node:
            raise ValueError("node name %r may not contain '/'" % node)
        for v, what in ((queue_capacity, "queue_capacity"), (inbox_capacity, "inbox_capacity"),
                        (dedup, "dedup"), (max_in_flight, "max_in_flight")):
            if type(v) is not int or v < 1:
                raise ValueError("%s must be an int >= 1" % what)
        self.node = node
        self.client = client
        self.bus = bus if bus is not None else global_event_bus()
        self.router = router if router is not None else global_router()
        self.prefix = "helix/" + node + "/"
        self.queue_capacity = queue_capacity
        self.inbox_capacity = inbox_capacity
        self.dedup = dedup
        self.request_timeout_ms = request_timeout_ms
        self.keepalive_ms = keepalive_ms
        self.max_in_flight = max_in_flight
        self.error_hook = _default_hook
        self.status_hook = None
        self.peers = {}  # node -> True (online) / False (offline)
        self.connected = False
        self._lock = new_lock()
        self._queue = []  # [topic, payload, qos, retain] waiting to be published
        self._inbox = []  # (topic str, payload bytes)
        self._subs = [self.prefix[:6] + "+/status", self.prefix[:6] + "+/req/" + node + "/#",
                      self.prefix[:6] + "+/reply/" + node]
        self._pending = {}  # correlation id -> [callback, deadline, node/module]
        self._proxies = {}  # "<node>/<module>" -> router _Module record
        self._seen = {}  # "requester id" -> True, the last `dedup` requests delivered
        self._seen_order = []
        self._exported = []  # bus subscription ids
        self._importing = False  # True while a remote event is published on the local bus
        self._next_id = int.from_bytes(_urandom(3), "big")  # correlation ids: random start
        self._retry_at = None
        self._backoff = _BACKOFF_MIN
        self._last_out = ticks_ms()
        self._deliver_cb = self._deliver
        self.connects = self.disconnects = self.refused = 0
        self.published = self.received = self.events_out = self.events_in = 0
        self.requests_out = self.requests_in = self.replies_out = self.replies_in = 0
        self.duplicates = self.malformed = self.timeouts = self.late_replies = 0
        self.queue_dropped = self.inbox_dropped = self.not_sent = 0

    # -- configuration ---------------------------------------------------------------
    def export(self, topics):
        """Publish local events on these EventTopics as helix/<node>/event/<topic> (QoS 0).
        Events that came from the broker are not sent back out."""
        if isinstance(topics, EventTopic):
            topics = [topics]
        topics = list(topics)
        if not topics:
            raise ValueError("export: no topics")
        for t in topics:
            topic_level(t)  # raises for ALL and wildcard names
        sub = EventSubscription("mqtt:" + self.node, topics, self._on_local)
        self._exported.append(self.bus.subscribe(sub))

    def listen(self, node="+", topics=None):
        """Receive events from `node` ("+" = every node) into the local bus: all of them
        (topics=None) or these EventTopics."""
        if node != "+":
            _check_level(node, "node name")
        levels = ["#"] if topics is None else [topic_level(t) for t in topics]
        for level in levels:
            self._subscribe("helix/%s/event/%s" % (node, level))

    def proxy(self, node, module, mailbox_capacity=None):
        """Register "<node>/<module>" in the local router: requests queued to it travel to
        `module` on `node`. Returns the local name."""
        _check_level(node, "node name")
        _check_level(module, "module name")
        name = node + "/" + module
        r = self.router
        mid = _PROXY_BASE
        while r.is_registered(mid):
            mid += 1
        r.register(mid, name, self._proxy_send, mailbox_capacity)
        self._proxies[name] = r._find(mid)
        return name

    def _proxy_send(self, request):
        # router.send() to a proxy: it cannot wait for the network
        return Response.Error("mqtt: this module is on another node: use router.request() or "
                              "router.queue(), which can wait for its answer")

    def _subscribe(self, topic):
        if topic in self._subs:
            return
        self._subs.append(topic)
        if self.connected:
            try:
                self.client.subscribe(topic, 1)
            except OSError as e:
                self._lost(e)

    def stats(self):
        """The counters (a new dict), plus connected, queued, in_flight and peers."""
        d = {}
        for name in _COUNTERS:
            d[name] = getattr(self, name)
        d["connected"] = self.connected
        d["queued"] = len(self._queue)
        d["in_flight"] = len(self._pending)
        d["peers"] = dict(self.peers)
        return d

    # -- connection ------------------------------------------------------------------
    def start(self):
        """Connect now. Refused (bad credentials, not authorised) is raised; any other
        OSError is raised too, and poll() keeps trying later."""
        try:
            self._connect()
        except OSError:
            self._retry_at = ticks_add(ticks_ms(), self._backoff)
            raise

    def _connect(self):
        c = self.client
        try:
            c.connect(self.prefix + "status", _OFFLINE, self._deliver_cb)
        except Refused:
            self.refused = (self.refused + 1) & _MASK
            raise
        try:
            c.publish(self.prefix + "status", _ONLINE, 1, True)
            for t in self._subs:
                c.subscribe(t, 1)
        except OSError:
            c.close()
            raise
        self.connected = True
        self.connects = (self.connects + 1) & _MASK
        self._backoff = _BACKOFF_MIN
        self._retry_at = None
        self._last_out = ticks_ms()

    def _lost(self, error):
        if self.connected:
            self.connected = False
            self.disconnects = (self.disconnects + 1) & _MASK
            self.error_hook("connection lost", error)
        try:
            self.client.close()
        except OSError:
            pass
        self._retry_at = ticks_add(ticks_ms(), self._backoff)

    def stop(self):
        """Publish `offline` (retained), send what is queued, disconnect."""
        if self.connected:
            try:
                self._flush()
                if self.connected:
                    self.client.publish(self.prefix + "status", _OFFLINE, 1, True)
                    self.client.disconnect()
            except OSError:
                pass
        self.connected = False
        self._retry_at = None
        for sid in self._exported:
            self.bus.unsubscribe(sid)
        self._exported = []

    # -- the loop --------------------------------------------------------------------
    def poll(self):
        """One turn: reconnect when due, read what the broker sent, handle it, send the
        proxies' requests, flush the queue, time out old requests. Returns how many
        messages were handled. Task context."""
        now = ticks_ms()
        if not self.connected:
            if self._retry_at is not None and ticks_diff(now, self._retry_at) >= 0:
                try:
                    self._connect()
                except OSError:
                    self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
                    self._retry_at = ticks_add(ticks_ms(), self._backoff)
        if self.connected:
            try:
                self.client.poll(self.inbox_capacity)
            except OSError as e:
                self._lost(e)
        n = self._handle_inbox()
        if self._proxies:
            self._take_requests()
        if self.connected and self._queue:
            self._flush()
        if self._pending:
            self._expire(now)
        if self.connected and ticks_diff(now, self._last_out) >= self.keepalive_ms // 2:
            try:
                self.client.ping()
                self._last_out = now
            except OSError as e:
                self._lost(e)
        return n

    async def run(self, interval_ms=2):
        """Poll forever (a task); cancel it to end. Sleeps interval_ms between idle turns."""
        import asyncio

        sleep_ms = getattr(asyncio, "sleep_ms", None)
        while True:
            if not self.poll():
                if sleep_ms is not None:
                    await sleep_ms(interval_ms)
                else:
                    await asyncio.sleep(interval_ms / 1000)
            else:
                await asyncio.sleep(0)

    # -- out -------------------------------------------------------------------------
    def _put(self, topic, payload, qos, retain):
        # Any context but a hard IRQ: append under the lock; the oldest goes when full.
        item = [topic, payload, qos, retain]
        lock = self._lock
        lock.acquire()
        q = self._queue
        dropped = len(q) >= self.queue_capacity
        if dropped:
            q.pop(0)
            self.queue_dropped = (self.queue_dropped + 1) & _MASK
        q.append(item)
        lock.release()
        if dropped and self.error_hook is not None:
            self.error_hook("queue full", "the oldest queued message was dropped (%d queued)" % self.queue_capacity)

    def _flush(self):
        c = self.client
        q = self._queue
        lock = self._lock
        while q and self.connected:
            item = q[0]
            try:
                c.publish(item[0], item[1], item[2], item[3])
            except OSError as e:
                self._lost(e)
                return
            lock.acquire()
            if q and q[0] is item:
                q.pop(0)
            lock.release()
            self.published = (self.published + 1) & _MASK
            self._last_out = ticks_ms()

    def _on_local(self, event):
        # the export subscription: a local event goes out (not one that came from the broker)
        if self._importing:
            return EventResponse.IGNORED
        try:
            payload = wire.encode(wire.event_to_obj(event))
            topic = self.prefix + "event/" + topic_level(event.topic)
        except (TypeError, ValueError) as e:
            self.not_sent = (self.not_sent + 1) & _MASK
            self.error_hook("export", e)
            return EventResponse.IGNORED
        self._put(topic, payload, 0, False)
        self.events_out = (self.events_out + 1) & _MASK
        return EventResponse.HANDLED

    def _take_requests(self):
        # Take queued requests from the proxies' mailboxes (as router._process_one does,
        # keeping the callback) and publish each with a correlation id.
        r = self.router
        pending = self._pending
        for name in self._proxies:
            m = self._proxies[name]
            while len(pending) < self.max_in_flight:
                r._lock.acquire()
                mb = m.mailbox
                if mb is None or not mb.count:
                    r._lock.release()
                    break
                req = mb.pop()
                cb = mb.callback
                mb.callback = None
                r._lock.release()
                self._send_request(name, req, cb)

    def _send_request(self, name, req, cb):
        node, module = name.split("/", 1)
        cid = self._next_id = (self._next_id + 1) & _MASK
        try:
            payload = wire.encode({"c": cid, "r": "helix/%s/reply/%s" % (node, self.node),
                                   "q": wire.request_to_obj(req)})
        except (TypeError, ValueError) as e:
            self.not_sent = (self.not_sent + 1) & _MASK
            if cb is not None:
                cb(Response.Error("mqtt: cannot encode the request: %s" % e))
            return
        self._pending[cid] = [cb, ticks_add(ticks_ms(), self.request_timeout_ms), name]
        self._put(self.prefix + "req/" + name, payload, 1, False)
        self.requests_out = (self.requests_out + 1) & _MASK

    def _expire(self, now):
        late = [cid for cid in self._pending if ticks_diff(now, self._pending[cid][1]) >= 0]
        for cid in late:
            cb, _, name = self._pending.pop(cid)
            self.timeouts = (self.timeouts + 1) & _MASK
            if cb is not None:
                self._callback(cb, Response.Error("mqtt: no answer from %s within %d ms"
                                                  % (name, self.request_timeout_ms)))

    def _callback(self, cb, response):
        try:
            cb(response)
        except Exception as e:  # noqa: BLE001 - a user callback: counted by the router's hook
            self.error_hook("request callback", e)

    # -- in --------------------------------------------------------------------------
    def _deliver(self, topic, payload):
        # The client's message callback (inside client.poll / a QoS 1 publish): only queue.
        inbox = self._inbox
        if len(inbox) >= self.inbox_capacity * 2:
            self.inbox_dropped = (self.inbox_dropped + 1) & _MASK
            return
        inbox.append((topic, payload))

    def _handle_inbox(self):
        inbox = self._inbox
        n = 0
        while inbox and n < self.inbox_capacity:
            topic, payload = inbox.pop(0)
            n += 1
            self.received = (self.received + 1) & _MASK
            if not isinstance(topic, str):
                try:
                    topic = bytes(topic).decode()
                except (UnicodeError, ValueError) as e:
                    self._malformed("topic", e)
                    continue
            self._handle(topic, payload)
        return n

    def _malformed(self, where, error):
        self.malformed = (self.malformed + 1) & _MASK
        self.error_hook("malformed " + where, error)

    def _handle(self, topic, payload):
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != "helix" or not parts[1]:
            self._malformed(topic, "not a helix topic")
            return
        src = parts[1]
        kind = parts[2]
        try:
            if kind == "event" and len(parts) >= 4:
                if src != self.node:
                    self._event_in(src, "/".join(parts[3:]), payload)
            elif kind == "status" and len(parts) == 3:
                self._status_in(src, payload)
            elif kind == "req" and len(parts) >= 5 and parts[3] == self.node:
                self._request_in(src, "/".join(parts[4:]), payload)
            elif kind == "reply" and len(parts) == 4 and parts[3] == self.node:
                self._reply_in(src, payload)
            else:
                self._malformed(topic, "not in the topic scheme")
        except (ValueError, TypeError, KeyError, IndexError) as e:  # WireError is a ValueError
            self._malformed(topic, e)

    def _event_in(self, src, level, payload):
        event = wire.obj_to_event(wire.decode(payload))
        if topic_level(event.topic) != level:
            raise ValueError("event %r under topic level %r" % (event, level))
        self.events_in = (self.events_in + 1) & _MASK
        self._importing = True
        try:
            self.bus.publish(event)
        finally:
            self._importing = False

    def _status_in(self, src, payload):
        if payload == _ONLINE:
            online = True
        elif payload == _OFFLINE:
            online = False
        else:
            raise ValueError("status must be online or offline")
        if src == self.node:
            return
        was = self.peers.get(src)
        self.peers[src] = online
        if was is not online and self.status_hook is not None:
            try:
                self.status_hook(src, online)
            except Exception as e:  # noqa: BLE001 - a user hook
                self.error_hook("status_hook", e)

    def _request_in(self, src, module, payload):
        obj = wire.decode(payload)
        if not isinstance(obj, dict):
            raise ValueError("a request must be a map")
        cid = obj["c"]
        reply = obj["r"]
        if type(cid) is not int or reply != "helix/%s/reply/%s" % (self.node, src):
            raise ValueError("bad correlation id or reply topic")
        req = wire.obj_to_request(obj["q"], Name(src))  # sender: the requesting node
        key = "%s %d" % (src, cid)
        if key in self._seen:
            self.duplicates = (self.duplicates + 1) & _MASK
            return
        seen = self._seen_order
        if len(seen) >= self.dedup:
            del self._seen[seen.pop(0)]
        seen.append(key)
        self._seen[key] = True
        self.requests_in = (self.requests_in + 1) & _MASK
        answer = _Answer(self, reply, cid).answer
        try:
            self.router.queue(module, req, answer)
        except ModuleNotFound:
            answer(Response.Error("no module %s on %s" % (module, self.node)))
        except ChannelFull:
            answer(Response.Rejected("the mailbox of %s on %s is full" % (module, self.node)))

    def _reply_in(self, src, payload):
        obj = wire.decode(payload)
        if not isinstance(obj, dict):
            raise ValueError("a reply must be a map")
        cid = obj["c"]
        resp = wire.obj_to_response(obj["p"])
        entry = self._pending.get(cid) if type(cid) is int else None
        if entry is None or not entry[2].startswith(src + "/"):
            self.late_replies = (self.late_replies + 1) & _MASK
            return
        del self._pending[cid]
        self.replies_in = (self.replies_in + 1) & _MASK
        if entry[0] is not None:
            self._callback(entry[0], resp)


class _Answer:
    # The callback of one incoming request: publishes its answer once (any context).
    def __init__(self, bridge, topic, cid):
        self.bridge = bridge
        self.topic = topic
        self.cid = cid
        self.answer = self._answer

    def _answer(self, response):
        b = self.bridge
        try:
            payload = wire.encode({"c": self.cid, "p": wire.response_to_obj(response)})
        except (TypeError, ValueError) as e:
            payload = wire.encode({"c": self.cid, "p": [2, "mqtt: cannot encode the answer"]})
            b.error_hook("answer", e)
        b._put(self.topic, payload, 1, False)
        b.replies_out = (b.replies_out + 1) & _MASK


def _urandom(n):
    try:
        from os import urandom
    except ImportError:
        return bytes(n)
    return urandom(n)


# -- client adapters ------------------------------------------------------------------
# connect(will_topic, will_payload, deliver), publish(topic, payload, qos, retain),
# subscribe(topic, qos), poll(max_messages), ping(), close(), disconnect(); every network
# failure is an OSError (Refused when the broker said no); deliver(topic, payload) is
# called for each message received, inside connect/publish/subscribe/poll.

class UmqttClient:
    """micropython-lib umqtt.simple (MicroPython; `mpremote mip install umqtt.simple`)."""

    def __init__(self, host, port, client_id, user, password, keepalive_s=30):
        self.args = (client_id, host, port or _DEFAULT_PORT, user, password, keepalive_s)
        self.c = None

    def connect(self, will_topic, will_payload, deliver):
        from umqtt.simple import MQTTClient, MQTTException  # type: ignore

        c = MQTTClient(*self.args)
        c.set_callback(deliver)
        c.set_last_will(will_topic.encode(), will_payload, True, 1)
        try:
            c.connect(True)
        except MQTTException as e:
            _close(c)
            raise Refused(e.args[0] if e.args else 0)
        except (OSError, IndexError, AssertionError) as e:
            _close(c)
            raise OSError("connect: %r" % (e,))
        self.c = c

    def publish(self, topic, payload, qos, retain):
        c = self.c
        if c is None:
            raise OSError("not connected")
        if c.pid >= 65535:
            c.pid = 0
        try:
            c.publish(topic.encode(), payload, retain, qos)
        except (IndexError, AssertionError, TypeError) as e:
            raise OSError("publish: %r" % (e,))

    def subscribe(self, topic, qos):
        c = self.c
        if c is None:
            raise OSError("not connected")
        if c.pid >= 65535:
            c.pid = 0
        try:
            c.subscribe(topic.encode(), qos)
        except (IndexError, AssertionError, TypeError) as e:
            raise OSError("subscribe: %r" % (e,))

    def poll(self, max_messages):
        c = self.c
        if c is None:
            raise OSError("not connected")
        try:
            for _ in range(max_messages):
                if c.check_msg() is None and not _readable(c.sock):
                    break
        except (IndexError, AssertionError, TypeError) as e:
            raise OSError("receive: %r" % (e,))
        finally:
            if self.c is not None:
                c.sock.setblocking(True)

    def ping(self):
        if self.c is None:
            raise OSError("not connected")
        self.c.ping()

    def close(self):
        c, self.c = self.c, None
        if c is not None:
            _close(c)

    def disconnect(self):
        c, self.c = self.c, None
        if c is not None:
            c.disconnect()


def _close(c):
    try:
        if c.sock is not None:
            c.sock.close()
    except OSError:
        pass


def _readable(sock):
    import select

    p = select.poll()
    p.register(sock, select.POLLIN)
    return bool(p.poll(0))


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
        t0 = ticks_ms()
        while "rc" not in state:
            rc = c.loop(0.05)
            if rc != 0 and "rc" not in state:
                c.socket() and c.socket().close()
                raise OSError("connect: paho error %d" % rc)
            if ticks_diff(ticks_ms(), t0) > self.connect_timeout_s * 1000:
                c.socket() and c.socket().close()
                raise OSError("connect: no CONNACK in %d s" % self.connect_timeout_s)
        if state["rc"] != 0:
            sock = c.socket()
            if sock:
                sock.close()
            raise Refused({134: 4, 135: 5}.get(state["rc"], state["rc"]))
        self.c = c

    def _check(self, rc, what):
        if rc != 0:
            raise OSError("%s: paho error %d" % (what, rc))

    def publish(self, topic, payload, qos, retain):
        if self.c is None:
            raise OSError("not connected")
        info = self.c.publish(topic, payload, qos, retain)
        self._check(info.rc, "publish")
        if qos:  # as umqtt does: return once the broker has it (PUBACK), or fail
            t0 = ticks_ms()
            while not info.is_published():
                self._check(self.c.loop(0.01), "publish")
                if ticks_diff(ticks_ms(), t0) > self.connect_timeout_s * 1000:
                    raise OSError("publish: no PUBACK in %d s" % self.connect_timeout_s)

    def subscribe(self, topic, qos):
        if self.c is None:
            raise OSError("not connected")
        rc, mid = self.c.subscribe(topic, qos)
        self._check(rc, "subscribe")
        t0 = ticks_ms()
        while mid not in self.subacks:
            self._check(self.c.loop(0.05), "subscribe")
            if ticks_diff(ticks_ms(), t0) > self.connect_timeout_s * 1000:
                raise OSError("subscribe: no SUBACK in %d s" % self.connect_timeout_s)

    def poll(self, max_messages):
        if self.c is None:
            raise OSError("not connected")
        self._check(self.c.loop(0), "receive")

    def ping(self):
        if self.c is None:
            raise OSError("not connected")  # paho pings by itself inside loop()

    def close(self):
        c, self.c = self.c, None
        if c is not None:
            sock = c.socket()
            if sock:
                try:
                    sock.close()
                except OSError:
                    pass

    def disconnect(self):
        c, self.c = self.c, None
        if c is not None:
            c.loop(0)
            c.disconnect()
            c.loop(0)


def client_for(host, port, node, password, keepalive_s=30):
    """The adapter for this interpreter: UmqttClient on MicroPython, PahoClient on CPython.
    The node's name is its client id and user name."""
    import sys

    if sys.implementation.name == "micropython":
        return UmqttClient(host, port, node, node, password, keepalive_s)
    return PahoClient(host, port, node, node, password, keepalive_s)
