"""The training loop: ``fit``'s arguments, validation data, weights, epochs and callbacks.

:func:`fit` is what ``Network.fit`` runs. It checks the arguments, moves the data to the
device once, splits off validation rows, builds per-row weights, then :func:`run_epochs`
trains: batches from :class:`~nnx.data.EpochBatches`, one :meth:`Network.step` per batch
(no host synchronisation), the epoch's loss read once with the
:class:`~nnx.guard.DivergenceGuard`'s check, validation scores, and the callbacks. The
loop uses only the network's public engine protocol (``prepare``, ``step``, ``snapshot``,
``restore``, ``scores``, ...).
"""

from __future__ import annotations

import math

import numpy as np

from .callbacks import History, batch_callbacks, check_callbacks, with_progress
from .checks import (check_batch_size, check_bool, check_choice, check_number,
                     check_sample_weight, check_targets)
from .data import EpochBatches
from .diagnostics import FitWatch
from .distributed import data_parallel
from .guard import DivergenceGuard
from .sources import (ArrayDataset, BatchWeights, IterableSource, Rows, StreamBatches,
                      Weighted, is_streamed, source_for, targets_of, weight_column)


def fit(net, X, y=None, epochs=100, batch_size=32, shuffle=True, verbose=0, callbacks=None,
        validation_split=None, validation_data=None, sample_weight=None, class_weight=None,
        on_nonfinite="raise", classes=None, steps_per_epoch=None, prefetch=2,
        distributed=None) -> History:
    """Train ``net``; see :meth:`nnx.Network.fit` for the arguments."""
    plan = data_parallel(distributed)
    epochs = check_number("epochs", epochs, low=0, integer=True)
    batch_size = check_batch_size(batch_size)
    check_choice("on_nonfinite", on_nonfinite, ("raise", "warn"))
    check_choice("verbose", verbose, (0, 1, 2))
    if net.optimizer.needs_closure:
        batch_size = None  # LBFGS: one full-batch step per epoch
    callbacks = check_callbacks(callbacks)
    if shuffle != "block":
        shuffle = check_bool("shuffle", shuffle)
    if steps_per_epoch is not None:
        steps_per_epoch = check_number("steps_per_epoch", steps_per_epoch, low=1, integer=True)
    prefetch = check_number("prefetch", prefetch, low=0, integer=True)
    if validation_split is not None:
        check_number("validation_split", validation_split, low=0, high=1, low_open=True,
                     high_open=True)
    if plan is not None:  # what every rank of a data-parallel fit must share
        plan.settings = {
            "epochs": epochs, "shuffle": shuffle,
            # a divergence ends every rank's fit alike only if every rank raises it
            "on_nonfinite": on_nonfinite,
            "the validation": (validation_split is not None, validation_data is not None),
            "the callbacks that run on every rank": [
                type(cb).__name__ for cb in callbacks if not cb.rank_zero_only]}
        plan.verbose = verbose  # this rank's; the start makes it the largest of any rank
    failure = None  # what a data-parallel fit's end must know (plan.end)
    try:
        if plan is not None:
            plan.open()
        # a list without y is a list of (X, y) batches; with y it is data (rows)
        if is_streamed(X) or (y is None and isinstance(X, (list, tuple))):
            batches, validation = streamed(net, X, y, batch_size, classes, steps_per_epoch,
                                           prefetch, validation_split, validation_data,
                                           sample_weight, class_weight, plan)
            watch = FitWatch.for_source(net, batches.source)  # unscaled inputs; a loss that grew
        else:
            if y is None:
                raise ValueError("y is missing: fit(X, y) with arrays needs the targets")
            Xd = net.prepare(X)
            n = Xd.shape[0]
            y_host = check_targets(y, n)
            net.learn_targets(y_host, classes)
            Yd = net.encode_targets(y_host, n)
            Wd = sample_weights(net, sample_weight, class_weight, y_host, n)
            if plan is not None:  # before the split: rank 0's shuffle stream draws it
                plan.begin(net, n, batch_size)
            validation = None
            if validation_data is not None:
                validation = validation_pair(net, validation_data)
            elif validation_split is not None:
                (Xd, Yd, Wd), validation = split(net, (Xd, Yd, Wd), validation_split)
            net.adapt_inputs(Xd)  # input scaling from the training rows, at the first fit
            if plan is not None:
                plan.share_scaling(net)
                batches = plan.batches(net, lambda size, shard: EpochBatches(
                    (Xd, Yd, Wd), size, net.random, net.ctx, shard=shard), batch_size)
            else:
                net.check_batch_rows(Xd.shape[0], batch_size)
                batches = EpochBatches((Xd, Yd, Wd), batch_size, net.random, net.ctx)
            watch = FitWatch.for_arrays(net, X, Xd, Yd, Wd)  # unscaled inputs; a loss that grew

        if plan is not None:  # any rank's: the accuracy is counted on every rank
            verbose = plan.verbose
        history = History()
        cbs = [history, net.history_, watch] + callbacks
        net.metrics_names = ["loss"]
        if validation is not None:
            net.metrics_names += ["val_" + key for key in metric_keys(net)]
        if verbose:  # Keras's bar (1) or line (2) per epoch, with a classifier's accuracy
            cbs = with_progress(net, cbs, epochs, verbose, len(batches) or None)
        if plan is not None and plan.rank != 0:  # one progress bar, one set of files and warnings
            cbs = [cb for cb in cbs if not getattr(cb, "rank_zero_only", False)]
        for cb in cbs:
            cb.set_network(net)
        if plan is not None:  # the ranks' validation scores and layer state agree each epoch
            validation = plan.validator(net, validation, metric_keys(net))
            plan.install(net)
        with net.ctx.errstate():
            run_epochs(net, batches, epochs, shuffle, cbs, validation,
                       DivergenceGuard(net, on_nonfinite))
        if plan is not None:
            plan.agree_state(net)  # one model on every rank
    except BaseException as error:
        failure = error
        raise
    finally:
        if plan is not None:
            plan.end(net, failure)
    return history


