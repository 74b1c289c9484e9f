# tools/link/vboard.py: a virtual board (tools/vboard) running the firmware with the
# serial link served, for the link's tests, its benchmark and the demo (CPython).
#
# The board's filesystem gets lib/helix_ipc and the firmware as sources, a main.py that
# adds helix_link.serve to the system's services and runs helix_app on asyncio (a status
# line on the console every `report_s` seconds: REPL output between the frames), and a
# test module "probe" (echo, print, sleep, reset, big).
import os

from tools.vboard.spawn import ROOT, VBoard

MAIN = """\
import helix_app, helix_link, linktest_board
helix_app.system.services.append(helix_link.serve)
%s
helix_app.run(report_every_s=%d, modules=helix_app.default_modules(helix_app.board.profile()) + [linktest_board.Probe()])
"""

PROBE = """\
# linktest_board: a test module for the link (board side).
from helix_ipc import Module, Response


class Probe(Module):
    name = "probe"
    topics = []

    def handle_request(self, request):
        t = request.request_type
        if t == "echo":
            return Response.Success(request.payload)
        if t == "print":  # REPL output on the link's own line, between frames
            for i in range(int(request.payload or b"1")):
                print("probe: some text on the console", i, "~not a frame")
            return Response.ok()
        if t == "sleep":  # a handler that blocks the board for a while
            import time
            time.sleep_ms(int(request.payload))
            return Response.ok()
        if t == "reset":  # the board resets before it answers
            import machine
            machine.reset()
        if t == "big":
            return Response.Success(b"x" * int(request.payload))
        return Response.NOT_SUPPORTED
"""


def board_files(report_s=1, extra=""):
    """{board path: text}: the library and firmware sources, main.py (`extra`: lines it
    runs before helix_app.run()), the probe module."""
    files = {}
    lib = os.path.join(ROOT, "lib", "helix_ipc")
    for f in sorted(os.listdir(lib)):
        if f.endswith(".py"):
            files["lib/helix_ipc/" + f] = open(os.path.join(lib, f)).read()
    for f in ("helix_app.py", "helix_examples.py", "hx.py", "helix_link.py"):
        files[f] = open(os.path.join(ROOT, "firmware", f)).read()
    files["main.py"] = MAIN % (extra, report_s)
    files["linktest_board.py"] = PROBE
    return files


class Board(VBoard):
    """A virtual board in a temporary home with those files (default board_files(report_s)):
    `port`, `fs`, close() (tools/vboard/spawn.py)."""

    def __init__(self, files=None, report_s=1, timeout_s=30):
        VBoard.__init__(self, files or board_files(report_s), timeout_s=timeout_s, prefix="helix-link-")
