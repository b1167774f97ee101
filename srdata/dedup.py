"""Near-duplicate detection with 64-bit perceptual hashes (imagehash pHash).

`find_groups` is exact (the transitive closure of "Hamming distance <= threshold") and never
compares all pairs, so a million sources take seconds rather than hours. It uses multi-index
hashing: the 64 bits are cut into chunks with a search radius each so that, by the pigeonhole
principle, two hashes within distance t are within the radius on at least one chunk. Hashes are
bucketed by chunk value; only hashes in the same bucket, or in buckets a few bit flips apart,
become candidate pairs, verified with a vectorised popcount and merged by an array union-find.

Clusters of near-duplicates would still make big buckets and a quadratic number of candidates,
so: a star pass first joins each hash to a few hashes of its bucket; pairs are then generated
between groups, not hashes, comparing a spread sample of each group before the full groups; and
bucket pairs that still hold many separate groups are solved as a sub-problem on the remaining
bits. Every shortcut only skips pairs whose ends are already merged, so the result stays exact.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator

import imagehash
import numpy as np
from PIL import Image

# Measured on the shared cartoon set (scripts/measure_dedup_threshold.py): pixel-identical copies
# and same-outfit expression variants are at most 4 bits apart, the closest different drawings 6
# and unrelated images 10 or more. pHash sets half of its bits (unless DCT values tie), so
# distances are even: 4 is one full step below the first false merge.
DEFAULT_THRESHOLD = 4

HASH_BITS = 64
# Upper bound on candidate pairs held in memory at once (each costs ~50 bytes while verified).
_PAIR_BATCH = 1 << 21
# Chunks this narrow or narrower index their buckets with a dense table instead of a search.
_DENSE_TABLE_BITS = 24
# Members of each group compared first when two groups meet (see _merge_runs).
_SAMPLE = 8
# Bucket pairs needing more group-vs-group comparisons than this become a sub-problem.
_RECURSE_PAIRS = 1 << 16


# ---------------------------------------------------------------------------------------------
# Hashes


def phash_u64(img: Image.Image | np.ndarray) -> int:
    """imagehash's 64-bit pHash of a PIL image or a uint8 HWC RGB array, as an unsigned int.

    Bits are ImageHash.hash in row-major order, first bit most significant, so
    `phash_hex(phash_u64(im)) == str(imagehash.phash(im))`. imagehash converts to grey and
    ignores alpha, so pass the decoded RGB (alpha already composited) that the dataset uses.
    """
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f"phash_u64 needs a uint8 HxWx3 RGB array, got {img.dtype} {img.shape}"
            )
        img = Image.fromarray(img, "RGB")
    elif not isinstance(img, Image.Image):
        raise ValueError(f"phash_u64 needs a PIL image or a numpy array, got {type(img).__name__}")
    bits = imagehash.phash(img, hash_size=8).hash.ravel()
    return int(np.packbits(bits).view(">u8")[0])


def phash_hex(h: int) -> str:
    """16 lowercase hex digits (the form imagehash prints and the manifest stores)."""
    h = int(h)
    if not 0 <= h < 1 << HASH_BITS:
        raise ValueError(f"a 64-bit hash must be in [0, 2**64), got {h}")
    return f"{h:016x}"


def hex_to_u64(s: str) -> int:
    """Inverse of `phash_hex`; refuses anything but exactly 16 hex digits."""
    if not isinstance(s, str) or len(s) != 16:
        raise ValueError(f"a 64-bit hash is 16 hex digits, got {s!r}")
    try:
        return int(s, 16)
    except ValueError:
        raise ValueError(f"a 64-bit hash is 16 hex digits, got {s!r}") from None


def hamming_distances(hashes: np.ndarray, h: int) -> np.ndarray:
    """Bits by which each of a uint64 array of hashes differs from the hash h (int64 array)."""
    return popcount(hashes ^ np.uint64(h)).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Grouping


def find_groups(hashes: np.ndarray, threshold: int) -> np.ndarray:
    """Group label per hash: equal labels = connected by a chain of distances <= threshold.

    The label is the smallest index in the group, so the result depends only on the input
    order and values. Raises ValueError for anything but a 1-D uint64 array and a threshold >= 0.
    """
    if not isinstance(hashes, np.ndarray) or hashes.dtype != np.uint64 or hashes.ndim != 1:
        what = (
            f"{hashes.dtype} array of shape {hashes.shape}"
            if isinstance(hashes, np.ndarray)
            else type(hashes).__name__
        )
        raise ValueError(f"find_groups needs a 1-D numpy uint64 array of hashes, got {what}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)):
        raise ValueError(f"threshold must be an integer number of bits, got {threshold!r}")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 bits, got {threshold}")
    return _groups(hashes, int(threshold), HASH_BITS)


def _groups(values: np.ndarray, t: int, nbits: int) -> np.ndarray:
    """find_groups on hashes that use only their low `nbits` bits (sub-problems have fewer)."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    if t >= nbits:  # every pair is within t
        return np.zeros(values.size, dtype=np.int64)
    # Identical hashes are one group for free; the search then runs on distinct values only,
    # which also makes "a million copies of one hash" trivial.
    uniq, inverse = np.unique(values, return_inverse=True)
    parent = np.arange(uniq.size, dtype=np.int64)
    if t > 0 and uniq.size > 1:
        for chunk in plan_chunks(uniq.size, t, nbits):
            _search_chunk(uniq, chunk, t, nbits, parent)
        _compress(parent)
    roots = parent[inverse.ravel()]
    # Relabel every group by its first member in the caller's order.
    _, first, group = np.unique(roots, return_index=True, return_inverse=True)
    return first[group.ravel()].astype(np.int64)


