"""Sparse 4 GiB memory with an incrementally maintained Merkle root (docs/machine.md, "Memory").

Memory is a dict of 4 KiB pages (bytearray), created on first write. The tree has 32-byte leaves
(level 0) up to the root (level 27); a page is the subtree of level 7. The tree caches:

- per level 7..27, the hashes of the subtrees that contain written pages (`_nodes[level]`);
  a subtree missing from the dict is all zero and has the hash ZERO_HASHES[level];
- the set of pages written since the last root (`dirty`).

`merkle_root()` rehashes each dirty page (its 128 leaves, level by level, skipping all-zero pairs)
and then only the paths from those pages to the root. Writers that bypass `write` (the steppers)
must add the page index to `dirty` themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from vm.errors import VmError
from vm.hashing import LEAF_SIZE, TREE_DEPTH, ZERO_HASHES, keccak

PAGE_BITS = 12
PAGE_SIZE = 1 << PAGE_BITS
PAGE_MASK = PAGE_SIZE - 1
PAGE_LEVEL = PAGE_BITS - 5  # a page is a subtree of 2^7 leaves
PROOF_SIZE = (TREE_DEPTH + 1) * LEAF_SIZE  # 896: the leaf, then 27 siblings bottom-up
ADDRESS_SPACE = 1 << 32
_ZERO_PAGE = bytes(PAGE_SIZE)
_ZERO_PAGE_ROOT = ZERO_HASHES[PAGE_LEVEL]


def page_levels(page: bytes) -> list[list[bytes]]:
    """Every level of a page's subtree: [leaves (128), 64 nodes, ..., [page root]]."""
    nodes = [bytes(page[offset : offset + LEAF_SIZE]) for offset in range(0, PAGE_SIZE, LEAF_SIZE)]
    levels = [nodes]
    for level in range(PAGE_LEVEL):
        zero = ZERO_HASHES[level]
        parent_zero = ZERO_HASHES[level + 1]
        nodes = [
            parent_zero if left == zero and right == zero else keccak(left + right)
            for left, right in zip(nodes[::2], nodes[1::2], strict=True)
        ]
        levels.append(nodes)
    return levels


def page_root(page: bytes) -> bytes:
    """The Merkle root of one 4 KiB page (level 7)."""
    if page == _ZERO_PAGE:
        return _ZERO_PAGE_ROOT
    return page_levels(page)[-1][0]


