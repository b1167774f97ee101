"""srdata.dedup: pHash packing and the exact, sub-quadratic near-duplicate grouping."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from PIL import Image

from srdata import dedup
from srdata.dedup import (
    DEFAULT_THRESHOLD,
    Chunk,
    find_groups,
    hex_to_u64,
    phash_hex,
    phash_u64,
    plan_chunks,
)


def brute_force_groups(hashes: np.ndarray, t: int) -> np.ndarray:
    """Reference: all-pairs distances, then components labelled by their smallest index."""
    x = hashes[:, None] ^ hashes[None, :]
    bits = np.unpackbits(x.view(np.uint8).reshape(x.shape + (8,)), axis=-1).sum(-1)
    adjacency = bits <= t
    label = np.arange(hashes.size)
    while True:  # min-label propagation until stable = connected components
        new = np.where(adjacency, label[None, :], hashes.size).min(axis=1)
        new = np.minimum(new, label)
        if np.array_equal(new, label):
            return label
        label = new


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)


def flip_bits(rng: np.random.Generator, h: np.ndarray, max_flips: int) -> np.ndarray:
    """Each hash with up to max_flips random bits flipped (a near-duplicate)."""
    out = h.copy()
    for _ in range(max_flips):
        bit = rng.integers(0, 64, h.size).astype(np.uint64)
        on = rng.random(h.size) < 0.7
        out ^= np.where(on, np.left_shift(np.uint64(1), bit), np.uint64(0))
    return out


def clustered_hashes(rng: np.random.Generator, n: int, clusters: int, spread: int) -> np.ndarray:
    """Half random, half near-duplicates of a few centres, plus exact copies; shuffled."""
    h = random_hashes(rng, n)
    k = n // 2
    centres = random_hashes(rng, clusters)
    h[:k] = flip_bits(rng, centres[rng.integers(0, clusters, k)], spread)
    h[k : k + n // 20] = h[: n // 20]
    rng.shuffle(h)
    return h


# --- hashes ----------------------------------------------------------------------------------


def test_phash_matches_imagehash_for_pil_and_array(samples_dir):
    path = sorted(samples_dir.glob("*.png"))[0]
    im = Image.open(path).convert("RGB")
    expected = str(imagehash.phash(im))
    assert phash_hex(phash_u64(im)) == expected
    assert phash_hex(phash_u64(np.asarray(im))) == expected
    assert hex_to_u64(expected) == phash_u64(im)


def test_phash_first_bit_is_most_significant():
    # A left-bright/right-dark image: the hash is not symmetric, so bit order matters.
    a = np.zeros((64, 64, 3), np.uint8)
    a[:, :20] = 255
    h = imagehash.phash(Image.fromarray(a)).hash.ravel()
    value = phash_u64(a)
    assert [(value >> (63 - k)) & 1 for k in range(64)] == [int(b) for b in h]


def test_hex_round_trip_and_bad_values():
    for v in (0, 1, 0xDEADBEEF, 2**64 - 1):
        assert hex_to_u64(phash_hex(v)) == v
    assert phash_hex(255) == "00000000000000ff"
    for bad in ("abc", "g" * 16, "0" * 17, 12):
        with pytest.raises(ValueError, match="16 hex digits"):
            hex_to_u64(bad)
    with pytest.raises(ValueError, match="2\\*\\*64"):
        phash_hex(-1)
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        phash_u64(np.zeros((8, 8), np.float32))


# --- find_groups: exactness ------------------------------------------------------------------


@pytest.mark.parametrize("t", [0, 1, 2, 4, 6, 8, 10, 12, 20, 63, 64, 100])
def test_find_groups_equals_brute_force_on_clustered_hashes(t):
    rng = np.random.default_rng(t)
    h = clustered_hashes(rng, 1500, clusters=40, spread=7)
    assert np.array_equal(find_groups(h, t), brute_force_groups(h, t))


@pytest.mark.parametrize("t", [0, 3, 9, 14])
def test_find_groups_equals_brute_force_on_random_hashes(t):
    h = random_hashes(np.random.default_rng(100 + t), 2000)
    # A few planted neighbours at exactly the threshold and just beyond it.
    h[1] = h[0] ^ np.uint64((1 << t) - 1)
    h[3] = h[2] ^ np.uint64((1 << (t + 1)) - 1)
    got = find_groups(h, t)
    assert np.array_equal(got, brute_force_groups(h, t))
    assert got[1] == 0 and got[3] == 3


def test_each_chunk_plan_is_exact():
    """The planner picks one cut per size; force several others so each code path is checked."""
    rng = np.random.default_rng(7)
    h = clustered_hashes(rng, 800, clusters=20, spread=5)
    t = 6
    expected = brute_force_groups(h, t)
    plans = [
        [Chunk(8 * k, 8, 0) for k in range(8)],  # pure pigeonhole: exact match on a chunk
        [Chunk(0, 32, 3), Chunk(32, 32, 3)],  # wide chunks: searched, not tabled
        [Chunk(0, 22, 2), Chunk(22, 21, 2), Chunk(43, 21, 2)],
    ]
    for plan in plans:
        assert sum(c.radius + 1 for c in plan) > t
        assert sum(c.bits for c in plan) == 64
        parent = np.arange(len(np.unique(h)))
        uniq, inv = np.unique(h, return_inverse=True)
        for chunk in plan:
            dedup._search_chunk(uniq, chunk, t, 64, parent)
        dedup._compress(parent)
        roots = parent[inv]
        # Same partition as the reference.
        assert len(np.unique(roots)) == len(np.unique(expected))
        pairs = {(a, b) for a, b in zip(roots, expected)}
        assert len(pairs) == len(np.unique(expected))


@pytest.mark.parametrize("recurse_pairs, sample", [(2, 1), (30, 8)])
@pytest.mark.parametrize("t", [1, 4, 7])
def test_sub_problems_and_sampling_stay_exact(monkeypatch, recurse_pairs, sample, t):
    """Force the paths big inputs take (bucket pairs solved as sub-problems on fewer bits,
    sampled group comparisons followed by full ones) on a size brute force can check."""
    monkeypatch.setattr(dedup, "_RECURSE_PAIRS", recurse_pairs)
    monkeypatch.setattr(dedup, "_SAMPLE", sample)
    rng = np.random.default_rng(t * 100 + sample)
    h = clustered_hashes(rng, 400, clusters=4, spread=6)
    assert np.array_equal(find_groups(h, t), brute_force_groups(h, t))


def test_drop_bits_removes_a_chunk():
    v = np.array([0b1011_0110_1101], dtype=np.uint64)
    assert dedup._drop_bits(v, 4, 4)[0] == 0b1011_1101
    assert dedup._drop_bits(v, 0, 4)[0] == 0b1011_0110
    assert dedup._drop_bits(np.array([2**64 - 1], np.uint64), 60, 4)[0] == 2**60 - 1


def test_plans_satisfy_pigeonhole():
    for n in (10, 10_000, 1_000_000):
        for nbits in (64, 43, 20):
            for t in range(1, min(20, nbits)):
                plan = plan_chunks(n, t, nbits)
                assert sum(c.bits for c in plan) == nbits
                assert [c.shift for c in plan] == np.cumsum([0] + [c.bits for c in plan[:-1]]).tolist()
                assert sum(c.radius + 1 for c in plan) > t


def test_chain_is_transitive_and_labels_are_smallest_index():
    base = np.uint64(0)
    a, b, c = base, base ^ np.uint64(0b111), base ^ np.uint64(0b111111)  # a-b 3, b-c 3, a-c 6
    far = np.uint64(2**64 - 1)
    h = np.array([far, c, a, far, b], dtype=np.uint64)
    assert find_groups(h, 3).tolist() == [0, 1, 1, 0, 1]
    assert find_groups(h, 2).tolist() == [0, 1, 2, 0, 4]


def test_labels_follow_input_order_not_values():
    rng = np.random.default_rng(3)
    h = clustered_hashes(rng, 1000, clusters=10, spread=3)
    labels = find_groups(h, 5)
    assert np.array_equal(find_groups(h.copy(), 5), labels)
    perm = rng.permutation(h.size)
    permuted = find_groups(h[perm], 5)
    # Same partition, each label the first index of its group in the new order.
    for g in np.unique(permuted):
        members = np.flatnonzero(permuted == g)
        assert g == members[0]
        assert len(np.unique(labels[perm[members]])) == 1


def test_identical_hashes_and_tiny_inputs():
    h = np.full(50_000, 12345, dtype=np.uint64)
    assert not find_groups(h, DEFAULT_THRESHOLD).any()
    assert find_groups(np.zeros(0, np.uint64), 3).dtype == np.int64
    assert find_groups(np.zeros(0, np.uint64), 3).shape == (0,)
    assert find_groups(np.array([7], np.uint64), 3).tolist() == [0]


def test_big_tight_cluster_stays_cheap():
    """20,000 distinct hashes all within 4 bits of one centre: a naive bucket search would
    verify ~10^8 pairs; group-level skipping and sub-problems keep it to a few passes."""
    rng = np.random.default_rng(11)
    centre = random_hashes(rng, 1)
    h = np.unique(flip_bits(rng, np.repeat(centre, 40_000), 4))[:20_000]
    rng.shuffle(h)
    assert not find_groups(h, 8).any()


@pytest.mark.parametrize(
    "bad, msg",
    [
        (np.array([1, 2], dtype=np.int64), "uint64"),
        (np.zeros((2, 2), dtype=np.uint64), "1-D"),
        ([1, 2, 3], "numpy uint64"),
    ],
)
def test_bad_hash_arrays_are_refused(bad, msg):
    with pytest.raises(ValueError, match=msg):
        find_groups(bad, 3)


@pytest.mark.parametrize("bad", [-1, 2.5, "4", True])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(ValueError, match="threshold"):
        find_groups(np.zeros(3, np.uint64), bad)


def test_default_threshold_groups_re_encodes_and_resizes_but_not_different_drawings(samples_dir):
    """At DEFAULT_THRESHOLD each sample, its JPEG re-encode and a 3/4 downscale form one group,
    and no two of the 16 different drawings merge. Fails if the default drops below 2 (one
    JPEG re-encode here moves 2 bits) or rises to 12 (the closest two drawings)."""
    hashes, owner = [], []
    for index, path in enumerate(sorted(samples_dir.glob("*.png"))):
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        jpeg = io.BytesIO()
        rgb.save(jpeg, "JPEG", quality=80)
        smaller = rgb.resize((rgb.width * 3 // 4, rgb.height * 3 // 4), Image.BICUBIC)
        for variant in (rgb, Image.open(jpeg).convert("RGB"), smaller):
            hashes.append(phash_u64(variant))
            owner.append(index)
    assert len(set(owner)) == 16
    labels = find_groups(np.array(hashes, dtype=np.uint64), DEFAULT_THRESHOLD)
    groups = {}
    for label, who in zip(labels, owner):
        groups.setdefault(int(label), set()).add(who)
    assert sorted(map(sorted, groups.values())) == [[i] for i in range(16)]
