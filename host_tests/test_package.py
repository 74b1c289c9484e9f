# The package root: every public name of API.md imports from helix_ipc, lazily, and a
# submodule import never shadows a public name.
import helix_ipc

API_NAMES = (
    "IpcError ModuleNotFound ChannelFull ChannelClosed ChannelEmpty Timeout Rejected "
    "AlreadyRegistered InternalError channel default_channel oneshot Sender Receiver "
    "OneShotSender OneShotReceiver Event EventTopic EventResponse MemoryPressureLevel "
    "SubscriptionPriority EventBus EventSubscription EventDispatchResult global_event_bus "
    "subscribe unsubscribe publish_event MessagePriority ModuleAddress Request Response "
    "MessageRouter global_router send_request send_to Module Context ModuleHost TickSource"
).split()


def test_every_api_name_imports_from_the_root():
    for name in API_NAMES:
        assert getattr(helix_ipc, name) is not None, name
        assert name in helix_ipc.__all__, name


def test_submodule_import_does_not_shadow_public_names():
    import helix_ipc.channels  # noqa: F401 - sets helix_ipc.channels, not helix_ipc.channel
    from helix_ipc import channel

    assert callable(channel) and not hasattr(channel, "channel")
    tx, rx = channel(1)
    tx.send(1)
    assert rx.try_recv() == 1


def test_submodules_load_on_demand():
    from helix_ipc import board

    assert callable(board.profile)


def test_unknown_name_is_attribute_error():
    try:
        _ = helix_ipc.no_such_name
    except AttributeError:
        return
    raise AssertionError("expected AttributeError")


def test_error_hierarchy():
    from helix_ipc import (IpcError, ModuleNotFound, ChannelFull, ChannelClosed, ChannelEmpty,
                           Timeout, Rejected, AlreadyRegistered, InternalError)

    for cls in (ModuleNotFound, ChannelFull, ChannelClosed, ChannelEmpty, Timeout, Rejected,
                AlreadyRegistered, InternalError):
        assert issubclass(cls, IpcError) and issubclass(cls, Exception)
