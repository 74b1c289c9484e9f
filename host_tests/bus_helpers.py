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
