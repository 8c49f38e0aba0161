"""Gaussian-process linear algebra for Bayesian quadrature (BPG) and MC-GPTD (BAC).

Everything is Cholesky-based (``jax.scipy.linalg.cho_solve`` / ``solve_triangular``); no
explicit inverse is ever formed.  All functions are pure, jittable and vmappable.

Notation (sheet ``shared/papers/bayesian_pg.md``): ``K`` the Gram matrix of ``N`` data points,
``sigma2`` the observation-noise variance, ``C = (K + sigma2 I)^-1``.

- Dense GP: :func:`gp_factor` gives the Cholesky factor of ``K + sigma2 I``;
  :func:`gp_weights` returns ``C Y`` and :func:`gp_quad` returns ``B^T C B`` (symmetric by
  construction, ``W^T W`` with ``W = L^-1 B``).
- Sparse GP: a dictionary from :func:`ald` (approximate linear dependence, Engel et al. 2002)
  with Gram ``Kt = Lt Lt^T`` and coefficients ``A`` such that ``K ~= A Kt A^T``.
  :func:`sparse_factor`, :func:`sparse_weights` (``A^T (A Kt A^T + sigma2 I)^-1 Y``) and
  :func:`sparse_quad` (``Bt^T A^T (A Kt A^T + sigma2 I)^-1 A Bt``) work in the ``m``-dimensional
  dictionary space only (push-through identity), so the cost is ``O(N m^2 + m^3)``.

ALD is grown online with a *Cholesky factor* of the dictionary Gram (new row ``l = Lt^-1 k(z)``,
new diagonal ``sqrt(delta)``), which is the factored form of the sheet's block update of
``Kt^-1``.  The dictionary has a static capacity ``m_max`` (padded: unused slots have identity
diagonal and zero kernel values), so the whole thing is one ``lax.scan``.

Numerical guards (float32): every factorised matrix is symmetrised and gets a relative jitter
``JITTER * (1 + mean diag)``; ALD adds a point iff ``delta > nu + ALD_FLOOR * k(z, z)`` so that
points that are linearly dependent up to round-off are not added at ``nu = 0``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct
from jax.custom_batching import custom_vmap
from jax.scipy.linalg import cho_solve, solve_triangular

JITTER = 1e-6
ALD_FLOOR = 1e-4


def sym(a: jax.Array) -> jax.Array:
    """``(a + a^T) / 2`` on the last two axes."""
    return 0.5 * (a + jnp.swapaxes(a, -1, -2))


@custom_vmap
def _cholesky(a: jax.Array) -> jax.Array:
    """``jnp.linalg.cholesky`` of one matrix; under ``vmap`` the batch is factorised one matrix
    at a time (``lax.map``).  jaxlib's batched CPU Cholesky (LAPACK ``potrf`` split over its
    thread pool) was seen to deadlock on a loaded 2-core machine with batches of a few hundred
    matrices; the matrices here are small, so the sequential map costs little."""
    return jnp.linalg.cholesky(a)


@_cholesky.def_vmap
def _cholesky_vmap(axis_size, in_batched, a):
    (batched,) = in_batched
    if not batched:
        return _cholesky(a), False
    return jax.lax.map(_cholesky, a), True


def safe_cholesky(a: jax.Array, jitter: float = JITTER) -> jax.Array:
    """Lower Cholesky factor of the symmetrised ``a`` (``[n, n]``) plus ``j * (1 + mean|diag|) I``.

    ``j`` is the first of ``jitter * (1, 1e2, 1e4)`` that gives a finite factor (no
    data-dependent loop): float32 round-off makes rank-deficient PSD matrices (a Fisher estimate
    with fewer samples than parameters, the redundant softmax parameterisation) slightly
    indefinite.
    """
    a = sym(a)
    n = a.shape[-1]
    scale = 1.0 + jnp.mean(jnp.abs(jnp.diagonal(a)))
    eye = jnp.eye(n, dtype=a.dtype)
    Ls = [_cholesky(a + (jitter * f * scale) * eye) for f in (1.0, 1e2, 1e4)]
    ok = [jnp.all(jnp.isfinite(L)) for L in Ls]
    return jnp.where(ok[0], Ls[0], jnp.where(ok[1], Ls[1], Ls[2]))


def solve_psd(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a^-1 b`` for a symmetric PSD ``a`` (Cholesky with jitter)."""
    return cho_solve((safe_cholesky(a), True), b)


