# boardmode: "board mode" on the unix port, the one implementation (support.py,
# _mp_runner.py via support, tools/bench/suite.py, footprint_device.py and fit.py use it;
# it is a module of its own so that the small-heap fit rows load only this).
#
# A board (rp2, esp32, bare metal) has no sys.exc_info. Board mode runs the library on
# the unix port as a board sees it: a stand-in for `sys` without exc_info is put into
# sys.modules before helix_ipc is imported, so every later `import sys` (in the library,
# in a test) gets the stand-in. problems() is how callers prove it held.
import sys


def enter():
    """Install the sys stand-in (no exc_info). Must run before helix_ipc is imported:
    raises RuntimeError if a helix_ipc module is loaded already."""
    loaded = [m for m in sys.modules if m == "helix_ipc" or m.startswith("helix_ipc.")]
    if loaded:
        raise RuntimeError("board mode must be entered before helix_ipc is imported "
                           "(already loaded: %s)" % ", ".join(sorted(loaded)))
    real = sys.modules.get("sys", sys)
    standin = type("sys", (), {})()
    for k in dir(real):
        if k != "exc_info" and not k.startswith("__"):
            setattr(standin, k, getattr(real, k))
    sys.modules["sys"] = standin
    return standin


def problems(load_library=True):
    """What breaks board mode now: [] when `import sys` lacks exc_info and so does every
    loaded helix_ipc module's `sys`. With load_library, imports helix_ipc._compat first
    (a library module that does `import sys`) so the check always covers one."""
    import sys as visible  # the stand-in, if board mode holds

    found = []
    if hasattr(visible, "exc_info"):
        found.append("`import sys` still has exc_info")
    if load_library:
        try:
            __import__("helix_ipc._compat")
        except ImportError as e:
            found.append("cannot import helix_ipc._compat: %s" % e)
    for name in sorted(visible.modules):
        if name != "helix_ipc" and not name.startswith("helix_ipc."):
            continue
        # The module's own globals (no getattr: a lazy package __getattr__ would run).
        mod_sys = getattr(visible.modules[name], "__dict__", {}).get("sys")
        if mod_sys is not None and hasattr(mod_sys, "exc_info"):
            found.append("%s sees sys.exc_info" % name)
    return found
