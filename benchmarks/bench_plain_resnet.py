"""Plain JAX + optax ResNet-50 v1.5 train steps (no msjax), one per variant; bench_plain_jax.py times them.

The network is the model zoo's ResNet-50 as ``msjax.models.resnet50(10)`` builds it: a 7x7/s2 stem, a
3x3/s2 max pool, bottlenecks [3, 4, 6, 3] whose 3x3 convolution carries the stride, 1x1 down-sample
branches, every convolution without bias and with MindSpore's pad_mode="same" (TensorFlow's SAME),
BatchNorm in training mode (batch statistics; biased variance normalises, unbiased variance updates
the moving averages with momentum 0.9, eps 1e-4), ReLU, a global mean, Dense(2048, 10), sparse
softmax cross entropy (mean) and ``optax.sgd(0.01, momentum=0.9)`` (MindSpore's Momentum rule).
Everything is float32, NHWC/HWIO, one ``jax.jit`` with donated parameters, statistics and optimizer
state. A variant picks how each piece is written (``VARIANTS``):

- ``conv``: convolutions wider than 1x1 as XLA's ``conv_general_dilated`` ("xla"), as im2col + one
  matmul ("im2col"), or as one matmul per kernel tap summed ("taps"); "im2col" and "taps" apply up
  to ``small`` output cells and drop the taps that read only padding (all but the centre one when
  the map is 1x1); above ``small`` the convolution is XLA's;
- ``stem``: the 7x7/s2 stem as "xla" or "im2col" (147-wide patches);
- ``bn``: BatchNorm by autodiff of the two-pass formula ("autodiff") or a ``jax.custom_vjp`` with
  one-pass statistics and a closed-form backward, ReLU folded in ("vjp");
- ``pool``: the max pool as ``reduce_window`` ("rw") or as a max over the 9 strided taps of the
  -inf-padded map with a custom VJP that routes each gradient to the first maximal tap ("taps");
- ``remat``: a ``jax.checkpoint`` policy name from ``jax.checkpoint_policies`` around each block, or None.
"""
from __future__ import annotations

import functools

LAYERS = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
BASE = {"conv": "xla", "small": 0, "stem": "xla", "bn": "autodiff", "pool": "rw", "remat": None}
VARIANTS = {
    "xla": {},  # every convolution through XLA's NHWC convolution: the earlier reference
    "im2col16": {"conv": "im2col", "small": 16},  # msjax's fast lowering's rule, plus dead-tap dropping
    "im2col64": {"conv": "im2col", "small": 64},
    "im2col256": {"conv": "im2col", "small": 256},
    "taps16": {"conv": "taps", "small": 16},
    "taps64": {"conv": "taps", "small": 64},
    "im2col16_vjp": {"conv": "im2col", "small": 16, "bn": "vjp"},
    "im2col64_vjp": {"conv": "im2col", "small": 64, "bn": "vjp"},
    "im2col64_vjp_stem": {"conv": "im2col", "small": 64, "bn": "vjp", "stem": "im2col"},
    "im2col64_vjp_pool": {"conv": "im2col", "small": 64, "bn": "vjp", "pool": "taps"},
    "im2col64_vjp_remat": {"conv": "im2col", "small": 64, "bn": "vjp", "remat": "dots_saveable"},
}


