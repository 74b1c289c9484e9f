# helix_ipc: event bus, message router and bounded channels for MicroPython and CPython.
#
# The package root loads its parts lazily (as MicroPython's asyncio does): importing
# helix_ipc costs almost nothing, and `from helix_ipc import channel` loads only the
# channel module. Safe to import from any context except an IRQ handler.

__version__ = "0.1.0"

# public name -> submodule that defines it
_attrs = {
    # errors
    "IpcError": "errors",
    "ModuleNotFound": "errors",
    "ChannelFull": "errors",
    "ChannelClosed": "errors",
    "ChannelEmpty": "errors",
    "Timeout": "errors",
    "Rejected": "errors",
    "AlreadyRegistered": "errors",
    "InternalError": "errors",
    # channels
    "channel": "channels",
    "default_channel": "channels",
    "oneshot": "channels",
    "Sender": "channels",
    "Receiver": "channels",
    "OneShotSender": "channels",
    "OneShotReceiver": "channels",
    # events
    "Event": "events",
    "EventTopic": "events",
    "EventResponse": "events",
    "MemoryPressureLevel": "events",
    "SubscriptionPriority": "events",
    # event bus
    "EventBus": "bus",
    "EventSubscription": "bus",
    "EventDispatchResult": "bus",
    "global_event_bus": "bus",
    "subscribe": "bus",
    "unsubscribe": "bus",
    "publish_event": "bus",
    "NestingTooDeep": "bus",
    # messages and router
    "MessagePriority": "messages",
    "ModuleAddress": "messages",
    "Request": "messages",
    "Response": "messages",
    "MessageRouter": "router",
    "global_router": "router",
    "send_request": "router",
    "send_to": "router",
    # modules
    "Module": "module",
    "Context": "module",
    "ModuleHost": "module",
    # interrupts and ticks
    "TickSource": "tick",
}

__all__ = list(_attrs)


# Submodule names never equal a public name (the channel() function lives in
# `channels`): importing a submodule sets it as a package attribute, which would
# otherwise shadow the public name.


def __getattr__(name):
    mod = _attrs.get(name)
    if mod is None:
        # `from helix_ipc import board` and the like: a submodule, loaded on demand.
        # MicroPython does not fall back to importing it the way CPython does.
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            value = __import__("helix_ipc." + name, None, None, ["_"])
        except ImportError:
            raise AttributeError(name)
    else:
        value = getattr(__import__("helix_ipc." + mod, None, None, [name]), name)
    globals()[name] = value
    return value
