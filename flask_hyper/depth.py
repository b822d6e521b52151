"""A validation rule that rejects GraphQL operations nested deeper than a limit."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)


@lru_cache(maxsize=8)
def depth_limit_rule(max_depth: int) -> type[ASTValidationRule]:
    """Return a rule rejecting operations whose field nesting exceeds ``max_depth``.

    Introspection fields (``__schema``, ``__type``) are not counted, because
    their depth is fixed by the introspection query and switched off with
    ``HYPER_GRAPHQL_INTROSPECTION`` instead.
    """

    class DepthLimitRule(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            depth = _depth(node.selection_set, self.context, set())
            if depth > max_depth:
                name = node.name.value if node.name else "anonymous"
                self.report_error(
                    GraphQLError(
                        f"Operation '{name}' is nested {depth} levels deep, more than the"
                        f" maximum of {max_depth}: request fewer nested fields.",
                        node,
                    )
                )

    return DepthLimitRule


def _depth(selection_set: SelectionSetNode | None, context: ValidationContext, seen: set[str]) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            deepest = max(deepest, 1 + _depth(selection.selection_set, context, seen))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, context, seen))
        elif isinstance(selection, FragmentSpreadNode):
            deepest = max(deepest, _fragment_depth(selection, context, seen))
    return deepest


def _fragment_depth(spread: FragmentSpreadNode, context: ValidationContext, seen: set[str]) -> int:
    name = spread.name.value
    fragment = context.get_fragment(name)
    # A fragment cycle is reported by graphql-core's own NoFragmentCycles rule.
    if fragment is None or name in seen:
        return 0
    return _depth(fragment.selection_set, context, seen | {name})
