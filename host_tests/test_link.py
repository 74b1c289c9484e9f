# Tests for helix_ipc.link: two Links over an in-memory byte stream, on every interpreter:
# handshake naming both nodes, versions, REPL text between frames, corrupted and lost
# bytes, keepalive and RTT, a restart (new session), the host leaving, reconnection.
from support import raises  # noqa: F401

from helix_ipc import Event, EventBus, EventSubscription, EventTopic, MessageRouter, Request, Response
from helix_ipc import link as hlink
from helix_ipc import wire


class Line:
    """host <-> board over two byte queues; `mangle(data) -> data` may corrupt what the
    host sends (to_board) or the board sends (to_host)."""

    def __init__(self, **kw):
        self.hr, self.hb, self.br, self.bb = MessageRouter(), EventBus(), MessageRouter(), EventBus()
        self.a, self.b = bytearray(), bytearray()  # to board, to host
        self.to_board = None
        self.to_host = None
        self.br.register(1, "stats", lambda r: Response.Success(b"ok:" + r.payload))
        self.board = self.new_board(**kw)
        self.host = hlink.Link(self.hr, self.hb, self._wa, "host", True, "pico/", max_frame=4096, **kw)

    def new_board(self, **kw):
        return hlink.Link(self.br, self.bb, self._wb, "pico", False, modules=lambda: ["stats"], **kw)

    def _wa(self, data):
        self.a += self.to_board(data) if self.to_board else data

    def _wb(self, data):
        self.b += self.to_host(data) if self.to_host else data

    def step(self, n=10):
        for _ in range(n):
            self.host.tick()
            self.board.tick()
            self.br.process_mailbox(1, 10)
            if self.a:
                d = bytes(self.a)
                self.a[:] = b""
                self.board.feed(d)
            if self.b:
                d = bytes(self.b)
                self.b[:] = b""
                self.host.feed(d)


def test_handshake_names_both_nodes_and_modules():
    ln = Line()
    ln.board.hello()  # the board announces itself once at start (the host is not reading yet)
    ln.b[:] = b""
    ln.step()
    assert ln.host.state == "up" and ln.board.state == "up"
    assert ln.host.peer.remote == "pico" and ln.board.peer.remote == "host"
    assert ln.host.remote_modules == ["stats"]
    assert ln.board.remote_modules == []
    s = ln.host.stats()
    assert s["frames_in"] >= 1 and s["frames_out"] >= 1 and s["crc_errors"] == 0 and s["ups"] == 1
    from helix_ipc.link_status import status_line

    assert "link host: up to pico" in status_line(ln.host)


def test_request_over_the_link_and_rtt():
    import time

    ln = Line(keepalive_ms=10)
    ln.step()
    got = []
    ln.host.peer.queue("stats", Request("h", "get", b"1"), got.append)
    ln.step()
    assert got == [Response.Success(b"ok:1")]
    time.sleep(0.02)
    ln.step()
    assert ln.host.rtt_ms is not None and ln.host.rtt_ms >= 0 and ln.host.rtt_max >= ln.host.rtt_min
    time.sleep(0.04)  # the board pings too, every 5 keepalives
    ln.step()
    assert ln.board.rtt_ms is not None and ln.board.rtt_ms >= 0


def test_version_mismatch_stops_with_a_clear_error():
    ln = Line()
    orig = hlink.VERSION
    other = orig + 1
    # the board speaks another version: a HELLO of its own, built by hand
    ln.board.hello = lambda reply=0: ln.board._say([hlink.HELLO, other, "pico", 5, 512, reply, []])
    ln.step()
    assert ln.host.state == "mismatch"
    assert "version mismatch" in ln.host.error and str(other) in ln.host.error and str(orig) in ln.host.error
    assert ln.host.peer.remote is None


