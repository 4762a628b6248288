"""Matrix-vector products of exact search, on the calling thread alone.

numpy hands ``matrix @ vector`` to OpenBLAS, which splits a large product over every
core. One search alone gains little from that, and concurrent searches lose a great
deal: each product waits for OpenBLAS's threads, busy with another's, and those threads
spin while they wait. Measured on two cores at 10k x 384, eight threads searching at once
made 13-16 products/s in all, against 70 for one thread. BLAS thread limits are
per process (threadpoolctl), so limiting them around each product means switching the
whole process's setting back and forth, which wakes the spinning threads again and was
no faster. Large products therefore use numpy's own einsum loops, which never leave the
calling thread: 400 products/s for one thread, 340 in all for eight threads.
"""

from __future__ import annotations

import numpy as np

#: From this many elements OpenBLAS splits a product over threads (it starts at about
#: 9k); smaller products keep BLAS, which is then as fast and single-threaded anyway.
OWN_LOOP_FROM_ELEMENTS = 1 << 16


def matrix_times_vector(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` computed on the calling thread only."""
    if matrix.size < OWN_LOOP_FROM_ELEMENTS:
        return matrix @ vector
    return np.einsum("ij,j->i", matrix, vector)
