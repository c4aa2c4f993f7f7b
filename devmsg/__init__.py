"""devmsg: a durable, inspectable record of every email an application sends, and the sending.

The Python API mirrors the command line::

    from devmsg import Outbox, Recipient

    with Outbox.open("devmsg.toml") as outbox:
        result = outbox.send(
            template="feedback",
            type="feedback",
            context={"assignment": "Oblig 1"},
            recipients=[Recipient("ola@example.com", name="Ola", language="nb")],
        )
        print(result.sent, result.failed)
"""

__version__ = "0.4.0"

_EXPORTS = {
    "Config": "devmsg.config",
    "load_config": "devmsg.config",
    "DevmsgError": "devmsg.errors",
    "DeliveryReport": "devmsg.delivery",
    "Outbox": "devmsg.outbox",
    "PurgeReport": "devmsg.outbox",
    "Recipient": "devmsg.outbox",
    "SendReport": "devmsg.outbox",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> object:
    # Lazy, so that `devmsg --help` and cron ticks do not import what they do not use.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'devmsg' has no attribute {name!r}")
