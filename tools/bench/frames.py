# tools/bench/frames.py: which bytecode functions of helix_ipc get their frame allocated
# on the heap at every call on MicroPython. Host-side (CPython); runs the unix port.
#
#   python tools/bench/frames.py [--lib DIR]
#
# The VM keeps a bytecode function's state on the C stack only while
# n_state (arguments + locals + max value stack) + 3 words per exception-stack entry
# fits in 11 words; otherwise every call does a gc_alloc + free (~150-200 B, invisible to
# heap_lock and gc.mem_alloc deltas, seen with micropython.mem_total: support.frame_alloc).
# `micropython -v -v` dumps N_STATE and N_EXC_STACK for each bytecode function it
# compiles; @micropython.native functions are not bytecode and are not listed (their
# frames live on the C stack).
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
WORDS_ON_STACK = 11  # VM_MAX_STATE_ON_STACK, in words
_BLOCK = re.compile(r"^File (\S+), code block '([^']*)'")


def scan(lib=ROOT / "lib"):
    """[{file, function, n_state, n_exc_stack, words, heap}] for every bytecode function
    compiled while importing each helix_ipc module from source."""
    pkg = Path(lib) / "helix_ipc"
    modules = ["helix_ipc." + p.stem for p in sorted(pkg.glob("*.py")) if p.stem != "__init__"]
    code = "import sys\nsys.path.insert(0, %r)\n" % str(lib) + "".join(
        "try:\n    import %s\nexcept Exception as e:\n    print('FAILED %s', e)\n" % (m, m) for m in modules)
    proc = subprocess.run([str(BIN / "micropython"), "-v", "-v", "-c", code],
                          capture_output=True, text=True, timeout=120)
    out = []
    current = None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = _BLOCK.match(line)
        if m:
            current = {"file": m.group(1), "function": m.group(2)} if "helix_ipc/" in m.group(1) else None
            continue
        if current is None:
            continue
        if line.startswith("(N_STATE "):
            current["n_state"] = int(line[9:-1])
        elif line.startswith("(N_EXC_STACK "):
            current["n_exc_stack"] = int(line[13:-1])
            current["words"] = current["n_state"] + 3 * current["n_exc_stack"]
            current["heap"] = current["words"] > WORDS_ON_STACK
            current["file"] = current["file"].split("helix_ipc/", 1)[1]
            out.append(current)
            current = None
    return out


def main(argv):
    lib = Path(argv[argv.index("--lib") + 1]) if "--lib" in argv else ROOT / "lib"
    rows = scan(lib)
    heap = [r for r in rows if r["heap"] and r["function"] != "<module>"]
    print("%d bytecode functions, %d with a heap frame at every call (n_state + 3 x exception entries > %d words):"
          % (len(rows), len(heap), WORDS_ON_STACK))
    for r in heap:
        print("  %-14s %-28s n_state %2d, exception entries %d = %2d words" % (
            r["file"], r["function"], r["n_state"], r["n_exc_stack"], r["words"]))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
