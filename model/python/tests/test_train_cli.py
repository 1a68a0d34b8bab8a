"""finetune.py as the Go `dialogbot train` command drives it: --progress-json on
stdout, Ctrl-C with a checkpoint and a resume, and data-parallel runs under
torchrun (gloo, 2 CPU processes) against one process with the same global batch."""

import json
import os
import signal
import subprocess
import sys

import pytest

from test_finetune import tiny_dataset_dir, tiny_model_dir

import finetune  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FINETUNE = os.path.join(HERE, "finetune.py")
TORCHRUN = os.path.join(HERE, "torchrun.py")  # torchrun, fixed for torch 1.13 on Python 3.11


def cli_args(model, data, out, *extra):
    return ["--model", model, "--data", data, "--out", out, "--device", "cpu", "--batch-tokens", "256",
            "--seed", "5", "--threads", "1", *extra]


def events_of(text):
    lines = text.splitlines()
    assert lines, "no output on stdout"
    return [json.loads(line) for line in lines]  # every stdout line must be one JSON object


def test_progress_json_is_the_only_stdout_and_follows_the_contract(tmp_path, capsys):
    model, data = tiny_model_dir(tmp_path), tiny_dataset_dir(tmp_path)
    out = str(tmp_path / "out")
    code = finetune.main(cli_args(model, data, out, "--steps", "6", "--eval-every", "3", "--lr", "3e-3",
                                  "--progress-json", "--samples", "2"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    ev = events_of(captured.out)
    assert ev[0]["event"] == "start" and ev[0]["total_steps"] == 6 and ev[0]["tokens_per_step"] > 0
    steps = [e for e in ev if e["event"] == "step"]
    assert steps[0]["step"] == 1, "the first step line comes after step 1, so an ETA shows at once"
    assert steps[-1]["step"] == 6 and steps[-1]["eta_s"] == 0
    for e in steps:
        assert set(e) == {"event", "step", "total_steps", "loss", "lr", "tokens_per_s", "elapsed_s", "eta_s"}
        assert e["total_steps"] == 6 and e["loss"] > 0 and e["tokens_per_s"] > 0
    evals = [e for e in ev if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [0, 3, 6]
    assert all(e["valid_ppl"] > 1 for e in evals)
    assert ev[-1]["event"] == "done"
    with open(ev[-1]["report"]) as f:
        rep = json.load(f)
    for key in ("valid_ppl_before", "valid_ppl_after", "train_tokens_per_s", "steps", "time_s"):
        assert key in rep, key
    assert [s for s, _ in rep["history"]["train"]] == [1, 2, 3, 4, 5, 6]
    assert [s for s, _ in rep["history"]["valid"]] == [0, 3, 6]
    assert len(rep["samples"]) == 2
    for name in ("loss.svg", "report.md"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert "step 1/6" in captured.err, "human progress goes to stderr"


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        finetune.parse_args(["--help"])
    text = capsys.readouterr().out
    assert "(default: 4096)" in text and "(default: pack)" in text


def run_cli(args, **kw):
    return subprocess.run([sys.executable, FINETUNE, *args], capture_output=True, text=True, timeout=300, **kw)


def test_sigint_saves_a_checkpoint_and_a_rerun_resumes(tmp_path):
    model, data = tiny_model_dir(tmp_path), tiny_dataset_dir(tmp_path)
    out = str(tmp_path / "out")
    args = cli_args(model, data, out, "--steps", "300", "--progress-json", "--samples", "0")
    proc = subprocess.Popen([sys.executable, FINETUNE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        for line in proc.stdout:
            if json.loads(line)["event"] == "step":
                proc.send_signal(signal.SIGINT)
                break
        rest, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == finetune.EXIT_INTERRUPTED, err
    stopped = events_of(rest)[-1]
    assert stopped["event"] == "stopped" and 1 <= stopped["step"] < 300
    assert os.path.exists(os.path.join(out, finetune.CHECKPOINT))
    assert not os.path.exists(os.path.join(out, "report.json")), "an interrupted run writes no report"

    again = run_cli(args)
    assert again.returncode == 0, again.stderr
    assert f"resumed from {os.path.join(out, finetune.CHECKPOINT)} at step {stopped['step']}" in again.stderr
    ev = events_of(again.stdout)
    assert ev[0]["event"] == "start" and ev[0]["step"] == stopped["step"]
    with open(ev[-1]["report"]) as f:
        rep = json.load(f)
    assert rep["steps"] == 300
    assert [s for s, _ in rep["history"]["train"]] == list(range(1, 301)), "the history survives the resume"


def test_resume_flag_needs_a_checkpoint(tmp_path):
    model, data = tiny_model_dir(tmp_path), tiny_dataset_dir(tmp_path)
    r = run_cli(cli_args(model, data, str(tmp_path / "out"), "--steps", "2", "--resume"))
    assert r.returncode == 1 and "--resume: no checkpoint.pt" in r.stderr and r.stdout == ""


def torchrun_available():
    r = subprocess.run([sys.executable, "-c", "import torch.distributed.run"], capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not torchrun_available(), reason="torch.distributed.run is missing")
@pytest.mark.parametrize("layout", ["pack", "bucket"])
def test_ddp_two_processes_match_one_with_the_same_global_batch(tmp_path, layout):
    model, data = tiny_model_dir(tmp_path), tiny_dataset_dir(tmp_path)
    common = ("--steps", "6", "--eval-every", "3", "--lr", "3e-3", "--dropout", "0", "--samples", "0",
              "--layout", layout)
    one = run_cli(cli_args(model, data, str(tmp_path / "one"), "--grad-accum", "2", *common))
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, TORCHRUN, "--standalone", "--nproc_per_node", "2",
                          FINETUNE, *cli_args(model, data, str(tmp_path / "two"), *common)],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert two.returncode == 0, two.stderr
    assert "2 process(es)" in two.stderr
    assert len([line for line in two.stdout.splitlines() if line.startswith("{")]) == 1, "only rank 0 prints"
    reports = []
    for name in ("one", "two"):
        with open(tmp_path / name / "report.json") as f:
            reports.append(json.load(f))
    a, b = reports
    assert b["processes"] == 2 and a["processes"] == 1
    assert len(a["history"]["train"]) == len(b["history"]["train"]) == 6
    for (sa, la), (sb, lb) in zip(a["history"]["train"] + a["history"]["valid"],
                                  b["history"]["train"] + b["history"]["valid"]):
        assert sa == sb and lb == pytest.approx(la, rel=1e-4, abs=1e-5)
    assert a["train_tokens"] == b["train_tokens"]
    assert sorted(os.listdir(tmp_path / "one")) == sorted(os.listdir(tmp_path / "two"))
