"""Workspace paths and globs: which are refused and why, and what each glob matches."""

from __future__ import annotations

import pytest

from orchestrator.graphs.globs import PathIndex, is_glob, literal_prefix, matches, may_overlap, path_problem


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("build/libz.a", None),
        ("build/", None),
        ("src/**/*.h", None),
        ("my dir/lib z:v2.a", None),
        ("a/[!x]b/*.o", None),
        ("", "is empty"),
        ("/etc/passwd", "is absolute"),
        ("../x", "climbs out of the workspace"),
        ("a/../../b", "climbs out of the workspace"),
        ("a//b", "empty or '.' part"),
        ("./a", "empty or '.' part"),
        ("a/**b", "'**' must be a whole part"),
        ("a/[bc", "'[' without its closing ']'"),
        ("a\0b", "NUL"),
    ],
)
def test_path_problems(path, problem):
    found = path_problem(path)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("build/*.o", "build/a.o", True),
        ("build/*.o", "build/sub/a.o", False),
        ("build/*", "build/.hidden", True),  # pathlib's * takes dot files too
        ("build/**/*.o", "build/a.o", True),
        ("build/**/*.o", "build/x/y/a.o", True),
        ("**/*.h", "zlib.h", True),
        ("**/*.h", "src/inc/zlib.h", True),
        ("build/**", "build/x/y", True),
        ("build/**", "build", False),
        ("a?.c", "ab.c", True),
        ("a?.c", "a/.c", False),
        ("[ab].c", "b.c", True),
        ("[!ab].c", "c.c", True),
        ("[!ab].c", "a.c", False),
        ("a+b(1).c", "a+b(1).c", True),  # regex characters are literal
        ("build", "build/x.o", True),  # a plain path stands for its folder's files
        ("build/", "build/x.o", True),
        ("build", "buildx", False),
    ],
)
def test_matches(pattern, path, hit):
    assert matches(pattern, path) is hit
    assert PathIndex([path]).select([pattern]) == ([path] if hit else [])


PATTERNS = ["build/*.o", "**/*.h", "src", "lib/", "a?.c", "x/y/z.c", "[!ab].c"]
PATHS = ["build/a.o", "build/s/a.o", "zlib.h", "i/zlib.h", "src/a.c", "srcx/a.c", "lib/x/y", "lib", "ab.c",
         "x/y/z.c", "x/y", "x/y/z.c/w", "c.c", "a.c", "other", "src-a/x", "src0/x", "src.c", "lib.a"]  # fmt: skip


@pytest.mark.parametrize("n", range(len(PATTERNS) + 1))
def test_an_index_selects_what_any_of_the_patterns_matches(n):
    patterns = PATTERNS[:n]
    assert PathIndex(PATHS).select(patterns) == sorted({p for p in PATHS if any(matches(q, p) for q in patterns)})


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("src/lib/*.c", "src/lib"), ("**/x", ""), ("src/a.c", "src"), ("a.c", ""), ("a/*/b/*.c", "a")],
)
def test_literal_prefix(pattern, prefix):
    assert literal_prefix(pattern) == prefix


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [("build/*.o", "build/**", True), ("build/*.o", "src/*.c", False), ("**/*.o", "src/*.c", True)],
)
def test_may_overlap(a, b, overlap):
    assert may_overlap(a, b) is overlap and may_overlap(b, a) is overlap


def test_is_glob():
    assert is_glob("a/*.c") and is_glob("a?") and is_glob("[ab]") and not is_glob("a/b c:d.o")
