"""msjax.dataset: sources, pipeline operations, transforms; MnistDataset and the docs pipeline
checked against real MindSpore 2.10 on the same idx files (one oracle subprocess)."""
import gzip
import os
import shutil

import numpy as np
import pytest

import msjax
from msjax import dataset as ds
from msjax.dataset import transforms, vision
from msjax.errors import DatasetError
from oracle import requires_mindspore, run_mindspore


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits")
    assert ds.write_digits(str(path)) == {"train": 1437, "test": 360}
    return str(path)


def docs_pipeline(ds_module, tf, vis, path, usage, int32):
    """The MindSpore docs' create_dataset, minus shuffle (works on msjax and MindSpore alike)."""
    m = ds_module.MnistDataset(path, usage=usage, shuffle=False)
    m = m.map(operations=tf.TypeCast(int32), input_columns="label")
    m = m.map(operations=vis.Resize((32, 32), interpolation=vis.Inter.LINEAR), input_columns="image")
    m = m.map(operations=vis.Rescale(1.0 / 255.0, 0.0), input_columns="image")
    m = m.map(operations=vis.Rescale(1 / 0.3081, -1 * 0.1307 / 0.3081), input_columns="image")
    m = m.map(operations=vis.HWC2CHW(), input_columns="image")
    return m.batch(32, drop_remainder=True)


ORACLE = """
import inspect, mindspore.dataset as ds
from mindspore.dataset import vision, transforms
path = str(inputs["path"])
def rows(d):
    return list(d.create_tuple_iterator(output_numpy=True))
test = ds.MnistDataset(path, usage="test", shuffle=False)
r = rows(test)
outputs["cols"] = np.array(test.get_col_names())
outputs["test_images"] = np.stack([x[0] for x in r]); outputs["test_labels"] = np.stack([x[1] for x in r])
outputs["all_labels"] = np.stack([x[1] for x in rows(ds.MnistDataset(path, usage="all", shuffle=False))])
outputs["default_labels"] = np.stack([x[1] for x in rows(ds.MnistDataset(path, usage="test"))])
outputs["shard_labels"] = np.stack([x[1] for x in rows(ds.MnistDataset(path, usage="test", shuffle=False, num_shards=7, shard_id=5))])
outputs["few_labels"] = np.stack([x[1] for x in rows(ds.MnistDataset(path, usage="test", shuffle=False, num_samples=5))])
exec(inputs["pipeline"].item())
p = docs_pipeline(ds, transforms, vision, path, "test", ms.int32)
outputs["sizes"] = np.array([p.get_dataset_size(), p.get_batch_size(), test.get_dataset_size()])
b = rows(p)
outputs["pipe_images"] = np.stack([x[0] for x in b]); outputs["pipe_labels"] = np.stack([x[1] for x in b])
for i, x in enumerate(inputs["resize_in"]):
    for j, size in enumerate([(32, 32), (5, 13), 4, (9, 7)]):
        outputs[f"lin{i}_{j}"] = vision.Resize(size)(x)
        outputs[f"near{i}_{j}"] = vision.Resize(size, vision.Inter.NEAREST)(x)
outputs["resize_float"] = vision.Resize((11, 6))(inputs["resize_in"][0].astype(np.float32))
outputs["normalize"] = vision.Normalize([10.0, 20.0, 30.0], [2.0, 3.0, 4.0])(inputs["resize_in"][0])
"""


@pytest.fixture(scope="module")
def mindspore_out(digits_dir):
    import inspect
    rng = np.random.default_rng(0)
    resize_in = rng.integers(0, 256, (2, 7, 9, 3)).astype(np.uint8)
    out = run_mindspore(ORACLE, {"path": np.array(digits_dir), "resize_in": resize_in,
                                 "pipeline": np.array(inspect.getsource(docs_pipeline))})
    return out, resize_in


def _labels(d):
    return np.array([int(r[1]) for r in d.create_tuple_iterator(output_numpy=True)])


@requires_mindspore
@pytest.mark.mindspore
def test_mnist_matches_mindspore(digits_dir, mindspore_out):
    ms, _ = mindspore_out
    test = ds.MnistDataset(digits_dir, usage="test", shuffle=False)
    assert test.get_col_names() == list(ms["cols"]) == ["image", "label"]
    rows = list(test.create_tuple_iterator(output_numpy=True))
    images, labels = np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])
    assert images.dtype == ms["test_images"].dtype == np.uint8 and images.shape == ms["test_images"].shape
    assert labels.dtype == ms["test_labels"].dtype == np.uint32 and rows[0][1].shape == ()
    np.testing.assert_array_equal(images, ms["test_images"])
    np.testing.assert_array_equal(labels, ms["test_labels"])
    # usage="all" is t10k first, then train; shards wrap around; num_samples takes the first rows
    np.testing.assert_array_equal(_labels(ds.MnistDataset(digits_dir, shuffle=False)), ms["all_labels"])
    shard = ds.MnistDataset(digits_dir, usage="test", shuffle=False, num_shards=7, shard_id=5)
    assert shard.get_dataset_size() == len(ms["shard_labels"]) == 52
    np.testing.assert_array_equal(_labels(shard), ms["shard_labels"])
    few = ds.MnistDataset(digits_dir, usage="test", shuffle=False, num_samples=5)
    np.testing.assert_array_equal(_labels(few), ms["few_labels"])
    # shuffle=None shuffles (in both), keeping the same multiset of rows
    default = _labels(ds.MnistDataset(digits_dir, usage="test"))
    assert not np.array_equal(default, labels) and not np.array_equal(ms["default_labels"], labels)
    np.testing.assert_array_equal(np.sort(default), np.sort(ms["default_labels"]))


