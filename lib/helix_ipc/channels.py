# helix_ipc.channels: bounded ring-buffer channels and one-shot channels.
#
# Storage is one list allocated at creation; steady-state send/recv allocate nothing.
#
# Contexts and concurrency (the Rust mpsc model: many producers, one consumer):
# - `Sender.send` / `try_send`: task context (main loop, scheduler callback, any thread).
#   Every send takes the channel's lock (where threads exist), whatever the number of
#   senders: there is no lock-free mode to switch out of while a send is in flight, so
#   clone() and close() may run in any thread at any time. A refusal because the queue
#   is full is counted while the lock is held, so `stats().dropped` is exact.
# - `Sender.send_from_isr`: hard-IRQ safe (no allocation, never raises, never waits). It
#   only tries the lock: when a send on another thread or core holds it at that instant
#   (or, rarely, the send the IRQ interrupted, in the instant between taking the lock and
#   masking IRQs), the item is refused (False) and counted on that Sender (summed into
#   `stats().dropped`), as a full or closed channel is. Task sends mask IRQs while they
#   write where machine.disable_irq exists, so an IRQ on their core waits instead.
# - The Receiver belongs to one thread at a time (scheduler, main loop or a thread); it
#   takes no lock: the producers own the write counter, the consumer the read counter.
# - clone(), close(), stats(): task context, any thread. Give each thread or IRQ that
#   sends its own Sender (`tx.clone()`). Where there are no threads (bare metal), the
#   lock is the IRQ mask.
# - `Receiver.set_notify(fn)`: the hook for the asyncio layer to wake a waiting task:
#   fn() runs after each send or send_from_isr that queued an item (a task may wait to
#   receive), after each try_recv that took one (a task may wait for room) and after each
#   close() of a sender or the receiver, outside the lock, in the caller's context (a
#   hard IRQ for send_from_isr: fn must not allocate then). While a hook is set, sends
#   take the checked path: the fast path's one comparison against `_limit` (capacity,
#   or 0) stands for "open, not full, no hook"; try_recv checks the hook itself.
# Counters are kept modulo 2**29 so that they stay small ints on 32-bit boards.
# The fast paths of Sender.send and Receiver.try_recv are native code
# (`@micropython.native`; refusals and the empty case are bytecode): with the lock, their
# bytecode versions missed the BENCH.md goal (send + try_recv <= 1.5x the ring floor:
# ~1.6x on the unix port, ~1.3-1.4x native). Native code costs ~470 B more .mpy on armv6m.

import sys

from ._compat import const, new_lock, disable_irq, enable_irq, machine_module, micropython
from .errors import ChannelFull, ChannelClosed, ChannelEmpty, check_int

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401

_CMASK = const((1 << 29) - 1)  # free-running counters wrap here (a multiple of any buffer size)
_MAX_CAPACITY = const(65536)

_STAT_FIELDS = ("sent", "received", "queue_length", "capacity", "dropped")

# Where machine.disable_irq exists and IRQ handlers may be hard (rp2, bare metal, the host
# machine), a task-context send also masks IRQs while it holds the lock, so that an IRQ
# on its core waits a few microseconds instead of finding the lock held. Not on CPython
# or the unix port (nothing to mask), nor on esp32, which runs every Python IRQ handler
# soft (scheduled: never inside native code).
_MASK_IRQ = hasattr(machine_module(), "disable_irq") and sys.platform != "esp32"


class _IrqLock:
    # The lock where there are no threads: masking IRQs excludes them.
    def acquire(self, _wait=1):
        self._s = disable_irq()
        return True

    def release(self):
        enable_irq(self._s)


# -- shared by Sender and Receiver (`_rx` is the Receiver, which holds the state) -----------
def _len(self):
    rx = self._rx
    return (rx._sent - rx._received) & _CMASK


def _is_empty(self):
    return _len(self) == 0


def _is_full(self):
    return _len(self) >= self.capacity


_Record = None  # type: Any  # _record.Record, loaded by the first stats(): most programs never ask


def _stats(self):
    # sent, received, queue_length, capacity, dropped, read together under the lock
    global _Record
    if _Record is None:
        from ._record import Record as _Record
    rx = self._rx
    lock = rx._lock
    lock.acquire()  # nothing below allocates until the release: a MemoryError cannot hold it
    dropped = rx._dropped
    for s in rx._senders:
        dropped += s._busy
    sent = rx._sent
    received = rx._received
    lock.release()
    return _Record(_STAT_FIELDS, (sent, received, (sent - received) & _CMASK, rx.capacity, dropped & _CMASK))


def _enter(self):
    return self


def _exit(self, _t, _v, _tb):
    self.close()


def _closed_send(_item):
    raise ChannelClosed("this sender is closed")