def test_repl_text_between_frames_and_corrupted_bytes():
    import random

    random.seed(5)
    ln = Line()
    noise = [b">>> print('hello')\r\nhello\r\n", b"Traceback (most recent call last):\r\n", b"~~~\r\n", b"\r\n"]
    count = [0]

    def dirty(data):
        count[0] += 1
        out = bytearray(random.choice(noise) + data + random.choice(noise))
        if count[0] % 4 == 0:  # corrupt one byte of every fourth write
            i = random.getrandbits(8) % len(out)
            out[i] = (out[i] + 1 + random.getrandbits(6)) & 0x7F
        return bytes(out)

    ln.to_host = dirty
    ln.to_board = dirty
    ln.step(30)
    assert ln.host.state == "up"
    got = []
    for i in range(40):
        ln.host.peer.queue("stats", Request("h", "get", b"%d" % i), got.append, timeout_ms=0)
        ln.step(2)
    ln.step(20)
    ok = [r for r in got if r.is_success]
    s = ln.host.stats()
    b = ln.board.stats()
    assert s["noise"] > 0 and b["noise"] > 0
    lost = s["crc_errors"] + s["bad_frames"] + b["crc_errors"] + b["bad_frames"]
    assert lost > 0  # corruption was seen and counted, not delivered
    assert len(ok) >= 20  # most got through; none was answered wrongly
    for r in ok:
        assert r.data.startswith(b"ok:")
    assert len(got) == len(ok)  # the rest are still pending (no deadline): nothing invented


def test_board_restart_fails_pending_and_reconnects():
    ln = Line()
    ln.step()
    got = []
    ln.host.peer.queue("stats", Request("h", "get"), got.append)
    ln.host.tick()  # sent; the board restarts before reading it
    ln.a[:] = b""
    ln.board = ln.new_board()
    ln.board.hello()  # a fresh board says HELLO with a new session
    ln.step()
    assert len(got) == 1 and isinstance(got[0], Response.Error) and "restarted" in got[0].message
    assert ln.host.state == "up" and ln.host.ups == 2
    ln.host.peer.queue("stats", Request("h", "get", b"2"), got.append)
    ln.step()
    assert got[-1] == Response.Success(b"ok:2")


def test_silence_takes_the_link_down_and_hello_reconnects():
    import time

    ln = Line(dead_ms=30, keepalive_ms=5, hello_ms=5)
    ln.step()
    assert ln.host.state == "up"
    got = []
    ln.host.peer.queue("stats", Request("h", "get"), got.append, timeout_ms=0)
    ln.host.tick()
    ln.a[:] = b""
    time.sleep(0.05)  # the board's answers are lost: nothing arrives
    ln.host.tick()
    assert ln.host.state == "down" and "no answer" in ln.host.error
    assert "no answer" in got[0].message
    ln.board.tick()
    assert ln.board.state == "down"  # the board saw nothing from the host either
    ln.step()
    assert ln.host.state == "up" and ln.board.state == "up"


def test_host_leaving_stops_the_board_streaming():
    ln = Line()
    ln.step()
    ln.host.peer.subscribe([EventTopic.TICK])
    ln.step()
    seen = []
    ln.hb.subscribe(EventSubscription("h", [EventTopic.TICK], seen.append))
    ln.bb.publish(Event.Tick(1, 1))
    ln.step()
    assert seen == [Event.Tick(1, 1)]
    ln.host.close("bye")
    ln.step()
    assert ln.board.state == "down" and "left" in ln.board.error
    before = ln.board.frames_out
    ln.bb.publish(Event.Tick(2, 2))
    ln.step()
    assert ln.board.frames_out == before and not ln.b  # nothing written onto the line any more


def test_garbage_and_bad_session_messages_are_counted():
    ln = Line()
    ln.step()
    for msg in ([hlink.HELLO, 1], [hlink.PONG, "x"], [hlink.HELLO, hlink.VERSION, 5, 1, 1, 0, []], [42]):
        ln.board.feed(wire.frame(wire.encode(msg)))
    assert ln.board.peer.malformed == 4
    assert ln.board.state == "up"


