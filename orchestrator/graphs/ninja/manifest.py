"""A Ninja manifest parsed: rules, pools, build edges with every variable evaluated, defaults.

`parse_manifest(path, read)` reads ``path`` with ``read`` (so the parser itself touches no disk)
and follows ``include`` (same scope) and ``subninja`` (a child scope: its rules and variables do
not leak out), whose paths are relative to the build folder as Ninja takes them. Per edge, the
paths of the build line are evaluated in the edge's scope and canonicalized like Ninja's
``CanonicalizePath``; edge bindings are evaluated in the file's scope; the rule's variables
(``command``, ``description``, ``depfile``, ``deps``, ``rspfile``, ``rspfile_content``, ``generator``,
``pool``, ``restat``, ``dyndep``) late, in the edge's, with ``$in``/``$out`` shell-escaped. Every
error is a `NinjaFileError` naming the file and line: a syntax error, an unknown rule or pool, a
rule without ``command``, an unexpected rule variable, two edges producing one path.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.errors import NinjaFileError
from orchestrator.graphs.ninja.lexer import Lexer, NinjaSyntaxError
from orchestrator.graphs.ninja.scope import EdgeVariables, EvalString, Scope

RULE_KEYS = frozenset(
    {"command", "depfile", "dyndep", "description", "deps", "generator", "pool", "restat", "rspfile"}
    | {"rspfile_content", "msvc_deps_prefix", "hide_success", "hide_progress"}
)
EDGE_KEYS = ("command", "description", "depfile", "deps", "rspfile", "rspfile_content", "generator", "pool")
EDGE_KEYS += ("restat", "dyndep")
PHONY = "phony"
MAX_INCLUDE_DEPTH = 64

Reader = Callable[[str], str]  # path as written in the manifest -> its text (raises OSError)


@dataclass(frozen=True)
class Edge:
    """One build statement: its paths by kind, its rule, its evaluated variables, where it was written."""

    rule: str
    outputs: tuple[str, ...]
    implicit_outputs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    implicit: tuple[str, ...] = ()
    order_only: tuple[str, ...] = ()
    validations: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)  # EDGE_KEYS that are set, evaluated
    file: str = ""
    line: int = 0

    @property
    def phony(self) -> bool:
        """Tell whether this is a ``phony`` edge (an alias, no command)."""
        return self.rule == PHONY

    @property
    def marks_a_file(self) -> bool:
        """``build f: phony`` with no inputs: f is a plain file (CMake writes one per file it read)."""
        return self.phony and not (self.inputs or self.implicit or self.order_only)

    @property
    def generator(self) -> bool:
        """Tell whether the rule says ``generator`` (re-running the build file's generator)."""
        return bool(self.variables.get("generator"))

    def all_outputs(self) -> tuple[str, ...]:
        """Explicit then implicit outputs."""
        return self.outputs + self.implicit_outputs


@dataclass
class FileScope(Scope):
    """A file scope: bindings plus the rules declared in it."""

    rules: dict[str, dict[str, EvalString]] = field(default_factory=dict)

    def rule(self, name: str) -> dict[str, EvalString] | None:
        """The rule ``name`` here or in an enclosing scope."""
        scope: Scope | None = self
        while scope is not None:
            if isinstance(scope, FileScope) and name in scope.rules:
                return scope.rules[name]
            scope = scope.parent
        return None


@dataclass
class Manifest:
    """Every edge of the build, in file order, the ``default`` targets and the top-level variables."""

    edges: list[Edge] = field(default_factory=list)
    defaults: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    pools: dict[str, int] = field(default_factory=lambda: {"console": 1})
    producer: dict[str, int] = field(default_factory=dict)  # path -> index of the edge that produces it


def canonical(path: str) -> str:
    """``path`` with ``.``, ``..`` and repeated slashes folded away, as Ninja's ``CanonicalizePath``."""
    if not path:
        return path
    out = posixpath.normpath(path)
    return "/" + out.lstrip("/") if out.startswith("//") else out


def parse_manifest(path: str, read: Reader) -> Manifest:
    """Parse the manifest at ``path`` and everything it includes; raise `NinjaFileError` on any problem."""
    manifest = Manifest()
    root = FileScope()
    _Parser(manifest, read, 0).parse_file(path, root)
    manifest.variables = dict(root.bindings)
    return manifest


class _Parser:
    def __init__(self, manifest: Manifest, read: Reader, depth: int) -> None:
        self.m = manifest
        self.read = read
        self.depth = depth

    def parse_file(self, path: str, scope: FileScope) -> None:
        try:
            text = self.read(path)
        except OSError as e:
            raise NinjaFileError(path, None, f"cannot be read: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise NinjaFileError(path, None, f"is not UTF-8 text: {e}") from e
        lex = Lexer(text)
        try:
            while not lex.at_end():
                self._statement(path, lex, scope)
        except NinjaSyntaxError as e:
            raise NinjaFileError(path, e.line, e.why) from e

    def _statement(self, path: str, lex: Lexer, scope: FileScope) -> None:
        indented = lex.indent()
        if lex.skip_comment_or_blank():
            return
        if indented:
            raise lex.error("unexpected indent (a variable of a rule or build must follow its line)")
        word = lex.ident("a declaration (rule, build, default, pool, include, subninja) or a variable")
        if word == "rule":
            self._rule(lex, scope)
        elif word == "build":
            self._build(path, lex, scope)
        elif word == "default":
            self._default(lex, scope)
        elif word == "pool":
            self._pool(lex, scope)
        elif word in ("include", "subninja"):
            self._include(word, path, lex, scope)
        else:
            lex.expect("=", f"'=' after variable name {word!r}")
            scope.bindings[word] = lex.eval_string(path=False).evaluate(scope.lookup)
            lex.newline()

    def _bindings(self, lex: Lexer) -> list[tuple[str, EvalString, int]]:
        """The indented ``key = value`` lines under a declaration, unevaluated, with their lines."""
        out: list[tuple[str, EvalString, int]] = []
        while True:
            start, line = lex.pos, lex.line
            if not lex.indent() or lex.at_end():
                lex.pos, lex.line = start, line
                return out
            if lex.peek() == "#":
                lex.skip_comment_or_blank()
                continue
            if lex.peek() == "\n":  # a blank line ends the block
                lex.pos, lex.line = start, line
                return out
            key = lex.ident("a variable name")
            lex.expect("=", f"'=' after variable name {key!r}")
            out.append((key, lex.eval_string(path=False), line))
            lex.newline()

    def _rule(self, lex: Lexer, scope: FileScope) -> None:
        lex.skip_spaces()
        name, line = lex.ident("a rule name"), lex.line
        lex.newline()
        if name in scope.rules or name == PHONY:
            raise NinjaSyntaxError(line, f"duplicate rule {name!r}")
        rule: dict[str, EvalString] = {}
        for key, value, at in self._bindings(lex):
            if key not in RULE_KEYS:
                raise NinjaSyntaxError(at, f"unexpected variable {key!r} in rule {name!r}")
            rule[key] = value
        if "command" not in rule:
            raise NinjaSyntaxError(line, f"rule {name!r} has no 'command =' line")
        if "rspfile" in rule and "rspfile_content" not in rule:
            raise NinjaSyntaxError(line, f"rule {name!r}: rspfile and rspfile_content need each other")
        scope.rules[name] = rule

    def _pool(self, lex: Lexer, scope: FileScope) -> None:
        lex.skip_spaces()
        name, line = lex.ident("a pool name"), lex.line
        lex.newline()
        if name in self.m.pools:
            raise NinjaSyntaxError(line, f"duplicate pool {name!r}")
        depth = None
        for key, value, at in self._bindings(lex):
            text = value.evaluate(scope.lookup)
            if key != "depth" or not text.isdigit():
                raise NinjaSyntaxError(at, f"pool {name!r} takes only 'depth = N' (N >= 0)")
            depth = int(text)
        if depth is None:
            raise NinjaSyntaxError(line, f"pool {name!r} has no 'depth ='")
        self.m.pools[name] = depth

    def _paths(self, lex: Lexer) -> list:
        out = []
        while lex.peek() not in ("", ":", "|", "\n"):
            out.append(lex.eval_string(path=True))
        return out

    def _build(self, file: str, lex: Lexer, scope: FileScope) -> None:
        line = lex.line
        lex.skip_spaces()
        outs = self._paths(lex)
        if not outs:
            raise lex.error("expected a path after 'build'")
        implicit_outs = []
        if lex.peek() == "|":
            lex.expect("|", "'|'")
            implicit_outs = self._paths(lex)
        lex.expect(":", "':' after the outputs of a build line")
        rule_name = lex.ident("a rule name")
        lex.skip_spaces()
        groups: dict[str, list] = {"inputs": self._paths(lex), "implicit": [], "order_only": [], "validations": []}
        for mark, kind in (("|", "implicit"), ("||", "order_only"), ("|@", "validations")):
            if lex.peek(2) == mark or (mark == "|" and lex.peek() == "|" and lex.peek(2) not in ("||", "|@")):
                lex.pos += len(mark)
                lex.skip_spaces()
                groups[kind] = self._paths(lex)
        lex.newline()
        rule = {} if rule_name == PHONY else scope.rule(rule_name)
        if rule is None:
            raise NinjaSyntaxError(line, f"unknown rule {rule_name!r}")
        edge_scope = Scope(parent=scope)
        for key, value, _ in self._bindings(lex):
            edge_scope.bindings[key] = value.evaluate(scope.lookup)
        self._add_edge(file, line, rule_name, rule, edge_scope, outs, implicit_outs, groups)

    def _add_edge(
        self,
        file: str,
        line: int,
        rule_name: str,
        rule: dict[str, EvalString],
        edge_scope: Scope,
        outs: list,
        implicit_outs: list,
        groups: dict[str, list],
    ) -> None:
        def paths(raw: list) -> tuple[str, ...]:
            found = tuple(canonical(p.evaluate(edge_scope.lookup)) for p in raw)
            if "" in found:
                raise NinjaSyntaxError(line, "a path of the build line is empty after expanding its variables")
            return found

        outputs, implicit_outputs = paths(outs), paths(implicit_outs)
        inputs = paths(groups["inputs"])
        env = EdgeVariables(rule, edge_scope, list(inputs), list(outputs), f"{file}:{line}")
        try:
            variables = {k: env.get(k) for k in EDGE_KEYS if k in rule or k in edge_scope.bindings}
        except ValueError as e:
            raise NinjaSyntaxError(line, str(e)) from e
        pool = variables.get("pool", "")
        if pool and pool not in self.m.pools:
            raise NinjaSyntaxError(line, f"unknown pool name {pool!r}")
        edge = Edge(
            rule_name, outputs, implicit_outputs, inputs, paths(groups["implicit"]),
            paths(groups["order_only"]), paths(groups["validations"]), variables, file, line,
        )  # fmt: skip
        index = len(self.m.edges)
        for out in edge.all_outputs():
            earlier = self.m.producer.setdefault(out, index)
            if earlier != index:
                other = self.m.edges[earlier]
                raise NinjaSyntaxError(line, f"multiple rules generate {out!r} (also {other.file}:{other.line})")
        self.m.edges.append(edge)

    def _default(self, lex: Lexer, scope: FileScope) -> None:
        lex.skip_spaces()
        line = lex.line
        targets = [canonical(p.evaluate(scope.lookup)) for p in self._paths(lex)]
        if not targets:
            raise lex.error("expected a target after 'default'")
        lex.newline()
        unknown = [t for t in targets if t not in self.m.producer]
        if unknown:
            raise NinjaSyntaxError(line, f"unknown target {unknown[0]!r} in 'default'")
        self.m.defaults.extend(targets)

    def _include(self, word: str, file: str, lex: Lexer, scope: FileScope) -> None:
        lex.skip_spaces()
        line = lex.line
        target = lex.eval_string(path=True).evaluate(scope.lookup)
        lex.newline()
        if not target:
            raise NinjaSyntaxError(line, f"expected a path after {word!r}")
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise NinjaSyntaxError(line, f"{word} nested more than {MAX_INCLUDE_DEPTH} deep (a cycle?)")
        child = scope if word == "include" else FileScope(parent=scope)
        _Parser(self.m, self.read, self.depth + 1).parse_file(target, child)
