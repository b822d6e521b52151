"""The GraphQL endpoint: GraphQL over HTTP rules and the safety defaults."""

import json

import pytest
from ariadne import MutationType, QueryType
from flask import Flask
from graphql import GraphQLError

from flask_hyper import HyperService

TYPE_DEFS = """
type Query {
    hello(name: String): String!
    broken: String
    denied: String
    me: Person
    context: String
}
type Mutation { rename(name: String!): String! }
type Person { name: String! friend: Person }
"""


def build_service():
    query, mutation = QueryType(), MutationType()

    @query.field("hello")
    def resolve_hello(*_, name="world"):
        return f"hello {name}"

    @query.field("broken")
    def resolve_broken(*_):
        raise KeyError("secret-database-password")

    @query.field("denied")
    def resolve_denied(*_):
        raise GraphQLError("You may not do that.")

    @query.field("me")
    def resolve_me(*_):
        return {"name": "ada", "friend": {"name": "bob", "friend": {"name": "cy", "friend": None}}}

    @query.field("context")
    def resolve_context(_, info):
        context = info.context
        return f"{context['app'].name}|{context['request'].path}|{context['extra']}"

    @mutation.field("rename")
    def resolve_rename(*_, name):
        return name

    def add_extra(context, request):
        return {**context, "extra": "added"}

    return HyperService(type_defs=TYPE_DEFS, bindables=[query, mutation], context_factory=add_extra)


def make_client(**config):
    app = Flask("graphql-tests")
    app.testing = True
    app.config.update(config)
    build_service().init_app(app)
    return app.test_client()


@pytest.fixture
def client():
    return make_client()


def test_post_query(client):
    response = client.post("/graphql", json={"query": "{ hello(name: \"ada\") }"})
    assert response.status_code == 200
    assert response.json == {"data": {"hello": "hello ada"}}


def test_post_variables_and_operation_name(client):
    body = {
        "query": "query A($n: String) { hello(name: $n) } query B { hello }",
        "variables": {"n": "bo"},
        "operationName": "A",
    }
    assert client.post("/graphql", json=body).json == {"data": {"hello": "hello bo"}}


def test_get_query(client):
    response = client.get("/graphql", query_string={"query": "{ hello }"})
    assert response.status_code == 200
    assert response.json["data"]["hello"] == "hello world"


def test_get_mutation_rejected(client):
    response = client.get("/graphql", query_string={"query": "mutation { rename(name: \"x\") }"})
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "POST" in response.json["errors"][0]["message"]


def test_post_mutation(client):
    response = client.post("/graphql", json={"query": "mutation { rename(name: \"x\") }"})
    assert response.json == {"data": {"rename": "x"}}


def test_context_holds_request_app_and_extension(client):
    response = client.post("/graphql", json={"query": "{ context }"})
    assert response.json["data"]["context"] == "graphql-tests|/graphql|added"


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"query": 5}', "'query' field must be a string"),
        (b'{"query": "{ hello }", "variables": [1]}', "'variables'"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_body_is_400(client, body, fragment):
    response = client.post("/graphql", data=body, content_type="application/json")
    assert response.status_code == 400
    assert fragment in response.json["errors"][0]["message"]


def test_syntax_error_is_400(client):
    response = client.post("/graphql", json={"query": "{ hello "})
    assert response.status_code == 400
    assert "Syntax Error" in response.json["errors"][0]["message"]


def test_validation_error_is_400(client):
    response = client.post("/graphql", json={"query": "{ nope }"})
    assert response.status_code == 400
    assert "nope" in response.json["errors"][0]["message"]


def test_unexpected_error_masked_in_production(client):
    response = client.post("/graphql", json={"query": "{ broken }"})
    error = response.json["errors"][0]
    assert error["message"] == "Internal server error"
    assert "secret" not in json.dumps(response.json)
    assert "extensions" not in error


def test_graphql_error_message_kept(client):
    response = client.post("/graphql", json={"query": "{ denied }"})
    assert response.json["errors"][0]["message"] == "You may not do that."


def test_debug_shows_details():
    client = make_client(HYPER_GRAPHQL_DEBUG=True)
    error = client.post("/graphql", json={"query": "{ broken }"}).json["errors"][0]
    assert "secret-database-password" in error["message"]
    assert "stacktrace" in error["extensions"]["exception"]


def test_introspection_can_be_disabled():
    client = make_client(HYPER_GRAPHQL_INTROSPECTION=False)
    response = client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    assert "introspection" in response.json["errors"][0]["message"].lower()


def test_introspection_on_by_default(client):
    response = client.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
    assert response.json["data"]["__schema"]["queryType"]["name"] == "Query"


def test_body_size_limited():
    client = make_client(HYPER_GRAPHQL_MAX_BODY_BYTES=100)
    response = client.post("/graphql", json={"query": "{ hello }", "pad": "x" * 200})
    assert response.status_code == 413
    assert "100 bytes" in response.json["errors"][0]["message"]


def test_depth_limit():
    client = make_client(HYPER_GRAPHQL_MAX_DEPTH=2)
    shallow = client.post("/graphql", json={"query": "{ me { name } }"})
    deep = client.post("/graphql", json={"query": "{ me { friend { friend { name } } } }"})
    assert shallow.status_code == 200
    assert deep.status_code == 400
    assert "maximum of 2" in deep.json["errors"][0]["message"]


def test_depth_limit_follows_fragments():
    client = make_client(HYPER_GRAPHQL_MAX_DEPTH=2)
    query = "{ me { ...F } } fragment F on Person { friend { name } }"
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 400


def test_cost_limit():
    client = make_client(HYPER_GRAPHQL_MAX_COST=1)
    response = client.post("/graphql", json={"query": "{ hello me { name } }"})
    assert response.status_code == 400
    assert "cost" in response.json["errors"][0]["message"].lower()


def test_explorer_off_in_production(client):
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert "Missing GraphQL query" in response.json["errors"][0]["message"]


def test_explorer_on_in_debug():
    app = Flask("debugged")
    app.debug = True
    build_service().init_app(app)
    response = app.test_client().get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "<html" in response.get_data(as_text=True).lower()


def test_request_id_echoed(client):
    response = client.post("/graphql", json={"query": "{ hello }"}, headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_traceparent_gives_correlation_id(client):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    response = client.post("/graphql", json={"query": "{ hello }"}, headers=headers)
    assert response.headers["X-Request-ID"] == trace_id


def test_configurable_path():
    client = make_client(HYPER_GRAPHQL_PATH="/api/graphql")
    assert client.post("/api/graphql", json={"query": "{ hello }"}).status_code == 200
    assert client.post("/graphql", json={"query": "{ hello }"}).status_code == 404
