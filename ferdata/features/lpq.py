"""Local Phase Quantization (Ojansivu & Heikkilä 2008; ``lpq.m``, Heikkilä, Rahtu and
Ojansivu, 2010), vectorised over a batch of equally sized grey faces.

The algorithm, step for step as the 2010 ``lpq.m`` with ``freqestim = 1`` (STFT with a
uniform window):

* four complex STFT responses at (α,0), (0,α), (α,α), (α,−α) with α = 1/window, each a
  separable *valid* convolution (border pixels are dropped, not padded);
* eight real planes Re/Im F1..F4; with ``decorr`` they are rotated by Vᵀ, where V comes
  from the SVD of the responses' covariance under the ρ = 0.90 pixel-correlation model
  (with the original's tiny diagonal perturbation that breaks eigenvalue ties, and its
  sign normalisation of V's columns, so the rotation is reproducible);
* bit i = plane i > 0, code = Σ bit_i·2^i (Re F1 is the least significant bit), and the
  descriptor is the 256-bin histogram of the codes divided by the number of valid pixels.

Two modes:

* default (faithful): the separable sums run as vectorised numpy over the batch, and a
  response that is zero up to rounding (|f| ≤ 1e-12 × the window's grey-level sum, far
  below any true response of an 8-bit image) counts as the exact 0 it is mathematically.
  Flat windows therefore always give code 0, whatever their grey level, and codes do not
  depend on the floating-point summation order.
* ``matlab_compatible=True``: the responses come from ``scipy.signal.convolve2d`` one
  image at a time, the same true convolutions as MATLAB's ``conv2``, and the sign of the
  rounded result decides the bit, as in ``lpq.m``. This reproduces the original's codes
  even where they are set by rounding noise (flat windows of saturated pixels, symmetric
  3×3 neighbourhoods), at the cost of speed.

Both modes agree with the original at every bit that rounding does not decide.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

RHO = 0.90
#: Diagonal perturbation ``lpq.m`` applies before the SVD so near-equal singular values
#: have a fixed order.
_TIE_BREAK = np.array([1.000007, 1.000006, 1.000005, 1.000004, 1.000003, 1.000002, 1.000001, 1.0])
#: Responses smaller than this times the window's grey-level sum are rounding noise.
ZERO_TOLERANCE = 1e-12
#: Input pixels per vectorised block (keeps the working set near the CPU caches).
BLOCK_PIXELS = 16384


def _check(images: np.ndarray, window: int) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"expected an (N, H, W) batch of grey images, got shape {images.shape}")
    if window < 3 or window % 2 == 0:
        raise ValueError(f"LPQ window must be odd and at least 3, got {window}")
    if images.shape[1] < window or images.shape[2] < window:
        raise ValueError(f"image {images.shape[1]}x{images.shape[2]} is smaller than the LPQ window {window}")
    return images


def _filters(window: int) -> tuple[np.ndarray, np.ndarray]:
    """w0 and w1 of ``lpq.m``: offsets −r..r, w1(x) = exp(−2πi·x/window)."""
    r = (window - 1) // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    w0 = np.ones_like(x)
    w1 = np.exp(-2j * np.pi * x / window)
    return w0, w1


@lru_cache(maxsize=None)
def decorrelation_matrix(window: int) -> np.ndarray:
    """The 8×8 V of ``lpq.m`` (row i = input plane, column j = output plane)."""
    w0, w1 = _filters(window)
    w2 = np.conj(w1)
    r = (window - 1) // 2
    rows, cols = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
    pos = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float64)
    dist = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))
    cov = RHO ** dist
    q = [np.outer(w0, w1), np.outer(w1, w0), np.outer(w1, w1), np.outer(w1, w2)]
    m = np.stack([part for qk in q for part in (qk.real.ravel(), qk.imag.ravel())])
    d = m @ cov @ m.T
    a = np.diag(_TIE_BREAK)
    _, _, vt = np.linalg.svd(a @ d @ a)
    v = vt.T.copy()
    # Sign normalisation: the largest-magnitude entry of each column (first on ties) is positive.
    eps = np.finfo(np.float64).eps
    for j in range(8):
        i = int(np.argmax(np.abs(v[:, j])))
        if v[i, j] < -eps:
            v[:, j] = -v[:, j]
    v.setflags(write=False)
    return v


class _Workspace:
    """Preallocated planes for one block shape and window.

    Every step writes into these with ``out=``: allocating ~60 fresh arrays of a few
    hundred kB per block makes glibc hand memory back and forth to the kernel, and the
    page faults then cost more than the arithmetic (about 3× on a 224×224 face).
    """

    def __init__(self, shape: tuple[int, int, int], window: int) -> None:
        n, height, width = shape
        r = (window - 1) // 2
        rows, cols = height - window + 1, width - window + 1
        # First pass along rows (horizontal, into v*), then down columns (vertical, into h*):
        # the second pass on three planes then works on whole contiguous rows.
        vshape, hshape = (n, height, cols), (n, rows, cols)
        self.window, self.r = window, r
        t = np.arange(1, r + 1, dtype=np.float64)
        self.cos = np.cos(2 * np.pi * t / window)
        self.sin = np.sin(2 * np.pi * t / window)
        self.x = np.empty(shape)
        self.v_pairs, self.v_diffs = np.empty((r, *vshape)), np.empty((r, *vshape))
        self.v = np.empty((3, *vshape))  # box, cos, sin (vertical)
        self.v_tmp = np.empty(vshape)
        self.h_pairs, self.h_diffs = np.empty((r, *hshape)), np.empty((r, *hshape))
        # The nine horizontal sums: the window sum, and eight in the order of _MIX's columns.
        self.window_sum = np.empty(hshape)
        self.h = np.empty((8, *hshape))
        self.h_tmp = np.empty(hshape)
        self.planes = np.empty((8, *hshape))
        self.threshold = np.empty(hshape)
        self.bits = np.empty((8, *hshape), dtype=bool)
        self.shift = np.empty(hshape, dtype=np.uint8)


_WORKSPACES = threading.local()


def _workspace(shape: tuple[int, int, int], window: int) -> _Workspace:
    """This thread's workspace for a block shape (the last few shapes are kept)."""
    cache: dict = getattr(_WORKSPACES, "cache", None) or {}
    _WORKSPACES.cache = cache
    key = (shape, window)
    if key not in cache:
        while len(cache) >= 3:
            cache.pop(next(iter(cache)))
        cache[key] = _Workspace(shape, window)
    return cache[key]


