"""Lifecycle signals that observers (metrics, tracing, tests) can connect to.

Each is sent with the Flask app as sender. Receivers of topic messages do not
use these: they connect to the topic's signal with
:meth:`HyperService.receiver`.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A message was consumed and is about to be dispatched. Keyword: ``message``.
message_received = _signals.signal("hyper.message-received")

#: A receiver raised. Keywords: ``message``, ``receiver``, ``exception``, ``attempt``.
message_failed = _signals.signal("hyper.message-failed")

#: A message was written to its dead-letter topic. Keywords: ``message`` (``None``
#: when the value could not be decoded), ``dead_letter_topic``, ``reason``,
#: ``exception``.
message_dead_lettered = _signals.signal("hyper.message-dead-lettered")

#: The broker acknowledged a published message. Keywords: ``topic``,
#: ``partition``, ``offset``, ``message_id``. Sent from the producer's
#: delivery report thread.
message_published = _signals.signal("hyper.message-published")

#: A published message was not delivered. Keywords: ``topic``, ``message_id``,
#: ``error``. Sent from the producer's delivery report thread.
publish_failed = _signals.signal("hyper.publish-failed")
