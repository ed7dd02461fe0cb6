"""Ninja's variables: strings with ``$`` references (`EvalString`) and the scopes that bind them.

A file's top-level bindings form a scope; ``subninja`` opens a child scope, ``include`` does not;
each build edge has its own scope whose parent is the file's. A rule's bindings are evaluated late,
in the edge's scope, so ``$out`` and edge bindings reach them (`edge_variable`), as in Ninja's
``EdgeEnv``: the edge's own binding first, then the rule's, then the enclosing file scopes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# A part is (is_variable, text): literal text, or the name of a variable to expand.
Part = tuple[bool, str]


@dataclass(frozen=True)
class EvalString:
    """A value as written: literal parts and ``$name`` references, expanded by `evaluate`."""

    parts: tuple[Part, ...] = ()

    def evaluate(self, lookup: Callable[[str], str]) -> str:
        """The text with each reference replaced by ``lookup(name)``."""
        return "".join(lookup(text) if is_var else text for is_var, text in self.parts)

    def names(self) -> tuple[str, ...]:
        """The variables it refers to."""
        return tuple(text for is_var, text in self.parts if is_var)


@dataclass
class Scope:
    """Bindings of evaluated values, falling back to a parent scope (``""`` when nothing binds it)."""

    parent: Scope | None = None
    bindings: dict[str, str] = field(default_factory=dict)

    def lookup(self, name: str) -> str:
        """The value of ``name`` here or in an enclosing scope."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.bindings:
                return scope.bindings[name]
            scope = scope.parent
        return ""


# Characters a POSIX shell takes literally; any other makes Ninja quote a path in $in and $out.
_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-./")


def shell_escape(path: str) -> str:
    """A path as Ninja writes it into ``$in``/``$out`` on POSIX: as is if safe, else single-quoted."""
    if path and all(c in _SHELL_SAFE for c in path):
        return path
    return "'" + path.replace("'", "'\\''") + "'"


class EdgeVariables:
    """Late evaluation of an edge's variables: ``$in``, ``$out``, ``$in_newline``, edge, rule, file."""

    def __init__(
        self, rule: dict[str, EvalString], edge_scope: Scope, inputs: list[str], outputs: list[str], where: str
    ) -> None:
        self.rule = rule
        self.scope = edge_scope
        self.special = {
            "in": " ".join(map(shell_escape, inputs)),
            "in_newline": "\n".join(map(shell_escape, inputs)),
            "out": " ".join(map(shell_escape, outputs)),
        }
        self.where = where
        self.stack: list[str] = []

    def get(self, name: str) -> str:
        """The value of ``name`` for this edge; a rule binding that refers back to itself is an error."""
        if name in self.special:
            return self.special[name]
        if name in self.scope.bindings:
            return self.scope.bindings[name]
        rule_value = self.rule.get(name)
        if rule_value is None:
            return self.scope.parent.lookup(name) if self.scope.parent else ""
        if name in self.stack:
            cycle = " -> ".join([*self.stack[self.stack.index(name) :], name])
            raise ValueError(f"cycle in rule variables: {cycle}")
        self.stack.append(name)
        try:
            return rule_value.evaluate(self.get)
        finally:
            self.stack.pop()
