# Modules as tasks: ModuleHost.start_tasks/stop_tasks, Module.run, serve tasks, unload
# cancelling them, failing runs reported and counted, and the host without asyncio.
# Each test calls asyncio.run(main()); no assertion on wall-clock time (LONG is only a
# bound against hangs).
import sys

import support

from helix_ipc import ChannelClosed, EventBus, MessageRouter, Module, ModuleHost, ModuleNotFound, Request, Response, channel

LONG = 10000  # ms


def _asyncio():
    import asyncio

    return asyncio


async def _settle(asyncio, n=6):
    for _ in range(n):
        await asyncio.sleep(0)


def _host():
    router = MessageRouter()
    errors = []
    router.error_hook = lambda where, e: errors.append((where, e))
    return ModuleHost(EventBus(), router), errors


class Worker(Module):
    # run() records its ctx, then receives from a channel until cancelled.
    def __init__(self, name="worker"):
        Module.__init__(self, name)
        self.log = []
        self.tx, self.rx = channel(4)

    def handle_request(self, request):
        self.log.append(("request", request.request_type))
        return Response.success(request.payload)

    async def run(self, ctx):
        self.log.append(("run", ctx.name, ctx.module_id, ctx.router is not None))
        try:
            while True:
                self.log.append(("item", await self.rx.recv()))
        except BaseException as e:  # CancelledError is a BaseException on both interpreters
            self.log.append(("ended", type(e).__name__))
            raise


class Failing(Module):
    name = "failing"

    def __init__(self, error):
        Module.__init__(self)
        self.error = error

    async def run(self, ctx):
        await _asyncio().sleep(0)
        raise self.error


def test_run_starts_with_its_context_and_serve_answers_requests():
    asyncio = _asyncio()

    async def main():
        host, errors = _host()
        w = Worker()
        ctx = host.load(w)
        assert w.log == []  # nothing runs before start_tasks
        host.start_tasks()
        await _settle(asyncio)
        assert w.log == [("run", "worker", ctx.module_id, True)]
        w.tx.send("a")
        await _settle(asyncio)
        assert w.log[-1] == ("item", "a")

        async def client():  # another task asks; the module's serve task answers
            return await host.router.request("worker", Request(0, "ping", b"P"), LONG)

        r = await asyncio.create_task(client())
        assert r.is_success and r.data == b"P"
        assert ("request", "ping") in w.log
        host.router.queue(ctx.module_id, Request(0, "queued"))
        await _settle(asyncio)
        assert w.log[-1] == ("request", "queued") and host.router.mailbox_size(ctx.module_id) == 0
        host.stop_tasks()
        await _settle(asyncio)
        assert w.log[-1] == ("ended", "CancelledError")
        assert errors == [] and host.task_errors == 0
        assert host.loaded() == ["worker"]  # stop_tasks keeps the modules loaded
        host.unload("worker")

    asyncio.run(main())


def test_modules_loaded_while_started_get_their_tasks_and_plain_modules_are_served():
    asyncio = _asyncio()

    async def main():
        host, errors = _host()
        plain = Module(name="plain")  # no run: only a serve task (answers NOT_SUPPORTED)
        host.load(plain)
        host.start_tasks()
        host.start_tasks()  # again: modules with tasks keep theirs
        w = Worker("late")
        host.load(w)
        await _settle(asyncio)
        assert w.log[0][0:2] == ("run", "late")
        r = await host.router.request("plain", Request(0, "x"), LONG)
        assert r == Response.NOT_SUPPORTED
        r = await host.router.request("late", Request(0, "y", b"Y"), LONG)
        assert r.data == b"Y"
        assert [e for e in w.log if e[0] == "request"] == [("request", "y")]  # served once
        host.stop_tasks()
        w2 = Worker("after_stop")
        host.load(w2)  # stopped: no tasks any more
        await _settle(asyncio)
        assert w2.log == []
        for name in host.loaded():
            host.unload(name)
        assert errors == []

    asyncio.run(main())


def test_unload_cancels_both_tasks_and_leaves_no_waiter():
    asyncio = _asyncio()

    async def main():
        host, errors = _host()
        w = Worker()
        ctx = host.load(w)
        host.start_tasks()
        await _settle(asyncio)
        router = host.router
        assert (await router.request("worker", Request(0, "a"), LONG)).is_success
        mb = router._ids[ctx.module_id].mailbox
        assert mb._aio.head is not None and w.rx._aio.head is not None  # both tasks wait
        tasks = host._loaded["worker"][3]
        assert host.unload("worker")
        await _settle(asyncio)
        assert w.log[-1] == ("ended", "CancelledError")  # run saw its cancellation
        assert all(t.done() for t in tasks)
        assert mb._aio.head is None and w.rx._aio.head is None  # no waiter left behind
        support.raises(ModuleNotFound, router.queue, "worker", Request(0, "b"))
        n = len(w.log)
        w.tx.send("late")
        await _settle(asyncio)
        assert len(w.log) == n  # no further items or answers
        assert errors == [] and host.task_errors == 0

    asyncio.run(main())