# ----------------------------------------------------------------------------- dense GP


def gp_factor(K: jax.Array, sigma2) -> jax.Array:
    """Cholesky factor ``L`` of ``K + sigma2 I``; ``K: [N, N]``."""
    return safe_cholesky(K + sigma2 * jnp.eye(K.shape[0], dtype=K.dtype))


def gp_weights(L: jax.Array, Y: jax.Array) -> jax.Array:
    """``C Y`` with ``C = (K + sigma2 I)^-1`` given ``L = gp_factor(K, sigma2)``; ``Y: [N]`` or ``[N, d]``."""
    return cho_solve((L, True), Y)


def gp_quad(L: jax.Array, B: jax.Array) -> jax.Array:
    """``B^T C B`` (``B: [N]`` -> scalar, ``[N, p]`` -> ``[p, p]``), computed as ``W^T W``, ``W = L^-1 B``."""
    W = solve_triangular(L, B, lower=True)
    return jnp.dot(W, W) if B.ndim == 1 else W.T @ W


# ----------------------------------------------------------------------------- ALD dictionary


@struct.dataclass
class Dictionary:
    """An ALD dictionary with static capacity ``m`` (padded).

    ``points``: pytree with leading axis ``[m]`` (zeros in unused slots); ``chol``: ``[m, m]``
    lower Cholesky factor of the dictionary Gram (identity block on unused slots); ``index``:
    ``[m]`` data index of each member (-1 if unused); ``size``: number of members.
    """

    points: Any
    chol: jax.Array
    index: jax.Array
    size: jax.Array

    @property
    def used(self) -> jax.Array:
        return self.index >= 0


def ald(
    kernel: Callable[[Any, Any], jax.Array],
    points: Any,
    mask: jax.Array,
    nu,
    capacity: int,
) -> tuple[Dictionary, jax.Array]:
    """Online approximate-linear-dependence sparsification (one pass, data order).

    Args:
        kernel: ``kernel(p, q) -> scalar`` on single points.
        points: pytree with leading axis ``[N]``.
        mask: ``[N]``; points with mask 0 are skipped (their row of ``A`` is 0).
        nu: ALD threshold (``>= 0``); a point joins iff ``delta > nu + ALD_FLOOR k(z, z)``
            and the dictionary is not full.
        capacity: static dictionary capacity ``m``.

    Returns:
        ``(dictionary, A)`` with ``A: [N, m]``; ``A[i]`` is the unit vector of ``i``'s slot for
        members and ``Kt^-1 k(z_i)`` (w.r.t. the dictionary at ``i``'s arrival) otherwise, so that
        ``K ~= A Kt A^T`` and exactly so at ``nu = 0``.
    """
    m = int(capacity)
    template = jax.tree.map(lambda x: jnp.zeros((m,) + x.shape[1:], x.dtype), points)
    d0 = Dictionary(template, jnp.eye(m), -jnp.ones((m,), jnp.int32), jnp.zeros((), jnp.int32))
    n = mask.shape[0]

    def step(d: Dictionary, inp):
        i, p, valid = inp
        kz = jax.vmap(kernel, in_axes=(None, 0))(p, d.points) * d.used
        kzz = kernel(p, p)
        lz = solve_triangular(d.chol, kz, lower=True)
        delta = kzz - jnp.dot(lz, lz)
        a = solve_triangular(d.chol.T, lz, lower=False)
        add = (valid > 0) & (delta > nu + ALD_FLOOR * jnp.abs(kzz)) & (d.size < m)
        slot = jnp.minimum(d.size, m - 1)
        onehot = jax.nn.one_hot(slot, m, dtype=lz.dtype)
        row = lz * (1.0 - onehot) + onehot * jnp.sqrt(jnp.maximum(delta, 1e-30))
        new = Dictionary(
            points=jax.tree.map(lambda P, x: P.at[slot].set(x), d.points, p),
            chol=d.chol.at[slot].set(row),
            index=d.index.at[slot].set(i),
            size=d.size + 1,
        )
        d = jax.tree.map(lambda x, y: jnp.where(add, x, y), new, d)
        a_row = jnp.where(add, onehot, a * (valid > 0))
        return d, a_row

    d, A = jax.lax.scan(step, d0, (jnp.arange(n, dtype=jnp.int32), points, mask))
    return d, A


