"""A local SMTP server that keeps and prints the mails it receives (aiosmtpd).

The demo and the tests run :class:`MailSink` in-process to watch welcome mails
arrive; docker-compose.yml runs ``python -m example_app.smtp_server``.
"""

from __future__ import annotations

import argparse
import dataclasses
import email
import email.policy
import signal
import threading
from typing import Any, Callable

from aiosmtpd.controller import Controller

from .mailer.receivers import CORRELATION_MAIL_HEADER
from .ports import free_ports


@dataclasses.dataclass(frozen=True)
class ReceivedMail:
    """One mail as the SMTP server received it."""

    sender: str
    recipients: tuple[str, ...]
    subject: str
    correlation_id: str | None


class MailSink:
    """An SMTP server on ``host:port`` that stores every mail it accepts.

    ``port=0`` picks a port that was free on ``host`` a moment before.

    ``on_mail`` is called on the server's thread for each mail; ``mails()``
    returns a copy of what arrived so far and is safe from any thread.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        on_mail: Callable[[ReceivedMail], None] | None = None,
    ) -> None:
        self._mails: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._on_mail = on_mail
        # aiosmtpd's Controller checks readiness by connecting to the port it
        # was given, so it cannot listen on port 0 itself.
        self.port = port or free_ports(1, host)[0]
        self._controller = Controller(_Handler(self._receive), hostname=host, port=self.port)

    def start(self) -> "MailSink":
        """Start serving on a background thread and return self."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving; mails received so far stay readable."""
        self._controller.stop()

    def mails(self) -> list[ReceivedMail]:
        """Return the mails received so far, oldest first."""
        with self._lock:
            return list(self._mails)

    def _receive(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._mails.append(mail)
        if self._on_mail is not None:
            self._on_mail(mail)


class _Handler:
    def __init__(self, receive: Callable[[ReceivedMail], None]) -> None:
        self._receive = receive

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self._receive(
            ReceivedMail(
                sender=envelope.mail_from,
                recipients=tuple(envelope.rcpt_tos),
                subject=str(parsed["Subject"] or ""),
                correlation_id=parsed[CORRELATION_MAIL_HEADER],
            )
        )
        return "250 Message accepted for delivery"


def print_mail(mail: ReceivedMail) -> None:
    """Print one received mail on a single line."""
    print(
        f"smtp: mail to {', '.join(mail.recipients)}: {mail.subject!r}"
        f" [correlation id {mail.correlation_id}]",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM, printing each mail."""
    parser = argparse.ArgumentParser(prog="python -m example_app.smtp_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1025, help="TCP port to listen on (default: 1025)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    sink = MailSink(args.host, args.port, on_mail=print_mail).start()
    print(f"smtp: listening on {args.host}:{sink.port}", flush=True)
    try:
        stop.wait()
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
