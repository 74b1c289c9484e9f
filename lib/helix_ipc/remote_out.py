# helix_ipc.remote_out: the requesting half of remote.Peer (requests to the other node,
# their deadlines, router proxies, our subscriptions to its events, explicit publish),
# loaded by the first use of one of METHODS on a Peer (Peer.__getattr__ imports this
# module, which adds them to Peer as methods): a board that only answers the host never
# pays for it. Functions of a Peer; see remote.py for the contract. Task context only.

from . import wire
from ._compat import const, ticks_add, ticks_diff, ticks_ms
from .errors import IpcError
from .events import EventTopic
from .messages import Response
from .remote import EVT, REQ, SUBS, Peer

# indices into Peer.counts (remote.NAMES)
_REQUESTS_OUT = const(6)
_RESPONSES_IN = const(7)
_TIMEOUTS = const(8)
_LINK_FAILURES = const(10)
_CALLBACK_ERRORS = const(14)
_EVENTS_OUT = const(16)
_EVENTS_UNWANTED = const(18)
_MALFORMED = const(2)
_MASK = const((1 << 29) - 1)


class LinkDown(IpcError):
    """The remote node is not connected (or the connection was lost mid-request):
    raised by peer.request. (Here, not in remote: only the requesting half raises it.)"""


# -- the requester's conversions (wire.py has the answerer's) ---------------------------------

def topic_to_obj(topic):
    """A built-in topic as its small int, a custom one as its name (str)."""
    if not isinstance(topic, EventTopic):
        raise TypeError("wire: not an EventTopic: " + type(topic).__name__)
    return topic._key


def request_to_obj(req):
    """[request_type, payload (base64 text), priority]."""
    return [req.request_type, wire.b64(req.payload), req.priority]


def obj_to_response(obj):
    """The Response from wire.response_to_obj's value; WireError when it is none."""
    if obj == [3]:
        return Response.NOT_SUPPORTED
    if isinstance(obj, list) and len(obj) == 2 and obj[0] in (0, 1, 2) and type(obj[0]) is int and \
            isinstance(obj[1], str):
        return (Response.Success, Response.Rejected, Response.Error)[obj[0]](wire.unb64(obj[1]) if obj[0] == 0 else obj[1])
    raise wire.WireError("wire: bad response")



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
    p._asked = False  # before the mailboxes are read: a request arriving meanwhile asks again
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
                p._count(_TIMEOUTS, e[2], None)
                fail(p, e, Response.Error("%s: no answer from %s within the deadline" % (e[2], p.remote)))


def queue(p, module, request, callback, timeout_ms=None, label=None, box=None):
    """peer.queue(module, request, callback, timeout_ms=None) -> cid: send `request` to
    `module` (its name over there); `callback(Response)` is called exactly once: with
    the answer, or with Response.Error when the link is down, the queue full, or no
    answer came within timeout_ms (default: the peer's; 0: none)."""
    label = label or "%s/%s" % (p.remote, module)
    # correlation ids: the peer's first starts from the time (a fresh start per process, see docs)
    cid = p._cid = ((getattr(p, "_cid", None) or ticks_diff(ticks_ms(), 0) * 7919 & 0xFFFFF) + 1) & _MASK
    if p.remote is None:
        p._count(_LINK_FAILURES)
        callback(Response.Error("%s: not connected" % label))
        return cid
    t = p.timeout_ms if timeout_ms is None else timeout_ms
    e = [callback, ticks_add(ticks_ms(), t) if t else None, label, box]
    if not p._post([REQ, cid, module, request_to_obj(request)]):
        callback(Response.Error("%s: outgoing queue full" % label))
        return cid
    p._pending[cid] = e
    p._count(_REQUESTS_OUT)
    return cid


def request(p, module, req, timeout_ms=None):
    """`await peer.request(module, request, timeout_ms)`: the Response; Timeout when
    none came in time (a later one is dropped, counted in late_responses); LinkDown
    when the link is down or is lost meanwhile."""
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
            p._count(_TIMEOUTS)
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
    _call(p, e[0], response)


def _call(p, cb, response):
    try:
        cb(response)
    except Exception as x:
        p._count(_CALLBACK_ERRORS, "callback", x)


def fail_all(p, was, reason):
    # the link to `was` is lost: every pending request fails
    pending = p._pending
    p._pending = {}
    for cid in pending:
        p._count(_LINK_FAILURES)
        e = pending[cid]
        fail(p, e, Response.Error("%s: link to %s lost: %s" % (e[2], was, reason)))


def answer(p, e, obj):
    # the answer (a RESP's response value) for pending entry e
    p._count(_RESPONSES_IN)
    try:
        r = obj_to_response(obj)
    except wire.WireError:
        r = Response.Error("%s: malformed answer" % e[2])
        p._count(_MALFORMED, "answer", obj)
    _call(p, e[0], r)  # (peer.request's box.answer too)


def proxy(p, module, local_name=None, module_id=None):
    """peer.proxy(module, local_name=None, module_id=None): register `local_name`
    (default prefix + module) in the local router for the remote `module`; returns its
    module id (1000 up). router.queue/request to it go to the other node; router.send
    returns Response.Error naming them."""
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
    if "_ask" not in p.__dict__:
        p._ask = lambda: _asked(p)  # one per peer: every proxy mailbox's notify hook
    mb.notify = p._ask
    p._proxies.append((m, module))
    return module_id


def _asked(p):
    # a proxy mailbox got a request (any thread): service() turns it into a message
    p._asked = True
    w = p.wake
    if w is not None:
        w()


def unproxy(p):
    """peer.unproxy(): unregister every proxy module."""
    for m, _ in p._proxies:
        p.router.unregister(m.id)
    p._proxies = []


def _refuse_send(p):
    return Response.Error("module on node %s across a link: router.send() cannot wait for it; use"
                          " await router.request() or router.queue()" % p.remote)


def _announce(p):
    if p.remote is not None:
        p._post([SUBS, list(p.wanted)])


def subscribe(p, topics):
    """Ask the other node for events on these EventTopics (announced now, and again
    at every (re)connection); they are published on the local bus."""
    for t in topics:
        p.wanted.add(topic_to_obj(t))
    _announce(p)


def unsubscribe(p, topics):
    for t in topics:
        p.wanted.discard(topic_to_obj(t))
    _announce(p)


def stream(p, topics, capacity=16):
    """subscribe(topics), and a bus.stream of them on the local bus."""
    subscribe(p, topics)
    return p.bus.stream(topics, capacity)


def publish(p, event):
    """Send `event` to the other node if it subscribed to its topic; True if queued."""
    t = event.topic._key
    w = p.remote_wants
    if t not in w and 6 not in w:
        p._count(_EVENTS_UNWANTED)
        return False
    ok = p._post([EVT, wire.event_to_obj(event)], True)
    if ok:
        p._count(_EVENTS_OUT)
    return ok


METHODS = ("queue", "request", "proxy", "unproxy", "subscribe", "unsubscribe", "stream", "publish")
for _f in (queue, request, proxy, unproxy, subscribe, unsubscribe, stream, publish):
    setattr(Peer, _f.__name__, _f)
Peer._pump_out = pump  # type: ignore[attr-defined]  # Peer.service's requesting half