def _window_sums(ws: _Workspace, x: np.ndarray, axis: int, pairs: np.ndarray, diffs: np.ndarray,
                 out: np.ndarray, tmp: np.ndarray) -> None:
    """'Valid' sums along ``axis`` of x weighted by 1, cos(2πt/window) and sin(2πt/window),
    t = −r..r (correlation, batched), into out[0], out[1], out[2].

    The weights are symmetric (1, cos) or antisymmetric (sin) in t, so each pair of taps
    ±t is added (or subtracted) once and shared by the three sums.
    """
    r = ws.r
    n = x.shape[axis] - ws.window + 1

    def shifted(start: int) -> np.ndarray:
        return x[:, start:start + n] if axis == 1 else x[:, :, start:start + n]

    centre = shifted(r)
    for t in range(1, r + 1):
        np.add(shifted(r - t), shifted(r + t), out=pairs[t - 1])
        np.subtract(shifted(r + t), shifted(r - t), out=diffs[t - 1])
    box, cos, sin = out
    np.add(centre, pairs[0], out=box)
    np.multiply(pairs[0], ws.cos[0], out=cos)
    cos += centre
    np.multiply(diffs[0], ws.sin[0], out=sin)
    for t in range(1, r):
        box += pairs[t]
        np.multiply(pairs[t], ws.cos[t], out=tmp)
        cos += tmp
        np.multiply(diffs[t], ws.sin[t], out=tmp)
        sin += tmp