class Sender:
    """The sending end of a channel. Clone it for each thread or IRQ that sends.

    `send(item)` / `try_send(item)`: task context; raise ChannelFull or ChannelClosed.
    `send_from_isr(item) -> bool`: hard-IRQ safe; False means dropped (and counted)."""

    def __init__(self, rx):
        self._rx = rx
        self.capacity = rx.capacity
        # bound once, so that `tx.send` allocates nothing; _closed_send once closed
        self.send = self.try_send = rx._push_masked if _MASK_IRQ else rx._push
        self._busy = 0  # send_from_isr refusals while the lock was held (written here only)

    def send_from_isr(self, item):
        rx = self._rx
        lock = rx._lock
        if not lock.acquire(0):
            self._busy = (self._busy + 1) & _CMASK
            return False
        s = rx._sent
        why = 2 if self.send is _closed_send else rx._why(s)
        if why == 0:
            rx._buf[s & rx._mask] = item
            rx._sent = (s + 1) & _CMASK
            lock.release()
            why = rx._notify
            if why is not None:
                why()
            return True
        rx._dropped = (rx._dropped + 1) & _CMASK
        lock.release()
        return False

    def clone(self):
        """A new open Sender for the same channel (ChannelClosed if this one is closed)."""
        if self.send is _closed_send:
            _closed_send(None)  # raises ChannelClosed
        rx = self._rx
        s = Sender(rx)  # built first: a MemoryError here or below changes nothing
        lock = rx._lock
        lock.acquire()
        try:
            rx._senders.append(s)
        finally:
            lock.release()
        return s

    def close(self):
        """Close this handle. When the last sender closes, the receiver still gets
        every queued item, then ChannelClosed. Closing twice does nothing."""
        if self.send is _closed_send:
            return
        rx = self._rx
        lock = rx._lock
        lock.acquire()
        self.send = self.try_send = _closed_send
        rx._senders.remove(self)
        rx._dropped = (rx._dropped + self._busy) & _CMASK
        self._busy = 0
        rx._relimit()  # after the last one, a send bound before its close is refused too
        lock.release()
        if rx._notify is not None:  # a task waiting to receive may see the end
            rx._notify()

    def is_closed(self):
        return self.send is _closed_send or self._rx._closed

    def send_async(self, item, timeout_ms=None):
        """`await tx.send_async(item, timeout_ms=None)`: see helix_ipc.aio."""
        from .aio import send
        return send(self, item, timeout_ms)

    __len__ = _len
    is_empty = _is_empty
    is_full = _is_full
    stats = _stats
    __enter__ = _enter
    __exit__ = _exit


class Receiver:
    """The receiving end of a channel, and the channel's state; one thread receives at
    a time. `try_recv()`: the oldest item; raises ChannelEmpty when empty and open,
    ChannelClosed when empty and closed (this receiver, or every sender).
    `set_notify(fn)`: see the module header."""

    def __init__(self, capacity):
        size = 1
        while size < capacity:
            size <<= 1
        self._buf = [None] * size
        self._mask = size - 1
        self.capacity = capacity
        self._limit = capacity  # the fast path's bound; 0: every send takes the checked path
        self._sent = 0  # written by producers, under the lock
        self._received = 0  # written by the consumer only
        self._dropped = 0  # under the lock
        self._senders = []  # open Sender handles, changed under the lock
        self._lock = new_lock() or _IrqLock()
        self._closed = False  # the receiver was closed
        self._notify = None
        self._rx = self
        self.try_recv = self._pop  # bound once: `rx.try_recv` allocates nothing

    @micropython.native
    def _push(self, item):
        # Sender.send / try_send (bound on each Sender). Native: only the fast path.
        lock = self._lock
        lock.acquire()
        s = self._sent
        if ((s - self._received) & _CMASK) < self._limit:
            self._buf[s & self._mask] = item
            self._sent = (s + 1) & _CMASK
            lock.release()
            return
        self._checked(s, item)

    @micropython.native
    def _push_masked(self, item):
        # _push with IRQs masked from just after taking the lock to just after releasing
        # it (see _MASK_IRQ): an IRQ that came meanwhile runs once the lock is free.
        lock = self._lock
        lock.acquire()  # first: never wait for the lock with IRQs masked
        st = disable_irq()
        s = self._sent
        if ((s - self._received) & _CMASK) < self._limit:
            self._buf[s & self._mask] = item
            self._sent = (s + 1) & _CMASK
            lock.release()
            enable_irq(st)
            return
        enable_irq(st)
        self._checked(s, item)

    def _checked(self, s, item):
        # The checked path of a send, entered with the lock held: queue the item (a
        # notify hook is set), or count the refusal while still locked and raise.
        why = self._why(s)
        if why == 0:
            self._buf[s & self._mask] = item
            self._sent = (s + 1) & _CMASK
            self._lock.release()
            why = self._notify
            if why is not None:
                why()
            return
        if why == 1:
            self._dropped = (self._dropped + 1) & _CMASK  # under the lock: exact
            self._lock.release()
            raise ChannelFull("channel full (capacity %d)" % self.capacity)
        self._lock.release()
        raise ChannelClosed("channel closed")

    def _why(self, s):
        # Under the lock: 0 the item may go in, 1 the queue is full, 2 the channel is closed.
        if self._closed or not self._senders:
            return 2
        if ((s - self._received) & _CMASK) >= self.capacity:
            return 1
        return 0

    def _relimit(self):
        # Under the lock: the fast path only while open, with a sender, and no hook.
        self._limit = 0 if self._closed or not self._senders or self._notify else self.capacity

    def set_notify(self, fn):
        """fn() (None: no hook) runs after each send that queued an item and each
        try_recv that took one (see the module header)."""
        lock = self._lock
        lock.acquire()
        self._notify = fn
        self._relimit()
        lock.release()

    @micropython.native
    def _pop(self):
        # try_recv(). Native: only the fast path.
        r = self._received
        if r != self._sent:
            buf = self._buf
            i = r & self._mask
            item = buf[i]
            buf[i] = None
            self._received = (r + 1) & _CMASK
            if self._notify is not None:  # a task may wait for room
                self._notify()
            return item
        return self._empty(r)

    def _empty(self, r):
        if self._senders and not self._closed:
            raise ChannelEmpty("channel empty")
        if r != self._sent:  # the last sender sent, then closed, after the first look
            return self._pop()
        raise ChannelClosed("channel closed")

    def __iter__(self):
        # Yields what is queued now and stops; never blocks.
        while self._received != self._sent:
            yield self._pop()

    def drain(self):
        """Every item queued now, oldest first, as a list."""
        return list(self)

    def close(self):
        """Refuse further sends (they raise ChannelClosed); queued items stay readable."""
        lock = self._lock
        lock.acquire()
        self._closed = True
        self._relimit()
        lock.release()
        if self._notify is not None:  # waiting senders see it closed
            self._notify()

    def is_closed(self):
        return self._closed or not self._senders

    def recv(self, timeout_ms=None):
        """`await rx.recv(timeout_ms=None)`: see helix_ipc.aio."""
        from .aio import recv
        return recv(self, timeout_ms)

    def __aiter__(self):
        from .aio import Items
        return Items(self)

    __len__ = _len
    is_empty = _is_empty
    is_full = _is_full
    stats = _stats