def streamed(net, X, y, batch_size, classes, steps_per_epoch, prefetch, validation_split,
             validation_data, sample_weight, class_weight, plan=None):
    """The batches and validation data of a source read batch by batch (:mod:`nnx.sources`):
    the classes learned first, validation from a second source or a held-out tail.

    Weights: ``sample_weight`` (an array, memmap or ``.npy`` path with one weight per row of
    a source with rows) is read with the rows; an iterable gives them as the third element
    of each batch, ``(X, y, w)``. ``class_weight`` multiplies them batch by batch, its
    ``"balanced"`` counts taken from the label pass over the training rows. A held-out tail
    is scored unweighted, as a validation split in memory is.
    """
    source = source_for(X, y)
    iterable = isinstance(source, IterableSource)
    if plan is not None and iterable:
        raise ValueError("a data-parallel fit reads rows of a source by position: pass an "
                         "array, a memmap, a .npy path or a dataset (len and take), not an "
                         "iterable of batches")
    weights = None
    if sample_weight is not None:
        if iterable:
            raise ValueError("an iterable source gives its weights as the third element of "
                             "each batch, (X, y, w); sample_weight= is for arrays, memmaps "
                             "and datasets")
        weights = weight_column(sample_weight, len(source))  # one per row, before the split
    validation = None
    if validation_split is not None and validation_data is None:
        source, validation = held_out_tail(source, validation_split)  # scored in chunks
    if not net.built:
        net.build(_feature_count(source))
    labels = None
    if net.targets_ is None:  # a network that knows its labels checks them batch by batch
        labels = targets_of(source, classes)
        net.learn_targets(labels, classes)
    if plan is not None:  # before the input scaling: it is part of the network's config
        plan.begin(net, len(source), batch_size)
    net.adapt_inputs(source)  # input scaling from the training rows, at the first fit
    if plan is not None:
        plan.share_scaling(net)
    if weights is not None:
        source = Weighted(source, weights[:len(source)])
    per_class = None
    if class_weight is not None:
        if class_weight == "balanced" and (classes is not None or labels is None):
            labels = _every_label(source)  # the counts need every label
        per_class = net.targets_.per_class_weights(class_weight, labels)
    if validation_data is not None:  # after the labels: classes= holds for it too
        validation = validation_pair(net, validation_data)
    if plan is not None:  # each rank reads only its part of each batch
        return plan.batches(net, lambda size, shard: StreamBatches(
            net, source, size, prefetch, steps_per_epoch, BatchWeights(net, per_class),
            shard=shard), batch_size, min_rows=1), validation
    batches = StreamBatches(net, source, batch_size, prefetch, steps_per_epoch,
                            BatchWeights(net, per_class))
    if batches.map_style:
        net.check_batch_rows(batches.n_rows, batch_size)
    return batches, validation


def _every_label(source):
    """Every training label of a source, for ``class_weight="balanced"``'s counts."""
    if isinstance(source, IterableSource) and source.one_shot:
        raise ValueError("class_weight='balanced' counts the labels in a pass over the "
                         "source, which a one-shot iterator cannot give: pass a dict of "
                         "class weights, or a callable that returns a new iterator")
    return targets_of(source)


def held_out_tail(source, fraction):
    """The last ``fraction`` of a dataset's rows as validation data (a contiguous block: a
    random subset would mean one random read per row)."""
    fraction = check_number("validation_split", fraction, low=0, high=1, low_open=True,
                            high_open=True)
    if isinstance(source, IterableSource):
        raise ValueError("validation_split needs a source with rows (an array, memmap or "
                         "dataset); give an iterable source validation_data= instead")
    n = len(source)
    n_val = int(round(n * fraction))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(f"validation_split={fraction} of {n} rows leaves {n - n_val} for "
                         f"training and {n_val} for validation; both need at least one")
    return Rows(source, 0, n - n_val), Rows(source, n - n_val, n)


