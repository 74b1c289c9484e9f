# Tests for helix_ipc.module: Module, Context, ModuleHost on a bus and a router.
from support import raises

from helix_ipc import (
    AlreadyRegistered,
    Context,
    Event,
    EventBus,
    EventResponse,
    EventSubscription,
    EventTopic,
    MessageRouter,
    Module,
    ModuleAddress,
    ModuleHost,
    Request,
    Response,
    SubscriptionPriority,
    global_event_bus,
    global_router,
)


class Recorder(Module):
    name = "recorder"
    topics = [EventTopic.TICK, EventTopic.SHUTDOWN]

    def __init__(self, name=None, topics=None):
        Module.__init__(self, name, topics)
        self.log = []

    def init(self, ctx):
        self.log.append(("init", ctx.module_id, ctx.name))
        self.ctx = ctx

    def handle_event(self, event):
        self.log.append(("event", event.topic))
        return EventResponse.HANDLED

    def handle_request(self, request):
        self.log.append(("request", request.request_type))
        if request.request_type == "status":
            return Response.success(b"ok")
        return Response.NOT_SUPPORTED

    def deinit(self):
        self.log.append(("deinit",))


def snapshot(bus, router):
    return (bus.subscription_count(), router.module_count(), sorted(router._ids), sorted(router._names))


def fresh():
    bus, router = EventBus(), MessageRouter()
    return bus, router, ModuleHost(bus, router)


def test_load_wires_init_events_and_requests():
    bus, router, host = fresh()
    m = Recorder()
    ctx = host.load(m)
    assert isinstance(ctx, Context)
    assert isinstance(ctx.module_id, int) and ctx.module_id == 1
    assert ctx.name == "recorder" and ctx.bus is bus and ctx.router is router
    assert m.log == [("init", 1, "recorder")]
    assert router.is_registered(1) and router.get_module_id("recorder") == 1
    assert bus.subscription_count() == 1
    res = bus.publish(Event.Tick(1000, 1))
    assert res.handled == 1
    bus.publish(Event.Custom("other"))  # not one of its topics
    assert router.send("recorder", Request(0, "status")) == Response.success(b"ok")
    assert router.send(1, Request(0, "x")) is Response.NOT_SUPPORTED
    assert m.log[1:] == [("event", EventTopic.TICK), ("request", "status"), ("request", "x")]
    assert host.get("recorder") is ctx and host.loaded() == ["recorder"]


def test_unload_leaves_bus_and_router_as_before():
    bus, router, host = fresh()
    router.register(1, "existing", lambda q: Response.ok())
    bus.subscribe(EventSubscription("watcher", [EventTopic.TICK], lambda e: None))
    before = snapshot(bus, router)
    m = Recorder()
    seen_at_deinit = []
    m.deinit = lambda: seen_at_deinit.append(snapshot(bus, router))
    ctx = host.load(m)
    assert ctx.module_id == 2  # 1 is taken
    assert snapshot(bus, router) != before
    assert host.unload("recorder") is True
    assert snapshot(bus, router) == before
    assert seen_at_deinit == [before]  # deinit runs after the undo
    assert not router.is_registered(2) and router.get_module_id("recorder") is None
    assert bus.publish(Event.Tick(0, 0)).handled == 1  # only the watcher
    assert host.unload("recorder") is False
    assert host.loaded() == [] and host.get("recorder") is None
    # and it loads again
    host.load(Recorder(), module_id=7)
    assert router.get_module_id("recorder") == 7
    host.unload("recorder")
    assert snapshot(bus, router) == before


def test_module_without_topics_is_not_subscribed():
    bus, router, host = fresh()

    class Quiet(Module):
        name = "quiet"

    host.load(Quiet(), module_id=0)
    assert bus.subscription_count() == 0
    assert router.is_registered(0)
    assert router.send("quiet", Request(1, "x")) is Response.NOT_SUPPORTED
    assert host.unload("quiet")
    assert router.module_count() == 0


def test_instance_name_and_topics():
    bus, router, host = fresh()
    a = host.load(Recorder(name="a", topics=[EventTopic.SHUTDOWN]))
    b = host.load(Recorder(name="b", topics=[]))
    assert (a.module_id, b.module_id) == (1, 2)
    assert bus.subscription_count() == 1
    assert bus.publish(Event.Shutdown()).handled == 1
    assert bus.publish(Event.Tick(0, 0)).handled == 0


