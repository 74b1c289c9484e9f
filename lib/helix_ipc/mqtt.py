# helix_ipc.mqtt: one bus across boards and hosts through an MQTT broker.
#
# A Bridge joins a node's EventBus and MessageRouter to a broker through a thin client
# adapter (UmqttClient: micropython-lib umqtt.simple on MicroPython; mqtt_paho.PahoClient:
# paho-mqtt on CPython, a module of its own a board never loads; anything with the same
# methods works). Topic scheme (docs/mqtt.md):
#   helix/<node>/status           b"online" (retained, QoS 1); last will b"offline" (retained)
#   helix/<node>/event/<topic>    an exported event, QoS 0: wire.encode(event_to_obj(e))
#   helix/<node>/req/<to>         a request from <node> to <to>, QoS 1: remote.Peer's
#                                 [REQ, correlation id, module, request]
#   helix/<node>/reply/<to>       <node>'s answer to <to>, QoS 1: [RESP, correlation id, resp]
# A node publishes only under helix/<its name>/ (the broker's ACL enforces it), so the
# reply topic of a request to B from A is always helix/B/reply/A: MQTT 3.1.1 (umqtt) has
# no response-topic property, and the only reply topic the ACL allows is that one.
# Nothing received is executed, evaluated or imported: wire.decode builds plain values
# only. A payload that does not decode, has the wrong shape, or a message kind that does
# not belong on its topic (only REQ on req/, only RESP on reply/) is dropped, counted in
# `malformed` and passed to error_hook.
#
# Requests are remote.Peer's, one Peer per other node (shared with the serial link): its
# proxy modules "<node>/<module>" in the local router (`await router.request("B/stats",
# req, timeout_ms)` or router.queue with a callback; router.send answers Response.Error),
# correlation ids, deadlines (request_timeout_ms: the callback gets Response.Error, counted
# in `timeouts`), answers for no pending request counted in `late_responses`, a repeated
# request never run twice (`duplicates`: answered from the Peer's cache of the last
# answers), a peer's `offline` failing its pending requests at once (`link_failures`) and
# later ones until it is online again (a node not heard of yet is tried: its retained
# status may still be on its way, and the deadline bounds the wait).
# Incoming requests go into the named local module's mailbox: serve it (router.serve,
# ModuleHost.start_tasks or process_mailbox).
#
# Faults: every publish goes through one bounded FIFO (`queue_capacity`). While the broker
# is away it fills; past capacity the oldest event is dropped (requests and answers only
# when it holds no event), counted in `queue_dropped`.
# A lost connection (any OSError from the client) is counted in `disconnects`; poll()
# reconnects with a growing back-off (100 ms .. 5 s), publishes `online` again, restores
# every subscription, then flushes the queue. (mosquitto publishes every client's will
# as it shuts down: the nodes see each other offline, so requests fail at once until the
# peer is online again.) Messages received go through a bounded inbox
# (`inbox_capacity` per poll; twice that waiting, the rest dropped and counted in
# `inbox_dropped`). A peer's status change (`online`, or `offline` from its last will or
# its stop()) is kept in bridge.peers and passed to status_hook(node, online).
#
# Contexts: poll(), start(), stop(), proxy(), export(), listen() from task context, one
# thread at a time (the bridge's task: `await bridge.run()` polls the client's socket
# without blocking: umqtt check_msg / paho loop(0)). The export subscription and the
# answers of incoming requests only put bytes in the queue, under a lock, so they may run
# in any task, thread or scheduled callback; never a hard IRQ (they allocate). The umqtt
# client blocks in a QoS 1 publish until its PUBACK (short on a LAN; the broker going away
# ends it with OSError); the paho adapter does the same, so both behave alike.

from . import wire
from ._compat import micropython, new_lock, ticks_add, ticks_diff, ticks_ms
from .bus import EventSubscription
from .errors import check_int
from .events import EventResponse, EventTopic
from .messages import check_name

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401

_MASK = 0x1FFFFFFF
_BACKOFF_MIN = 100
_BACKOFF_MAX = 5000
_ONLINE = b"online"
_OFFLINE = b"offline"
_DEFAULT_PORT = 1883
_REQ_HEAD = b"[1,"  # wire.encode of a list starting with REQ (1): [REQ, cid, module, req]
_RESP_HEAD = b"[2,"  # a list starting with RESP (2): [RESP, cid, response]
_COUNTERS = ("connects", "disconnects", "refused", "published", "received", "events_out",
             "events_in", "malformed", "queue_dropped", "inbox_dropped", "not_sent")
