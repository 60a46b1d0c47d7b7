"""Plain JAX + optax LeNet5 train steps (no msjax), one per variant; bench_plain_jax.py times them.

The network is ``msjax.models.LeNet5()`` (MindSpore's docs' LeNet5): 5x5 valid convolutions 1->6 and
6->16 without bias, ReLU, 2x2/s2 max pools, Dense 400->120->84->10 with bias, on a batch of 32 x 1x32x32,
sparse softmax cross entropy (mean) and ``optax.sgd(0.01, momentum=0.9)``, float32, one ``jax.jit``
with donated parameters and optimizer state. A variant picks (``VARIANTS``):

- ``layout``: "nhwc" (HWIO kernels; the flatten then runs over H, W, C, which is the same network with
  fc1's rows permuted) or "nchw" (OIHW, MindSpore's own order);
- ``conv``: XLA's ``conv_general_dilated`` ("xla") or im2col + one matmul ("im2col", NHWC only);
- ``pool``: ``reduce_window`` ("rw"), a max over the four strided taps with a custom VJP that sends the
  gradient to the first maximal tap as ``select_and_scatter`` does ("taps"), or a reshape + max over
  the 2x2 windows, whose autodiff splits the gradient among tied maxima ("reshape");
- ``pool_first``: pool before ReLU (max and ReLU commute; the gradient is the same, ties included:
  a window whose maximum is <= 0 gets no gradient either way), so ReLU runs on a quarter of the cells.
"""
from __future__ import annotations

import functools

BASE = {"layout": "nhwc", "conv": "xla", "pool": "rw", "pool_first": False}
VARIANTS = {
    "xla_nchw": {"layout": "nchw"},
    "xla_nhwc": {},
    "im2col": {"conv": "im2col"},
    "im2col_taps": {"conv": "im2col", "pool": "taps"},
    "im2col_reshape": {"conv": "im2col", "pool": "reshape"},
    "im2col_taps_first": {"conv": "im2col", "pool": "taps", "pool_first": True},
    "im2col_rw_first": {"conv": "im2col", "pool_first": True},
    "xla_nchw_first": {"layout": "nchw", "pool_first": True},
}


def _pool(kind, nchw):
    import jax
    import jax.numpy as jnp
    from jax import lax
    win = (1, 1, 2, 2) if nchw else (1, 2, 2, 1)

    def rw(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, win, win, "VALID")

    def taps_of(x):
        if nchw:
            return [x[:, :, i::2, j::2] for i in range(2) for j in range(2)]
        return [x[:, i::2, j::2] for i in range(2) for j in range(2)]

    @jax.custom_vjp
    def taps(x):
        return functools.reduce(jnp.maximum, taps_of(x))

    def taps_fwd(x):
        out = taps(x)
        return out, (x, out)

    def taps_bwd(res, g):
        x, out = res
        vals, back = jax.vjp(taps_of, x)
        taken, cts = jnp.zeros(out.shape, bool), []
        for t in vals:
            hit = (t == out) & ~taken
            cts.append(jnp.where(hit, g, 0.0))
            taken = taken | hit
        return back(cts)

    taps.defvjp(taps_fwd, taps_bwd)

    def reshape(x):
        n, h, w, c = x.shape
        return jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))
    return {"rw": rw, "taps": taps, "reshape": reshape}[kind]


def build(variant, batch=32):
    """``(call, forward, state, batch)``: ``call()`` runs one train step and returns the loss."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax import lax
    opts = dict(BASE, **VARIANTS[variant]) if isinstance(variant, str) else dict(BASE, **variant)
    nchw = opts["layout"] == "nchw"
    rng = np.random.default_rng(0)

    def kernel(cin, cout):  # MindSpore's Conv2d default init is HeUniform(sqrt(5)): bound 1/sqrt(fan_in)
        bound = 1 / np.sqrt(cin * 25)
        w = rng.uniform(-bound, bound, (5, 5, cin, cout)).astype(np.float32)
        return jnp.asarray(np.transpose(w, (3, 2, 0, 1)) if nchw else w)

    def dense(cin, cout):
        return {"w": jnp.asarray(rng.normal(0, 0.02, (cin, cout)).astype(np.float32)), "b": jnp.zeros(cout)}

    params = {"conv1": kernel(1, 6), "conv2": kernel(6, 16), "fc1": dense(400, 120), "fc2": dense(120, 84),
              "fc3": dense(84, 10)}
    pool = _pool(opts["pool"], nchw)

    def conv(x, w):
        if opts["conv"] == "im2col":
            n, h, wd, c = x.shape
            oh, ow = h - 4, wd - 4
            patches = jnp.concatenate([x[:, i:i + oh, j:j + ow] for i in range(5) for j in range(5)], axis=-1)
            return patches @ w.reshape(25 * c, -1)
        dims = ("NCHW", "OIHW", "NCHW") if nchw else ("NHWC", "HWIO", "NHWC")
        return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=dims)

    def stage(x, w):
        x = conv(x, w)
        return jax.nn.relu(pool(x)) if opts["pool_first"] else pool(jax.nn.relu(x))

    def forward(params, x):
        x = stage(stage(x, params["conv1"]), params["conv2"])
        x = x.reshape(x.shape[0], -1)
        x = jax.nn.relu(x @ params["fc1"]["w"] + params["fc1"]["b"])
        x = jax.nn.relu(x @ params["fc2"]["w"] + params["fc2"]["b"])
        return x @ params["fc3"]["w"] + params["fc3"]["b"]

    opt = optax.sgd(0.01, momentum=0.9)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, x, y):
        def loss_fn(params):
            return optax.softmax_cross_entropy_with_integer_labels(forward(params, x), y).mean()
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    x = rng.standard_normal((batch, 1, 32, 32)).astype(np.float32)
    x = jnp.asarray(x if nchw else np.transpose(x, (0, 2, 3, 1)))
    y = jnp.asarray(rng.integers(0, 10, size=batch).astype(np.int32))
    state = [params, opt.init(params)]

    def call():
        state[0], state[1], loss = step(*state, x, y)
        return loss
    return call, forward, state, (x, y)
