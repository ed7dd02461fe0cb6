"""The Ninja manifest parser, table-driven: escapes, scoping, path kinds, includes, errors with lines."""

from __future__ import annotations

import pytest

from orchestrator.errors import NinjaFileError
from orchestrator.graphs.ninja.manifest import Manifest, canonical, parse_manifest

CC = "rule cc\n  command = cc $in -o $out\n"


def parse(text: str, files: dict[str, str] | None = None) -> Manifest:
    files = {"build.ninja": text, **(files or {})}

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path]

    return parse_manifest("build.ninja", read)


def edge(m: Manifest, out: str):
    return m.edges[m.producer[out]]


COMMANDS = [
    ("plain", CC + "build a.o: cc a.c\n", "a.o", "cc a.c -o a.o"),
    ("dollar escape", "rule r\n  command = echo $$HOME\nbuild x: r\n", "x", "echo $HOME"),
    ("space and colon escapes in paths", CC + "build a$ b.o: cc c$:d.c\n", "a b.o", "cc 'c:d.c' -o 'a b.o'"),
    ("quote in a path", CC + "build x.o: cc it's.c\n", "x.o", "cc 'it'\\''s.c' -o x.o"),
    ("braced variable", "v = 1\nrule r\n  command = echo ${v}x\nbuild x: r\n", "x", "echo 1x"),
    ("line continuation", "rule r\n  command = echo a $\n      b\nbuild x: r\n", "x", "echo a b"),
    ("continued build line", CC + "build x.o: cc $\n    a.c $\n    b.c\n", "x.o", "cc a.c b.c -o x.o"),
    (
        "edge binding beats rule and file",
        "f = file\nrule r\n  command = echo $f\nbuild x: r\n  f = edge\n",
        "x",
        "echo edge",
    ),
    ("file binding reaches the rule", "f = file\nrule r\n  command = echo $f\nbuild x: r\n", "x", "echo file"),
    ("unknown variable is empty", "rule r\n  command = echo [$nope]\nbuild x: r\n", "x", "echo []"),
    (
        "later top-level rebinding seen by later edges",
        "f = 1\nrule r\n  command = echo $f\nf = 2\nbuild x: r\n",
        "x",
        "echo 2",
    ),
    (
        "edge binding evaluated in the file scope",
        "f = 1\nrule r\n  command = echo $g\nbuild x: r\n  f = 2\n  g = $f\n",
        "x",
        "echo 1",
    ),
    (
        "rule variable referring to another",
        "rule r\n  command = cc -MF $depfile\n  depfile = $out.d\nbuild x.o: r\n",
        "x.o",
        "cc -MF x.o.d",
    ),
    (
        "in and out hold explicit paths only",
        CC + "build x.o | x.d: cc a.c | h.h || gen\nbuild gen: phony\n",
        "x.o",
        "cc a.c -o x.o",
    ),
    ("in_newline", "rule r\n  command = cat $in_newline\nbuild x: r a b\n", "x", "cat a\nb"),
    ("comments and blank lines", "# c\n\nrule r\n  # inside\n  command = true\n\nbuild x: r\n", "x", "true"),
    ("path canonicalized", CC + "build ./out//a.o: cc src/../a.c\n", "out/a.o", "cc a.c -o out/a.o"),
    ("CRLF line ends", "rule r\r\n  command = true\r\nbuild x: r\r\n", "x", "true"),
]