_PEER_SUMS = ("requests_out", "requests_in", "responses_out", "responses_in", "duplicates",
              "timeouts", "late_responses", "link_failures", "callback_errors", "out_dropped")


class Refused(OSError):
    """The broker refused the connection (CONNACK code: 4 bad user name or password,
    5 not authorised)."""


def _check_level(name, what):
    check_name(name, what)
    for ch in "+#\x00":
        if ch in name:
            raise ValueError("%s %r may not contain '+', '#' or NUL (MQTT wildcards)" % (what, name))
    return name


def _check_node(name):
    _check_level(name, "node name")
    if "/" in name:
        raise ValueError("node name %r may not contain '/'" % name)
    return name


def topic_level(topic):
    """The MQTT topic levels for an EventTopic: "tick", "memory_pressure", ... for the
    built-in ones, "custom/<name>" for EventTopic.Custom(name). ValueError for ALL and
    for a custom name holding an MQTT wildcard."""
    if not isinstance(topic, EventTopic) or topic is EventTopic.ALL:
        raise ValueError("an EventTopic other than ALL is needed, got %r" % (topic,))
    if isinstance(topic._key, str):
        return "custom/" + _check_level(topic.name, "custom topic name")
    return topic.name.lower()


def _default_hook(where, error):
    print("helix_ipc.mqtt: %s: %s" % (where, error))