class Memory:
    """Byte-addressed big-endian memory with Merkle proofs."""

    __slots__ = ("_nodes", "dirty", "native", "pages")

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}
        self.dirty: set[int] = set()
        # _nodes[level] for level in PAGE_LEVEL..TREE_DEPTH (lower indices unused).
        self._nodes: list[dict[int, bytes]] = [{} for _ in range(TREE_DEPTH + 1)]
        self.native: object | None = None  # the native executor's page table (vm/native.py)

    @classmethod
    def from_pages(cls, pages: dict[int, bytes], page_roots: dict[int, bytes]) -> Memory:
        """Memory holding copies of `pages`, whose roots the caller already knows (`page_roots`,
        e.g. cached by content): only the tree above the pages is hashed."""
        memory = cls()
        memory.pages = {index: bytearray(page) for index, page in pages.items()}
        level = memory._nodes[PAGE_LEVEL]
        for index, root in page_roots.items():
            if root != _ZERO_PAGE_ROOT:
                level[index] = root
        memory._rehash_above(set(pages))
        return memory

    # ------------------------------------------------------------------ reading and writing

    def page_for_write(self, page_index: int) -> bytearray:
        """The page (created zero if absent), marked dirty."""
        page = self.pages.get(page_index)
        if page is None:
            page = self.pages[page_index] = bytearray(PAGE_SIZE)
        self.dirty.add(page_index)
        return page

    def read_word(self, addr: int) -> int:
        """The big-endian 32-bit word at the 4-aligned address `addr`."""
        if addr & 3 or not 0 <= addr < ADDRESS_SPACE:
            raise VmError(f"read_word at {addr:#x}: not a 4-aligned 32-bit address")
        page = self.pages.get(addr >> PAGE_BITS)
        if page is None:
            return 0
        offset = addr & PAGE_MASK
        return int.from_bytes(page[offset : offset + 4], "big")

    def write_word(self, addr: int, value: int) -> None:
        """Store the 32-bit `value` big-endian at the 4-aligned address `addr`."""
        if addr & 3:
            raise VmError(f"write_word at {addr:#x}: not 4-aligned")
        self.write(addr, (value & 0xFFFFFFFF).to_bytes(4, "big"))

    def read(self, addr: int, size: int) -> bytes:
        """`size` bytes from `addr` (zero where nothing was written); must not wrap past 4 GiB."""
        self._check_range(addr, size)
        out = bytearray(size)
        for start, page_index, offset, length in _chunks(addr, size):
            page = self.pages.get(page_index)
            if page is not None:
                out[start : start + length] = page[offset : offset + length]
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        """Store `data` at `addr`; must not wrap past 4 GiB."""
        self._check_range(addr, len(data))
        view = memoryview(data)
        for start, page_index, offset, length in _chunks(addr, len(data)):
            chunk = view[start : start + length]
            if page_index not in self.pages and not any(chunk):
                continue  # zeros into an absent page change nothing
            self.page_for_write(page_index)[offset : offset + length] = chunk

    @staticmethod
    def _check_range(addr: int, size: int) -> None:
        if size < 0 or addr < 0 or addr + size > ADDRESS_SPACE:
            raise VmError(f"memory range {addr:#x} + {size:#x} is outside the 32-bit address space")

    def nonzero_pages(self) -> Iterator[tuple[int, bytes]]:
        """(page index, page bytes) of the pages holding a non-zero byte, in address order."""
        for index in sorted(self.pages):
            page = self.pages[index]
            if page != _ZERO_PAGE:
                yield index, page

    # ------------------------------------------------------------------ Merkle tree

    def merkle_root(self) -> bytes:
        """The root of the memory tree (level 27); rehashes only the pages written since last time."""
        if self.dirty:
            self._rehash(self.dirty)
            self.dirty = set()
        return self._nodes[TREE_DEPTH].get(0, ZERO_HASHES[TREE_DEPTH])

    def _rehash(self, dirty: Iterable[int]) -> None:
        nodes = self._nodes[PAGE_LEVEL]
        for index in dirty:
            root = page_root(self.pages[index])
            if root == _ZERO_PAGE_ROOT:
                nodes.pop(index, None)
            else:
                nodes[index] = root
        self._rehash_above(set(dirty))

    def _rehash_above(self, indices: set[int]) -> None:
        """Recompute the nodes above the pages `indices` from their (current) page roots."""
        for level in range(PAGE_LEVEL, TREE_DEPTH):
            children = self._nodes[level]
            parents = self._nodes[level + 1]
            zero = ZERO_HASHES[level]
            indices = {index >> 1 for index in indices}
            for index in indices:
                left = children.get(2 * index, zero)
                right = children.get(2 * index + 1, zero)
                if left == zero and right == zero:
                    parents.pop(index, None)
                else:
                    parents[index] = keccak(left + right)

    def proof(self, addr: int) -> bytes:
        """The 896-byte proof for the leaf holding `addr`: the leaf, then 27 siblings bottom-up."""
        if not 0 <= addr < ADDRESS_SPACE:
            raise VmError(f"proof at {addr:#x}: not a 32-bit address")
        self.merkle_root()
        page_index = addr >> PAGE_BITS
        page = self.pages.get(page_index)
        leaf = (addr & PAGE_MASK) >> 5
        if page is None or page == _ZERO_PAGE:
            parts = [ZERO_HASHES[0], *ZERO_HASHES[:PAGE_LEVEL]]  # the zero leaf, then its siblings
        else:
            levels = page_levels(page)
            parts = [levels[0][leaf]]
            parts += [levels[level][(leaf >> level) ^ 1] for level in range(PAGE_LEVEL)]
        for level in range(PAGE_LEVEL, TREE_DEPTH):
            sibling = (page_index >> (level - PAGE_LEVEL)) ^ 1
            parts.append(self._nodes[level].get(sibling, ZERO_HASHES[level]))
        return b"".join(parts)

    # ------------------------------------------------------------------ copies

    def copy(self) -> Memory:
        """An independent copy (pages and cached tree)."""
        clone = Memory()
        clone.pages = {index: bytearray(page) for index, page in self.pages.items()}
        clone.dirty = set(self.dirty)
        clone._nodes = [dict(level) for level in self._nodes]
        return clone


def _chunks(addr: int, size: int) -> Iterator[tuple[int, int, int, int]]:
    """Split [addr, addr + size) at page boundaries: (offset in the range, page, offset in page, length)."""
    start = 0
    while start < size:
        position = addr + start
        offset = position & PAGE_MASK
        length = min(PAGE_SIZE - offset, size - start)
        yield start, position >> PAGE_BITS, offset, length
        start += length


def verify_proof(root: bytes, addr: int, proof: bytes) -> bool:
    """Whether the 896-byte `proof` shows that the leaf holding `addr` is proof[:32] under `root`."""
    if len(proof) != PROOF_SIZE or not 0 <= addr < ADDRESS_SPACE:
        return False
    node = proof[:LEAF_SIZE]
    index = addr >> 5
    for level in range(TREE_DEPTH):
        sibling = proof[LEAF_SIZE * (level + 1) : LEAF_SIZE * (level + 2)]
        node = keccak(sibling + node) if (index >> level) & 1 else keccak(node + sibling)
    return node == root


def word_from_proof(addr: int, proof: bytes) -> int:
    """The 32-bit word at the 4-aligned `addr` inside the proof's leaf."""
    offset = addr & 28
    return int.from_bytes(proof[offset : offset + 4], "big")
