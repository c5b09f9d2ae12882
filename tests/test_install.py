"""The venv is what the requirement files say, and the files say what our code uses.

README "Set-up" installs ``requirements.txt`` (scoring videos) and ``requirements-dev.txt``
(tests, lint), then the project itself (``pip install -e . --no-deps``). ``requirements-ray.txt``
(``--engine ray``) and ``requirements-train.txt`` (training, evaluation) are optional; each counts
here once its direct pins are installed. Every distribution in the venv must be pinned (``==``)
by one of the files that count, at the version installed, so a fresh venv is the one tested.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import sysconfig
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from storage.locations import REPO_ROOT
from tests.test_layering import all_imports, resolve_ours, room_of

RUNTIME = REPO_ROOT / "requirements.txt"
DEV = REPO_ROOT / "requirements-dev.txt"
RAY = REPO_ROOT / "requirements-ray.txt"
TRAIN = REPO_ROOT / "requirements-train.txt"
#: What README "Set-up" installs; all of it must be in the venv.
README_INSTALLS: tuple[Path, ...] = (RUNTIME, DEV)
#: Optional files: they count when their direct pins are installed.
OPTIONAL: tuple[Path, ...] = (RAY, TRAIN)
#: Installed by ``python -m venv`` and upgraded by the README's first step: never pinned.
INSTALLER = frozenset({"pip"})
#: Imports of optional packages that may be absent from the venv: module -> (distribution, the file pinning it).
OPTIONAL_IMPORTS: dict[str, tuple[str, Path]] = {"ray": ("ray", RAY), "vaderSentiment": ("vadersentiment", TRAIN)}
#: Where a layer's third-party imports may be pinned as direct dependencies.
IMPORT_HOMES: dict[str, tuple[Path, ...]] = {
    "training": (RUNTIME, TRAIN),
    "pipeline": (RUNTIME, RAY),
    "bench": (RUNTIME, TRAIN),
    "examples": (RUNTIME, DEV),  # make_example.py animates scikit-image's public-domain astronaut
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")


def canonical(name: str) -> str:
    """PEP 503 name: case and runs of ``-_.`` do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of a requirement file.

    Attributes:
        name: Canonical distribution name.
        version: The pinned version.
        direct: In the file's "direct" section (else "pulled in").
        file: The file it is written in.
        line: Its line number there.
    """

    name: str
    version: str
    direct: bool
    file: Path
    line: int

    def where(self) -> str:
        return f"{self.file.name}:{self.line}"


def own_pins(path: Path) -> tuple[list[Pin], list[Path], list[str]]:
    """The pins written in ``path`` itself, the files it includes with ``-r``, and lines that are neither."""
    pins: list[Pin] = []
    includes: list[Path] = []
    bad: list[str] = []
    direct = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith("# ---"):
            direct = line.startswith("# --- direct")
            continue
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            includes.append(path.parent / line[3:].strip())
            continue
        match = _PIN.match(line)
        if match is None:
            bad.append(f"{path.name}:{number}: {raw.strip()!r} is not name==version")
            continue
        pins.append(Pin(canonical(match[1]), match[2], direct, path, number))
    return pins, includes, bad


def pins_of(path: Path) -> list[Pin]:
    """The pins of ``path`` and of every file it includes (``-r``), includes first."""
    pins, includes, _ = own_pins(path)
    return [p for inc in includes for p in pins_of(inc)] + pins


def venv_distributions() -> Iterable[importlib.metadata.Distribution]:
    """The distributions pip installed into this environment's site-packages.

    Not every folder on ``sys.path``: importing Ray puts ``ray/thirdparty_files`` (its own
    vendored psutil and colorama) on ``sys.path``, and those are Ray's files, not the venv's.
    """
    folders = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    return importlib.metadata.distributions(path=folders)


def installed_distributions() -> dict[str, str]:
    """Canonical name -> version of every distribution installed in the venv (the first found wins)."""
    found: dict[str, str] = {}
    for dist in venv_distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), dist.version)
    return found


def our_project_name() -> str:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return canonical(tomllib.load(f)["project"]["name"])


def counting_files(installed: dict[str, str]) -> list[Path]:
    """README's files, plus each optional file whose direct pins are all installed."""
    files = list(README_INSTALLS)
    for path in OPTIONAL:
        direct = [p for p in own_pins(path)[0] if p.direct]
        if direct and all(p.name in installed for p in direct):
            files.append(path)
    return files


def required_by(names: Iterable[str]) -> dict[str, list[str]]:
    """Which installed distributions declare each of ``names`` as a requirement (markers ignored)."""
    wanted = set(names)
    users: dict[str, list[str]] = {n: [] for n in wanted}
    for dist in venv_distributions():
        for requirement in dist.requires or ():
            if "extra ==" in requirement:
                continue
            needed = canonical(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0])
            if needed in wanted:
                users[needed].append(dist.metadata["Name"])
    return users


def test_every_line_is_an_exact_pin_and_each_name_is_pinned_once():
    problems: list[str] = []
    for path in (RUNTIME, DEV, RAY, TRAIN):
        pins, includes, bad = own_pins(path)
        problems += bad
        if not any(p.direct for p in pins):
            problems.append(f"{path.name}: no '# --- direct' section")
        if path != RUNTIME and includes != [RUNTIME]:
            problems.append(f"{path.name}: must start from requirements.txt ('-r requirements.txt'), has {includes}")
        seen: dict[str, Pin] = {}
        for pin in pins_of(path):
            if pin.name in seen:
                problems.append(f"{pin.name} pinned twice: {seen[pin.name].where()} and {pin.where()}")
            seen[pin.name] = pin
    assert not problems, "\n".join(problems)


