"""Error type raised by the local Kafka broker tool."""


class DevBrokerError(Exception):
    """A broker could not be located, started, reached or stopped.

    The message is one line that names the failing value and the fix. ``details``
    carries optional extra text, such as the tail of a broker log, that a caller
    may show below the message.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details