def test_deep_nesting_in_session_messages_is_malformed_not_a_crash():
    # json.loads builds deep nesting iteratively on MicroPython; echoing it (PING) or
    # formatting it (a HELLO's name in the mismatch text) would recurse past the C stack
    # (RuntimeError out of feed on MicroPython, the board's reader task gone)
    ln = Line()
    ln.board = ln.new_board(max_frame=4096)  # frames that large are fine for it
    ln.step()
    assert ln.board.state == "up"
    deep = b"[" * 1500 + b"]" * 1500
    for payload in (b"[5, " + deep + b"]", b"[0, 99, " + deep + b", 1, 512, 0, []]",
                    b"[0, " + deep + b", \"x\", 1, 512, 0, []]"):
        ln.board.feed(wire.frame(payload))
    assert ln.board.peer.malformed == 3 and ln.board.state == "up"
    got = []
    ln.host.peer.queue("stats", Request("h", "get", b"1"), got.append)
    ln.step()
    assert got == [Response.Success(b"ok:1")]


def test_fuzz_board_side_feed_never_raises_or_runs_anything():
    # random bytes, random JSON-ish text and random bytes framed with good CRCs, and
    # message-shaped values into a board Link: only counters move; the one registered
    # module sees only well-formed requests, nothing named by the data gets imported
    import random
    import sys

    random.seed(21)
    ln = Line()
    seen = []
    ln.br.register(2, "probe", lambda r: seen.append(r.request_type) or Response.ok())
    ln.step()
    rb = random.getrandbits
    names = ["probe", "stats", "__import__('os')", "exec", "os", "helix_ipc.remote_out", "eval(1)", "~"]
    tokens = ["[", "]", ",", "1", "-7", "0", "2", "3", '"', '"probe"', '"get"', '"os"', '"AA=="', '"~"', "true",
              "null", "1.5", "{", "}", ":", " ", "\\", "\\u007e", "[1,", "[2,", "[3,", "[4,", "[0,"]

    def val(d=0):
        k = rb(3)
        if k == 0:
            return rb(16) - 30000
        if k == 1:
            return wire.b64(bytes(rb(8) for _ in range(rb(3))))
        if k == 2:
            return names[rb(3)]
        if k == 3 and d < 3:
            return [val(d + 1) for _ in range(rb(2) + 1)]
        if k == 4:
            return "".join(chr(32 + rb(7) % 95) for _ in range(rb(3)))
        return [None, True, False, rb(3)][rb(2)]

    before = set(sys.modules)
    for i in range(800):
        k = rb(3)
        if k == 0:  # raw bytes, no frame
            data = bytes(rb(8) for _ in range(rb(6)))
        elif k == 1:  # a message-shaped value: a known kind or not, random fields
            data = wire.frame(wire.encode([rb(3)] + [val() for _ in range(rb(3))]))
        elif k == 2:  # random bytes with a good CRC
            data = wire.frame(bytes(rb(8) for _ in range(rb(5))))
        elif k == 3:  # random JSON-ish text with a good CRC
            data = wire.frame("".join(tokens[rb(5) % len(tokens)] for _ in range(1 + rb(3))).encode())
        elif k == 4:  # deep nesting (CPython: its recursion limit; MicroPython: built)
            n = 1 + rb(9)
            data = wire.frame(b"[" * n + (b"]" * n if rb(1) else b""))
        elif k == 5:  # a well-formed request whose fields are random
            data = wire.frame(wire.encode([1, rb(4), names[rb(3)], [val(), val(), val()]]))
        else:
            data = wire.frame(wire.encode(val()))
        ln.board.feed(data + b"\n")
        ln.board.tick()
    # nothing imported by name (CPython's json.loads(bytes) detects UTF-16/32 by the NULs
    # and loads that codec: the stdlib's own doing, not a name from the data)
    new = [m for m in set(sys.modules) - before if not m.startswith("encodings.")]
    assert new == [], new
    ln.br.process_mailbox(2, 1000)
    for t in seen:
        assert isinstance(t, str) and t  # only requests the codec accepted reached the module
    s = ln.board.stats()
    assert s["malformed"] + s["bad_frames"] + s["crc_errors"] > 300, s
    ln.step()
    got = []
    ln.host.peer.queue("stats", Request("h", "get", b"z"), got.append)
    ln.step()
    assert got == [Response.Success(b"ok:z")]  # still serving


