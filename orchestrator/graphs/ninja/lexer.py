"""Ninja's lexical syntax: identifiers, ``$``-escapes, paths and values, line continuations, comments.

Escapes, as the Ninja manual gives them: ``$$`` a dollar, ``$ `` a space, ``$:`` a colon, ``$``
at the end of a line continues it (the next line's leading spaces are dropped), ``$name`` and
``${name}`` a variable (``name`` of ``A-Z a-z 0-9 _ -``, and ``.`` inside braces). Any other
``$`` is an error naming the line. A path ends at an unescaped space, ``:``, ``|`` or newline;
a value at the newline.
"""

from __future__ import annotations

import re

from orchestrator.graphs.ninja.scope import EvalString, Part

_IDENT = re.compile(r"[A-Za-z0-9_.\-]+")
_SIMPLE_VAR = re.compile(r"[A-Za-z0-9_\-]+")
_BRACED_VAR = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")
_PATH_TEXT = re.compile(r"[^$ :|\n\r]+")
_VALUE_TEXT = re.compile(r"[^$\n\r]+")


class NinjaSyntaxError(ValueError):
    """A syntax error at a line of the file being read (the parser adds the file's name)."""

    def __init__(self, line: int, why: str) -> None:
        self.line = line
        self.why = why
        super().__init__(f"line {line}: {why}")


class Lexer:
    """A cursor over one file's text that knows its line."""

    def __init__(self, text: str) -> None:
        self.text = text.replace("\r\n", "\n")
        self.pos = 0
        self.line = 1

    def error(self, why: str) -> NinjaSyntaxError:
        """A syntax error at the current line."""
        return NinjaSyntaxError(self.line, why)

    def at_end(self) -> bool:
        """Tell whether the whole text has been read."""
        return self.pos >= len(self.text)

    def peek(self, n: int = 1) -> str:
        """The next ``n`` characters, not consumed."""
        return self.text[self.pos : self.pos + n]

    def skip_spaces(self) -> None:
        """Skip spaces and ``$``-newline continuations."""
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c == " ":
                self.pos += 1
            elif c == "$" and text.startswith("$\n", self.pos):
                self.pos += 2
                self.line += 1
            else:
                return

    def indent(self) -> int:
        """Count and skip the spaces starting a line."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1
        return self.pos - start

    def skip_comment_or_blank(self) -> bool:
        """At a line's first non-space: consume the line if it is blank or a comment."""
        if self.at_end():
            return True
        c = self.text[self.pos]
        if c == "#":
            end = self.text.find("\n", self.pos)
            self.pos = len(self.text) if end < 0 else end
        if self.at_end() or self.text[self.pos] == "\n":
            self.newline()
            return True
        return False

    def newline(self) -> None:
        """Consume the end of a line (or of the text); anything else there is an error."""
        self.skip_spaces()
        if self.at_end():
            return
        if self.text[self.pos] != "\n":
            raise self.error(f"unexpected {self.text[self.pos]!r}: expected the end of the line")
        self.pos += 1
        self.line += 1

    def ident(self, what: str) -> str:
        """An identifier (a keyword, a rule, pool or variable name)."""
        m = _IDENT.match(self.text, self.pos)
        if not m:
            raise self.error(f"expected {what}")
        self.pos = m.end()
        return m.group()

    def expect(self, char: str, what: str) -> None:
        """Consume ``char`` (after spaces) or raise naming what was expected."""
        self.skip_spaces()
        if self.peek() != char:
            raise self.error(f"expected {what}")
        self.pos += 1
        self.skip_spaces()

    def eval_string(self, *, path: bool) -> EvalString:
        """A path (ends at space, ``:``, ``|``, newline) or a value (ends at newline), unexpanded."""
        parts: list[Part] = []
        text_rx = _PATH_TEXT if path else _VALUE_TEXT
        text = self.text
        while self.pos < len(text):
            m = text_rx.match(text, self.pos)
            if m:
                parts.append((False, m.group()))
                self.pos = m.end()
                continue
            if text[self.pos] != "$":
                break
            self._escape(parts, path)
        if path:
            self.skip_spaces()
        return EvalString(_merge(parts))

    def _escape(self, parts: list[Part], path: bool) -> None:
        text, i = self.text, self.pos + 1
        c = text[i : i + 1]
        if c in ("$", " ", ":"):
            parts.append((False, c))
            self.pos = i + 1
        elif c == "\n":
            self.pos = i + 1
            self.line += 1
            while self.pos < len(text) and text[self.pos] == " ":
                self.pos += 1
        elif c == "{":
            m = _BRACED_VAR.match(text, i)
            if not m:
                raise self.error("bad $-escape: '${' needs a variable name and '}'")
            parts.append((True, m.group(1)))
            self.pos = m.end()
        else:
            m = _SIMPLE_VAR.match(text, i)
            if not m:
                shown = repr(c) if c else "the end of the file"
                raise self.error(f"bad $-escape: '$' followed by {shown} (write $$ for a dollar)")
            parts.append((True, m.group()))
            self.pos = m.end()


def _merge(parts: list[Part]) -> tuple[Part, ...]:
    """Adjacent literal parts joined (so an escaped space does not split a literal)."""
    out: list[Part] = []
    for part in parts:
        if out and not part[0] and not out[-1][0]:
            out[-1] = (False, out[-1][1] + part[1])
        else:
            out.append(part)
    return tuple(out)
