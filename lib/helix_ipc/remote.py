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
# This module is the answering half, all a board that serves a host needs: requests in
# are queued into the local router's mailbox of the module (its own serve task or
# process_mailbox answers them); the last CACHE answers are kept by correlation id, so a
# repeated request is answered again from the cache, never run twice. Events: the peer
# subscribes to the local bus for the topics the other node announced and forwards
# those; received events are published on the local bus (never echoed back).
# The requesting half is helix_ipc.remote_out: peer.queue / request / proxy / unproxy /
# subscribe / unsubscribe / stream / publish. It is loaded by the first use of one of
# those names (Peer.__getattr__ imports it; it adds them to Peer as methods), so a board
# that only answers never pays for it. An answer for no pending request (late,
# duplicated, or after a timeout) is dropped and counted in `late_responses`.
# Outgoing messages wait in a bounded queue (`out_capacity`); events may fill it only up
# to out_capacity - RESERVE, so a flood of events never blocks answers. Everything
# dropped is counted (stats(), or peer.<name>; the counters are one list, `counts`, in
# the order of NAMES) and passed to `error_hook(where, error)` (None: counted only; a
# board's REPL line is no place to print); `where` is a short tag: "queue full", "too
# large", "send", "late", "unwanted", "duplicate", "message" (malformed), "answer",
# "callback", "frame" (a MemoryError while reading), a request's label (deadline).
#
# Contexts: task context only (one event loop; `wake` may be a ThreadSafeFlag.set, as a
# router queue() from another thread calls it). Nothing received is evaluated.

from . import wire
from ._compat import const
from .errors import IpcError, check_int
from .messages import Response

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401

REQ = const(1)
RESP = const(2)
EVT = const(3)
SUBS = const(4)
CACHE = const(8)  # answers kept for repeated correlation ids
RESERVE = const(4)  # outgoing slots events never take
_MASK = const((1 << 29) - 1)

# stats() keys of `counts`, by index (remote_out.py and link.py index them too)
NAMES = ("sent received malformed unknown send_errors out_dropped requests_out responses_in timeouts"
         " late_responses link_failures requests_in responses_out duplicates callback_errors memory_errors"
         " events_out events_in events_unwanted events_dropped")
_SENT = const(0)
_RECEIVED = const(1)
_MALFORMED = const(2)
_SEND_ERRORS = const(4)
_OUT_DROPPED = const(5)
_LATE = const(9)
_LINK_FAILURES = const(10)
_REQUESTS_IN = const(11)
_RESPONSES_OUT = const(12)
_DUPLICATES = const(13)
_MEMORY_ERRORS = const(15)
_EVENTS_OUT = const(16)
_EVENTS_IN = const(17)
_EVENTS_UNWANTED = const(18)
_EVENTS_DROPPED = const(19)


