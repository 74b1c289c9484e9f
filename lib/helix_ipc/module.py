# helix_ipc.module: modules that live on the event bus and the message router.
#
# Subclass Module; a ModuleHost loads it (init, subscribe handle_event to its topics,
# register handle_request under its name) and unloads it (undo all three, then deinit).
# Task context only (main loop, scheduler callback, thread): loading subscribes and
# registers, which take the bus's and the router's locks. Loading or unloading from
# inside a handler is fine (neither lock is held while user code runs). A load that
# fails at any step, MemoryError included, undoes the steps already taken.
#
# Modules as tasks (asyncio): once start_tasks() was called from a task, every loaded
# module gets a task serving its mailbox (router.serve) and, when the module defines
# `async def run(self, ctx)`, a task running it; modules loaded later get theirs at
# load. unload and stop_tasks cancel them. The task logic lives in helix_ipc.aio,
# imported by these calls only: this module imports and works without asyncio.

# The bus, the router and their value modules load with the first host or default
# handler call, not at import.
from .errors import AlreadyRegistered


class Context:
    """What a module gets at init: `module_id` (int), `name`, `bus` (EventBus) and
    `router` (MessageRouter)."""

    def __init__(self, module_id, name, bus, router):
        self.module_id = module_id
        self.name = name
        self.bus = bus
        self.router = router

    def __repr__(self):
        return "Context(module_id=%d, name=%r)" % (self.module_id, self.name)


class Module:
    """Base class of modules. Set `name` (a non-empty str) and `topics` (a list of
    EventTopic values; empty: no event subscription), optionally `priority` (a
    SubscriptionPriority for handle_event); override what you need. `Module(name=...,
    topics=...)` sets them per instance."""

    name = None
    topics = ()
    priority = None  # SubscriptionPriority of handle_event; None: the bus default

    def __init__(self, name=None, topics=None):
        if name is not None:
            self.name = name
        if topics is not None:
            self.topics = topics

    def init(self, ctx):
        """Called first by ModuleHost.load with the module's Context. Raising aborts
        the load and leaves nothing registered."""

    def handle_event(self, event):
        """An event on one of `topics`. Returns an EventResponse (None: handled)."""
        from .events import EventResponse

        return EventResponse.IGNORED

    def handle_request(self, request):
        """A request from the router. Returns a Response."""
        from .messages import Response

        return Response.NOT_SUPPORTED

    def deinit(self):
        """Called last by ModuleHost.unload."""

    # async def run(self, ctx): optional. Under ModuleHost.start_tasks it runs as a task
    # with the module's Context; unload cancels it (CancelledError at its next await).
    # An exception it raises is counted in the host's task_errors and passed to the
    # router's error_hook("module 'name' run", exception).


class ModuleHost:
    """Loads and unloads Modules on a bus and a router (the global ones by default).

    `task_errors`: run/serve tasks that ended with an exception (wraps at 2**29)."""

    task_errors = 0
    _started = False  # start_tasks() called, stop_tasks() not yet

    def __init__(self, bus=None, router=None):
        if bus is None:
            from .bus import global_event_bus

            bus = global_event_bus()
        if router is None:
            from .router import global_router

            router = global_router()
        self.bus = bus
        self.router = router
        self._loaded = {}  # name -> [module, ctx, subscription id or None, tasks or None]

    def load(self, module, module_id=None):
        """init(ctx), then subscribe module.handle_event to module.topics (unless empty),
        then register module.handle_request under module.name and `module_id` (the
        lowest free id from 1 up when None). Returns the Context. If any step fails,
        the steps already taken are undone and the error propagates.

        A module whose init registers itself under ctx.module_id and its own name (as
        the seed's example does) keeps that registration: the host does not register
        handle_request over it, and unload still unregisters the id."""
        from .errors import check_int
        from .messages import check_name

        name = check_name(getattr(module, "name", None), "module.name")
        if name in self._loaded:
            raise AlreadyRegistered("module %r is already loaded by this host" % name)
        router = self.router
        if router.get_module_id(name) is not None:
            raise AlreadyRegistered("module name %r is already registered with the router" % name)
        topics = module.topics
        if module_id is None:
            module_id = 1
            while router.is_registered(module_id):
                module_id += 1
        else:
            check_int(module_id, "module_id", 0)
            if router.is_registered(module_id):
                raise AlreadyRegistered("module id %d is already registered with the router" % module_id)
        ctx = Context(module_id, name, self.bus, router)
        try:
            module.init(ctx)
        except BaseException:
            # init may have registered under its id before failing: take that back too.
            router.unregister(module_id)
            raise
        sub_id = None
        tasks = None
        try:
            if topics:
                sub_id = self._subscribe(module, name, topics)
            if router.get_module_id(name) != module_id:
                router.register(module_id, name, module.handle_request)
            if self._started:
                from .aio import module_tasks

                tasks = module_tasks(self, name, module, ctx)
            # The last step that allocates: a MemoryError here is undone like any other.
            self._loaded[name] = [module, ctx, sub_id, tasks]
        except BaseException:
            if tasks is not None:
                from .aio import cancel

                cancel(tasks)
            if sub_id is not None:
                self.bus.unsubscribe(sub_id)
            router.unregister(module_id)
            module.deinit()
            raise
        return ctx

    def _subscribe(self, module, name, topics):
        from .bus import EventSubscription

        sub = EventSubscription(name, topics, module.handle_event)
        if module.priority is not None:
            sub.with_priority(module.priority)
        return self.bus.subscribe(sub)

    def unload(self, name):
        """Cancel the module's tasks (if start_tasks() made them), unsubscribe,
        unregister, then deinit the module loaded under `name`; False if no such module
        is loaded by this host. It does not wait: a cancelled task sees CancelledError
        at its next await, after deinit. A task that unloads its own module is not
        cancelled (MicroPython's asyncio cannot cancel the running task): its serve ends
        by itself, its run carries on until it returns."""
        from .messages import check_name

        check_name(name)
        entry = self._loaded.pop(name, None)
        if entry is None:
            return False
        module, ctx, sub_id, tasks = entry
        if tasks is not None:
            from .aio import cancel

            cancel(tasks)
        if sub_id is not None:
            self.bus.unsubscribe(sub_id)
        self.router.unregister(ctx.module_id)
        module.deinit()
        return True

    def start_tasks(self):
        """From a task (asyncio): start the tasks of every loaded module (see the header)
        and of every module loaded from now on, until stop_tasks(). Modules that have
        theirs already keep them. NotImplementedError without asyncio."""
        from .aio import start_tasks

        start_tasks(self)

    def stop_tasks(self):
        """Cancel the tasks of every loaded module (they stay loaded); modules loaded
        from now on get none. Call it before the event loop ends."""
        from .aio import stop_tasks

        stop_tasks(self)

    def get(self, name):
        """The Context of the module loaded under `name`, or None."""
        entry = self._loaded.get(name)
        return None if entry is None else entry[1]

    def loaded(self):
        """Names of the modules this host has loaded."""
        return list(self._loaded)
