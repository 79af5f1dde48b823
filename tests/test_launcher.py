"""The lab's launch options (issue 15): the port comes from --port, AELAB_PORT,
GRADIO_SERVER_PORT or 7860 and the address from --host, GRADIO_SERVER_NAME or 127.0.0.1, in that
order; a bad value is one sentence naming where it came from; the lab is shared publicly only
with --share, whatever GRADIO_SHARE says."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types

import pytest

from aelab.errors import AelabError
from aelab.ui.launcher import add_arguments, host_and_origin, main, port_and_origin, serve

VARIABLES = ("AELAB_PORT", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME", "GRADIO_SHARE")


@pytest.fixture
def env(monkeypatch):
    """None of the launch variables set; ``env(NAME=value, ...)`` sets some. Each is put back
    afterwards, also when serve() wrote it."""
    for var in VARIABLES:
        monkeypatch.setenv(var, "")  # recorded first, so that teardown restores or removes it
        monkeypatch.delenv(var)
    # serve() sets this one too (analytics off before gradio is imported)
    monkeypatch.setenv(
        "GRADIO_ANALYTICS_ENABLED", os.environ.get("GRADIO_ANALYTICS_ENABLED", "False")
    )

    def set_values(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_values


def parse(*argv: str) -> argparse.Namespace:
    return add_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def one_sentence(message: str, *names: str) -> None:
    message = message.strip()
    assert "\n" not in message and message.endswith(".") and ". " not in message, message
    for name in names:
        assert name in message, (name, message)


@pytest.mark.parametrize(
    "argv, values, expected",
    [
        ([], {}, (7860, "default")),
        ([], {"GRADIO_SERVER_PORT": "8200"}, (8200, "GRADIO_SERVER_PORT")),
        ([], {"AELAB_PORT": "8100", "GRADIO_SERVER_PORT": "8200"}, (8100, "AELAB_PORT")),
        (
            ["--port", "8000"],
            {"AELAB_PORT": "8100", "GRADIO_SERVER_PORT": "8200"},
            (8000, "--port"),
        ),
        # what wins is not read further: a variable it overrides may hold anything
        (["--port", "8000"], {"AELAB_PORT": "x", "GRADIO_SERVER_PORT": "y"}, (8000, "--port")),
        ([], {"AELAB_PORT": "8100", "GRADIO_SERVER_PORT": "eighty"}, (8100, "AELAB_PORT")),
        ([], {"AELAB_PORT": " ", "GRADIO_SERVER_PORT": "8200"}, (8200, "GRADIO_SERVER_PORT")),
    ],
    ids=[
        "default",
        "gradio",
        "aelab-over-gradio",
        "flag-over-all",
        "flag-over-bad",
        "aelab-over-bad",
        "blank-is-unset",
    ],
)
def test_the_port_comes_from_the_flag_then_aelab_then_gradio(env, argv, values, expected):
    env(**values)
    assert port_and_origin(parse(*argv)) == expected


@pytest.mark.parametrize(
    "argv, values, expected",
    [
        ([], {}, ("127.0.0.1", "default")),
        ([], {"GRADIO_SERVER_NAME": "0.0.0.0"}, ("0.0.0.0", "GRADIO_SERVER_NAME")),
        (["--host", "localhost"], {"GRADIO_SERVER_NAME": "0.0.0.0"}, ("localhost", "--host")),
        (["--host", "::1"], {"GRADIO_SERVER_NAME": "not a host"}, ("::1", "--host")),
        ([], {"GRADIO_SERVER_NAME": "[::1]"}, ("[::1]", "GRADIO_SERVER_NAME")),
        ([], {"GRADIO_SERVER_NAME": "  "}, ("127.0.0.1", "default")),
    ],
    ids=["default", "gradio", "flag-over-gradio", "flag-over-bad", "ipv6", "blank-is-unset"],
)
def test_the_address_comes_from_the_flag_then_gradio(env, argv, values, expected):
    env(**values)
    assert host_and_origin(parse(*argv)) == expected


@pytest.mark.parametrize(
    "argv, values, names",
    [
        ([], {"GRADIO_SERVER_PORT": "eighty"}, ("GRADIO_SERVER_PORT", "'eighty'")),
        ([], {"GRADIO_SERVER_PORT": "0"}, ("GRADIO_SERVER_PORT", "1 to 65535", "0")),
        ([], {"AELAB_PORT": "99999"}, ("AELAB_PORT", "1 to 65535", "99999")),
        (["--port", "70000"], {}, ("--port", "1 to 65535", "70000")),
    ],
    ids=["gradio-word", "gradio-zero", "aelab-range", "flag-range"],
)
def test_a_bad_port_is_one_sentence_naming_its_source(env, argv, values, names):
    env(**values)
    with pytest.raises(AelabError) as err:
        port_and_origin(parse(*argv))
    one_sentence(str(err.value), *names)


@pytest.mark.parametrize(
    "argv, values, names",
    [
        ([], {"GRADIO_SERVER_NAME": "http://0.0.0.0"}, ("GRADIO_SERVER_NAME", "'http://0.0.0.0'")),
        ([], {"GRADIO_SERVER_NAME": "localhost:7860"}, ("GRADIO_SERVER_NAME", "localhost:7860")),
        (["--host", "my machine"], {}, ("--host", "'my machine'")),
        (["--host", ""], {}, ("--host", "''")),
    ],
    ids=["url", "with-port", "space", "empty-flag"],
)
def test_a_bad_address_is_one_sentence_naming_its_source(env, argv, values, names):
    env(**values)
    with pytest.raises(AelabError) as err:
        host_and_origin(parse(*argv))
    one_sentence(str(err.value), *names, "127.0.0.1")


def test_launch_py_says_which_variable_is_wrong(env, capsys):
    env(GRADIO_SERVER_NAME="http://example.org")
    assert main(["--no-browser"]) == 1
    one_sentence(capsys.readouterr().err.removeprefix("error: "), "GRADIO_SERVER_NAME")


class FakeDemo:
    """Stands in for the lab's Blocks: records what launch() was given and what gradio would
    read from the environment at that moment."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.kwargs: dict = {}
        self.environ: dict = {}

    def launch(self, **kwargs):
        self.kwargs = kwargs
        self.environ = {k: os.environ.get(k) for k in VARIABLES}
        if self.fail:
            raise OSError("Cannot find empty port in range: 8200-8200.")