def _feature_count(source) -> int:
    if isinstance(source, ArrayDataset):
        return int(source.X.shape[1])
    if isinstance(source, IterableSource):
        if source.one_shot:
            raise ValueError("a network trained from a one-shot iterator needs its input "
                             "width up front: Network(..., input_dim=)")
        first = next(source.fresh(), None)
        if first is None:
            raise ValueError("the data source gave no batch")
        return int(np.asarray(first[0]).shape[1])
    return int(np.asarray(source.take(np.arange(1))[0]).shape[1])


def metric_keys(net) -> list:
    """What ``scores`` reports: the loss, and the accuracy of a classifier."""
    return ["loss"] if net.targets_.kind == "regression" else ["loss", "accuracy"]


def sample_weights(net, sample_weight, class_weight, y_host, n):
    """Per-row weights as a ``(n, 1)`` device array, or ``None`` (the fast path)."""
    if sample_weight is None and class_weight is None:
        return None
    dtype = net.ctx.dtype_name
    w = np.ones(n)
    if sample_weight is not None:
        w = check_sample_weight(sample_weight, n, dtype)
    if class_weight is not None:
        w = w * net.targets_.class_weights(class_weight, y_host)
        # the product must still weigh something and fit the dtype
        w = check_sample_weight(w, n, dtype, "sample_weight * class_weight")
    return net.ctx.asarray(w.reshape(n, 1))


def validation_pair(net, validation_data):
    """``(X_val, Y_val)`` on the device from the user's pair; a streamed ``X_val`` stays a
    source, scored in chunks."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError("validation_data must be a pair (X_val, y_val)")
    Xv, yv = validation_data
    if is_streamed(Xv):
        return source_for(Xv, yv)
    Xv = net.prepare(Xv)
    return Xv, net.encode_targets(yv, Xv.shape[0])


def split(net, arrays, fraction):
    """Random train/validation split on the device (the data already crossed once): the
    training ``arrays`` and the validation ``(X, Y)``."""
    n = arrays[0].shape[0]
    fraction = check_number("validation_split", fraction, low=0, high=1, low_open=True,
                            high_open=True)
    n_val = int(round(n * fraction))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(
            f"validation_split={fraction} of {n} rows leaves {n - n_val} for training and "
            f"{n_val} for validation; both need at least one"
        )
    xp = net.ctx.xp
    order = net.random.shuffle.permutation(n)
    train_idx = net.ctx.asarray(np.sort(order[n_val:]), dtype=xp.int64)
    val_idx = net.ctx.asarray(np.sort(order[:n_val]), dtype=xp.int64)

    def take(rows):
        return tuple(None if a is None else xp.take(a, rows, axis=0) for a in arrays)
    return take(train_idx), take(val_idx)[:2]


def run_epochs(net, batches, epochs, shuffle, callbacks, validation=None, guard=None):
    """The epoch loop over ``batches`` (:class:`~nnx.data.EpochBatches`).

    ``validation``: device arrays ``(X, Y)``, a source scored in chunks, or a callable
    returning the scores (a data-parallel fit's, see
    :meth:`nnx.distributed.DataParallel.validator`).

    ``guard`` (a :class:`~nnx.guard.DivergenceGuard`) checks each epoch; ``None`` runs
    without one (the loss is still read once per epoch), which only measurements of the
    guard's own cost should do.
    """
    net.stop_training = False
    net.diverged_ = None
    grad_cbs = batch_callbacks(callbacks)
    for cb in callbacks:
        cb.on_train_begin()
    step = net.step
    try:
        for epoch in range(epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            data = batches.epoch(shuffle)
            if guard is not None:
                guard.begin_epoch()
            total, seen = 0.0, 0.0
            for (xb, yb, wb), rows in batches(data):
                total = total + step(xb, yb, wb, grad_cbs) * rows
                seen += rows
            loss = guard.epoch_loss(total) if guard is not None else float(total)
            logs = {"loss": loss / seen}
            if not math.isfinite(logs["loss"]) and guard is not None:
                guard.diverged(epoch, batches, data)  # raises, or warns and we stop:
                for cb in callbacks:  # the epoch's logs say NaN for every key, as Keras's
                    cb.on_epoch_end(epoch, dict.fromkeys(net.metrics_names, math.nan))
                break
            if validation is not None:
                if callable(validation):  # a data-parallel fit's agreed scores
                    scores = validation()
                elif isinstance(validation, tuple):
                    scores = net.scores(*validation)
                else:  # a source: in chunks
                    scores = net.evaluate(validation, None)
                logs.update({"val_" + key: value for key, value in scores.items()})
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if net.stop_training:
                break
    finally:  # progress bars close and EarlyStopping restores, even on divergence
        getattr(batches, "close", lambda: None)()  # a streamed source's prefetch thread
        for cb in callbacks:
            cb.on_train_end()