class Bridge:
    """Bridge(node, client, bus=None, router=None, queue_capacity=32, inbox_capacity=16,
    request_timeout_ms=5000, peer_capacity=16).
    `client` is an adapter (UmqttClient, PahoClient or client_for()); bus/router default to
    the global ones. The node's name is its MQTT client id and user name."""

    def __init__(self, node, client, bus=None, router=None, queue_capacity=32,
                 inbox_capacity=16, request_timeout_ms=5000, peer_capacity=16):
        from .bus import global_event_bus
        from .router import _NO_LOCK, global_router

        _check_node(node)
        check_int(queue_capacity, "queue_capacity", 1)
        check_int(inbox_capacity, "inbox_capacity", 1)
        check_int(request_timeout_ms, "request_timeout_ms", 0)  # 0: no deadline (remote.Peer)
        # remote.Peer's own minimum (RESERVE + 1), checked here so that a bad value raises
        # now, not in the first link() (for a request from the network: counted malformed)
        check_int(peer_capacity, "peer_capacity", 5)
        self.node = node
        self.client = client
        self.bus = bus if bus is not None else global_event_bus()
        self.router = router if router is not None else global_router()
        self.prefix = "helix/" + node + "/"
        self.queue_capacity = queue_capacity
        self.inbox_capacity = inbox_capacity
        self.request_timeout_ms = request_timeout_ms
        self.peer_capacity = peer_capacity
        self.error_hook = _default_hook
        self.status_hook = None
        self.peers = {}  # node -> True (online) / False (offline), from their status
        self.links = {}  # node -> remote.Peer (requests both ways)
        self.connected = False
        self._lock = new_lock() or _NO_LOCK  # builds without threads: the router's no-op lock
        self._queue = []  # (topic, payload, qos, retain) waiting to be published
        self._inbox = []  # (topic, payload) received, not handled yet
        self._subs = ["helix/+/status", "helix/+/req/" + node, "helix/+/reply/" + node]
        self._exported = []  # bus subscription ids
        self._importing = False  # True while a remote event is published on the local bus
        self._retry_at = None
        self._backoff = _BACKOFF_MIN
        self._inbox_told = 0  # inbox_dropped when error_hook was last told
        self._out_topics = {}  # EventTopic -> its MQTT topic, for export
        self._in_topics = {}  # received topic (bytes or str) -> what _parse made of it
        self.connects = self.disconnects = self.refused = 0
        self.published = self.received = self.events_out = self.events_in = 0
        self.malformed = self.queue_dropped = self.inbox_dropped = self.not_sent = 0

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
        """Receive events from `node` ("+" = every other node) into the local bus: all
        of them (topics=None) or these EventTopics."""
        if node != "+":
            _check_node(node)
        levels = ["#"] if topics is None else [topic_level(t) for t in topics]
        for level in levels:
            self._subscribe("helix/%s/event/%s" % (node, level))

    def proxy(self, node, module):
        """Register "<node>/<module>" in the local router: requests queued to it travel
        to `module` on `node`. Returns that name."""
        _check_node(node)
        _check_level(module, "module name")
        self.link(node).proxy(module)
        return node + "/" + module

    def link(self, node):
        """The remote.Peer for `node` (made on first use)."""
        p = self.links.get(node)
        if p is None:
            from .remote import Peer

            _check_node(node)
            p = Peer(self.router, self.bus, _Out(self, node).send, self.node, node + "/",
                     self.peer_capacity, self.request_timeout_ms)
            p.error_hook = self._peer_hook
            self.links[node] = p
            if self.peers.get(node) is not False:  # online, or not heard of yet: try it
                p.connected(node)
        return p

    def _tell(self, where, error):
        # every drop and failure: counted by the caller, then error_hook (None: counted only)
        hook = self.error_hook
        if hook is not None:
            try:
                hook(where, error)
            except Exception:  # noqa: BLE001,S110 - a failing hook must not stop the bridge
                pass

    def _peer_hook(self, where, error):
        self._tell("peer: " + where, error)

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
        """The bridge's counters, the requests' (summed over the links), connected,
        queued, pending, peers, and links (each remote.Peer's stats): a new dict."""
        d = {}
        for name in _COUNTERS:
            d[name] = getattr(self, name)
        for name in _PEER_SUMS:
            d[name] = 0
        d["pending"] = 0
        links = {}
        for node in self.links:
            s = links[node] = self.links[node].stats()
            for name in _PEER_SUMS:
                d[name] += s[name]
            d["malformed"] += s["malformed"]
            d["pending"] += s["pending"]
        d["links"] = links
        d["connected"] = self.connected
        d["queued"] = len(self._queue)
        d["peers"] = dict(self.peers)
        return d

    # -- connection ------------------------------------------------------------------
    def start(self):
        """Connect now. Refused (bad credentials, not authorised) is raised, and so is
        any other OSError; after one, poll() keeps trying."""
        try:
            self._connect()
        except OSError:
            self._retry_at = ticks_add(ticks_ms(), self._backoff)
            raise

    def _connect(self):
        c = self.client
        try:
            c.connect(self.prefix + "status", _OFFLINE, self._deliver)
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

    def _lost(self, error):
        if self.connected:
            self.connected = False
            self.disconnects = (self.disconnects + 1) & _MASK
            self._tell("connection lost", error)
        try:
            self.client.close()
        except OSError:
            pass
        self._retry_at = ticks_add(ticks_ms(), self._backoff)

    def stop(self):
        """Send what is queued, publish `offline` (retained), disconnect, stop exporting."""
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
        """One turn: reconnect when due, read what the broker sent, handle it, let each
        link send its proxies' requests and expire deadlines, flush the queue. Returns
        how many messages were handled. Task context."""
        # Kept small, the try blocks in helpers: an idle turn allocates (almost) nothing
        # (a frame with try blocks and many locals would be heap-allocated every call).
        if self.connected:
            self._read()
        elif self._retry_at is not None:
            self._retry()
        n = self._handle_inbox() if self._inbox else 0
        links = self.links
        if links:
            for node in links:
                links[node].service()
        if self.connected:
            if self._queue:
                self._flush()
            self._ping()
        return n

    def _retry(self):
        if ticks_diff(ticks_ms(), self._retry_at) >= 0:
            try:
                self._connect()
            except OSError:
                self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
                self._retry_at = ticks_add(ticks_ms(), self._backoff)

    @micropython.native  # a bytecode frame with `except .. as` is heap-allocated per call
    def _read(self):
        try:
            self.client.poll(self.inbox_capacity)
        except OSError as e:
            self._lost(e)

    @micropython.native
    def _ping(self):
        try:
            self.client.ping()  # the adapter pings when due and notices a silent broker
        except OSError as e:
            self._lost(e)

    async def run(self, interval_ms=2):
        """Poll until cancelled (a task). Sleeps interval_ms after a turn with nothing
        received."""
        import asyncio

        sleep_ms = getattr(asyncio, "sleep_ms", None)
        while True:
            if self.poll():
                await asyncio.sleep(0)
            elif sleep_ms is not None:
                await sleep_ms(interval_ms)
            else:
                await asyncio.sleep(interval_ms / 1000)

    # -- out -------------------------------------------------------------------------
    def _put(self, topic, payload, qos, retain):
        # Any context but a hard IRQ: append under the lock; the oldest goes when full.
        # (small frames, the rare drop in a helper: nothing heap-allocated but the entry)
        if self._append((topic, payload, qos, retain)):
            self._tell("queue full", "the oldest of %d queued messages was dropped" % self.queue_capacity)

    def _append(self, item):
        self._lock.acquire()
        try:
            self._queue.append(item)  # first: a MemoryError here leaves the queue as it was
            if len(self._queue) <= self.queue_capacity:
                return False
            self._drop_oldest()
            return True
        finally:
            self._lock.release()

    def _drop_oldest(self):
        # under the lock: the oldest event (QoS 0) goes; requests and answers only when no
        # event is left
        q = self._queue
        i = 0
        while i < len(q) - 1 and q[i][2]:
            i += 1
        q.pop(i if i < len(q) - 1 else 0)
        self.queue_dropped = (self.queue_dropped + 1) & _MASK

    def _flush(self):
        q = self._queue
        lock = self._lock
        send = self._send1
        while q and self.connected:
            item = q[0]
            if not send(item):
                return
            lock.acquire()
            if q and q[0] is item:
                q.pop(0)
            lock.release()
            self.published = (self.published + 1) & _MASK

    @micropython.native  # small, so that the try block's frame stays off the heap
    def _send1(self, item):
        try:
            self.client.publish(item[0], item[1], item[2], item[3])
            return True
        except OSError as e:
            self._lost(e)
            return False

    def _on_local(self, event):
        # the export subscription: a local event goes out (not one that came from the broker)
        if self._importing:
            return EventResponse.IGNORED
        payload = self._encode(event)
        if payload is None:
            return EventResponse.IGNORED
        topic = self._out_topics.get(event.topic)
        if topic is None:  # one per exported topic (custom names included; export checked them)
            topic = self._out_topics[event.topic] = self.prefix + "event/" + topic_level(event.topic)
        self._put(topic, payload, 0, False)
        self.events_out = (self.events_out + 1) & _MASK
        return EventResponse.HANDLED

    @micropython.native
    def _encode(self, event):
        try:
            return wire.encode(wire.event_to_obj(event))
        except (TypeError, ValueError) as e:
            self.not_sent = (self.not_sent + 1) & _MASK
            self._tell("export", e)
            return None

    # -- in --------------------------------------------------------------------------
    def _deliver(self, topic, payload):
        # The client's message callback (inside client.poll / a QoS 1 publish): only queue.
        inbox = self._inbox
        if len(inbox) >= self.inbox_capacity * 2:
            self.inbox_dropped = (self.inbox_dropped + 1) & _MASK
            return
        inbox.append((topic, payload))

    def _handle_inbox(self):
        # few locals, the rare parts in helpers: a small frame stays off the heap
        inbox = self._inbox
        n = 0
        while inbox and n < self.inbox_capacity:
            msg = inbox.pop(0)
            n += 1
            self.received = (self.received + 1) & _MASK
            info = self._in_topics.get(msg[0])
            if info is None:
                info = self._topic_info(msg[0])
            self._handle(info, bytes(msg[1]))
        if self.inbox_dropped != self._inbox_told:  # the client's callback only counts; the hook runs here
            self._inbox_told = self.inbox_dropped
            self._tell("inbox full", "%d received messages dropped so far" % self.inbox_dropped)
        return n

    def _topic_info(self, topic):
        cache = self._in_topics
        info = self._parse(topic)
        if len(cache) >= 64:  # bounded: a flood of odd topics cannot grow it
            cache.clear()
        cache[topic] = info
        return info

    def _malformed(self, where, error):
        self.malformed = (self.malformed + 1) & _MASK
        self._tell("malformed " + where, error)

    def _parse(self, topic):
        # (kind, source node, rest, topic str) for a received topic; kind None: ours
        # (our own status or events coming back), "?": outside the scheme
        if not isinstance(topic, str):
            try:
                topic = bytes(topic).decode()
            except (UnicodeError, ValueError):
                return ("?", "", "", repr(topic))
        parts = topic.split("/")
        n = len(parts)
        if n < 3 or parts[0] != "helix" or not parts[1]:
            return ("?", "", "", topic)
        src, kind = parts[1], parts[2]
        if src == self.node:
            return (None, src, "", topic)
        if kind == "event" and n >= 4:
            return ("event", src, "/".join(parts[3:]), topic)
        if (kind == "status" and n == 3) or (kind in ("req", "reply") and n == 4 and parts[3] == self.node):
            return (kind, src, "", topic)
        return ("?", src, "", topic)

    @micropython.native  # per message received: the try block here, the body in _dispatch
    def _handle(self, info, payload):
        try:
            self._dispatch(info, payload)
        except (ValueError, TypeError, KeyError, IndexError) as e:  # WireError is a ValueError
            self._malformed(info[3], e)
        finally:
            self._importing = False  # (set by _event_in while it publishes on the local bus)

    def _dispatch(self, info, payload):
        # no try block, few locals: its frame stays off the heap
        kind = info[0]
        if kind is None:
            return
        if kind == "event":
            self._event_in(info[2], payload)
        elif kind == "status":
            self._status_in(info[1], payload)
        elif kind == "req":
            if not payload.startswith(_REQ_HEAD):  # (no slice: nothing allocated)
                raise ValueError("not a request")
            p = self.link(info[1])
            if p.remote is None:
                p.connected(info[1])  # a request proves it is there
            p.receive(payload)  # counts what is malformed itself
        elif kind == "reply":
            p = self.links.get(info[1])
            if p is None or not payload.startswith(_RESP_HEAD):
                raise ValueError("not an answer to a request of ours")
            p.receive(payload)
        else:
            self._malformed(info[3], "not in the topic scheme")

    def _event_in(self, level, payload):
        event = wire.obj_to_event(wire.decode(payload))
        if topic_level(event.topic) != level:
            raise ValueError("event %r under topic level %r" % (event, level))
        self.events_in = (self.events_in + 1) & _MASK
        self._importing = True  # _on_local sends nothing back out; _handle's finally clears it
        self.bus.publish(event)

    def _status_in(self, src, payload):
        if payload == _ONLINE:
            online = True
        elif payload == _OFFLINE:
            online = False
        else:
            raise ValueError("status must be online or offline")
        was = self.peers.get(src)
        self.peers[src] = online
        p = self.links.get(src)
        if p is not None:
            if online and p.remote is None:
                p.connected(src)
            elif not online and p.remote is not None:
                p.disconnected("it went offline")
        if was is not online and self.status_hook is not None:
            try:
                self.status_hook(src, online)
            except Exception as e:  # noqa: BLE001 - a user hook
                self._tell("status_hook", e)


