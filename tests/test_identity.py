"""The run identity: a store resumes only the same run and says how it was made."""

from __future__ import annotations

import functools
import json
import os
import shutil
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
import xarray as xr

import labeled_spaces as ls
from labeled_spaces.cli import describe
from labeled_spaces.grid import Blocks
from labeled_spaces.results import store as store_module
from labeled_spaces.results import store_writer
from labeled_spaces.results.store import StoreWriteError, StoreWriter


def space(n=20, dt=0.5, **extra):
    return ls.Space({"a": ls.GridAxis(0.0, 1.0, n), "b": ls.GridAxis(1.0, 2.0, 5), "dt": dt,
                     **extra}, mode="product")


def model(state, n_steps=10):
    return {"y": state["a"] * jnp.arange(4.0) * n_steps + state["b"],
            "m": state["a"] * state["b"]}


def snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``path`` with its bytes and modification time."""
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()}


def run(path, sp=None, fn=model, *args, **kwargs):
    kwargs.setdefault("progress", False)
    return ls.ParallelExecution(fn, sp if sp is not None else space(), *args, store=path,
                                **kwargs).run()


def refused(path, match, sp=None, fn=model, *args, **kwargs):
    before = snapshot(path)
    with pytest.raises(ValueError, match=match) as info:
        run(path, sp, fn, *args, **kwargs)
    assert "overwrite=True" in str(info.value) and "new path" in str(info.value)
    assert snapshot(path) == before  # untouched: bytes and mtimes
    return str(info.value)


def test_a_changed_keyword_argument_is_refused_naming_it(tmp_path):
    path = tmp_path / "s.zarr"
    run(path, n_steps=10)
    refused(path, r"n_steps: 10 -> 20", n_steps=20)


def test_a_changed_positional_array_argument_is_refused(tmp_path):
    path = tmp_path / "s.zarr"

    def scaled(state, weights):
        return state["a"] * weights.sum()

    run(path, None, scaled, np.ones(4))
    message = refused(path, r"args\[0\]", None, scaled, np.full(4, 5.0))
    assert "model arguments" in message


def test_a_big_data_axis_change_is_refused(tmp_path):
    # more than 10,000 elements: the attrs refer to a coordinate; the identity hashes the table
    data = np.random.default_rng(0).normal(size=(5, 50, 50))
    path = tmp_path / "s.zarr"
    sp = ls.Space({"c": ls.DataAxis(data), "a": ls.GridAxis(0.0, 1.0, 3)}, mode="product")
    fn = lambda s: s["c"].sum() * s["a"]  # noqa: E731
    run(path, sp, fn)
    changed = data.copy()
    changed[4, 49, 49] += 1e-3
    other = ls.Space({"c": ls.DataAxis(changed), "a": ls.GridAxis(0.0, 1.0, 3)},
                     mode="product")
    refused(path, r"another space.*c", other, fn)


class Scaled(ls.AbstractAxis):
    """A user's axis (not registered): its own field ``unit`` changes no value."""

    def __init__(self, n, unit):
        super().__init__()
        self.n, self.unit = n, unit

    @property
    def size(self):
        return self.n

    def generate_values(self, key=None):
        return jnp.arange(self.n, dtype=jnp.float32)


def test_a_custom_axis_field_change_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    fn = lambda s: s["x"] * 2.0  # noqa: E731
    run(path, ls.Space({"x": Scaled(4, "mV")}, mode="product"), fn)
    refused(path, r"unit: .*mV.* -> .*V", ls.Space({"x": Scaled(4, "V")}, mode="product"), fn)


def test_a_numpyro_distribution_change_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    fn = lambda s: s["x"] * 2.0  # noqa: E731
    mk = lambda scale: ls.Space({"x": ls.NumPyroAxis(dist.Normal(0.0, scale), 6)},  # noqa: E731
                                mode="product", key=jax.random.key(1))
    run(path, mk(1.0), fn)
    refused(path, r"another space", mk(2.0), fn)


def test_a_fixed_leaf_change_is_refused_naming_it(tmp_path):
    path = tmp_path / "s.zarr"
    run(path, space(dt=0.5))
    refused(path, r"dt: 0\.5 -> 0\.25", space(dt=0.25))


