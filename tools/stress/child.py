# tools/stress/child.py: runs one stress scenario in this interpreter (CPython or the
# MicroPython unix port) and prints one result line for tools/stress/run.py:
#   @@STRESS@@ pass [["figure", value], ...]
#   @@STRESS@@ skip <reason>
#   @@STRESS@@ fail <error>          (the traceback goes to stderr)
# Usage: <python> tools/stress/child.py [--board] <scenario> <scale>
# --board: "board mode" on the unix port, the library imported with sys.exc_info
# hidden (as on rp2/esp32), through a sys stand-in installed before the import.
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here)
sys.path.insert(0, _here + "/../../lib")


def _board_mode():
    s = type("sys", (), {})()
    for k in dir(sys):
        if k != "exc_info" and not k.startswith("__"):
            setattr(s, k, getattr(sys, k))
    sys.modules["sys"] = s


def main(argv):
    board = "--board" in argv
    args = [a for a in argv if a != "--board"]
    if len(args) != 2:
        print("usage: child.py [--board] <scenario> <scale>")
        return 2
    if board:
        _board_mode()
    import json

    import scenarios

    fn = scenarios.get(args[0])
    try:
        figures = fn(float(args[1]))
    except scenarios.Skip as e:
        print("@@STRESS@@ skip", e.args[0] if e.args else "")
        return 0
    except Exception as e:
        if hasattr(sys, "print_exception"):
            sys.print_exception(e, sys.stderr)
        else:
            import traceback

            traceback.print_exc()
        print("@@STRESS@@ fail", ("%s: %s" % (type(e).__name__, e)).replace("\n", " "))
        return 1
    print("@@STRESS@@ pass", json.dumps([[k, v] for k, v in figures]))
    return 0


sys.exit(main(sys.argv[1:]))
