"""The overfitting study of examples/regularization.py: without regularization the oversized
network overfits, and the remedies close most of the train/validation gap."""

import matplotlib

matplotlib.use("Agg")

from nnx.overfitting import regularization  # noqa: E402


def test_regularization_study_closes_the_gap(tmp_path):
    result = regularization(out=tmp_path, quick=True, dpi=40)
    r = result["results"]
    gap = r["none"]["gap"]
    assert gap > 0.12, r["none"]          # train accuracy well above validation
    for name in ("L2(3e-2)", "L1(1e-2)", "dropout 0.5", "early stopping",
                 "L2 + dropout + early stop"):
        assert r[name]["gap"] < 0.5 * gap, (name, r[name], gap)
    # batch norm is reported but not asserted: its regularizing effect (batch noise) is not
    # visible at this size, and the study shows that honestly.
    assert r["early stopping"]["epochs"] < 150
    (path,) = result["files"]
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