def channel(capacity):
    """A bounded channel: returns (Sender, Receiver). capacity is 1..65536."""
    check_int(capacity, "capacity", 1, _MAX_CAPACITY)
    rx = Receiver(capacity)
    tx = Sender(rx)
    rx._senders.append(tx)
    return tx, rx


def default_channel():
    """A channel of the default capacity (32)."""
    return channel(32)


# -- one-shot channels -------------------------------------------------------------------
# The OneShotReceiver holds the state; the sender drops its reference once used.
_EMPTY = const(0)
_READY = const(1)
_TAKEN = const(2)
_ABANDONED = const(3)  # the sender closed without sending, or the receiver closed first


class OneShotSender:
    """Sends exactly one value. A second send raises ChannelClosed."""

    _rx = None  # type: OneShotReceiver | None  # the receiver (set by oneshot()) until used

    def send(self, value):
        rx = self._rx
        if rx is None:
            raise ChannelClosed("oneshot already used")
        self._rx = None
        if rx._state == _ABANDONED:  # the receiver closed
            raise ChannelClosed("oneshot closed")
        rx._value = value
        rx._state = _READY
        if rx._notify is not None:
            rx._notify()

    def close(self):
        """Give up without sending: the receiver then gets ChannelClosed."""
        rx = self._rx
        if rx is not None:
            self._rx = None
            rx.close()

    def is_closed(self):
        return self._rx is None

    __enter__ = _enter
    __exit__ = _exit


class OneShotReceiver:
    """Receives the one value: ChannelEmpty until sent, ChannelClosed once taken."""

    _state = _EMPTY
    _value = None
    _notify = None  # the asyncio layer's hook: called once sent or closed

    def try_recv(self):
        s = self._state
        if s == _READY:
            value = self._value
            self._value = None
            self._state = _TAKEN
            return value
        if s == _EMPTY:
            raise ChannelEmpty("oneshot: nothing sent yet")
        raise ChannelClosed("oneshot: value taken" if s == _TAKEN else "oneshot closed")

    def is_ready(self):
        return self._state == _READY

    def close(self):
        if self._state == _EMPTY:
            self._state = _ABANDONED
            if self._notify is not None:
                self._notify()

    def recv(self, timeout_ms=None):
        """`await oneshot_rx.recv(timeout_ms=None)`: see helix_ipc.aio."""
        from .aio import recv_once
        return recv_once(self, timeout_ms)


def oneshot():
    """A one-shot channel: returns (OneShotSender, OneShotReceiver)."""
    rx = OneShotReceiver()
    tx = OneShotSender()
    tx._rx = rx
    return tx, rx
