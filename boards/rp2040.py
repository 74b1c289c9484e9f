# Board profile: Raspberry Pi Pico (RP2040). Plain data, no imports, no work at import.
# Deployed to the board as /lib/helix_board.py (see boards/README.md).
PROFILE = {
    "name": "rp2040",
    "description": "Raspberry Pi Pico (RP2040, dual Cortex-M0+)",
    "platform": "rp2",  # sys.platform on the board
    "micropython_board": "RPI_PICO",  # firmware build name (ports/rp2 BOARD=)
    "mpy_arch": "armv6m",  # mpy-cross -march=
    # ticks: the rp2 port only has virtual timers (id -1); they may run hard callbacks
    "timer_id": -1,
    "timer_hard": True,
    "tick_hz": 100,
    "max_tick_hz": 10000,
    # queue sizes
    "isr_capacity": 32,
    "channel_capacity": 32,
    "mailbox_capacity": 64,
    "schedule_depth": 8,  # micropython.schedule queue depth of the firmware
    # status LED: GPIO25 on the Pico ("LED" on the Pico W, where it hangs off the radio)
    "led_pin": 25,
    "led_active_high": True,
    "button_pin": None,  # firmware's example button: the Pico's BOOTSEL button is not a GPIO: no button IRQ
    # deployment
    "lib_dir": "/lib",
    "usb_ids": ((0x2E8A, 0x0005),),  # (VID, PID) of MicroPython's USB CDC on rp2
    "has_threads": True,  # _thread runs on core 1
    # the serial link on a second USB CDC interface (helix_link; needs micropython-lib's
    # usb-device-cdc). Off: turning it on re-enumerates USB when the firmware starts (the
    # REPL port drops once; a tool attached at boot loses it) and adds a second port
    "link_usb_cdc": False,
}
