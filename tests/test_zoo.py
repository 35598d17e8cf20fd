"""Zoo models: the reference equals QKeras on every held-out digit; recorded accuracies hold."""

from __future__ import annotations

import numpy as np
import pytest

from hlsgen import convert, zoo

from .keras_helpers import assert_exact

pytestmark = pytest.mark.keras
pytest.importorskip("qkeras")


@pytest.fixture(scope="module")
def heldout():
    from hlsgen.zoo.build import digits

    _, xte, _, yte = digits()
    return xte.astype(np.float64), yte


@pytest.mark.parametrize("name", zoo.NAMES)
def test_zoo_model_exact_on_every_heldout_image(name, heldout):
    from hlsgen.frontends.keras.loader import load_model_file

    xte, yte = heldout
    model = load_model_file(zoo.path(name))
    shape = model.input_shape[1:]
    x = xte.reshape((-1,) + tuple(shape))
    proj, mode = assert_exact(model, x=x, label=f"zoo {name}")
    # the recorded quantized accuracy is what the reference measures, and it is real
    info = zoo.info(name)
    acc = float(np.mean(np.argmax(proj.predict(x), -1) == yte))
    assert acc == pytest.approx(info["quantized_accuracy"], abs=1e-4)
    assert acc > 0.9 and info["float_accuracy"] > 0.9
    assert info["test_samples"] == len(yte) == 450


def test_lstm_sparse_shape_and_density():
    proj = convert("lstm_sparse")
    lstm = next(n for n in proj.graph if n.op == "LSTM")
    assert lstm.units >= 64
    assert lstm.kernel.density == pytest.approx(0.10, abs=0.01)
    assert lstm.recurrent.density == pytest.approx(0.10, abs=0.01)
    assert lstm.state_type.width <= 16
    assert proj.graph.input.shape == (8, 8)
