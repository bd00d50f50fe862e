"""fewer_collections: the raised threshold holds until the last block ends, then the
threshold the first block found is back."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from addon import collector
from addon.collector import fewer_collections


@pytest.fixture(autouse=True)
def custom_threshold() -> Iterator[tuple[int, int, int]]:
    """A threshold unlike the default, so restoring the default by mistake shows."""
    saved = gc.get_threshold()
    gc.set_threshold(555, 7, 9)
    yield (555, 7, 9)
    gc.set_threshold(*saved)


def test_a_block_raises_the_young_threshold_and_restores_the_one_it_found(
    custom_threshold: tuple[int, int, int],
) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, 7, 9)
    assert gc.get_threshold() == custom_threshold


def test_an_error_in_the_block_still_restores_the_threshold(
    custom_threshold: tuple[int, int, int],
) -> None:
    with pytest.raises(ValueError), fewer_collections():
        raise ValueError("bad row")
    assert gc.get_threshold() == custom_threshold


def test_nested_blocks_restore_only_when_the_outer_one_ends(
    custom_threshold: tuple[int, int, int],
) -> None:
    with fewer_collections():
        with fewer_collections():
            pass
        assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, 7, 9)
    assert gc.get_threshold() == custom_threshold


def test_overlapping_blocks_in_two_threads_restore_once_both_ended(
    custom_threshold: tuple[int, int, int],
) -> None:
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with fewer_collections():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    with fewer_collections():
        thread.start()
        assert entered.wait(10)
    # This thread's block ended first: the other one still runs with fewer collections.
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, 7, 9)
    release.set()
    thread.join(10)
    assert gc.get_threshold() == custom_threshold
