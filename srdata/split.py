"""Train/val/test assignment from content hashes, so adding sources never reshuffles a dataset.

Images are assigned by group: an image's group is its content hash, or, for frames made by
`srdata frames`, the video (or scene) it comes from, so that a whole video lands in one split and
test scores never come from footage that was trained on. Each group gets a score u in [0, 1)
from SHA-256(seed, its key). Validation groups come from the low end of the scores and test
groups from the high end:

- a fraction F (< 1) is a fixed threshold: val = {u < F_val}, test = {u >= 1 - F_test}. A
  group's split depends on its own key and the seed only, so adding or removing other sources
  never moves it;
- a count N takes whole groups from the low (val) / high (test) end until the split holds N
  images or more (exactly N when every group is one image). Adding sources can only push a
  group out of val or test into train when a new group outranks it; a train group never moves
  to val or test when sources are added, and val and test never trade groups.
"""

from __future__ import annotations

import hashlib

from srdata.errors import UserError

def parse_amount(text: str, option: str) -> float | int:
    """'0.05' -> fraction 0.05; '20' -> count 20; anything else is a UserError naming option."""
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: give a fraction below 1 (0.05) or a count (20)") from None
    check_amount(value, option)
    return value if value < 1 else int(value)


def check_amount(value: float | int, option: str) -> None:
    if not value >= 0 or value != value:
        raise UserError(f"{option} {value}: must be 0 or more (a fraction below 1 or a count)")
    if value == float("inf"):
        raise UserError(f"{option} {value}: give a fraction below 1 (0.05) or a count (20)")
    if value >= 1 and value != int(value):
        raise UserError(f"{option} {value}: a count must be a whole number (or use a fraction below 1)")


def check_amounts(val: float | int, test: float | int) -> None:
    """Refuse fractions whose val and test ranges would overlap."""
    check_amount(val, "--val")
    check_amount(test, "--test")
    if val < 1 and test < 1 and val + test >= 1:
        raise UserError(f"--val {val} + --test {test} leave nothing for training; keep their sum below 1")


def split_score(group: str, seed: int) -> float:
    """Uniform [0, 1) score of a group key (an image's content hash, a video) under a seed."""
    digest = hashlib.sha256(f"srkit-split:{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(keys: list[tuple[str, str]], val: float | int, test: float | int, seed: int) -> list[str]:
    """Split name per (group, tie-breaker) key, in the order given; one split per group.

    The tie-breaker (the source path) only orders groups whose scores are equal; nothing depends
    on the order of `keys`.
    """
    check_amounts(val, test)
    members: dict[str, list[int]] = {}
    for i, (group, _) in enumerate(keys):
        members.setdefault(group, []).append(i)
    ranked = sorted(
        (split_score(group, seed), min(keys[i][1] for i in ids), group) for group, ids in members.items()
    )
    if val < 1:
        val_groups = [g for u, _, g in ranked if u < val]
    else:
        val_groups = _whole_groups([g for _, _, g in ranked], int(val), members)
    taken = set(val_groups)
    if test < 1:
        test_groups = [g for u, _, g in ranked if u >= 1 - test and g not in taken]
    else:
        test_groups = _whole_groups([g for _, _, g in reversed(ranked) if g not in taken], int(test), members)
    out = ["train"] * len(keys)
    for split, groups in (("val", val_groups), ("test", test_groups)):
        for group in groups:
            for i in members[group]:
                out[i] = split
    if (val >= 1 or test >= 1) and "train" not in out and keys:
        raise UserError(
            f"--val {val} and --test {test} leave no training image out of {len(keys)} kept; lower them"
        )
    return out


def _whole_groups(ordered: list[str], count: int, members: dict[str, list[int]]) -> list[str]:
    """The first groups of `ordered` until they hold `count` images or more."""
    chosen, images = [], 0
    for group in ordered:
        if images >= count:
            break
        chosen.append(group)
        images += len(members[group])
    return chosen
