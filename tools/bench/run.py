# tools/bench/run.py: `make bench`. Host-side (CPython) only.
#
#   python tools/bench/run.py [section ...]
#   sections: bench_channels bench_bus bench_router bench_isr bench_objects bench_asyncio
#   (timed rows and object sizes, tools/bench/suite.py), fit (tools/bench/fit.py),
#   footprint (tools/bench/footprint.py), frames (tools/bench/frames.py: bytecode functions
#   whose frame is heap-allocated at every call), mqtt (tools/bench/mqtt_bench.py: events
#   and request round trips through the local mosquitto against bare umqtt clients),
#   romfs (tools/bench/romfs_bench.py: import heap from a ROMFS image vs .mpy files);
#   short names (channels, bus, ...) work too.
#   No section: all of them. `--lib DIR`: measure the helix_ipc package under DIR
#   instead of lib/ (e.g. an older tree, to compare). `--repeats N`: best of N repeats
#   per row instead of 15 (at least 7).
#
# Every MicroPython row runs in two modes of the unix port: "unix" (as it is) and
# "board" (sys.exc_info hidden before helix_ipc is imported, as on rp2/esp32: the
# board-mode stand-in of host_tests/boardmode.py). A goal of shared/BENCH.md is met only
# when both modes meet it; CPython goals are judged on CPython. Prints one table (each
# row, every mode, goal, verdict) and a closing count of met/missed goals, and writes
# everything to build/bench/results.json.
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
MICROPYTHON = str(BIN / "micropython")
SUITE_SECTIONS = ("bench_channels", "bench_bus", "bench_router", "bench_isr", "bench_objects", "bench_asyncio")
OTHER_SECTIONS = ("fit", "footprint", "frames", "mqtt")
MODES = (
    ("cpython", [sys.executable]),
    ("unix", [MICROPYTHON, "-X", "heapsize=16M"]),
    ("board", [MICROPYTHON, "-X", "heapsize=16M"]),
)
MP_MODES = ("unix", "board")
FIT_HEAPS = ("64k", "192k")
KB = 1024

# Goals: row name -> (where: "mp" = both unix-port modes, "cpython"), [(kind, bound, text)].
# kind: "max"/"min" ratio, "zero" bytes per op, "size" bytes, "fit" ratio + atomic.
_ZERO = ("zero", 0, "0 B/op")
GOALS = {
    "channel send+try_recv": ("mp", [("max", 1.5, "<= 1.5x ring floor"), _ZERO]),
    "context: queue.Queue put_nowait+get_nowait": ("cpython", [("min", 2.0, "channel >= 2x faster than Queue")]),
    "publish, 1 subscriber": ("mp", [("max", 2.0, "<= 2x dispatch floor"), _ZERO]),
    "publish, 1 matching among 200": ("mp", [("max", 1.2, "<= 1.2x publish to 1")]),
    "publish, 1 matching among 1000": ("mp", [("max", 1.2, "<= 1.2x publish to 1")]),
    "context: blinker send": ("cpython", [("min", 1.0, "publish faster than blinker")]),
    "publish_from_isr": ("mp", [("max", 2.0, "<= 2x slot floor"), _ZERO]),
    "IRQ post + poll() after each post": ("mp", [("max", 2.0, "<= 2x build+publish")]),
    "IRQ post + scheduled drain": ("mp", [("max", 2.0, "<= 2x build+publish")]),
    "IRQ post -> awaiting task resumes (median)": ("mp", [("max", 3.0, "median <= 3x build+publish (p99 in JSON)")]),
    "EventBus()": ("mp", [("size", 2 * KB, "<= 2 KB heap")]),
    "MessageRouter()": ("mp", [("size", 1 * KB, "<= 1 KB heap")]),
    "ModuleHost(bus, router)": ("mp", [("size", 1 * KB, "<= 1 KB heap")]),
    "import:all": ("mp", [("size", 36 * KB, "<= 36 KB (heap + native code)")]),
    "import:channel": ("mp", [("size", 8 * KB, "<= 8 KB (heap + native code)")]),
    "import:bus": ("mp", [("size", 15 * KB, "<= 15 KB (heap + native code)")]),
    "import:router": ("mp", [("size", 15 * KB, "<= 15 KB (heap + native code)")]),
}
for _form in ("int id", "str name", "ModuleAddress.Id", "ModuleAddress.Name"):
    GOALS["send by " + _form] = ("mp", [("max", 2.0, "<= 2x route floor"), _ZERO])
