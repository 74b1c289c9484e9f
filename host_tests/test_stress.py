# test_stress: the stress and fault scenarios of tools/stress/scenarios.py at a small
# scale, as ordinary host tests on both interpreters (each a few seconds). `make stress`
# runs the same scenarios at full scale (tools/stress/run.py). A scenario skips, with
# its reason, where the interpreter lacks threads, micropython.schedule or a heap to
# exhaust; everything else it checks is an exact count, order, identity or memory bound.
import sys

import support

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here + "/../tools/stress")

import scenarios  # noqa: E402

SCALE = 0.02  # make stress runs scale 1


def _run(name, scale=SCALE):
    try:
        return scenarios.get(name)(scale)
    except scenarios.Skip as e:
        support.skip(e.args[0])


def test_channel_churn_threads_clone_close_isr_flood():
    _run("channel_churn")


def test_isr_flood_posted_equals_delivered_plus_dropped_in_order():
    _run("isr_flood")


def test_schedule_queue_full_then_everything_delivered():
    _run("schedule_full")


def test_memory_error_at_each_allocation_of_register():
    _run("memory_register")


def test_memory_error_at_each_allocation_of_subscribe():
    _run("memory_subscribe")


def test_memory_error_at_each_allocation_of_queue():
    _run("memory_queue")


def test_bus_handlers_raising_at_every_position():
    _run("raising_bus")


def test_router_handlers_raising_at_every_position():
    _run("raising_router")


def test_mailbox_callbacks_raising_at_every_position():
    _run("raising_callbacks")


def test_soak_memory_flat_counts_exact():
    _run("soak")


def test_scenarios_catch_what_they_claim_to():
    # a stress test that cannot fail is a defect: the checking helpers raise
    support.raises(AssertionError, scenarios._eq, 1, 2, "x")
    support.raises(AssertionError, scenarios._true, False, "x")
    calls = [("bus sub", ValueError("a"))]
    support.raises(AssertionError, scenarios._check_hook, calls, [("sub", ValueError("a"))], "identity")
    support.raises(AssertionError, scenarios._check_hook, calls, [("other", calls[0][1])], "where")
    scenarios._check_hook(calls, [("sub", calls[0][1])], "ok")
    assert scenarios._patterns(3) == [[0], [1], [2], [0, 2], [0, 2], [0, 1, 2]]


def test_memory_sweep_catches_a_half_registration():
    # the MemoryError sweep finds a registry that publishes before its last allocation
    try:
        scenarios._heap_tools()
    except scenarios.Skip as e:
        support.skip(e.args[0])
    names = {}
    blobs = {}

    def register():
        names["k"] = 1  # published first ...
        blobs["k"] = bytearray(200)  # ... then an allocation that may fail

    def check():
        assert len(names) == len(blobs), "half-registered"

    e = support.raises(AssertionError, scenarios._sweep, register, check)
    assert "half-registered" in str(e)
