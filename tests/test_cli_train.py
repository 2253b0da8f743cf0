"""`mmcl train` + `mmcl eval` on files in all three formats; `mmcl ablate`; CLI errors."""

import csv
import json
import pickle

import numpy as np
import pytest

from mmcl.cli import main

FAST = ["model.d_model=16", "model.n_heads=2", "model.head_hidden=16"]


def run(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    rng = np.random.default_rng(0)
    from model.data.planted import make_planted_mmsa

    mmsa = root / "mosi_like.pkl"
    with mmsa.open("wb") as f:
        pickle.dump(make_planted_mmsa(n_train=60, n_valid=20, n_test=20, seq_len=10), f)
    iemocap = root / "iemocap_data.pkl"
    split = lambda n: {  # noqa: E731
        "text": rng.standard_normal((n, 8, 30)).astype(np.float32),
        "audio": rng.standard_normal((n, 8, 7)).astype(np.float32),
        "vision": rng.standard_normal((n, 8, 5)).astype(np.float32),
        "labels": np.eye(2, dtype=np.float32)[rng.integers(0, 2, (n, 4))],
    }
    with iemocap.open("wb") as f:
        pickle.dump({"train": split(40), "valid": split(12), "test": split(12)}, f)
    cmdc = root / "cmdc"
    cmdc.mkdir()
    with (cmdc / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["subject_id", "phq9"])
        for i in range(20):
            w.writerow([f"p{i}", i % 20])
    for i in range(20):
        np.savez(cmdc / f"p{i}.npz", vision=rng.standard_normal((15, 4)), audio=rng.standard_normal((40, 3)),
                 text=rng.standard_normal((6, 10)))
    return {"mmsa": mmsa, "mult-iemocap": iemocap, "cmdc": cmdc}


@pytest.mark.parametrize(
    "fmt, task, keys",
    [
        ("mmsa", None, {"mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0"}),
        ("mult-iemocap", None, {"neutral_acc", "happy_f1", "sad_acc", "angry_f1", "acc", "f1"}),
        ("cmdc", None, {"mae", "rmse", "pearson", "precision", "recall", "f1"}),
        ("cmdc", "classification", {"precision", "recall", "f1"}),
    ],
)
def test_train_then_eval(files, tmp_path, capsys, fmt, task, keys):
    out = tmp_path / "run"
    argv = ["train", "--data", str(files[fmt]), "--format", fmt, "--out", str(out), "--epochs", "2",
            "--quiet-progress", *FAST]
    if task:
        argv += ["--task", task]
    code, stdout, stderr = run(argv, capsys)
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert keys <= set(metrics["test"]) and metrics["epochs_run"] == 2
    preds = tmp_path / "preds.csv"
    code, stdout, stderr = run(["eval", "--checkpoint", str(out / "best.pt"), "--data", str(files[fmt]), "--json",
                                "--save-predictions", str(preds)], capsys)
    assert code == 0, stderr
    result = json.loads(stdout)
    assert keys <= set(result)
    for k in keys:
        assert result[k] == pytest.approx(metrics["test"][k], abs=1e-9)
    rows = list(csv.DictReader(preds.open()))
    assert rows and set(rows[0]) == {"id", "y_true", "y_pred"}


def test_ablate_writes_table(files, tmp_path, capsys):
    table = tmp_path / "table.md"
    code, _, err = run(["ablate", "--data", str(files["mmsa"]), "--seeds", "0,1", "--epochs", "1", "--out",
                        str(table), *FAST], capsys)
    assert code == 0, err
    text = table.read_text()
    for row in ("Full", "w/o CSD", "w/o Self-Attn", "w/o Cross-Attn", "Linear probe (pooled)",
                "Late fusion (linear)"):
        assert f"| {row} |" in text
    assert "±" in text and "Acc7" in text


def test_cli_errors_are_one_clear_line(files, tmp_path, capsys):
    code, _, err = run(["train", "--data", str(files["mmsa"]), "--out", str(tmp_path), "model.d_modle=3"], capsys)
    assert code == 2 and "Did you mean 'd_model'" in err and "Traceback" not in err
    code, _, err = run(["train", "--data", str(tmp_path / "none.pkl"), "--out", str(tmp_path)], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = run(["eval", "--checkpoint", str(tmp_path / "x.pt"), "--data", str(files["mmsa"])], capsys)
    assert code == 2 and "does not exist" in err


def test_eval_refuses_data_of_another_layout(files, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(["train", "--data", str(files["mmsa"]), "--out", str(out), "--epochs", "1",
                        "--quiet-progress", *FAST], capsys)
    assert code == 0, err
    code, _, err = run(["eval", "--checkpoint", str(out / "best.pt"), "--data", str(files["mult-iemocap"]),
                        "--format", "mmsa"], capsys)
    assert code == 2