@dataclass(frozen=True)
class Chunk:
    """Bits [shift, shift + bits) of the hash, searched up to `radius` flipped bits."""

    shift: int
    bits: int
    radius: int


def plan_chunks(n: int, t: int, nbits: int = HASH_BITS) -> list[Chunk]:
    """Cut `nbits` bits into chunks with radii so that sum(radius + 1) > t (pigeonhole: every pair
    within t is then within `radius` on some chunk), picking the cut with the lowest estimated
    cost for n uniformly spread hashes: bucket look-ups per flip mask plus candidate pairs."""
    best: tuple[float, list[Chunk]] | None = None
    for m in range(1, min(t + 1, nbits) + 1):
        widths = [nbits // m + (1 if i < nbits % m else 0) for i in range(m)]
        q, rem = divmod(t + 1 - m, m)
        radii = [q + (1 if i < rem else 0) for i in range(m)]
        cost, shift, chunks = 0.0, 0, []
        for bits, radius in zip(widths, radii):
            masks = _ball_size(bits, radius)
            lookup = 1.0 if bits <= _DENSE_TABLE_BITS else 10.0
            cost += 15.0 * n  # sorting and the star pass
            cost += masks * (lookup * min(n, 2.0**bits) + 2000.0)
            cost += 3.0 * masks * n * n / 2.0 ** (bits + 1)
            chunks.append(Chunk(shift, bits, radius))
            shift += bits
        if best is None or cost < best[0]:
            best = (cost, chunks)
    assert best is not None
    return best[1]


def _ball_size(bits: int, radius: int) -> int:
    return sum(math.comb(bits, k) for k in range(radius + 1))


def _flip_masks(bits: int, weight: int) -> np.ndarray:
    """Every `bits`-wide value with exactly `weight` bits set."""
    if weight == 0:
        return np.zeros(1, dtype=np.int64)
    combos = np.array(list(itertools.combinations(range(bits), weight)), dtype=np.int64)
    return np.bitwise_or.reduce(np.left_shift(1, combos), axis=1)


def _search_chunk(
    values: np.ndarray, chunk: Chunk, t: int, nbits: int, parent: np.ndarray
) -> None:
    """Merge every pair within t whose chunk values differ in at most chunk.radius bits.

    Bucket pairs holding many separate groups (a big loose cluster) would cost a quadratic number
    of comparisons; they are solved as a smaller problem instead: their hashes without this
    chunk's bits, with the threshold lowered by the bits the chunk already differs in."""
    keys = ((values >> np.uint64(chunk.shift)) & np.uint64((1 << chunk.bits) - 1)).astype(
        np.int64
    )
    _star_pass(values, keys, t, parent)
    for weight in range(chunk.radius + 1):
        _compress(parent)
        buckets = _Buckets(values, keys, chunk.bits, parent)
        for mask in _flip_masks(chunk.bits, weight):
            a, b = buckets.bucket_pairs(int(mask))
            # Small buckets (most of them, for spread-out hashes): compare every hash pair.
            small = (buckets.bucket_size[a] <= _SAMPLE) & (buckets.bucket_size[b] <= _SAMPLE)
            _merge_small_buckets(buckets, a[small], b[small], t, parent, mask == 0)
            a, b = a[~small], b[~small]
            runs_a, runs_b = buckets.bucket_runs[a], buckets.bucket_runs[b]
            work = runs_a * runs_b // (2 if mask == 0 else 1)
            big = work > _RECURSE_PAIRS
            for k in np.flatnonzero(big):
                members = buckets.members(a[k])
                if mask:
                    members = np.concatenate([members, buckets.members(b[k])])
                sub = _drop_bits(values[members], chunk.shift, chunk.bits)
                labels = _groups(sub, t - weight, nbits - chunk.bits)
                _union(parent, members, members[labels])
            for ra, rb in buckets.run_pairs(a[~big], b[~big], same_bucket=mask == 0):
                _merge_runs(buckets, ra, rb, t, parent)


def _drop_bits(values: np.ndarray, shift: int, bits: int) -> np.ndarray:
    """The hashes with bits [shift, shift + bits) cut out and the higher bits moved down."""
    low = values & np.uint64((1 << shift) - 1)
    if shift + bits >= HASH_BITS:
        return low
    return ((values >> np.uint64(shift + bits)) << np.uint64(shift)) | low


def _star_pass(values: np.ndarray, keys: np.ndarray, t: int, parent: np.ndarray) -> None:
    """Join each hash to any of _SAMPLE hashes spread over its bucket that is within t: a cheap
    O(n) step that collapses most of a cluster into one group before the exact pass, which
    compares group against group, looks at it."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    lengths = np.diff(np.r_[starts, sk.size])
    start_of = np.repeat(starts, lengths)
    length_of = np.repeat(lengths, lengths)
    heads_of = np.minimum(length_of, _SAMPLE)
    for k in range(_SAMPLE):
        valid = np.flatnonzero(k < heads_of)
        if valid.size == 0:
            break
        head = start_of[valid] + k * length_of[valid] // heads_of[valid]
        i, j = order[valid], order[head]
        close = popcount(values[i] ^ values[j]) <= t
        _union(parent, i[close], j[close])


class _Buckets:
    """Hashes sorted by (chunk value, group): buckets of equal chunk value, split into runs of
    one group each. Pairs are generated between runs, never inside one (already merged)."""

    def __init__(self, values: np.ndarray, keys: np.ndarray, bits: int, parent: np.ndarray):
        self.order = np.lexsort((parent, keys))
        self.sorted_values = values[self.order]
        sk, sg = keys[self.order], parent[self.order]
        n = sk.size
        new_bucket = np.r_[True, sk[1:] != sk[:-1]]
        new_run = new_bucket | np.r_[True, sg[1:] != sg[:-1]]
        self.run_start = np.flatnonzero(new_run)
        self.run_len = np.diff(np.r_[self.run_start, n])
        self.run_group = sg[self.run_start]
        bucket_of_run = np.cumsum(new_bucket)[self.run_start] - 1
        self.bucket_key = sk[new_bucket]
        nb = self.bucket_key.size
        self.bucket_first_run = np.searchsorted(bucket_of_run, np.arange(nb))
        self.bucket_runs = np.diff(np.r_[self.bucket_first_run, self.run_start.size])
        self.bucket_start = self.run_start[self.bucket_first_run]
        self.bucket_size = np.diff(np.r_[self.bucket_start, n])
        self.table = None
        if bits <= _DENSE_TABLE_BITS:
            self.table = np.full(1 << bits, -1, dtype=np.int32 if nb < 2**31 else np.int64)
            self.table[self.bucket_key] = np.arange(nb)

    def partner(self, mask: int) -> np.ndarray:
        """Index of the bucket whose key is key ^ mask, or -1."""
        want = self.bucket_key ^ mask
        if self.table is not None:
            return self.table[want]
        pos = np.minimum(np.searchsorted(self.bucket_key, want), self.bucket_key.size - 1)
        return np.where(self.bucket_key[pos] == want, pos, -1)

    def members(self, bucket: int) -> np.ndarray:
        """Indices of the hashes in one bucket."""
        first = self.run_start[self.bucket_first_run[bucket]]
        last = self.bucket_first_run[bucket] + self.bucket_runs[bucket] - 1
        return self.order[first : self.run_start[last] + self.run_len[last]]

    def bucket_pairs(self, mask: int) -> tuple[np.ndarray, np.ndarray]:
        """Buckets (a[k], b[k]) whose keys differ by exactly `mask`, each pair once; for mask 0
        each bucket with more than one group is paired with itself."""
        if mask == 0:
            a = np.flatnonzero(self.bucket_runs > 1)
            return a, a
        other = self.partner(mask)
        a = np.flatnonzero(other > np.arange(other.size))
        return a, other[a]

    def run_pairs(
        self, a: np.ndarray, b: np.ndarray, same_bucket: bool
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Pairs of runs of different groups, one run from bucket a[k] and one from b[k]."""
        for blk, oa, ob in _block_pairs(self.bucket_runs[a], self.bucket_runs[b]):
            ra = self.bucket_first_run[a[blk]] + oa
            rb = self.bucket_first_run[b[blk]] + ob
            keep = (ra < rb) if same_bucket else (self.run_group[ra] != self.run_group[rb])
            if keep.any():
                yield ra[keep], rb[keep]


def _merge_small_buckets(
    buckets: _Buckets, a: np.ndarray, b: np.ndarray, t: int, parent: np.ndarray,
    same_bucket: bool,
) -> None:
    """Compare every hash of bucket a[k] with every hash of bucket b[k] (or each pair within
    a[k] once, when same_bucket), for buckets of at most _SAMPLE hashes. Pairs are handled by
    size class so each class is one regular (pairs x p x q) array: no per-pair bookkeeping."""
    if a.size == 0:
        return
    size_a, size_b = buckets.bucket_size[a], buckets.bucket_size[b]
    cls = size_a * (_SAMPLE + 1) + size_b
    by_class = np.argsort(cls, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(cls[by_class]) != 0, True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        k = by_class[lo:hi]
        p, q = int(size_a[k[0]]), int(size_b[k[0]])
        if same_bucket:
            off_a, off_b = np.triu_indices(p, 1)
        else:
            off_a, off_b = np.divmod(np.arange(p * q), q)
        step = max(1, _PAIR_BATCH // max(1, off_a.size))
        for s in range(0, k.size, step):
            kk = k[s : s + step]
            pa = (buckets.bucket_start[a[kk]][:, None] + off_a).ravel()
            pb = (buckets.bucket_start[b[kk]][:, None] + off_b).ravel()
            close = popcount(buckets.sorted_values[pa] ^ buckets.sorted_values[pb]) <= t
            if close.any():
                _union(parent, buckets.order[pa[close]], buckets.order[pb[close]])


def _merge_runs(
    buckets: _Buckets, ra: np.ndarray, rb: np.ndarray, t: int, parent: np.ndarray
) -> None:
    """Union every hash pair within t between runs ra[k] and rb[k].

    Runs merged by an earlier batch are dropped first. Then only _SAMPLE hashes spread over
    each run are compared: in a cluster a few members usually suffice to join two runs, which
    spares the |A| x |B| comparison. Run pairs that are still apart and had members left out get
    the full comparison, so the result stays exact."""
    len_a, len_b = buckets.run_len[ra], buckets.run_len[rb]
    # (Checking a pair of single hashes costs as much as checking whether it is merged.)
    keep = _still_apart(parent, buckets, ra, rb, (len_a > 1) | (len_b > 1))
    ra, rb, len_a, len_b = ra[keep], rb[keep], len_a[keep], len_b[keep]
    start_a, start_b = buckets.run_start[ra], buckets.run_start[rb]
    _merge_blocks(buckets, start_a, len_a, start_b, len_b, t, parent, _SAMPLE)
    left = _still_apart(parent, buckets, ra, rb, np.maximum(len_a, len_b) > _SAMPLE, False)
    if left.any():
        _merge_blocks(buckets, start_a[left], len_a[left], start_b[left], len_b[left],
                      t, parent)


def _still_apart(
    parent: np.ndarray, buckets: _Buckets, ra: np.ndarray, rb: np.ndarray, check: np.ndarray,
    unchecked: bool = True,
) -> np.ndarray:
    """Whether runs ra[k] and rb[k] are in different groups, looked up only where check[k]."""
    out = np.full(ra.size, unchecked)
    k = np.flatnonzero(check)
    if k.size:
        out[k] = _find(parent, buckets.run_group[ra[k]]) != _find(parent, buckets.run_group[rb[k]])
    return out


def _merge_blocks(
    buckets: _Buckets, a_start: np.ndarray, a_len: np.ndarray, b_start: np.ndarray,
    b_len: np.ndarray, t: int, parent: np.ndarray, sample: int | None = None,
) -> None:
    """Verify all pairs of sorted positions between the blocks (or between `sample` positions
    evenly spread over each block: neighbours in sorted order are alike, so a spread sample
    sees more of the group); union those within t."""
    a_n = a_len if sample is None else np.minimum(a_len, sample)
    b_n = b_len if sample is None else np.minimum(b_len, sample)
    for blk, oa, ob in _block_pairs(a_n, b_n):
        if sample is not None:
            oa, ob = oa * a_len[blk] // a_n[blk], ob * b_len[blk] // b_n[blk]
        pa, pb = a_start[blk] + oa, b_start[blk] + ob
        close = popcount(buckets.sorted_values[pa] ^ buckets.sorted_values[pb]) <= t
        if close.any():
            _union(parent, buckets.order[pa[close]], buckets.order[pb[close]])


def _block_pairs(
    a_len: np.ndarray, b_len: np.ndarray, limit: int = _PAIR_BATCH
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every (block k, offset i < a_len[k], offset j < b_len[k]), in batches of about `limit`
    triples so memory stays bounded whatever the block sizes (big blocks are cut into slices of
    whole rows)."""
    single = (a_len == 1) & (b_len == 1)  # the common case, done without the bookkeeping
    if single.any():
        zero = np.zeros(int(single.sum()), dtype=np.int64)
        yield np.flatnonzero(single), zero, zero
    blocks = np.flatnonzero(~single & (a_len > 0) & (b_len > 0))
    if blocks.size == 0:
        return
    a_len, b_len = a_len[blocks], b_len[blocks]
    rows = np.maximum(1, limit // b_len)
    pieces = np.where(a_len * b_len > limit, -(-a_len // rows), 1)
    blk = np.repeat(np.arange(a_len.size), pieces)
    row0 = (np.arange(blk.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)) * rows[blk]
    nrows = np.minimum(rows[blk], a_len[blk] - row0)
    width = b_len[blk]
    size = nrows * width
    ends = np.cumsum(size)
    begin, s = 0, 0
    while s < size.size:
        e = max(s + 1, int(np.searchsorted(ends, begin + limit, side="right")))
        sz = size[s:e]
        total = int(sz.sum())
        if total:
            p = np.repeat(np.arange(s, e), sz)
            off = np.arange(total) - np.repeat(np.cumsum(sz) - sz, sz)
            row, col = np.divmod(off, width[p])
            yield blocks[blk[p]], row0[p] + row, col
        begin, s = int(ends[e - 1]), e


# ---------------------------------------------------------------------------------------------
# Union-find on arrays


def _union(parent: np.ndarray, i: np.ndarray, j: np.ndarray) -> None:
    """Merge the groups of i[k] and j[k] for all k. Roots are hooked under the smaller root,
    so a group's root is always its smallest index (this is what makes labels deterministic)."""
    while i.size:
        ri, rj = _find(parent, i), _find(parent, j)
        differ = ri != rj
        if not differ.any():
            return
        i, j, ri, rj = i[differ], j[differ], ri[differ], rj[differ]
        np.minimum.at(parent, np.maximum(ri, rj), np.minimum(ri, rj))


def _find(parent: np.ndarray, x: np.ndarray) -> np.ndarray:
    r = parent[x]
    while True:
        up = parent[r]
        if np.array_equal(up, r):
            return r
        r = up


def _compress(parent: np.ndarray) -> None:
    """Point every index straight at its root (pointer jumping)."""
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            return
        parent[:] = up


def popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)
