# tools/bench/floors.py: the floors of shared/BENCH.md — the least any implementation
# of the same interface could cost. Benchmark process only.


class RingFloor:
    # send/recv only write/read a preallocated slot and advance an index.
    def __init__(self, size):
        self.buf = [None] * size
        self.size = size
        self.head = 0
        self.tail = 0

    def send(self, x):
        self.buf[self.head] = x
        self.head = (self.head + 1) % self.size

    def recv(self):
        x = self.buf[self.tail]
        self.tail = (self.tail + 1) % self.size
        return x


class DispatchFloor:
    # publish looks the topic up and calls each handler, nothing else.
    def __init__(self):
        self.index = {}

    def add(self, topic, handler):
        self.index.setdefault(topic, []).append(handler)

    def publish(self, event):
        handlers = self.index.get(event.topic)
        for h in handlers:
            h(event)


class RouteFloor:
    # send calls the handler registered under the name, nothing else.
    def __init__(self):
        self.handlers = {}

    def send(self, name, request):
        return self.handlers[name](request)


class SlotFloor:
    # What an IRQ post must at least do: three small ints into three preallocated
    # lists at an index, and advance it.
    def __init__(self, size):
        self.a = [0] * size
        self.b = [0] * size
        self.c = [0] * size
        self.size = size
        self.i = 0

    def post(self, x, y, z):
        i = self.i
        self.a[i] = x
        self.b[i] = y
        self.c[i] = z
        self.i = (i + 1) % self.size
