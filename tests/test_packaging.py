"""Packaging: every subpackage ships, presets ship, and the core never imports the heavy extras."""

from __future__ import annotations

import tomllib

from conftest import REPO, run_python

# Extras that the core (and every solver-free import) must not load: importing torch alone
# costs seconds and gigabytes, and mpi4py initialises MPI on import.
HEAVY = ("torch", "stable_baselines3", "mpi4py")


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_every_subpackage_is_listed():
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "quantom_gf").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert "quantom_gf.theory" in found  # the walk itself works
    missing = sorted(found - listed)
    assert not missing, f"packages missing from pyproject.toml [tool.setuptools] packages: {missing}"


def test_every_listed_package_exists():
    tool = pyproject()["tool"]["setuptools"]
    mapped = tool.get("package-dir", {})
    for pkg in tool["packages"]:
        where = REPO / mapped[pkg] if pkg in mapped else REPO.joinpath(*pkg.split("."))
        assert where.is_dir(), pkg
        if pkg not in mapped:
            assert (where / "__init__.py").is_file(), pkg


def test_presets_ship_as_package_data():
    tool = pyproject()["tool"]["setuptools"]
    assert tool["package-dir"]["quantom_gf.presets.envs"] == "envs"
    assert "*.toml" in tool["package-data"]["quantom_gf.presets.envs"]
    assert list((REPO / "envs").glob("*.toml"))


def test_core_import_does_not_load_heavy_extras(tmp_path):
    """Stub packages for the extras sit first on the path, so any import of them is seen
    even on a machine where they are not installed."""
    for name in HEAVY:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    code = (
        "import sys\n"
        "import quantom_gf, quantom_gf.build, quantom_gf.env, quantom_gf.evaluate\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    res = run_python(["-c", code], cwd=tmp_path, env_extra={"PYTHONPATH": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    # The stubs are importable, so the check above could see an import.
    res = run_python(
        ["-c", "import torch; print(torch.__file__)"], cwd=tmp_path, env_extra={"PYTHONPATH": str(tmp_path)}
    )
    assert str(tmp_path) in res.stdout
