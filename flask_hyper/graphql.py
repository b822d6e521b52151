"""The GraphQL endpoint: GraphQL over HTTP on top of Ariadne's ``graphql_sync``.

POST takes a JSON body with ``query``, ``variables`` and ``operationName``.
GET takes the same as query string parameters and runs queries only, as GraphQL
over HTTP requires. A browser's GET without a query gets the explorer when it
is enabled.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ariadne import format_error, graphql_sync
from ariadne.explorer import ExplorerGraphiQL
from ariadne.validation import cost_validator
from flask import Response, current_app, jsonify, request
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from graphql.error import GraphQLSyntaxError

from .cloudevents import REQUEST_ID_HEADER, current_correlation_id
from .depth import depth_error

if TYPE_CHECKING:
    from .extension import _AppState

logger = logging.getLogger(__name__)

MASKED_MESSAGE = "Internal server error"


class BadRequest(Exception):
    """A GraphQL request that cannot be executed, returned with HTTP ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def graphql_view() -> Response:
    """Serve one GraphQL request for the current app."""
    state: _AppState = current_app.extensions["hyper"]
    correlation_id = current_correlation_id()

    if request.method == "GET" and "query" not in request.args:
        response = _explorer_or_400(state)
    else:
        try:
            response = _execute(state, _read_request(state))
        except BadRequest as exc:
            response = _error_response(str(exc), exc.status)

    response.headers[REQUEST_ID_HEADER] = correlation_id
    return response


def _explorer_or_400(state: "_AppState") -> Response:
    if state.settings.graphql_explorer:
        # NOTE: the explorer page loads GraphiQL's scripts from a public CDN, so
        # it stays blank on machines without internet access.
        html = ExplorerGraphiQL(title=f"{state.settings.service_name} GraphQL").html(None)
        return Response(html, mimetype="text/html")
    return _error_response("Missing GraphQL query: send it with POST, or as ?query= with GET.", 400)


def _read_request(state: "_AppState") -> dict[str, Any]:
    if request.method == "GET":
        return _read_query_string()

    limit = state.settings.graphql_max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(f"Request body of {request.content_length} bytes exceeds {limit} bytes.", 413)
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise BadRequest(f"Request body exceeds {limit} bytes.", 413)

    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}. Send {{\"query\": \"...\"}}.") from exc
    return _check_shape(data)


def _read_query_string() -> dict[str, Any]:
    data: dict[str, Any] = {"query": request.args.get("query")}
    if "operationName" in request.args:
        data["operationName"] = request.args["operationName"]
    if "variables" in request.args:
        try:
            data["variables"] = json.loads(request.args["variables"])
        except json.JSONDecodeError as exc:
            raise BadRequest(f"Parameter 'variables' is not valid JSON: {exc}.") from exc
    return _check_shape(data)


def _check_shape(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object with a 'query' string.")
    if not isinstance(data.get("query"), str):
        raise BadRequest("The 'query' field must be a string holding a GraphQL document.")
    if not isinstance(data.get("variables") or {}, dict):
        raise BadRequest("The 'variables' field must be a JSON object.")
    if not isinstance(data.get("operationName") or "", str):
        raise BadRequest("The 'operationName' field must be a string.")
    return data


def _execute(state: "_AppState", data: dict[str, Any]) -> Response:
    try:
        document = parse(data["query"])
    except GraphQLSyntaxError as exc:
        return _graphql_errors_response([exc.formatted], 400)

    settings = state.settings
    if settings.graphql_max_depth is not None:
        too_deep = depth_error(document, settings.graphql_max_depth)
        if too_deep is not None:
            return _graphql_errors_response([too_deep.formatted], 400)

    operation = get_operation_ast(document, data.get("operationName"))
    if request.method == "GET" and operation is not None and operation.operation != OperationType.QUERY:
        response = _error_response("Only queries may be sent with GET: send mutations with POST.", 405)
        response.headers["Allow"] = "POST"
        return response

    _, result = graphql_sync(
        state.schema,
        data,
        context_value=state.service.make_context(request),
        query_document=document,
        debug=settings.graphql_debug,
        introspection=settings.graphql_introspection,
        validation_rules=_validation_rules(state, data) or None,
        error_formatter=_format_error,
        logger=__name__,
    )
    response = jsonify(result)
    response.status_code = 200 if "data" in result else 400
    return response


def _validation_rules(state: "_AppState", data: dict[str, Any]) -> list[Any]:
    rules: list[Any] = []
    if state.settings.graphql_max_cost is not None:
        # Every field costs 1 unless a @cost directive in the schema sets another cost.
        rules.append(
            cost_validator(
                state.settings.graphql_max_cost, default_cost=1, variables=data.get("variables")
            )
        )
    return rules


def _format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """Format errors, hiding the message of unexpected exceptions unless debugging.

    Errors raised as GraphQLError are meant for clients and keep their message.
    """
    formatted = format_error(error, debug)
    original = error.original_error
    if not debug and original is not None and not isinstance(original, GraphQLError):
        formatted["message"] = MASKED_MESSAGE
        formatted.pop("extensions", None)
    return formatted


def _error_response(message: str, status: int) -> Response:
    return _graphql_errors_response([{"message": message}], status)


def _graphql_errors_response(errors: list[Any], status: int) -> Response:
    response = jsonify({"errors": errors})
    response.status_code = status
    return response
