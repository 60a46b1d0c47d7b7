"""MobileNetV2 and the Vision Transformer against the MindSpore vision zoo (mindcv 0.3.0), in real MindSpore 2.10.

One oracle call does everything MindSpore does here, for every row of ``CASES``:

* builds mindcv's network from tests/zoo_definitions.py (mindcv's own source, written out: mindcv
  cannot be installed beside our jax), gives it well-scaled random values (``_scaled``: mindcv's
  depth-wise initialiser leaves MobileNetV2's eval logits near 1e-9, too small for a comparison to
  mean anything), saves its .ckpt and records its eval logits and names;
  msjax builds its twin, loads that .ckpt strictly (nothing left on either side), has the same
  names in the same order and gives MindSpore's logits;
* loads the .ckpt msjax saved from its own twin into the mindcv network (strictly) and runs it;
* runs the MINDIR msjax exported from its twin through MindSpore's own loader and GraphCell.

onnxruntime runs each twin's ONNX export. Each row is one line: key, the mindcv class, its keyword
arguments (the same on both sides), the msjax constructor and the input shape.
"""
import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

import msjax
from msjax.errors import LayerArgumentError
from msjax.models import (MobileNetV2, VisionTransformer, mobilenet_v2_035_224, mobilenet_v2_050_96,
                          mobilenet_v2_100, mobilenet_v2_140, vit_b_16_224, vit_l_32_224)
from msjax.models.mobilenet_v2 import make_divisible
from oracle import once_per_session, requires_mindspore, run_mindspore

TINY_VIT = dict(image_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=10)
#: every ViT option that changes names or arithmetic: LayerScale, q/k norms, average pooling with
#: fc_norm, position embedding on the patches only, pre-norm (no patch bias), no qkv bias
VIT_OPTIONS = dict(TINY_VIT, global_pool="avg", init_values=0.1, qk_norm=True, no_embed_class=True,
                   pre_norm=True, qkv_bias=False, mlp_ratio=2.0)

#: (key, mindcv class in zoo_definitions, kwargs, msjax constructor, input shape)
CASES = [
    ("mobilenet_v2_035", "MobileNetV2", dict(alpha=0.35, num_classes=10),
     lambda: mobilenet_v2_035_224(num_classes=10), (2, 3, 32, 32)),
    ("mobilenet_v2_050_gray", "MobileNetV2", dict(alpha=0.5, in_channels=1, num_classes=5),
     lambda: mobilenet_v2_050_96(num_classes=5, in_channels=1), (2, 1, 32, 32)),
    ("vit_tiny", "VisionTransformer", TINY_VIT, lambda: VisionTransformer(**TINY_VIT), (2, 3, 32, 32)),
    ("vit_tiny_options", "VisionTransformer", VIT_OPTIONS, lambda: VisionTransformer(**VIT_OPTIONS),
     (2, 3, 32, 32)),
]
KEYS = [c[0] for c in CASES]
TRAINED = [c[0] for c in CASES if c[1] == "MobileNetV2"]


def _train_shape(key):
    """Training batches are 4 x 64 x 64: with 2 x 32 x 32 the last stages' batch statistics come from
    two numbers per channel and amplify float32 rounding without limit."""
    return (4, CASES[KEYS.index(key)][4][1], 64, 64)

MS_CODE = """
import json
sys.path.insert(0, str(inputs["tests_dir"]))
import zoo_definitions as z
for key, cls, kwargs in json.loads(str(inputs["cases"])):
    x = Tensor(inputs[key + "/x"])
    ms.set_seed(1)
    net = getattr(z, cls)(**kwargs)
    net.set_train(False)
    for name, param in net.parameters_and_names():
        param.set_data(Tensor(inputs[key + "/value/" + name]))
    ms.save_checkpoint(net, os.path.join(str(inputs["folder"]), key + ".ckpt"))
    outputs[key + "/names"] = np.array([n for n, _ in net.parameters_and_names()])
    outputs[key + "/logits"] = net(x).asnumpy()
    if cls == "MobileNetV2":              # training: BatchNorm's batch statistics and moving averages
        net.features.set_train(True)
        outputs[key + "/train_features"] = net.features(Tensor(inputs[key + "/xt"])).asnumpy()
        outputs[key + "/train_moving"] = np.concatenate(
            [p.asnumpy().ravel() for n, p in net.parameters_and_names() if ".moving_" in n])
        net.features.set_train(False)
    # msjax -> MindSpore: the .ckpt msjax saved, loaded strictly into mindcv's network
    left = ms.load_param_into_net(net, ms.load_checkpoint(str(inputs[key + "/msjax_ckpt"])), strict_load=True)
    outputs[key + "/left"] = np.array([len(left[0]), len(left[1])])
    outputs[key + "/msjax_ckpt_logits"] = net(x).asnumpy()
    graph = nn.GraphCell(ms.load(str(inputs[key + "/mindir"])))
    outputs[key + "/mindir_logits"] = graph(x).asnumpy()
"""


