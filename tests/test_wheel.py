"""The packaged path: build the wheel, install it into a fresh venv, run what it installed.

How it stays fast and offline:

- The wheel is built by pip without build isolation and without an index
  (`pip wheel --no-deps --no-build-isolation --no-index`), from a copy of the sources in a
  temp dir, so nothing is downloaded and the work tree gets no build/ or egg-info. The
  setuptools it needs (>= 77, for the SPDX `license`) comes with the test extras.
- The fresh venv has no pip (`venv --without-pip`); this venv's pip installs into it
  (`pip --python NEW`) with `--no-deps --no-index`. The dependencies (websockets, Pillow,
  ...) come from this venv through a `.pth` file that appends its site-packages to the new
  venv's `sys.path`. A path in a `.pth` file does not run the `.pth` files inside it, so
  this venv's editable glosmsd stays invisible: `import glosmsd` must find the wheel's
  copy, and the test checks that it does.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemonproc import DaemonProcess
from tests.support.serverproc import ROOT

pytestmark = pytest.mark.slow

SCRIPTS = {
    "glosmsd": "glosmsd.cli.glosmsd:main",
    "glosms": "glosmsd.cli.glosms:main",
    "glosmsd-server": "glosmsd.server.cli:main",
}
ASSETS = ("glosmsd/assets/glosmsd.png", "glosmsd/assets/chime.wav", "glosmsd/py.typed")


def run(*cmd: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=120, check=False, **kw
    )
    assert done.returncode == 0, f"{cmd} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "glosmsd", src / "glosmsd", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    out = tmp_path / "dist"
    run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "--no-index", "--wheel-dir", out, src,
        cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = out.glob("glosmsd-*.whl")
    return wheel


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
                   .stdout.strip())  # fmt: skip
    (purelib / "glosmsd-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(
        sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
        "--no-index", wheel,
        cwd=tmp_path,
    )  # fmt: skip
    return venv


def test_the_wheel_installs_three_commands_and_the_assets_and_runs_the_demo(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for asset in ASSETS:
            assert asset in names, f"{asset} is not in the wheel"
        assert zf.read("glosmsd/assets/chime.wav")[:4] == b"RIFF"
        assert zf.read("glosmsd/assets/glosmsd.png")[:8] == b"\x89PNG\r\n\x1a\n"
        assert "glosmsd/server/cli.py" in names
        assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = zf.read(info).decode()
        meta = email.parser.Parser().parsestr(
            zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        )
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in entry_points
    assert meta["Name"] == "glosmsd"
    assert any(r.startswith("websockets") for r in meta.get_all("Requires-Dist") or [])

    venv = fresh_venv(tmp_path, wheel)
    bindir = venv / "bin"
    for script in SCRIPTS:
        path = bindir / script
        assert os.access(path, os.X_OK), f"{script} was not installed"
        assert path.read_text().splitlines()[0] == f"#!{bindir / 'python'}"

    home = tmp_path / "home"
    runtime = home / "run"
    runtime.mkdir(parents=True, mode=0o700)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYTHONPATH", "GLOSMSD_SOCKET")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_RUNTIME_DIR=str(runtime),
    )
    where = run(
        bindir / "python",
        "-c",
        "import glosmsd, importlib.resources as r; print(glosmsd.__file__); "
        "print(r.files('glosmsd.assets').joinpath('chime.wav').is_file())",
        env=env,
        cwd=home,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(venv), f"glosmsd came from {where[0]}, not the wheel"
    assert where[1] == "True"

    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [bindir / "glosmsd", "--demo", "--headless"],
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    try:

        def online() -> dict[str, Any] | None:
            if demo.poll() is not None:
                raise RuntimeError((tmp_path / "demo.log").read_text())
            done = subprocess.run(
                [bindir / "glosms", "status", "--json"],
                capture_output=True,
                text=True,
                env=env,
                cwd=home,
                timeout=30,
                check=False,
            )
            if done.returncode != 0:
                return None
            status: dict[str, Any] = json.loads(done.stdout)
            return status if status["link"]["online"] else None

        status = DaemonProcess.wait_until(online, 40, "the packaged demo to come online")
        assert status is not None
        assert status["extension"]["ext"] == "1001"
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            code = demo.wait(20)
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
            log.close()
    assert code == 0, (tmp_path / "demo.log").read_text()
