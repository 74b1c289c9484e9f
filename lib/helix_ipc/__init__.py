# helix_ipc: event bus, message router and bounded channels for MicroPython and CPython.
#
# The package root loads its parts lazily (as MicroPython's asyncio does): importing
# helix_ipc costs almost nothing, and `from helix_ipc import channel` loads only the
# channel module. Safe to import from any context except an IRQ handler.

__version__ = "0.1.0"

# Each line: a submodule, then the public names it defines. Plain strings rather than a
# dict: a name costs heap (its qstr, a dict slot) only once its part is loaded.
_attrs = (
    "errors IpcError ModuleNotFound ChannelFull ChannelClosed ChannelEmpty Timeout Rejected"
    " AlreadyRegistered InternalError",
    "channels channel default_channel oneshot Sender Receiver OneShotSender OneShotReceiver",
    "events Event EventTopic EventResponse MemoryPressureLevel SubscriptionPriority",
    "bus EventBus EventSubscription EventDispatchResult global_event_bus subscribe unsubscribe"
    " publish_event NestingTooDeep",
    "messages MessagePriority ModuleAddress Request Response",
    "router MessageRouter global_router send_request send_to",
    "module Module Context ModuleHost",
    "tick TickSource",
    "aio EventStream",
)


# Submodule names never equal a public name (the channel() function lives in
# `channels`): importing a submodule sets it as a package attribute, which would
# otherwise shadow the public name.


def __getattr__(name):
    if name == "__all__":
        names = []
        for line in _attrs:
            names += line.split()[1:]
        value = names  # type: object
    else:
        mod = None
        for line in _attrs:
            names = line.split()
            if name in names[1:]:
                mod = names[0]
                break
        if mod is not None:
            value = getattr(__import__("helix_ipc." + mod, None, None, [name]), name)
        elif name.startswith("__"):
            raise AttributeError(name)
        else:
            # `from helix_ipc import board` and the like: a submodule, loaded on demand.
            # MicroPython does not fall back to importing it the way CPython does.
            try:
                value = __import__("helix_ipc." + name, None, None, ["_"])
            except ImportError:
                raise AttributeError(name)
    globals()[name] = value
    return value