def _same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, (total // 2, total - total // 2)


def _live_taps(size, k, s, out, pad_lo):
    """Kernel offsets along one axis whose strided slice reads at least one real (non-padding) cell."""
    return [i for i in range(k) if any(0 <= i - pad_lo + s * o < size for o in range(out))]


def _tap_slices(x, k, s, dead_ok=True):
    """SAME-padded NHWC ``x``: [(i, j, strided slice)] for the kernel taps that read real cells."""
    n, h, w, c = x.shape
    (oh, ph), (ow, pw) = _same_pads(h, k, s), _same_pads(w, k, s)
    rows, cols = (_live_taps(h, k, s, oh, ph[0]), _live_taps(w, k, s, ow, pw[0])) if dead_ok else (range(k),) * 2
    from jax import lax
    import jax.numpy as jnp
    xp = jnp.pad(x, ((0, 0), ph, pw, (0, 0)))
    out = []
    for i in rows:
        for j in cols:
            out.append((i, j, lax.slice(xp, (0, i, j, 0), (n, i + (oh - 1) * s + 1, j + (ow - 1) * s + 1, c),
                                        (1, s, s, 1))))
    return out


def make_conv(opts):
    import jax.numpy as jnp
    from jax import lax

    def xla(x, w, s):
        return lax.conv_general_dilated(x, w, (s, s), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def im2col(x, w, s):
        taps = _tap_slices(x, w.shape[0], s)
        patches = jnp.concatenate([t for _, _, t in taps], axis=-1) if len(taps) > 1 else taps[0][2]
        if len(taps) == w.shape[0] * w.shape[1]:  # every tap live: HWIO is already (kh*kw*C, O), no weight copy
            wk = w.reshape(-1, w.shape[-1])
        else:
            wk = jnp.concatenate([w[i, j] for i, j, _ in taps], axis=0) if len(taps) > 1 else w[taps[0][0], taps[0][1]]
        return patches @ wk

    def taps(x, w, s):
        return functools.reduce(jnp.add, [t @ w[i, j] for i, j, t in _tap_slices(x, w.shape[0], s)])

    small = {"im2col": im2col, "taps": taps, "xla": xla}[opts["conv"]]

    def conv(x, w, s, stem=False):
        if w.shape[0] == 1:
            return x[:, ::s, ::s] @ w[0, 0]
        if stem:
            return im2col(x, w, s) if opts["stem"] == "im2col" else xla(x, w, s)
        out_cells = -(-x.shape[1] // s) * -(-x.shape[2] // s)
        return small(x, w, s) if out_cells <= opts["small"] else xla(x, w, s)
    return conv


def _unbiased(x, var):
    count = x.size // x.shape[-1]
    return var * (count / max(count - 1, 1))


def make_bn(opts):
    """Training-mode BatchNorm (+ReLU): f(x, gamma, beta, relu) -> (y, batch mean, unbiased batch variance)."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    eps = 1e-4

    def plain(x, gamma, beta, relu):
        mean = jnp.mean(x, axis=(0, 1, 2))
        var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
        scale = gamma * lax.rsqrt(var + eps)
        y = x * scale + (beta - mean * scale)
        return (jax.nn.relu(y) if relu else y), lax.stop_gradient(mean), lax.stop_gradient(_unbiased(x, var))

    @functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
    def fused(x, gamma, beta, relu):
        return _fwd(x, gamma, beta, relu)[0]

    def _fwd(x, gamma, beta, relu):
        count = x.size // x.shape[-1]
        mean = jnp.sum(x, axis=(0, 1, 2)) / count
        var = jnp.maximum(jnp.sum(jnp.square(x), axis=(0, 1, 2)) / count - jnp.square(mean), 0.0)
        inv = lax.rsqrt(var + eps)
        scale = gamma * inv
        y = x * scale + (beta - mean * scale)
        y = jax.nn.relu(y) if relu else y
        return (y, mean, var), (x, y, mean, inv, gamma)

    def _bwd(relu, res, cts):
        x, y, mean, inv, gamma = res
        g = cts[0]
        if relu:
            g = jnp.where(y > 0, g, 0.0)
        count = x.size // x.shape[-1]
        xhat = (x - mean) * inv
        dbeta = jnp.sum(g, axis=(0, 1, 2))
        dgamma = jnp.sum(g * xhat, axis=(0, 1, 2))
        dx = (gamma * inv) * (g - (dbeta + xhat * dgamma) / count)
        return dx, dgamma, dbeta

    fused.defvjp(lambda x, gamma, beta, relu: _fwd(x, gamma, beta, relu), _bwd)

    def vjp(x, gamma, beta, relu):
        y, mean, var = fused(x, gamma, beta, relu)
        return y, lax.stop_gradient(mean), lax.stop_gradient(_unbiased(x, var))
    return vjp if opts["bn"] == "vjp" else plain


def make_pool(opts):
    """The 3x3/s2 SAME max pool (padding never wins)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def rw(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")

    def slices(xp, oh, ow):
        n, _, _, c = xp.shape
        return [lax.slice(xp, (0, i, j, 0), (n, i + 2 * (oh - 1) + 1, j + 2 * (ow - 1) + 1, c), (1, 2, 2, 1))
                for i in range(3) for j in range(3)]

    @jax.custom_vjp
    def taps(x):
        return taps_fwd(x)[0]

    def taps_fwd(x):
        (oh, ph), (ow, pw) = _same_pads(x.shape[1], 3, 2), _same_pads(x.shape[2], 3, 2)
        xp = jnp.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=-jnp.inf)
        out = functools.reduce(jnp.maximum, slices(xp, oh, ow))
        return out, (xp, out, ph, pw)

    def taps_bwd(res, g):
        xp, out, ph, pw = res
        oh, ow = out.shape[1:3]
        tap_vals, back = jax.vjp(lambda v: slices(v, oh, ow), xp)
        taken, cts = jnp.zeros(out.shape, bool), []
        for t in tap_vals:
            hit = (t == out) & ~taken
            cts.append(jnp.where(hit, g, 0.0))
            taken = taken | hit
        (gp,) = back(cts)
        return (gp[:, ph[0]:gp.shape[1] - ph[1], pw[0]:gp.shape[2] - pw[1]],)

    taps.defvjp(taps_fwd, taps_bwd)
    return taps if opts["pool"] == "taps" else rw


def init(rng):
    """Parameters (HWIO kernels, He-normal fan_out as the zoo's) and moving statistics, as numpy trees."""
    import numpy as np

    def conv_param(k, cin, cout):
        return (rng.standard_normal((k, k, cin, cout)) * np.sqrt(2 / (k * k * cout))).astype(np.float32)

    def bn_param(c):
        return ({"gamma": np.ones(c, np.float32), "beta": np.zeros(c, np.float32)},
                {"mean": np.zeros(c, np.float32), "var": np.ones(c, np.float32)})

    params, stats = {"conv1": conv_param(7, 3, 64)}, {}
    params["bn1"], stats["bn1"] = bn_param(64)
    blocks, cin = [], 64
    for width, n, stride in LAYERS:
        for i in range(n):
            name, s = f"b{len(blocks):02d}", stride if i == 0 else 1
            p = {"c1": conv_param(1, cin, width), "c2": conv_param(3, width, width), "c3": conv_param(1, width, 4 * width)}
            st = {}
            for bn, c in (("n1", width), ("n2", width), ("n3", 4 * width)):
                p[bn], st[bn] = bn_param(c)
            if s != 1 or cin != 4 * width:
                p["cd"] = conv_param(1, cin, 4 * width)
                p["nd"], st["nd"] = bn_param(4 * width)
            params[name], stats[name] = p, st
            blocks.append((name, s))
            cin = 4 * width
    bound = 1 / np.sqrt(2048)
    params["fc"] = {"w": rng.uniform(-bound, bound, (2048, 10)).astype(np.float32), "b": np.zeros(10, np.float32)}
    return params, stats, blocks


def build(hw, variant, batch=8, dtype="float32"):
    """``(call, forward, state)``: ``call()`` runs one train step on a fixed batch and returns the loss."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    opts = dict(BASE, **VARIANTS[variant]) if isinstance(variant, str) else dict(BASE, **variant)
    conv, bn, pool = make_conv(opts), make_bn(opts), make_pool(opts)
    rng = np.random.default_rng(0)
    params, stats, blocks = init(rng)
    params, stats = jax.tree.map(lambda a: jnp.asarray(a, dtype), (params, stats))

    def block(p, x, s):
        ns = {}
        out, *ns["n1"] = bn(conv(x, p["c1"], 1), p["n1"]["gamma"], p["n1"]["beta"], True)
        out, *ns["n2"] = bn(conv(out, p["c2"], s), p["n2"]["gamma"], p["n2"]["beta"], True)
        out, *ns["n3"] = bn(conv(out, p["c3"], 1), p["n3"]["gamma"], p["n3"]["beta"], False)
        if "cd" in p:
            x, *ns["nd"] = bn(conv(x, p["cd"], s), p["nd"]["gamma"], p["nd"]["beta"], False)
        return jax.nn.relu(out + x), ns

    if opts["remat"]:
        block = jax.checkpoint(block, static_argnums=(2,), policy=getattr(jax.checkpoint_policies, opts["remat"]))

    def forward(params, x):
        batch_stats = {}
        x, *batch_stats["bn1"] = bn(conv(x, params["conv1"], 2, stem=True), params["bn1"]["gamma"],
                                    params["bn1"]["beta"], True)
        x = pool(x)
        for name, s in blocks:
            x, batch_stats[name] = block(params[name], x, s)
        return jnp.mean(x, axis=(1, 2)) @ params["fc"]["w"] + params["fc"]["b"], batch_stats

    def update_stats(stats, batch_stats):
        """moving = 0.9 * moving + 0.1 * batch, the variance unbiased (MindSpore's BatchNorm)."""
        return jax.tree.map(lambda st, b: {"mean": 0.9 * st["mean"] + 0.1 * b[0], "var": 0.9 * st["var"] + 0.1 * b[1]},
                            stats, batch_stats, is_leaf=lambda v: isinstance(v, dict) and "mean" in v)

    opt = optax.sgd(0.01, momentum=0.9)
    x = jnp.asarray(rng.standard_normal((batch, hw, hw, 3)).astype(np.float32), dtype)
    y = jnp.asarray(rng.integers(0, 10, size=batch).astype(np.int32))

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, stats, opt_state, x, y):
        def loss_fn(params):
            logits, batch_stats = forward(params, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), batch_stats
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), update_stats(stats, batch_stats), opt_state, loss

    state = [params, stats, opt.init(params)]

    def call():
        state[0], state[1], state[2], loss = step(*state, x, y)
        return loss
    return call, forward, state, (x, y)


def eval_forward(variant):
    """``f(params, stats, x)``: the inference forward (moving statistics) with the variant's convolutions."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    opts = dict(BASE, **VARIANTS[variant]) if isinstance(variant, str) else dict(BASE, **variant)
    conv, pool = make_conv(opts), make_pool(opts)
    blocks = init_blocks()

    def bn(x, p, st, relu):
        scale = p["gamma"] * lax.rsqrt(st["var"] + 1e-4)
        y = x * scale + (p["beta"] - st["mean"] * scale)
        return jax.nn.relu(y) if relu else y

    def forward(params, stats, x):
        x = pool(bn(conv(x, params["conv1"], 2, stem=True), params["bn1"], stats["bn1"], True))
        for name, s in blocks:
            p, st = params[name], stats[name]
            out = bn(conv(x, p["c1"], 1), p["n1"], st["n1"], True)
            out = bn(conv(out, p["c2"], s), p["n2"], st["n2"], True)
            out = bn(conv(out, p["c3"], 1), p["n3"], st["n3"], False)
            if "cd" in p:
                x = bn(conv(x, p["cd"], s), p["nd"], st["nd"], False)
            x = jax.nn.relu(out + x)
        return jnp.mean(x, axis=(1, 2)) @ params["fc"]["w"] + params["fc"]["b"]
    return forward


def init_blocks():
    """[(block name, stride)] in order, as ``init`` names them."""
    strides = [stride if i == 0 else 1 for _, n, stride in LAYERS for i in range(n)]
    return [(f"b{k:02d}", s) for k, s in enumerate(strides)]
