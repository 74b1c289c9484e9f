# Board profiles: every boards/*.py is complete and valid; the host fallback equals
# boards/unix.py; the library reads the active profile (helix_board, set_profile).
import sys

from support import raises

import helix_ipc.board as board

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
BOARDS = _here + "/../boards"
NAMES = ("rp2040", "esp32", "unix")


def load_profile(name):
    """boards/<name>.py's PROFILE, read the way deployment tooling reads it."""
    ns = {}
    with open(BOARDS + "/" + name + ".py") as f:
        exec(f.read(), ns)
    return ns["PROFILE"]


def test_every_profile_is_valid():
    for name in NAMES:
        p = load_profile(name)
        assert board.validate(p) is p
        assert p["name"] == name


def test_profile_values_match_the_boards():
    rp = load_profile("rp2040")
    assert (rp["timer_id"], rp["timer_hard"], rp["mpy_arch"], rp["led_pin"]) == (-1, True, "armv6m", 25)
    esp = load_profile("esp32")
    assert (esp["timer_id"], esp["timer_hard"], esp["mpy_arch"], esp["led_pin"]) == (0, False, "xtensawin", 2)
    host = load_profile("unix")
    assert host["mpy_arch"] is None


def test_host_fallback_equals_boards_unix():
    assert board.host_profile() == load_profile("unix")


def test_active_profile_defaults_to_host_and_can_be_set():
    board.set_profile(None)
    try:
        assert board.profile() is board.host_profile()  # no helix_board module on the host
        assert board.get("isr_capacity") == board.host_profile()["isr_capacity"]
        esp = load_profile("esp32")
        board.set_profile(esp)
        assert board.profile() is esp
        assert board.get("timer_hard") is False
    finally:
        board.set_profile(None)
    assert board.profile() is board.host_profile()


def test_helix_board_module_is_picked_up():
    # What a deployed board has: /lib/helix_board.py = boards/<target>.py
    class FakeModule:
        PROFILE = load_profile("rp2040")

    sys.modules["helix_board"] = FakeModule
    board.set_profile(None)
    try:
        assert board.profile()["name"] == "rp2040"
    finally:
        del sys.modules["helix_board"]
        board.set_profile(None)
    assert board.profile()["name"] == "unix"


def test_bad_profiles_refused():
    good = load_profile("rp2040")
    raises(TypeError, board.validate, [1, 2])
    for field in board.REQUIRED:
        p = dict(good)
        del p[field]
        e = raises(ValueError, board.validate, p)
        assert field in str(e)
    p = dict(good)
    p["tick_hz"] = "100"
    assert "tick_hz" in str(raises(TypeError, board.validate, p))
    p = dict(good)
    p["isr_capacity"] = True
    raises(TypeError, board.validate, p)
    p = dict(good)
    p["isr_capacity"] = 0
    raises(ValueError, board.validate, p)
    p = dict(good)
    p["tick_hz"] = p["max_tick_hz"] + 1
    raises(ValueError, board.set_profile, p)
    assert board.profile()["name"] == "unix"  # a refused profile changes nothing
