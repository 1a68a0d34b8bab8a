"""Lets `python3 model/python/SCRIPT.py` work on a machine whose first python3 has no PyTorch.

Debian's PyTorch (python3-torch) belongs to /usr/bin/python3, while another python3 (pyenv, a venv)
often comes first on PATH. Rather than fail with a raw ImportError, a script calls ensure() before
importing torch: it re-runs the script under a Python that has torch, or exits with the command that
installs one.
"""

import os
import subprocess
import sys

CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3")
_MARK = "DIALOGBOT_TORCH_REEXEC"


def has_torch(python: str) -> bool:
    """Whether that Python imports torch (asked from /, so no folder named torch shadows it)."""
    try:
        return subprocess.run([python, "-c", "import torch"], cwd="/", capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure() -> None:
    try:
        import torch  # noqa: F401
        return
    except ImportError:
        pass
    if not os.environ.get(_MARK):
        for python in CANDIDATES:
            if os.path.realpath(python) != os.path.realpath(sys.executable) and os.path.exists(python) and has_torch(python):
                print(f"note: {sys.executable} has no torch; running under {python}", file=sys.stderr)
                os.environ[_MARK] = "1"
                os.execv(python, [python] + sys.argv)
    sys.exit("error: this script needs PyTorch, and no Python here has it: "
             "sudo apt-get install python3-torch (Debian's /usr/bin/python3), or pip install torch")