class _Out:
    # A link's send(payload): its requests and answers go out on this node's topics.
    def __init__(self, bridge, node):
        self.bridge = bridge
        self.req = bridge.prefix + "req/" + node
        self.reply = bridge.prefix + "reply/" + node

    def send(self, payload):
        if payload.startswith(_REQ_HEAD):
            self.bridge._put(self.req, payload, 1, False)
        elif payload.startswith(_RESP_HEAD):
            self.bridge._put(self.reply, payload, 1, False)
        # the Peer's subscription announcements (SUBS) are not sent: MQTT subscriptions
        # do that job, and events travel on helix/<node>/event/..., not through a link


# -- client adapters ------------------------------------------------------------------
# connect(will_topic, will_payload, deliver), publish(topic, payload, qos, retain),
# subscribe(topic, qos), poll(max_messages), ping() (every poll: keep the connection alive,
# raise OSError when the broker went silent), close(), disconnect(); every network
# failure is an OSError (Refused when the broker said no); deliver(topic, payload) is
# called for each message received, inside connect/publish/subscribe/poll.

class UmqttClient:
    """micropython-lib umqtt.simple (MicroPython; `mpremote mip install umqtt.simple`).
    keepalive_s (> 0) is also how long a blocking read or write may wait, and how long
    the broker may say nothing (it answers the PINGREQ sent every keepalive_s / 2)
    before the connection counts as lost: a Wi-Fi link that dies silently is noticed."""

    def __init__(self, host, port, client_id, user, password, keepalive_s=30):
        check_int(keepalive_s, "keepalive_s", 1)
        self.args = (client_id, host, port or _DEFAULT_PORT, user, password, keepalive_s)
        self.keepalive_ms = keepalive_s * 1000
        self.c = None  # type: Any
        self.sock = None  # type: Any
        self.poller = None  # type: Any
        self.pinged = ticks_ms()
        self.topics = {}  # topic str -> its bytes, as umqtt wants them

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
        nodelay(c.sock)
        import select

        self.poller = select.poll()
        self.poller.register(c.sock, select.POLLIN)
        self.sock = c.sock = _Sock(c.sock, self.keepalive_ms // 1000)
        self.pinged = ticks_ms()
        self.c = c

    def publish(self, topic, payload, qos, retain):
        self._send(topic, payload, qos, retain)

    def subscribe(self, topic, qos):
        self._send(topic, None, qos, False)

    @micropython.native  # per publish: a bytecode frame this size is heap-allocated per call
    def _send(self, topic, payload, qos, retain):
        # publish (payload not None) or subscribe; umqtt's own failures become OSError
        c = self.c
        if c is None:
            raise OSError("not connected")
        if c.pid >= 65535:
            c.pid = 0
        t = self.topics.get(topic)
        if t is None:  # encoded once: the bridge's topics are a few, fixed by its setup
            t = self.topics[topic] = topic.encode()
        try:
            if payload is None:
                c.subscribe(t, qos)
            else:
                c.publish(t, payload, retain, qos)
        except (IndexError, AssertionError, TypeError) as e:
            raise OSError("%s: %r" % ("subscribe" if payload is None else "publish", e))

    def poll(self, max_messages):
        if self.c is None:
            raise OSError("not connected")
        if self._ready():  # an idle turn stops here, allocating nothing
            self._drain(max_messages)

    @micropython.native  # every turn something arrived (its try blocks)
    def _drain(self, max_messages):
        c = self.c
        try:
            k = max_messages
            while k:
                k -= 1
                if c.check_msg() is None and not self._ready():
                    break
        except (IndexError, AssertionError, TypeError, MemoryError) as e:
            # a packet left half read (no room for it, or cut short): the stream is
            # broken, the connection counts as lost (the broker's max_packet_size keeps
            # what another node may send small: tools/cluster/mosquitto.conf)
            raise OSError("receive: %r" % (e,))
        finally:
            if self.c is not None:
                self.sock.setblocking(True)

    def _ready(self):
        # bytes waiting on the socket? (ipoll reuses its result: no allocation)
        for _ in self.poller.ipoll(0):
            return True
        return False

    def ping(self):
        # called by the bridge every poll: a PINGREQ every keepalive/2; the connection
        # is lost when the broker said nothing for a whole keepalive
        if self.c is None:
            raise OSError("not connected")
        now = ticks_ms()
        if ticks_diff(now, self.sock.rx) > self.keepalive_ms:
            raise OSError("the broker said nothing for %d ms" % ticks_diff(now, self.sock.rx))
        if ticks_diff(now, self.pinged) >= self.keepalive_ms // 2:
            self.pinged = now
            self.c.ping()

    def close(self):
        c, self.c = self.c, None
        if c is not None:
            _close(c)

    def disconnect(self):
        c, self.c = self.c, None
        if c is not None:
            c.disconnect()


class _Sock:
    # umqtt's socket, wrapped: a blocking read or write gives up after timeout_s with
    # OSError (umqtt's setblocking(True) would wait forever on a link gone silent, and a
    # timed-out read that returned None would have umqtt wait again), and the time of
    # the last byte received is kept (UmqttClient.ping's liveness check).
    def __init__(self, sock, timeout_s):
        self.s = sock
        self.t = timeout_s
        self.blocking = True
        self.rx = ticks_ms()
        sock.settimeout(timeout_s)

    def setblocking(self, flag):
        self.blocking = flag
        self.s.settimeout(self.t if flag else 0)

    def read(self, n):
        b = self.s.read(n)
        if b is None:
            if self.blocking:
                raise OSError(110, "read timed out")  # ETIMEDOUT
            return None
        if b:
            self.rx = ticks_ms()
        return b

    def write(self, buf, n=None):
        r = self.s.write(buf) if n is None else self.s.write(buf, n)
        if r is None or r < (len(buf) if n is None else n):
            # timed out, or written in part: umqtt would go on with a broken stream
            raise OSError(110, "write timed out")
        return r

    def close(self):
        self.s.close()


def nodelay(sock):
    """TCP_NODELAY on sock where the port has it: umqtt writes a packet in several small
    writes, and Nagle's algorithm against the broker's delayed ACK would hold each QoS 1
    exchange ~40 ms (measured on the unix port against a loopback mosquitto: 88 ms per
    request round trip without it; not measured on a board's lwIP)."""
    try:
        sock.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
    except (OSError, AttributeError, TypeError):
        pass


def _close(c):
    try:
        if c.sock is not None:
            c.sock.close()
    except OSError:
        pass


def client_for(host, port, node, password, keepalive_s=30):
    """The adapter for this interpreter: UmqttClient on MicroPython, PahoClient on CPython.
    The node's name is its client id and user name."""
    import sys

    if sys.implementation.name == "micropython":
        return UmqttClient(host, port, node, node, password, keepalive_s)
    from .mqtt_paho import PahoClient

    return PahoClient(host, port, node, node, password, keepalive_s)
