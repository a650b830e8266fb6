"""The overfitting study of examples/regularization.py: without regularization the oversized
network overfits, and the remedies close most of the train/validation gap."""

import matplotlib

matplotlib.use("Agg")

from nnx.overfitting import regularization  # noqa: E402


def test_regularization_study_closes_the_gap(tmp_path, monkeypatch):
    import nnx.plotting

    figures = []
    real_save = nnx.plotting.save_figure
    monkeypatch.setattr(nnx.plotting, "save_figure",
                        lambda fig, *a, **k: figures.append(fig) or real_save(fig, *a, **k))
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
    # the figure: every loss panel on one axis, and no curve runs off its top (the curves
    # are data losses, without the penalty that lifts fit's L1/L2 loss)
    (fig,) = figures
    panels = [ax for ax in fig.axes if ax.get_ylabel() == "data loss (no penalty)"]
    assert len(panels) == len(r)
    assert len({ax.get_ylim() for ax in panels}) == 1
    top = panels[0].get_ylim()[1]
    assert all(max(line.get_ydata()) <= top for ax in panels for line in ax.lines)
    assert all(len(ax.lines) == 2 for ax in panels)


def test_data_loss_is_the_evaluated_loss_without_the_penalty():
    from nnx.overfitting import DataLoss, noisy_moons
    import nnx

    X, y = noisy_moons(60, seed=3)
    net = nnx.Network([2, 16, 1], l2=0.1, seed=0)
    recorder = DataLoss(X, y)
    history = net.fit(X, y, epochs=4, batch_size=20, callbacks=[recorder])
    assert len(recorder.values) == 4
    assert recorder.values[-1] == net.evaluate(X, y)["loss"]
    assert recorder.values[-1] < history.history["loss"][-1]  # fit's loss adds the penalty


def test_the_blas_kernel_report_gives_each_row_its_spread():
    """benchmarks/regularization_blas.py's report on made-up runs (the runs themselves take
    half a minute per kernel)."""
    import sys
    from pathlib import Path

    bench = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, bench)
    try:
        import regularization_blas
    finally:
        sys.path.remove(bench)

    def run(train, val, epochs):
        return {"kernel": "K", "rows": {"none": {"train_acc": train, "val_acc": val,
                                                 "gap": train - val, "epochs": epochs}}}

    text = regularization_blas.report({"A": run(0.98, 0.736, 400), "B": None,
                                       "C": run(0.97, 0.732, 400)})
    assert "### B: not usable on this CPU" in text
    assert "| none | 0.010 | 0.004 | 0.006 | 0 |" in text
