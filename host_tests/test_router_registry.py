# Tests for the router's registry as send sees it: the two tables, changed in place and
# copied into bigger ones as they fill (every registered id and name found, whatever
# their shape, across register / unregister churn), long names, and `to` values of the
# wrong type (bool, float, unhashable) raising TypeError that names the argument instead
# of reaching a module. Zero-allocation proofs for big registries are here too.
import random

from support import assert_no_alloc, need_heap_lock, raises

from helix_ipc import ModuleAddress, MessageRouter, ModuleNotFound, Request, Response

REQ = Request(0, "ping")


def replier(tag):
    answer = Response.success(tag)

    def handler(request):
        return answer

    return handler


def name_shapes(n):
    rng = random.Random(7) if hasattr(random, "Random") else None
    letters = "abcdefghijklmnopqrstuvwxyz_."
    shapes = [
        ["m%d" % i for i in range(n)],
        ["helix.module.sensor.number_%d" % i for i in range(n)],
        ["mod_%03d" % i for i in range(n)],
    ]
    rand = []
    for i in range(n):
        k = 3 + (rng.getrandbits(3) if rng else random.getrandbits(3))
        rand.append("".join(letters[(rng or random).getrandbits(4)] for _ in range(k)) + str(i))
    shapes.append(rand)
    return shapes


def test_every_module_is_found_by_id_and_name_in_big_registries():
    for names in name_shapes(300):
        r = MessageRouter()
        for i, name in enumerate(names):
            r.register(i * 7, name, replier(b"%d" % i))
        assert r.module_count() == len(names)
        for i, name in enumerate(names):
            want = Response.success(b"%d" % i)
            assert r.send(i * 7, REQ) == want, (i, name)
            # a str built at run time, not the registered object
            assert r.send("".join([name[:1], name[1:]]), REQ) == want, name
            assert r.send(ModuleAddress.Name(name), REQ) == want
            assert r.get_module_id(name) == i * 7
        raises(ModuleNotFound, r.send, 1, REQ)
        raises(ModuleNotFound, r.send, "not-there", REQ)
        assert r.messages_routed == 3 * len(names)


def test_lookups_survive_register_unregister_churn():
    r = MessageRouter()
    live = {}
    for i in range(120):
        r.register(i, "m%d" % i, replier(b"%d" % i))
        live[i] = "m%d" % i
    for i in range(0, 120, 3):  # unregister a third, then reuse some ids and names
        assert r.unregister(i)
        del live[i]
    for i in range(0, 60, 3):
        r.register(i + 1000, "m%d" % i, replier(b"again%d" % i))
        live[i + 1000] = "m%d" % i
    assert r.module_count() == len(live)
    for module_id, name in live.items():
        tag = b"again%d" % (module_id - 1000) if module_id >= 1000 else b"%d" % module_id
        assert r.send(module_id, REQ) == Response.success(tag)
        assert r.send(name, REQ) == Response.success(tag)
    for i in range(0, 120, 3):
        raises(ModuleNotFound, r.send, i, REQ)
    for i in range(60, 120, 3):
        raises(ModuleNotFound, r.send, "m%d" % i, REQ)


def test_bool_and_float_never_reach_a_module():
    r = MessageRouter()
    r.register(0, "zero", replier(b"0"))
    r.register(1, "one", replier(b"1"))
    for bad in (True, False, 1.0, 0.0):
        e = raises(TypeError, r.send, bad, REQ)
        assert "to must be" in str(e) and type(bad).__name__ in str(e), str(e)
        e = raises(TypeError, r.queue, bad, REQ)
        assert "to must be" in str(e), str(e)
        raises(TypeError, r.is_registered, bad)
    assert r.messages_routed == 0
    assert r.mailbox_size(1) == 0
    assert r.send(1, REQ) == Response.success(b"1")


def test_unhashable_to_raises_type_error_naming_the_argument():
    r = MessageRouter()
    r.register(1, "a", replier(b"a"))
    for bad in ([1], {"a": 1}, bytearray(b"a"), {1}):
        e = raises(TypeError, r.send, bad, REQ)
        assert "send: to must be" in str(e), str(e)
        e = raises(TypeError, r.queue, bad, REQ)
        assert "queue: to must be" in str(e), str(e)
        e = raises(TypeError, r.mailbox_size, bad)
        assert "module_id must be" in str(e), str(e)
    assert r.messages_routed == 0


