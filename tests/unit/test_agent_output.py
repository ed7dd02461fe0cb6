"""Streaming redaction and the head+tail output cap (pure, table-driven)."""

from __future__ import annotations

import random

import pytest

from node_agent.output import CappedOutput, Redactor, redact_text

SECRETS = ("s3cr3t-value", "s3cr3t", "hunter22")


def _feed_all(r: Redactor, chunks: list[bytes]) -> bytes:
    return b"".join(r.feed(c) for c in chunks) + r.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token=s3cr3t-value end", "token=*** end"),
        ("short s3cr3t only", "short *** only"),
        ("hunter22hunter22", "******"),
        ("nothing here", "nothing here"),
        ("s3cr3", "s3cr3"),
        ("", ""),
    ],
)
def test_redact_text(text, expected):
    assert redact_text(text, SECRETS) == expected


@pytest.mark.parametrize("split", range(1, 30))
def test_a_secret_split_across_chunks_is_still_caught(split):
    data = b"a line with s3cr3t-value and hunter22 in it\n"
    out = _feed_all(Redactor(SECRETS), [data[:split], data[split:]])
    assert out == b"a line with *** and *** in it\n"


def test_no_prefix_of_a_secret_leaves_before_the_stream_decides():
    r = Redactor(("abcdefgh",))
    emitted = r.feed(b"xxxxabcd")
    assert b"abcd" not in emitted
    assert emitted + r.feed(b"efgh yy") + r.close() == b"xxxx*** yy"


def test_random_chunking_never_leaks():
    rng = random.Random(7)
    data = b"".join(rng.choice([b"s3cr3t-value", b"hunter22", b"s3cr3t", b"abc ", b"\n", b"s3c"]) for _ in range(2000))
    expected = redact_text(data.decode(), SECRETS).encode()
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), 50))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        out = _feed_all(Redactor(SECRETS), chunks)
        assert out == expected
        assert b"hunter22" not in out and b"s3cr3t" not in out


def test_no_secrets_passes_through():
    r = Redactor(())
    assert r.feed(b"abc") + r.close() == b"abc"


@pytest.mark.parametrize(
    ("chunks", "cap", "kept", "dropped"),
    [
        ([b"hello"], 100, b"hello", 0),
        ([b"0123456789"], 8, None, 2),
        ([b"01234", b"56789"], 8, None, 2),
        ([b"x" * 1000, b"END"], 100, None, 903),
    ],
)
def test_cap_keeps_head_and_tail(chunks, cap, kept, dropped):
    c = CappedOutput(cap)
    for ch in chunks:
        c.feed(ch)
    assert c.dropped == dropped
    assert c.total == sum(len(x) for x in chunks)
    value = c.value()
    if dropped:
        assert f"{dropped} bytes of output omitted".encode() in value
        assert value.endswith(b"".join(chunks)[-c.tail_cap :])
        assert value.startswith(b"".join(chunks)[: c.head_cap])
    if kept is not None and not dropped:
        assert value == kept
