import json
import platform

import pytest

from casstore.review import metadata as md


def test_kv_flags_typed_and_nested():
    got = md.parse_kv_flags(
        [
            "lr=0.001",
            "epochs=10",
            "a.b=1",
            "a.c=true",
            "x=null",
            "name=resnet",
            "v='1.0'",
            "big=1e3",
            "neg=-2",
        ]
    )
    assert got == {
        "a": {"b": 1, "c": True},
        "big": 1000.0,
        "epochs": 10,
        "lr": 0.001,
        "name": "resnet",
        "neg": -2,
        "v": "1.0",
        "x": None,
    }
    assert isinstance(got["epochs"], int) and isinstance(got["lr"], float)
    assert list(got) == sorted(got)


def test_kv_flag_errors():
    with pytest.raises(md.MetadataError, match="expected key=value"):
        md.parse_kv_flags(["lr"])
    with pytest.raises(md.MetadataError, match="conflicts"):
        md.parse_kv_flags(["a=1", "a.b=2"])
    with pytest.raises(md.MetadataError, match="empty part"):
        md.parse_kv_flags(["a..b=2"])


def test_scalars_not_yaml11_surprises():
    assert md.parse_scalar("yes") == "yes"
    assert md.parse_scalar("1_000") == "1_000"
    assert md.parse_scalar("nan") == "nan"
    assert md.parse_scalar("False") is False


def test_load_yaml_json_and_merge(tmp_path):
    (tmp_path / "params.yaml").write_text("lr: 0.01\noptim:\n  name: adam\n  beta: 0.9\n")
    (tmp_path / "metrics.json").write_text(json.dumps({"acc": 0.9, "loss": 0.3}))
    params = md.load_mapping_file(tmp_path / "params.yaml")
    assert params == {"lr": 0.01, "optim": {"beta": 0.9, "name": "adam"}}
    assert md.load_mapping_file(tmp_path / "metrics.json") == {"acc": 0.9, "loss": 0.3}
    merged = md.merge(params, md.parse_kv_flags(["optim.beta=0.95", "epochs=3"]))
    assert merged == {"epochs": 3, "lr": 0.01, "optim": {"beta": 0.95, "name": "adam"}}
    assert json.dumps(merged) == json.dumps(
        md.merge(params, {"optim": {"beta": 0.95}, "epochs": 3})
    )


def test_load_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(md.MetadataError, match="cannot parse"):
        md.load_mapping_file(tmp_path / "bad.json")
    with pytest.raises(md.MetadataError, match="mapping"):
        md.load_mapping_file(tmp_path / "list.yaml")
    with pytest.raises(md.MetadataError, match="cannot read"):
        md.load_mapping_file(tmp_path / "missing.yaml")
    (tmp_path / "obj.yaml").write_text("x: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(md.MetadataError):
        md.load_mapping_file(tmp_path / "obj.yaml")


def test_capture_env_installed_only_never_imports():
    import sys

    before = set(sys.modules)
    env = md.capture_env(["numpy", "pyyaml", "definitely-not-installed-pkg", "torch"])
    assert env["python"] == platform.python_version()
    assert "numpy" in env and "pyyaml" in env
    assert "definitely-not-installed-pkg" not in env
    assert list(env) == sorted(env)
    assert "torch" not in set(sys.modules) - before
    assert md.capture_env() == md.capture_env()  # deterministic


def test_env_from_requirements(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# comment\n-r base.txt\ntorch==2.3.0\nscikit_learn==1.4.2 ; python_version>'3'\n"
        "transformers[torch]==4.40.0  # pinned\nnumpy>=1.24\n-e git+https://x/y.git#egg=y\n"
        "mypkg @ https://example.com/mypkg-1.0.whl\n"
    )
    assert md.env_from_requirements(req) == {
        "mypkg": "https://example.com/mypkg-1.0.whl",
        "scikit_learn": "1.4.2",
        "torch": "2.3.0",
        "transformers": "4.40.0",
    }
    env = md.capture_env(requirements=req)
    assert env["torch"] == "2.3.0"
    assert env["scikit-learn"] == "1.4.2"  # matched despite _ vs -
    assert "numpy" not in env  # not pinned in the file
    assert "mypkg" in md.capture_env(["*"], requirements=req)
