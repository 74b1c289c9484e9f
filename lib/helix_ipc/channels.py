# helix_ipc.channels: bounded ring-buffer channels and one-shot channels.
#
# Storage is one list allocated at creation; steady-state send/recv allocate nothing.
#
# Concurrency contract (the Rust mpsc model):
# - Many producers, one consumer. Give each thread (or IRQ) that sends its own
#   Sender: `tx.clone()`. While one Sender is open, sends take no lock at all (the
#   ring is single-producer/single-consumer: the producer owns `_sent`, the consumer
#   owns `_received`, each written by one side only). While two or more are open,
#   task-context sends serialise on a lock (where threads exist) with IRQs masked.
# - `Sender.send_from_isr` is hard-IRQ safe: no allocation, no lock, never raises.
# - The Receiver belongs to one thread at a time (scheduler, main loop or a thread).
# - Counters are kept modulo 2**29 so that they stay small ints on 32-bit boards.

from ._compat import const, new_lock, disable_irq, enable_irq
from .errors import ChannelFull, ChannelClosed, ChannelEmpty, check_int

_CMASK = const((1 << 29) - 1)  # free-running counters wrap here (a multiple of any buffer size)
MAX_CAPACITY = const(65536)
DEFAULT_CAPACITY = const(32)

_STAT_FIELDS = ("sent", "received", "queue_length", "capacity", "dropped")


class _Ring:
    # Shared state of one channel. Private: users hold Sender/Receiver handles.

    def __init__(self, capacity):
        size = 1
        while size < capacity:
            size <<= 1
        self._buf = [None] * size
        self._mask = size - 1
        self._capacity = capacity
        self._limit = capacity  # 0 once the receiver closed: every send takes the slow path
        self._sent = 0  # written by producers only
        self._received = 0  # written by the consumer only
        self._dropped = 0  # sends refused in task context (full); written there only
        self._isr_dropped = 0  # send_from_isr refusals; written by the IRQ side only
        self._senders = []  # open Sender handles
        self._lock = new_lock()
        self._rx_closed = False

    # -- producer side --------------------------------------------------------
    def push(self, item):
        # One open sender: lock-free single-producer push.
        s = self._sent
        if ((s - self._received) & _CMASK) >= self._limit:
            return self._refuse()
        self._buf[s & self._mask] = item
        self._sent = (s + 1) & _CMASK

    def push_locked(self, item):
        # Several open senders: serialise producers (threads via the lock, IRQs masked).
        lock = self._lock
        state = disable_irq()
        if lock:
            lock.acquire()
        s = self._sent
        full = ((s - self._received) & _CMASK) >= self._limit
        if not full:
            self._buf[s & self._mask] = item
            self._sent = (s + 1) & _CMASK
        if lock:
            lock.release()
        enable_irq(state)
        if full:
            self._refuse()

    def push_from_isr(self, item):
        # Hard-IRQ safe: no allocation, no lock, never raises.
        s = self._sent
        if ((s - self._received) & _CMASK) >= self._limit:
            d = self._isr_dropped
            self._isr_dropped = d + 1 if d < _CMASK else 0
            return False
        self._buf[s & self._mask] = item
        self._sent = (s + 1) & _CMASK
        return True

    def refuse_from_isr(self, item):
        # A closed Sender's send_from_isr: counted, never raises.
        d = self._isr_dropped
        self._isr_dropped = d + 1 if d < _CMASK else 0
        return False

    def _refuse(self):
        if self._rx_closed:
            raise ChannelClosed("channel closed: the receiver was closed")
        self._dropped = (self._dropped + 1) & _CMASK
        raise ChannelFull("channel full (capacity %d)" % self._capacity)

    # -- consumer side --------------------------------------------------------
    def pop(self):
        r = self._received
        if r == self._sent:
            return self._empty()
        buf = self._buf
        i = r & self._mask
        item = buf[i]
        buf[i] = None
        self._received = (r + 1) & _CMASK
        return item

    def _empty(self):
        if not self._senders:
            raise ChannelClosed("channel closed: every sender closed and nothing is queued")
        raise ChannelEmpty("channel empty")

    # -- shared ---------------------------------------------------------------
    def length(self):
        return (self._sent - self._received) & _CMASK

    def rebind_senders(self):
        # Lock-free push with one producer, locked push with several.
        senders = self._senders
        fn = self.push if len(senders) == 1 else self.push_locked
        for sender in senders:
            sender.send = fn
            sender.try_send = fn


