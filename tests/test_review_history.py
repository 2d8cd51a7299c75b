"""End-to-end: aliases (PATH@production), metric plots in the terminal, and the HTML report
rendered by headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import git, write_random

import casstore


def _versions(repo: Path, cas) -> None:
    """Three committed versions of model.bin with accuracy, loss and params."""
    (repo / "data").mkdir()
    for i, (acc, loss, epochs) in enumerate([(0.81, 0.52, 5), (0.86, 0.41, 10),
                                             (0.84, 0.44, 20)]):
        write_random(repo / "model.bin", 20_000, seed=i)
        write_random(repo / "data" / f"part{i}.bin", 3_000, seed=10 + i)
        cas("add", "model.bin", "data")
        args = ["version", "model.bin", "--metric", f"accuracy={acc}", "--metric",
                f"loss={loss}", "--param", f"epochs={epochs}", "--param", "lr=0.001",
                "--data", "data", "-m", f"run {i}"]
        cas(*args, *(["--set", "1.0.0"] if i == 0 else ["--bump", "minor"]))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"v{i}")


def test_alias_moves_resolves_everywhere_and_is_listed(repo: Path, cas) -> None:
    _versions(repo, cas)
    out = cas("version", "model.bin", "--alias", "production", "--to", "1.1.0").stdout
    assert "alias: model.bin@production -> 1.1.0" in out
    assert git(repo, "tag", "-l").split() == ["model.bin@production"]
    log = cas("log", "model.bin").stdout.splitlines()
    assert log[1].startswith("1.1.0") and log[1].endswith("[production]")
    entries = json.loads(cas("log", "model.bin", "--json").stdout)["versions"]
    assert [e["aliases"] for e in entries] == [[], ["production"], []]

    res = json.loads(cas("compare", "model.bin@production", "model.bin@1.2.0",
                         "--json").stdout)
    assert res["old"]["version"] == "1.1.0" and res["new"]["version"] == "1.2.0"
    with casstore.open("model.bin", rev="model.bin@production", repo=repo) as f:
        assert f.read() == write_random(repo / "x.bin", 20_000, seed=1)

    # Moved with force to the committed version; then removed.
    out = cas("version", "model.bin", "--alias", "production").stdout
    assert "-> 1.2.0" in out
    entries = json.loads(cas("log", "model.bin", "--json").stdout)["versions"]
    assert entries[0]["aliases"] == ["production"]
    assert "removed alias: model.bin@production" in cas("version", "model.bin", "--unalias",
                                                       "production").stdout
    assert git(repo, "tag", "-l").strip() == ""
    for args, message in [(["--alias", "1.0.0"], "is a version of model.bin"),
                          (["--unalias", "staging"], "has no alias staging"),
                          (["--alias", "a b"], "is not a usable alias name"),
                          (["--alias", "x", "--to", "9.9.9"], "has no version 9.9.9")]:
        res = cas("version", "model.bin", *args, check=False)
        assert res.returncode != 0 and message in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_log_plot_draws_each_metric_over_versions(repo: Path, cas) -> None:
    _versions(repo, cas)
    out = cas("log", "model.bin", "--plot", "accuracy,loss").stdout
    assert "accuracy  (min 0.81, max 0.86, last 0.84)" in out
    assert "loss  (min 0.41, max 0.52, last 0.44)" in out
    acc = out.split("\n\n")[0].splitlines()
    assert acc[1].startswith("0.86 ┤") and acc[-3].startswith("0.81 ┤")
    assert acc[-1].split() == ["1.0.0", "1.1.0", "1.2.0"]  # oldest first
    # The highest point (1.1.0) is in the top row, the lowest (1.0.0) in the bottom one.
    assert acc[1].index("●") > acc[-3].index("●")
    res = cas("log", "model.bin", "--plot", "f1", check=False)
    assert res.returncode == 2 and "no version records metric 'f1'" in res.stderr


def test_html_report_renders_one_chart_per_metric_in_chromium(repo: Path, cas,
                                                              tmp_path: Path) -> None:
    _versions(repo, cas)
    out = cas("report", "model.bin", "-o", str(tmp_path / "report.html")).stdout
    assert "3 versions, 2 metric charts" in out
    page = (tmp_path / "report.html").read_text()
    assert not re.search(r"(src|href)=\"?https?:", page) and "<script" not in page
    assert "<code>epochs</code>: 5 → 10" in page and "run 2" in page

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--no-first-run", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    url = (tmp_path / "report.html").as_uri()
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,1400", url],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert dom.count("<svg") == 2
    assert dom.count('class="dot"') == 6 and dom.count("<polyline") == 2
    assert 'aria-label="accuracy over versions"' in dom
