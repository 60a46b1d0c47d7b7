"""Vision Transformer with the MindSpore vision zoo's (mindcv 0.3.0) cell names, parameter order and initialisers.

Names follow ``mindcv/models/vit.py``: ``cls_token`` and ``pos_embed`` (1 x tokens x embed_dim),
``patch_embed.proj`` (the patch Conv2d), ``blocks.<i>`` with ``norm1``, ``attn.qkv``/``attn.proj``,
``norm2``, ``mlp.fc1``/``mlp.fc2`` (and ``ls1.gamma``/``ls2.gamma`` with ``init_values``), then
``norm`` (or ``fc_norm`` with average pooling) and ``head``. LayerNorms are MindSpore's
(``gamma``/``beta``, epsilon 1e-7), GELU is MindSpore's default tanh form. A mindcv checkpoint
loads by name, strictly.

>>> net = VisionTransformer(image_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, num_classes=3)
>>> [n for n, _ in net.parameters_and_names()][:4]
['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias']
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from msjax import nn
from msjax.common.initializer import HeUniform, TruncatedNormal, initializer
from msjax.common.tensor import Parameter
from msjax.errors import LayerArgumentError

__all__ = ["VisionTransformer", "Attention", "Block", "Mlp", "PatchEmbed", "LayerScale", "DropPath", "vit_b_16_224",
           "vit_b_16_384", "vit_l_16_224", "vit_l_16_384", "vit_b_32_224", "vit_b_32_384", "vit_l_32_224"]


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class PatchEmbed(nn.Cell):
    """mindcv's ``PatchEmbed``: a ``patch_size`` Conv2d with stride ``patch_size`` (``proj``), flattened
    to ``(B, patches, embed_dim)``. The input must be ``image_size``, as mindcv's strict default."""

    def __init__(self, image_size=224, patch_size=4, in_chans=3, embed_dim=96, norm_layer=None, flatten=True,
                 bias=True):
        super().__init__()
        self.patch_size, self.image_size = _pair(patch_size), _pair(image_size)
        self.patches_resolution = tuple(s // p for s, p in zip(self.image_size, self.patch_size))
        self.num_patches = self.patches_resolution[0] * self.patches_resolution[1]
        self.flatten, self.embed_dim = flatten, embed_dim
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, pad_mode="pad",
                              has_bias=bias, weight_init="TruncatedNormal")
        self.norm = norm_layer((embed_dim,), epsilon=1e-5) if norm_layer is not None else None

    def construct(self, x):
        b, _, h, w = x.shape
        if (h, w) != self.image_size:
            raise LayerArgumentError(f"PatchEmbed: input height and width ({h},{w}) do not match the model's "
                                     f"image_size {self.image_size}; build the model with image_size=({h}, {w})")
        x = self.proj(x)
        if self.flatten:
            x = jnp.transpose(x.reshape(b, self.embed_dim, -1), (0, 2, 1))
        if self.norm is not None:
            x = self.norm(x)
        return x


class Attention(nn.Cell):
    """mindcv's ``Attention``: one ``qkv`` Dense (dim -> 3 * dim), scores ``q @ k.T * head_dim**-0.5``
    softmaxed in float32, then ``proj``; ``q_norm``/``k_norm`` LayerNorms with ``qk_norm``."""

    def __init__(self, dim, num_heads=8, qkv_bias=True, qk_norm=False, attn_drop=0.0, proj_drop=0.0,
                 norm_layer=nn.LayerNorm):
        super().__init__()
        if dim % num_heads:
            raise LayerArgumentError(f"Attention: dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Dense(dim, dim * 3, has_bias=qkv_bias)
        self.q_norm = norm_layer((self.head_dim,)) if qk_norm else nn.Identity()
        self.k_norm = norm_layer((self.head_dim,)) if qk_norm else nn.Identity()
        self.attn_drop = nn.Dropout(p=attn_drop)
        self.proj = nn.Dense(dim, dim)
        self.proj_drop = nn.Dropout(p=proj_drop)

    def construct(self, x):
        b, n, c = x.shape
        qkv = jnp.transpose(self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim), (2, 0, 3, 1, 4))
        q, k, v = qkv[0], qkv[1], qkv[2]
        q, k = self.q_norm(q), self.k_norm(k)
        attn = (q @ jnp.swapaxes(k, -1, -2)) * jnp.asarray(self.scale, jnp.float32)
        attn = self.attn_drop(jax.nn.softmax(attn.astype(jnp.float32), axis=-1))
        out = jnp.transpose(attn @ v, (0, 2, 1, 3)).reshape(b, n, c)
        return self.proj_drop(self.proj(out))


class LayerScale(nn.Cell):
    """mindcv's ``LayerScale``: ``gamma * x`` with ``gamma`` filled with ``init_values``."""

    def __init__(self, dim, init_values=1e-5):
        super().__init__()
        self.gamma = Parameter(initializer(init_values, (dim,)))

    def construct(self, x):
        return self.gamma.get_value().astype(x.dtype) * x


