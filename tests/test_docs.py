"""The documentation points at files that exist: every relative link and image of README.md
and docs/*.md names a file of the repository (a broken one once pointed at run folders that an
ignore rule had kept out of git)."""

import functools
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# [text](target) and ![alt](target); a target may carry a #fragment
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@functools.cache
def _tracked():
    """The files git tracks (so an ignored file that exists only here still counts as
    missing); every file under the repository where this is not a git checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file()}
    return set(out.splitlines())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_name_tracked_files(page):
    tracked = _tracked()
    folders = {str(p) for f in tracked for p in Path(f).parents}
    missing = []
    for target in LINK.findall(page.read_text()):
        path = target.split("#")[0]
        if not path or re.match(r"[a-z]+:", path):  # a fragment, http:, mailto:
            continue
        rel = str((page.parent / path).resolve().relative_to(REPO))
        if rel not in tracked and rel not in folders:
            missing.append(target)
    assert not missing, f"{page.name} links to files git does not track: {missing}"


# `keras-resnets evaluate --model NAME [--depth D] --weights cifar10 ...  # [Test accuracy: ]0.9368`
EVALUATE = re.compile(
    r"evaluate --model (\w+)(?: --depth (\d+))? --weights cifar10 .*#\s*(?:Test accuracy:\s*)?"
    r"(0\.\d{4})"
)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_documented_evaluate_figures_are_the_shipped_weights(page):
    """Each `evaluate ... --weights cifar10   # 0.xxxx` line promises the figure of the file
    shipped today (one once promised a replaced file's 0.9281 where the command printed
    0.9368): it must be the manifest's full-test-set accuracy."""
    import inspect

    from keras_resnets.models import registry

    claims = EVALUATE.findall(page.read_text())
    for model, depth, figure in claims:
        depth = (
            int(depth)
            if depth
            else inspect.signature(registry.get_builder(model)).parameters["depth"].default
        )
        shipped = {w.layout.get("depth"): w.top1 for w in registry.shipped_weights(model)}
        assert depth in shipped, f"{page.name}: no shipped {model} depth {depth}"
        assert round(float(figure) * 100, 2) == shipped[depth], (page.name, model, depth, figure)
    if page.name == "README.md":
        assert len(claims) >= 8  # the pattern still finds the README's commands
