"""What the release steps share: how far apart they poll in a rehearsal (infra/cloud_api.py).

Seen failing: with poll_interval returning the interval unscaled, the scaling tests fail; without the floor, the
floor test; with the range check dropped, the refusal tests (a zero or negative scale would poll in a busy loop).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.cloud_api import TIME_SCALE_VARIABLE, poll_interval
from localcloud import LocalCloud


def test_outside_a_rehearsal_the_interval_is_wall_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIME_SCALE_VARIABLE, raising=False)
    assert poll_interval(5.0) == 5.0


@pytest.mark.parametrize(("scale", "expected"), [("0.02", 0.1), ("1", 5.0), ("0.5", 2.5)])
def test_in_a_rehearsal_a_poll_is_the_interval_in_simulated_seconds(
    monkeypatch: pytest.MonkeyPatch, scale: str, expected: float
) -> None:
    monkeypatch.setenv(TIME_SCALE_VARIABLE, scale)
    assert poll_interval(5.0) == pytest.approx(expected)


def test_a_tiny_scale_still_leaves_time_between_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIME_SCALE_VARIABLE, "0.000001")
    assert poll_interval(5.0) == 0.05


@pytest.mark.parametrize("value", ["fast", "0", "-0.1", "2", "nan"])
def test_a_scale_that_is_not_a_fraction_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(TIME_SCALE_VARIABLE, value)
    with pytest.raises(ValueError, match=rf"{TIME_SCALE_VARIABLE}='{value}': expected a number in \(0, 1\]"):
        poll_interval(5.0)


def test_the_local_cloud_hands_its_scale_to_the_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = LocalCloud(tmp_path / "cloud").init(scale=0.04)
    env = cloud.env("http://127.0.0.1:1", "/bin/false", "http://127.0.0.1:2")
    monkeypatch.setenv(TIME_SCALE_VARIABLE, env[TIME_SCALE_VARIABLE])
    assert poll_interval(5.0) == pytest.approx(0.2)
