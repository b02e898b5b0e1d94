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

from functools import lru_cache

import numpy as np

RHO = 0.90
#: Diagonal perturbation ``lpq.m`` applies before the SVD so near-equal singular values
#: have a fixed order.
_TIE_BREAK = np.array([1.000007, 1.000006, 1.000005, 1.000004, 1.000003, 1.000002, 1.000001, 1.0])
#: Responses smaller than this times the window's grey-level sum are rounding noise.
ZERO_TOLERANCE = 1e-12
WINDOWS = (3, 5, 7)
#: Input pixels per vectorised block (keeps the working set near the CPU caches).
BLOCK_PIXELS = 32768


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


def _shifted(x: np.ndarray, axis: int, start: int, n: int) -> np.ndarray:
    return x[:, start:start + n] if axis == 1 else x[:, :, start:start + n]


def _window_sums(x: np.ndarray, axis: int, window: int, want: tuple[str, ...]) -> dict[str, np.ndarray]:
    """'Valid' sums along ``axis`` of x weighted by 1, cos(2πt/window) and sin(2πt/window),
    t = −r..r (correlation, batched).

    The weights are symmetric (1, cos) or antisymmetric (sin) in t, so each pair of taps
    ±t is added (or subtracted) once and shared by all three sums.
    """
    r = (window - 1) // 2
    n = x.shape[axis] - window + 1
    centre = _shifted(x, axis, r, n)
    pairs, diffs = [], []
    for t in range(1, r + 1):
        minus, plus = _shifted(x, axis, r - t, n), _shifted(x, axis, r + t, n)
        pairs.append(minus + plus)
        if "sin" in want:
            diffs.append(plus - minus)
    out: dict[str, np.ndarray] = {}
    if "box" in want:
        acc = centre.copy()
        for p in pairs:
            acc += p
        out["box"] = acc
    if "cos" in want:
        acc = centre.copy()
        for t, p in enumerate(pairs, start=1):
            acc += np.cos(2 * np.pi * t / window) * p
        out["cos"] = acc
    if "sin" in want:
        acc = np.sin(2 * np.pi / window) * diffs[0]
        for t, d in enumerate(diffs[1:], start=2):
            acc += np.sin(2 * np.pi * t / window) * d
        out["sin"] = acc
    return out


def _responses_vectorised(images: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The eight raw planes (8, N, h, w) and each window's grey-level sum (N, h, w)."""
    x = images.astype(np.float64)
    # Correlation form: F1 = Σ I(c+(s,t))·e^{+2πiαt}, and so on (conv2 flips the kernel).
    vert = _window_sums(x, 1, window, ("box", "cos", "sin"))
    h0 = _window_sums(vert["box"], 2, window, ("box", "cos", "sin"))
    hc = _window_sums(vert["cos"], 2, window, ("box", "cos", "sin"))
    hs = _window_sums(vert["sin"], 2, window, ("box", "cos", "sin"))
    planes = np.empty((8,) + h0["box"].shape)
    planes[0], planes[1] = h0["cos"], h0["sin"]         # F1: horizontal e^{+iαt}
    planes[2], planes[3] = hc["box"], hs["box"]         # F2: vertical e^{+iαs}
    np.subtract(hc["cos"], hs["sin"], out=planes[4])    # F3: e^{+iα(s+t)}
    np.add(hc["sin"], hs["cos"], out=planes[5])
    np.add(hc["cos"], hs["sin"], out=planes[6])         # F4: e^{+iα(s−t)}
    np.subtract(hs["cos"], hc["sin"], out=planes[7])
    return planes, h0["box"]


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
    else:
        planes, window_sum = _responses_vectorised(images, window)
    if decorr:
        v = decorrelation_matrix(window)
        planes = (v.T @ planes.reshape(8, -1)).reshape(planes.shape)
    if not matlab_compatible:
        planes[np.abs(planes) <= ZERO_TOLERANCE * window_sum] = 0.0
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
            out[start:start + step] = _codes_block(images[start:start + step], window, decorr)
    else:
        rows = max(1, BLOCK_PIXELS // width - window + 1)
        for i in range(n):
            for top in range(0, out.shape[1], rows):
                out[i, top:top + rows] = _codes_block(images[i:i + 1, top:top + rows + window - 1], window, decorr)[0]
    return out


def _codes_block(images: np.ndarray, window: int, decorr: bool) -> np.ndarray:
    planes, window_sum = _responses_vectorised(images, window)
    if decorr:
        v = decorrelation_matrix(window)
        planes = (v.T @ planes.reshape(8, -1)).reshape(planes.shape)
    # f > tolerance·(window sum) is "f > 0 after snapping rounding noise to 0".
    return _pack(planes > ZERO_TOLERANCE * window_sum)


def _pack(bits: np.ndarray) -> np.ndarray:
    """Eight boolean planes to one uint8 code image; plane i is bit i."""
    planes = bits.view(np.uint8)
    codes = planes[0].copy()
    for i in range(1, 8):
        codes |= planes[i] << np.uint8(i)
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
