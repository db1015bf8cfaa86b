"""The partition seam: a plan covers every input once, in order; a part's name changes with its inputs and the
work; a part is stored whole or not at all; the in-process runner is the work on the whole list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from components.partitions.plan import IN_PROCESS, MAX_PARTITIONS, PartStore, Work, plan, run_partition


class Lengths(Work):
    """A toy work: each item's length; `fail_on` makes saving a part fail halfway."""

    kind: ClassVar[str] = "lengths"
    suffix: ClassVar[str] = "json"
    fail_on: str = ""

    def identity(self) -> str:
        return "lengths"

    def run(self, items: list[str]) -> list[int]:
        return [len(item) for item in items]

    def save(self, part: list[int], path: Path) -> None:
        path.write_text(json.dumps(part)[:3])
        if self.fail_on and len(part) == len(self.fail_on):
            raise OSError("disk full")
        path.write_text(json.dumps(part))

    def load(self, path: Path) -> list[int]:
        return json.loads(path.read_text())

    def combine(self, parts: list[list[int]]) -> list[int]:
        return [n for part in parts for n in part]


def test_a_plan_covers_every_input_once_in_order_with_keys_that_follow_inputs_and_work():
    items = [f"images/{i}.png" for i in range(10)]
    partitions = plan(items, 4, "work-a")
    assert [p.items for p in partitions] == [items[:4], items[4:8], items[8:]]
    assert [p.index for p in partitions] == [0, 1, 2]
    assert len({p.key for p in partitions}) == 3
    assert plan(items, 4, "work-a") == partitions  # the same inputs and work: the same names
    assert plan(items, 4, "work-b")[0].key != partitions[0].key
    changed = plan(["images/x.png", *items[1:]], 4, "work-a")
    assert changed[0].key != partitions[0].key and changed[1:] == partitions[1:]
    assert plan([], 4, "work-a") == []
    with pytest.raises(ValueError, match="raise the partition size"):
        plan(["x"] * (MAX_PARTITIONS + 1), 1, "work-a")


def test_a_part_is_stored_whole_or_not_at_all_and_a_stored_part_is_not_computed_again(tmp_path):
    partition = plan(["ab", "c"], 2, "lengths")[0]
    failing = Lengths(fail_on="xx")
    with pytest.raises(OSError, match="disk full"):
        run_partition(failing, partition, str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # no half-written part, no temporary file left
    path = run_partition(Lengths(), partition, str(tmp_path))
    assert Path(path).name == f"000000-{partition.key}.json" and json.loads(Path(path).read_text()) == [2, 1]
    Path(path).write_text("[7, 7]")  # a stored part is taken as it is
    assert run_partition(Lengths(), partition, str(tmp_path)) == path
    assert PartStore(str(tmp_path), Lengths()).read(partition) == [7, 7]


def test_in_process_is_the_work_on_the_whole_list():
    assert IN_PROCESS.map(Lengths(), ["a", "bb", "ccc"]) == [1, 2, 3]