@requires_mindspore
@pytest.mark.mindspore
def test_docs_pipeline_matches_mindspore(digits_dir, mindspore_out):
    ms, _ = mindspore_out
    p = docs_pipeline(ds, transforms, vision, digits_dir, "test", msjax.int32)
    assert [p.get_dataset_size(), p.get_batch_size(), 360] == ms["sizes"].tolist() == [11, 32, 360]
    batches = list(p.create_tuple_iterator(output_numpy=True))
    images, labels = np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches])
    assert images.shape == ms["pipe_images"].shape == (11, 32, 1, 32, 32)
    assert images.dtype == ms["pipe_images"].dtype == np.float32
    assert labels.dtype == ms["pipe_labels"].dtype == np.int32
    np.testing.assert_array_equal(labels, ms["pipe_labels"])
    # Resize on uint8 is bit-identical to MindSpore's; the rest is float32 arithmetic
    np.testing.assert_allclose(images, ms["pipe_images"], rtol=0, atol=1e-5)


@requires_mindspore
@pytest.mark.mindspore
def test_resize_and_normalize_match_mindspore(mindspore_out):
    ms, resize_in = mindspore_out
    for i, x in enumerate(resize_in):
        for j, size in enumerate([(32, 32), (5, 13), 4, (9, 7)]):
            ours = vision.Resize(size)(x)
            assert ours.dtype == np.uint8 and ours.shape == ms[f"lin{i}_{j}"].shape
            np.testing.assert_array_equal(ours, ms[f"lin{i}_{j}"])
            np.testing.assert_array_equal(vision.Resize(size, vision.Inter.NEAREST)(x), ms[f"near{i}_{j}"])
    np.testing.assert_allclose(vision.Resize((11, 6))(resize_in[0].astype(np.float32)), ms["resize_float"],
                               atol=1e-4)
    norm = vision.Normalize([10.0, 20.0, 30.0], [2.0, 3.0, 4.0])(resize_in[0])
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm, ms["normalize"], rtol=1e-6)


def test_gz_files_read_like_plain(digits_dir, tmp_path):
    for name in os.listdir(digits_dir):
        with open(os.path.join(digits_dir, name), "rb") as src, gzip.open(tmp_path / (name + ".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    plain = ds.MnistDataset(digits_dir, usage="train", shuffle=False)
    packed = ds.MnistDataset(str(tmp_path), usage="train", shuffle=False)
    for a, b in zip(plain.create_tuple_iterator(output_numpy=True), packed.create_tuple_iterator(output_numpy=True)):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1]


def test_digits_are_real_and_stratified(digits_dir):
    labels = ds.read_idx(os.path.join(digits_dir, "t10k-labels-idx1-ubyte"))
    images = ds.read_idx(os.path.join(digits_dir, "train-images-idx3-ubyte"))
    assert images.shape == (1437, 28, 28) and images.dtype == np.uint8
    assert images[:, :4].max() == 0 and images.max() == 255          # centred 20x20 like MNIST
    assert np.bincount(labels, minlength=10).min() >= 35              # every class in the test split
    again = ds.digits_as_mnist()["test"]
    np.testing.assert_array_equal(again[1], labels)


def test_bad_files_raise_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="not a directory"):
        ds.MnistDataset(str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        ds.MnistDataset(str(tmp_path), usage="test")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02" * 3)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04")
    with pytest.raises(DatasetError, match="body has 0 bytes"):
        ds.MnistDataset(str(tmp_path), usage="test")
    with pytest.raises(ValueError, match="usage"):
        ds.MnistDataset(str(tmp_path), usage="val")


def test_shuffle_is_seeded_and_reshuffles_each_epoch(digits_dir):
    ds.config.set_seed(7)
    try:
        a = ds.MnistDataset(digits_dir, usage="test").shuffle(64)
        b = ds.MnistDataset(digits_dir, usage="test").shuffle(64)
        it = a.create_tuple_iterator(num_epochs=2, output_numpy=True)
        first = np.array([int(r[1]) for r in it])
        second = np.array([int(r[1]) for r in it])
        assert list(it) == []                                         # num_epochs=2 is the cap
        np.testing.assert_array_equal(first, _labels(b))              # same seed, same order
        assert not np.array_equal(first, second)                      # a new order each epoch
        np.testing.assert_array_equal(np.sort(first), np.sort(second))
    finally:
        ds.config.set_seed(5489)


