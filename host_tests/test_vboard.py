# test_vboard: the virtual board (tools/vboard) driven end to end through the real
# mpremote and through its serial protocol directly. These tests start host processes
# (CPython's subprocess and pty), so under MicroPython each one skips.
import support

_E2E = "end-to-end: drives host processes through CPython's subprocess/pty"
_TIMEOUT = 30  # seconds any one mpremote call or wait may take


def _root():
    import os

    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Board:
    """A virtual board in a temporary home (tools/vboard/spawn.py: port, fs, home, proc,
    write/read/exists(board path), close()); files maps board paths to text. Always
    close() it (the tests do so in finally)."""

    def __init__(self, files=None, args=()):
        import sys

        if _root() not in sys.path:  # tools.vboard
            sys.path.insert(0, _root())
        from tools.vboard.spawn import VBoard

        self.vb = VBoard(files, args, _TIMEOUT)

    def __getattr__(self, name):  # port, fs, home, proc, write, read, exists, close
        if name == "vb":  # VBoard() raised: no board to ask
            raise AttributeError(name)
        return getattr(self.vb, name)

    def mp(self, *args, **kw):
        """mpremote connect PORT <args>: (returncode, stdout + stderr)."""
        return _mpremote(self.port, list(args), kw.get("timeout", _TIMEOUT))

    def ok(self, *args):
        rc, out = self.mp(*args)
        assert rc == 0, "mpremote %r failed (%d): %s" % (args, rc, out)
        return out


def _mpremote(port, args, timeout=_TIMEOUT):
    import os
    import subprocess
    import sys

    mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
    proc = subprocess.run([mpremote, "connect", port] + args, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def _wait_for(cond, what, timeout=_TIMEOUT):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class _Serial:
    """The board's port opened directly, for protocol-level checks."""

    def __init__(self, port):
        import os
        import tty

        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)

    def write(self, data):
        import os

        os.write(self.fd, data)

    def read_until(self, ending, timeout=_TIMEOUT):
        import os
        import select
        import time

        data = b""
        end = time.monotonic() + timeout
        while not data.endswith(ending):
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %r; got %r" % (ending, data[-300:]))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                data += os.read(self.fd, 1)
        return data

    def raw_repl(self):
        self.write(b"\r\x03")
        self.write(b"\r\x01")
        self.read_until(b"raw REPL; CTRL-B to exit\r\n>")

    def close(self):
        import os

        os.close(self.fd)


def test_vboard_exec_eval_run():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import tempfile

    b = _Board()
    try:
        assert b.ok("exec", "print('hello', 6 * 7)").strip() == "hello 42"
        assert b.ok("eval", "[1, 2] + [3]").strip() == "[1, 2, 3]"
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "s.py")
            with open(script, "w") as f:
                # bigger than several raw-paste windows (128 bytes): flow control in use
                f.write("total = 0\n" + "".join("total += %d\n" % i for i in range(400)) + "print('total', total)\n")
            assert b.ok("run", script).strip() == "total %d" % sum(range(400))
        rc, out = b.mp("exec", "raise ValueError('bad thing')")
        assert rc != 0 and "ValueError: bad thing" in out, out
        assert "_vboard.py" not in out, out  # tracebacks look like a board's
    finally:
        b.close()


def test_vboard_mpremote_uses_raw_paste():
    if support.MICROPYTHON:
        support.skip(_E2E)
    b = _Board()
    try:
        b.ok("exec", "x = 1")  # after the soft reset, in the fresh device process
        out = b.ok("resume", "exec", "import _vboard; print(_vboard.stats['paste'], _vboard.stats['raw'])")
        assert out.split() == ["2", "0"], out  # both execs went through raw-paste mode
        s = _Serial(b.port)
        try:
            s.raw_repl()
            s.write(b"\x05A\x01")
            head = s.read_until(b"R\x01") + s.read_until(b"\x01", timeout=5)
            assert head.endswith(b"R\x01\x80\x00\x01"), head  # window 128, and a window free
            s.write(b"print('pasted')\x04")
            s.read_until(b"\x04")  # end of data acknowledged
            out = s.read_until(b"\x04")
            assert out == b"pasted\r\n\x04", out
            assert s.read_until(b"\x04>") == b"\x04>"  # no error output, prompt again
            s.write(b"\x05B\x01")  # unknown raw-paste command
            assert s.read_until(b"R\x00>").endswith(b"R\x00>")
        finally:
            s.close()
    finally:
        b.close()


