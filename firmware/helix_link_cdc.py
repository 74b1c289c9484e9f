# helix_link_cdc: the serial link on a second USB CDC interface (micropython-lib's
# usb-device-cdc), for a board profile with "link_usb_cdc": True. helix_link.serve()
# imports it only then, so a board without it pays nothing. The interface is a stream
# (read/readinto/write, the stream ioctl): it is served by helix_link.serve_line, as the
# REPL line and a link_uart are. See docs/link.md, "Second lines". micropython-lib is
# not installable where this was written: host_tests/test_link_usb_cdc.py runs this file
# against a stand-in package (host_tests/usbcdc_standin.py), not the real one.
# Task context (the event loop) only. MicroPython only.

MISSING = ("helix_link: link_usb_cdc needs micropython-lib's usb-device-cdc: mpremote mip install usb-device-cdc"
           " (serving the other lines only)")


def start(system, name):
    """Open the interface and serve it in a task; returns it, or None after one printed
    line when the package is not installed."""
    import asyncio

    cdc = open_cdc()
    if cdc is not None:
        asyncio.create_task(serve(system, cdc, name))
    return cdc


def open_cdc():
    """Add a second USB CDC interface next to the REPL's: the board re-enumerates on USB
    once. The CDCInterface (a stream), or None (one line printed) without the package."""
    try:
        import usb.device
        from usb.device.cdc import CDCInterface
    except ImportError:
        print(MISSING)
        return None
    # serve_line reads only what poll says is there, so the timeout only bounds a write that
    # finds txbuf full: it waits up to 50 ms for the host to drain it (~1 MB/s while a program
    # reads the port) instead of cutting the frame (timeout=0 would: frames go up to the
    # host's max_frame, 4096 B as base64). Given to the constructor: it allocates the buffers once.
    cdc = CDCInterface(timeout=50, txbuf=1024)
    usb.device.get().init(cdc, builtin_driver=True)  # builtin_driver: the REPL keeps its own CDC
    return cdc


async def serve(system, cdc, name):
    """Serve the link on a CDCInterface: wait (polling, 100 ms) until the host has
    configured the device and opened the port (DTR), then serve it with serve_line. An
    unplugged cable does not end the stream (its poll reports no HUP unless asked): the
    link goes down after dead_ms and up when a host says HELLO again. Should the input
    end, it waits for the host again. Runs until cancelled."""
    import asyncio

    from helix_link import serve_line

    while True:
        while not (cdc.is_open() and cdc.dtr):
            await asyncio.sleep_ms(100)
        await serve_line(system, cdc, cdc, name, "usb_cdc")
        await asyncio.sleep_ms(100)  # a line that ends at once does not spin the loop
