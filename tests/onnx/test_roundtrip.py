"""``import_model(export(...))`` round-trips every built-in layer family: the re-imported model
gives the original's outputs, and its parameters are the original's, by value."""

import numpy as np
import optree
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import axon_fn  # noqa: E402
from axon_fn import onnx as axon_onnx  # noqa: E402
from axon_fn.model_state import flatten_paths  # noqa: E402

from .test_export import CASES, TEMPLATE_BATCH, _inputs, _randomize  # noqa: E402


def _arrays(state):
    """Every array of a state, as a sorted list of (shape, dtype, bytes)."""
    leaves = [v for part in state for v in flatten_paths(part).values()]
    return sorted((np.shape(v), np.dtype(v.dtype).str, np.asarray(v).tobytes()) for v in leaves)


def _leaves(out):
    return optree.tree_leaves(out) if not isinstance(out, np.ndarray) else [out]


@pytest.mark.parametrize("build", [c[2] for c in CASES], ids=[c[0] for c in CASES])
def test_export_then_import_round_trips(build):
    model, specs = build()
    template = _inputs(specs, TEMPLATE_BATCH, 0)
    state = _randomize(axon_fn.init(model, template, 0))
    back, back_state = axon_onnx.import_model(axon_onnx.export(model, state, None, template))

    original = _arrays(state)
    reimported = _arrays(back_state)
    missing = [a for a in original if a not in reimported]
    assert not missing, f"{len(missing)} parameters did not come back by value"
    for batch in (TEMPLATE_BATCH, 1):
        inputs = _inputs(specs, batch, 7)
        want = axon_fn.predict(model, state, inputs)
        got = axon_fn.predict(back, back_state, inputs)
        if isinstance(got, dict) and not isinstance(want, dict):
            got = got["output"]
        for w, g in zip(_leaves(want), _leaves(got) if not isinstance(got, dict) else
                        [got[".".join(map(str, p))] for p in optree.tree_paths(want)]):
            assert np.shape(g) == np.shape(w)
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
