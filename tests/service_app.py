"""A hyperservice started as a real process by the gunicorn and CLI tests.

Configured through environment variables so each test gets its own topic,
consumer group and ledger file, which records one line per handled message.
"""

import os

from ariadne import MutationType, QueryType
from flask import Flask

from flask_hyper import HyperService, publish

TYPE_DEFS = """
type Query { ping: String! }
type Mutation { emit(n: Int!): String! }
"""


def create_app() -> Flask:
    topic = os.environ["SERVICE_TOPIC"]
    ledger = os.environ["SERVICE_LEDGER"]
    query, mutation = QueryType(), MutationType()
    query.set_field("ping", lambda *_: "pong")

    @mutation.field("emit")
    def resolve_emit(*_, n):
        return publish(topic, {"n": n}, key=str(n), wait=True).message_id

    hyper = HyperService(type_defs=TYPE_DEFS, bindables=[query, mutation])

    @hyper.receiver(topic)
    def record(sender, message):
        with open(ledger, "a", encoding="utf-8") as ledger_file:
            ledger_file.write(f"{os.getpid()} {message.value['n']}\n")

    app = Flask("service")
    app.config.update(
        HYPER_KAFKA={"bootstrap.servers": os.environ["SERVICE_BOOTSTRAP"]},
        HYPER_CONSUMER_GROUP=os.environ["SERVICE_GROUP"],
        HYPER_CONSUMER_POLL_TIMEOUT=0.2,
        HYPER_CONSUMER_AUTOSTART=os.environ.get("SERVICE_AUTOSTART") == "1",
        HYPER_TOPICS={topic: {"partitions": 2, "replication_factor": 1}},
    )
    hyper.init_app(app)
    return app
