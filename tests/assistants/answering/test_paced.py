"""An answer's pieces go out at most one event per interval (``pipeline.paced``), on a clock the test
moves, and through the real chat endpoint."""

from __future__ import annotations

import asyncio

import pytest

from assistants.answering.pipeline import paced
from assistants.answering.providers import ProviderError, Usage


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _source(clock: Clock, pieces, every: float, fail: Exception | None = None):
    """``pieces`` one after another, the clock moved ``every`` seconds before each but the first."""
    for n, piece in enumerate(pieces):
        if n and not isinstance(piece, Usage):
            clock.now += every
        yield piece
    if fail is not None:
        raise fail


def _run(pieces, every: float, interval: float = 0.1, fail: Exception | None = None):
    clock = Clock()
    out = []

    async def collect():
        async for item in paced(_source(clock, pieces, every, fail), interval, clock=clock):
            out.append(item)

    try:
        asyncio.run(collect())
    except ProviderError as error:
        out.append(error)
    return out


def test_pieces_that_come_at_once_go_out_as_the_first_and_then_the_rest():
    words = [f"w{n} " for n in range(200)]  # the offline answerer yields every word at once
    assert _run(words, every=0.0) == ["w0 ", "".join(words[1:])]


def test_a_model_writing_20_pieces_a_second_gets_about_ten_events_a_second():
    pieces = [f"p{n} " for n in range(41)]  # 2 s of a model at 20 pieces a second
    out = _run(pieces, every=0.05)
    assert out[0] == "p0 "
    assert "".join(out) == "".join(pieces)
    assert 19 <= len(out) <= 22  # one event per 0.1 s, instead of 41


def test_a_slow_model_gets_every_piece_as_it_comes():
    pieces = ["a", "b", "c", "d"]
    assert _run(pieces, every=0.25) == pieces


def test_interval_zero_sends_every_piece():
    pieces = ["a", "b", "c", "d"]
    assert _run(pieces, every=0.0, interval=0.0) == pieces


def test_held_pieces_go_out_before_a_failure():
    failure = ProviderError("timeout", "stalled")
    out = _run(["a", "b", "c"], every=0.01, fail=failure)
    assert out == ["a", "bc", failure]


def test_usage_passes_through_and_ends_nothing():
    usage = Usage(10, 3)
    out = _run(["a", "b", usage, "c"], every=0.01)
    assert out == ["a", usage, "bc"]


@pytest.mark.parametrize("interval", [0.1, 0.0])
def test_the_joined_pieces_are_the_answer(interval):
    pieces = [str(n) for n in range(57)]
    assert "".join(_run(pieces, every=0.013, interval=interval)) == "".join(pieces)
