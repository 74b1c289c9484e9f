# tools/stress/run.py: `make stress` — the stress and fault suite of helix_ipc at full scale.
#
# Runs every scenario of tools/stress/scenarios.py in a fresh process per interpreter:
# CPython, the MicroPython unix port, and the unix port in board mode (sys.exc_info
# hidden, as on rp2/esp32). The memory scenarios run on the unix port with a board-sized
# heap (-X heapsize=256k). At the end it prints the figures table (events/s are context
# only: the scenarios assert counts, order, identities and memory) and exits non-zero
# when any scenario failed. `make test` runs the same scenarios at a small scale
# (host_tests/test_stress.py).
#
# Usage: python tools/stress/run.py [--scale 1.0] [--only name,name] [--no-board]
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import scenarios  # noqa: E402

MEMORY_HEAP = "256k"  # the memory scenarios' heap on the unix port (a board-sized heap)
TIMEOUT_S = 120  # per run, plus 300 s per unit of scale: a deadlock fails, it does not hang make stress


def _micropython():
    venv_bin = ROOT / ".venv" / "bin"
    return shutil.which("micropython", path=str(venv_bin)) or shutil.which("micropython")


def _modes(board):
    mp = _micropython()
    python = ROOT / ".venv" / "bin" / "python"
    modes = [("cpython", [str(python if python.exists() else sys.executable)], [])]
    if mp is None:
        print("stress: the `micropython` command is missing: run `make venv`", file=sys.stderr)
        sys.exit(2)
    modes.append(("micropython", [mp], []))
    if board:
        modes.append(("mpy board", [mp], ["--board"]))
    return modes


def run_one(cmd, flags, name, scale):
    """(status, seconds, figures dict or reason, stderr tail)"""
    if cmd[0].endswith("micropython") and name.startswith("memory_"):
        cmd = cmd + ["-X", "heapsize=" + MEMORY_HEAP]
    argv = cmd + [str(HERE / "child.py")] + flags + [name, repr(scale)]
    timeout = TIMEOUT_S + 300 * scale
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return "fail", time.monotonic() - t0, "timed out after %d s (a deadlock?)" % timeout, out[-3000:]
    secs = time.monotonic() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("@@STRESS@@ "):
            status, _, rest = line[len("@@STRESS@@ "):].partition(" ")
            if status == "pass" and proc.returncode == 0:
                import json

                return "pass", secs, dict(json.loads(rest)), ""
            if status == "skip" and proc.returncode == 0:
                return "skip", secs, rest, ""
            return "fail", secs, rest, proc.stderr[-3000:]
    return "fail", secs, "exited with %d and no result line" % proc.returncode, (proc.stdout + proc.stderr)[-3000:]


def main():
    ap = argparse.ArgumentParser(description="helix_ipc stress and fault suite")
    ap.add_argument("--scale", type=float, default=1.0, help="size factor (1 = make stress, ~3-5 min)")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--no-board", action="store_true", help="skip the unix port's board mode")
    args = ap.parse_args()
    names = [k for k, _ in scenarios.SCENARIOS]
    if args.only:
        wanted = args.only.split(",")
        for w in wanted:
            scenarios.get(w)  # KeyError naming the choices
        names = [k for k in names if k in wanted]
    modes = _modes(not args.no_board)
    rows = []
    failures = []
    t0 = time.monotonic()
    for name in names:
        for label, cmd, flags in modes:
            status, secs, info, err = run_one(cmd, flags, name, args.scale)
            print("%-18s %-12s %-4s %6.1f s" % (name, label, status, secs), flush=True)
            if status == "fail":
                failures.append((name, label, info, err))
            rows.append((name, label, status, secs, info))
    total = time.monotonic() - t0
    print()
    print("helix_ipc stress figures (scale %g; events/s are context only, never asserted)" % args.scale)
    print("%-18s %-12s %-4s %7s  %s" % ("scenario", "interpreter", "", "time", "figures"))
    for name, label, status, secs, info in rows:
        if status == "pass":
            text = ", ".join("%s %s" % (k, v) for k, v in info.items())
        else:
            text = str(info)
        print("%-18s %-12s %-4s %6.1fs  %s" % (name, label, status, secs, text))
    print("total %.0f s" % total)
    for name, label, info, err in failures:
        print()
        print("FAIL %s [%s]: %s" % (name, label, info))
        if err:
            print(err.rstrip())
    if failures:
        print()
        print("%d of %d runs failed" % (len(failures), len(rows)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