for _form in ("int id", "str name"):
    for _n in (100, 1000):
        GOALS["send by %s, %d modules" % (_form, _n)] = ("mp", [("max", 1.2, "<= 1.2x with 1 module")])
for _what in ("modules", "subscriptions"):
    for _heap in FIT_HEAPS:
        GOALS["%s before MemoryError, %s heap" % (_what, _heap)] = (
            "mp", [("fit", 0.7, ">= 0.7x registry floor; failed call leaves state as before")])
MPY_GOAL = 20 * KB
# the serial link (tools/bench/link_bench.py): board-side heap from .mpy, RTT over the vboard's pty
OTHER_SECTIONS += ("link",)
GOALS["link board side: import"] = ("mp", [("size", 8 * KB, "<= 8 KB (heap + native code)")])
# ROMFS (tools/bench/romfs_bench.py): import heap from a ROMFS image vs .mpy files, same run;
# the link's goal judged on both ways of deploying the same .mpy files (make deploy / ROMFS=1)
OTHER_SECTIONS += ("romfs",)
GOALS["romfs vs files: link board side: import"] = ("mp", [("size", 8 * KB, "<= 8 KB from a ROMFS image")])


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# -- running the parts ------------------------------------------------------------------

LIB = ROOT / "lib"
REPEATS = []  # ["--repeats", "N"] when asked for
DEFAULT_REPEATS = 15  # timing.REPEATS


def run_suite(mode, cmd, sections):
    args = (cmd + [str(HERE / "suite.py"), "--lib", str(LIB)] + REPEATS
            + (["--board"] if mode == "board" else []) + sections)
    t0 = time.time()
    load0 = os.getloadavg()[0]
    proc = subprocess.run(args, cwd=str(ROOT), capture_output=True, text=True, timeout=900)
    load1 = os.getloadavg()[0]
    log("  %s suite: %.0f s" % (mode, time.time() - t0))
    rows, info = [], {"mode": mode, "load_average": [round(load0, 2), round(load1, 2)]}
    for line in proc.stdout.splitlines():
        if line.startswith("ROW "):
            r = json.loads(line[4:])
            r["mode"] = mode
            rows.append(r)
        elif line.startswith("MODE "):
            info.update(json.loads(line[5:]))
    if proc.returncode != 0:
        info["failed"] = "exit %d: %s" % (proc.returncode, (proc.stderr.strip().splitlines() or [""])[-1])
        log("%s suite failed (exit %d):\n%s" % (mode, proc.returncode, proc.stderr[-3000:]))
    return rows, info


def run_fit(libdir):
    # fit.py and host_tests/boardmode.py run from .mpy: compiling them would take (and
    # fragment) the small heap before the fill.
    for src in (HERE / "fit.py", ROOT / "host_tests" / "boardmode.py"):
        subprocess.run([str(BIN / "mpy-cross"), "-O3", "-march=x64", "-o", str(Path(libdir) / (src.stem + ".mpy")),
                        str(src)], check=True)
    rows = []
    for what in ("modules", "subscriptions"):
        for heap in FIT_HEAPS:
            for mode in MP_MODES:
                r = {"name": "%s before MemoryError, %s heap" % (what, heap), "group": "fit", "mode": mode}
                for fill in ("--floor", "--lib"):  # two fresh processes: floor, then library
                    argv = ["fit", what, str(libdir), fill] + (["--board"] if mode == "board" else [])
                    cmd = [MICROPYTHON, "-X", "heapsize=" + heap, "-c",
                           "import sys\nsys.argv[:] = %r\nsys.path.insert(0, %r)\nimport fit\n" % (argv, str(libdir))]
                    proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, timeout=300)
                    lines = proc.stdout.splitlines()
                    if "FIT-END" not in lines:
                        r["skipped"] = "fit.py %s exit %d: %s" % (
                            fill, proc.returncode, ((proc.stderr + proc.stdout).strip().splitlines() or ["no output"])[-1])
                        break
                    got = {}
                    for ln in lines:
                        if ln.startswith("FITKV "):
                            _, key, value = ln.split(" ", 2)
                            got[key] = json.loads(value)
                    if fill == "--floor":
                        r["floor"] = got.get("floor")
                        if got.get("error"):
                            r["floor_error"] = got["error"]
                    else:
                        got.pop("floor", None)
                        r.update(got)
                    if mode == "board" and (got.get("board_problems") or not got.get("board")):
                        r["skipped"] = "board mode not proven: %s" % got.get("board_problems")
                if r.get("floor") and r.get("lib") is not None:
                    r["ratio"] = r["lib"] / r["floor"]
                rows.append(r)
    return rows


