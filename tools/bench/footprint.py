# tools/bench/footprint.py: the RAM and flash rows of `make bench` (host-side, CPython).
# Compiles lib/helix_ipc with mpy-cross and deploy's flags for x64 (the unix port: a
# module with @micropython.native code needs -march, bytecode-only .mpy cannot hold it),
# armv6m (rp2) and xtensawin (esp32); measures the import heap on the unix port from
# the x64 .mpy, in both modes (as is, and board mode: sys.exc_info hidden).
#
# Native code: the unix port loads it into executable memory outside the GC heap
# (measured: 13.6 KB of x64 native code in one module adds 288 B to gc.mem_alloc()),
# while rp2/esp32 allocate it on the GC heap. So each import row is
# gc.mem_alloc() delta + the x64 native code bytes of the helix_ipc modules it loaded
# (mpyinfo.py reads them from the .mpy files), with both parts reported, and how much of
# the heap figure is interned names (micropython.qstr_info(): pools and string data; a
# pool grows by doubling, so the import that crosses a pool boundary pays for the pool).
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
LIB = ROOT / "lib" / "helix_ipc"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tools" / "deploy"))
import mpyinfo  # noqa: E402

try:
    from deploy import MPY_CROSS_FLAGS  # noqa: E402 - measure what `make deploy` installs
except Exception:  # noqa: BLE001 - deploy.py is another part of the tree; fall back to its known flags
    MPY_CROSS_FLAGS = ("-O3",)
HEAP_ARCH = "x64"
ARCHS = ("armv6m", "xtensawin")
MEASURES = (
    "import:helix_ipc", "import:channel", "import:bus", "import:router", "import:module",
    "import:tick", "import:all", "use:all", "per:channel slot", "per:subscription", "per:module",
)


def compile_lib(arch, lib=LIB):
    """Compile every module of `lib` for `arch`; returns (dir holding helix_ipc/,
    {file: .mpy size}, {file: native code bytes})."""
    out = ROOT / "build" / "mpy" / arch / "helix_ipc"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.mpy"):
        old.unlink()
    sizes, native = {}, {}
    for src in sorted(Path(lib).glob("*.py")):
        dst = out / (src.stem + ".mpy")
        cmd = [str(BIN / "mpy-cross"), *MPY_CROSS_FLAGS, "-march=" + arch,
               "-s", "helix_ipc/" + src.name, "-o", str(dst), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("mpy-cross %s failed for %s: %s" % (arch, src.name, (proc.stderr or proc.stdout).strip()))
        sizes[src.name] = dst.stat().st_size
        native[src.name] = mpyinfo.sizes(dst)["native"]
    return out.parent, sizes, native


def _qstr_delta(stdout):
    """n_total_bytes of the interned names after the measured step less before (the last
    QSTR before/after pair footprint_device.py printed), or None."""
    lines = stdout.splitlines()
    got = {}
    for k, ln in enumerate(lines):
        if ln.startswith("QSTR ") and k + 1 < len(lines) and "n_total_bytes=" in lines[k + 1]:
            got[ln.split()[1]] = int(lines[k + 1].rsplit("n_total_bytes=", 1)[1].split(",")[0])
    if "before" in got and "after" in got:
        return got["after"] - got["before"]
    return None


def _file_of(module):
    return "__init__.py" if module == "helix_ipc" else module.split(".", 1)[1] + ".py"


def measure_heap(libdir, native, board, native_arm=None):
    rows = []
    for what in MEASURES:
        cmd = [str(BIN / "micropython"), str(HERE / "footprint_device.py"), what, str(libdir)]
        if board:
            cmd.append("--board")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        out = {ln.split(" ", 1)[0]: ln.split(" ", 1)[1] if " " in ln else "" for ln in proc.stdout.splitlines()}
        names = _qstr_delta(proc.stdout)
        row = {"name": what, "mode": "board" if board else "unix"}
        if proc.returncode != 0 or "FOOT" not in out:
            err = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            row["skipped"] = err
            rows.append(row)
            continue
        heap = int(out["FOOT"].rsplit(" ", 1)[1])
        loaded = [m for m in out.get("LOADED", "").split(",") if m]
        row["heap"] = heap
        row["loaded"] = loaded
        if names is not None and not what.startswith("per:"):
            row["names"] = names
        if what.startswith("per:"):
            row["bytes"] = heap
        else:
            row["native"] = sum(native.get(_file_of(m), 0) for m in loaded)
            row["bytes"] = heap + row["native"]
            if native_arm is not None:
                row["native_armv6m"] = sum(native_arm.get(_file_of(m), 0) for m in loaded)
        if out.get("MISSING"):
            row["missing"] = out["MISSING"].split(",")
        rows.append(row)
    return rows


def breakdown(libdir, native):
    """Where the import heap goes, module by module (unix mode): [{module, heap, native,
    also_loaded, bytecode, functions, qstrs, new_qstr_bytes, constants}]."""
    proc = subprocess.run([str(BIN / "micropython"), str(HERE / "footprint_device.py"), "breakdown", str(libdir)],
                          capture_output=True, text=True, timeout=120)
    rows = []
    for ln in proc.stdout.splitlines():
        if not ln.startswith("STEP "):
            continue
        parts = ln.split(" ", 3)
        module, heap = parts[1], int(parts[2])
        f = _file_of(module)
        info = mpyinfo.sizes(Path(libdir) / "helix_ipc" / (f[:-3] + ".mpy"))
        rows.append({"module": module, "heap": heap, "native": native.get(f, 0),
                     "also_loaded": parts[3] if len(parts) > 3 else "", "bytecode": info["bytecode"],
                     "functions": info["functions_bytecode"] + info["functions_native"],
                     "qstrs": info["qstrs"], "new_qstr_bytes": info["new_qstr_bytes"],
                     "constants": info["constants"]})
    return rows


def main(lib=LIB):
    libdir, heap_sizes, heap_native = compile_lib(HEAP_ARCH, lib)
    result = {"mpy": {}, "native": {HEAP_ARCH: heap_native}, "heap_arch": HEAP_ARCH,
              "libdir": str(libdir)}
    for arch in ARCHS:
        _, sizes, native = compile_lib(arch, lib)
        result["mpy"][arch] = sizes
        result["native"][arch] = native
    result["heap"] = (measure_heap(libdir, heap_native, False, result["native"]["armv6m"])
                      + measure_heap(libdir, heap_native, True, result["native"]["armv6m"]))
    result["breakdown"] = breakdown(libdir, heap_native)
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
