# usbcdc_standin: a stand-in for micropython-lib's usb-device-cdc (`usb.device`,
# `usb.device.cdc`), written into a virtual board's /lib for test_link_usb_cdc.py: that
# package cannot be installed here (micropython-lib is not on PyPI), so it was not run.
# The stand-in keeps the calls helix_link makes (usb.device.get().init(*itfs,
# builtin_driver=), CDCInterface(), .init(baudrate=.., timeout=, txbuf=, rxbuf=, flow=),
# .is_open(), .dtr, read/readinto/write and the stream ioctl (poll, flush)) with the
# real signatures, and backs the interface with a pty the test drives: usb.device's
# init() "enumerates" (opens the pty: is_open() true), and the host "opens the port"
# (DTR) when the test creates the board file /cdc_dtr; /cdc_unplug pulls the cable
# (closes the pty; like the real one, poll reports HUP only when asked) until it is
# removed. Each call is logged to
# /usb_standin.log for the test to check. Plain strings: MicroPython imports this too.

USB_DEVICE = """\
# usb.device stand-in (host_tests/usbcdc_standin.py): not micropython-lib's
_dev = None


def _log(text):
    with open("/usb_standin.log", "a") as f:
        f.write(text + "\\n")


class _Device:
    def __init__(self):
        self.itfs = ()

    def init(self, *itfs, builtin_driver=False, **kwargs):
        _log("device init %d interface(s) builtin_driver=%r" % (len(itfs), builtin_driver))
        self.itfs = itfs
        for itf in itfs:
            itf._enumerated()


def get():
    global _dev
    if _dev is None:
        _dev = _Device()
    return _dev
"""

CDC = """\
# usb.device.cdc stand-in (host_tests/usbcdc_standin.py): not micropython-lib's
import io
import select
import time

from usb.device import _log

PTY = %r  # the board's path of the pty whose other end the test holds (the USB host)
DTR = "/cdc_dtr"  # exists: the host program has opened the port
UNPLUG = "/cdc_unplug"  # exists: the cable is out (the pty closed); removed: back in


def _exists(path):
    try:
        open(path).close()
    except OSError:
        return False
    return True


class CDCInterface(io.IOBase):
    def __init__(self, **kwargs):
        self._f = None
        self._enum = False
        self._checked = 0
        self.init(**kwargs)

    def init(self, baudrate=9600, bits=8, parity="N", stop=1, timeout=1000, txbuf=256, rxbuf=256, flow=0):
        if flow != 0:
            raise NotImplementedError
        if not (txbuf and rxbuf >= 64):
            raise ValueError
        self._timeout = timeout
        _log("cdc init timeout=%%r txbuf=%%d rxbuf=%%d" %% (timeout, txbuf, rxbuf))

    def _enumerated(self):  # the USB host configured the device
        self._enum = True
        self._f = open(PTY, "r+b")
        self._p = select.poll()
        self._p.register(self._f, select.POLLIN)

    def _plug(self):  # the cable, looked at every 50 ms at most
        now = time.ticks_ms()
        if time.ticks_diff(now, self._checked) < 50:
            return
        self._checked = now
        if _exists(UNPLUG):
            if self._f is not None:
                _log("unplugged")
                self._f.close()
                self._f = None
        elif self._f is None and self._enum:
            _log("plugged in again")
            self._enumerated()

    def is_open(self):
        self._plug()
        return self._f is not None

    @property
    def dtr(self):
        return self._f is not None and _exists(DTR)

    def _readable(self):
        return self._f is not None and bool(self._p.poll(0))

    def read(self, n):
        if not self._readable():
            return None  # as the real one with timeout=0 and nothing buffered
        return self._f.read(n)

    def readinto(self, b):
        if not self._readable():
            return None
        return self._f.readinto(b)

    def write(self, b):
        return self._f.write(b) if self._f is not None else 0

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            self._plug()
            if self._f is None:
                return arg & 0x10  # HUP
            return (arg & 0x04) | (1 if (arg & 1) and self._readable() else 0)
        if req == 1:  # MP_STREAM_FLUSH
            return 0
        return -22
"""


def files(board_pty):
    """{board path: text}: the stand-in package in /lib, as `mpremote mip install
    usb-device-cdc` would put the real one; its interface on the pty the board opens at
    board_pty (linkfixture.SecondLine().board_path)."""
    return {"lib/usb/device/__init__.py": USB_DEVICE, "lib/usb/device/cdc.py": CDC % board_pty}
