# tools/bench/fit.py: the fit rows of `make bench`: how many modules (or subscriptions)
# fit before MemoryError, against the registry floor filled the same way in the same
# process, and whether the call that raised MemoryError left the state exactly as before.
# Runs under the MicroPython unix port with a small heap, one fill per process, itself
# loaded from .mpy (compiling this file would take and fragment the small heap first):
#   micropython -X heapsize=64k -c "import sys; sys.argv[:] = ['fit', WHAT, LIBDIR, FLAGS...];
#       sys.path.insert(0, LIBDIR); import fit"   (run.py does this; or run fit.py itself)
#   WHAT: modules|subscriptions; FLAGS: [--board] [--floor]
# --floor fills the floor, otherwise the library. Both processes start alike (same heap,
# same imports, same prepared topics), so neither fill inherits the other's leftovers.
# <libdir> holds helix_ipc as .mpy, and run.py puts this file and host_tests/boardmode.py
# there as .mpy too (boardmode is imported in both modes, so that both pay the same).
# Prints one "FITKV <field> <json>" line per result field, then "FIT-END".
#
# Floor (shared/BENCH.md "registry"): plain objects with the same fields, kept in two
# dicts (modules: by id and by name) or in a dict of lists (subscriptions: by topic).
# Both fills make their arguments the same way (a new name string per module, a new
# one-topic list per subscription), so what differs is what the registry keeps.
import gc
import json
import sys

# Freed just before the result is written: building the output (or an error message)
# must not fail in the heap the fill exhausted (both processes hold it alike).
_out_room = [bytearray(256)]

what = sys.argv[1]
sys.path.insert(0, sys.argv[2])
BOARD = "--board" in sys.argv[3:]
FLOOR = "--floor" in sys.argv[3:]

import boardmode  # noqa: E402 - host_tests/boardmode.py, as .mpy in <libdir>; both modes load it

if BOARD:
    boardmode.enter()

N_TOPICS = 10
RESERVE = 1024  # freed after the fill, so that the checks themselves have room


def reserve():
    # Best effort: a heap that the imports left in small pieces may have no 1 KB block.
    try:
        return bytearray(RESERVE)
    except MemoryError:
        out["no_reserve"] = True
        return None
# Every key exists from the start: a store into a full heap must not grow the dict.
out = {"what": what, "board": BOARD, "floor": None, "lib": None, "stopped_in": None, "atomic": None,
       "atomic_note": None, "problems": [], "error": None, "heap_free_at_start": None,
       "lib_heap_free_before": None, "reregister_note": None, "resubscribe_note": None,
       "no_reserve": None, "board_problems": None}
phase = ["importing the library from .mpy"]  # where a MemoryError outside the fills came from


def heap():
    gc.collect()
    return gc.mem_free()


class _Module:
    def __init__(self, module_id, name, handler):
        self.module_id = module_id
        self.name = name
        self.handler = handler
        self.mailbox = None


class _Subscription:
    def __init__(self, name, topics, handler):
        self.name = name
        self.topics = topics
        self.handler = handler
        self.priority = 128
        self.id = 0
        self.active = True


HITS = [0]


def handler(x):
    HITS[0] += 1  # calls of every subscription's handler (a small int: no allocation)


def floor_modules():
    by_id = {}
    by_name = {}
    i = 0
    try:
        while True:
            m = _Module(i, "m%d" % i, handler)
            by_id[i] = m
            by_name[m.name] = m
            i += 1
    except MemoryError:
        pass
    n = len(by_name)
    by_id = by_name = m = None
    return n


def floor_subscriptions(topics):
    index = {}
    i = 0
    try:
        while True:
            topic = topics[i % N_TOPICS]
            s = _Subscription("s", [topic], handler)
            lst = index.get(topic)
            if lst is None:
                lst = index[topic] = []
            lst.append(s)
            i += 1
    except MemoryError:
        pass
    index = s = lst = None  # i: subscriptions appended (nothing allocated to count them)
    return i


