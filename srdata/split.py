"""Train/val/test assignment from content hashes, so adding sources never reshuffles a dataset.

Each kept image gets a score u in [0, 1) from SHA-256(seed, its content hash). Validation
images come from the low end of the scores and test images from the high end:

- a fraction F (< 1) is a fixed threshold: val = {u < F_val}, test = {u >= 1 - F_test}. An
  image's split depends on its own content and the seed only, so adding or removing other
  sources never moves it;
- a count N takes the N lowest (val) / N highest (test) scores. Adding sources can only push
  an image out of val or test into train when a new image outranks it (at most one per added
  image and split); a train image never moves to val or test when sources are added, and val
  and test never trade images.
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
    if value >= 1 and value != int(value):
        raise UserError(f"{option} {value}: a count must be a whole number (or use a fraction below 1)")


def check_amounts(val: float | int, test: float | int) -> None:
    """Refuse fractions whose val and test ranges would overlap."""
    check_amount(val, "--val")
    check_amount(test, "--test")
    if val < 1 and test < 1 and val + test >= 1:
        raise UserError(f"--val {val} + --test {test} leave nothing for training; keep their sum below 1")


def split_score(sha256: str, seed: int) -> float:
    """Uniform [0, 1) score of an image's content under a seed."""
    digest = hashlib.sha256(f"srkit-split:{seed}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(keys: list[tuple[str, str]], val: float | int, test: float | int, seed: int) -> list[str]:
    """Split name per (sha256, tie-breaker) key, in the order given.

    The tie-breaker (the source path) only orders images with identical content, which
    `--no-dedup` can keep; it never depends on file order.
    """
    check_amounts(val, test)
    scores = [(split_score(sha, seed), tie, i) for i, (sha, tie) in enumerate(keys)]
    ranked = sorted(scores)
    out = ["train"] * len(keys)
    if val < 1:
        val_ids = {i for u, _, i in ranked if u < val}
    else:
        val_ids = {i for _, _, i in ranked[: int(val)]}
    if test < 1:
        test_ids = {i for u, _, i in ranked if u >= 1 - test and i not in val_ids}
    else:
        test_ids = [i for _, _, i in reversed(ranked) if i not in val_ids][: int(test)]
    for i in val_ids:
        out[i] = "val"
    for i in test_ids:
        out[i] = "test"
    if (val >= 1 or test >= 1) and "train" not in out and keys:
        raise UserError(
            f"--val {val} and --test {test} leave no training image out of {len(keys)} kept; lower them"
        )
    return out
