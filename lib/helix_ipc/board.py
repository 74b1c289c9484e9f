# helix_ipc.board: the active board profile (timer, queue sizes, LED, mpy arch).
#
# A profile is a plain dict (boards/<target>.py defines PROFILE). On a board, deployment
# copies the target's profile to /lib/helix_board.py; `profile()` imports it once. When no
# `helix_board` module exists (the host, or a board deployed without one) the host
# profile below is used. `set_profile()` overrides the choice (tests, virtual boards).
# Task context only (the profile is read when objects are created, never in an IRQ).

_host = None


def host_profile():
    """The host profile: the same values as boards/unix.py (host_tests/test_board.py
    checks it). Built on first use, so a board with a helix_board module never pays for it."""
    global _host
    if _host is None:
        _host = _host_dict()
    return _host


def _host_dict():
    return {
        "name": "unix",
        "description": "host: CPython or the MicroPython unix port",
        "platform": "linux",
        "micropython_board": "standard",
        "mpy_arch": None,
        "timer_id": -1,
        "timer_hard": True,
        "tick_hz": 100,
        "max_tick_hz": 10000,
        "isr_capacity": 32,  # as on the boards: the host tests run the ring size a board has
        "channel_capacity": 32,
        "mailbox_capacity": 64,
        "schedule_depth": 4,
        "led_pin": "LED",
        "led_active_high": True,
        "lib_dir": None,
        "usb_ids": (),
        "has_threads": True,
    }


# field -> accepted types (checked by validate(); None allowed where listed)
_INT = (int,)
_FIELDS = {
    "name": (str,),
    "timer_id": _INT,
    "timer_hard": (bool,),
    "tick_hz": _INT,
    "max_tick_hz": _INT,
    "isr_capacity": _INT,
    "channel_capacity": _INT,
    "mailbox_capacity": _INT,
    "schedule_depth": _INT,
    "led_pin": (int, str, type(None)),
    "mpy_arch": (str, type(None)),
}
REQUIRED = tuple(_FIELDS)

_active = None


def validate(p):
    """Check a profile dict; raises TypeError/ValueError naming the bad field.
    Returns p."""
    if not isinstance(p, dict):
        raise TypeError("profile must be a dict, got %s" % type(p).__name__)
    for field in _FIELDS:
        if field not in p:
            raise ValueError("profile %r lacks field %r" % (p.get("name"), field))
        value = p[field]
        if not isinstance(value, _FIELDS[field]) or (
            isinstance(value, bool) and field != "timer_hard"
        ):
            raise TypeError("profile field %r has a bad type: %r" % (field, value))
    for field in ("tick_hz", "max_tick_hz", "isr_capacity", "channel_capacity", "mailbox_capacity"):
        if p[field] < 1:
            raise ValueError("profile field %r must be >= 1, got %d" % (field, p[field]))
    if p["tick_hz"] > p["max_tick_hz"]:
        raise ValueError("profile tick_hz %d exceeds max_tick_hz %d" % (p["tick_hz"], p["max_tick_hz"]))
    cdc = p.get("link_usb_cdc", False)  # optional: serve the link on a second USB CDC interface
    if cdc is not True and cdc is not False:
        raise TypeError("profile field 'link_usb_cdc' must be True or False, got %r" % (cdc,))
    return p


def _load():
    try:
        import helix_board
    except ImportError:
        return host_profile()
    return validate(helix_board.PROFILE)


def profile():
    """The active profile dict (do not modify it): helix_board.PROFILE if that module
    is importable, else the host profile."""
    global _active
    if _active is None:
        _active = _load()
    return _active


def get(field):
    """One field of the active profile."""
    return profile()[field]


def set_profile(p):
    """Make p (a profile dict) the active profile; None goes back to auto-detection.
    Objects created earlier keep the values they read."""
    global _active
    _active = None if p is None else validate(p)