def test_overwrite_replaces_the_store(tmp_path):
    path = tmp_path / "s.zarr"
    run(path, n_steps=10)
    for executor in (ls.ParallelExecution, ls.SequentialExecution):
        again = executor(model, space(), store=path, overwrite=True, progress=False,
                         n_steps=20).run()
        want = executor(model, space(), progress=False, n_steps=20).run().to_xarray()
        np.testing.assert_array_equal(again.to_xarray()["y"].values, want["y"].values)
        back = ls.open_results(path)
        assert json.loads(back.attrs["labeled_spaces:arguments"])["kwargs"] == {"n_steps": 20}
    # nothing is left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
    with pytest.raises(ValueError, match="overwrite=True replaces a store"):
        ls.ParallelExecution(model, space(), overwrite=True)
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        ls.ParallelExecution(model, space(), store=path, overwrite="yes")
    for executor in (ls.ParallelExecution, ls.SequentialExecution, ls.DaskExecution):
        import inspect

        assert "overwrite" in inspect.signature(executor).parameters


def test_overwrite_does_not_replace_what_is_not_a_store_of_ours(tmp_path):
    plain = tmp_path / "plain.zarr"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a zarr store"):
        run(plain, overwrite=True)
    assert (plain / "notes.txt").read_text() == "mine"


def test_an_untraceable_model_resumes_with_a_warning_naming_the_store(tmp_path):
    path = tmp_path / "s.zarr"
    ls.SequentialExecution(model, space(4), progress=False, store=path, jit=False).run()
    with pytest.warns(UserWarning, match=f"store='{path}'.*could not be traced"):
        ls.SequentialExecution(model, space(4), progress=False, store=path, jit=False).run()


def test_a_changed_program_resumes_with_a_warning_naming_the_store(tmp_path):
    path = tmp_path / "s.zarr"
    run(path)

    def changed(state, n_steps=10):
        return {"y": state["a"] * jnp.arange(4.0) * n_steps - state["b"],
                "m": state["a"] * state["b"]}

    with pytest.warns(UserWarning, match=f"store='{path}'.*traced differently"):
        run(path, None, changed)


@pytest.mark.parametrize("first, then", [(jax.random.key, jax.random.PRNGKey),
                                         (jax.random.PRNGKey, jax.random.key)],
                         ids=["typed-then-raw", "raw-then-typed"])
def test_a_resume_with_the_other_kind_of_key_says_so(tmp_path, first, then):
    # the same key data as a typed key or as raw PRNGKey data: the same draws, bit for bit,
    # but the model gets another kind of array, so JAX traces it apart; the warning names
    # that, not a changed model or JAX version
    path = tmp_path / "s.zarr"

    def draw(state):
        return state["a"] + jax.random.uniform(state["k"])

    def sweep(key):
        return ls.Space({"a": ls.GridAxis(0.0, 1.0, 4), "k": ls.PointKey()}, key=key(4))

    stored = ls.ParallelExecution(draw, sweep(first), store=path, progress=False).run()
    with pytest.warns(UserWarning, match=r"traced differently from this run's \(the Space's "
                                         r"key was .* and is .* now") as caught:
        again = ls.ParallelExecution(draw, sweep(then), store=path, progress=False).run()
    assert len(caught) == 1
    xr.testing.assert_identical(again.to_xarray()["result"], stored.to_xarray()["result"])
    # without key leaves the kind of key changes no program: a changed one is the model's
    plain = tmp_path / "plain.zarr"
    ls.ParallelExecution(lambda s: s["u"] + 1.0, ls.Space({"u": ls.UniformAxis(0.0, 1.0, 4)},
                                                          key=first(4)),
                         store=plain, progress=False).run()
    with pytest.warns(UserWarning, match=r"traced differently from this run's \(the model's "
                                         r"code") as caught:
        ls.ParallelExecution(lambda s: s["u"] * 5.0 - 3.0,
                             ls.Space({"u": ls.UniformAxis(0.0, 1.0, 4)}, key=then(4)),
                             store=plain, progress=False).run()
    assert not any("key was" in str(w.message) for w in caught)


