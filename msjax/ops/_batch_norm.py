"""BatchNorm's fast lowering: the same values as ``_nn.batch_norm_stats`` + ``_nn.batch_norm``, in fewer ops.

Used inside jitted steps when ``_lowering.is_fast("bn")`` (``MSJAX_LOWERING=fast,-bn`` turns it off;
export capture runs under the canonical lowering, so exported files keep today's primitives).

- ``train``: the batch statistics and the normalised output in ``lax`` primitives (one equation
  each), with a ``jax.custom_vjp`` whose backward is BatchNorm's closed-form gradient
  ``dx = scale / n * (n * g - sum(g) - xhat * sum(g * xhat))``, ``dgamma = sum(g * xhat)``,
  ``dbeta = sum(g)``: two reductions and one fused elementwise pass, where differentiating the
  forward formula traced about three times as many ops.
- ``apply``: the eval-mode ``x * scale + shift`` with per-channel ``scale`` and ``shift``.

The forward formula is the canonical one operation for operation (mean, then the biased
variance of ``x - mean``: two passes, which keeps its precision for inputs with large means), so
outputs and moving statistics match it bit for bit in float32. Low-precision inputs are computed in
float32, as ``jnp.mean`` accumulates them; the output dtype is the canonical one.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

__all__ = ["train", "apply"]


def _dtypes(x, gamma, beta):
    """(compute dtype, output dtype): the canonical formula's promotion, computed in >= float32."""
    out = jnp.result_type(x.dtype, gamma.dtype, beta.dtype)
    return jnp.promote_types(out, jnp.float32), out


def _channel(v, ndim, dtype):
    """A per-channel vector as an (N, C, ...)-broadcastable array of ``dtype``."""
    return lax.broadcast_in_dim(lax.convert_element_type(v, dtype), (1, v.shape[0]) + (1,) * (ndim - 2), (1,))


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _count(x):
    return x.size // x.shape[1]


def _stats(x, eps):
    """mean, biased variance, ``1 / sqrt(var + eps)`` and ``x - mean`` of float ``x`` over all axes but 1."""
    axes, n = _axes(x), float(_count(x))
    mean = lax.div(lax.reduce_sum_p.bind(x, axes=axes, out_sharding=None), n)
    centred = lax.sub(x, lax.broadcast_in_dim(mean, x.shape, (1,)))
    var = lax.div(lax.reduce_sum_p.bind(lax.square(centred), axes=axes, out_sharding=None), n)
    return mean, var, lax.rsqrt(lax.add(var, eps)), centred


def _forward(x, gamma, beta, eps):
    dtype, out_dtype = _dtypes(x, gamma, beta)
    xc = lax.convert_element_type(x, dtype)
    mean, var, inv, centred = _stats(xc, eps)
    scale = lax.mul(lax.convert_element_type(gamma, dtype), inv)
    shift = lax.sub(lax.convert_element_type(beta, dtype), lax.mul(mean, scale))
    y = lax.add(lax.mul(xc, _channel(scale, x.ndim, dtype)), _channel(shift, x.ndim, dtype))
    n = _count(x)
    unbiased = lax.mul(var, n / max(n - 1, 1))
    return (lax.convert_element_type(y, out_dtype), mean, unbiased), (centred, inv, scale)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def train(x, gamma, beta, eps):
    """``(y, mean, unbiased variance)``: ``x`` normalised with its batch mean and biased variance
    (per channel, axis 1; float32 statistics), as the canonical ``batch_norm(x, *batch_norm_stats(x)[:2], ...)``."""
    return _forward(x, gamma, beta, eps)[0]


def _train_fwd(x, gamma, beta, eps):
    x, gamma, beta = x.value, gamma.value, beta.value
    out, (centred, inv, scale) = _forward(x, gamma, beta, eps)
    dtypes = tuple(jnp.zeros((0,), v.dtype) for v in (x, gamma, beta))   # residuals must be arrays
    return out, (centred, inv, scale, dtypes)


def _train_bwd(eps, res, cts):
    centred, inv, scale, (x_dtype, gamma_dtype, beta_dtype) = res[:3] + (tuple(v.dtype for v in res[3]),)
    g_y, g_mean, g_var = cts
    shape, axes, n = centred.shape, _axes(centred), _count(centred)
    dtype = centred.dtype
    zero = isinstance(g_y, SymbolicZero)
    g = jnp.zeros(shape, dtype) if zero else lax.convert_element_type(g_y, dtype)
    sum_g = lax.reduce_sum_p.bind(g, axes=axes, out_sharding=None)
    sum_gc = lax.reduce_sum_p.bind(lax.mul(g, centred), axes=axes, out_sharding=None)   # sum(g * xhat) / inv
    d_gamma, d_beta = lax.mul(sum_gc, inv), sum_g
    # dx = scale * g - scale/n * sum(g) - centred * scale * inv^2 / n * sum(g * centred)
    k = lax.div(scale, float(n))
    a = lax.neg(lax.mul(k, sum_g))
    b = lax.neg(lax.mul(lax.mul(k, lax.mul(inv, inv)), sum_gc))
    if not isinstance(g_mean, SymbolicZero):   # mean = sum(x) / n
        a = lax.add(a, lax.div(lax.convert_element_type(g_mean, dtype), float(n)))
    if not isinstance(g_var, SymbolicZero):    # unbiased = sum(centred^2) / max(n - 1, 1)
        b = lax.add(b, lax.mul(lax.convert_element_type(g_var, dtype), 2.0 / max(n - 1, 1)))
    dx = lax.add(lax.add(lax.mul(g, _channel(scale, len(shape), dtype)), _channel(a, len(shape), dtype)),
                 lax.mul(centred, _channel(b, len(shape), dtype)))
    return (lax.convert_element_type(dx, x_dtype), lax.convert_element_type(d_gamma, gamma_dtype),
            lax.convert_element_type(d_beta, beta_dtype))


train.defvjp(_train_fwd, _train_bwd, symbolic_zeros=True)


def apply(x, mean, var, gamma, beta, eps):
    """Eval mode: ``x * scale + shift`` with ``scale = gamma / sqrt(var + eps)``, ``shift = beta - mean * scale``."""
    dtype = jnp.result_type(var.dtype, gamma.dtype, mean.dtype, beta.dtype)
    out_dtype = jnp.result_type(x.dtype, dtype)
    cast = functools.partial(lax.convert_element_type, new_dtype=dtype)
    scale = lax.mul(cast(gamma), lax.rsqrt(lax.add(cast(var), eps)))
    shift = lax.sub(cast(beta), lax.mul(cast(mean), scale))
    xc = lax.convert_element_type(x, out_dtype)
    return lax.add(lax.mul(xc, _channel(scale, x.ndim, out_dtype)), _channel(shift, x.ndim, out_dtype))