def test_subscription_priority_of_modules():
    bus, router, host = fresh()
    order = []

    class P(Module):
        topics = [EventTopic.TICK]

        def handle_event(self, event):
            order.append(self.name)

    late = P(name="late")
    late.priority = SubscriptionPriority.LOW
    early = P(name="early")
    early.priority = SubscriptionPriority.HIGHEST
    host.load(late)
    host.load(early)
    bus.publish(Event.Tick(0, 0))
    assert order == ["early", "late"]


class FailingInit(Recorder):
    def init(self, ctx):
        Recorder.init(self, ctx)
        raise RuntimeError("no hardware")


class SelfRegisteringThenFailing(Recorder):
    def init(self, ctx):
        ctx.router.register(ctx.module_id, self.name, lambda q: Response.ok())
        raise OSError("gave up")


def test_failing_init_leaves_nothing():
    bus, router, host = fresh()
    before = snapshot(bus, router)
    m = FailingInit()
    raises(RuntimeError, host.load, m)
    assert snapshot(bus, router) == before
    assert m.log == [("init", 1, "recorder")]  # no deinit: init never completed
    assert host.loaded() == [] and not host.unload("recorder")
    raises(OSError, host.load, SelfRegisteringThenFailing())
    assert snapshot(bus, router) == before
    host.load(Recorder())  # the name and id are free
    assert router.get_module_id("recorder") == 1


def test_failing_subscribe_or_register_leaves_nothing():
    bus, router, host = fresh()
    before = snapshot(bus, router)
    bad = Recorder(topics="tick")  # a plain string is not a list of EventTopic
    raises((TypeError, ValueError), host.load, bad)
    assert snapshot(bus, router) == before
    assert bad.log[-1] == ("deinit",)  # init had run, so it is undone with deinit

    class Taker(Recorder):
        def init(self, ctx):
            Recorder.init(self, ctx)
            ctx.router.register(ctx.module_id, "squatter", lambda q: Response.ok())

    t = Taker()
    raises(AlreadyRegistered, host.load, t)  # its id is taken by the time we register
    assert snapshot(bus, router) == before
    assert t.log[-1] == ("deinit",)


def test_name_and_id_clashes_are_refused_before_init():
    bus, router, host = fresh()
    router.register(5, "taken", lambda q: Response.ok())
    before = snapshot(bus, router)
    m = Recorder(name="taken")
    raises(AlreadyRegistered, host.load, m)
    raises(AlreadyRegistered, host.load, Recorder(), 5)
    assert m.log == []
    assert snapshot(bus, router) == before
    host.load(Recorder())
    e = raises(AlreadyRegistered, host.load, Recorder())
    assert "recorder" in str(e)


def test_bad_input():
    bus, router, host = fresh()
    raises(TypeError, host.load, Recorder(name=5))
    raises(ValueError, host.load, Recorder(name=""))

    class Nameless(Module):
        pass

    raises(TypeError, host.load, Nameless())
    raises(TypeError, host.load, Recorder(), "1")
    raises(ValueError, host.load, Recorder(), -1)
    raises(TypeError, host.load, Recorder(), True)
    raises(TypeError, host.unload, 3)
    assert router.module_count() == 0 and bus.subscription_count() == 0


def test_base_module_defaults():
    m = Module(name="plain")
    assert m.handle_event(Event.Tick(0, 0)) is EventResponse.IGNORED
    assert m.handle_request(Request(0, "x")) is Response.NOT_SUPPORTED
    assert m.init(None) is None and m.deinit() is None
    assert Module.topics == () and Module().name is None


def test_default_host_uses_the_global_bus_and_router():
    host = ModuleHost()
    assert host.bus is global_event_bus() and host.router is global_router()


class MyModule(Module):
    # The seed's "Integration with Module System" example, translated. (Python has no
    # Drop, so the module keeps its subscription id and gives it back in deinit.)
    name = "my_module"

    def __init__(self):
        Module.__init__(self)
        self.events = []

    def init(self, ctx):
        # Subscribe to events
        sub = EventSubscription(
            "my_module",
            [EventTopic.TICK, EventTopic.SHUTDOWN],
            lambda event: self.events.append(event) or EventResponse.HANDLED,
        )
        self.sub_id = global_event_bus().subscribe(sub)

        # Register with message router (errors ignored, like the seed's `.ok()`)
        try:
            global_router().register(ctx.module_id, "my_module", lambda req: Response.ok())
        except AlreadyRegistered:
            pass

    def handle_event(self, event):
        # Module-level event handling
        return EventResponse.IGNORED

    def handle_request(self, request):
        # Handle IPC requests
        return Response.NOT_SUPPORTED

    def deinit(self):
        global_event_bus().unsubscribe(self.sub_id)