def test_numpy_slices_batch_repeat_take_and_iterators():
    d = ds.NumpySlicesDataset({"x": np.arange(10), "y": np.arange(10.0) * 2}, shuffle=False)
    assert d.get_col_names() == ["x", "y"]
    b = d.batch(4)
    assert b.get_dataset_size() == 3 and d.batch(4, drop_remainder=True).get_dataset_size() == 2
    rows = list(b)
    assert isinstance(rows[0], list) and isinstance(rows[0][0], msjax.Tensor)
    assert rows[2][0].asnumpy().tolist() == [8, 9] and rows[0][1].dtype == msjax.float64
    t = d.take(3).repeat(2)
    assert t.get_dataset_size() == 6 and [int(r[0]) for r in t] == [0, 1, 2, 0, 1, 2]
    forever = d.repeat()
    assert forever.get_dataset_size() == -1 and forever.take(25).get_dataset_size() == 25
    assert [r[0].asnumpy().tolist() for r in forever.batch(4).take(3)][-1] == [8, 9, 0, 1]
    first = next(iter(d.create_dict_iterator(output_numpy=True)))
    assert set(first) == {"x", "y"} and first["y"] == 0.0
    assert ds.NumpySlicesDataset((np.zeros((3, 2)), np.ones(3))).get_col_names() == ["column_0", "column_1"]
    assert d.skip(8).get_dataset_size() == 2 and d.project("y").get_col_names() == ["y"]
    assert d.output_shapes() == [[], []] and b.output_shapes() == [[4], [4]]


def test_map_columns_follow_mindspore_order():
    d = ds.NumpySlicesDataset({"a": np.arange(4), "b": np.arange(4) * 10, "c": np.arange(4)}, shuffle=False)
    same = d.map(lambda b: b + 1, input_columns="b")
    assert same.get_col_names() == ["a", "b", "c"] and int(next(iter(same))[1]) == 1
    split = d.map(lambda b: (b, b * 2), input_columns=["b"], output_columns=["x", "y"])
    assert split.get_col_names() == ["x", "y", "a", "c"]               # MindSpore puts new outputs first
    x, y, a, c = next(iter(split.skip(1)))
    assert (int(x), int(y), int(a), int(c)) == (10, 20, 1, 1)
    default = d.map([lambda a: a + 1, lambda a: a * 3])                 # first column, ops in order
    assert int(next(iter(default))[0]) == 3
    with pytest.raises(DatasetError, match="not in the dataset"):
        d.map(lambda z: z, input_columns="z")
    with pytest.raises(DatasetError, match="different shapes"):
        list(ds.GeneratorDataset(lambda: ((np.zeros(i + 1),) for i in range(3)), ["v"]).batch(3))


def test_generator_dataset_sources():
    class Squares:
        def __getitem__(self, i):
            return np.array(i * i), np.array([i, i])

        def __len__(self):
            return 6

    r = ds.GeneratorDataset(Squares(), ["sq", "pair"], shuffle=False)
    assert r.get_dataset_size() == 6 and [int(x[0]) for x in r] == [0, 1, 4, 9, 16, 25]
    shuffled = sorted(int(x[0]) for x in ds.GeneratorDataset(Squares(), ["sq", "pair"]))
    assert shuffled == [0, 1, 4, 9, 16, 25]
    shard = ds.GeneratorDataset(Squares(), ["sq", "pair"], shuffle=False, num_shards=4, shard_id=1)
    assert [int(x[0]) for x in shard] == [1, 25]
    it = ds.GeneratorDataset(lambda: ((np.array(i),) for i in range(5)), ["v"], num_samples=3)
    assert it.get_dataset_size() == 3 and [int(x[0]) for x in it] == [0, 1, 2]
    with pytest.raises(ValueError, match="random-access"):
        ds.GeneratorDataset(iter(range(3)), ["v"], shuffle=True)
    with pytest.raises(DatasetError, match="2 values"):
        list(ds.GeneratorDataset([(1, 2)], ["v"]))


def test_transforms_eager():
    img = np.full((28, 28, 1), 255, np.uint8)
    out = vision.HWC2CHW()(vision.Rescale(1 / 255, 0)(vision.Resize(32)(img)))
    assert out.shape == (1, 32, 32) and out.dtype == np.float32 and np.allclose(out, 1.0)
    assert vision.Resize((16, 8))(np.zeros((4, 28, 28, 1), np.uint8)).shape == (4, 16, 8, 1)  # batched
    assert transforms.TypeCast(msjax.int32)(np.uint32(3)).dtype == np.int32
    assert transforms.TypeCast(np.float16)(np.ones(2)).dtype == np.float16
    assert vision.Inter.LINEAR is vision.Inter.BILINEAR
    with pytest.raises(ValueError, match="size"):
        vision.Resize((0, 3))