def test_memory_error_while_receiving_is_counted_and_the_link_goes_on():
    from support import need_heap_lock

    micropython = need_heap_lock()
    ln = Line()
    ln.step()
    data = wire.frame(wire.encode([1, 5, "stats", ["get", "", 1]]))
    board = ln.board
    for piece in (data, data[:10]):  # a whole frame (decoding fails), a part (buffering fails)
        micropython.heap_lock()
        try:
            board.feed(piece)
        finally:
            micropython.heap_unlock()
    assert ln.board.peer.memory_errors == 2
    assert ln.board.state == "up"
    got = []
    ln.host.peer.queue("stats", Request("h", "get", b"m"), got.append)
    ln.step()
    assert got == [Response.Success(b"ok:m")]


def _board_only_answers():
    # A board's session driven by raw frames: handshake, a request answered, the host's
    # subscription (our ticks go out), an event from the host, ping, BYE. Returns which
    # of remote_out and link_status got loaded, what it wrote, received, and its stats.
    import sys

    br, bb = MessageRouter(), EventBus()
    br.register(1, "stats", lambda r: Response.Success(b"ok:" + r.payload))
    got = []
    bb.subscribe(EventSubscription("t", [EventTopic.Custom("h")], got.append))
    out = []
    board = hlink.Link(br, bb, out.append, "pico", False)
    board.wanted.add("h")  # (what peer.subscribe does, without its remote_out)

    def say(msg):
        board.feed(wire.frame(wire.encode(msg)))

    say([hlink.HELLO, hlink.VERSION, "host", 7, 4096, 0, []])
    say([1, 11, "stats", ["get", wire.b64(b"x"), 1]])
    br.process_mailbox(1, 10)
    say([4, [0]])  # SUBS: the host wants ticks
    bb.publish(Event.Tick(5, 5))
    say([3, [7, "h", wire.b64(b"d")]])  # EVT from the host
    say([hlink.PING, 3])
    board.tick()
    say([hlink.BYE])
    from linkfixture import Deframer

    msgs = []
    for p in Deframer().feed(b"".join(out)):
        msgs.append(wire.decode(p))
    loaded = [m for m in ("helix_ipc.remote_out", "helix_ipc.link_status") if m in sys.modules]
    return loaded, msgs, got, board.stats()


def test_a_board_that_only_answers_loads_neither_remote_out_nor_link_status():
    # what docs/link.md's cost is measured on: the board's side never loads the
    # requesting half (remote_out) or the status text (link_status) for serving
    import sys

    if "helix_ipc.remote_out" in sys.modules or "helix_ipc.link_status" in sys.modules:
        # CPython runs every test in one process: run this one in a fresh interpreter
        import subprocess

        here = __file__.rsplit("/", 1)[0]
        code = ("import sys; sys.path[:0] = [%r, %r]; import test_link; r = test_link._board_only_answers(); "
                "print(r[0], len(r[1]), len(r[2]))" % (here, here + "/../lib"))
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == ["[]", "5", "1"], p.stdout
        return
    loaded, msgs, got, s = _board_only_answers()
    assert loaded == [], loaded
    kinds = [m[0] for m in msgs]
    # HELLO reply and PONG go out at once; SUBS (ours), RESP, EVT (the tick) at the tick()
    assert kinds == [hlink.HELLO, hlink.PONG, 4, 2, 3], msgs
    assert msgs[3] == [2, 11, [0, wire.b64(b"ok:x")]] and msgs[4] == [3, [0, 5, 5]]
    assert got == [Event.Custom("h", b"d")]
    assert s["requests_in"] == 1 and s["events_out"] == 1 and s["events_in"] == 1 and s["malformed"] == 0
    assert s["state"] == "down" and s["ups"] == 1
