# linkfixture: a virtual board running the firmware with the serial link, and the host
# side connected to it, for hardware-in-the-loop style tests (CPython only: it drives
# host processes). Plain helpers, no pytest fixture injection (the suite's tests are
# plain functions that also run under MicroPython, where these tests skip):
#
#   from linkfixture import LinkedBoard
#   def test_x():
#       if support.MICROPYTHON: support.skip(linkfixture.E2E)
#       with LinkedBoard() as b:             # board started, link up ("pico/..." proxies)
#           r = b.request("pico/stats", "get_stats")     # through the host router
#           evs = b.events([EventTopic.TICK], 3)         # through the host bus
#           b.router, b.bus, b.link (HostLink), b.stats(), b.board (the vboard), b.call(coro)
#   Deframer(max_frame): the frames in a byte stream, as the link reads them.
#   SecondLine(): a pty for a second line the board serves (it opens `board_path`), the
#   host's end behind a FaultPty (`port`, `fp`); b.connect(line.port, extra=True) -> hl2,
#   then b.request(..., link=hl2) / b.events(..., link=hl2) go over that line.
#
#   LinkedBoard(board_port="/dev/ttyACM0"): the same against a real board running the
#   firmware with the link (no virtual board started; no "probe" module there).
#
# The board (tools/link/vboard.py) gets lib/helix_ipc and the firmware as sources, a
# main.py that adds helix_link.serve to the system's services and runs helix_app
# (asyncio, status lines every REPORT_S on the console: REPL output between the frames),
# and a test module "probe" (echo, print, sleep, reset, big). `connect(port)` lets the
# host connect through another pty (tools/link/faultpty.py) instead of the board's own.
# Module level imports only what MicroPython has too (the tests import this file there
# before they skip).
import sys

if sys.implementation.name == "cpython":
    import os

    _ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if _ROOT not in sys.path:  # tools.link
        sys.path.insert(0, _ROOT)


E2E = "end-to-end: a virtual board and pyserial on the host (CPython subprocess/pty)"
REPORT_S = 1


class LinkedBoard:
    """A virtual board with the link served, and a HostLink to it in a loop thread.
    `connect=False`: start the board only (connect later with connect()); `files`: the
    board's files instead of tools.link.vboard.board_files()."""

    def __init__(self, prefix="pico/", connect=True, port=None, timeout_ms=10000, files=None, board_port=None,
                 **link_kw):
        import asyncio
        import threading

        from tools.link.vboard import Board

        # a real board: board_port (e.g. "/dev/ttyACM0", or $HELIX_LINK_PORT in your own tests)
        self.board = Board(files, report_s=REPORT_S) if board_port is None else None
        self.port = board_port or self.board.port
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.link = None
        self._extra = []
        self.prefix = prefix
        self.link_kw = link_kw
        try:
            if connect:
                self.connect(port, timeout_ms)
        except BaseException:
            self.close()
            raise

    def call(self, coro, timeout_s=30):
        """Run a coroutine in the link's loop; its result (or exception) here."""
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def connect(self, port=None, timeout_ms=10000, extra=False, **kw):
        """Connect (a HostLink to the board's port, or `port`); `extra=True`: another
        HostLink, returned, that close() closes too (its own router and bus)."""
        from tools.link.host import HostLink

        async def go():
            opts = dict(self.link_kw)
            opts.update(kw)
            hl = HostLink(port or self.port, prefix=self.prefix, **opts)
            await hl.open(timeout_ms)
            return hl

        hl = self.call(go())
        if extra:
            self._extra.append(hl)
            return hl
        self.link = hl
        self.router, self.bus = self.link.router, self.link.bus
        return self.link

    def disconnect(self):
        if self.link is not None:
            self.call(self.link.close())
            self.link = None

    def request(self, to, request_type, payload=b"", timeout_ms=5000, link=None):
        """await router.request(to, ...) on the host router (to: "pico/stats", ...); of
        `link` (another HostLink, from connect(extra=True)) when given."""
        from helix_ipc import Request

        router = self.router if link is None else link.router
        return self.call(router.request(to, Request("test", request_type, payload), timeout_ms))

    def events(self, topics, n, timeout_ms=5000, link=None):
        """The next n events on these topics from the board (through the host bus); over
        `link` (another HostLink) when given."""
        hl = self.link if link is None else link

        async def go():
            out = []
            with hl.stream(topics, 256) as s:
                while len(out) < n:
                    out.append(await s.next(timeout_ms))
            return out

        return self.call(go(), timeout_s=timeout_ms / 1000 * n + 10)

    def stats(self):
        return self.call(_stats(self.link))

    def wait(self, cond, what, timeout_s=15):
        import time

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.call(_eval(cond)):
                return
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what)

    def close(self):
        for hl in self._extra:
            try:
                self.call(hl.close())
            except Exception:  # noqa: S110 - best effort: the board is stopped next anyway
                pass
        try:
            self.disconnect()
        except Exception:  # noqa: S110 - best effort: the board is stopped next anyway
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if self.board is not None:
            self.board.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


async def _stats(link):
    return link.stats()


async def _eval(cond):
    return cond()


def board_path(host_path):
    """host_path as the virtual board's open() reaches it: the board's "/" is its own
    folder (tools/vboard), so "/../../.." gets to the host's /."""
    return "/" + "../" * 24 + host_path.lstrip("/")


class SecondLine:
    """A pty standing for a second line of the board (a UART, a USB CDC interface): the
    board opens `board_path` (one end); the host connects to `port`, a FaultPty (`fp`,
    its counters) in front of the other end. close() (or a with block) closes both."""

    def __init__(self):
        import os
        import tty

        from tools.link.faultpty import FaultPty

        m, self._slave = os.openpty()
        tty.setraw(m)
        tty.setraw(self._slave)
        self.board_path = board_path(os.ttyname(self._slave))
        self.fp = FaultPty(m).start()  # closes m when stopped
        self.port = self.fp.port

    def close(self):
        import os

        self.fp.stop()
        os.close(self._slave)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Deframer:
    """Frames out of a byte stream, as the link reads them: feed(data) -> the payloads
    of the good frames it completed (through helix_ipc.link.Link.feed, its messages
    recorded instead of handled); frames, malformed (bad_frames), crc_errors, oversize,
    noise and errors() from the link's counters. (Runs on MicroPython too.)"""

    def __init__(self, max_frame=512):
        from helix_ipc import EventBus, MessageRouter
        from helix_ipc.link import Link

        self.link = Link(MessageRouter(), EventBus(), None, "t", False, max_frame=max_frame)
        self.got = []
        self.link.receive = self.got.append

    def feed(self, data):
        self.link.feed(data)
        got = self.got[:]
        del self.got[:]
        return got

    def __getattr__(self, name):
        return self.link.stats()[{"malformed": "bad_frames", "frames": "frames_in"}.get(name, name)]

    def errors(self):
        s = self.link.stats()
        return s["bad_frames"] + s["crc_errors"] + s["oversize"]
