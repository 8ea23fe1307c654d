"""RFC 6962 / RFC 9162 Merkle tree: leaf and node hashing, a compact range, inclusion and consistency proofs.

Leaf ``i`` of a trail is the exact bytes of its ``i``-th entry line without the newline. Hashes:

* leaf: ``SHA-256(0x00 || bytes)``;
* node: ``SHA-256(0x01 || left || right)``;
* the empty tree: ``SHA-256()``.

:class:`CompactRange` keeps only the roots of the perfect subtrees that make up the tree so far (at most
``log2(n)`` hashes), so an append is O(1) amortised and the root is O(log n). Proofs need the leaf hashes of
the whole tree (:class:`LeafHashes`, 32 bytes per leaf) and are computed as RFC 9162 section 2.1.3 and 2.1.4
define them; the checks follow RFC 9162 section 2.1.3.2 and 2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "LeafHashes",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()
_NODE_PREFIX = _sha256(b"\x01")


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


class CompactRange:
    """The tree's perfect-subtree roots, left to right: enough to append and to compute the root.

    ``nodes[i]`` is the root of a perfect subtree whose size is the ``i``-th set bit of ``size`` from the top.
    """

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if bin(size).count("1") != len(nodes):
            raise ValueError(f"a compact range of size {size} has {bin(size).count('1')} nodes, not {len(nodes)}")
        self.size = size
        self.nodes = list(nodes)

    def copy(self) -> CompactRange:
        """An independent copy."""
        return CompactRange(self.size, self.nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (merging equal-sized subtrees: one node hash per trailing 1 bit of ``size``)."""
        size = self.size
        nodes = self.nodes
        h = leaf
        while size & 1:
            h = _sha256(b"\x01" + nodes.pop() + h).digest()
            size >>= 1
        nodes.append(h)
        self.size += 1

    def extend_leaves(self, leaves: Iterable[bytes]) -> None:
        """Add many leaf hashes (``append`` in one loop: the writer merges a checkpoint interval at once)."""
        node = _NODE_PREFIX.copy
        nodes = self.nodes
        pop = nodes.pop
        push = nodes.append
        size = self.size
        for h in leaves:
            s = size
            while s & 1:
                n = node()  # a copy of a context that absorbed 0x01: no algorithm fetch per node
                n.update(pop() + h)
                h = n.digest()
                s >>= 1
            push(h)
            size += 1
        self.size = size

    def extend_lines(self, lines: Iterable[bytes]) -> None:
        """Add one leaf per line (each line WITHOUT its newline)."""
        sha = _sha256
        nodes = self.nodes
        size = self.size
        for line in lines:
            h = sha(b"\x00" + line).digest()
            s = size
            while s & 1:
                h = sha(b"\x01" + nodes.pop() + h).digest()
                s >>= 1
            nodes.append(h)
            size += 1
        self.size = size

    def root(self) -> bytes:
        """The RFC 6962 root hash of the tree so far."""
        nodes = self.nodes
        if not nodes:
            return EMPTY_ROOT
        h = nodes[-1]
        for left in reversed(nodes[:-1]):
            h = _sha256(b"\x01" + left + h).digest()
        return h

    def to_hex(self) -> list[str]:
        """The nodes as hex (for retention records)."""
        return [n.hex() for n in self.nodes]

    @classmethod
    def from_hex(cls, size: int, nodes: Sequence[str]) -> CompactRange:
        """Inverse of :meth:`to_hex`; ValueError if malformed."""
        raw = [bytes.fromhex(n) for n in nodes]
        if any(len(n) != 32 for n in raw):
            raise ValueError("a compact range node is not 32 bytes")
        return cls(size, raw)


class LeafHashes:
    """Leaf hashes ``[first, first + len)`` in one bytearray (32 bytes each), for proofs and subtree hashes.

    ``first`` > 0 when the oldest leaves were removed by retention; then ``base`` (a compact range of size
    ``first``) stands in for them, so roots and consistency proofs from sizes >= ``first`` still work.
    """

    __slots__ = ("base", "data", "first")

    def __init__(self, base: CompactRange | None = None) -> None:
        self.base = base or CompactRange()
        self.first = self.base.size
        self.data = bytearray()

    def __len__(self) -> int:
        return self.first + len(self.data) // 32

    def add(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self.data += leaf

    def add_line(self, line: bytes) -> None:
        """Append the leaf of one line (without newline)."""
        self.data += _sha256(b"\x00" + line).digest()

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``; IndexError for a removed or missing leaf."""
        if index < self.first or index >= len(self):
            raise IndexError(f"leaf {index} is not available")
        off = (index - self.first) * 32
        return bytes(self.data[off : off + 32])

    def _base_nodes(self, lo: int, hi: int) -> list[bytes]:
        """The base's perfect subtrees that exactly tile ``[lo, hi)`` (hi <= first); IndexError if none do."""
        out: list[bytes] = []
        start = 0
        index = 0
        covered = lo
        for bit in range(self.first.bit_length() - 1, -1, -1):
            if not self.first >> bit & 1:
                continue
            end = start + (1 << bit)
            if start >= lo and end <= hi:
                if start != covered:
                    raise IndexError(f"leaves {lo}..{hi - 1} were removed (retention)")
                out.append(self.base.nodes[index])
                covered = end
            index += 1
            start = end
        if covered != hi:
            raise IndexError(f"leaves {lo}..{hi - 1} were removed (retention)")
        return out

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a range that is a node of the tree (or any range of available leaves)."""
        if hi - lo == 0:
            return EMPTY_ROOT
        first = self.first
        if lo < first:
            # Leaves before ``first`` are known only as the base's perfect subtrees: a range starting there
            # must begin with whole base nodes (always true for the nodes proofs ask for).
            nodes = self._base_nodes(lo, min(hi, first))
            rng = CompactRange(min(hi, first) - lo, nodes)
            start = first
        else:
            rng = CompactRange()
            start = lo
        data = self.data
        off = (start - first) * 32
        for i in range(hi - start):
            rng.append(bytes(data[off + 32 * i : off + 32 * i + 32]))
        return rng.root()

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of ``size`` leaves (default: all)."""
        return self.subtree(0, len(self) if size is None else size)


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(index: int, size: int, leaves: LeafHashes) -> list[bytes]:
    """RFC 9162 PATH(index, D[0:size]): sibling of the leaf first, up to the root's child."""
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"no inclusion proof for leaf {index} in a tree of size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    path: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo = lo + k
    for a, b in reversed(path):
        proof.append(leaves.subtree(a, b))
    return proof


def consistency_proof(old: int, new: int, leaves: LeafHashes) -> list[bytes]:
    """RFC 9162 PROOF(old, D[0:new]); empty when ``old`` is 0 or equals ``new``."""
    if not 0 <= old <= new <= len(leaves):
        raise ValueError(f"no consistency proof from size {old} to {new}")
    if old == 0 or old == new:
        return []
    out: list[bytes] = []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                out.append(leaves.subtree(lo, hi))
            return
        k = _split(n)
        if m <= k:
            subproof(m, lo, lo + k, complete)
            out.append(leaves.subtree(lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            out.append(leaves.subtree(lo, lo + k))

    subproof(old, 0, new, True)
    return out


def root_of(leaves: Iterable[bytes]) -> bytes:
    """The root over these leaf hashes."""
    rng = CompactRange()
    for leaf in leaves:
        rng.append(leaf)
    return rng.root()


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: True if ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: True if the tree ``new_root`` (size ``new``) extends ``old_root`` (size ``old``)."""
    if old > new or old < 0:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node of the path
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