def footprint_rows(result):
    rows = []
    for h in result["heap"]:
        r = dict(h)
        r["group"] = "footprint"
        if "bytes" in r:
            r["size_bytes"] = r["bytes"]
        rows.append(r)
    for arch, sizes in result["mpy"].items():
        native = result["native"].get(arch, {})
        rows.append({"name": "all .mpy, " + arch, "group": "footprint", "mode": "any",
                     "size_bytes": sum(sizes.values()), "native": sum(native.values()),
                     "files": sizes})
    return rows


def link_rows():
    # the serial link's rows (tools/bench/link_bench.py); a failure is a skipped row
    sys.path.insert(0, str(HERE))
    import link_bench

    t0 = time.time()
    rows = []
    try:
        for r in link_bench.main():
            r["group"] = "link"
            if "bytes" in r:
                r["size_bytes"] = r["bytes"]
            if "median_ms" in r:
                r["mode"] = "cpython"
            rows.append(r)
    except Exception as e:  # noqa: BLE001 - one failing section must not lose the others
        rows.append({"name": "link board side: import", "group": "link", "mode": "unix", "skipped": repr(e)})
    log("  link: %.0f s" % (time.time() - t0))
    return rows


def romfs_rows():
    # tools/bench/romfs_bench.py; a failure is a skipped row
    sys.path.insert(0, str(HERE))
    import romfs_bench

    t0 = time.time()
    try:
        rows = romfs_bench.main()
    except Exception as e:  # noqa: BLE001 - one failing section must not lose the others
        rows = [{"name": "romfs vs files: import:all", "mode": "unix", "skipped": repr(e)}]
    for r in rows:
        r["group"] = "romfs"
        if "romfs_bytes" in r:
            r["size_bytes"] = r["romfs_bytes"]  # (judged on the ROMFS figure; the files one is its own row)
    log("  romfs: %.0f s" % (time.time() - t0))
    return rows


# -- judging ----------------------------------------------------------------------------

def meets(kind, bound, r):
    if r is None or "skipped" in r:
        return False
    if kind == "max":
        return r.get("ratio") is not None and r["ratio"] <= bound
    if kind == "min":
        return r.get("ratio") is not None and r["ratio"] >= bound
    if kind == "zero":
        return r.get("bytes_per_op") is not None and r["bytes_per_op"] < 0.5
    if kind == "size":
        return r.get("size_bytes") is not None and r["size_bytes"] <= bound
    if kind == "fit":
        return r.get("ratio") is not None and r["ratio"] >= bound and r.get("atomic") is True
    raise ValueError(kind)


