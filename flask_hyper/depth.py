"""Rejecting GraphQL operations nested deeper than a limit."""

from __future__ import annotations

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

_Fragments = dict[str, FragmentDefinitionNode]


def depth_error(document: DocumentNode, max_depth: int) -> GraphQLError | None:
    """Return an error for the first operation nested deeper than ``max_depth``.

    Introspection fields (``__schema``, ``__type``) are not counted, because
    their depth is fixed by the introspection query and switched off with
    ``HYPER_GRAPHQL_INTROSPECTION`` instead. This walks the parsed document
    once, which costs less than a validation rule run by graphql-core's
    visitor on every request.
    """
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        depth = _depth(definition.selection_set, fragments, frozenset())
        if depth > max_depth:
            name = definition.name.value if definition.name else "anonymous"
            return GraphQLError(
                f"Operation '{name}' is nested {depth} levels deep, more than the"
                f" maximum of {max_depth}: request fewer nested fields.",
                definition,
            )
    return None


def _depth(selection_set: SelectionSetNode | None, fragments: _Fragments, seen: frozenset[str]) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            # A fragment cycle is reported by graphql-core's NoFragmentCyclesRule.
            if fragment is not None and name not in seen:
                deepest = max(deepest, _depth(fragment.selection_set, fragments, seen | {name}))
    return deepest