def _input(key, shape):
    return np.random.default_rng(zlib.crc32(key.encode())).normal(0, 1, shape).astype(np.float32)


def _scaled(net, seed):
    """``{name: value}`` for every parameter of ``net``, drawn so that activations keep their size
    through the depth (weights by fan-in, BatchNorm statistics and scales near 1) and every value
    matters: the logits come out of order 1."""
    rng, values = np.random.default_rng(seed), {}
    for name, param in net.parameters_and_names():
        shape, leaf = tuple(param.shape), name.rsplit(".", 1)[-1]
        if leaf in ("moving_variance", "gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("moving_mean", "beta", "bias"):
            value = rng.normal(0, 0.1, shape)
        elif leaf in ("cls_token", "pos_embed"):
            value = rng.normal(0, 0.5, shape)
        else:
            value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
        values[name] = value.astype(np.float32)
    return values


def _set(net, values):
    for name, param in net.parameters_and_names():
        param.set_data(msjax.Tensor(values[name]))
    return net


def _compare(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models_zoo")
    inputs, ours = {"tests_dir": np.array(str(Path(__file__).parent)), "folder": np.array(str(folder))}, {}
    for key, _, _, build, shape in CASES:
        net = build().set_train(False)
        x = _input(key, shape)
        inputs[key + "/x"] = x
        if key in TRAINED:
            inputs[key + "/xt"] = _input(key + "/train", _train_shape(key))
        inputs.update({f"{key}/value/{n}": v for n, v in _scaled(net, 1).items()})   # MindSpore's values
        _set(net, _scaled(net, 2))                                                  # ours
        ours[key + "/logits"] = net(msjax.Tensor(x)).asnumpy()
        msjax.save_checkpoint(net, str(folder / f"{key}.msjax.ckpt"))
        msjax.export(net, msjax.Tensor(x), file_name=str(folder / key), file_format="MINDIR")
        inputs[key + "/msjax_ckpt"] = np.array(str(folder / f"{key}.msjax.ckpt"))
        inputs[key + "/mindir"] = np.array(str(folder / f"{key}.mindir"))
    inputs["cases"] = np.array(json.dumps([[key, cls, kwargs] for key, cls, kwargs, _, _ in CASES]))
    return str(folder), ours, run_mindspore(MS_CODE, inputs)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    return once_per_session(tmp_path_factory, "models_zoo_compared", lambda: _compare(tmp_path_factory))


def _close(actual, expected, tolerance=1e-5):
    """Within ``tolerance`` of the outputs' scale. In training (``tolerance=1e-4``) MobileNetV2's 52
    layers of batch statistics bring msjax and MindSpore each ~4e-5 of the scale away from a float64
    run of the same network (measured), and so up to twice that from each other."""
    assert np.abs(expected).max() > 0.1, "logits this small would make the comparison vacuous"
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale)


@requires_mindspore
@pytest.mark.parametrize("key, build", [(c[0], c[3]) for c in CASES], ids=KEYS)
def test_mindcv_checkpoint_loads_strictly_and_gives_mindspore_logits(compared, key, build):
    folder, _, theirs = compared
    net = build()
    assert [n for n, _ in net.parameters_and_names()] == list(theirs[key + "/names"])
    left = msjax.load_param_into_net(net, msjax.load_checkpoint(os.path.join(folder, f"{key}.ckpt")),
                                     strict_load=True)
    assert left == ([], [])
    net.set_train(False)
    _close(net(msjax.Tensor(_input(key, CASES[KEYS.index(key)][4]))).asnumpy(), theirs[key + "/logits"])


@requires_mindspore
@pytest.mark.parametrize("key", TRAINED)
def test_mobilenet_v2_trains_batch_statistics_as_mindspore(compared, key):
    folder, _, theirs = compared
    net = CASES[KEYS.index(key)][3]()
    msjax.load_param_into_net(net, msjax.load_checkpoint(os.path.join(folder, f"{key}.ckpt")), strict_load=True)
    def moving():
        return np.concatenate([p.asnumpy().ravel() for n, p in net.parameters_and_names() if ".moving_" in n])

    loaded = moving()
    net.features.set_train(True)
    features = net.features(msjax.Tensor(_input(key + "/train", _train_shape(key)))).asnumpy()
    _close(features, theirs[key + "/train_features"], tolerance=1e-4)
    assert np.abs(moving() - loaded).max() > 1e-2                   # the batch moved every average
    _close(moving(), theirs[key + "/train_moving"], tolerance=1e-4)


@requires_mindspore
@pytest.mark.parametrize("key", KEYS)
def test_msjax_checkpoint_loads_strictly_into_mindcv(compared, key):
    _, ours, theirs = compared
    assert list(theirs[key + "/left"]) == [0, 0]
    _close(theirs[key + "/msjax_ckpt_logits"], ours[key + "/logits"])


@requires_mindspore
@pytest.mark.parametrize("key", KEYS)
def test_exported_mindir_runs_in_mindspore(compared, key):
    _, ours, theirs = compared
    _close(theirs[key + "/mindir_logits"], ours[key + "/logits"])


@pytest.mark.parametrize("key, build, shape", [(c[0], c[3], c[4]) for c in CASES], ids=KEYS)
def test_exported_onnx_runs_in_onnxruntime(tmp_path, key, build, shape):
    ort = pytest.importorskip("onnxruntime")
    net, x = build().set_train(False), _input(key, shape)
    _set(net, _scaled(net, 2))
    msjax.export(net, msjax.Tensor(x), file_name=str(tmp_path / key), file_format="ONNX")
    session = ort.InferenceSession(str(tmp_path / f"{key}.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    _close(out, net(msjax.Tensor(x)).asnumpy())


# ------------------------------------------------------------------ msjax alone: widths, sizes, errors

@pytest.mark.parametrize("value, divisor, expected", [(32 * 0.35, 8, 16), (16 * 0.35, 8, 8), (24 * 0.75, 8, 24),
                                                      (1280 * 1.4, 8, 1792), (96 * 0.35, 8, 32), (10, 8, 16)])
def test_make_divisible_is_mindcvs(value, divisor, expected):
    assert make_divisible(value, divisor) == expected


def _trainable(net):
    return sum(int(np.prod(p.shape)) for p in net.trainable_params())


@pytest.mark.parametrize("build, trainable, last_width", [
    (lambda: mobilenet_v2_100(), 3_504_872, 1280),       # torchvision / paper: 3.5M
    (lambda: mobilenet_v2_140(), 6_108_776, 1792),
])
def test_full_size_mobilenet_v2_has_the_published_size(build, trainable, last_width):
    net = build()
    assert _trainable(net) == trainable and net.classifier[1].weight.shape == (1000, last_width)
    assert net.feature_info[-1] == (last_width, 32, "features.22")


def test_full_size_vit_b_16_names_and_shapes_without_building_it():
    # ViT-B/16 (86.6M weights) is built only under -m slow; a 1-block, same-width twin checks the layout
    net = VisionTransformer(image_size=224, patch_size=16, embed_dim=768, depth=1, num_heads=12)
    shapes = {n: tuple(p.shape) for n, p in net.parameters_and_names()}
    assert shapes["pos_embed"] == (1, 197, 768) and shapes["patch_embed.proj.weight"] == (768, 3, 16, 16)
    assert shapes["blocks.0.attn.qkv.weight"] == (2304, 768) and shapes["blocks.0.mlp.fc1.weight"] == (3072, 768)
    assert shapes["head.weight"] == (1000, 768) and "norm.gamma" in shapes and "fc_norm.gamma" not in shapes


@pytest.mark.slow
@pytest.mark.parametrize("build, trainable", [(vit_b_16_224, 86_567_656), (vit_l_32_224, 306_535_400)])
def test_full_size_vit_has_the_published_size(build, trainable):
    assert _trainable(build()) == trainable


@pytest.mark.parametrize("build, names", [
    (lambda: mobilenet_v2_100(pretrained=True), ["pretrained", "load_checkpoint"]),
    (lambda: vit_b_16_224(pretrained=True), ["pretrained", "load_checkpoint"]),
    (lambda: MobileNetV2(alpha=0, round_nearest=0), ["alpha", "round_nearest"]),
    (lambda: VisionTransformer(global_pool="max", patch_drop_rate=0.1), ["global_pool", "patch_drop_rate"]),
    (lambda: VisionTransformer(class_token=False), ["class_token"]),
    (lambda: VisionTransformer(embed_dim=10, num_heads=3, depth=1), ["num_heads"]),
])
def test_bad_arguments_raise_naming_each_parameter(build, names):
    with pytest.raises(LayerArgumentError) as info:
        build()
    assert all(name in str(info.value) for name in names)


def test_vit_input_must_have_the_models_image_size():
    net = VisionTransformer(**TINY_VIT).set_train(False)
    with pytest.raises(LayerArgumentError, match="image_size"):
        net(msjax.Tensor(np.zeros((1, 3, 40, 40), np.float32)))


def test_training_mode_drops_paths_and_eval_is_deterministic():
    msjax.set_seed(0)
    net = VisionTransformer(**dict(TINY_VIT, drop_path_rate=0.5, depth=3))
    assert [type(b.drop_path1).__name__ for b in net.blocks] == ["Identity", "DropPath", "DropPath"]
    assert net.blocks[2].drop_path1.keep_prob == 0.5                  # linear over the depth, as mindcv
    x = msjax.Tensor(_input("train", (8, 3, 32, 32)))
    train = [net.set_train(True)(x).asnumpy() for _ in range(2)]
    assert not np.allclose(train[0], train[1])
    evals = [net.set_train(False)(x).asnumpy() for _ in range(2)]
    np.testing.assert_array_equal(evals[0], evals[1])