def test_vboard_fs_cp_ls_rm():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import tempfile

    b = _Board()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "blob.bin")
            data = bytes(range(256)) * 9
            with open(src, "wb") as f:
                f.write(data)
            b.ok("fs", "mkdir", ":data")
            b.ok("fs", "cp", src, ":data/blob.bin")
            with open(os.path.join(b.fs, "data", "blob.bin"), "rb") as f:
                assert f.read() == data  # the board's folder holds the file
            listing = b.ok("fs", "ls", ":data")
            assert "%d blob.bin" % len(data) in " ".join(listing.split()), listing
            back = os.path.join(tmp, "back.bin")
            b.ok("fs", "cp", ":data/blob.bin", back)
            with open(back, "rb") as f:
                assert f.read() == data
            assert "Up to date" in b.ok("fs", "cp", src, ":data/blob.bin")  # mpremote's own hash check
            b.ok("fs", "rm", ":data/blob.bin")
            b.ok("fs", "rmdir", ":data")
            assert not b.exists("data")
            rc, out = b.mp("fs", "rm", ":nothing.txt")
            assert rc != 0 and "No such file" in out, out
    finally:
        b.close()


def test_vboard_lib_on_path_and_host_machine():
    if support.MICROPYTHON:
        support.skip(_E2E)
    b = _Board({"lib/greet.py": "def hi():\n    return 'hi from /lib'\n"})
    try:
        out = b.ok("exec", "import sys, os, greet; print(sys.path); print(greet.hi()); print(os.getcwd())")
        lines = out.strip().splitlines()
        assert lines[0] == "['', '.frozen', '/lib']", out
        assert lines[1:] == ["hi from /lib", "/"], out
        out = b.ok("exec", "import machine, _vboard; print(hasattr(machine, 'Timer'), machine.reset is _vboard.hard_reset)")
        assert out.split() == ["True", "True"], out
    finally:
        b.close()


def test_vboard_soft_reset_clears_state_and_reruns_boot():
    if support.MICROPYTHON:
        support.skip(_E2E)
    boot = "f = open('/boot.log', 'a')\nf.write('boot\\n')\nf.close()\nBOOTED = True\n"
    b = _Board({"boot.py": boot, "lib/counter.py": "items = []\n"})
    try:
        b.ok("exec", "import counter; counter.items.append(1); X = 5")
        boots = b.read("boot.log").count("boot")
        out = b.ok("resume", "exec", "import counter; print('X' in globals(), len(counter.items))")
        assert out.split() == ["True", "1"], out  # no reset: state kept
        out = b.ok("exec", "import counter; print('X' in globals(), len(counter.items), BOOTED)")
        assert out.split() == ["False", "0", "True"], out  # soft reset: fresh state, boot.py again
        assert b.read("boot.log").count("boot") == boots + 1
        b.ok("soft-reset")
        assert b.read("boot.log").count("boot") == boots + 2
    finally:
        b.close()


def test_vboard_friendly_soft_reset_runs_boot_then_main():
    if support.MICROPYTHON:
        support.skip(_E2E)
    b = _Board({"boot.py": "print('BOOT RAN')\n", "main.py": "print('MAIN RAN', 'BOOT' in dir())\nmarker = 7\n"})
    try:
        s = _Serial(b.port)
        try:
            s.write(b"\r\x03\x02")  # friendly REPL, fresh banner
            s.read_until(b'for more information.\r\n>>> ')
            s.write(b"\x04")  # soft reset
            s.read_until(b"MPY: soft reboot\r\n")
            out = s.read_until(b'for more information.\r\n>>> ')
            i, j = out.index(b"BOOT RAN\r\n"), out.index(b"MAIN RAN False\r\n")
            assert i < j < out.index(b"MicroPython v"), out
            s.write(b"marker * 6\r")  # main.py ran in the REPL's namespace, as on a board
            assert s.read_until(b">>> ").endswith(b"42\r\n>>> ")
            s.write(b"for i in range(2):\r  print('line', i)\r\r")
            out = s.read_until(b"line 1\r\n>>> ")
            assert b"... " in out and b"line 0\r\n" in out, out
        finally:
            s.close()
    finally:
        b.close()