def test_the_model_arguments_are_in_every_dataset_and_file(tmp_path):
    memory = ls.ParallelExecution(model, space(), progress=False, n_steps=20).run()
    path = tmp_path / "s.zarr"
    stored = run(path, n_steps=20)
    memory.to_netcdf(tmp_path / "m.nc")
    for attrs in (memory.to_xarray().attrs, stored.to_xarray().attrs,
                  ls.open_results(path).to_xarray().attrs,
                  ls.open_results(tmp_path / "m.nc").to_xarray().attrs):
        assert json.loads(attrs["labeled_spaces:arguments"]) == {"args": [],
                                                                 "kwargs": {"n_steps": 20}}
        assert json.loads(attrs["labeled_spaces:identity"])["inputs"]["kwargs"] == {
            "n_steps": 20}
    for target in (path, tmp_path / "m.nc"):
        text = describe(target)
        assert "arguments: n_steps=20" in text and "identity: inputs " in text


def _blocks_of(path):
    import zarr

    held = json.loads(zarr.open_group(str(path), mode="r").attrs["labeled_spaces:store"])
    return Blocks(held["shape"], held["step"])


def test_a_done_block_whose_chunk_is_missing_is_recomputed(tmp_path, caplog):
    path = tmp_path / "s.zarr"
    want = run(path, chunk_size=25).to_xarray().compute()
    blocks = _blocks_of(path)
    assert len(blocks) >= 4
    chunk = path / "m" / "c" / "1" / "0"
    assert chunk.is_file()
    chunk.unlink()  # a partial copy of the store
    back = ls.open_results(path)
    assert not back.complete
    assert int(np.sum(back.done)) == space().N - blocks[1].size
    assert "missing: 1 block marked done has lost its chunks" in describe(path)
    again = run(path)
    assert again.complete and chunk.is_file()
    np.testing.assert_array_equal(again.to_xarray()["m"].values, want["m"].values)
    assert ls.open_results(path).complete


@pytest.mark.filterwarnings("ignore:Consolidated metadata")  # zarr's, about xarray's copy
def test_a_store_whose_done_mask_is_gone_is_not_complete(tmp_path):
    # a partial store copied without its done mask read as complete, its missing blocks NaN
    path = tmp_path / "s.zarr"
    run(path, chunk_size=25)
    (path / "m" / "c" / "1" / "0").unlink()  # a block that never finished
    shutil.rmtree(path / "labeled_spaces" / "done")
    back = ls.open_results(path)
    assert not back.complete and int(np.sum(back.done)) == 0  # nothing is known finished
    text = describe(path)
    assert "partial: 0 of" in text and "the done mask (labeled_spaces/done) is gone" in text
    refused(path, r"has no done mask")
    assert run(path, chunk_size=25, overwrite=True).complete
    # a copy written by xarray keeps the attrs but not the group: complete, as it always was
    copy = tmp_path / "copy.zarr"
    with xr.open_zarr(path) as plain:
        plain.isel(a=[3, 1]).to_zarr(copy)
    assert ls.open_results(copy).complete
    assert "complete: 10 of 10 combinations" in describe(copy)


def test_a_damaged_chunk_is_named_and_recomputed_once_removed(tmp_path):
    # the codec's bare RuntimeError ("error during blosc decompression: -1") named no file
    path = tmp_path / "s.zarr"
    want = run(path, chunk_size=25).to_xarray().compute()
    chunk = path / "m" / "c" / "1" / "0"
    chunk.write_bytes(chunk.read_bytes()[:7])  # a truncated copy
    with pytest.raises(ValueError, match=r"chunk file .*m/c/1/0' is damaged .* remove it"):
        run(path, chunk_size=25).to_xarray().compute()
    mark = path / "labeled_spaces" / "done" / "c" / "2" / "0"
    mark.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"chunk file .*done/c/2/0' is damaged"):
        ls.open_results(path)
    chunk.unlink()
    mark.unlink()
    again = run(path, chunk_size=25)
    assert again.complete
    xr_equal = again.to_xarray().compute()
    np.testing.assert_array_equal(xr_equal["m"].values, want["m"].values)