#: The eight planes from the horizontal sums h = [box·cos, box·sin, cos·box, sin·box,
#: cos·cos, sin·sin, cos·sin, sin·cos] (vertical·horizontal weights): Re/Im of F1..F4 in
#: the correlation form F1 = Σ I(c+(s,t))·e^{+2πiαt}, F2 = Σ I·e^{+2πiαs},
#: F3 = Σ I·e^{+2πiα(s+t)}, F4 = Σ I·e^{+2πiα(s−t)} (conv2 flips the kernel, hence +).
_MIX = np.array([
    [1, 0, 0, 0, 0, 0, 0, 0],   # Re F1 = box·cos
    [0, 1, 0, 0, 0, 0, 0, 0],   # Im F1 = box·sin
    [0, 0, 1, 0, 0, 0, 0, 0],   # Re F2 = cos·box
    [0, 0, 0, 1, 0, 0, 0, 0],   # Im F2 = sin·box
    [0, 0, 0, 0, 1, -1, 0, 0],  # Re F3 = cos·cos − sin·sin
    [0, 0, 0, 0, 0, 0, 1, 1],   # Im F3 = cos·sin + sin·cos
    [0, 0, 0, 0, 1, 1, 0, 0],   # Re F4 = cos·cos + sin·sin
    [0, 0, 0, 0, 0, 0, -1, 1],  # Im F4 = sin·cos − cos·sin
], dtype=np.float64)


@lru_cache(maxsize=None)
def _plane_matrix(window: int, decorr: bool) -> np.ndarray:
    """Horizontal sums → (decorrelated) planes in one 8×8 product: Vᵀ·_MIX or _MIX."""
    return decorrelation_matrix(window).T @ _MIX if decorr else _MIX


#: Columns per 8×8 product: 8·8·1024 multiply-adds stay under OpenBLAS's threshold for
#: threading, so every call runs on one thread. Threads for so small a product only wait
#: on each other; on a busy machine they made LPQ ten times slower.
_MIX_COLUMNS = 1024


