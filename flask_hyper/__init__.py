"""flask-hyper: make a Flask app a hyperservice.

A hyperservice serves request/response clients over GraphQL and talks to
other services over Kafka. :class:`HyperService` mounts an Ariadne endpoint,
keeps a confluent-kafka producer for the app and runs consumer threads that
dispatch every message as a blinker signal.
"""

from .errors import ConfigError, DeserializationError, HyperError, PublishError, PublishTimeout
from .extension import HyperService, publish
from .message import Message
from .producer import DeliveryHandle
from .serializers import JsonSerializer, Serializer

__all__ = [
    "ConfigError",
    "DeliveryHandle",
    "DeserializationError",
    "HyperError",
    "HyperService",
    "JsonSerializer",
    "Message",
    "PublishError",
    "PublishTimeout",
    "Serializer",
    "publish",
]

__version__ = "0.1.0"
