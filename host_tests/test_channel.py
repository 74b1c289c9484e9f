# Channels: FIFO, full/empty/closed, clone/close counting, oneshot, stats, bad input.
from support import raises

from helix_ipc import (
    channel, default_channel, oneshot,
    ChannelFull, ChannelEmpty, ChannelClosed, IpcError,
)


def test_fifo_across_many_wraparounds():
    tx, rx = channel(5)
    expected = 0
    nxt = 0
    for burst in range(400):
        for _ in range(1 + burst % 5):
            tx.send(nxt)
            nxt += 1
        while len(rx):
            assert rx.try_recv() == expected
            expected += 1
    assert expected == nxt and nxt > 1000


def test_full_raises_channel_full_and_keeps_items():
    tx, rx = channel(3)
    for i in range(3):
        tx.send(i)
    assert tx.is_full() and rx.is_full()
    e = raises(ChannelFull, tx.send, 99)
    assert "3" in str(e)
    raises(ChannelFull, tx.try_send, 99)
    assert rx.drain() == [0, 1, 2]


def test_empty_raises_channel_empty():
    tx, rx = channel(2)
    assert rx.is_empty()
    raises(ChannelEmpty, rx.try_recv)
    tx.send("a")
    assert rx.try_recv() == "a"
    raises(ChannelEmpty, rx.try_recv)


def test_errors_are_ipc_errors():
    for cls in (ChannelFull, ChannelEmpty, ChannelClosed):
        assert issubclass(cls, IpcError)


def test_closed_after_remaining_items_drain():
    tx, rx = channel(4)
    tx.send(1)
    tx.send(2)
    tx.close()
    assert rx.is_closed()
    assert rx.try_recv() == 1
    assert rx.try_recv() == 2
    raises(ChannelClosed, rx.try_recv)
    raises(ChannelClosed, tx.send, 3)


def test_clone_close_counting():
    tx, rx = channel(4)
    tx2 = tx.clone()
    tx3 = tx2.clone()
    tx.close()
    tx.close()  # closing twice does nothing
    tx2.send("x")
    tx2.close()
    assert not rx.is_closed()
    tx3.send("y")
    tx3.close()
    assert rx.is_closed()
    assert list(rx) == ["x", "y"]
    raises(ChannelClosed, rx.try_recv)
    raises(ChannelClosed, tx.clone)


def test_sender_context_manager_closes():
    tx, rx = channel(2)
    with tx as t:
        t.send(7)
    assert tx.is_closed()
    assert rx.try_recv() == 7
    raises(ChannelClosed, rx.try_recv)


def test_receiver_close_refuses_sends_keeps_queue():
    tx, rx = channel(4)
    tx.send(1)
    rx.close()
    assert tx.is_closed() and rx.is_closed()
    raises(ChannelClosed, tx.send, 2)
    assert tx.send_from_isr(3) is False
    assert rx.try_recv() == 1
    raises(ChannelClosed, rx.try_recv)  # closed and drained, though a sender is open


def test_iteration_yields_queued_and_stops():
    tx, rx = channel(8)
    for i in range(5):
        tx.send(i)
    assert [x for x in rx] == [0, 1, 2, 3, 4]
    assert [x for x in rx] == []
    raises(ChannelEmpty, rx.try_recv)


def test_default_channel_capacity():
    tx, rx = default_channel()
    assert tx.capacity == 32 and rx.capacity == 32
    for i in range(32):
        tx.send(i)
    raises(ChannelFull, tx.send, 32)


def test_non_power_of_two_capacity_is_exact():
    tx, rx = channel(6)
    for i in range(6):
        tx.send(i)
    raises(ChannelFull, tx.send, 6)
    assert len(rx) == 6 and rx.capacity == 6


def test_stats_exact_after_scripted_sequence():
    tx, rx = channel(3)
    tx.send(1)
    tx.send(2)
    rx.try_recv()
    tx.send(3)
    tx.send(4)
    raises(ChannelFull, tx.send, 5)
    raises(ChannelFull, tx.send, 6)
    assert tx.send_from_isr(7) is False
    s = rx.stats()
    assert (s.sent, s.received, s.queue_length, s.capacity, s.dropped) == (4, 1, 3, 3, 3), s
    assert s["sent"] == 4
    assert tx.stats() == {"sent": 4, "received": 1, "queue_length": 3, "capacity": 3, "dropped": 3}
    rx.drain()
    assert rx.stats().received == 4 and rx.stats().queue_length == 0


def test_bad_capacity_refused_naming_the_argument():
    for bad in (0, -1, 65537, 10 ** 9):
        e = raises(ValueError, channel, bad)
        assert "capacity" in str(e)
    for bad in ("8", 2.0, None, True):
        e = raises(TypeError, channel, bad)
        assert "capacity" in str(e)
    channel(1)
    channel(65536)


def test_oneshot_every_state():
    tx, rx = oneshot()
    assert not rx.is_ready()
    raises(ChannelEmpty, rx.try_recv)
    tx.send("done")
    assert rx.is_ready()
    raises(ChannelClosed, tx.send, "again")
    assert rx.try_recv() == "done"
    assert not rx.is_ready()
    raises(ChannelClosed, rx.try_recv)


def test_oneshot_sender_closed_without_sending():
    tx, rx = oneshot()
    tx.close()
    raises(ChannelClosed, rx.try_recv)
    raises(ChannelClosed, tx.send, 1)


def test_oneshot_receiver_closed_refuses_send():
    tx, rx = oneshot()
    rx.close()
    raises(ChannelClosed, tx.send, 1)


def test_stats_repr_names_every_field():
    # issue 11 #10: stats records printed as a bare Record(...)
    tx, rx = channel(2)
    tx.send(1)
    assert repr(rx.stats()) == "Record(sent=1, received=0, queue_length=1, capacity=2, dropped=0)"
    assert str(tx.stats()) == repr(tx.stats())