def _mix(matrix: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
    """out = matrix @ h for (8, M) arrays, in single-threaded column slices."""
    for start in range(0, h.shape[1], _MIX_COLUMNS):
        np.matmul(matrix, h[:, start:start + _MIX_COLUMNS], out=out[:, start:start + _MIX_COLUMNS])


def _horizontal_sums(images: np.ndarray, window: int) -> _Workspace:
    """The separable sums of a block into this thread's workspace (``h``, ``window_sum``)."""
    ws = _workspace(images.shape, window)
    ws.x[...] = images
    _window_sums(ws, ws.x, 2, ws.v_pairs, ws.v_diffs, ws.v, ws.v_tmp)
    h = ws.h
    # h[j] for horizontal weight k and vertical weight box / cos / sin (see _MIX).
    targets = ((ws.window_sum, h[2], h[3]), (h[0], h[4], h[7]), (h[1], h[6], h[5]))
    for k in range(3):  # horizontal box, cos, sin → vertical box, cos, sin
        _window_sums(ws, ws.v[k], 1, ws.h_pairs, ws.h_diffs, targets[k], ws.h_tmp)
    return ws


def _responses_conv2(images: np.ndarray, window: int) -> np.ndarray:
    """The eight raw planes via ``convolve2d`` per image, exactly as ``lpq.m`` builds them."""
    from scipy.signal import convolve2d

    w0, w1 = _filters(window)
    w2 = np.conj(w1)
    col0, col1 = w0[:, None], w1[:, None]
    row0, row1, row2 = w0[None, :], w1[None, :], w2[None, :]
    out = []
    for img in images.astype(np.float64):
        f1 = convolve2d(convolve2d(img, col0, mode="valid"), row1, mode="valid")
        v1 = convolve2d(img, col1, mode="valid")
        f2 = convolve2d(v1, row0, mode="valid")
        f3 = convolve2d(v1, row1, mode="valid")
        f4 = convolve2d(v1, row2, mode="valid")
        out.append(np.stack([f1.real, f1.imag, f2.real, f2.imag, f3.real, f3.imag, f4.real, f4.imag]))
    return np.stack(out, axis=1)


def lpq_responses(images: np.ndarray, window: int = 7, decorr: bool = True, *,
                  matlab_compatible: bool = False) -> np.ndarray:
    """The eight quantised-to-be planes (8, N, H−window+1, W−window+1), after decorrelation.

    In the default mode, responses that are zero up to rounding are set to exactly 0.
    """
    images = _check(images, window)
    if matlab_compatible:
        planes = _responses_conv2(images, window)
        if decorr:
            rotated = np.empty_like(planes)
            _mix(np.ascontiguousarray(decorrelation_matrix(window).T), planes.reshape(8, -1), rotated.reshape(8, -1))
            planes = rotated
        return planes
    ws = _horizontal_sums(images, window)
    planes = np.empty_like(ws.h)
    _mix(_plane_matrix(window, decorr), ws.h.reshape(8, -1), planes.reshape(8, -1))
    planes[np.abs(planes) <= ZERO_TOLERANCE * ws.window_sum] = 0.0
    return planes


def lpq_codes(images: np.ndarray, window: int = 7, decorr: bool = True, *,
              matlab_compatible: bool = False) -> np.ndarray:
    """LPQ code images, uint8 (N, H−window+1, W−window+1) (``lpq(…, 'im')``)."""
    images = _check(images, window)
    if matlab_compatible:
        planes = lpq_responses(images, window, decorr, matlab_compatible=True)
        return _pack(planes > 0)
    n, height, width = images.shape
    out = np.empty((n, height - window + 1, width - window + 1), dtype=np.uint8)
    # Work in blocks of about BLOCK_PIXELS so the ~30 intermediate planes stay in cache;
    # every output pixel depends only on its own window, so blocking changes no result.
    per_image = height * width
    if per_image <= BLOCK_PIXELS:
        step = max(1, BLOCK_PIXELS // per_image)
        for start in range(0, n, step):
            _codes_block(images[start:start + step], window, decorr, out[start:start + step])
    else:
        rows = max(1, BLOCK_PIXELS // width - window + 1)
        for i in range(n):
            for top in range(0, out.shape[1], rows):
                _codes_block(images[i:i + 1, top:top + rows + window - 1], window, decorr, out[i:i + 1, top:top + rows])
    return out


def _codes_block(images: np.ndarray, window: int, decorr: bool, out: np.ndarray) -> None:
    ws = _horizontal_sums(images, window)
    _mix(_plane_matrix(window, decorr), ws.h.reshape(8, -1), ws.planes.reshape(8, -1))
    # f > tolerance·(window sum) is "f > 0 after snapping rounding noise to 0".
    np.multiply(ws.window_sum, ZERO_TOLERANCE, out=ws.threshold)
    np.greater(ws.planes, ws.threshold, out=ws.bits)
    _pack(ws.bits, out, ws.shift)


def _pack(bits: np.ndarray, out: np.ndarray | None = None, tmp: np.ndarray | None = None) -> np.ndarray:
    """Eight boolean planes to one uint8 code image; plane i is bit i."""
    planes = bits.view(np.uint8)
    codes = planes[0].copy() if out is None else out
    if out is not None:
        codes[...] = planes[0]
    tmp = np.empty_like(codes) if tmp is None else tmp
    for i in range(1, 8):
        np.left_shift(planes[i], np.uint8(i), out=tmp)
        codes |= tmp
    return codes


def code_histograms(codes: np.ndarray) -> np.ndarray:
    """Normalised 256-bin histograms (N, 256) of a batch of code images."""
    n = codes.shape[0]
    per_image = codes.shape[1] * codes.shape[2]
    flat = codes.reshape(n, -1).astype(np.int64) + (np.arange(n, dtype=np.int64) * 256)[:, None]
    counts = np.bincount(flat.ravel(), minlength=256 * n).reshape(n, 256)
    return counts / float(per_image)


def lpq(images: np.ndarray, window: int = 7, decorr: bool = True, *, matlab_compatible: bool = False) -> np.ndarray:
    """LPQ descriptors (N, 256), float64, each summing to 1 (``lpq(…, 'nh')``)."""
    return code_histograms(lpq_codes(images, window, decorr, matlab_compatible=matlab_compatible))
