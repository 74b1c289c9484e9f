# helix_ipc.link: a session between two nodes over one byte stream (a serial line, a
# pty, a socket): a remote.Peer that also reads and writes the frames. Sans-I/O: the
# owner writes what `write(bytes)` is given onto the stream, calls `feed(data)` with
# what it read, and `tick()` every few tens of ms (and after the wake() it passed in).
# The platform loops live elsewhere: firmware/helix_link.py (a board's REPL line or a
# machine.UART), tools/link (pyserial).
#
# Frames are wire.frame()s: feed() finds them in the stream and skips (counts in
# `noise`) bytes that are not frames (a REPL's output); a frame cut by a new "~" (bytes
# were lost), not base64, shorter than its CRC, failing it, or longer than max_frame
# payload bytes is dropped and counted (bad_frames, crc_errors, oversize); reading
# resyncs at the next "~". Session messages, besides the Peer's:
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
# A board imports this module, remote and wire to serve a link (kept small: see
# docs/link.md, "What it costs"); the host adds remote_out.
#
# Contexts: task context, one event loop. Nothing received is evaluated.

from . import wire
from ._compat import const, ticks_diff, ticks_ms
from .remote import Peer

VERSION = const(2)  # 2: JSON values, hex CRC frames (1 was CBOR in base64)
HELLO = const(0)
PING = const(5)
PONG = const(6)
BYE = const(7)
_MASK = const((1 << 29) - 1)

# indices into counts after remote.NAMES (20 of them): Link.more (test_link and
# test_wire check the stats they name)
_FRAMES_IN = const(20)
_FRAMES_OUT = const(21)
_BYTES_IN = const(22)
_BYTES_OUT = const(23)
_CRC_ERRORS = const(24)
_BAD_FRAMES = const(25)
_OVERSIZE = const(26)
_NOISE = const(27)
_UPS = const(28)
_RTT = const(29)  # rtt_ms, rtt_min, rtt_max: the last, least and largest round trip (None: none yet)
_SEND_ERRORS = const(4)
_MEMORY_ERRORS = const(15)