class Peer:
    """The local side of one remote node: `Peer(router, bus, send, name="local",
    prefix="", out_capacity=16, timeout_ms=10000, wake=None)`.

    `send(payload)` sends one encoded message (it may raise OSError: counted in
    send_errors); `wake()` (optional) is called when something waits to be sent or
    serviced. The remote node's name is `remote` once connected (None before)."""

    more = ""  # a transport's own stats() names after NAMES (the link's)
    _asked = False  # a proxy mailbox got a request since the last service() (remote_out)

    def __init__(self, router, bus, send, name="local", prefix="", out_capacity=16, timeout_ms=10000, wake=None):
        check_int(out_capacity, "out_capacity", RESERVE + 1)
        self.router = router
        self.bus = bus
        self.name = name
        self.prefix = prefix
        self.timeout_ms = timeout_ms
        self._send = send
        self.wake = wake
        self.control = None  # transport's handler of other kinds
        self.flush_answers = False  # True: an answer is sent at once, from the task that answered
        self.error_hook = None  # type: Any
        self.remote = None  # the other node's name while connected
        self.max_out = 0  # the largest message the other side takes (0: no limit)
        self.counts = [0] * len((NAMES + self.more).split())  # type: list[Any]
        self._out = []  # encoded messages waiting for send
        self._cap = out_capacity
        self._pending = {}  # requesting half: cid -> [callback, deadline, label, box]
        self._proxies = []  # requesting half: the router _Module records this peer serves
        self._cache = {}  # cid -> answer message (None while in progress)
        self._order = []  # the cache's cids, oldest first
        self.wanted = set()  # topics (wire form) we want from the other side
        self.remote_wants = ()  # topics (wire form) the other side wants from us
        self._fwd = None  # our bus subscription forwarding those
        self._inbound = False

    def __getattr__(self, name):
        # a counter by name (peer.malformed), or a method of the requesting half
        # (remote_out adds them to Peer when it is imported)
        if name[0] != "_":
            names = (NAMES + self.more).split()
            if name in names:
                return self.counts[names.index(name)]
            from . import remote_out

            if name in remote_out.METHODS:
                return getattr(self, name)
        raise AttributeError(name)

    def _count(self, i, where=None, error=None):
        # (no try block here: a frame that stays on the C stack; counted on every message)
        c = self.counts
        c[i] = (c[i] + 1) & _MASK
        if where is not None and self.error_hook is not None:
            self._hook(where, error)

    def _hook(self, where, error):
        try:
            self.error_hook(where, error)
        except Exception:  # noqa: S110 - a failing hook must not break the link
            pass

    def stats(self):
        """Every counter, the queue length and the pending requests, as a new dict."""
        d = dict(zip((NAMES + self.more).split(), self.counts))
        d["queued"] = len(self._out)
        d["pending"] = len(self._pending)
        d["remote"] = self.remote
        return d

    # -- outgoing ---------------------------------------------------------------------------

    def _post(self, msg, event=False):
        # Encode and queue msg; False (counted) when the queue is full or msg too big.
        if len(self._out) >= self._cap - (RESERVE if event else 0):
            self._count(_EVENTS_DROPPED if event else _OUT_DROPPED, "queue full", msg[0])
            return False
        b = wire.encode(msg)
        if self.max_out and len(b) > self.max_out:
            self._count(_OUT_DROPPED, "too large", len(b))
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
            try:
                self._send(out.pop(0))
            except OSError as e:
                self._count(_SEND_ERRORS, "send", e)
                continue
            self._count(_SENT)
            n += 1
        return n

    def service(self):
        """Turn queued proxy requests into messages, expire pending requests whose
        deadline passed, then flush(). Call it from the transport's task."""
        if self._asked or self._pending:  # made only by remote_out, so it is loaded
            self._pump_out()
        return self.flush() if self._out else 0  # an idle turn allocates nothing (flush's frame would)

    # -- incoming ----------------------------------------------------------------------------

    def receive(self, payload):
        """Handle one encoded message from the other node (the transport's entry point).
        Never raises for bad data: counted in malformed (memory_errors for a
        MemoryError: only this message is lost)."""
        try:
            msg = wire.decode(payload)
            if not isinstance(msg, list) or not msg or type(msg[0]) is not int:
                raise wire.WireError("message")
            self._count(_RECEIVED)
            k = msg[0]
            n = len(msg)
            if k == REQ and n == 4 and type(msg[1]) is int and isinstance(msg[2], str):
                self._count(_REQUESTS_IN)
                cid = msg[1]
                if cid in self._cache:  # answered (or in progress) already: never run twice
                    self._count(_DUPLICATES, "duplicate", cid)
                    answer = self._cache[cid]
                    if answer is not None:
                        self._post(answer)  # (a full queue drops and counts it, as any answer)
                    return
                order = self._order
                if len(order) >= CACHE:
                    self._cache.pop(order.pop(0), None)
                order.append(cid)
                self._cache[cid] = None
                try:
                    req = wire.obj_to_request(msg[3], self.remote or "remote")
                    self.router.queue(msg[2], req, lambda r: self._respond(cid, r))
                except (IpcError, ValueError, TypeError) as e:  # WireError, ModuleNotFound, ChannelFull
                    self._respond(cid, Response.Error("%s: %s" % (msg[2], e)))
            elif k == RESP and n == 3 and type(msg[1]) is int:
                entry = self._pending.pop(msg[1], None)
                if entry is None:
                    self._count(_LATE, "late", msg[1])
                else:
                    from . import remote_out

                    remote_out.answer(self, entry, msg[2])
            elif k == EVT and n == 2:
                event = wire.obj_to_event(msg[1])
                t = event.topic._key
                if t not in self.wanted and 6 not in self.wanted:  # 6: EventTopic.ALL
                    self._count(_EVENTS_UNWANTED, "unwanted", t)
                    return
                self._count(_EVENTS_IN)
                self._inbound = True
                try:
                    self.bus.publish(event)
                finally:
                    self._inbound = False
            elif k == SUBS and n == 2 and isinstance(msg[1], list):  # what the other node wants now
                ts = []
                for t in msg[1]:
                    ts.append(wire.obj_to_topic(t))  # each one valid, or WireError
                if self._fwd is not None:
                    self.bus.unsubscribe(self._fwd)
                    self._fwd = None
                self.remote_wants = tuple(msg[1])
                if ts:
                    from .bus import EventSubscription

                    self._fwd = self.bus.subscribe(EventSubscription("link:%s" % self.remote, ts, self._forward))
            elif self.control is not None and not REQ <= k <= SUBS:
                self.control(msg)
            else:
                raise wire.WireError("message")
        except wire.WireError as e:
            self._count(_MALFORMED, "message", e)
        except MemoryError as e:  # this message is lost (counted); the peer goes on
            self._count(_MEMORY_ERRORS, "message", e)

    def _respond(self, cid, response):
        msg = [RESP, cid, wire.response_to_obj(response)]
        if cid in self._cache:
            self._cache[cid] = msg  # (encoded again only for a repeated request)
        if self._post(msg):
            self._count(_RESPONSES_OUT)
            if self.flush_answers:
                self.flush()

    # -- events --------------------------------------------------------------------------------

    def _forward(self, event):
        # our bus's events on the topics the other node wants
        if not self._inbound and self._post([EVT, wire.event_to_obj(event)], True):  # never echoed back
            self._count(_EVENTS_OUT)

    # -- the transport's session events -----------------------------------------------------

    def connected(self, remote, max_out=0):
        """The transport reached node `remote` (a new session): announce our topics."""
        self.remote = remote
        self.max_out = max_out
        self._cache = {}
        self._order = []
        self._post([SUBS, list(self.wanted)])

    def disconnected(self, reason):
        """The other node is gone: every pending request fails (Response.Error, or
        remote_out.LinkDown for peer.request), forwarding stops until it announces again."""
        was = self.remote
        self.remote = None
        self.remote_wants = ()
        if self._fwd is not None:
            self.bus.unsubscribe(self._fwd)
            self._fwd = None
        if self._pending:
            from . import remote_out

            remote_out.fail_all(self, was, reason)
        self._out = []
