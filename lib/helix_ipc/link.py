# helix_ipc.link: a session between two nodes over one byte stream (a serial line, a
# pty, a socket), on top of remote.Peer. Sans-I/O: the owner writes what `write(bytes)`
# is given onto the stream, calls `feed(data)` with what it read, and `tick()` every few
# tens of ms (and after the wake() it passed in). The platform loops live elsewhere:
# firmware/helix_link.py (a board's REPL line or a machine.UART), tools/link (pyserial).
#
# Frames are wire.frame()s, so bytes that are not frames (a REPL's output) are skipped
# and counted. Session messages, besides the Peer's:
#   [HELLO=0, VERSION, name, session, max_frame, reply, modules]
#   [PING=5, t]  [PONG=6, t]  [BYE=7]
# An active side (the host) says HELLO every hello_ms until answered; a passive side (a
# board) says it once when it starts (so a host sees a reset: a new session id) and
# answers each HELLO. A VERSION other than ours stops the session (state "mismatch",
# `error` says both versions). Up: the active side pings every keepalive_ms (the passive
# one every 5 keepalive_ms, so that it knows the round-trip time too); either
# side with no good frame for dead_ms goes down: pending requests fail, event
# forwarding stops (a board stops writing frames onto its REPL line) and the active side
# says HELLO again until the other answers (reconnect). A HELLO with a session id other
# than the one seen last means the other node restarted: down, then up again.
#
# Contexts: task context, one event loop. Nothing received is evaluated.

from . import wire
from ._compat import const, ticks_diff, ticks_ms
from .remote import Peer

VERSION = const(1)
HELLO = const(0)
PING = const(5)
PONG = const(6)
BYE = const(7)
_MASK = const((1 << 29) - 1)