class Link(Peer):
    """Link(router, bus, write, name, active=True, prefix="", max_frame=512,
    out_capacity=16, keepalive_ms=1000, dead_ms=3500, hello_ms=500, timeout_ms=10000,
    modules=None, wake=None).

    The remote.Peer of the other node (requests, proxies, subscriptions; `peer` is the
    Link itself); `state` is "down", "up" or "mismatch"; `error` the last cause of going
    down (a str, or None); `remote_modules` the module names the other node announced.
    `modules`: a callable returning this node's module names for HELLO (None: none)."""

    more = " frames_in frames_out bytes_in bytes_out crc_errors bad_frames oversize noise ups rtt_ms rtt_min rtt_max"

    def __init__(self, router, bus, write, name, active=True, prefix="", max_frame=512, out_capacity=16,
                 keepalive_ms=1000, dead_ms=3500, hello_ms=500, timeout_ms=10000, modules=None, wake=None):
        Peer.__init__(self, router, bus, self._frame, name, prefix, out_capacity, timeout_ms, wake)
        self.peer = self
        self.control = self._control
        self.write = write
        self.active = active
        self.max_frame = max_frame
        self.keepalive_ms = keepalive_ms
        self.dead_ms = dead_ms
        self.hello_ms = hello_ms
        self.modules = modules
        self.counts[_RTT:] = [None, None, None]
        self._limit = max_frame + 5  # payload, 4 hex digits of CRC and a "\r"
        self._buf = bytearray()
        self._in = False  # inside a frame
        self.session = (ticks_diff(ticks_ms(), 0) * 40503 + id(self)) & _MASK
        self.remote_session = None
        self.remote_modules = []
        self.state = "down"
        self.error = None
        self.on_state = None  # callable(link) after each change of state
        self._rx = self._ping = self.ticked = ticks_ms()  # last good frame, ping, tick()
        self._hello = None  # last HELLO sent (None: never)

    # -- the stream -------------------------------------------------------------------------

    def _frame(self, payload):
        # the Peer's send: one message as a frame onto the stream
        b = wire.frame(payload)
        self.write(b)
        c = self.counts
        c[_FRAMES_OUT] = (c[_FRAMES_OUT] + 1) & _MASK
        c[_BYTES_OUT] = (c[_BYTES_OUT] + len(b)) & _MASK

    def _say(self, msg):
        # a session message: straight out, not through the peer's queue
        try:
            self._frame(wire.encode(msg))
        except OSError as e:
            self._count(_SEND_ERRORS, "send", e)

    def feed(self, data):
        """Bytes read from the stream: each good frame's message is handled now."""
        c = self.counts
        c[_BYTES_IN] = (c[_BYTES_IN] + len(data)) & _MASK
        buf = self._buf
        i = 0
        n = len(data)
        try:
            while i < n:
                if not self._in:
                    j = data.find(b"~", i)
                    if j < 0:
                        j = n
                    c[_NOISE] = (c[_NOISE] + j - i) & _MASK
                    i = j + 1
                    self._in = j < n
                    buf[:] = b""
                    continue
                j = data.find(b"\n", i)
                k = data.find(b"~", i)
                if k >= 0 and (j < 0 or k < j):  # a new frame starts: this one was cut short
                    self._count(_BAD_FRAMES)
                    i = k + 1
                    buf[:] = b""
                    continue
                end = n if j < 0 else j
                if len(buf) + end - i > self._limit:
                    self._count(_OVERSIZE)
                    self._in = False
                    i = end
                    continue
                buf.extend(data[i:end])
                if j < 0:
                    break
                i = j + 1
                self._in = False
                if buf and buf[-1] == 13:  # "\r" from a board's cooked output ("\n" -> "\r\n")
                    buf[-1:] = b""
                if len(buf) < 5:  # a payload and 4 hex digits of CRC at least
                    self._count(_BAD_FRAMES)
                elif len(buf) >= self._limit:  # (the limit had room for the "\r")
                    self._count(_OVERSIZE)
                elif b"%04x" % wire.crc16(memoryview(buf)[:-4]) != buf[-4:]:
                    self._count(_CRC_ERRORS)
                else:
                    self._count(_FRAMES_IN)
                    self._rx = ticks_ms()
                    self.receive(bytes(buf[:-4]))
        except MemoryError as e:  # these bytes are lost (counted); reading resyncs at the next "~"
            self._in = False
            self._count(_MEMORY_ERRORS, "frame", e)

    def hello(self, reply=0):
        """Say HELLO now (a passive side calls it once when it starts)."""
        self._hello = ticks_ms()
        self._say([HELLO, VERSION, self.name, self.session, self.max_frame, reply,
                   list(self.modules()) if self.modules is not None else []])

    def tick(self):
        """Keepalive, dead-peer detection and reconnection, then the peer's service()."""
        now = self.ticked = ticks_ms()
        if self.state == "up":
            if ticks_diff(now, self._rx) >= self.dead_ms:
                self._down("no answer from %s for %d ms" % (self.remote, self.dead_ms))
            elif ticks_diff(now, self._ping) >= self.keepalive_ms * (1 if self.active else 5):
                self._ping = now
                self._say([PING, now])
        if self.state == "down" and self.active and (
                self._hello is None or ticks_diff(now, self._hello) >= self.hello_ms):
            self.hello()
        self.service()

    def close(self, reason="closed"):
        """Say BYE and go down (pending requests fail with `reason`)."""
        if self.state == "up":
            self._say([BYE])
        self._down(reason)
        self.active = False

    # -- session messages -----------------------------------------------------------------------

    def _control(self, msg):
        k = msg[0]
        n = len(msg)
        if k == HELLO and n == 7:
            _, version, name, session, max_frame, reply, mods = msg
            if type(version) is not int or not isinstance(name, str):
                raise wire.WireError("HELLO")
            if version != VERSION:
                self.error = "version mismatch: %r speaks link version %r, %s speaks %d" % (
                    name, version, self.name, VERSION)
                if not reply:
                    self.hello(1)
                if self.state == "up":
                    self.disconnected(self.error)
                self.state = "mismatch"
                if self.on_state is not None:
                    self.on_state(self)
                return
            if type(session) is not int or type(max_frame) is not int or not isinstance(mods, list):
                raise wire.WireError("HELLO")
            for m in mods:  # module names
                if not isinstance(m, str):
                    raise wire.WireError("HELLO")
            if self.state == "up" and session != self.remote_session:
                self._down(name + " restarted")
            if not reply:
                self.hello(1)
            if self.state != "up":
                self.remote_session = session
                self.remote_modules = mods
                self._rx = self._ping = ticks_ms()
                self._count(_UPS)
                self.error = None
                self.state = "up"
                if self.on_state is not None:
                    self.on_state(self)
                self.connected(name, max_frame)
        elif k == PING and n == 2 and type(msg[1]) is int:
            self._say([PONG, msg[1]])
        elif k == PONG and n == 2 and type(msg[1]) is int:
            r = ticks_diff(ticks_ms(), msg[1])
            c = self.counts
            c[_RTT] = r
            c[_RTT + 1] = r if c[_RTT + 1] is None else min(r, c[_RTT + 1])
            c[_RTT + 2] = r if c[_RTT + 2] is None else max(r, c[_RTT + 2])
        elif k == BYE:
            self._down("%s left" % self.remote)
        else:
            raise wire.WireError("message")

    def _down(self, reason):
        if self.state == "up":
            self.error = reason
            self.state = "down"
            if self.on_state is not None:
                self.on_state(self)
            self.disconnected(reason)
        if self.active:
            self._hello = None

    # -- stats ------------------------------------------------------------------------------------

    def stats(self):
        """The link's counters (frames, bytes, errors, noise, RTT) and the peer's, as a new dict."""
        d = Peer.stats(self)
        d["state"] = self.state
        return d