def test_vboard_friendly_repl_auto_indents_as_a_board():
    # shared/readline/readline.c with MICROPY_REPL_AUTO_INDENT (and its line editing and
    # history) and pyexec's friendly REPL, byte for byte on the serial line.
    if support.MICROPYTHON:
        support.skip(_E2E)
    b = _Board()
    try:
        s = _Serial(b.port)
        try:
            s.write(b"\r\x03\x02")
            s.read_until(b'for more information.\r\n>>> ')
            # after a line ending in ':' the next starts one level in
            s.write(b"for i in range(2):\r")
            assert s.read_until(b"\r\n...     ").endswith(b"for i in range(2):\r\n...     ")
            # a plain line keeps the indentation
            s.write(b"print('line', i)\r")
            s.read_until(b"print('line', i)\r\n...     ")
            # Backspace over the indentation removes 4 spaces (cursor back, erase to end)
            s.write(b"\x7f")
            assert s.read_until(b"\x1b[K") == b"\b\b\b\b\x1b[K"
            # Enter on the empty line ends the block: it runs
            s.write(b"\r")
            assert s.read_until(b">>> ") == b"\r\nline 0\r\nline 1\r\n>>> "
            # nested blocks; an indented empty line twice also ends the statement
            s.write(b"def f(x):\r")
            s.read_until(b"...     ")
            s.write(b"if x:\r")
            s.read_until(b"if x:\r\n...         ")
            s.write(b"return 1\r")
            s.read_until(b"return 1\r\n...         ")
            s.write(b"\x7f")
            s.read_until(b"\x1b[K")
            s.write(b"return 2\r")
            s.read_until(b"return 2\r\n...     ")
            s.write(b"\r")  # all spaces, the line before is not: indented again
            assert s.read_until(b"...     ") == b"\r\n...     "
            s.write(b"\r")  # two all-space lines: no indent, then Enter runs it
            assert s.read_until(b"... ") == b"\r\n... "
            s.write(b"\r")
            assert s.read_until(b">>> ") == b"\r\n>>> "
            s.write(b"f(1), f(0)\r")
            assert s.read_until(b">>> ").endswith(b"(1, 2)\r\n>>> ")
            # pasted code brings its own indentation: a space right after the
            # auto-indent removes 3 of its spaces and turns auto-indent off
            s.write(b"if True:\r")
            s.read_until(b"...     ")
            s.write(b" ")
            assert s.read_until(b"\b\b\b") == b"\b\b\b"
            s.write(b" x = 'pasted'\r")
            assert s.read_until(b"\r\n... ").endswith(b" x = 'pasted'\r\n... ")  # no indent added
            s.write(b"\r")
            s.read_until(b">>> ")
            s.write(b"x\r")
            assert s.read_until(b">>> ").endswith(b"'pasted'\r\n>>> ")
            # open brackets continue without a compound keyword, and without indent
            s.write(b"(1 +\r")
            assert s.read_until(b"... ").endswith(b"(1 +\r\n... ")
            s.write(b"2)\r")
            assert s.read_until(b">>> ").endswith(b"2)\r\n3\r\n>>> ")
            # Ctrl-C cancels the whole statement
            s.write(b"while True:\r")
            s.read_until(b"...     ")
            s.write(b"\x03")
            assert s.read_until(b">>> ") == b"\r\n>>> "
            # line editing: Left, then a character inserted (the rest redrawn, cursor back)
            s.write(b"12\x1b[D+\r")
            assert s.read_until(b">>> ") == b"12\b+2\b\r\n3\r\n>>> "
            # history: Up recalls "1+2", Up again the line entered before it, Down comes
            # back (a shorter line: cursor back 11 columns, erased to the end)
            s.write(b"\x1b[A")
            assert s.read_until(b"1+2") == b"1+2"
            s.write(b"\x1b[A")
            assert s.read_until(b"while True:") == b"\b\b\bwhile True:"
            s.write(b"\x1b[B\r")
            assert s.read_until(b">>> ") == b"\x1b[11D\x1b[K1+2\r\n3\r\n>>> "
        finally:
            s.close()
    finally:
        b.close()


