"""The MPNet teacher (training.teacher) on a small random MPNet: the split forward, the state cache, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.teacher import (
    FrozenStates,
    TeacherOptions,
    TopLayers,
    _encode_frozen,
    _Labelled,
    frozen_states,
    predict,
    train_teacher,
)

transformers = pytest.importorskip("transformers")


class _WordIds:
    """A tokenizer for the tests: one id per word (ids 3..), with MPNet's <s> 0 and </s> 2 around them."""

    def __call__(self, texts, truncation=True, max_length=128):
        ids = [[0] + [3 + int(w) for w in t.split()][: max_length - 2] + [2] for t in texts]
        return {"input_ids": ids}


def _tiny_mpnet(layers: int = 4) -> torch.nn.Module:
    config = transformers.MPNetConfig(vocab_size=40, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
                                      intermediate_size=64, max_position_embeddings=80)
    torch.manual_seed(0)
    return transformers.MPNetModel(config).eval()


def _texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Random word-id sentences, half of them holding word 5: label +2 with it, -2 without (a task to learn)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        words = rng.integers(0, 20, size=rng.integers(2, 12))
        words[words == 5] = 6
        if i % 2:
            words[rng.integers(0, len(words))] = 5
        texts.append(" ".join(map(str, words)))
        labels.append(2.0 if i % 2 else -2.0)
    return texts, np.array(labels, np.float32)


def test_top_layers_over_frozen_states_give_the_whole_models_output():
    model = _tiny_mpnet()
    texts, _ = _texts(9, seed=1)
    ids = _WordIds()(texts)["input_ids"]
    longest = max(map(len, ids))
    batch = torch.tensor([x + [1] * (longest - len(x)) for x in ids])
    mask = torch.tensor([[1] * len(x) + [0] * (longest - len(x)) for x in ids])
    with torch.inference_mode():
        whole = model(input_ids=batch, attention_mask=mask)[0]
    states = _encode_frozen(texts, _WordIds(), model, frozen=3, max_tokens=64, what="test", tokens_per_batch=20)
    assert len(model.encoder.layer) == 4  # the model is given back whole
    assert states.offsets.tolist() == np.concatenate([[0], np.cumsum([len(x) for x in ids])]).tolist()
    top = TopLayers(model.encoder, first=3, width=32).eval()
    x, m = states.batch(range(len(texts)))
    with torch.inference_mode():
        split = top.hidden(x, m)
    valid = mask.bool()
    assert torch.equal(m, valid)
    # float16 storage of the frozen states is the only difference
    np.testing.assert_allclose(split[valid].numpy(), whole[valid].numpy(), atol=2e-2)
    with torch.inference_mode():
        model.encoder.layer = model.encoder.layer[:3]
        exact = model(input_ids=batch, attention_mask=mask)[0]
    with torch.inference_mode():
        np.testing.assert_allclose(top.hidden(exact, valid)[valid].numpy(), whole[valid].numpy(), atol=1e-5)


def test_frozen_states_are_computed_once_then_read_from_the_cache(tmp_path, monkeypatch):
    model = _tiny_mpnet()
    texts, _ = _texts(7, seed=2)
    options = TeacherOptions(tuned_layers=1)
    first = frozen_states("toy", texts, options, _WordIds(), model, tmp_path)
    files = sorted(p.name for p in (tmp_path / "teacher" / "states").iterdir())
    assert len(files) == 2 and all("toy-all-mpnet-base-v2-l3-t128" in f for f in files)

    def fail(*args, **kwargs):
        raise AssertionError("encoded again")

    monkeypatch.setattr("training.teacher._encode_frozen", fail)
    again = frozen_states("toy", texts, options, _WordIds(), model, tmp_path)
    np.testing.assert_array_equal(np.asarray(again.tokens), first.tokens)
    with pytest.raises(AssertionError, match="encoded again"):
        frozen_states("toy", texts[:-1], options, _WordIds(), model, tmp_path)  # other texts, other key


def test_the_teacher_learns_a_task_and_a_restarted_run_continues(tmp_path):
    model = _tiny_mpnet()
    texts, labels = _texts(160, seed=3)
    dev_texts, dev_labels = _texts(60, seed=4)

    def labelled(t, y):
        return _Labelled(_encode_frozen(t, _WordIds(), model, frozen=3, max_tokens=64, what="t"), y)

    train = {"mosi": labelled(texts, labels)}
    select = [labelled(dev_texts, dev_labels)]
    options = TeacherOptions(tuned_layers=1, epoch_size=960, epochs=2, batch_size=16, lr=3e-3, head_lr=3e-2,
                             source_weights={"mosi": 1.0}, threads=1)
    teacher = train_teacher(options, model.encoder, 32, train, select, tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    scores = predict(teacher, select[0].states)
    assert scores[dev_labels > 0].mean() > scores[dev_labels < 0].mean() + 1.0
    assert np.abs(scores - dev_labels).mean() < np.abs(dev_labels).mean()  # better than always 0

    before = history
    longer = TeacherOptions(**{**options.__dict__, "epochs": 3})
    train_teacher(longer, model.encoder, 32, train, select, tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[:2] == before  # epochs 1 and 2 were read back (their timings too), not trained again


def test_options_key_ignores_threads_only():
    assert TeacherOptions(threads=1).key() == TeacherOptions(threads=2).key()
    assert TeacherOptions(tuned_layers=3).key() != TeacherOptions().key()


def test_frozen_states_batch_pads_and_masks():
    tokens = np.arange(12, dtype=np.float16).reshape(6, 2)
    states = FrozenStates(tokens, np.array([0, 1, 4, 6]))
    x, m = states.batch([2, 0])
    assert x.shape == (2, 2, 2) and m.tolist() == [[True, True], [True, False]]
    assert x[0].tolist() == [[8.0, 9.0], [10.0, 11.0]] and x[1, 1].tolist() == [0.0, 0.0]
