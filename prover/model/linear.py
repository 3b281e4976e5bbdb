"""The int8 LINEAR at native speed: prover/model/linear.c built for this host with the pinned
`zig cc` (vm/clib.py) and called through ctypes.

    sums = native_linear(x, w, w_zp)     # x @ (w - w_zp).T, or None when int32 could overflow
    y = native_requantize(acc, mult, shift, y_zp, (lo, hi), rounding)   # its int8 output

Integers only, each sum exact in int32 (the bound is checked first), so the result equals the
numpy engine's bit for bit on every CPU. The weights (a memory map's pages) are passed in place
and read once per call, whatever the number of activation rows.
"""

import ctypes
import os
from functools import cache
from pathlib import Path

import numpy as np

from prover.errors import ProverError
from vm.clib import load_library
from vm.errors import VmError

SOURCE = Path(__file__).resolve().parent / "linear.c"
INT32_LIMIT = (1 << 31) - 1
INT16_LIMIT = (1 << 15) - 1
THREADS = min(2, os.cpu_count() or 1)  # two threads over disjoint output rows: same values


@cache
def _library() -> ctypes.CDLL:
    try:
        library = load_library(SOURCE)
    except VmError as exc:
        raise ProverError(str(exc)) from None
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    library.int8_linear.restype = ctypes.c_int
    library.int8_requantize.restype = None
    library.int8_requantize.argtypes = [
        *(pointer, size, size, pointer, pointer, size),
        *(ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int, pointer),
    ]
    library.int8_linear.argtypes = [
        pointer,
        pointer,
        size,
        size,
        pointer,
        size,
        size,
        ctypes.c_int32,
        pointer,
        ctypes.c_int,
    ]
    return library


def native_linear(x: np.ndarray, w: np.ndarray, w_zp: int) -> np.ndarray | None:
    """x @ (w - w_zp).T as int64 (..., OUT) for integer x (..., IN) and int8 w (OUT, IN), computed in
    int32 by prover/model/linear.c; None when a sum could leave int32 (|x| |w - w_zp| IN >= 2^31)
    or x leaves int16, for the caller's exact int64 path."""
    if w.dtype != np.int8 or w.ndim != 2:
        raise ProverError(f"native LINEAR: int8 (OUT, IN) weights expected, got {w.dtype} {w.shape}")
    out, inputs = w.shape
    largest = int(np.abs(x).max(initial=0))
    if largest > INT16_LIMIT or largest * (128 + abs(w_zp)) * inputs > INT32_LIMIT:
        return None
    rows = np.ascontiguousarray(x.reshape(int(np.prod(x.shape[:-1])), inputs), np.int16)
    if w.strides[1] != 1 or w.strides[0] < 0:
        w = np.ascontiguousarray(w)  # int8 still: only an unusual view of the rows is copied
    sums = rows.sum(axis=1, dtype=np.int32)  # |sum| <= |x| IN: within the bound
    y = np.empty((len(rows), out), np.int32)
    if out and len(rows):
        status = _library().int8_linear(
            rows.ctypes.data,
            sums.ctypes.data,
            len(rows),
            inputs,
            w.ctypes.data,
            w.strides[0],
            out,
            w_zp,
            y.ctypes.data,
            THREADS,
        )
        if status != 0:
            raise ProverError("native LINEAR: its second thread failed")
    return y.astype(np.int64).reshape(*x.shape[:-1], out)


def native_requantize(
    acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, y_zp: int, bounds: tuple[int, int], rounding: int
) -> np.ndarray | None:
    """clamp(y_zp + MBQM(acc, mult[c], shift[c]), *bounds) as int8, c the last axis of int32-valued
    acc (..., C), computed by prover/model/linear.c; None (for the numpy path) when the vectors
    have neither C entries nor one or the bounds leave int8. The shifts must be checked first."""
    channels = acc.shape[-1]
    lo, hi = bounds
    if mult.size != shift.size or mult.size not in (1, channels) or not -128 <= lo <= hi <= 127:
        return None
    values = np.ascontiguousarray(acc, np.int32)
    m0 = np.ascontiguousarray(mult.reshape(-1), np.int32)
    shifts = np.ascontiguousarray(shift.reshape(-1), np.int32)
    y = np.empty(values.shape, np.int8)
    rows = values.size // channels if channels else 0
    _library().int8_requantize(
        values.ctypes.data,
        rows,
        channels,
        m0.ctypes.data,
        shifts.ctypes.data,
        int(mult.size == channels),
        y_zp,
        lo,
        hi,
        rounding,
        y.ctypes.data,
    )
    return y
