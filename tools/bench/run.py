# tools/bench/run.py: `make bench` — runs tools/bench/suite.py under CPython and the
# MicroPython unix port, prints one table with each row's goal and whether it is met,
# and writes the rows as JSON to build/bench/results.json. Host-side (CPython) only.
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
INTERPRETERS = [
    ("cpython", [sys.executable]),
    ("micropython", [str(BIN / "micropython"), "-X", "heapsize=16M"]),
]

# (row name, interpreter) -> (kind, bound, text). kind: "max" ratio, "min" ratio, "zero" bytes.
GOALS = {
    ("channel send+try_recv", "micropython"): [("max", 1.5, "<= 1.5x ring floor"), ("zero", 0, "0 B/op")],
    ("context: queue.Queue put_nowait+get_nowait", "cpython"): [("min", 2.0, "channel >= 2x faster")],
    ("publish, 1 subscriber", "micropython"): [("max", 2.0, "<= 2x dispatch floor"), ("zero", 0, "0 B/op")],
    ("publish, 1 matching among 1000", "micropython"): [("max", 1.2, "<= 1.2x publish to 1")],
    ("context: blinker send", "cpython"): [("min", 1.0, "publish faster")],
    ("send by name", "micropython"): [("max", 2.0, "<= 2x route floor")],
    ("send by id", "micropython"): [("max", 2.0, "<= 2x route floor")],
    ("send by name, 1000 modules", "micropython"): [("max", 1.2, "<= 1.2x with 1 module")],
    ("publish_from_isr", "micropython"): [("max", 2.0, "<= 2x slot floor"), ("zero", 0, "0 B/op")],
}


def run_suite(name, cmd, sections):
    proc = subprocess.run(
        cmd + [str(HERE / "suite.py")] + sections,
        cwd=str(ROOT), capture_output=True, text=True, timeout=1800,
    )
    rows = []
    for line in proc.stdout.splitlines():
        if line.startswith("ROW "):
            r = json.loads(line[4:])
            r["interpreter"] = name
            rows.append(r)
    if proc.returncode != 0:
        sys.stderr.write("%s failed (exit %d):\n%s\n%s\n" % (name, proc.returncode, proc.stdout, proc.stderr))
    return rows, proc.returncode


def judge(r):
    goals = GOALS.get((r["name"], r["interpreter"]))
    if not goals or "skipped" in r:
        return "", ""
    texts, verdicts = [], []
    for kind, bound, text in goals:
        texts.append(text)
        if kind == "max":
            ok = r.get("ratio") is not None and r["ratio"] <= bound
        elif kind == "min":
            ok = r.get("ratio") is not None and r["ratio"] >= bound
        else:
            ok = r.get("bytes_per_op") is not None and r["bytes_per_op"] < 0.5
        verdicts.append("met" if ok else "MISSED")
    r["goal"] = "; ".join(texts)
    r["met"] = all(v == "met" for v in verdicts)
    return r["goal"], " / ".join(verdicts)


def fmt(v, spec):
    return "" if v is None else format(v, spec)


FOOT_GOALS = {
    "import:all": 16 * 1024,
    "import:channel": 6 * 1024,
    "import:bus": 6 * 1024,
    "import:router": 6 * 1024,
}
MPY_GOAL = 20 * 1024


def footprint_table(verdicts):
    sys.path.insert(0, str(HERE))
    import footprint

    result = footprint.main()
    print("\nFootprint (heap on the MicroPython unix port, 64-bit: objects are about twice "
          "their size on a 32-bit board; .mpy sizes per architecture)")
    lines = [("measure", "bytes", "goal", "verdict")]
    for r in result["heap"]:
        goal = FOOT_GOALS.get(r["name"])
        if "skipped" in r:
            lines.append((r["name"], "", "", "skipped: " + r["skipped"]))
            continue
        verdict = "" if goal is None else ("met" if r["bytes"] <= goal else "MISSED")
        if goal is not None:
            verdicts.append(verdict == "met")
        lines.append((r["name"], str(r["bytes"]), "" if goal is None else "<= %d" % goal, verdict))
    for arch, sizes in result["mpy"].items():
        total = sum(sizes.values())
        verdicts.append(total <= MPY_GOAL)
        lines.append(("mpy total " + arch, str(total), "<= %d" % MPY_GOAL, "met" if total <= MPY_GOAL else "MISSED"))
        for name, size in sizes.items():
            lines.append(("  " + arch + " " + name, str(size), "", ""))
    widths = [max(len(x) for x in col) for col in zip(*lines)]
    for i, cells in enumerate(lines):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return result


def main():
    sections = sys.argv[1:]
    all_rows, failed = [], False
    for name, cmd in INTERPRETERS:
        rows, rc = run_suite(name, cmd, sections)
        all_rows += rows
        failed |= rc != 0
    header = ("group", "row", "interp", "ns/op", "vs", "ratio", "B/op", "goal", "verdict")
    table = []
    for r in all_rows:
        if "skipped" in r:
            table.append((r.get("group", ""), r["name"], r["interpreter"], "", "", "", "", "skipped: " + r["skipped"], ""))
            continue
        goal, verdict = judge(r)
        table.append((
            r.get("group", ""), r["name"], r["interpreter"], fmt(r["ns_per_op"], ".0f"), r.get("ref") or "",
            fmt(r.get("ratio"), ".2f"), fmt(r.get("bytes_per_op"), ".1f"), goal, verdict,
        ))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for t in table:
        print(line(t))
    foot_verdicts = []
    foot = footprint_table(foot_verdicts) if not sections else None
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"rows": all_rows, "footprint": foot}, indent=1))
    judged = [r["met"] for r in all_rows if "met" in r] + foot_verdicts
    print("\n%d goals judged (speed and footprint): %d met, %d missed. JSON: %s" % (
        len(judged), sum(judged), sum(not v for v in judged), (out / "results.json").relative_to(ROOT)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
