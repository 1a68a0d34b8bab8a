"""fetch.py against a local fake hub, then fetch -> export -> load."""

import json
import os
import re

import pytest
import torch

import export
import fetch
from conftest import make_hf_dir
from hubserver import Hub

NEW = "org/tiny"  # model.safetensors + tokenizer.json, as current hub repos
OLD = "org/old"  # pytorch_model.bin + vocab.json/merges.txt (+ token files), as older repos


def read_dir(d):
    return {f: open(os.path.join(d, f), "rb").read() for f in os.listdir(d)}


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    new, old = str(tmp_path_factory.mktemp("new")), str(tmp_path_factory.mktemp("old"))
    make_hf_dir(new)
    with open(os.path.join(new, "tokenizer_config.json"), "w") as f:
        f.write('{"eos_token": "<|endoftext|>"}')
    make_hf_dir(old, seed=1, tokenizer="bpe", weights="bin")
    return {NEW: read_dir(new), OLD: read_dir(old), "org/private": read_dir(new)}


@pytest.mark.parametrize(
    "repo, want",
    [
        pytest.param(NEW, ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"], id="new"),
        # tokenizer.json is built from vocab.json + merges.txt: finetune.py and dialogbot read it.
        pytest.param(OLD, ["added_tokens.json", "config.json", "merges.txt", "pytorch_model.bin",
                           "special_tokens_map.json", "tokenizer.json", "vocab.json"], id="old"),
    ],
)
def test_fetch_then_export_loads(tmp_path, repos, repo, want):
    out = tmp_path / "hf"
    with Hub(repos) as hub:
        fetch.fetch(repo, str(out), endpoint=hub.url, log=lambda s: None)
    assert sorted(os.listdir(out)) == want
    for f in want:
        if f in repos[repo]:
            assert (out / f).read_bytes() == repos[repo][f], f
    assert json.loads((out / "tokenizer.json").read_text("utf-8"))["model"]["type"] == "BPE"
    meta = export.export(export.parse_args(["--hf", str(out), "--out", str(tmp_path / "exp")]), log=lambda s: None)
    assert meta["prompt_format"] == "rudialogpt"
    assert meta["special_tokens"] == {"<|endoftext|>": 0, "@@ПЕРВЫЙ@@": 1, "@@ВТОРОЙ@@": 2}
    traced = torch.jit.load(str(tmp_path / "exp" / "model.pt"))
    args = export.step_inputs(export.gpt2.GPT2Config.from_json(str(out / "config.json")), 2, 3, 0)
    logits, present = traced(*args)
    assert logits.shape == (2, 300) and present.shape == (2, 2, 2, 2, 3, 8)


def test_renamed_repo_is_followed(tmp_path, repos):
    """The default repo's owner was renamed (tinkoff-ai -> t-bank-ai); the hub redirects the old name."""
    with Hub(repos, renamed={"tinkoff-ai/ruDialoGPT-small": NEW}) as hub:
        fetch.fetch("tinkoff-ai/ruDialoGPT-small", str(tmp_path), endpoint=hub.url, log=lambda s: None)
        redirected = [path for method, path, _ in hub.requests if path.startswith("/tinkoff-ai/")]
    assert redirected, "the old name was never asked for"
    assert (tmp_path / "model.safetensors").read_bytes() == repos[NEW]["model.safetensors"]


def test_complete_files_are_skipped(tmp_path, repos):
    logs = []
    with Hub(repos) as hub:
        fetch.fetch(NEW, str(tmp_path), endpoint=hub.url, log=lambda s: None)
        (tmp_path / "model.safetensors").write_bytes(b"partial")  # a wrong size is fetched again
        fetch.fetch(NEW, str(tmp_path), endpoint=hub.url, log=logs.append)
    skipped = sorted(line.split(":")[0] for line in logs if "already complete" in line)
    assert skipped == ["config.json", "tokenizer.json", "tokenizer_config.json"]
    assert (tmp_path / "model.safetensors").read_bytes() == repos[NEW]["model.safetensors"]


def test_env_endpoint_and_token(tmp_path, repos, monkeypatch):
    with Hub(repos, private={"org/private"}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(fetch.FetchError, match=r"access denied \(401\); the repo may be gated or private: set HF_TOKEN"):
            fetch.fetch("org/private", str(tmp_path), log=lambda s: None)
        monkeypatch.setenv("HF_TOKEN", "wrong")
        with pytest.raises(fetch.FetchError, match="check HF_TOKEN"):
            fetch.fetch("org/private", str(tmp_path), log=lambda s: None)
        monkeypatch.setenv("HF_TOKEN", "secret")
        fetch.fetch("org/private", str(tmp_path), log=lambda s: None)
    assert (tmp_path / "model.safetensors").exists()


def test_token_is_not_sent_to_another_host(tmp_path, repos, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "secret")
    with Hub(repos, cdn={(NEW, "model.safetensors")}) as hub:
        fetch.fetch(NEW, str(tmp_path), endpoint=hub.url, log=lambda s: None)
    cdn = [r for r in hub.requests if r[1].startswith("/cdn/")]
    assert cdn and all(auth is None for _, _, auth in cdn)
    assert all(auth == "Bearer secret" for _, path, auth in hub.requests if not path.startswith("/cdn/"))
    assert (tmp_path / "model.safetensors").read_bytes() == repos[NEW]["model.safetensors"]


def test_interrupted_download_leaves_no_file(tmp_path, repos):
    with Hub(repos, cut={(NEW, "model.safetensors")}) as hub:
        with pytest.raises(fetch.FetchError, match="interrupted|cut short"):
            fetch.fetch(NEW, str(tmp_path), endpoint=hub.url, log=lambda s: None)
    assert sorted(os.listdir(tmp_path)) == ["config.json"]


@pytest.mark.parametrize(
    "repo, endpoint, message",
    [
        pytest.param("org/missing", None, r"org/missing@main/config.json: not found \(404\)", id="404"),
        pytest.param("org/tiny", "http://127.0.0.1:1", "cannot reach http://127.0.0.1:1", id="network"),
        pytest.param("not-a-repo", None, "not of the form owner/name", id="bad-name"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, repos, capsys, repo, endpoint, message):
    with Hub(repos) as hub:
        code = fetch.main(["--repo", repo, "--out", str(tmp_path), "--endpoint", endpoint or hub.url])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("fetch: error: ")
    assert re.search(message, err), err


def test_missing_weights(tmp_path, repos):
    no_weights = {NEW: {k: v for k, v in repos[NEW].items() if k != "model.safetensors"}}
    with Hub(no_weights) as hub:
        with pytest.raises(fetch.FetchError, match=r"no weights \(model.safetensors or pytorch_model.bin\)"):
            fetch.fetch(NEW, str(tmp_path), endpoint=hub.url, log=lambda s: None)