def test_seed_module_integration_example():
    bus, router = global_event_bus(), global_router()
    before = snapshot(bus, router)
    host = ModuleHost()
    m = MyModule()
    ctx = host.load(m)
    try:
        assert router.get_module_id("my_module") == ctx.module_id
        # The router reaches the handler init registered (Response::ok()), as in the seed.
        assert router.send("my_module", Request(ModuleAddress.Name("client"), "x")) == Response.ok()
        assert router.send(ctx.module_id, Request(0, "x")) == Response.ok()
        # No topics on the class: only init's own subscription sees events.
        assert bus.subscription_count() == before[0] + 1
        res = bus.publish(Event.Tick(5, 1))
        assert res.handled >= 1
        bus.publish(Event.Shutdown())
        assert len(m.events) == 2
        assert isinstance(m.events[0], Event.Tick) and isinstance(m.events[1], Event.Shutdown)
    finally:
        assert host.unload("my_module")
    assert snapshot(bus, router) == before


def test_seed_example_with_host_subscription_too():
    # With `topics` set as well, handle_event is subscribed next to init's own handler.
    bus, router = EventBus(), MessageRouter()

    class Both(MyModule):
        topics = [EventTopic.TICK]

        def init(self, ctx):
            sub = EventSubscription("mine", [EventTopic.TICK], lambda e: EventResponse.HANDLED)
            self.sub_id = ctx.bus.subscribe(sub)
            try:
                ctx.router.register(ctx.module_id, "my_module", lambda req: Response.ok())
            except AlreadyRegistered:
                pass

        def deinit(self):
            bus.unsubscribe(self.sub_id)

    host = ModuleHost(bus, router)
    host.load(Both())
    res = bus.publish(Event.Tick(0, 0))
    assert (res.handled, res.ignored) == (1, 1)
    assert host.unload("my_module")
    assert bus.subscription_count() == 0 and router.module_count() == 0


def test_load_and_unload_from_inside_a_handler():
    bus, router, host = fresh()

    class Loader(Module):
        name = "loader"

        def handle_request(self, request):
            if request.request_type == "load":
                return Response.success(str(host.load(Recorder()).module_id).encode())
            if request.request_type == "unload":
                return Response.success(b"1" if host.unload("recorder") else b"0")
            if request.request_type == "suicide":
                host.unload("loader")
                return Response.ok()
            return Response.NOT_SUPPORTED

    host.load(Loader(), module_id=0)
    assert router.send("loader", Request(0, "load")).data == b"1"
    assert bus.subscription_count() == 1
    assert router.send("loader", Request(0, "unload")).data == b"1"
    assert router.send(0, Request(0, "suicide")) == Response.ok()
    assert router.module_count() == 0 and bus.subscription_count() == 0


def test_load_names_module_name_in_its_errors():
    bus, router, host = fresh()
    e = raises(TypeError, host.load, object())
    assert "module.name" in str(e) and "NoneType" in str(e), str(e)
    e = raises(ValueError, host.load, Recorder(name=""))
    assert "module.name" in str(e), str(e)
    assert router.module_count() == 0 and bus.subscription_count() == 0


class Probe(Module):
    # init and deinit only flip a flag that exists already (they allocate nothing).
    name = "second"
    topics = [EventTopic.TICK]

    def __init__(self):
        Module.__init__(self)
        self.live = False

    def init(self, ctx):
        self.live = True

    def deinit(self):
        self.live = False

    def handle_request(self, request):
        return Response.ok()


def test_load_memory_error_at_each_allocation_leaves_nothing():
    from test_router_alloc import at_each_allocation

    bus, router, host = fresh()
    host.load(Recorder(name="first"))

    def state():
        return snapshot(bus, router) + (host.loaded(),)

    modules = [Probe() for _ in range(400)]  # made beforehand: one per attempt
    tries = [0]

    def load():
        m = modules[tries[0]]
        tries[0] += 1
        host.load(m)

    failed = at_each_allocation(load, state)
    assert failed >= 3  # the Context, the subscription, the registration, the host's entry
    assert sorted(host.loaded()) == ["first", "second"]
    assert router.send("second", Request(0, "x")) == Response.ok()
    res = bus.publish(Event.Tick(0, 0))
    assert (res.handled, res.ignored) == (1, 1)  # first's handler, then second's default
    for m in modules[:failed]:  # each failed load was undone, deinit included
        assert not m.live
    assert modules[failed].live
