# tools/hostmachine/machine.py: the host `machine` (Timer, Pin, disable_irq) that models
# rp2 and esp32. Under MicroPython it is put first on sys.path, so `import machine` finds
# it (and helix_ipc._compat gets its disable_irq); under CPython it is loaded under
# another name so the in-process suite keeps CPython's (absent) machine.
import sys
import time

import support
from support import raises

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
HOSTMACHINE = _here + "/../tools/hostmachine"

if support.MICROPYTHON and HOSTMACHINE not in sys.path:
    sys.path.insert(0, HOSTMACHINE)  # before anything imports helix_ipc._compat


def hostmachine(flavour="rp2"):
    """The host machine module, set to flavour ("rp2" or "esp32")."""
    if support.MICROPYTHON:
        import machine
    else:
        machine = sys.modules.get("helix_hostmachine")
        if machine is None:
            import importlib.util

            spec = importlib.util.spec_from_file_location("helix_hostmachine", HOSTMACHINE + "/machine.py")
            machine = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(machine)
            sys.modules["helix_hostmachine"] = machine
    machine.set_board(flavour)
    return machine


def need_schedule():
    try:
        import micropython
    except ImportError:
        support.skip("needs micropython.schedule (MicroPython only)")
    return micropython


def wait_for(pred, timeout_ms=5000):
    # Not a timing assertion: gives a thread time to make progress, fails only if it never does.
    for _ in range(timeout_ms):
        if pred():
            return True
        time.sleep(0.001)
    return pred()


def test_import_machine_picks_up_the_host_machine():
    m = hostmachine()
    if support.MICROPYTHON:
        import machine

        assert machine is m and hasattr(machine, "Timer") and hasattr(machine, "disable_irq")
        assert hasattr(machine, "Signal")  # the built-in's names are re-exported
        import helix_ipc._compat as _compat

        assert _compat.disable_irq is m.disable_irq  # the masking one, not the no-op
        assert _compat.machine_module() is m


def test_pin_records_history():
    m = hostmachine()
    led = m.Pin("LED", m.Pin.OUT, value=0)
    led.on()
    led.toggle()
    led.toggle()
    led.off()
    led.value(5)
    assert led.value() == 1
    assert led.history == [0, 1, 0, 1, 0, 1]


def test_rp2_timer_ids_and_periodic_hard_timer():
    m = hostmachine("rp2")
    raises(ValueError, m.Timer, 0)
    count = [0]

    def cb(t):
        count[0] += 1

    t = m.Timer(-1, mode=m.Timer.PERIODIC, freq=1000, callback=cb, hard=True)
    try:
        assert wait_for(lambda: count[0] >= 20)
    finally:
        t.deinit()
    time.sleep(0.01)
    n = count[0]
    time.sleep(0.02)
    assert count[0] == n  # deinit stops it
    assert t.error is None and t.fired == n


def test_one_shot_fires_once():
    m = hostmachine("rp2")
    count = [0]

    def cb(t):
        count[0] += 1

    t = m.Timer(-1, mode=m.Timer.ONE_SHOT, period=1, callback=cb, hard=True)
    assert wait_for(lambda: count[0] >= 1)
    time.sleep(0.02)
    assert count[0] == 1
    t.deinit()


def test_allocating_hard_callback_is_disabled_and_recorded():
    support.need_heap_lock()
    m = hostmachine("rp2")
    calls = [0]

    def bad(t):
        calls[0] += 1
        return [calls[0]]  # allocates: MemoryError under the heap lock

    before = len(m.irq_errors)
    t = m.Timer(-1, mode=m.Timer.PERIODIC, freq=1000, callback=bad, hard=True)
    assert wait_for(lambda: t.error is not None)
    time.sleep(0.02)
    assert isinstance(t.error, MemoryError)
    assert calls[0] == 1  # disabled after the first failure, as on a board
    assert len(m.irq_errors) == before + 1 and m.irq_errors[-1][0] is t
    t.deinit()


def test_disable_irq_masks_hard_callbacks():
    m = hostmachine("rp2")
    count = [0]

    def cb(t):
        count[0] += 1

    t = m.Timer(-1, mode=m.Timer.PERIODIC, freq=1000, callback=cb, hard=True)
    try:
        assert wait_for(lambda: count[0] >= 3)
        state = m.disable_irq()
        inner = m.disable_irq()  # nests
        n = count[0]
        time.sleep(0.03)
        masked = count[0]
        m.enable_irq(inner)
        time.sleep(0.01)
        still = count[0]
        m.enable_irq(state)
        assert wait_for(lambda: count[0] > still)
    finally:
        t.deinit()
    assert masked == n and still == n  # nothing ran while masked
    assert t.masked_waits >= 1


def test_disable_irq_inside_a_hard_callback_does_not_block():
    m = hostmachine("rp2")
    seen = []

    def cb(t):
        s = m.disable_irq()
        m.enable_irq(s)
        if not seen:
            seen.append(s)

    t = m.Timer(-1, mode=m.Timer.ONE_SHOT, period=1, callback=cb, hard=True)
    assert wait_for(lambda: bool(seen))
    t.deinit()
    assert t.error is None


def test_esp32_refuses_hard_and_virtual_timers():
    m = hostmachine("esp32")
    try:
        raises(ValueError, m.Timer, -1)
        raises(ValueError, m.Timer, 4)
        t = m.Timer(0)
        e = raises(ValueError, t.init, mode=m.Timer.PERIODIC, freq=100, callback=print, hard=True)
        assert "esp32" in str(e)
    finally:
        m.set_board("rp2")


def test_esp32_soft_tick_dropped_when_schedule_queue_full():
    micropython = need_schedule()
    _thread = support.need_threads()
    m = hostmachine("esp32")
    ran = [0]

    def cb(t):
        ran[0] += 1

    def filler(x):
        pass

    gate = _thread.allocate_lock()
    gate.acquire()
    box = [None, None]

    def worker():
        # The main thread is blocked on `gate`, so nothing scheduled runs meanwhile.
        n = 0
        try:
            for _ in range(64):
                micropython.schedule(filler, 0)
                n += 1
        except RuntimeError:
            pass
        t = m.Timer(0, mode=m.Timer.PERIODIC, freq=1000, callback=cb)
        box[0] = t
        waited = 0
        while t.soft_dropped < 5 and waited < 5000:
            time.sleep(0.001)
            waited += 1
        t.deinit()
        box[1] = n
        gate.release()

    try:
        _thread.start_new_thread(worker, ())
        gate.acquire()
        t = box[0]
        assert box[1] >= 1  # the queue was filled (depth 4 on unix)
        assert t.soft_dropped >= 5  # dropped silently and counted
        assert ran[0] == 0  # none of them ran
        assert t.error is None
    finally:
        m.set_board("rp2")


def test_esp32_soft_timer_runs_callbacks_via_schedule():
    need_schedule()
    m = hostmachine("esp32")
    try:
        ran = [0]

        def cb(t):
            ran[0] += 1

        t = m.Timer(0, mode=m.Timer.PERIODIC, freq=500, callback=cb)
        assert wait_for(lambda: ran[0] >= 10)
        t.deinit()
    finally:
        m.set_board("rp2")
