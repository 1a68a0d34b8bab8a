"""Downloads a Hugging Face hub model repo (GPT-2 layout) with the Python standard library only.

    /usr/bin/python3 model/python/fetch.py --repo tinkoff-ai/ruDialoGPT-small --out models/hf/ruDialoGPT-small

Files come from {endpoint}/{repo}/resolve/{revision}/{filename} (endpoint: --endpoint, else
$HF_ENDPOINT, else https://huggingface.co; $HF_TOKEN, when set, is sent as a Bearer token):
config.json; model.safetensors, else pytorch_model.bin; tokenizer.json if the repo has one, else
vocab.json + merges.txt; and tokenizer_config.json, special_tokens_map.json, added_tokens.json when
present. Each file is written to a temporary name and renamed when complete, so an interrupted run
never leaves a half file under the real name, and a file whose size matches the server's is skipped.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hftokenizer  # noqa: E402

DEFAULT_ENDPOINT = "https://huggingface.co"
OPTIONAL_FILES = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
CHUNK = 1 << 20
TIMEOUT_S = 60


class FetchError(Exception):
    """A failed download, with a one-line message for the user."""


class NotFound(FetchError):
    """The file is not in the repo (HTTP 404)."""


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Drops the token when the hub redirects to another host (its file CDN uses signed URLs,
    and a signed storage URL rejects, or would leak, a second credential)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_RedirectHandler)


class Hub:
    def __init__(self, repo: str, revision: str = "main", endpoint: Optional[str] = None, token: Optional[str] = None):
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise FetchError(f"repo {repo!r} is not of the form owner/name")
        self.repo, self.revision = repo, revision
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token if token is not None else os.environ.get("HF_TOKEN")

    def url(self, filename: str) -> str:
        rev = urllib.parse.quote(self.revision, safe="")
        return f"{self.endpoint}/{self.repo}/resolve/{rev}/{urllib.parse.quote(filename)}"

    def open(self, filename: str, method: str = "GET"):
        req = urllib.request.Request(self.url(filename), method=method)
        req.add_header("User-Agent", "dialogbot-fetch/1")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            return _OPENER.open(req, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as e:
            raise self._http_error(filename, e) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise FetchError(f"cannot reach {self.endpoint}: {reason}") from None

    def _http_error(self, filename: str, e: urllib.error.HTTPError) -> FetchError:
        where = f"{self.repo}@{self.revision}/{filename}"
        if e.code == 404:
            return NotFound(f"{where}: not found (404)")
        if e.code in (401, 403):
            hint = "check HF_TOKEN" if self.token else "the repo may be gated or private: set HF_TOKEN"
            return FetchError(f"{where}: access denied ({e.code}); {hint}")
        return FetchError(f"{where}: HTTP {e.code} {e.reason}")

    def exists(self, filename: str) -> bool:
        try:
            self.open(filename, method="HEAD").close()
            return True
        except NotFound:
            return False


def download(hub: Hub, filename: str, out_dir: str, log: Callable[[str], None]) -> str:
    """Downloads one file atomically; skips it when a complete copy is already there."""
    dest = os.path.join(out_dir, filename)
    with hub.open(filename) as resp:
        size = resp.headers.get("Content-Length")
        size = int(size) if size and size.isdigit() else None
        if size is not None and os.path.isfile(dest) and os.path.getsize(dest) == size:
            log(f"{filename}: already complete ({size} bytes)")
            return dest
        tmp = dest + ".part"
        got = _copy(resp, tmp)
    if size is not None and got != size:
        os.remove(tmp)
        raise FetchError(f"{filename}: download cut short ({got} of {size} bytes)")
    os.replace(tmp, dest)
    log(f"{filename}: {got} bytes")
    return dest


def _copy(resp, path: str) -> int:
    n = 0
    try:
        with open(path, "wb") as f:
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    return n
                f.write(chunk)
                n += len(chunk)
    except (OSError, http.client.HTTPException) as e:
        if os.path.exists(path):
            os.remove(path)
        raise FetchError(f"download interrupted after {n} bytes: {e!r}") from None


def _first_present(hub: Hub, names, what: str) -> str:
    for name in names:
        if hub.exists(name):
            return name
    raise FetchError(f"{hub.repo}@{hub.revision}: no {what} ({' or '.join(names)})")


def plan(hub: Hub) -> List[str]:
    """The files to fetch, decided by asking the hub which of the alternatives exist."""
    hub.open("config.json", method="HEAD").close()  # a wrong repo name fails here, clearly
    files = ["config.json", _first_present(hub, ("model.safetensors", "pytorch_model.bin"), "weights")]
    if hub.exists("tokenizer.json"):
        files.append("tokenizer.json")
    else:
        files += ["vocab.json", "merges.txt"]
    files += [f for f in OPTIONAL_FILES if hub.exists(f)]
    return files


def fetch(repo: str, out_dir: str, revision: str = "main", endpoint: Optional[str] = None,
          log: Callable[[str], None] = print) -> List[str]:
    hub = Hub(repo, revision, endpoint)
    os.makedirs(out_dir, exist_ok=True)
    paths = [download(hub, f, out_dir, log) for f in plan(hub)]
    tok = os.path.join(out_dir, "tokenizer.json")
    if not os.path.exists(tok):
        # Older repos ship vocab.json + merges.txt only; finetune.py and dialogbot read tokenizer.json.
        hftokenizer.write_tokenizer_json(out_dir, tok)
        log(f"built {tok} from vocab.json and merges.txt")
        paths.append(tok)
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Download a Hugging Face GPT-2 model repo (config, weights, tokenizer).")
    p.add_argument("--repo", default="tinkoff-ai/ruDialoGPT-small")
    p.add_argument("--out", required=True)
    p.add_argument("--revision", default="main")
    p.add_argument("--endpoint", default=None, help=f"hub URL (default $HF_ENDPOINT or {DEFAULT_ENDPOINT})")
    args = p.parse_args(argv)
    try:
        fetch(args.repo, args.out, args.revision, args.endpoint)
    except FetchError as e:
        print(f"fetch: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"fetch: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
