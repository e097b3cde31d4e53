"""Env presets: names, paths, ``extends``, strict keys, and finding them from anywhere."""

from __future__ import annotations

import textwrap

import pytest
from conftest import REPO, run_python, small_overrides

from quantom_gf.build import build_problem
from quantom_gf.config import available, find_preset, load_preset
from quantom_gf.detector import IdentityDetector, SimplifiedDetector
from quantom_gf.errors import ConfigError


def write_preset(tmp_path, text: str, name: str = "custom.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_available_envs():
    names = available("envs")
    assert {"proxy1d", "proxy1d-detector"} <= set(names)


def test_unknown_preset_name():
    with pytest.raises(ConfigError, match=r"unknown env 'nope'; choose one of: .*proxy1d"):
        find_preset("envs", "nope")
    with pytest.raises(ConfigError, match="unknown env 'nope'"):
        build_problem("nope")
    with pytest.raises(ConfigError, match="env preset file not found: .*missing.toml"):
        build_problem("missing.toml")


def test_extends(tmp_path):
    parent = load_preset("envs", "proxy1d")
    child = load_preset("envs", "proxy1d-detector")
    assert parent["detector"]["name"] == "none"
    assert child["detector"]["name"] == "simplified"
    for section in ("theory", "sampler", "selection", "simulation", "data", "objective"):
        assert child[section] == parent[section]
    assert child["name"] == "proxy1d-detector" and "extends" not in child
    assert child["description"] != parent["description"]
    prob = build_problem("proxy1d-detector", overrides=small_overrides(500, 500))
    assert isinstance(prob.experiment.detector, SimplifiedDetector)
    assert prob.config["objective"] == {"name": "binned_likelihood", "bins": 20, "xsec_weight": 1.0}
    assert prob.config["detector"]["s1"] == 0.15  # defaults are resolved from the stage class


def test_extends_from_a_user_file(tmp_path):
    path = write_preset(
        tmp_path,
        """
        extends = "proxy1d-detector"
        [detector]
        s0 = 0.2
        [objective]
        bins = 8
        """,
    )
    prob = build_problem(path, overrides=small_overrides(500, 500))
    assert prob.name == "custom"
    assert prob.experiment.detector.s0 == 0.2 and prob.experiment.detector.s1 == 0.15
    assert prob.objective.bins == 8


def test_new_stage_name_replaces_the_section():
    prob = build_problem("proxy1d-detector", overrides={**small_overrides(500, 500), "detector": {"name": "none"}})
    assert isinstance(prob.experiment.detector, IdentityDetector)
    assert prob.config["detector"] == {"name": "none"}


def test_extends_cycle(tmp_path):
    # Relative paths in `extends` are resolved from the working directory: use absolute ones.
    a = write_preset(tmp_path, f'extends = "{tmp_path / "b2.toml"}"\n', "a2.toml")
    write_preset(tmp_path, f'extends = "{a}"\n', "b2.toml")
    with pytest.raises(ConfigError, match="'extends' forms a cycle"):
        load_preset("envs", a)


@pytest.mark.parametrize(
    "section, key",
    [("detector", "s3"), ("simulation", "bogus"), ("data", "n_event"), ("objective", "bin"), ("theory", "grid")],
)
def test_unknown_key_in_section_named(tmp_path, section, key):
    text = f'extends = "proxy1d-detector"\n[{section}]\n{key} = 1\n'
    with pytest.raises(ConfigError, match=f"unknown key '{key}' in .*{section}"):
        build_problem(write_preset(tmp_path, text), overrides=small_overrides(500, 500))


def test_unknown_top_level_key_named(tmp_path):
    path = write_preset(tmp_path, 'extends = "proxy1d"\ndetectr = "none"\n')
    with pytest.raises(ConfigError, match="unknown key 'detectr' in env 'custom'"):
        build_problem(path)


@pytest.mark.parametrize(
    "over, message",
    [
        ({"detector": {"name": "fancy"}}, r"detector: unknown name 'fancy'; choose one of: none, simplified"),
        ({"objective": {"bins": 1}}, r"\[objective\] \(binned_likelihood\): binned_likelihood needs bins >= 2"),
        ({"simulation": {"n_events": 0}}, r"\[simulation\] n_events must be positive"),
        ({"detector": {"s0": -1.0}}, r"\[detector\] \(simplified\)"),
    ],
)
def test_bad_values(over, message):
    with pytest.raises(ConfigError, match=message):
        build_problem("proxy1d-detector", overrides={**small_overrides(500, 500), **over})


def test_invalid_toml(tmp_path):
    path = write_preset(tmp_path, "[detector\nname = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        build_problem(path)


def test_presets_found_from_another_working_directory(tmp_path):
    code = (
        "from quantom_gf.build import build_problem\n"
        "over = {'simulation': {'n_events': 300}, 'data': {'n_events': 300}}\n"
        "p = build_problem('proxy1d-detector', overrides=over)\n"
        "print(p.name, p.config['detector']['name'], p.config['theory']['name'])\n"
    )
    res = run_python(["-c", code], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["proxy1d-detector", "simplified", "proxy1d"]
    assert not (tmp_path / "envs").exists() and REPO != tmp_path
