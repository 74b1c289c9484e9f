# _mp_runner: runs one host test function under the MicroPython unix port.
# Invoked by conftest.py as: micropython _mp_runner.py <test_file.py> <test_name>
# Prints a result marker on stdout; tracebacks go to stderr in MicroPython's own format.
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here)
sys.path.insert(0, _here + "/../lib")

import support  # noqa: E402


def main():
    path, name = sys.argv[1], sys.argv[2]
    modname = path.rsplit("/", 1)[-1][:-3]
    module = __import__(modname)
    fn = getattr(module, name)
    try:
        fn()
    except support.Skipped as e:
        print("@@HELIX-SKIP@@", e.args[0] if e.args else "")
        return 0
    except BaseException as e:  # noqa: B036 - reported to pytest, then non-zero exit
        sys.print_exception(e, sys.stderr)
        print("@@HELIX-FAIL@@")
        return 1
    print("@@HELIX-PASS@@")
    return 0


sys.exit(main())
