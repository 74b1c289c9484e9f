# helix_ipc.remote: the local side of one remote node, whatever carries the bytes (the
# serial link, the MQTT bridge). Transport-agnostic: the transport gives Peer a `send`
# callable for one encoded message and calls `receive(payload)` with each one that came
# in, `connected(name)` / `disconnected(reason)` as the other node comes and goes, and
# `service()` from its own task after `wake()` and every few tens of ms.
#
# What crosses (messages are wire-encoded lists, the first item the kind):
#   [REQ, cid, module, request]    a request for the module named `module` over there
#   [RESP, cid, response]          its answer (cid: the requester's correlation id)
#   [EVT, event]                   an event on a topic the receiver subscribed to
#   [SUBS, [topic, ...]]           the whole set of topics the sender wants to receive
# Other kinds (the link's hello/keepalive) go to `control(msg)`, set by the transport.
#
# Requests out (helix_ipc.remote_out, loaded by the first use): `peer.queue(module,
# request, callback, timeout_ms)` (callback(Response) exactly once: the answer, or
# Response.Error for a deadline, a lost link or a full queue), `await peer.request(...)`
# (Timeout, LinkDown), or through the local router: `proxy()`
# registers a module ("pico/stats") whose mailbox this peer empties (router.queue and
# await router.request work; router.send returns Response.Error naming them, since a
# synchronous send cannot wait for another node). An answer for no pending request
# (late, duplicated, or after a timeout) is dropped and counted in `late_responses`.
# Requests in: queued into the local router's mailbox of the module (so its own serve
# task or process_mailbox answers them); the last CACHE answers are kept by correlation
# id, so a repeated request is answered again from the cache, never run twice.
# Events: the peer subscribes to the local bus for the topics the other node announced,
# and forwards those events; received events are published on the local bus (never
# echoed back). Outgoing messages wait in a bounded queue (`out_capacity`); events may
# fill it only up to out_capacity - RESERVE, so a flood of events never blocks answers.
# Everything dropped is counted (stats()) and passed to `error_hook(where, error)` (None:
# counted only; a board's REPL line is no place to print).
#
# Contexts: task context only (one event loop; `wake` may be a ThreadSafeFlag.set, as a
# router queue() from another thread calls it). Nothing received is evaluated.

from . import wire
from ._compat import const, ticks_diff, ticks_ms
from .errors import ChannelFull, IpcError, ModuleNotFound
from .messages import Response

REQ = const(1)
RESP = const(2)
EVT = const(3)
SUBS = const(4)
CACHE = const(8)  # answers kept for repeated correlation ids
RESERVE = const(4)  # outgoing slots events never take
_MASK = const((1 << 29) - 1)

_COUNTERS = ("sent", "received", "malformed", "unknown", "send_errors", "out_dropped", "requests_out",
             "responses_in", "timeouts", "late_responses", "link_failures", "requests_in", "responses_out",
             "duplicates", "callback_errors", "memory_errors", "events_out", "events_in", "events_unwanted",
             "events_dropped")


class LinkDown(IpcError):
    """The remote node is not connected (or the connection was lost mid-request)."""