@pytest.mark.parametrize(("text", "out", "command"), [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_commands(text: str, out: str, command: str) -> None:
    assert edge(parse(text), out).variables["command"] == command


def test_path_kinds() -> None:
    m = parse(
        CC + "build a.o | a.map: cc a.c b.c | h1.h h2.h || order1 order2 |@ check\nbuild order1 order2 check: phony\n"
    )
    e = edge(m, "a.o")
    assert (e.outputs, e.implicit_outputs) == (("a.o",), ("a.map",))
    assert (e.inputs, e.implicit, e.order_only, e.validations) == (
        ("a.c", "b.c"),
        ("h1.h", "h2.h"),
        ("order1", "order2"),
        ("check",),
    )
    assert m.producer["a.map"] == m.producer["a.o"]


def test_order_only_without_implicit() -> None:
    e = edge(parse(CC + "build a.o: cc a.c || gen.h\n"), "a.o")
    assert (e.implicit, e.order_only) == ((), ("gen.h",))


def test_phony_generator_default_and_pools() -> None:
    text = (
        "rule regen\n  command = cmake .\n  generator = 1\n"
        "pool link\n  depth = 2\n"
        "rule ld\n  command = ld $in -o $out\n  pool = link\n"
        + CC
        + "build build.ninja: regen CMakeLists.txt\nbuild a.o: cc a.c\nbuild app: ld a.o\n"
        + "build all: phony app\ndefault all\n"
    )
    m = parse(text)
    assert edge(m, "build.ninja").generator and not edge(m, "a.o").generator
    assert edge(m, "all").phony and m.defaults == ["all"]
    assert m.pools["link"] == 2 and edge(m, "app").variables["pool"] == "link"


def test_include_shares_scope_subninja_does_not() -> None:
    files = {
        "rules.ninja": "rule cc\n  command = cc $flags $in\nflags = -O2\n",
        "sub/build.ninja": "flags = -g\nrule local\n  command = touch $out\nbuild sub.o: cc sub.c\nbuild s: local\n",
    }
    m = parse("include rules.ninja\nbuild a.o: cc a.c\nsubninja sub/build.ninja\nbuild b.o: cc b.c\n", files)
    assert edge(m, "a.o").variables["command"] == "cc -O2 a.c"  # the include's binding is ours
    assert edge(m, "sub.o").variables["command"] == "cc -g sub.c"  # the subninja's stays in it
    assert edge(m, "b.o").variables["command"] == "cc -O2 b.c"
    assert edge(m, "s").file == "sub/build.ninja"
    with pytest.raises(NinjaFileError, match=r"build\.ninja:4: unknown rule 'local'"):
        parse("rule cc\n  command = x\nsubninja sub/build.ninja\nbuild t: local\n", files)


def test_include_path_uses_variables() -> None:
    m = parse("dir = gen\ninclude $dir/rules.ninja\nbuild a.o: cc a.c\n", {"gen/rules.ninja": CC})
    assert edge(m, "a.o").file == "build.ninja"


ERRORS = [
    ("unknown rule", "build a: nope b\n", r"build\.ninja:1: unknown rule 'nope'"),
    ("bad escape", "rule r\n  command = echo $!\n", r"build\.ninja:2: bad \$-escape"),
    ("unterminated brace", "x = ${abc\n", r"build\.ninja:1: bad \$-escape"),
    ("rule without command", "rule r\n  description = d\nbuild x: r\n", r"build\.ninja:1: rule 'r' has no 'command"),
    (
        "unexpected rule variable",
        "rule r\n  command = x\n  colour = red\n",
        r"build\.ninja:3: unexpected variable 'colour'",
    ),
    ("duplicate rule", "rule r\n  command = x\nrule r\n  command = y\n", r"build\.ninja:3: duplicate rule 'r'"),
    (
        "two edges, one output",
        CC + "build a.o: cc a.c\nbuild a.o: cc b.c\n",
        r"build\.ninja:4: multiple rules generate 'a\.o'",
    ),
    ("missing colon", CC + "build a.o cc a.c\n", r"build\.ninja:3: expected ':'"),
    ("no output", CC + "build : cc a.c\n", r"build\.ninja:3: expected a path"),
    ("stray indent", "  x = 1\n", r"build\.ninja:1: unexpected indent"),
    ("unknown default", CC + "build a.o: cc a.c\ndefault b.o\n", r"build\.ninja:4: unknown target 'b\.o'"),
    ("unknown pool", "rule r\n  command = x\n  pool = big\nbuild x: r\n", r"build\.ninja:4: unknown pool name 'big'"),
    ("missing include", "include nowhere.ninja\n", r"nowhere\.ninja: cannot be read"),
    (
        "variable cycle",
        "rule r\n  command = $a\n  description = $description\nbuild x: r\n",
        r"build\.ninja:4: cycle in rule variables",
    ),
    ("garbage after a binding name", "x y\n", r"build\.ninja:1: expected '=' after variable name 'x'"),
    (
        "error on a later line",
        "\n\n# c\n" + CC + "build a.o: cc a.c\nbuild b.o: nope\n",
        r"build\.ninja:7: unknown rule",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(NinjaFileError, match=message):
        parse(text)


def test_include_cycle_is_refused() -> None:
    with pytest.raises(NinjaFileError, match="nested more than"):
        parse("include build.ninja\n")


@pytest.mark.parametrize(
    ("path", "want"),
    [("a/./b", "a/b"), ("a//b", "a/b"), ("a/../b", "b"), ("../x", "../x"), ("/abs//p/", "/abs/p"), ("//x", "/x")],
)
def test_canonical(path: str, want: str) -> None:
    assert canonical(path) == want