class _Handle:
    # What both ends of a channel can ask.

    def __init__(self, ring):
        self._ring = ring

    def __len__(self):
        return self._ring.length()

    @property
    def capacity(self):
        return self._ring._capacity

    def is_empty(self):
        return self._ring.length() == 0

    def is_full(self):
        return self._ring.length() >= self._ring._capacity

    def stats(self):
        from ._record import Record  # loaded on first use: most programs never ask

        ring = self._ring
        return Record(
            _STAT_FIELDS,
            (
                ring._sent,
                ring._received,
                ring.length(),
                ring._capacity,
                (ring._dropped + ring._isr_dropped) & _CMASK,
            ),
        )


def _send_on_closed_sender(item):
    raise ChannelClosed("this sender is closed")


class Sender(_Handle):
    """The sending end of a channel. Clone it for each thread or IRQ that sends.

    `send(item)` / `try_send(item)`: task context; raise ChannelFull or ChannelClosed.
    `send_from_isr(item) -> bool`: hard-IRQ safe; False means dropped (and counted).
    """

    def __init__(self, ring):
        _Handle.__init__(self, ring)
        self._open = True
        self.send_from_isr = ring.push_from_isr
        ring._senders.append(self)
        ring.rebind_senders()

    def clone(self):
        """A new open Sender for the same channel."""
        if not self._open:
            raise ChannelClosed("cannot clone a closed sender")
        return Sender(self._ring)

    def close(self):
        """Close this handle. When the last sender closes, the receiver still gets
        every queued item, then ChannelClosed. Closing twice does nothing."""
        if not self._open:
            return
        self._open = False
        ring = self._ring
        ring._senders.remove(self)
        self.send = self.try_send = _send_on_closed_sender
        self.send_from_isr = ring.refuse_from_isr
        if ring._senders:
            ring.rebind_senders()

    def is_closed(self):
        return not self._open or self._ring._rx_closed

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()


class Receiver(_Handle):
    """The receiving end of a channel; one thread receives at a time."""

    def __init__(self, ring):
        _Handle.__init__(self, ring)
        self.try_recv = ring.pop

    def drain(self):
        """Every item queued now, oldest first, as a list."""
        out = []
        ring = self._ring
        while ring.length():
            out.append(ring.pop())
        return out

    def __iter__(self):
        # Yields what is queued now and stops; never blocks.
        ring = self._ring
        while ring.length():
            yield ring.pop()

    def close(self):
        """Refuse further sends (they raise ChannelClosed); queued items stay readable."""
        ring = self._ring
        ring._rx_closed = True
        ring._limit = 0

    def is_closed(self):
        ring = self._ring
        return ring._rx_closed or not ring._senders


def channel(capacity):
    """A bounded channel: returns (Sender, Receiver). capacity is 1..65536."""
    check_int(capacity, "capacity", 1, MAX_CAPACITY)
    ring = _Ring(capacity)
    return Sender(ring), Receiver(ring)


def default_channel():
    """A channel of the default capacity (32)."""
    return channel(DEFAULT_CAPACITY)


# -- one-shot channels -----------------------------------------------------------

_EMPTY = const(0)
_READY = const(1)
_TAKEN = const(2)
_ABANDONED = const(3)

# The shared state of a one-shot channel is a 2-list [state, value] (no class for it).


class OneShotSender:
    """Sends exactly one value. A second send raises ChannelClosed."""

    def __init__(self, state):
        self._state = state
        self._used = False

    def send(self, value):
        if self._used:
            raise ChannelClosed("oneshot already sent or closed")
        st = self._state
        self._used = True
        if st[0] == _ABANDONED:
            raise ChannelClosed("oneshot receiver closed")
        st[1] = value
        st[0] = _READY

    def close(self):
        """Give up without sending: the receiver then gets ChannelClosed."""
        if not self._used:
            self._used = True
            if self._state[0] == _EMPTY:
                self._state[0] = _ABANDONED

    def is_closed(self):
        return self._used

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()


class OneShotReceiver:
    """Receives the one value: ChannelEmpty until sent, ChannelClosed once taken."""

    def __init__(self, state):
        self._state = state

    def try_recv(self):
        st = self._state
        s = st[0]
        if s == _READY:
            value = st[1]
            st[1] = None
            st[0] = _TAKEN
            return value
        if s == _EMPTY:
            raise ChannelEmpty("oneshot: nothing sent yet")
        raise ChannelClosed("oneshot: value taken" if s == _TAKEN else "oneshot: sender closed")

    def is_ready(self):
        return self._state[0] == _READY

    def close(self):
        st = self._state
        if st[0] == _EMPTY:
            st[0] = _ABANDONED


def oneshot():
    """A one-shot channel: returns (OneShotSender, OneShotReceiver)."""
    state = [_EMPTY, None]
    return OneShotSender(state), OneShotReceiver(state)