# ----------------------------------------------------------------------------- sparse GP


@struct.dataclass
class SparseFactor:
    """Factors of the sparse GP: ``Lt`` (dictionary Gram), ``A``, ``Lp = chol(Lt^T A^T A Lt + sigma2 I)``."""

    Lt: jax.Array
    A: jax.Array
    Lp: jax.Array
    sigma2: jax.Array


def sparse_factor(Lt: jax.Array, A: jax.Array, sigma2) -> SparseFactor:
    """Factor the sparse GP ``K ~= A Lt Lt^T A^T`` with noise ``sigma2``."""
    Q = A @ Lt  # [N, m]
    P = Q.T @ Q + sigma2 * jnp.eye(Lt.shape[0], dtype=Lt.dtype)
    return SparseFactor(Lt, A, safe_cholesky(P), jnp.asarray(sigma2, Lt.dtype))


def sparse_weights(F: SparseFactor, Y: jax.Array) -> jax.Array:
    """``alpha~ = A^T (A Kt A^T + sigma2 I)^-1 Y = Lt^-T P^-1 Lt^T A^T Y``; ``[m]`` or ``[m, d]``."""
    z = F.Lt.T @ (F.A.T @ Y)
    z = cho_solve((F.Lp, True), z)
    return solve_triangular(F.Lt.T, z, lower=False)


def sparse_quad(F: SparseFactor, Bt: jax.Array) -> jax.Array:
    """``Bt^T C~ Bt`` with ``C~ = A^T (A Kt A^T + sigma2 I)^-1 A = Kt^-1 - sigma2 Lt^-T P^-1 Lt^-1``.

    ``Bt: [m]`` or ``[m, p]`` (the quadrature vectors of the dictionary members).
    """
    V = solve_triangular(F.Lt, Bt, lower=True)
    W = solve_triangular(F.Lp, V, lower=True)
    if Bt.ndim == 1:
        return jnp.dot(V, V) - F.sigma2 * jnp.dot(W, W)
    return sym(V.T @ V - F.sigma2 * (W.T @ W))


# ----------------------------------------------------------------------------- GPTD


def gptd_matrix(done: jax.Array, gamma) -> jax.Array:
    """The MC-GPTD matrix ``H`` for a concatenation of episodes (dense, for tests).

    ``done: [T]`` marks the last step of each episode (all episodes terminated, so each block
    is square upper bidiagonal with rows ``(..., 1, -gamma, ...)`` and no ``-gamma`` past an
    episode's end).  Returns ``H: [T, T]``.
    """
    T = done.shape[0]
    off = -gamma * (1.0 - done[:-1].astype(jnp.float32))
    return jnp.eye(T) + jnp.diag(off, k=1)


def gptd_posterior(K: jax.Array, r: jax.Array, H: jax.Array, sigma2) -> tuple[jax.Array, jax.Array]:
    """General MC-GPTD posterior ``alpha = H^T S^-1 r``, ``C = H^T S^-1 H``, ``S = H K H^T + sigma2 H H^T``.

    ``K: [N, N]``, ``r: [T]``, ``H: [T, N]``.  Dense reference form (tests, small N).
    """
    S = H @ K @ H.T + sigma2 * (H @ H.T)
    L = safe_cholesky(S)
    alpha = H.T @ cho_solve((L, True), r)
    W = solve_triangular(L, H, lower=True)
    return alpha, W.T @ W
