import json

from casstore.review.compare import (
    compare_meta,
    flatten,
    higher_is_better,
    render_markdown,
    render_text,
    to_dict,
)

OLD = {
    "version": "1.2.0",
    "params": {"lr": 0.001, "epochs": 10, "optim": {"name": "adam"}, "dropout": 0.1},
    "metrics": {"accuracy": 0.9, "val_loss": 0.5, "f1": 0.8, "old_only": 1},
    "data": {"data/train.cas": "a" * 32, "data/test.cas": "b" * 32},
    "env": {"python": "3.11.7", "torch": "2.2.0"},
}
NEW = {
    "version": "1.3.0",
    "params": {"lr": 0.0005, "epochs": 10, "optim": {"name": "adamw"}, "batch": 64},
    "metrics": {"accuracy": 0.93, "val_loss": 0.6, "f1": 0.8, "bleu": 30},
    "data": {"data/train.cas": "c" * 32, "data/test.cas": "b" * 32},
    "env": {"python": "3.11.7", "torch": "2.3.0"},
}


def test_metric_deltas_and_directions():
    c = compare_meta(OLD, NEW)
    m = {x.name: x for x in c.metrics}
    assert m["accuracy"].status == "changed"
    assert m["accuracy"].delta == 0.03
    assert m["accuracy"].percent == 3.333333
    assert (m["accuracy"].arrow, m["accuracy"].improved) == ("↑", True)
    assert m["val_loss"].higher_is_better is False
    assert (m["val_loss"].arrow, m["val_loss"].improved) == ("↑", False)
    assert m["val_loss"].percent == 20.0
    assert (m["f1"].status, m["f1"].arrow, m["f1"].improved) == ("unchanged", "=", None)
    assert m["bleu"].status == "added" and m["old_only"].status == "removed"


def test_hints_override_inference():
    assert higher_is_better("train_RMSE") is False
    assert higher_is_better("p99_latency_ms") is False
    assert higher_is_better("accuracy") is True
    assert higher_is_better("error_budget", {"error_budget": True}) is True
    c = compare_meta(
        {"metrics": {"score": 2}},
        {"metrics": {"score": 1}},
        higher_is_better_hints={"score": False},
    )
    assert c.metrics[0].improved is True


def test_params_data_env_changes():
    c = compare_meta(OLD, NEW)
    assert [(p.name, p.status) for p in c.params] == [
        ("batch", "added"),
        ("dropout", "removed"),
        ("lr", "changed"),
        ("optim.name", "changed"),
    ]
    assert [(d.name, d.old, d.new) for d in c.data] == [("data/train.cas", "a" * 32, "c" * 32)]
    assert [(e.name, e.old, e.new) for e in c.env] == [("torch", "2.2.0", "2.3.0")]
    assert (c.old_version, c.new_version) == ("1.2.0", "1.3.0")
    assert c.has_changes


def test_no_meta_and_zero_baseline():
    c = compare_meta(None, {"metrics": {"acc": 0.5}})
    assert c.metrics[0].status == "added"
    c = compare_meta({"metrics": {"err": 0}}, {"metrics": {"err": 1}})
    assert c.metrics[0].percent is None and c.metrics[0].delta == 1
    assert not compare_meta(OLD, OLD).has_changes


def test_int_vs_float_param_is_a_change():
    c = compare_meta({"params": {"x": 1}}, {"params": {"x": 1.0}})
    assert [p.status for p in c.params] == ["changed"]


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {}}, "d": [1, 2]}) == {"a.b": 1, "a.c": {}, "d": [1, 2]}


def test_renderers():
    c = compare_meta(OLD, NEW)
    text = render_text(c)
    assert "version: 1.2.0 -> 1.3.0" in text
    assert "accuracy: 0.9 -> 0.93  ↑ +0.03 (+3.33%) better" in text
    assert "val_loss: 0.5 -> 0.6  ↑ +0.1 (+20.00%) worse" in text
    md = render_markdown(c, title="model.safetensors")
    assert md.startswith("### model.safetensors\n")
    assert "| accuracy | 0.9 | 0.93 | +0.03 | +3.33% | ↑ ✅ |" in md
    assert "| val_loss | 0.5 | 0.6 | +0.1 | +20.00% | ↑ ⚠️ |" in md
    assert "| data/train.cas | `aaaaaaaaaaaa` | `cccccccccccc` | changed |" in md
    assert "| batch | - | `64` | added |" in md
    d = to_dict(c)
    assert json.loads(json.dumps(d)) == d
    assert d["has_changes"] is True and d["metrics"][0]["name"] == "accuracy"
    assert "no changes" in render_text(compare_meta(OLD, OLD))
