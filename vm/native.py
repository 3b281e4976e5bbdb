"""The machine's executor: vm/native.c runs its steps at native speed over the Memory's own pages.

`NativeExecutor(machine).run(max_steps)` gives exactly the states of the reference stepper
(vm/instructions.py, which the contract mirrors; tests/test_vm_native.py compares them on random
programs and whole guest runs). The C loop is the reference's, instruction for instruction; what
it leaves to Python comes back here between calls:

- a syscall runs as one reference step (the heap and the output log live on this side);
- a store into an absent page: the page is made by Memory.page_for_write and added to the table;
- the pages the C loop stored into are added to `Memory.dirty`, so the Merkle root rehashes them.

The page table (2^20 pointers into the pages' bytearrays) is kept on the Memory (`Memory.native`)
and brought up to date at each run: pages are only ever added to a Memory, never replaced, so the
pointers stay valid. The library is built with the pinned zig on first use (vm/clib.py).
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from vm.clib import load_library
from vm.instructions import execute
from vm.memory import PAGE_BITS, PAGE_SIZE, Memory

if TYPE_CHECKING:  # Machine runs with this executor: a run-time import would be a cycle
    from vm.machine import Machine

SOURCE = Path(__file__).resolve().parent / "native.c"
PAGE_COUNT = 1 << (32 - PAGE_BITS)
RUN_DONE, RUN_SYSCALL, RUN_NEED_PAGE = 0, 1, 2
NO_LIMIT = 1 << 62  # steps: `step + budget` stays inside the C loop's 64 bits


class _State(ctypes.Structure):
    _fields_ = (
        ("regs", ctypes.c_uint32 * 32),
        ("pc", ctypes.c_uint32),
        ("next_pc", ctypes.c_uint32),
        ("lo", ctypes.c_uint32),
        ("hi", ctypes.c_uint32),
        ("heap", ctypes.c_uint32),
        ("exited", ctypes.c_uint32),
        ("exit_code", ctypes.c_uint32),
        ("step", ctypes.c_uint64),
    )


class _Memory(ctypes.Structure):
    _fields_ = (
        ("pages", ctypes.POINTER(ctypes.c_void_p)),
        ("dirty", ctypes.POINTER(ctypes.c_uint8)),
        ("dirty_list", ctypes.POINTER(ctypes.c_uint32)),
        ("dirty_count", ctypes.c_uint32),
        ("need_page", ctypes.c_uint32),
    )


@cache
def _library() -> ctypes.CDLL:
    library = load_library(SOURCE)
    library.vm_run.restype = ctypes.c_int
    library.vm_run.argtypes = [ctypes.POINTER(_State), ctypes.POINTER(_Memory), ctypes.c_uint64]
    return library


class PageTable:
    """The C loop's view of a Memory's pages: a pointer per page index (NULL: never written), and
    the list of pages it stored into since they were last handed to `Memory.dirty`."""

    def __init__(self) -> None:
        self.pointers = (ctypes.c_void_p * PAGE_COUNT)()
        self.dirty = (ctypes.c_uint8 * PAGE_COUNT)()
        self.dirty_list = (ctypes.c_uint32 * PAGE_COUNT)()
        self.memory = _Memory(self.pointers, self.dirty, self.dirty_list, 0, 0)
        self.views: dict[int, ctypes.Array] = {}  # keeps each page's buffer export alive

    def add(self, index: int, page: bytearray) -> None:
        view = (ctypes.c_char * PAGE_SIZE).from_buffer(page)
        self.views[index] = view
        self.pointers[index] = ctypes.addressof(view)

    def sync(self, pages: dict[int, bytearray]) -> None:
        """Add the pages made since the last run (by Memory.write, say)."""
        if len(self.views) != len(pages):
            for index, page in pages.items():
                if index not in self.views:
                    self.add(index, page)

    def hand_dirty(self, memory: Memory) -> None:
        for position in range(self.memory.dirty_count):
            index = self.dirty_list[position]
            memory.dirty.add(index)
            self.dirty[index] = 0
        self.memory.dirty_count = 0


def page_table(memory: Memory) -> PageTable:
    if memory.native is None:
        memory.native = PageTable()
    table: PageTable = memory.native
    table.sync(memory.pages)
    return table


class NativeExecutor:
    """Runs `machine` with vm/native.c (the same states as the reference stepper)."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine

    def run(self, max_steps: int | None = None) -> int:
        """Run until exit or `max_steps` steps; returns the steps run."""
        machine = self.machine
        state, memory = machine.state, machine.memory
        table = page_table(memory)
        budget = NO_LIMIT if max_steps is None else max_steps
        run = _library().vm_run
        native = _State()
        done = 0
        while done < budget and not state.exited:
            native.regs[:] = state.registers
            native.pc, native.next_pc, native.lo, native.hi = state.pc, state.next_pc, state.lo, state.hi
            native.heap, native.exited, native.exit_code, native.step = state.heap, 0, 0, state.step
            status = run(ctypes.byref(native), ctypes.byref(table.memory), budget - done)
            done += native.step - state.step
            state.registers[:] = native.regs
            state.pc, state.next_pc, state.lo, state.hi = native.pc, native.next_pc, native.lo, native.hi
            state.step = native.step
            if native.exited:
                state.exited, state.exit_code = 1, native.exit_code
            table.hand_dirty(memory)
            if status == RUN_NEED_PAGE:
                index = table.memory.need_page
                table.add(index, memory.page_for_write(index))
            elif status == RUN_SYSCALL:
                done += execute(state, memory, 1, machine._collect_output)
        return done


def native_runner(machine: Machine, max_steps: int | None = None) -> int:
    """A Trace runner (`runner(machine, max_steps)`): the native executor."""
    return NativeExecutor(machine).run(max_steps)