def test_empty_router_rejects_bad_to_the_same_way():
    r = MessageRouter()
    raises(TypeError, r.send, [1], REQ)
    raises(TypeError, r.send, True, REQ)
    raises(ModuleNotFound, r.send, "a", REQ)
    raises(ModuleNotFound, r.send, 0, REQ)


def test_a_very_long_name_still_routes():
    # A name longer than MicroPython's qstr limit (255 bytes on the unix port) is an
    # ordinary str key like any other.
    r = MessageRouter()
    long_name = "x" * 300
    r.register(3, long_name, replier(b"long"))
    r.register(4, "short", replier(b"short"))
    assert r.send(long_name, REQ) == Response.success(b"long")
    assert r.send("x" * 300, REQ) == Response.success(b"long")
    assert r.send(ModuleAddress.Name(long_name), REQ) == Response.success(b"long")
    assert r.send("short", REQ) == Response.success(b"short")
    assert r.get_module_id("x" * 300) == 3
    raises(TypeError, r.send, [1], REQ)
    assert r.messages_routed == 4
    assert r.unregister(3)
    raises(ModuleNotFound, r.send, long_name, REQ)


def sends(send, to, request):
    n = 0
    while n < 100:
        send(to, request)
        n += 1
    return send(to, request)


def test_send_in_a_big_registry_allocates_nothing():
    need_heap_lock()
    r = MessageRouter()
    ok = Response.ok()

    def handler(request):
        return ok

    for i in range(1, 500):
        r.register(i, "helix.module.sensor.number_%d" % i, handler)
    r.register(0, "target", handler)
    assert assert_no_alloc(sends, r.send, "target", REQ) is ok
    assert assert_no_alloc(sends, r.send, "helix.module.sensor.number_77", REQ) is ok
    assert assert_no_alloc(sends, r.send, 499, REQ) is ok


def test_a_thousand_registrations_fit_the_default_heap():
    # Under MicroPython this runs in its own process with the unix port's default heap
    # (2 MB). Registration must not churn big temporary tables (a design that rebuilt
    # every table at every register fragmented that heap: MemoryError at ~600-900).
    r = MessageRouter()
    ok = Response.ok()

    def handler(request):
        return ok

    for i in range(1000):
        r.register(i, "m%d" % i, handler)
    assert r.module_count() == 1000
    for i in range(0, 1000, 37):
        assert r.send(i, REQ) is ok
        assert r.send("m%d" % i, REQ) is ok
    assert r.send(999, REQ) is ok and r.send("m999", REQ) is ok
    raises(ModuleNotFound, r.send, 1000, REQ)
    raises(ModuleNotFound, r.send, "m1000", REQ)


def test_heavy_churn_keeps_every_lookup_right():
    # Unregister leaves deleted-key slots in the tables until the next copy; many
    # cycles of removing and re-adding (also shrinking to a few modules and growing
    # back) must keep hits and misses right.
    r = MessageRouter()
    live = {}
    serial = 0
    for cycle in range(6):
        for i in range(200):
            if i not in live:
                serial += 1
                r.register(i, "c%d" % i, replier(b"%d" % serial))
                live[i] = b"%d" % serial
        drop = range(cycle % 3, 200, 2 + cycle % 3) if cycle != 3 else range(197)
        for i in drop:
            if i in live:
                assert r.unregister(i)
                del live[i]
        assert r.module_count() == len(live)
        for i in range(200):
            if i in live:
                want = Response.success(live[i])
                assert r.send(i, REQ) == want, (cycle, i)
                assert r.send("c%d" % i, REQ) == want, (cycle, i)
                assert r.get_module_id("c%d" % i) == i
            else:
                raises(ModuleNotFound, r.send, i, REQ)
                raises(ModuleNotFound, r.send, "c%d" % i, REQ)
                assert r.get_module_id("c%d" % i) is None
    for i in list(live):
        assert r.unregister(i)
    assert r.module_count() == 0
    raises(ModuleNotFound, r.send, "c1", REQ)
    r.register(5, "again", replier(b"x"))
    assert r.send("again", REQ) == Response.success(b"x")