def lib_modules(probes):
    from helix_ipc import MessageRouter, Request, Response, ModuleAddress, ModuleNotFound

    ok = Response.ok()

    def module_handler(request):
        return ok

    request = Request(ModuleAddress.Id(0), "ping")
    gc.collect()
    out["lib_heap_free_before"] = heap()
    phase[0] = "MessageRouter()"
    router = MessageRouter()
    held = reserve()
    phase[0] = "library fill"
    i = 0
    stage = "args"
    name = None
    try:
        while True:
            stage = "args"
            name = "m%d" % i
            stage = "register"
            router.register(i, name, module_handler)
            i += 1
    except MemoryError:
        pass
    count = router.module_count()
    out["lib"] = count
    out["stopped_in"] = stage
    target_id, target_name = i, name
    if stage != "register":
        # The name could not be built: make register() itself hit the full heap with
        # names built before the fill.
        target_id = None
        for k, probe in enumerate(probes):
            try:
                router.register(1000000 + k, probe, module_handler)
            except MemoryError:
                target_id, target_name = 1000000 + k, probe
                break
        count = router.module_count()
        out["lib"] = count
    problems = out["problems"]
    phase[0] = "checks after the failed register"
    if target_id is None:
        out["atomic"] = None
        out["atomic_note"] = "16 more registrations fitted: the failing call was not reached"
    else:
        # The state the failed call left (before freeing anything).
        if router.module_count() != count:
            problems.append("module_count() %d after the failed register, %d before" % (router.module_count(), count))
        if router.is_registered(target_id):
            problems.append("the failed module's id is registered")
        if router.get_module_id(target_name) is not None:
            problems.append("the failed module's name resolves")
        del held
        gc.collect()
        # Every module registered before is still reachable by id.
        reached = 0
        for k in range(i):
            if router.is_registered(k):
                try:
                    if router.send(k, request).is_success:
                        reached += 1
                except MemoryError:
                    problems.append("send raised MemoryError")
                    break
        if reached != min(i, count):
            problems.append("%d of %d modules reachable by send" % (reached, min(i, count)))
        try:
            router.send(target_name, request)
            problems.append("send to the failed module's name succeeded")
        except ModuleNotFound:
            pass
        except MemoryError:
            problems.append("send to an unknown name raised MemoryError, not ModuleNotFound")
        # Once room is made, the same module registers (nothing half-registered is left).
        if i > 0:
            router.unregister(i - 1)
        gc.collect()
        try:
            router.register(target_id, target_name, module_handler)
            if not router.is_registered(target_id):
                problems.append("re-registering the failed module did not register it")
        except MemoryError:
            out["reregister_note"] = "re-register after unregistering one module: MemoryError again"
        except Exception as e:  # AlreadyRegistered: the failed call left it half-registered
            problems.append("re-registering the failed module raised %s: %s" % (type(e).__name__, e))
        out["atomic"] = not problems
    out["problems"] = problems


