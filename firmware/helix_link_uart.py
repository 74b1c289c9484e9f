# helix_link_uart: the serial link on a machine.UART, for a board profile that names one
# (`"link_uart": {"id": 1, "baudrate": 115200, "tx": 4, "rx": 5}`; tx/rx pin numbers where
# the port needs them, as rp2 does, else the port's defaults). helix_link.serve() imports
# it only then, so a board without a link UART pays nothing for this code. The UART is a
# stream (readinto/write, pollable): it is served by helix_link.serve_line, as the REPL
# line is. Task context (the event loop) only. MicroPython only.


def start(system, name, cfg):
    """Open the UART `cfg` names and serve it in a task; returns the UART."""
    import asyncio

    from helix_ipc._compat import machine_module
    from helix_link import serve_line

    m = machine_module()
    pins = {}
    for k in ("tx", "rx"):
        if cfg.get(k) is not None:
            pins[k] = m.Pin(cfg[k])
    uart = m.UART(cfg["id"], cfg.get("baudrate", 115200), **pins)
    asyncio.create_task(serve_line(system, uart, uart, name, "uart"))
    return uart
