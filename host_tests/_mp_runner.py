# _mp_runner: runs one host test function under the MicroPython unix port.
# Invoked by conftest.py as: micropython _mp_runner.py <test_file.py> <test_name> [--board]
# --board: board mode (support.enter_board_mode(): `sys.exc_info` hidden from the library
# and the test, as on rp2/esp32) entered before the test module (and so helix_ipc) is
# imported, and proven after the test ran (@@HELIX-BOARD-OK@@, which conftest requires).
# Prints a result marker on stdout; tracebacks go to stderr in MicroPython's own format.
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here)
sys.path.insert(0, _here + "/../lib")

import support  # noqa: E402


def main():
    path, name = sys.argv[1], sys.argv[2]
    board = "--board" in sys.argv[3:]
    if board:
        try:
            support.enter_board_mode()
        except RuntimeError as e:
            print("@@HELIX-FAIL@@ board mode:", e.args[0])
            return 1
    modname = path.rsplit("/", 1)[-1][:-3]
    try:
        module = __import__(modname)
        fn = getattr(module, name)
        fn()
    except support.Skipped as e:
        print("@@HELIX-SKIP@@", e.args[0] if e.args else "")
        return 0
    except BaseException as e:  # noqa: B036 - reported to pytest, then non-zero exit
        sys.print_exception(e, sys.stderr)
        print("@@HELIX-FAIL@@")
        return 1
    if board:
        problems = support.board_mode_problems()
        if problems:
            print("@@HELIX-FAIL@@ board mode did not hold: " + "; ".join(problems))
            return 1
        print("@@HELIX-BOARD-OK@@")
    print("@@HELIX-PASS@@")
    return 0


sys.exit(main())