def lib_subscriptions(topics, events, probes):
    from helix_ipc import EventBus, EventSubscription

    hits = HITS
    sub_handler = handler
    gc.collect()
    out["lib_heap_free_before"] = heap()
    phase[0] = "EventBus()"
    bus = EventBus()
    held = reserve()
    phase[0] = "library fill"
    i = 0
    stage = "args"
    sub = None
    last_id = None
    try:
        while True:
            stage = "args"
            sub = EventSubscription("s", [topics[i % N_TOPICS]], sub_handler)
            stage = "subscribe"
            last_id = bus.subscribe(sub)
            i += 1
    except MemoryError:
        pass
    if stage != "subscribe":
        # The subscription could not be built: make subscribe() itself hit the full heap
        # with subscriptions built before the fill.
        for probe in probes:
            try:
                last_id = bus.subscribe(probe)
            except MemoryError:
                sub = probe
                stage = "subscribe"
                break
    count = bus.subscription_count()
    out["lib"] = count
    out["stopped_in"] = stage
    problems = out["problems"]
    phase[0] = "checks after the failed subscribe"
    if stage != "subscribe":
        sub = None
        out["atomic"] = None
        out["atomic_note"] = "%d more subscriptions fitted: the failing call was not reached" % len(probes)
        return
    if bus.subscription_count() != count:
        problems.append("subscription_count() changed")
    # Every subscription, and no other, still gets its topic's events (publish is meant
    # to allocate nothing, so it must work in the full heap).
    hits[0] = 0
    try:
        for ev in events:
            bus.publish(ev)
    except MemoryError:
        problems.append("publish raised MemoryError in the full heap")
    if hits[0] != count:
        problems.append("%d handler calls for %d subscriptions" % (hits[0], count))
    del held
    gc.collect()
    if last_id is not None:
        try:
            bus.unsubscribe(last_id)
            count -= 1
        except MemoryError:
            # unsubscribe builds the topic's new entry before it changes anything (two
            # lists of ~55 for this fill: 512 B each on 64-bit): in a heap this full it may
            # not fit even after the reserve is freed. That is no half-done state: the
            # failed subscribe's checks above passed; this one must have changed nothing.
            out["resubscribe_note"] = "unsubscribe to make room: MemoryError (heap still full); re-subscribe not tried"
            if bus.subscription_count() != count:
                problems.append("a failed unsubscribe changed subscription_count()")
            out["atomic"] = not problems
            out["problems"] = problems
            return
    gc.collect()
    try:
        bus.subscribe(sub)
        hits[0] = 0
        for ev in events:
            bus.publish(ev)
        if hits[0] != count + 1:
            problems.append("after re-subscribing the failed one: %d calls for %d" % (hits[0], count + 1))
    except MemoryError:
        out["resubscribe_note"] = "re-subscribe after unsubscribing one: MemoryError again"
    except Exception as e:
        problems.append("re-subscribing the failed subscription raised %s: %s" % (type(e).__name__, e))
    out["atomic"] = not problems
    out["problems"] = problems


def main():
    out["heap_free_at_start"] = heap()
    try:
        if what == "modules":
            import helix_ipc.router  # noqa: F401 - loaded first: import cost is not registry cost
            import helix_ipc.messages  # noqa: F401

            phase[0] = "making 16 probe names"
            probes = ["probe%d" % k for k in range(16)]  # both fills hold them (the library's checks use them)
            if FLOOR:
                phase[0] = "floor fill (its 1 KB reserve)"
                _reserve = reserve()  # held through the fill, as the library fill holds its own
                phase[0] = "floor fill"
                out["floor"] = floor_modules()
            else:
                lib_modules(probes)
        else:
            from helix_ipc import EventTopic, Event
            import helix_ipc.bus  # noqa: F401

            phase[0] = "making 10 topics and events"
            topics = [EventTopic.Custom("t%d" % k) for k in range(N_TOPICS)]
            events = [Event.Custom("t%d" % k) for k in range(N_TOPICS)]
            from helix_ipc import EventSubscription

            phase[0] = "making 8 probe subscriptions"
            probes = [EventSubscription("p", [topics[k]], handler) for k in range(8)]  # both fills hold them
            if FLOOR:
                phase[0] = "floor fill (its 1 KB reserve)"
                _reserve = reserve()  # held through the fill, as the library fill holds its own
                phase[0] = "floor fill"
                out["floor"] = floor_subscriptions(topics)
            else:
                lib_subscriptions(topics, events, probes)
    except MemoryError as e:
        _out_room.clear()
        gc.collect()
        out["error"] = "MemoryError in %s: %s" % (phase[0], e.args[0] if e.args else "")
        if phase[0] in ("EventBus()", "MessageRouter()"):
            out["lib"] = 0
            out["atomic"] = None
            out["atomic_note"] = "the registry object itself did not fit"
        if phase[0].startswith("checks"):
            out["atomic"] = False
            out["problems"].append("the checks hit MemoryError: " + out["error"])
    _out_room.clear()
    gc.collect()
    if BOARD:
        try:
            out["board_problems"] = boardmode.problems(load_library=False)
        except MemoryError:
            out["board_problems"] = ["the board-mode check itself hit MemoryError"]
    for k in out:  # one small line per field: writing needs little heap
        if out[k] is not None:
            print("FITKV", k, json.dumps(out[k]))
    print("FIT-END")


main()
