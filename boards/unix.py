# Board profile: the host (CPython, or the MicroPython unix port). Plain data.
# This is also the profile helix_ipc uses when no helix_board module is deployed
# (lib/helix_ipc/board.py holds the same values; a test keeps them equal).
PROFILE = {
    "name": "unix",
    "description": "host: CPython or the MicroPython unix port",
    "platform": "linux",  # also darwin etc.; informative only on the host
    "micropython_board": "standard",  # ports/unix VARIANT=
    "mpy_arch": None,  # bytecode-only .mpy (loads on any port); x64 for native code
    # ticks: machine.Timer when a (host) machine module provides one, else a thread
    "timer_id": -1,
    "timer_hard": True,
    "tick_hz": 100,
    "max_tick_hz": 10000,
    "isr_capacity": 32,  # as on the boards: the host tests run the ring size a board has
    "channel_capacity": 32,
    "mailbox_capacity": 64,
    "schedule_depth": 4,
    "led_pin": "LED",  # tools/hostmachine's Pin records what the LED did
    "led_active_high": True,
    "lib_dir": None,  # nothing to deploy: lib/ is used in place
    "usb_ids": (),
    "has_threads": True,
}
