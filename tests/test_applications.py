"""The application seam: a plugin adds a use of a trained model, with its CLI command."""

from __future__ import annotations

import json
import types

import pytest
from pydantic import Field

from aelab.applications import ApplicationError, ApplicationSpec, AppParams
from aelab.cli import main
from aelab.errors import ParamsError
from aelab.hookspecs import hookimpl
from aelab.plugins import get_model


class CountParams(AppParams):
    """Parameters of the test application."""

    times: int = Field(1, ge=1, le=10, title="Times", description="How often to count.")


def _count(model, data, params):
    return {"n": len(data) * params.times}


def _cli(sub):
    s = sub.add_parser("count", help="count samples")
    s.add_argument("--times", type=int, default=1)
    s.set_defaults(func=lambda args: print(json.dumps({"counted": args.times})) or 0)


def _plugin(*specs):
    @hookimpl
    def register_applications(register):
        for spec in specs:
            register(spec)

    return types.SimpleNamespace(register_applications=register_applications)


COUNT = ApplicationSpec(
    "count",
    "Count",
    "Counts samples.",
    CountParams,
    _count,
    needs=frozenset({"reconstruct"}),
    cli=_cli,
)


def test_a_plugin_adds_an_application_with_its_command(fresh_plugins, capsys):
    fresh_plugins.pm.register(_plugin(COUNT), "counter")
    fresh_plugins.invalidate()
    assert main(["applications", "--json"]) == 0
    listed = {a["id"]: a for a in json.loads(capsys.readouterr().out)}
    assert listed["count"]["plugin"] == "counter" and listed["count"]["cli"] is True
    assert listed["count"]["params"]["properties"]["times"]["maximum"] == 10
    assert main(["count", "--times", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == {"counted": 3}


def test_serving_is_by_capability_with_a_reason():
    vae = get_model("vae").build({}, (1, 8, 8), "image")
    gan = get_model("gan").build({}, (1, 8, 8), "image")
    assert COUNT.reason_unavailable(vae) is None
    reason = COUNT.reason_unavailable(gan)
    assert "needs a model that can reconstruct" in reason and "sample" in reason
    with pytest.raises(ApplicationError, match="needs a model that can reconstruct"):
        COUNT.require(gan)


def test_parameters_are_validated_with_one_sentence():
    assert COUNT.validate_params({"times": 2}).times == 2
    with pytest.raises(ParamsError, match="'times' must be less than or equal to 10"):
        COUNT.validate_params({"times": 11})
    with pytest.raises(ParamsError, match="'colour' is not a known setting"):
        COUNT.validate_params({"colour": 1})
    with pytest.raises(ParamsError, match="must be a JSON object"):
        COUNT.validate_params([1, 2])


class Loose(AppParams):
    """A parameter without bounds or description."""

    k: int = 3


@pytest.mark.parametrize(
    "spec, fragment",
    [
        (
            ApplicationSpec("train", "Taken", "Takes a command.", CountParams, _count),
            "aelab itself",
        ),
        (ApplicationSpec("loose", "Loose", "No bounds.", Loose, _count), "numeric parameter 'k'"),
    ],
)
def test_bad_registrations_are_refused_loudly(fresh_plugins, capsys, spec, fragment):
    fresh_plugins.pm.register(_plugin(spec), "bad-app")
    fresh_plugins.invalidate()
    assert spec.id not in fresh_plugins.get_applications() or spec.id == "train"
    warnings = fresh_plugins.load_warnings()
    assert any(fragment in w and "bad-app" in w for w in warnings), warnings
    fresh_plugins.invalidate()  # as in a fresh process: the command loads the plugins itself
    assert main(["applications"]) == 0
    assert fragment in capsys.readouterr().err
