# firmware/helix_link.py's board loop, in process on the unix port (the end-to-end tests
# over the virtual board's pty are test_link_board.py): the check for a waiting byte,
# made for every byte serve_line reads, allocates nothing (select.poll's ipoll; poll(0)
# made a list of tuples each time: 96 B per byte read on 64-bit). helix_link is
# MicroPython-only (asyncio streams, select.ipoll): under CPython these tests skip.
import sys

import support

_FW = __file__.rsplit("/", 2)[0] + "/firmware" if "/" in __file__ else "../firmware"
if _FW not in sys.path:
    sys.path.insert(0, _FW)


def test_the_check_for_a_waiting_byte_is_right_and_allocation_free():
    if not support.MICROPYTHON:
        support.skip("firmware/helix_link.py is MicroPython-only (select.ipoll, asyncio streams)")
    import select
    import socket

    import helix_link

    idle = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, nothing sent to it: no byte waits
    idle.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
    ready = open(__file__, "rb")  # a file always has bytes to read
    try:
        p_idle, p_ready = select.poll(), select.poll()
        p_idle.register(idle, select.POLLIN)
        p_ready.register(ready, select.POLLIN)
        assert helix_link._ready(p_idle) is False
        assert helix_link._ready(p_ready) is True
        assert support.frame_alloc(helix_link._ready, p_ready) == 0
        assert support.frame_alloc(helix_link._ready, p_idle) == 0
        assert support.frame_alloc(p_ready.poll, 0) > 0  # what the loop called before
    finally:
        idle.close()
        ready.close()