class DropPath(nn.Cell):
    """mindcv's ``DropPath`` (stochastic depth): in training each sample's branch is dropped with
    ``drop_prob`` (kept ones scaled by ``1 / keep`` when ``scale_by_keep``); identity in eval."""

    def __init__(self, drop_prob=0.0, scale_by_keep=True):
        super().__init__()
        self.keep_prob, self.scale_by_keep = 1.0 - drop_prob, scale_by_keep
        self.dropout = nn.Dropout(p=drop_prob)

    def construct(self, x):
        if self.keep_prob == 1.0 or not self.training:
            return x
        mask = self.dropout(jnp.ones((x.shape[0],) + (1,) * (x.ndim - 1), x.dtype))
        if not self.scale_by_keep:
            mask = mask * self.keep_prob
        return x * mask


class Mlp(nn.Cell):
    """mindcv's ``Mlp``: ``fc1`` -> ``act`` -> dropout -> ``fc2`` -> dropout (one ``drop`` cell)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        out_features, hidden_features = out_features or in_features, hidden_features or in_features
        self.fc1 = nn.Dense(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Dense(hidden_features, out_features)
        self.drop = nn.Dropout(p=drop)

    def construct(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Cell):
    """mindcv's pre-norm transformer ``Block``: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, each
    branch through ``ls1``/``ls2`` (LayerScale with ``init_values``) and ``drop_path1``/``drop_path2``."""

    def __init__(self, dim, num_heads=8, mlp_ratio=4.0, qkv_bias=False, qk_norm=False, proj_drop=0.0,
                 attn_drop=0.0, init_values=None, drop_path=0.0, act_layer=nn.GELU, norm_layer=nn.LayerNorm,
                 mlp_layer=Mlp):
        super().__init__()
        self.norm1 = norm_layer((dim,))
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_norm=qk_norm, attn_drop=attn_drop,
                              proj_drop=proj_drop, norm_layer=norm_layer)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer((dim,))
        self.mlp = mlp_layer(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer,
                             drop=proj_drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def construct(self, x):
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class VisionTransformer(nn.Cell):
    """ViT (arXiv:2010.11929) as mindcv's ``VisionTransformer`` builds it, with its argument names and
    defaults (``vit_b_16_224``: ``image_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12``).

    ``global_pool`` ``'token'`` reads the class token, ``'avg'`` averages the patch tokens (and then
    normalises with ``fc_norm`` instead of ``norm``), ``''`` returns every token. ``no_embed_class``
    adds ``pos_embed`` to the patches only; ``pre_norm`` adds ``norm_pre`` and drops the patch bias;
    ``init_values`` turns on LayerScale; ``drop_path_rate`` grows linearly over the blocks.
    ``cls_token`` and ``pos_embed`` draw ``TruncatedNormal(0.02)``; with ``weight_init`` (mindcv's
    default) every Dense, LayerNorm and Conv2d is re-drawn as mindcv's ``_init_weights`` does. mindcv's ``patch_drop_rate``, ``dynamic_img_size`` and
    ``dynamic_img_pad`` are not built: anything but their defaults raises.
    """

    def __init__(self, image_size=224, patch_size=16, in_channels=3, global_pool="token", embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4.0, qkv_bias=True, qk_norm=False, drop_rate=0.0, pos_drop_rate=0.0,
                 patch_drop_rate=0.0, proj_drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, weight_init=True,
                 init_values=None, no_embed_class=False, pre_norm=False, fc_norm=None, dynamic_img_size=False,
                 dynamic_img_pad=False, act_layer=nn.GELU, embed_layer=PatchEmbed, norm_layer=nn.LayerNorm,
                 mlp_layer=Mlp, class_token=True, block_fn=Block, num_classes=1000):
        super().__init__()
        problems = []
        if global_pool not in ("", "avg", "token"):
            problems.append(f"global_pool must be '', 'avg' or 'token', got {global_pool!r}")
        if not class_token and global_pool == "token":
            problems.append("global_pool='token' needs class_token=True")
        for arg, value in (("patch_drop_rate", patch_drop_rate), ("dynamic_img_size", dynamic_img_size),
                           ("dynamic_img_pad", dynamic_img_pad)):
            if value:
                problems.append(f"{arg}={value!r} is not supported by msjax (leave it at its default)")
        if problems:
            raise LayerArgumentError("VisionTransformer: " + "; ".join(problems))
        use_fc_norm = global_pool == "avg" if fc_norm is None else fc_norm
        self.global_pool, self.no_embed_class = global_pool, no_embed_class
        self.num_prefix_tokens = 1 if class_token else 0
        self.patch_embed = embed_layer(image_size=image_size, patch_size=patch_size, in_chans=in_channels,
                                       embed_dim=embed_dim, bias=not pre_norm)
        num_patches = self.patch_embed.num_patches
        self.cls_token = Parameter(initializer(TruncatedNormal(0.02), (1, 1, embed_dim))) if class_token else None
        embed_len = num_patches if no_embed_class else num_patches + self.num_prefix_tokens
        self.pos_embed = Parameter(initializer(TruncatedNormal(0.02), (1, embed_len, embed_dim)))
        self.pos_drop = nn.Dropout(p=pos_drop_rate)
        self.patch_drop = nn.Identity()
        self.norm_pre = norm_layer((embed_dim,)) if pre_norm else nn.Identity()
        rates = [float(drop_path_rate) * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        self.blocks = nn.CellList([
            block_fn(dim=embed_dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_norm=qk_norm,
                     attn_drop=attn_drop_rate, proj_drop=proj_drop_rate, mlp_ratio=mlp_ratio, drop_path=rates[i],
                     init_values=init_values, act_layer=act_layer, norm_layer=norm_layer, mlp_layer=mlp_layer)
            for i in range(depth)])
        self.norm = norm_layer((embed_dim,)) if not use_fc_norm else nn.Identity()
        self.fc_norm = norm_layer((embed_dim,)) if use_fc_norm else nn.Identity()
        self.head_drop = nn.Dropout(p=drop_rate)
        self.head = nn.Dense(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        if weight_init:
            self._init_weights()

    def get_num_layers(self):
        return len(self.blocks)

    def _init_weights(self):
        """mindcv's re-initialisation: Dense ``TruncatedNormal(0.02)``, LayerNorm ones/zeros, Conv2d
        ``HeUniform()``, every bias zero."""
        for _, cell in self.cells_and_names():
            weight = TruncatedNormal(0.02) if isinstance(cell, nn.Dense) else \
                HeUniform() if isinstance(cell, nn.Conv2d) else None
            if weight is not None:
                cell.weight.set_data(initializer(weight, cell.weight.shape, cell.weight.dtype))
                if cell.bias is not None:
                    cell.bias.set_data(initializer("zeros", cell.bias.shape, cell.bias.dtype))
            elif isinstance(cell, nn.LayerNorm):
                cell.gamma.set_data(initializer("ones", cell.gamma.shape, cell.gamma.dtype))
                cell.beta.set_data(initializer("zeros", cell.beta.shape, cell.beta.dtype))

    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}

    def _pos_embed(self, x):
        pos_embed = self.pos_embed.get_value().astype(x.dtype)
        if self.no_embed_class:
            x = x + pos_embed
        if self.cls_token is not None:
            cls = jnp.broadcast_to(self.cls_token.get_value().astype(x.dtype), (x.shape[0], 1, x.shape[2]))
            x = jnp.concatenate((cls, x), axis=1)
        if not self.no_embed_class:
            x = x + pos_embed
        return self.pos_drop(x)

    def forward_features(self, x):
        x = self.norm_pre(self.patch_drop(self._pos_embed(self.patch_embed(x))))
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_head(self, x):
        if self.global_pool == "avg":
            x = x[:, self.num_prefix_tokens:].mean(axis=1)
        elif self.global_pool:
            x = x[:, 0]
        return self.head(self.head_drop(self.fc_norm(x)))

    def construct(self, x):
        return self.forward_head(self.forward_features(x))


def _variant(name, image_size, patch_size, embed_dim, depth, num_heads):
    """One of mindcv's registered constructors: ``name(pretrained=False, num_classes=1000, in_channels=3,
    **kwargs)``; ``kwargs`` go to :class:`VisionTransformer`."""

    def build(pretrained=False, num_classes=1000, in_channels=3, **kwargs):
        if pretrained:
            raise LayerArgumentError(f"{name}: pretrained=True downloads mindcv's weights, which msjax does not "
                                     f"do; build with pretrained=False and load the .ckpt with "
                                     f"msjax.load_checkpoint and msjax.load_param_into_net")
        return VisionTransformer(image_size=image_size, patch_size=patch_size, in_channels=in_channels,
                                 embed_dim=embed_dim, depth=depth, num_heads=num_heads, num_classes=num_classes,
                                 **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f"mindcv's ``{name}``: ViT with {patch_size}x{patch_size} patches on {image_size}x{image_size}"
                     f" inputs, width {embed_dim}, {depth} blocks of {num_heads} heads.")
    return build


vit_b_16_224 = _variant("vit_b_16_224", 224, 16, 768, 12, 12)
vit_b_16_384 = _variant("vit_b_16_384", 384, 16, 768, 12, 12)
vit_l_16_224 = _variant("vit_l_16_224", 224, 16, 1024, 24, 16)
vit_l_16_384 = _variant("vit_l_16_384", 384, 16, 1024, 24, 16)
vit_b_32_224 = _variant("vit_b_32_224", 224, 32, 768, 12, 12)
vit_b_32_384 = _variant("vit_b_32_384", 384, 32, 768, 12, 12)
vit_l_32_224 = _variant("vit_l_32_224", 224, 32, 1024, 24, 16)