def test_the_done_state_of_a_big_store_is_per_block(tmp_path, monkeypatch):
    # beyond EAGER_DONE combinations no grid-sized mask is ever built: it is lazy, per block
    monkeypatch.setattr(store_writer, "EAGER_DONE", 10)
    path = tmp_path / "s.zarr"
    run(path, chunk_size=25)
    blocks = _blocks_of(path)
    (path / "labeled_spaces" / "done" / "c" / "2" / "0").unlink()
    back = ls.open_results(path)
    assert not isinstance(back.done, np.ndarray) and hasattr(back.done, "dask")
    assert not back.complete
    assert int(np.sum(back.done)) == space().N - blocks[2].size
    assert back.to_xarray()["computed"].sum().compute() == space().N - blocks[2].size


def test_the_loser_of_a_creation_race_adopts_the_store(tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    clean = store_module._clean_leftovers

    def another_run_wins(target):  # the other run renames its store into place first
        clean(target)
        monkeypatch.setattr(store_module, "_clean_leftovers", clean)
        run(path)

    monkeypatch.setattr(store_module, "_clean_leftovers", another_run_wins)
    results = run(path)
    assert results.complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_leftovers_of_killed_runs_are_removed(tmp_path):
    path = tmp_path / "s.zarr"
    dead = tmp_path / ".s.zarr.creating-999999999-deadbeef"  # no such process
    live = tmp_path / f".s.zarr.creating-{os.getpid()}-0a0a0a0a"  # a run still creating
    for folder in (dead, live):
        folder.mkdir()
        (folder / "zarr.json").write_text("{}")
    run(path)
    assert not dead.exists() and live.exists()


def test_a_symlink_inside_a_store_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    run(path, chunk_size=25)
    outside = tmp_path / "outside"
    shutil.copytree(path / "m" / "c", outside)
    before = snapshot(outside)
    shutil.rmtree(path / "m" / "c")
    (path / "m" / "c").symlink_to(outside)
    (path / "labeled_spaces" / "done" / "c" / "0" / "0").unlink()  # a block to write
    with pytest.raises(ValueError, match="symbolic link"):
        run(path)
    assert snapshot(outside) == before


def test_a_block_that_cannot_be_written_is_an_os_error_naming_the_path(tmp_path):
    path = tmp_path / "s.zarr"
    run(path, chunk_size=25)
    blocks = _blocks_of(path)
    blocked = path / "m" / "c" / "1"
    shutil.rmtree(blocked)
    blocked.write_text("a file where a folder must be")
    writer = StoreWriter(str(path), ["m", "y"], blocks.step)
    block = blocks[blocks.counts[1]]  # the block at position (1, 0)
    leaves = [np.zeros(block.extent, np.float32), np.zeros((*block.extent, 4), np.float32)]
    with pytest.raises(StoreWriteError, match=str(path)) as info:
        writer.write(block, leaves)
    assert isinstance(info.value, OSError) and str(blocked) in info.value.filename


def test_a_store_written_without_zarr_reads_back_as_memory_does(tmp_path):
    # the metadata written without zarr is read by zarr and xarray as a store they made
    import xarray as xr

    path = tmp_path / "s.zarr"
    labels = dict(output_dims={"y": ("t",)}, output_coords={"t": (np.arange(4) * 0.5,
                                                                   {"units": "ms"})})
    sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 6),
                   "n": ls.DataAxis(np.ones((3, 2)), labels=["x", "yy", "zzz"])},
                  mode="product")
    fn = lambda s: {"y": s["a"] * jnp.arange(4.0), "c": (s["a"] * 4).astype(jnp.int32),  # noqa: E731
                    "z": s["a"] * (1 + 2j), "h": s["a"].astype(jnp.bfloat16)}
    stored = run(path, sp, fn, **labels)
    memory = ls.ParallelExecution(fn, sp, progress=False, **labels).run().to_xarray()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = xr.open_zarr(path)
    for name in ("y", "c", "z", "t", "a", "n", "n_value"):
        xr.testing.assert_identical(plain[name].compute(), memory[name])
    got = stored.to_xarray().compute()
    assert got["h"].dtype == memory["h"].dtype  # bfloat16, stored widened
    np.testing.assert_array_equal(got["h"].values.astype(np.float32),
                                  memory["h"].values.astype(np.float32))
    xr.testing.assert_identical(got.drop_vars("h"), memory.drop_vars("h"))


