# helix_link: the board side of the serial link (helix_ipc.link), as asyncio tasks next
# to the running system: ticks and modules go on while a host uses them.
#
#   asyncio.create_task(helix_link.serve(system))   # in the firmware's async main()
#
# serves the REPL's own line (sys.stdin/sys.stdout) and, when the board profile names
# them, second lines through the same serve_line: a machine.UART (`"link_uart": {...}`,
# helix_link_uart.py) and, with `"link_usb_cdc": True`, a second USB CDC interface (rp2
# and other ports with machine.USBDevice; micropython-lib's usb-device-cdc:
# helix_link_cdc.py) once the host opens it. Each is imported only when asked for.
# Frames are text ("~...\n", see docs/link.md): no byte of one is Ctrl-C, so Ctrl-C still stops main.py
# and gives the REPL back; REPL output and print()s between frames are skipped by the
# host. While no host is connected the board writes nothing onto the line but one HELLO
# when serve() starts. The module "link" it loads answers "status" (hx.status()'s text)
# and "stats" (status_lines()); the text of both is helix_ipc.link_status, loaded when
# first asked for. With micropython-lib's aiorepl running (it reads the REPL line too)
# only the second lines are served.
# Task context (the event loop) only. MicroPython only (the host side is tools/link).
import sys

from helix_ipc import Module
from helix_ipc.link import Link

_links = []  # (line name, Link) being served


def status_lines():
    """One line per served link (state, frames, errors, drops, RTT): for hx.status()."""
    from helix_ipc import link_status

    return link_status.lines(_links)


def _handle(request):
    from helix_ipc import link_status

    return link_status.handle(request, _links)


def LinkModule():
    """The "link" module (a helix_ipc Module): answers "status" and "stats"."""
    m = Module("link", [])
    m.handle_request = _handle
    return m


async def serve(system, name=None):
    """Serve the link on the REPL line, on the profile's link_uart if it names one and on
    a second USB CDC interface if link_usb_cdc is True. Runs until cancelled (or the REPL
    line's input ends)."""
    from helix_ipc import board

    p = board.profile()
    name = name or p["name"]
    if system.host.get("link") is None:
        system.host.load(LinkModule())
    n = 0  # second lines served; each one's module is loaded only when the profile asks
    if p.get("link_uart"):
        from helix_link_uart import start

        n += start(system, name, p["link_uart"]) is not None
    if p.get("link_usb_cdc"):
        from helix_link_cdc import start

        n += start(system, name) is not None
    if "aiorepl" in sys.modules:  # aiorepl reads the REPL line: two readers of one line cannot share it
        print("helix_link: aiorepl has the REPL line; the link is on %d other line(s)" % n)
        return
    await serve_line(system, sys.stdin.buffer, sys.stdout.buffer, name, "repl")


async def serve_line(system, rd, wr, name, line, active=False):
    """Serve one line: rd a pollable stream with readinto(), wr one with write().
    `active=True`: this node says HELLO until the other answers and pings it (the host's
    part: a board driving another board over a UART)."""
    import asyncio
    import select

    flag = asyncio.ThreadSafeFlag()
    link = Link(system.router, system.bus, wr.write, name, active, modules=system.host.loaded, wake=flag.set)
    link.flush_answers = True  # one wake-up less per request (events still go from the ticker)
    entry = (line, link)
    _links.append(entry)
    ticker = asyncio.create_task(_ticker(link, flag))
    reader = asyncio.StreamReader(rd)
    poller = select.poll()
    poller.register(rd, select.POLLIN)
    b1 = bytearray(1)
    buf = bytearray()
    if not active:
        link.hello()  # once: a host that listens learns that this board (re)started
    try:
        while True:
            d = await reader.read(1)
            if not d:
                break  # the line's input ended
            buf[:] = d
            while len(buf) < 256 and _ready(poller) and rd.readinto(b1):
                buf.append(b1[0])
            link.feed(bytes(buf))
            link.tick()
    finally:
        ticker.cancel()
        link.close("stopped")
        _links.remove(entry)


def _ready(poller):
    # a byte waiting? (ipoll makes no list: poll(0) allocated one for every byte read)
    for _ in poller.ipoll(0):
        return True
    return False


async def _ticker(link, flag):
    import asyncio

    while True:
        try:
            await asyncio.wait_for_ms(flag.wait(), 50)
        except asyncio.TimeoutError:
            pass
        link.tick()
