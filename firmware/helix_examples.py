# helix_examples: the example modules the firmware loads (task context only: their
# handlers run from the bus's drain or the router; the button's IRQ handler is the one
# hard-IRQ entry point, and it only calls the allocation-free publish_from_isr).
#
#   heartbeat  blinks the status LED at 1 Hz from Tick events; answers "get_blinks"
#   stats      counts every event by topic; answers "get_stats" like the seed's
#              scheduler example ("ticks=...,events=...") and "reset"
#   button     where the profile names a button pin: a hard IRQ on the pin publishes
#              Event.Interrupt(pin, 0); counts presses; answers "get_presses"
from helix_ipc import Event, EventTopic, Module, Response, SubscriptionPriority
from helix_ipc._compat import machine_module, ticks_ms, ticks_diff


def _pin(pin_id, mode_name):
    # A machine.Pin, or None where this board has no machine.Pin (CPython).
    machine = machine_module()
    pin_class = getattr(machine, "Pin", None) if machine is not None else None
    if pin_class is None or pin_id is None:
        return None
    return pin_class(pin_id, getattr(pin_class, mode_name))


class Heartbeat(Module):
    """Toggles the status LED every half second of ticks (so it blinks at 1 Hz)."""

    name = "heartbeat"
    topics = [EventTopic.TICK]

    def __init__(self, led_pin=None, tick_hz=100):
        Module.__init__(self)
        self.led_pin = led_pin
        self.half_period = max(1, tick_hz // 2)
        self.led = None
        self.blinks = 0
        self.last_tick = 0

    def init(self, ctx):
        self.led = _pin(self.led_pin, "OUT")

    def handle_event(self, event):
        self.last_tick = event.tick_number
        if event.tick_number % self.half_period == 0:
            self.blinks += 1
            if self.led is not None:
                self.led.toggle()

    def handle_request(self, request):
        if request.request_type == "get_blinks":
            return Response.success(b"%d" % self.blinks)
        return Response.NOT_SUPPORTED

    def deinit(self):
        if self.led is not None:
            self.led.value(0)


class Stats(Module):
    """Counts events per topic; runs last (lowest priority) on every topic."""

    name = "stats"
    topics = [EventTopic.ALL]
    priority = SubscriptionPriority.LOWEST

    def __init__(self):
        Module.__init__(self)
        self.ticks = 0
        self.events = 0
        self.interrupts = 0
        self.started_ms = ticks_ms()

    def handle_event(self, event):
        self.events += 1
        if isinstance(event, Event.Tick):
            self.ticks += 1
        elif isinstance(event, Event.Interrupt):
            self.interrupts += 1

    def handle_request(self, request):
        kind = request.request_type
        if kind == "get_stats":
            return Response.success(
                b"ticks=%d,events=%d,interrupts=%d,uptime_ms=%d"
                % (self.ticks, self.events, self.interrupts, ticks_diff(ticks_ms(), self.started_ms))
            )
        if kind == "reset":
            self.ticks = self.events = self.interrupts = 0
            return Response.ok()
        return Response.NOT_SUPPORTED


class Button(Module):
    """A push button on `pin_id`: a hard IRQ posts Event.Interrupt(pin_id, 0)."""

    name = "button"
    topics = [EventTopic.INTERRUPT]

    def __init__(self, pin_id):
        Module.__init__(self)
        self.pin_id = pin_id
        self.presses = 0
        self.pin = None
        self._post = None
        self._irq_cb = self._irq  # made once: taking a bound method in an IRQ allocates

    def init(self, ctx):
        self._post = ctx.bus.publish_from_isr
        pin = _pin(self.pin_id, "IN")
        if pin is None or not hasattr(pin, "irq"):
            raise RuntimeError("button: this board has no machine.Pin with irq()")
        trigger = getattr(pin, "IRQ_FALLING", 0)
        try:
            pin.irq(handler=self._irq_cb, trigger=trigger, hard=True)
        except (TypeError, ValueError):  # ports whose pin IRQs cannot be hard
            pin.irq(handler=self._irq_cb, trigger=trigger)
        self.pin = pin

    def _irq(self, pin):
        # Hard-IRQ context: allocation-free post, counted by the bus when dropped.
        self._post(Event.Interrupt, self.pin_id, 0)

    def handle_event(self, event):
        if event.vector == self.pin_id:
            self.presses += 1

    def handle_request(self, request):
        if request.request_type == "get_presses":
            return Response.success(b"%d" % self.presses)
        return Response.NOT_SUPPORTED

    def deinit(self):
        if self.pin is not None:
            self.pin.irq(handler=None)