def judge(name, by_mode, invalid_modes):
    """(goal text, verdict text, met or None) for one row across its modes."""
    if name.startswith("all .mpy, "):
        r = by_mode.get("any")
        ok = r is not None and r["size_bytes"] <= MPY_GOAL
        return "<= 20 KB", ("met" if ok else "MISSED") + " (one build for both modes)", ok
    if name not in GOALS:
        return "", "", None
    where, goals = GOALS[name]
    modes = MP_MODES if where == "mp" else ("cpython",)
    texts = [text for _, _, text in goals]
    per_mode = []  # one verdict per mode, all printed
    for mode in modes:
        r = by_mode.get(mode)
        if mode in invalid_modes:
            misses = ["not usable"]
        elif r is None:
            misses = ["no result"]
        elif "skipped" in r:
            misses = ["skipped"]
        else:
            misses = [short(kind, r) for kind, bound, _ in goals if not meets(kind, bound, r)]
        per_mode.append((mode, misses))
    ok = all(not m for _, m in per_mode)
    statuses = ("not usable", "no result", "skipped")
    verdict = ("met" if ok else "MISSED") + " (" + ", ".join(
        "%s %s" % (mode, "met" if not m else m[0] if m[0] in statuses else "MISSED " + " ".join(dict.fromkeys(m)))
        for mode, m in per_mode) + ")"
    return "; ".join(texts), verdict, ok


def short(kind, r):
    if kind in ("max", "min"):
        return "%.2fx" % r["ratio"] if r.get("ratio") is not None else "no ratio"
    if kind == "zero":
        return "%.0f B/op" % r["bytes_per_op"] if r.get("bytes_per_op") is not None else "no B/op"
    if kind == "size":
        return "%.1f KB" % (r["size_bytes"] / KB) if r.get("size_bytes") is not None else "no size"
    if r.get("ratio") is None:
        return "no count"
    atomic = {True: "", False: ", not atomic", None: ", atomicity not exercised"}[r.get("atomic")]
    return "%.2fx%s" % (r["ratio"], atomic)


NOTES = []  # long details, printed under the table as [n]


def note(text):
    if text not in NOTES:
        NOTES.append(text)
    return "[%d]" % (NOTES.index(text) + 1)


def cell(r):
    if r is None:
        return ""
    if "skipped" in r:
        return "skipped " + note(r["skipped"])
    if r.get("group") == "fit":
        if "floor" not in r:
            return "no result " + note(r.get("error", "fit.py printed nothing"))
        s = "%s / floor %s" % (r.get("lib", "?"), r["floor"])
        if r.get("ratio") is not None:
            s += " = %.2fx" % r["ratio"]
        if r.get("error"):
            s += " " + note(r["error"])
        if r.get("atomic") is False:
            s += ", NOT atomic " + note("; ".join(r.get("problems", [])))
        elif r.get("atomic") is None:
            s += ", atomicity not exercised " + note(r.get("atomic_note", ""))
        else:
            s += ", atomic"
        return s
    if "romfs_bytes" in r:  # tools/bench/romfs_bench.py
        return "%.1f KB from ROMFS vs %.1f KB from files (-%.0f%%)" % (
            r["romfs_bytes"] / KB, r["files_bytes"] / KB, 100 * (1 - r["ratio"]))
    if "median_ms" in r:  # the link's round trips (tools/bench/link_bench.py)
        return "median %.2f ms, p99 %.2f ms (n=%d)" % (r["median_ms"], r["p99_ms"], r["n"])
    if "size_bytes" in r:
        s = "%.1f KB" % (r["size_bytes"] / KB) if r["size_bytes"] >= 4 * KB else "%d B" % r["size_bytes"]
        parts = []
        if r.get("native"):
            parts.append("%.1f KB native%s" % (
                r["native"] / KB, ", %.1f KB armv6m" % (r["native_armv6m"] / KB) if r.get("native_armv6m") else ""))
        if r.get("names"):
            parts.append("names %.1f KB" % (r["names"] / KB))
        if parts:
            s += " (" + "; ".join(parts) + ")"
        if r.get("missing"):
            s += " MISSING " + ",".join(r["missing"])
        return s
    if r.get("ns_per_op") is None:
        return ""
    s = "%.0f ns" % r["ns_per_op"]
    if r.get("ratio") is not None:
        s += " %.2fx" % r["ratio"]
        pm = r.get("ratio_paired_median")
        if pm and abs(r["ratio"] - pm) > 0.15 * pm:
            s += " " + note("~: noisy: the median of the per-repeat ratios differs from best/best by more than "
                            "15% (the machine's load changed while this group was timed)")
    if r.get("bytes_per_op") is not None:
        s += " %.0f B" % r["bytes_per_op"] if r["bytes_per_op"] >= 0.5 else " 0 B"
    return s