def test_vboard_ctrl_c_interrupts_running_code():
    if support.MICROPYTHON:
        support.skip(_E2E)
    b = _Board()
    try:
        # mpremote leaves a loop running; the next mpremote interrupts it (\r\x03).
        b.ok("exec", "--no-follow", "n = 0\nwhile True:\n    n += 1\n")
        out = b.ok("resume", "exec", "print(n > 0)")
        assert out.strip() == "True", out
        # The raw protocol: Ctrl-C during execution -> KeyboardInterrupt in the error part.
        s = _Serial(b.port)
        try:
            s.raw_repl()
            s.write(b"import time\nwhile True:\n    time.sleep_ms(5)\n\x04")
            assert s.read_until(b"OK") == b"OK"
            s.write(b"\x03")
            assert s.read_until(b"\x04") == b"\x04"  # no normal output
            err = s.read_until(b"\x04")
            assert b"KeyboardInterrupt" in err, err
            s.read_until(b">")
            s.write(b"print('alive')\x04")  # the board still answers
            assert s.read_until(b"\x04").endswith(b"OKalive\r\n\x04")
            # At the prompt \x03 is just data: it clears the raw REPL line.
            s.read_until(b">")
            s.write(b"print('dropped')\x03print('kept')\x04")
            assert s.read_until(b"\x04").endswith(b"OKkept\r\n\x04")
        finally:
            s.close()
    finally:
        b.close()


def test_vboard_hard_reset_restarts_on_same_port():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os

    main = "f = open('/main.log', 'a')\nf.write('main\\n')\nf.close()\n"
    b = _Board({"main.py": main})
    try:
        _wait_for(lambda: b.exists("main.log"), "main.py at power-on")
        runs = b.read("main.log").count("main")
        target = os.readlink(b.port)
        b.ok("exec", "import sys; sys.modules['marker'] = 1")
        b.ok("reset")  # machine.reset(): the device process is replaced
        _wait_for(lambda: b.read("main.log").count("main") == runs + 1, "main.py after the hard reset")
        assert os.readlink(b.port) == target  # same port
        out = b.ok("exec", "import sys; print('marker' in sys.modules)")
        assert out.strip() == "False", out
    finally:
        b.close()


def test_vboard_mip_install_from_local_package():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import json
    import os
    import tempfile

    b = _Board()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, "pkg"))
            with open(os.path.join(tmp, "pkg", "__init__.py"), "w") as f:
                f.write("from .core import answer\n")
            with open(os.path.join(tmp, "pkg", "core.py"), "w") as f:
                f.write("def answer():\n    return 42\n")
            spec = {"urls": [["pkg/__init__.py", "pkg/__init__.py"], ["pkg/core.py", "pkg/core.py"]], "version": "1.0"}
            with open(os.path.join(tmp, "package.json"), "w") as f:
                json.dump(spec, f)
            out = b.ok("mip", "install", os.path.join(tmp, "package.json"))
            assert "Installing: /lib/pkg/core.py" in out, out
        assert b.exists("lib/pkg/core.py")
        assert b.ok("exec", "import pkg; print(pkg.answer())").strip() == "42"
    finally:
        b.close()


def test_vboard_mpremote_repl_enter_and_exit():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import pty
    import select
    import sys
    import termios
    import time

    b = _Board()
    try:
        mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
        pid, fd = pty.fork()
        if pid == 0:  # child: mpremote's console needs a terminal
            os.execv(mpremote, [mpremote, "connect", b.port, "repl"])
        try:
            seen = b""
            end = time.monotonic() + _TIMEOUT
            sent = False
            while b"42\r\n" not in seen and time.monotonic() < end:
                if not sent and b"Use Ctrl-]" in seen and not termios.tcgetattr(fd)[3] & termios.ICANON:
                    os.write(fd, b"\r6*7\r")  # mpremote's console is in raw mode now
                    sent = True
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    seen += os.read(fd, 1024)
            assert b"42\r\n" in seen, seen
            os.write(fd, b"\x1d")  # Ctrl-]: leave mpremote's repl
            end = time.monotonic() + _TIMEOUT
            status = None
            while status is None and time.monotonic() < end:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = st
                else:
                    time.sleep(0.05)
            assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        finally:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
            os.close(fd)
    finally:
        b.close()


def test_vboard_stops_cleanly_on_sigterm():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import signal

    b = _Board()
    try:
        port = b.port
        assert os.path.islink(port)
        b.proc.send_signal(signal.SIGTERM)
        assert b.proc.wait(_TIMEOUT) == 0
        assert not os.path.lexists(port)  # the port link is gone with the board
        assert "stopped" in b.proc.stderr.read()
    finally:
        b.close()
