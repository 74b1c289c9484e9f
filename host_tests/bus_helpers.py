# bus_helpers: small helpers shared by the event-bus tests (both interpreters).


def recorder(log, tag, ret=None):
    """A handler that appends `tag` to `log` and returns `ret`."""
    def handler(event):
        log.append(tag)
        return ret
    return handler


def quiet(bus):
    """Capture the bus's error reports, (where, error) pairs, in a list (returned)
    instead of printing them."""
    errors = []
    bus.error_hook = lambda where, error: errors.append((where, error))
    return errors


def where(*names):
    """The `where` of each named subscription, as the bus passes it to error_hook."""
    return ["subscription %r" % n for n in names]


def counts(result):
    return (result.handled, result.ignored, result.deferred, result.errors)


def fill_heap(slots):
    """Fill `slots` (a preallocated list) with blocks until MemoryError, largest first,
    down to the smallest; returns how many it filled. (A list, not a chain: a stale
    pointer the conservative GC finds on the C stack keeps one block alive, not all.)"""
    import gc

    n = 0
    size = gc.mem_free() - 8192  # one ballast block first: each MemoryError below costs a collection
    while size > 4096:
        try:
            slots[0] = bytearray(size)
            n = 1
            break
        except MemoryError:
            size >>= 1
    size = 4096
    while size and n < len(slots):
        try:
            while n < len(slots):
                slots[n] = bytearray(size)
                n += 1
        except MemoryError:
            size >>= 1
    return n


def release(slots, n, k):
    """Free the k most recent (smallest) of the n filled blocks."""
    while k > 0 and n > 0:
        n -= 1
        k -= 1
        slots[n] = None
    return n


def clear(slots):
    for i in range(len(slots)):
        slots[i] = None


def atomic_under_exhaustion(call, state, steps=200):
    """Fill the heap, free a budget of the smallest blocks (one more at first, then ~12%
    more each step), call `call()`: every MemoryError must leave `state()` (compared
    with ==) as it was. Stops at the first call that succeeds; returns (MemoryErrors
    seen, its result). MicroPython only (a bounded heap)."""
    import gc

    slots = [None] * 4096
    gc.collect()
    before = state()
    failures = 0
    k = 0
    for _ in range(steps):
        k += 1 + k // 8
        release(slots, fill_heap(slots), k - 1)
        try:
            result = call()
        except MemoryError:
            clear(slots)
            gc.collect()
            failures += 1
            now = state()
            if now != before:
                raise AssertionError("state changed by a call that raised MemoryError "
                                     "(budget %d): %r != %r" % (k, now, before))
            continue
        clear(slots)
        gc.collect()
        return failures, result
    raise AssertionError("the call never succeeded in %d steps" % steps)