class Peer:
    """The local side of one remote node: `Peer(router, bus, send, name="local",
    prefix="", out_capacity=16, timeout_ms=10000, wake=None)`.

    `send(payload)` sends one encoded message (it may raise OSError: counted in
    send_errors); `wake()` (optional) is called when something waits to be sent or
    serviced. The remote node's name is `remote` once connected (None before)."""

    # the counters (stats()), class-level zeros until counted
    sent = received = malformed = unknown = send_errors = out_dropped = requests_out = 0
    responses_in = timeouts = late_responses = link_failures = requests_in = responses_out = 0
    duplicates = callback_errors = events_out = events_in = events_unwanted = events_dropped = 0

    def __init__(self, router, bus, send, name="local", prefix="", out_capacity=16, timeout_ms=10000, wake=None):
        if out_capacity < RESERVE + 1:
            raise ValueError("out_capacity must be at least %d" % (RESERVE + 1))
        self.router = router
        self.bus = bus
        self.name = name
        self.prefix = prefix
        self.timeout_ms = timeout_ms
        self._send = send
        self.wake = wake
        self.control = None  # transport's handler of other kinds
        self.flush_answers = False  # True: an answer is sent at once, from the task that answered
        self.error_hook = None
        self.remote = None  # the other node's name while connected
        self.max_out = 0  # the largest message the other side takes (0: no limit)
        self._out = []  # encoded messages waiting for send
        self._cap = out_capacity
        self._cid = (ticks_diff(ticks_ms(), 0) * 7919) & 0xFFFFF  # a fresh start per process (see docs)
        self._pending = {}  # cid -> [callback, deadline, label, box]
        self._proxies = []  # the router _Module records this peer serves
        self._cache = {}  # cid -> encoded answer (None while in progress)
        self._order = []  # the cache's cids, oldest first
        self.wanted = set()  # topics (wire form) we want from the other side
        self.remote_wants = ()  # topics (wire form) the other side wants from us
        self._fwd = None  # our bus subscription forwarding those
        self._inbound = False
        self.memory_errors = 0  # an instance attribute already: counting it allocates nothing
    # -- counters and errors --------------------------------------------------------------

    def _count(self, what, where=None, error=None):
        setattr(self, what, (getattr(self, what) + 1) & _MASK)
        if where is not None and self.error_hook is not None:
            try:
                self.error_hook(where, error)
            except Exception:  # noqa: S110 - a failing hook must not break the link
                pass

    def stats(self):
        """Every counter, the queue length and the pending requests, as a dict."""
        d = {}
        for c in _COUNTERS:
            d[c] = getattr(self, c)
        d["queued"] = len(self._out)
        d["pending"] = len(self._pending)
        return d

    # -- outgoing ---------------------------------------------------------------------------

    def _post(self, msg, event=False):
        # Encode and queue msg; False (counted) when the queue is full or msg too big.
        room = self._cap - (RESERVE if event else 0)
        if len(self._out) >= room:
            self._count("events_dropped" if event else "out_dropped", "outgoing queue full", msg[0])
            return False
        b = wire.encode(msg)
        if self.max_out and len(b) > self.max_out:
            self._count("out_dropped", "message too large", len(b))
            return False
        self._out.append(b)
        if self.wake is not None:
            self.wake()
        return True

    def flush(self):
        """Send every queued message; returns how many were sent."""
        n = 0
        out = self._out
        while out:
            b = out.pop(0)
            try:
                self._send(b)
            except OSError as e:
                self._count("send_errors", "send", e)
                continue
            self.sent = (self.sent + 1) & _MASK
            n += 1
        return n

    def service(self):
        """Turn queued proxy requests into messages, expire pending requests whose
        deadline passed, then flush(). Call it from the transport's task."""
        if self._proxies or self._pending:
            _out().pump(self)
        return self.flush()

    # -- requests out (helix_ipc.remote_out, loaded by the first use) ------------------------

    def queue(self, module, request, callback, timeout_ms=None):
        """Send `request` to `module` (its name over there); `callback(Response)` is
        called exactly once: with the answer, or with Response.Error when the link is
        down, the queue full, or no answer came within timeout_ms (default: the peer's;
        0: none). Returns the correlation id."""
        return _out().queue(self, module, request, callback, timeout_ms)

    def request(self, module, request, timeout_ms=None):
        """`await peer.request(module, request, timeout_ms)`: the Response; Timeout when
        none came in time (a later one is dropped, counted in late_responses); LinkDown
        when the link is down or is lost meanwhile."""
        return _out().request(self, module, request, timeout_ms)

    def proxy(self, module, local_name=None, module_id=None):
        """Register `local_name` (default prefix + module) in the local router for the
        remote `module`; returns its module id (1000 up). router.queue/request to it go
        to the other node; router.send returns Response.Error naming them."""
        return _out().proxy(self, module, local_name, module_id)

    def unproxy(self):
        """Unregister every proxy module (their queued requests get Response.Error)."""
        _out().unproxy(self)

    def _call(self, cb, response):
        try:
            cb(response)
        except Exception as x:
            self._count("callback_errors", "callback", x)

    # -- incoming ----------------------------------------------------------------------------

    def receive(self, payload):
        """Handle one encoded message from the other node (the transport's entry point)."""
        try:
            msg = wire.decode(payload)
            if not isinstance(msg, list) or not msg or type(msg[0]) is not int:
                raise wire.WireError("not a message")
            self.received = (self.received + 1) & _MASK
            self._dispatch(msg)
        except wire.WireError as e:
            self._count("malformed", "message", e)
        except MemoryError as e:  # this message is lost (counted); the peer goes on
            self._count("memory_errors", "message", e)

    def _dispatch(self, msg):
        k = msg[0]
        n = len(msg)
        if k == REQ and n == 4 and type(msg[1]) is int and isinstance(msg[2], str):
            self._on_request(msg[1], msg[2], msg[3])
        elif k == RESP and n == 3 and type(msg[1]) is int:
            e = self._pending.pop(msg[1], None)
            if e is None:
                self._count("late_responses", "answer for no pending request", msg[1])
                return
            self.responses_in = (self.responses_in + 1) & _MASK
            self._answer_pending(e, msg[2])
        elif k == EVT and n == 2:
            self._on_event(wire.obj_to_event(msg[1]))
        elif k == SUBS and n == 2 and isinstance(msg[1], list):
            for t in msg[1]:
                wire.obj_to_topic(t)  # each one valid, or WireError
            self._set_remote_wants(msg[1])
        elif self.control is not None and k not in (REQ, RESP, EVT, SUBS):
            self.control(msg)
        else:
            raise wire.WireError("unknown message kind %d or bad fields" % k)

    def _answer_pending(self, e, obj):
        try:
            r = wire.obj_to_response(obj)
        except wire.WireError:
            r = Response.Error("%s: malformed answer" % e[2])
            self._count("malformed", "answer", obj)
        self._call(e[0], r)

    def _on_request(self, cid, module, obj):
        self.requests_in = (self.requests_in + 1) & _MASK
        if cid in self._cache:
            self._count("duplicates", "repeated request", cid)
            b = self._cache[cid]
            if b is not None and len(self._out) < self._cap:
                self._out.append(b)
                if self.wake is not None:
                    self.wake()
            return
        order = self._order
        if len(order) >= CACHE:
            self._cache.pop(order.pop(0), None)
        order.append(cid)
        self._cache[cid] = None
        try:
            req = wire.obj_to_request(obj, self.remote or "remote")
            self.router.queue(module, req, lambda r: self._respond(cid, r))
        except (wire.WireError, ModuleNotFound, ChannelFull, ValueError, TypeError) as e:
            self._respond(cid, Response.Error("%s: %s" % (module, e)))

    def _respond(self, cid, response):
        msg = [RESP, cid, wire.response_to_obj(response)]
        if cid in self._cache:
            self._cache[cid] = wire.encode(msg)
        if self._post(msg):
            self.responses_out = (self.responses_out + 1) & _MASK
            if self.flush_answers:
                self.flush()

    def _on_event(self, event):
        t = event.topic._key
        if t not in self.wanted and 6 not in self.wanted:  # 6: EventTopic.ALL
            self._count("events_unwanted", "event on a topic not subscribed", t)
            return
        self.events_in = (self.events_in + 1) & _MASK
        self._inbound = True
        try:
            self.bus.publish(event)
        finally:
            self._inbound = False

    # -- events --------------------------------------------------------------------------------

    def subscribe(self, topics):
        """Ask the other node for events on these EventTopics (announced now, and again
        at every (re)connection); they are published on the local bus."""
        for t in topics:
            self.wanted.add(wire.topic_to_obj(t))
        self.announce()

    def unsubscribe(self, topics):
        for t in topics:
            self.wanted.discard(wire.topic_to_obj(t))
        self.announce()

    def stream(self, topics, capacity=16):
        """subscribe(topics), and a bus.stream of them on the local bus."""
        self.subscribe(topics)
        return self.bus.stream(topics, capacity)

    def announce(self):
        if self.remote is not None:
            self._post([SUBS, list(self.wanted)])

    def _set_remote_wants(self, topics):
        from .bus import EventSubscription

        if self._fwd is not None:
            self.bus.unsubscribe(self._fwd)
            self._fwd = None
        self.remote_wants = tuple(topics)
        if topics:
            sub = EventSubscription("link:%s" % (self.remote or "remote"), [wire.obj_to_topic(t) for t in topics],
                                    self._forward)
            self._fwd = self.bus.subscribe(sub)

    def _forward(self, event):
        if self._inbound:  # came from the other node: never echoed back
            return
        if self._post([EVT, wire.event_to_obj(event)], True):
            self.events_out = (self.events_out + 1) & _MASK

    def publish(self, event):
        """Send `event` to the other node if it subscribed to its topic; True if queued."""
        t = event.topic._key
        w = self.remote_wants
        if t not in w and 6 not in w:
            self._count("events_unwanted")
            return False
        ok = self._post([EVT, wire.event_to_obj(event)], True)
        if ok:
            self.events_out = (self.events_out + 1) & _MASK
        return ok

    # -- the transport's session events -----------------------------------------------------

    def connected(self, remote, max_out=0):
        """The transport reached node `remote` (a new session): announce our topics."""
        self.remote = remote
        self.max_out = max_out
        self._cache = {}
        self._order = []
        self.announce()

    def disconnected(self, reason):
        """The other node is gone: every pending request fails (Response.Error, or
        LinkDown for peer.request), forwarding stops until it announces again."""
        was = self.remote
        self.remote = None
        self._set_remote_wants(())
        pending = self._pending
        self._pending = {}
        for cid in pending:
            self._count("link_failures")
            e = pending[cid]
            _out().fail(self, e, Response.Error("%s: link to %s lost: %s" % (e[2], was, reason)))
        self._out = []



def _out():
    from . import remote_out

    return remote_out
