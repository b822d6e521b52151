"""Configuration validation in init_app."""

import pytest
from flask import Flask

from flask_hyper import ConfigError, HyperService

TYPE_DEFS = "type Query { ping: String }"


def make_app(**config):
    app = Flask("configured")
    app.config.update({"HYPER_KAFKA": {"bootstrap.servers": "127.0.0.1:9"}, **config})
    return app


def test_valid_config_initialises():
    app = make_app(HYPER_CONSUMER_THREADS=2)
    HyperService(app, type_defs=TYPE_DEFS)
    settings = app.extensions["hyper"].settings
    assert settings.consumer_threads == 2
    assert settings.consumer_group == "configured"
    assert settings.producer_config["enable.idempotence"] is True
    assert settings.producer_config["acks"] == "all"
    assert settings.consumer_config["enable.auto.offset.store"] is False


def test_unknown_hyper_key_named():
    with pytest.raises(ConfigError, match="HYPER_CONSUMER_THREAD'"):
        HyperService(make_app(HYPER_CONSUMER_THREAD=2), type_defs=TYPE_DEFS)


def test_unknown_librdkafka_property_named():
    app = make_app()
    app.config["HYPER_KAFKA_PRODUCER"] = {"linger.msec": 5}
    with pytest.raises(ConfigError, match="'linger.msec'"):
        HyperService(app, type_defs=TYPE_DEFS)


def test_invalid_librdkafka_value_named():
    app = make_app()
    app.config["HYPER_KAFKA_CONSUMER"] = {"session.timeout.ms": "soon"}
    with pytest.raises(ConfigError, match="session.timeout.ms"):
        HyperService(app, type_defs=TYPE_DEFS)


def test_wrong_type_named():
    with pytest.raises(ConfigError, match="HYPER_CONSUMER_THREADS must be int"):
        HyperService(make_app(HYPER_CONSUMER_THREADS="2"), type_defs=TYPE_DEFS)


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError, match="HYPER_RETRY_ATTEMPTS"):
        HyperService(make_app(HYPER_RETRY_ATTEMPTS=True), type_defs=TYPE_DEFS)


def test_zero_threads_rejected():
    with pytest.raises(ConfigError, match="at least 1"):
        HyperService(make_app(HYPER_CONSUMER_THREADS=0), type_defs=TYPE_DEFS)


def test_missing_bootstrap_outside_debug():
    app = Flask("production")
    with pytest.raises(ConfigError, match="bootstrap.servers"):
        HyperService(app, type_defs=TYPE_DEFS)


def test_missing_bootstrap_allowed_in_testing():
    app = Flask("tested")
    app.testing = True
    HyperService(app, type_defs=TYPE_DEFS)
    assert "hyper" in app.extensions


def test_managed_consumer_property_rejected():
    app = make_app(HYPER_KAFKA_CONSUMER={"enable.auto.offset.store": True})
    with pytest.raises(ConfigError, match="enable.auto.offset.store"):
        HyperService(app, type_defs=TYPE_DEFS)


def test_bad_topic_declaration_named():
    app = make_app(HYPER_TOPICS={"user.created": {"partition": 3}})
    with pytest.raises(ConfigError, match="'partition'"):
        HyperService(app, type_defs=TYPE_DEFS)


def test_second_registration_rejected():
    app = make_app()
    HyperService(app, type_defs=TYPE_DEFS)
    with pytest.raises(RuntimeError, match="already registered"):
        HyperService(app, type_defs=TYPE_DEFS)


def test_factory_pattern_and_two_apps():
    hyper = HyperService(type_defs=TYPE_DEFS)
    first, second = make_app(), Flask("second")
    second.config["HYPER_KAFKA"] = {"bootstrap.servers": "127.0.0.1:9"}
    hyper.init_app(first)
    hyper.init_app(second)
    assert first.extensions["hyper"].service is hyper
    assert second.extensions["hyper"].settings.service_name == "second"
    assert first.extensions["hyper"].producer is not second.extensions["hyper"].producer


def test_schema_required():
    with pytest.raises(TypeError, match="needs a GraphQL schema"):
        HyperService()


def test_init_app_creates_no_client():
    app = make_app()
    HyperService(app, type_defs=TYPE_DEFS)
    assert app.extensions["hyper"].producer._client is None


def test_group_id_points_to_consumer_group_key():
    app = make_app(HYPER_KAFKA={"bootstrap.servers": "127.0.0.1:9", "group.id": "mine"})
    with pytest.raises(ConfigError, match="HYPER_CONSUMER_GROUP"):
        HyperService(app, type_defs=TYPE_DEFS)


def test_message_timeout_follows_publish_timeout():
    app = make_app(HYPER_PUBLISH_TIMEOUT=4)
    HyperService(app, type_defs=TYPE_DEFS)
    settings = app.extensions["hyper"].settings
    assert settings.producer_config["message.timeout.ms"] == 4000
    assert settings.report_deadline == 6.0


def test_explicit_message_timeout_kept():
    app = make_app(HYPER_KAFKA_PRODUCER={"delivery.timeout.ms": 9000})
    HyperService(app, type_defs=TYPE_DEFS)
    settings = app.extensions["hyper"].settings
    assert "message.timeout.ms" not in settings.producer_config
    assert settings.report_deadline == 11.0