def print_table(rows, invalid_modes):
    # One line per (group, name, ref), cells per mode, in first-seen order.
    order, table = [], {}
    for r in rows:
        key = (r.get("group", ""), r["name"])
        if key not in table:
            order.append(key)
            table[key] = {}
        table[key][r["mode"]] = r
    header = ("group", "row", "vs", "cpython", "unix", "board", "goal", "verdict")
    lines, judged = [], []
    for key in order:
        by_mode = table[key]
        goal, verdict, ok = judge(key[1], by_mode, invalid_modes)
        if ok is not None:
            judged.append((key[1], ok, verdict))
        if "any" in by_mode:
            cells = ("", cell(by_mode["any"]), "(any mode)")
        else:
            cells = tuple(cell(by_mode.get(m)) for m in ("cpython", "unix", "board"))
        ref = next((r["ref"] for r in by_mode.values() if r.get("ref")), "")
        lines.append((key[0], key[1], ref) + cells + (goal, verdict))
        for r in by_mode.values():
            if ok is not None:
                r["goal"], r["met"] = goal, ok
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    print(fmt(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for ln in lines:
        print(fmt(ln))
    for k, text in enumerate(NOTES):
        print("[%d] %s" % (k + 1, text))
    for key in order:  # what a goal row's measurement means, where the suite said so
        for mode, r in table[key].items():
            if key[1] in GOALS and r.get("note") and "delivered" in r["note"]:
                print("note, %s (%s): %s" % (key[1], mode, r["note"]))
    return judged


def main(argv):
    global LIB, REPEATS
    if "--repeats" in argv:
        k = argv.index("--repeats")
        REPEATS = ["--repeats", str(int(argv[k + 1]))]
        argv = argv[:k] + argv[k + 2:]
    if "--lib" in argv:
        k = argv.index("--lib")
        LIB = Path(argv[k + 1]).resolve()
        argv = argv[:k] + argv[k + 2:]
    aliases = {s.split("_", 1)[1]: s for s in SUITE_SECTIONS}
    wanted = [aliases.get(a, a) for a in argv]
    unknown = [a for a in wanted if a not in SUITE_SECTIONS + OTHER_SECTIONS]
    if unknown:
        sys.exit("unknown section(s): %s (known: %s)" % (", ".join(unknown), ", ".join(SUITE_SECTIONS + OTHER_SECTIONS)))
    suite_sections = [a for a in wanted if a in SUITE_SECTIONS]
    do_suite = not wanted or bool(suite_sections)
    do_fit = not wanted or "fit" in wanted
    do_foot = not wanted or "footprint" in wanted
    do_frames = not wanted or "frames" in wanted
    do_mqtt = not wanted or "mqtt" in wanted
    t_start = time.time()

    rows, modes, invalid = [], {}, {}
    if do_suite:
        for mode, cmd in MODES:
            mrows, info = run_suite(mode, cmd, suite_sections)
            rows += mrows
            modes[mode] = info
            if info.get("failed"):
                invalid[mode] = "suite " + info["failed"]
        board = modes.get("board", {})
        if not board.get("board") or board.get("problems"):
            invalid["board"] = "board mode not proven: %s" % (board.get("problems") or "no MODE line")
    if not wanted or "link" in wanted:
        rows += link_rows()
    if not wanted or "romfs" in wanted:
        rows += romfs_rows()
    foot = None
    libdir = None
    if do_fit or do_foot:
        sys.path.insert(0, str(HERE))
        import footprint

        try:
            if do_foot:
                t0 = time.time()
                foot = footprint.main(LIB / "helix_ipc")
                libdir = foot["libdir"]
                rows += footprint_rows(foot)
                log("  footprint: %.0f s" % (time.time() - t0))
            else:
                libdir = footprint.compile_lib(footprint.HEAP_ARCH, LIB / "helix_ipc")[0]
        except RuntimeError as e:  # mpy-cross refused the library
            log("footprint: %s" % e)
            for name in ("import:all", "import:channel", "import:bus", "import:router"):
                for mode in MP_MODES:
                    rows.append({"name": name, "group": "footprint", "mode": mode, "skipped": str(e)})
    if do_fit and libdir is not None:
        t0 = time.time()
        rows += run_fit(libdir)
        log("  fit: %.0f s" % (time.time() - t0))
    elif do_fit:
        for what in ("modules", "subscriptions"):
            for heap in FIT_HEAPS:
                for mode in MP_MODES:
                    rows.append({"name": "%s before MemoryError, %s heap" % (what, heap), "group": "fit",
                                 "mode": mode, "skipped": "no .mpy build of the library"})

    if do_mqtt:
        sys.path.insert(0, str(HERE))
        import mqtt_bench

        t0 = time.time()
        rows += mqtt_bench.rows()
        log("  mqtt: %.0f s" % (time.time() - t0))

    print("helix_ipc bench: ns/op, ratio to the row's reference (timed in alternation, best of %s x 20000), "
          % (REPEATS[1] if REPEATS else DEFAULT_REPEATS) +
          "B/op from micropython.mem_total() deltas. unix = the unix port as it is; board = the unix port "
          "with sys.exc_info hidden (as rp2/esp32). Sizes: 64-bit heap; import rows add the x64 native code "
          "the unix port keeps outside the GC heap (a board allocates it on the heap).")
    counters = ["%s: %s" % (m, modes[m].get("alloc_counter")) for m in MP_MODES if m in modes]
    if counters:
        print("B/op counted with " + "; ".join(counters))
    judged = print_table(rows, invalid)
    if foot and foot.get("breakdown"):
        print("\nWhere the import heap goes (unix port, 64-bit, from .mpy; modules imported one after "
              "another, each charged what it loads that was not loaded yet):")
        bl = [("module", "heap B", "+native B", "bytecode B", "functions", "names", "new name B", "also loaded")]
        for b in foot["breakdown"]:
            bl.append((b["module"], str(b["heap"]), str(b["native"]), str(b["bytecode"]), str(b["functions"]),
                       str(b["qstrs"]), str(b["new_qstr_bytes"]), b["also_loaded"]))
        w = [max(len(x) for x in col) for col in zip(*bl)]
        for k, cells in enumerate(bl):
            print("| " + " | ".join(c.ljust(x) for c, x in zip(cells, w)) + " |")
            if k == 0:
                print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    frames = None
    if do_frames:
        sys.path.insert(0, str(HERE))
        import frames as frames_mod

        print()
        frames = frames_mod.main(["--lib", str(LIB)])
    met = [j for j in judged if j[1]]
    missed = [j for j in judged if not j[1]]
    print("\n%d goals judged (a MicroPython goal holds only when both unix and board meet it): "
          "%d met, %d missed." % (len(judged), len(met), len(missed)))
    for name, _, verdict in missed:
        print("  missed: %s: %s" % (name, verdict))
    for mode, why in invalid.items():
        print("  %s results not usable: %s" % (mode, why))
    busy = {m: i["load_average"] for m, i in modes.items() if max(i.get("load_average", [0])) > 1.5}
    if busy:
        print("  WARNING: other work shared this 2-core machine (1-min load average before/after: %s). A timed "
              "loop longer than a scheduler slice is interrupted more often than a shorter floor, so ratios "
              "read high: rerun on an idle machine before trusting a narrow miss." % ", ".join(
                  "%s %.1f/%.1f" % (m, a, b) for m, (a, b) in busy.items()))
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({
        "modes": modes, "invalid_modes": invalid, "rows": rows, "footprint": foot, "frames": frames,
        "summary": {"judged": len(judged), "met": len(met), "missed": len(missed),
                    "missed_rows": [j[0] for j in missed]},
    }, indent=1))
    print("JSON: %s (%.0f s)" % ((out / "results.json").relative_to(ROOT), time.time() - t_start))
    return 1 if any(info.get("failed") for info in modes.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
