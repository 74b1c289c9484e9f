# tools/bench/ablate.py: what each function of the serial link's board side costs in heap,
# measured by deleting it and importing again. Host-side (CPython); runs the unix port.
#
#   python tools/bench/ablate.py     prints JSON: the import's heap, then one row per
#                                    function (module, name, bytes saved without it)
#
# The import is link_bench's own (link_bench.import_heap: helix_ipc.wire, .remote, .link
# and firmware/helix_link.py as .mpy, -O3, x64, after the firmware's helix_app, qstr pool
# pre-grown); the heap delta only (no qstr pool entries: link_bench's row adds those).
# Deleting a function (the import still works: nothing calls it) saves its bytecode, its
# raw code record and function object, the names only it uses and its constants; the
# figures move by a heap block or two from run to run. docs/link.md ("Cost") uses them.
import ast
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import footprint  # noqa: E402
import link_bench  # noqa: E402

FILES = {"helix_ipc/wire": "lib/helix_ipc/wire.py", "helix_ipc/remote": "lib/helix_ipc/remote.py",
         "helix_ipc/link": "lib/helix_ipc/link.py", "helix_link": "firmware/helix_link.py"}


def measure(srcs, tmp):
    """link_bench's import heap with the sources `srcs` ({key: text}) of the four modules
    (the rest of lib/helix_ipc as it is), compiled as link_bench compiles them."""
    lib = Path(tmp) / "helix_ipc"
    shutil.rmtree(lib, ignore_errors=True)
    shutil.copytree(ROOT / "lib" / "helix_ipc", lib, ignore=shutil.ignore_patterns("__pycache__"))
    for key, text in srcs.items():
        (Path(tmp) / (key + ".py")).write_text(text)
    libdir, _, _ = footprint.compile_lib(footprint.HEAP_ARCH, lib)
    link_bench.compile_helix_link(footprint.HEAP_ARCH, libdir, Path(tmp) / "helix_link.py")
    return link_bench.import_heap(libdir)


def functions(src):
    """(name, first line, last line, indent) of each def in src, nested ones included."""
    out = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            out.append((node.name, first, node.end_lineno, node.col_offset))
    return out


def main():
    base = {k: (ROOT / v).read_text() for k, v in FILES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        whole = measure(base, tmp)
        rows = []
        for key, src in base.items():
            lines = src.splitlines(True)
            for name, first, last, col in functions(src):
                cut = "".join(lines[:first - 1]) + " " * col + "pass\n" + "".join(lines[last:])
                rows.append({"module": key.replace("/", "."), "function": name,
                             "saved_bytes": whole - measure(dict(base, **{key: cut}), tmp)})
    rows.sort(key=lambda r: -r["saved_bytes"])
    return {"import_bytes": whole, "functions": len(rows), "sum_saved_bytes": sum(r["saved_bytes"] for r in rows),
            "rows": rows}


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
