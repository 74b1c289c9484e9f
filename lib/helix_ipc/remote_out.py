# helix_ipc.remote_out: the requesting half of remote.Peer (requests to the other node,
# their deadlines, router proxies), loaded by the first Peer.queue/request/proxy: a board
# that only answers the host never pays for it. Functions of a Peer; see remote.py for
# the contract. Task context only.

from . import wire
from ._compat import const, ticks_add, ticks_diff, ticks_ms
from .messages import Response
from .remote import REQ, LinkDown

_MASK = const((1 << 29) - 1)


class _Box:
    # one awaited request (peer.request)
    def __init__(self):
        from .aio import _new_flag

        self.flag = _new_flag()
        self.response = None

    def answer(self, response):
        self.response = response
        self.flag.set()


def _ignore(response):
    pass


def pump(p):
    # Peer.service's requesting half: proxy mailboxes into REQ messages, deadlines.
    lock = p.router._lock
    for m, module in p._proxies:
        mb = m.mailbox
        while mb is not None and mb.count:
            lock.acquire()
            req = mb.pop() if mb.count else None
            cb = mb.callback
            mb.callback = None
            lock.release()
            if req is not None:
                queue(p, module, req, cb or _ignore, None, m.name)
    if p._pending:
        now = ticks_ms()
        for cid in list(p._pending):
            e = p._pending[cid]
            if e[1] is not None and ticks_diff(now, e[1]) >= 0:
                del p._pending[cid]
                p._count("timeouts", e[2], None)
                fail(p, e, Response.Error("%s: no answer from %s within the deadline" % (e[2], p.remote)))


def queue(p, module, request, callback, timeout_ms=None, label=None, box=None):
    label = label or "%s/%s" % (p.remote, module)
    cid = p._cid = (p._cid + 1) & _MASK
    if p.remote is None:
        p._count("link_failures")
        callback(Response.Error("%s: not connected" % label))
        return cid
    t = p.timeout_ms if timeout_ms is None else timeout_ms
    e = [callback, ticks_add(ticks_ms(), t) if t else None, label, box]
    if not p._post([REQ, cid, module, wire.request_to_obj(request)]):
        callback(Response.Error("%s: outgoing queue full" % label))
        return cid
    p._pending[cid] = e
    p.requests_out = (p.requests_out + 1) & _MASK
    return cid


def request(p, module, req, timeout_ms=None):
    from .aio import _deadline

    return _request(p, module, req, _deadline(timeout_ms), timeout_ms)


async def _request(p, module, req, deadline, timeout_ms):
    from .aio import _sleep

    if p.remote is None:
        raise LinkDown("%s: not connected" % module)
    box = _Box()
    cid = queue(p, module, req, box.answer, 0, None, box)  # the deadline is ours here
    try:
        while box.response is None:
            await _sleep(box, deadline, timeout_ms)
    except BaseException:  # Timeout or cancelled: an answer from now on is late
        if p._pending.pop(cid, None) is not None:
            p._count("timeouts")
        raise
    r = box.response
    if r.__class__ is LinkDown:
        raise r
    return r


def fail(p, e, response):
    # a local failure (deadline, lost link) of pending entry e
    if e[3] is not None:  # peer.request: raised there
        e[3].answer(LinkDown(response.message))
        return
    p._call(e[0], response)


def proxy(p, module, local_name=None, module_id=None):
    from .router import _Mailbox

    r = p.router
    local_name = local_name or p.prefix + module
    if module_id is None:
        module_id = 1000
        while r._ids.get(module_id) is not None:
            module_id += 1
    r.register(module_id, local_name, lambda request: _refuse_send(p))
    m = r._ids.get(module_id)
    m.mailbox = mb = _Mailbox(m.capacity)
    mb.notify = p.wake
    p._proxies.append((m, module))
    return module_id


def unproxy(p):
    for m, _ in p._proxies:
        p.router.unregister(m.id)
    p._proxies = []


def _refuse_send(p):
    return Response.Error("module on node %s across a link: router.send() cannot wait for it; use"
                          " await router.request() or router.queue()" % p.remote)
