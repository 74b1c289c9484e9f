# tools/link/host.py: the host side of the serial link (CPython, pyserial, asyncio).
#
# HostLink opens a board's serial port (exclusively), runs a helix_ipc.link.Link over it
# in the running event loop (loop.add_reader on the port's fd, a ticker task), and gives
# the board's modules and events through the host's own router and bus:
#
#   async with HostLink("/dev/ttyACM0", prefix="pico/") as hl:
#       r = await hl.router.request("pico/stats", Request("host", "get_stats"), timeout_ms=2000)
#       with hl.stream([EventTopic.TICK]) as s:
#           ev = await s.next(timeout_ms=2000)
#
# The board's modules (announced in its HELLO) are registered as proxies under `prefix`
# (e.g. "pico/stats"). A port that goes away (the board unplugged, the virtual board
# stopped) takes the link down and is reopened every reopen_ms; pending requests fail.
# Errors while connecting are LinkError with `code` (exit codes of the CLI) and one line.
import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "lib") not in sys.path:
    sys.path.insert(0, str(ROOT / "lib"))

from helix_ipc import EventBus, MessageRouter  # noqa: E402
from helix_ipc.link import Link  # noqa: E402

E_PORT = 2  # the port is missing or busy
E_NO_ANSWER = 3  # no board answered
E_VERSION = 4  # the board speaks another link version
E_DEADLINE = 5  # no answer within the deadline
E_LOST = 6  # the link went down while waiting


class LinkError(Exception):
    """A one-line cause, and the CLI's exit code for it."""

    def __init__(self, message, code):
        Exception.__init__(self, message)
        self.code = code


class HostLink:
    """HostLink(port, name="host", prefix="", baudrate=115200, router=None, bus=None,
    **link options). `await open(timeout_ms)` / `await close()`, or `async with`."""

    def __init__(self, port, name="host", prefix="", baudrate=115200, router=None, bus=None, reopen_ms=500,
                 **kw):
        self.port = port
        self.baudrate = baudrate
        self.router = router if router is not None else MessageRouter()
        self.bus = bus if bus is not None else EventBus()
        self.reopen_ms = reopen_ms
        self.ser = None
        self._loop = None
        self._task = None
        self._stopping = False
        self._wake = asyncio.Event()
        kw.setdefault("max_frame", 4096)
        self.link = Link(self.router, self.bus, self._write, name, True, prefix, wake=self._wake_threadsafe, **kw)
        self.peer = self.link  # (the Link is the remote.Peer)
        self.link.on_state = self._on_state

    # -- the port ---------------------------------------------------------------------------
    def _open_port(self):
        import serial

        try:
            self.ser = serial.Serial(self.port, self.baudrate, timeout=0, write_timeout=2, exclusive=True)
        except (serial.SerialException, OSError) as e:
            text = str(e)
            if not os.path.exists(self.port):
                raise LinkError("port %s: no such port" % self.port, E_PORT)
            if "lock" in text or "busy" in text.lower() or "Errno 16" in text or "Errno 11" in text:
                raise LinkError("port %s is busy (another program has it open)" % self.port, E_PORT)
            raise LinkError("port %s: %s" % (self.port, text), E_PORT)
        self._loop.add_reader(self.ser.fileno(), self._readable)

    def _close_port(self):
        ser = self.ser
        self.ser = None
        if ser is not None:
            try:
                self._loop.remove_reader(ser.fileno())
            except (OSError, ValueError):
                pass
            try:
                ser.close()
            except OSError:
                pass

    def _readable(self):
        try:
            data = self.ser.read(65536)
        except Exception as e:  # serial.SerialException: the device went away
            self._port_lost(e)
            return
        if data:
            self.link.feed(data)
            self._wake.set()

    def _write(self, data):
        if self.ser is None:
            raise OSError("port %s is closed" % self.port)
        try:
            self.ser.write(data)
        except Exception as e:
            self._port_lost(e)
            raise OSError(str(e))

    def _port_lost(self, e):
        self._close_port()
        self.link._down("port %s lost: %s" % (self.port, e))

    def _wake_threadsafe(self):
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed
            pass

    def _on_state(self, link):
        if link.state == "up" and self.peer.prefix:
            for m in link.remote_modules:
                name = self.peer.prefix + m
                if self.router.get_module_id(name) is None:  # (a proxy stays registered while the link is down)
                    self.peer.proxy(m)
        self._wake.set()

    async def _run(self):
        loop = self._loop
        last_open = loop.time()
        while not self._stopping:  # (a cancel can be lost in 3.11's wait_for: this flag is not)
            try:
                await asyncio.wait_for(self._wake.wait(), 0.02)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self.ser is None and self.link.active and loop.time() - last_open >= self.reopen_ms / 1000:
                last_open = loop.time()
                try:
                    self._open_port()
                except LinkError:
                    pass
            if self.ser is not None or not self.link.active:
                self.link.tick()

    # -- the session --------------------------------------------------------------------------
    async def open(self, timeout_ms=3000):
        """Open the port and say HELLO until the board answers: LinkError when the port
        is missing or busy, nobody answers within timeout_ms, or the versions differ."""
        self._loop = asyncio.get_running_loop()
        self._open_port()
        self._task = asyncio.create_task(self._run())
        deadline = self._loop.time() + timeout_ms / 1000
        while self.link.state == "down" and self._loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self.link.state == "mismatch":
            err = LinkError(self.link.error, E_VERSION)
        elif self.link.state != "up":
            n = self.link.noise
            err = LinkError("no board answered on %s within %d ms%s" % (
                self.port, timeout_ms, " (it printed %d bytes of other text: is the link served? is main.py running?)"
                % n if n else ""), E_NO_ANSWER)
        else:
            return self
        await self.close()
        raise err

    async def close(self):
        """Say BYE, stop the tasks and close the port."""
        bye = self.link.state == "up" and self.ser is not None
        self.link.close("host closed the link")
        if bye:
            self.peer.flush()
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self._close_port()

    async def __aenter__(self):
        if self._task is None:
            await self.open()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    # -- conveniences --------------------------------------------------------------------------
    async def request(self, module, request, timeout_ms=5000):
        """The board module's Response (its name on the board, e.g. "stats")."""
        return await self.peer.request(module, request, timeout_ms)

    def stream(self, topics, capacity=64):
        """Subscribe to the board's topics; a bus.stream of them on the host bus."""
        return self.peer.stream(topics, capacity)

    def stats(self):
        return self.link.stats()