class Link:
    """Link(router, bus, write, name, active=True, prefix="", max_frame=512,
    out_capacity=16, keepalive_ms=1000, dead_ms=3500, hello_ms=500, timeout_ms=10000,
    modules=None, wake=None).

    `peer` is the remote.Peer (requests, proxies, subscriptions); `state` is "down",
    "up" or "mismatch"; `error` the last cause of going down (a str, or None);
    `remote_modules` the module names the other node announced. `modules`: a callable
    returning this node's module names for HELLO (None: none announced)."""

    def __init__(self, router, bus, write, name, active=True, prefix="", max_frame=512, out_capacity=16,
                 keepalive_ms=1000, dead_ms=3500, hello_ms=500, timeout_ms=10000, modules=None, wake=None):
        self.write = write
        self.name = name
        self.active = active
        self.max_frame = max_frame
        self.keepalive_ms = keepalive_ms
        self.dead_ms = dead_ms
        self.hello_ms = hello_ms
        self.modules = modules
        self.deframer = wire.Deframer(max_frame)
        self.peer = Peer(router, bus, self._send, name, prefix, out_capacity, timeout_ms, wake)
        self.peer.control = self._control
        self.session = (ticks_diff(ticks_ms(), 0) * 40503 + id(self)) & _MASK
        self.remote_session = None
        self.remote_modules = []
        self.state = "down"
        self.error = None
        self.on_state = None  # callable(link) after each change of state
        now = ticks_ms()
        self._rx = now  # last good frame
        self._hello = None  # last HELLO sent (None: never)
        self._ping = now
        self.ticked = now  # the last tick(): a served link ticks every few tens of ms
        self.frames_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.ups = 0
        self.rtt_ms = None
        self.rtt_min = None
        self.rtt_max = None

    # -- the stream -------------------------------------------------------------------------

    def _send(self, payload):
        b = wire.frame(payload)
        self.write(b)
        self.frames_out = (self.frames_out + 1) & _MASK
        self.bytes_out = (self.bytes_out + len(b)) & _MASK

    def _say(self, msg):
        # a session message: straight out, not through the peer's queue
        try:
            self._send(wire.encode(msg))
        except OSError as e:
            self.peer._count("send_errors", "send", e)

    def feed(self, data):
        """Bytes read from the stream."""
        self.bytes_in = (self.bytes_in + len(data)) & _MASK
        try:
            frames = self.deframer.feed(data)
        except MemoryError as e:  # these bytes are lost (counted); reading resyncs at the next "~"
            self.deframer._in = False
            self.peer._count("memory_errors", "frame", e)
            return
        for p in frames:
            self._rx = ticks_ms()
            self.peer.receive(p)

    def hello(self, reply=0):
        """Say HELLO now (a passive side calls it once when it starts)."""
        mods = self.modules() if self.modules is not None else []
        self._hello = ticks_ms()
        self._say([HELLO, VERSION, self.name, self.session, self.max_frame, reply, list(mods)])

    def tick(self):
        """Keepalive, dead-peer detection and reconnection, then the peer's service()."""
        now = self.ticked = ticks_ms()
        if self.state == "up":
            if ticks_diff(now, self._rx) >= self.dead_ms:
                self._down("no answer from %s for %d ms" % (self.peer.remote, self.dead_ms))
            elif ticks_diff(now, self._ping) >= (self.keepalive_ms if self.active else 5 * self.keepalive_ms):
                self._ping = now
                self._say([PING, now])
        if self.state == "down" and self.active and (
                self._hello is None or ticks_diff(now, self._hello) >= self.hello_ms):
            self.hello()
        self.peer.service()

    def close(self, reason="closed"):
        """Say BYE and go down (pending requests fail with `reason`)."""
        if self.state == "up":
            self._say([BYE])
        self._down(reason)
        self.active = False

    # -- session messages -----------------------------------------------------------------------

    def _control(self, msg):
        k = msg[0]
        if k == HELLO and len(msg) == 7:
            self._on_hello(msg)
        elif k == PING and len(msg) == 2:
            self._say([PONG, msg[1]])
        elif k == PONG and len(msg) == 2 and type(msg[1]) is int:
            r = ticks_diff(ticks_ms(), msg[1])
            self.rtt_ms = r
            self.rtt_min = r if self.rtt_min is None else min(r, self.rtt_min)
            self.rtt_max = r if self.rtt_max is None else max(r, self.rtt_max)
        elif k == BYE:
            self._down("%s left" % self.peer.remote)
        else:
            raise wire.WireError("unknown message kind %r or bad fields" % (k,))

    def _on_hello(self, msg):
        _, version, name, session, max_frame, reply, mods = msg
        if version != VERSION:
            self.error = "version mismatch: %r speaks link version %r, %s speaks %d" % (name, version, self.name,
                                                                                          VERSION)
            if not reply:
                self.hello(1)
            if self.state == "up":
                self.peer.disconnected(self.error)
            self._set("mismatch")
            return
        if not isinstance(name, str) or type(session) is not int or type(max_frame) is not int or \
                not isinstance(mods, list):
            raise wire.WireError("bad HELLO")
        if self.state == "up" and session != self.remote_session:
            self._down("%s restarted" % name)
        if not reply:
            self.hello(1)
        if self.state != "up":
            self.remote_session = session
            self.remote_modules = [m for m in mods if isinstance(m, str)]
            self._rx = self._ping = ticks_ms()
            self.ups += 1
            self.error = None
            self._set("up")
            self.peer.connected(name, max_frame)

    def _down(self, reason):
        if self.state == "up":
            self.error = reason
            self._set("down")
            self.peer.disconnected(reason)
        self._hello = None if self.active else self._hello

    def _set(self, state):
        self.state = state
        if self.on_state is not None:
            self.on_state(self)

    # -- stats ------------------------------------------------------------------------------------

    def stats(self):
        """The link's counters (frames, bytes, errors, noise, RTT) and the peer's, as a dict."""
        d = self.peer.stats()
        f = self.deframer
        d["state"] = self.state
        d["remote"] = self.peer.remote
        d["frames_in"] = f.frames
        d["frames_out"] = self.frames_out
        d["bytes_in"] = self.bytes_in
        d["bytes_out"] = self.bytes_out
        d["crc_errors"] = f.crc_errors
        d["bad_frames"] = f.malformed
        d["oversize"] = f.oversize
        d["noise"] = f.noise
        d["ups"] = self.ups
        d["rtt_ms"] = self.rtt_ms
        d["rtt_min"] = self.rtt_min
        d["rtt_max"] = self.rtt_max
        return d

    def status_line(self):
        """One line: state, frames, errors, drops, RTT."""
        s = self.stats()
        return ("link %s: %s%s | frames in %d out %d | errors crc %d bad %d oversize %d malformed %d | drops out %d"
                " events %d | requests out %d in %d timeouts %d late %d | rtt %s ms (min %s max %s) | noise %d B" % (
                    self.name, s["state"], " to %s" % s["remote"] if s["remote"] else
                    (" (%s)" % self.error if self.error else ""), s["frames_in"], s["frames_out"], s["crc_errors"],
                    s["bad_frames"], s["oversize"], s["malformed"], s["out_dropped"], s["events_dropped"],
                    s["requests_out"], s["requests_in"], s["timeouts"], s["late_responses"], s["rtt_ms"],
                    s["rtt_min"], s["rtt_max"], s["noise"]))
