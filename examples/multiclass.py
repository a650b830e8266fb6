"""Multi-class networks: a 3-class spiral with its decision regions, and handwritten digits
with a confusion matrix, the misclassified images and the classification report (writes
multiclass_spiral.png and multiclass_digits.png).

The lesson's third exercise. The spiral's labels are strings: nnx learns the label set
(``classes_``), trains a softmax over three logits, and ``predict`` answers in strings. The
digits part uses the scikit-learn face of nnx (:class:`nnx.sklearn.NNXClassifier` in a
``Pipeline``) with the configuration documented to reach 0.975+ test accuracy, and scores it
with :mod:`nnx.metrics`.

Run::

    python examples/multiclass.py [--backend B] [--device D] [--out DIR] [--quick]
"""

import sys
import warnings
from pathlib import Path

import numpy as np

import nnx
from nnx import metrics
from nnx.datasets import make_spiral, train_test_split
from nnx.demos import run_example
from nnx.plotting import plot_confusion_matrix, plot_decision_boundary

ARMS = np.array(["arm A", "arm B", "arm C"])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    return plt


def spiral(out, backend, device, quick, dpi):
    """Three interleaved spiral arms: no straight line separates any of them."""
    X, idx = make_spiral(300 if quick else 600, n_classes=3, noise=0.2, seed=0)
    y = ARMS[idx]  # string labels, on purpose
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0)
    net = nnx.Network([2, 64, 64, 3], activation="relu", optimizer="adam", learning_rate=0.01,
                      backend=backend, device=device, seed=0)
    history = net.fit(X_train, y_train, epochs=60 if quick else 200, batch_size=32)
    train_acc = metrics.accuracy_score(y_train, net.predict(X_train))
    test_acc = metrics.accuracy_score(y_test, net.predict(X_test))
    print(f"spiral: classes_={net.classes_.tolist()}, loss {history.history['loss'][-1]:.3f}, "
          f"train accuracy {train_acc:.3f}, test accuracy {test_acc:.3f}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    plot_decision_boundary(net, X_train, y_train, ax=ax, X_test=X_test, y_test=y_test,
                           resolution=100 if quick else 250, margin=0.2,
                           title=f"3-class spiral, softmax ({test_acc:.1%} test accuracy)")
    path = nnx.plotting.save_figure(fig, Path(out) / "multiclass_spiral.png", dpi)
    return {"spiral_train_accuracy": train_acc, "spiral_test_accuracy": test_acc,
            "files": [str(path)]}


def digits(out, backend, device, quick, dpi):
    """8x8 handwritten digits, 10 classes, the documented NNXClassifier configuration."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split as stratified_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from nnx.sklearn import NNXClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = stratified_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    model = make_pipeline(StandardScaler(), NNXClassifier(
        dtype="float32", random_state=0, backend=backend, device=device,
        max_iter=30 if quick else 200))
    with warnings.catch_warnings():
        if quick:  # 30 epochs stop short of convergence on purpose
            warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    pred = model.predict(X_test)
    proba = model.predict_proba(X_test)
    acc = metrics.accuracy_score(y_test, pred)
    top2 = metrics.top_k_accuracy_score(y_test, proba, k=2)
    print(f"digits: {model[-1].n_iter_} epochs, test accuracy {acc:.4f}, top-2 {top2:.4f}, "
          f"log loss {metrics.log_loss(y_test, proba):.4f}")
    print(metrics.classification_report(y_test, pred, digits=3))

    plt = _pyplot()
    wrong = np.flatnonzero(pred != y_test)
    fig, (ax_cm, ax_img, ax_txt) = plt.subplots(
        1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1.0, 1.0, 0.9]})
    plot_confusion_matrix(metrics.confusion_matrix(y_test, pred), labels=model.classes_,
                          ax=ax_cm, title=f"Digits: confusion matrix ({acc:.1%} accuracy)")
    _mosaic(ax_img, X_test, y_test, pred, wrong[:24])
    ax_img.set_title(f"misclassified ({len(wrong)} of {len(y_test)}): true → predicted")
    ax_txt.axis("off")
    ax_txt.text(0.0, 0.97, metrics.classification_report(y_test, pred, digits=3),
                family="monospace", fontsize=8.5, va="top")
    ax_txt.set_title("nnx.metrics.classification_report")
    path = nnx.plotting.save_figure(fig, Path(out) / "multiclass_digits.png", dpi)
    return {"digits_test_accuracy": acc, "digits_top2_accuracy": top2,
            "digits_misclassified": int(len(wrong)), "files": [str(path)]}


def _mosaic(ax, images, truth, pred, rows_shown, cols=6):
    """Misclassified 8x8 digits tiled into one image (one axes: fast to draw)."""
    rows = max(1, -(-len(rows_shown) // cols))
    tile = 11  # 8 pixels, 3 of space for the caption
    canvas = np.full((rows * tile, cols * tile - 3), np.nan)
    for k, i in enumerate(rows_shown):
        r, c = divmod(k, cols)
        canvas[r * tile + 3:r * tile + 11, c * tile:c * tile + 8] = images[i].reshape(8, 8)
        ax.text(c * tile + 3.5, r * tile + 1.6, f"{truth[i]} → {pred[i]}", ha="center",
                va="center", fontsize=9, color="firebrick")
    ax.imshow(np.ma.masked_invalid(canvas), cmap="gray_r", interpolation="nearest")
    ax.axis("off")


def multiclass(out="nnx-output", backend="numpy", device=None, quick=False, dpi=100):
    """A 3-class spiral and the digits data set, with nnx.metrics and nnx.plotting."""
    Path(out).mkdir(parents=True, exist_ok=True)
    result = spiral(out, backend, device, quick, dpi)
    more = digits(out, backend, device, quick, dpi)
    result["files"] += more.pop("files")
    result.update(more)
    print("wrote", ", ".join(result["files"]))
    return result


def main(argv=None) -> int:
    return run_example(multiclass, argv)


if __name__ == "__main__":
    sys.exit(main())
