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
    assert acc > 0.9 and info.get("float_accuracy", info.get("accuracy_before")) > 0.9
    assert info["test_samples"] == len(yte) == 450


def test_lstm_sparse_shape_and_density():
    proj = convert("lstm_sparse")
    lstm = next(n for n in proj.graph if n.op == "LSTM")
    assert lstm.units >= 64
    assert lstm.kernel.density == pytest.approx(0.10, abs=0.01)
    assert lstm.recurrent.density == pytest.approx(0.10, abs=0.01)
    assert lstm.state_type.width <= 16
    assert proj.graph.input.shape == (8, 8)


def test_lstm_lba_is_balanced_over_8_pes():
    """The ESE-pruned zoo model: every PE holds (nearly) the same non-zeros after quantization."""
    from hlsgen.compress.prune import imbalance

    lstm = next(n for n in convert("lstm_lba").graph if n.op == "LSTM")
    m = np.vstack([lstm.kernel.raw, lstm.recurrent.raw])
    b = imbalance(m, 8)
    k = round(0.1 * m.size / 8)
    assert b["max"] <= k and b["imbalance"] < 1.02  # a few weights quantize to zero
    plain = next(n for n in convert("lstm_sparse").graph if n.op == "LSTM")  # magnitude-pruned
    assert imbalance(np.vstack([plain.kernel.raw, plain.recurrent.raw]), 8)["imbalance"] > 1.2