def test_the_venv_has_no_unpinned_distribution():
    installed = installed_distributions()
    files = counting_files(installed)
    pinned = {p.name for path in files for p in pins_of(path)}
    extra = sorted(set(installed) - pinned - INSTALLER - {our_project_name()})
    users = required_by(extra)
    lines = [f"  {name}=={installed[name]} (required by: {', '.join(sorted(users[name])) or 'nothing'})"
             for name in extra]
    assert not extra, (
        f"the venv ({sys.prefix}) holds distributions that no installed requirement file pins "
        f"({', '.join(p.name for p in files)}):\n" + "\n".join(lines)
        + "\npin each in the 'pulled in' section of the file whose packages need it, or uninstall it")


def test_pinned_versions_are_the_installed_ones():
    installed = installed_distributions()
    problems: list[str] = []
    for path in counting_files(installed):
        for pin in pins_of(path):
            if pin.file != path:
                continue  # an included file is checked on its own
            if pin.name not in installed:
                if path in README_INSTALLS:
                    problems.append(f"{pin.name}=={pin.version} ({pin.where()}) is not installed")
                continue
            if not SpecifierSet(f"=={pin.version}").contains(installed[pin.name], prereleases=True):
                problems.append(f"{pin.name} is {installed[pin.name]}, pinned {pin.version} ({pin.where()})")
    assert not problems, (f"the venv ({sys.prefix}) differs from the pins; run README 'Set-up' again:\n"
                          + "\n".join(problems))


def _modules_by_distribution() -> dict[str, set[str]]:
    """Canonical distribution name -> the top-level modules it installs.

    From top_level.txt and the installed files (folders, ``.py`` and extension modules):
    ``importlib.metadata.packages_distributions`` of Python 3.11 misses a lone extension
    module such as parselmouth's ``parselmouth.cpython-311-x86_64-linux-gnu.so``.
    """
    found: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        modules = found.setdefault(canonical(name), set())
        modules.update((dist.read_text("top_level.txt") or "").split())
        for file in dist.files or ():
            first = file.parts[0]
            if len(file.parts) > 1:
                candidate = first
            elif file.suffix in (".py", ".so", ".pyd"):
                candidate = first.split(".")[0]
            else:
                continue
            if candidate.isidentifier() and candidate != "__pycache__":
                modules.add(candidate)
    return found


def _third_party_imports() -> dict[str, list[tuple[str, str]]]:
    """Top-level third-party module -> [(importing module of ours, where)], from every import of our code."""
    from tests.test_layering import our_modules

    modules = our_modules()
    found: dict[str, list[tuple[str, str]]] = {}
    for imp in all_imports():
        top = imp.target.split(".")[0]
        if resolve_ours(imp.target, modules) is not None or top in sys.stdlib_module_names or top == "__future__":
            continue
        found.setdefault(top, []).append((imp.importer, imp.where()))
    return found


def test_every_direct_pin_is_used_by_our_code():
    """A direct pin of requirements.txt is imported by our packages or is a model package assets.py resolves."""
    installed = installed_distributions()
    imported = set(_third_party_imports())
    modules_of = _modules_by_distribution()
    assets = (REPO_ROOT / "extractors" / "assets.py").read_text(encoding="utf-8")
    unused = []
    for pin in pins_of(RUNTIME):
        if not pin.direct:
            continue
        if pin.name not in installed:
            pytest.skip(f"{pin.name} is not installed (test_pinned_versions_are_the_installed_ones says so)")
        modules = modules_of.get(pin.name, set())
        named_in_assets = any(m in assets for m in modules) or pin.name in assets
        if not (modules & imported) and not named_in_assets:
            unused.append(f"  {pin.name} ({pin.where()}; installs {', '.join(sorted(modules)) or 'no module'})")
    assert not unused, ("direct pins of requirements.txt that neither our code imports nor extractors/assets.py "
                        "resolves: move them to 'pulled in' if a direct one needs them, else drop them:\n"
                        + "\n".join(unused))


def test_every_third_party_import_is_a_direct_pin():
    """What our packages import is pinned directly (not only pulled in by chance) in the file for its layer."""
    modules_of = _modules_by_distribution()
    problems = []
    for module, users in sorted(_third_party_imports().items()):
        if module in OPTIONAL_IMPORTS and not any(module in mods for mods in modules_of.values()):
            dists = {OPTIONAL_IMPORTS[module][0]}
        else:
            dists = {name for name, mods in modules_of.items() if module in mods}
        for importer, where in users:
            homes = IMPORT_HOMES.get(room_of(importer), (RUNTIME,))
            direct = {p.name for path in homes for p in own_pins(path)[0] if p.direct}
            if not dists & direct:
                problems.append(f"  {module} ({', '.join(sorted(dists)) or 'not installed'}) imported at {where}: "
                                f"not a direct pin of {' or '.join(p.name for p in homes)}")
    assert not problems, "third-party imports without a direct pin:\n" + "\n".join(problems)
