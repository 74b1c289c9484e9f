# Board profile: ESP32 DevKitC (ESP32-WROOM-32). Plain data, no imports, no work at import.
# Deployed to the board as /lib/helix_board.py (see boards/README.md).
PROFILE = {
    "name": "esp32",
    "description": "ESP32 DevKitC (ESP32-WROOM-32, dual Xtensa LX6)",
    "platform": "esp32",
    "micropython_board": "ESP32_GENERIC",
    "mpy_arch": "xtensawin",
    # ticks: hardware timer group 0 timer 0; the esp32 port runs soft callbacks only
    # (hard=True raises ValueError) and drops a tick when the schedule queue is full
    "timer_id": 0,
    "timer_hard": False,
    "tick_hz": 100,
    "max_tick_hz": 1000,
    "isr_capacity": 32,
    "channel_capacity": 32,
    "mailbox_capacity": 64,
    "schedule_depth": 8,
    "led_pin": 2,  # the blue LED of most DevKitC clones (the original has none)
    "led_active_high": True,
    "button_pin": 0,  # firmware's example button: the BOOT button (GPIO0, active low)
    "lib_dir": "/lib",
    "usb_ids": ((0x10C4, 0xEA60), (0x1A86, 0x7523)),  # CP210x and CH340 bridges
    "has_threads": True,  # _thread with a GIL
}
