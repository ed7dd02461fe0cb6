"""One projection's fold as the shells use it: decode, evolve, remember what to write.

`Fold` is shared by the projector process (`runner`), ``niyantra views rebuild`` and the tests,
so the live view and a rebuild are the same code. It is deterministic: the same messages in
the same order give the same values, byte for byte.

**Dead letters.** An event that cannot be decoded (malformed, or a type this version does not
know) or whose evolve raises is skipped and recorded under the key ``_dead.<seq>`` of the
view's own bucket (`DeadLetter`: projector, seq, subject, kind, reason), written in the same
atomic batch as the checkpoint; the checkpoint counts them. The fold goes on. Evolve functions
check before they mutate, so an evolve that raises has changed nothing in practice; either way
a rebuild repeats exactly the same, so live and rebuilt views stay equal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from schemas import codec
from schemas import subjects as S
from schemas.errors import MalformedEvent
from schemas.events import AnyEvent

log = logging.getLogger("niyantra.projector")

DEAD_PREFIX = "_dead"
RECENT_PROBLEMS = 20


R = TypeVar("R")


def rule_for(rules: Mapping[type, R], event: object, view: str) -> R:
    """The rule a view's table gives ``event``: by its exact type (the fast path callers inline),
    else by its nearest listed base class; a type no rule lists is a programming error."""
    for cls in type(event).__mro__:
        rule = rules.get(cls)
        if rule is not None:
            return rule
    raise TypeError(f"{view}: unhandled event type {type(event).__name__}")


class View(Protocol):
    """What a fold needs of a view: its sequence and the keys an evolve touched."""

    seq: int
    touched: set[str]
    ignored: list[str]


V = TypeVar("V", bound=View)


@dataclass(frozen=True)
class Projection(Generic[V]):
    """A named view: how to start it (from its parameters), fold an event, render keys."""

    name: str
    bucket: str
    new_view: Callable[[Mapping[str, float]], V]
    evolve: Callable[[V, AnyEvent, int], V]
    values: Callable[[V, set[str]], dict[str, msgspec.Struct]]
    keys: Callable[[V], set[str]]
    params: Mapping[str, float] = field(default_factory=dict)


class Checkpoint(msgspec.Struct, kw_only=True):
    """The last stream sequence a view reflects, the parameters it was built with, what it skipped."""

    seq: int = 0
    malformed: int = 0
    recent_problems: list[str] = []
    params: dict[str, float] = {}


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An event a projector could not apply, and why."""

    projector: str
    seq: int
    subject: str
    kind: str
    reason: str


def dead_key(seq: int) -> str:
    """KV key of the dead letter of stream sequence ``seq``."""
    return f"{DEAD_PREFIX}.{seq}"


class Fold(Generic[V]):
    """A projection's view, checkpoint and dead letters, advanced one message at a time."""

    def __init__(self, projection: Projection[V], params: Mapping[str, float] | None = None) -> None:
        self.p = projection
        merged = {**projection.params, **(params or {})}
        self.view: V = projection.new_view(merged)
        self.checkpoint = Checkpoint(params=dict(sorted(merged.items())))
        self.dead: dict[str, DeadLetter] = {}
        self._new_dead: set[str] = set()

    @property
    def seq(self) -> int:
        """The last stream sequence applied."""
        return self.view.seq

    def apply(self, data: bytes, subject: str, seq: int) -> None:
        """Decode and apply one stored message."""
        try:
            event = codec.decode(data, subject=subject, seq=seq)
        except MalformedEvent as e:
            self.skip(subject, seq, "malformed", str(e))
            return
        self.apply_event(event, subject, seq)

    def apply_event(self, event: AnyEvent, subject: str, seq: int) -> None:
        """Apply one decoded event; an evolve that raises is recorded as a dead letter."""
        if seq <= self.view.seq:
            return
        try:
            self.view = self.p.evolve(self.view, event, seq)
        except Exception as e:  # noqa: BLE001 -- recorded as a dead letter and skipped (issue 4); never silent
            self.failed(subject, seq, e)

    def failed(self, subject: str, seq: int, e: Exception) -> None:
        """Record an evolve that raised at ``seq`` as a dead letter and move past it."""
        log.error("%s: evolve failed at seq %d (%s): %r", self.p.name, seq, subject, e)
        self.skip(subject, seq, "evolve-error", f"{type(e).__name__}: {e}")

    def skip(self, subject: str, seq: int, kind: str, reason: str) -> None:
        """Record an event that could not be applied and move past it."""
        if seq <= self.view.seq:
            return
        log.warning("%s: skipped seq %d (%s): %s", self.p.name, seq, subject, reason)
        key = dead_key(seq)
        self.dead[key] = DeadLetter(projector=self.p.name, seq=seq, subject=subject, kind=kind, reason=reason)
        self._new_dead.add(key)
        self.checkpoint.malformed += 1
        self.view.ignored.append(f"seq {seq}: {kind}: {reason}")
        self.view.seq = seq

    def discard_changes(self) -> None:
        """Forget what changed (it is already stored)."""
        self.view.touched = set()
        self.view.ignored.clear()
        self._new_dead.clear()

    def pending(self) -> bool:
        """Whether a key, a dead letter or a problem changed since the last `changes` (else only
        the checkpoint's sequence would move)."""
        return bool(self.view.touched or self._new_dead or self.view.ignored)

    def changes(self) -> dict[str, msgspec.Struct]:
        """Values of the keys changed since the last call, dead letters and the checkpoint last."""
        if self.view.ignored:
            for problem in self.view.ignored:
                log.info("%s: %s", self.p.name, problem)
            self.checkpoint.recent_problems = (self.checkpoint.recent_problems + self.view.ignored)[-RECENT_PROBLEMS:]
            self.view.ignored.clear()
        out: dict[str, msgspec.Struct] = dict(sorted(self.p.values(self.view, self.view.touched).items()))
        out.update((k, self.dead[k]) for k in sorted(self._new_dead))
        self.view.touched = set()
        self._new_dead.clear()
        self.checkpoint.seq = self.view.seq
        out[S.CHECKPOINT_KEY] = self.checkpoint
        return out

    def snapshot(self) -> dict[str, Any]:
        """Every key's value as the view holds it now (checkpoint excluded)."""
        out: dict[str, Any] = dict(self.p.values(self.view, self.p.keys(self.view)))
        out.update(self.dead)
        return out