class _Slotted:
    __slots__ = ("gain",)

    def __init__(self, gain):
        self.gain = gain

    def __call__(self, x):
        return self.gain * x


def _scaled(state, scale):
    return {"y": state["a"] * scale(1.0)}


@pytest.mark.parametrize("first, second, said", [
    (_Slotted(1.0), _Slotted(2.0), r"args\[0\]\.fields\.gain: 1\.0 -> 2\.0"),
    (functools.partial(np.multiply, 1.0), functools.partial(np.multiply, 2.0),
     r"args\[0\]\.args\[0\]: 1\.0 -> 2\.0"),
], ids=["slots", "partial"])
def test_an_argument_s_slots_and_bound_arguments_are_inputs(tmp_path, first, second, said):
    # they were described by class only, so a changed one resumed with at most a warning
    path = tmp_path / "s.zarr"
    seq = {"jit": False, "progress": False, "store": path}
    ls.SequentialExecution(_scaled, space(n=2), first, **seq).run()
    before = snapshot(path)
    with pytest.raises(ValueError, match=said):
        ls.SequentialExecution(_scaled, space(n=2), second, **seq).run()
    assert snapshot(path) == before


class _Scaled(ls.AbstractAxis):
    """A user's own axis: open_results needs the state that holds it."""

    def __init__(self, n, scale, name=None, group=None, attrs=None):
        super().__init__(name=name, group=group, attrs=attrs)
        self.n, self.scale = n, scale

    def generate_values(self, key=None):
        return jnp.arange(self.n, dtype=jnp.float32) * self.scale

    @property
    def size(self):
        return self.n


@pytest.mark.parametrize("other, said", [
    ({"a": _Scaled(3, 2.0), "w": np.ones(2, np.float32)},
     r"axes\.a\.fields\.scale: 1\.0 -> 2\.0"),
    ({"a": _Scaled(3, 1.0), "w": np.zeros(2, np.float32)},  # refused as it is rebuilt
     r"made with: at 'w' the file holds array\(\[1\., 1\.\]"),
    ({"a": _Scaled(4, 1.0), "w": np.ones(2, np.float32)}, r"axes\.a\.fields\.n: 3 -> 4"),
], ids=["axis-field", "fixed-leaf", "axis-size"])
def test_open_results_refuses_a_state_other_than_the_run_s(tmp_path, other, said):
    # such a state was taken as given: the rebuilt space paired the values with a fixed leaf
    # (or an axis) they were not computed from
    state = {"a": _Scaled(3, 1.0), "w": np.ones(2, np.float32)}
    path = tmp_path / "custom.nc"
    ls.ParallelExecution(lambda s: {"y": s["a"] + s["w"].sum()}, ls.Space(state, mode="product"),
                         progress=False).run().to_netcdf(path)
    assert float(ls.open_results(path, state=state).space[2]["a"]) == 2.0
    with pytest.raises(ValueError, match=r"state must (be the state the results were computed "
                                         r"from|hold the fixed leaves).*" + said):
        ls.open_results(path, state=other)


@pytest.mark.parametrize("value", [3, [1, 2], np.float32(0.5), np.arange(3), "m"])
def test_labels_attrs_describe_the_same_run_after_netcdf(tmp_path, value):
    # netCDF gives attrs back as NumPy values (3 as np.int64, a list as an array)
    results = ls.ParallelExecution(
        lambda s: s["a"] * jnp.ones(2), space(n=3), progress=False,
        output_attrs={"result": {"x": value}}, output_dims={"result": "c"},
        output_coords={"c": (np.arange(2), {"n": value})}).run()
    results.to_netcdf(tmp_path / "r.nc")
    xr.testing.assert_identical(ls.open_results(tmp_path / "r.nc").to_xarray(),
                                results.to_xarray())