@pytest.fixture
def fake_lab(monkeypatch):
    """serve() builds a FakeDemo instead of the lab (no gradio, no server)."""
    demo = FakeDemo()
    module = types.ModuleType("aelab.ui.app")
    module.build_app = lambda: demo
    monkeypatch.setitem(sys.modules, "aelab.ui.app", module)
    return demo


def test_serve_binds_what_the_variables_say_and_never_shares_unasked(env, fake_lab):
    env(GRADIO_SERVER_PORT="8200", GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SHARE="True")
    assert serve(parse("--no-browser")) == 0
    assert (fake_lab.kwargs["server_name"], fake_lab.kwargs["server_port"]) == ("0.0.0.0", 8200)
    assert fake_lab.kwargs["share"] is False  # GRADIO_SHARE is not read: only --share shares
    assert serve(parse("--no-browser", "--share")) == 0 and fake_lab.kwargs["share"] is True


def test_gradio_sees_what_the_flags_chose(env, fake_lab):
    """gradio reads GRADIO_SERVER_PORT (and stops on a word) and GRADIO_SERVER_NAME when it is
    imported: serve() hands it the chosen values before, so an overridden variable is harmless."""
    env(GRADIO_SERVER_PORT="eighty", GRADIO_SERVER_NAME="not a host")
    assert serve(parse("--no-browser", "--port", "8000", "--host", "localhost")) == 0
    assert (fake_lab.kwargs["server_name"], fake_lab.kwargs["server_port"]) == ("localhost", 8000)
    assert fake_lab.environ["GRADIO_SERVER_PORT"] == "8000"
    assert fake_lab.environ["GRADIO_SERVER_NAME"] == "localhost"


def test_a_taken_port_names_the_variable_that_chose_it(env, fake_lab):
    env(GRADIO_SERVER_PORT="8200")
    fake_lab.fail = True
    with pytest.raises(AelabError) as err:
        serve(parse("--no-browser"))
    one_sentence(str(err.value), "Cannot serve on 127.0.0.1:8200", "GRADIO_SERVER_PORT", "--port")


def test_the_lab_serves_on_gradio_server_port(env, tmp_path):
    """A real start: no flag and no AELAB_PORT, GRADIO_SERVER_PORT chooses the port."""
    from aelab.ui.devserver import ROOT, free_port, wait_ready

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), "--no-browser"],
        cwd=ROOT,
        env={
            **os.environ,
            "GRADIO_ANALYTICS_ENABLED": "False",
            "GRADIO_SERVER_PORT": str(port),
            "AELAB_RUNS_DIR": str(tmp_path / "runs"),
            "AELAB_EXPORTS_DIR": str(tmp_path / "exports"),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