def test_a_module_that_unloads_itself_from_a_request_is_not_cancelled_midway():
    asyncio = _asyncio()

    async def main():
        host, errors = _host()
        answered = []

        class Quitter(Module):
            name = "quitter"

            def handle_request(self, request):
                host.unload("quitter")  # runs in its own serve task
                return Response.success(b"bye")

        host.load(Quitter())
        host.start_tasks()
        tasks = host._loaded["quitter"][3]
        host.router.queue("quitter", Request(0, "quit"), answered.append)
        await _settle(asyncio)
        assert [r.data for r in answered] == [b"bye"]
        assert host.loaded() == [] and errors == [] and host.task_errors == 0
        assert tasks[0].done()  # its serve task ended by itself

        steps = []

        class Leaver(Module):  # a run that unloads its own module carries on until it returns
            name = "leaver"

            async def run(self, ctx):
                host.unload("leaver")
                steps.append("unloaded")
                await asyncio.sleep(0)
                steps.append("returned")

        host.load(Leaver())
        tasks = host._loaded["leaver"][3]
        await _settle(asyncio)
        assert steps == ["unloaded", "returned"] and all(t.done() for t in tasks)
        assert host.loaded() == [] and errors == [] and host.task_errors == 0
        host.stop_tasks()

    asyncio.run(main())


def test_a_failing_run_is_reported_with_the_exception_and_counted():
    asyncio = _asyncio()

    async def main():
        host, errors = _host()
        boom = ValueError("boom")
        host.load(Failing(boom))
        host.start_tasks()
        await _settle(asyncio)
        assert host.task_errors == 1
        assert len(errors) == 1 and errors[0][1] is boom, errors
        assert "failing" in errors[0][0] and "run" in errors[0][0]
        # the module stays loaded and its serve task keeps answering
        assert (await host.router.request("failing", Request(0, "x"), LONG)) == Response.NOT_SUPPORTED

        class Sync(Module):  # a run that is not async: the TypeError of awaiting it is reported
            name = "sync"

            def run(self, ctx):
                return None

        host.load(Sync())
        await _settle(asyncio)
        assert host.task_errors == 2 and isinstance(errors[1][1], TypeError) and "sync" in errors[1][0]
        host.stop_tasks()
        for name in host.loaded():
            host.unload(name)

    asyncio.run(main())


def test_a_failing_run_without_error_hook_goes_to_stderr_and_is_counted():
    asyncio = _asyncio()

    async def main():
        host = ModuleHost(EventBus(), MessageRouter())
        host.load(Failing(RuntimeError("no hook")))
        host.start_tasks()
        await _settle(asyncio)
        assert host.task_errors == 1
        host.stop_tasks()
        host.unload("failing")

    asyncio.run(main())


def test_cancelling_a_run_is_not_an_error():
    asyncio = _asyncio()

    async def main():
        host, errors = _host()
        w = Worker()
        host.load(w)
        host.start_tasks()
        await _settle(asyncio)
        host._loaded["worker"][3][1].cancel()  # the run task, cancelled from outside
        await _settle(asyncio)
        assert w.log[-1] == ("ended", "CancelledError")
        assert errors == [] and host.task_errors == 0
        assert (await host.router.request("worker", Request(0, "x"), LONG)).is_success  # serve lives on
        w.tx.close()
        host.stop_tasks()
        host.unload("worker")

    asyncio.run(main())


def test_load_while_started_under_memory_exhaustion_leaves_the_host_as_it_was():
    if not support.MICROPYTHON:
        support.skip("needs a bounded heap (MicroPython)")
    from bus_helpers import atomic_under_exhaustion

    asyncio = _asyncio()

    async def main():
        host, errors = _host()
        host.start_tasks()
        host.load(Worker("warm"))  # the lazy parts loaded
        await _settle(asyncio)
        host.unload("warm")
        await _settle(asyncio)

        def state():
            return (host.loaded(), host.router.module_count(), host.bus.subscription_count())

        w = Worker()
        failures, ctx = atomic_under_exhaustion(lambda: host.load(w), state)
        assert failures > 0
        await _settle(asyncio)
        assert w.log[0][0] == "run"  # the load that succeeded started exactly one run
        assert len([e for e in w.log if e[0] == "run"]) == 1
        host.stop_tasks()
        host.unload("worker")
        await _settle(asyncio)

    asyncio.run(main())


def test_without_asyncio_the_host_works_and_start_tasks_raises_not_implemented():
    saved = sys.modules.get("asyncio")
    aio_saved = sys.modules.pop("helix_ipc.aio", None)
    sys.modules["asyncio"] = None  # type: ignore[assignment]  # import asyncio fails
    try:
        host, errors = _host()
        w = Worker()
        ctx = host.load(w)
        e = support.raises(NotImplementedError, host.start_tasks)
        assert "asyncio" in str(e), e
        host.stop_tasks()  # nothing started: a no-op
        seen = []
        host.router.queue(ctx.module_id, Request(0, "q"), seen.append)
        assert host.router.process_mailbox(ctx.module_id, 4) == 1 and seen[0].is_success
        host.load(Worker("second"))  # loading still works and starts nothing
        assert w.log == [("request", "q")]
        assert host.unload("worker") and host.unload("second") and host.loaded() == []
    finally:
        if saved is None:
            del sys.modules["asyncio"]
        else:
            sys.modules["asyncio"] = saved
        if aio_saved is not None:
            sys.modules["helix_ipc.aio"] = aio_saved


def test_channel_closed_ends_a_run_normally():
    asyncio = _asyncio()

    class Drainer(Module):
        name = "drainer"

        def __init__(self):
            Module.__init__(self)
            self.tx, self.rx = channel(2)
            self.got = []

        async def run(self, ctx):
            try:
                while True:
                    self.got.append(await self.rx.recv())
            except ChannelClosed:
                self.got.append("closed")

    async def main():
        host, errors = _host()
        d = Drainer()
        host.load(d)
        host.start_tasks()
        d.tx.send(1)
        d.tx.close()
        await _settle(asyncio)
        assert d.got == [1, "closed"]
        assert host._loaded["drainer"][3][1].done() and errors == []
        host.stop_tasks()
        host.unload("drainer")

    asyncio.run(main())