@pytest.mark.parametrize("leaf", ["key", "array"])
def test_a_state_path_named_key_or_array_is_compared_inside(tmp_path, leaf):
    # the axes, coords and fixed leaves are dicts keyed by the state's paths; one named 'key'
    # (the examples' noise key) made the whole dict read as one described key, so the
    # refusal showed 'axes: {"coupling": ... -> {"coupling": ...' clipped before any difference
    def noisy(state):
        return state["coupling"] + jax.random.uniform(state[leaf])

    def sweep(n):
        return ls.Space({"coupling": ls.GridAxis(0.0, 1.0, n), leaf: ls.KeyAxis(2)},
                        mode="product")

    path = tmp_path / "s.zarr"
    ls.ParallelExecution(noisy, sweep(3), store=path, progress=False).run()
    with pytest.raises(ValueError) as info:
        ls.ParallelExecution(noisy, sweep(5), store=path, progress=False).run()
    message = str(info.value)
    # cut back to the stored 3 labels (the growth rule), the labels differ, named inside
    assert "axes.coupling.values: float32[3] [0.0, 0.5, 1.0] -> float32[3] [0.0, 0.25, 0.5]" \
        in message
    assert "axes: " not in message and "coords: " not in message
    # a fixed key at that path is compared as the key it is
    fixed = ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 3), leaf: jax.random.key(1)},
                     mode="product")
    other = ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 3), leaf: jax.random.key(2)},
                     mode="product")
    ls.ParallelExecution(noisy, fixed, store=tmp_path / "f.zarr", progress=False).run()
    with pytest.raises(ValueError, match=rf'fixed\.{leaf}: \{{"key": \[0, 1\], .* -> '
                                         r'\{"key": \[0, 2\]'):
        ls.ParallelExecution(noisy, other, store=tmp_path / "f.zarr", progress=False).run()


def test_a_refusal_names_the_first_differences_of_each_kind_and_counts_the_rest(tmp_path):
    # a Latin hypercube of another n changes every axis's values: six axes made six long
    # 'old -> new' entries, before the explanation that alone says what to do
    def sweep(n):
        return ls.Space({name: ls.UniformAxis(0.0, 1.0, n) for name in "abcdef"}, mode="lhs")

    def total(state):
        return sum(state[name] for name in "abcdef")

    path = tmp_path / "s.zarr"
    ls.ParallelExecution(total, sweep(8), store=path, progress=False).run()
    with pytest.raises(ValueError) as info:
        ls.ParallelExecution(total, sweep(16), store=path, progress=False).run()
    message = str(info.value)
    assert message.count(" -> ") == 4 and "; and 8 more." in message  # 6 axes + 6 coords
    assert "axes.a.values" in message and "axes.f.values" not in message
    assert "a Latin hypercube, mode='lhs', draws a new design for each n" in message


@pytest.mark.parametrize("kind", ["zarr", "nc"])
def test_axis_attrs_with_numpy_values_describe_the_run_after_a_round_trip(tmp_path, kind):
    # a file gives an axis's attrs back as JSON values (np.float32(2.0) as 2.0, an array as
    # a list): the space it rebuilds was 'another space' to its own store and to state=
    state = {"g": ls.GridAxis(0.0, 1.0, 3, attrs={"units": "ms", "scale": np.float32(2.0),
                                                   "arr": np.arange(3), "pair": (1, 2)}),
             "dt": 0.1}

    def model(s):
        return s["g"] * s["dt"]

    store = tmp_path / "r.zarr"
    results = ls.ParallelExecution(model, ls.Space(state, mode="product"), progress=False,
                                   store=store).run()
    path = store if kind == "zarr" else tmp_path / "r.nc"
    if kind == "nc":
        results.to_netcdf(path)
    assert ls.open_results(path, state=state).space.N == 3
    again = ls.ParallelExecution(model, ls.open_results(path).space, progress=False,
                                 store=store).run()  # resumes: nothing left to compute
    np.testing.assert_array_equal(again.to_xarray()["result"], results.to_xarray()["result"])
