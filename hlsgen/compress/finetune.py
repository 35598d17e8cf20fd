"""Fine-tuning that keeps a compressed model compressed, with optional distillation.

One loop serves every step.  It holds, per weight matrix:

* a **mask** (pruning): gradients of pruned weights are dropped and the weights stay zero;
  a ``schedule`` may recompute the masks as training goes (gradual magnitude pruning);
* a **codebook** (weight sharing): the matrix is ``centroids[index]``; the centroids are
  what trains, each with the sum of its weights' gradients (Deep Compression);
* a **frozen** part (INQ): weights already fixed to powers of two keep their values.

The loss is cross-entropy on the labels, or Hinton's distillation: the student matches the
teacher's temperature-softened outputs, ``alpha * T^2 * KL(p_T(teacher) || p_T(student)) +
(1 - alpha) * CE(labels, student)``.  For CNNs, attention transfer (Zagoruyko & Komodakis
2017) may be added: at each spatial resolution the student's attention map (the channel mean
of squared activations, L2-normalised) follows the teacher's, ``beta/2 * mean((q_s - q_t)^2)``
summed over the resolutions.  Training is seeded and the batches are drawn in a fixed order,
so a run is repeatable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .chain import output_is_probability


@dataclass
class Distill:
    teacher_logits: np.ndarray  # [N, classes] on the training data
    temperature: float = 4.0
    alpha: float = 0.7
    attention: float = 0.0  # beta of attention transfer (0: none)
    teacher_maps: dict = field(default_factory=dict)  # (H, W) -> [N, H*W] normalised attention maps


def attention_map(a):
    """``a`` [N, H, W, C] -> [N, H*W]: the channel mean of a^2, L2-normalised per sample."""
    import tensorflow as tf

    q = tf.reshape(tf.reduce_mean(tf.square(a), -1), [tf.shape(a)[0], -1])
    return tf.math.l2_normalize(q, axis=1)


def resolution_outputs(model) -> dict:
    """``{(H, W): layer}``: the last layer of each spatial resolution of a CNN, in order."""
    out: dict = {}
    for layer in model.layers:
        shape = getattr(layer, "output_shape", None)
        if isinstance(shape, tuple) and len(shape) == 4 and shape[1] and shape[2]:
            out[(int(shape[1]), int(shape[2]))] = layer
    return out


def teacher_attention(teacher, x) -> dict:
    """The teacher's attention maps on ``x`` at each of its spatial resolutions (fine-tuning
    uses those the student has too)."""
    import tensorflow as tf

    t_layers = resolution_outputs(teacher)
    keys = list(t_layers)
    if not keys:
        return {}
    probe = tf.keras.Model(teacher.inputs, [t_layers[k].output for k in keys])
    outs = probe.predict(x, verbose=0, batch_size=256)
    outs = outs if isinstance(outs, list) else [outs]
    return {k: np.asarray(attention_map(tf.constant(o)), np.float32) for k, o in zip(keys, outs, strict=True)}


@dataclass
class Hold:
    """What fine-tuning keeps fixed, by variable (keyed by ``id`` of the tf.Variable)."""

    masks: dict = field(default_factory=dict)  # id -> (variable, float32 mask)
    codebooks: dict = field(default_factory=dict)  # layer name -> (variables, Codebook)
    frozen: dict = field(default_factory=dict)  # id -> (variable, bool mask, values)

    def mask(self, variable, m):
        self.masks[id(variable)] = (variable, np.asarray(m, np.float32))

    def apply(self, tf_centroids=None):
        """Put every held variable back into its held form (after an optimizer step)."""
        for v, m in self.masks.values():
            v.assign(v.numpy() * m)
        for name, (variables, book) in self.codebooks.items():
            c = None if tf_centroids is None else tf_centroids[name].numpy()
            for v, w in zip(variables, book.weights(c), strict=True):
                v.assign(w)
        for v, fixed, values in self.frozen.values():
            v.assign(np.where(fixed, values, v.numpy()))


def logits_of(model, outputs):
    """Logits from the model's outputs (log-probabilities when it ends in a softmax; the
    softmax of either is the same)."""
    import tensorflow as tf

    if output_is_probability(model):
        return tf.math.log(tf.clip_by_value(outputs, 1e-12, 1.0))
    return outputs


def accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0, batch_size=256), -1) == y))


def finetune(
    model,
    x,
    y,
    epochs: int,
    hold: Hold | None = None,
    distill: Distill | None = None,
    schedule: Callable[[int, int], None] | None = None,
    lr: float = 1e-3,
    batch: int = 32,
    seed: int = 0,
) -> None:
    """Train ``model`` in place for ``epochs`` with ``hold`` kept; ``schedule(step, steps)``
    runs before every step (it may change the masks)."""
    import tensorflow as tf

    hold = hold or Hold()
    rng = np.random.default_rng(seed)
    n = len(x)
    per_epoch = max(1, (n + batch - 1) // batch)
    steps = epochs * per_epoch
    if steps == 0:
        hold.apply()
        return
    shared = {id(v) for vs, _ in hold.codebooks.values() for v in vs}
    plain = [v for v in model.trainable_variables if id(v) not in shared]
    centroids = {
        name: tf.Variable(book.centroids.astype(np.float32), name=f"{name}_centroids")
        for name, (_, book) in hold.codebooks.items()
    }
    opt = tf.keras.optimizers.Adam(lr)
    opt.build(plain + list(centroids.values()))
    probs = output_is_probability(model)
    ce = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=not probs)
    maps = distill.teacher_maps if distill is not None and distill.attention > 0 else {}
    keys = [k for k in maps if k in resolution_outputs(model)]
    net = model
    if keys:  # the student's feature maps at the teacher's resolutions, beside its output
        s_layers = resolution_outputs(model)
        net = tf.keras.Model(model.inputs, [model.outputs[0]] + [s_layers[k].output for k in keys])

    @tf.function(reduce_retracing=True)
    def grads(xb, yb, tb, *qb):
        with tf.GradientTape() as tape:
            outs = net(xb, training=True)
            out = outs[0] if keys else outs
            loss = ce(yb, out)
            if distill is not None:
                t = distill.temperature
                s_logits = logits_of(model, out)
                p_t = tf.nn.softmax(tb / t)
                kl = tf.reduce_mean(
                    tf.reduce_sum(p_t * (tf.math.log(p_t + 1e-12) - tf.nn.log_softmax(s_logits / t)), -1)
                )
                loss = (1.0 - distill.alpha) * loss + distill.alpha * t * t * kl
            for a, q in zip(outs[1:] if keys else [], qb, strict=True):
                loss += 0.5 * distill.attention * tf.reduce_mean(tf.square(attention_map(a) - q))
        return tape.gradient(loss, model.trainable_variables)

    teacher = distill.teacher_logits.astype(np.float32) if distill is not None else np.zeros((n, 1), np.float32)
    hold.apply()
    step = 0
    index_of = {id(v): i for i, v in enumerate(model.trainable_variables)}
    for _ in range(epochs):
        order = rng.permutation(n)
        for b in range(per_epoch):
            if schedule is not None:
                schedule(step, steps)
            idx = order[b * batch : (b + 1) * batch]
            g = grads(
                tf.constant(x[idx]), tf.constant(y[idx]), tf.constant(teacher[idx]), *[maps[k][idx] for k in keys]
            )
            pairs = []
            for v in plain:
                gv = g[index_of[id(v)]]
                if gv is None:
                    continue
                if id(v) in hold.masks:
                    gv = gv * hold.masks[id(v)][1]
                if id(v) in hold.frozen:
                    gv = gv * (~hold.frozen[id(v)][1]).astype(np.float32)
                pairs.append((gv, v))
            for name, (variables, book) in hold.codebooks.items():
                k = len(book.centroids)
                gc = tf.zeros([k + 1])
                for v, ix in zip(variables, book.index, strict=True):
                    seg = np.where(ix < 0, k, ix).ravel()
                    gc += tf.math.unsorted_segment_sum(tf.reshape(g[index_of[id(v)]], [-1]), seg, k + 1)
                pairs.append((gc[:k], centroids[name]))
            opt.apply_gradients(pairs)
            hold.apply(centroids if centroids else None)
            step += 1
    for name, (_, book) in hold.codebooks.items():
        book.centroids = centroids[name].numpy()
