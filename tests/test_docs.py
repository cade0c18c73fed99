"""The documentation generator (issue 8): pages come from the code and say what the code holds."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opioidsim.docs import MARKER, NAV_FILE, TutorialError, ValidationResultsError, generate, guide_pages, main
from opioidsim.docs.markdown import cell, docstring_to_markdown
from opioidsim.docs.model_pages import source_kind
from opioidsim.model.model import default_modules
from opioidsim.readouts import READOUTS
from opioidsim.scenarios import builtin_scenarios
from opioidsim.validation import TARGETS

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The generated pages in their quick form (targets listed, not run; no tutorials)."""
    out = tmp_path_factory.mktemp("docs") / "generated"
    generate(out, guide_src=GUIDE)
    return out


def _tables(page: str) -> dict[str, dict[str, list[str]]]:
    """Each Markdown table of a page by its first header cell: first cell (backticks and bold
    stripped) → the row's cells."""
    tables: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in page.splitlines():
        if line.startswith("|---"):
            continue
        if not line.startswith("| "):
            current = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if current is None:
            current = tables.setdefault(cells[0], {"": cells})
        else:
            current[cells[0].strip("`*")] = cells
    return tables


def test_every_module_has_a_page_in_the_navigation(site):
    nav = (site / NAV_FILE).read_text()
    for m in default_modules():
        page = site / "model" / f"{m.name}.md"
        assert page.is_file(), f"no page for module {m.name}"
        assert f"model/{m.name}.md" in nav
        text = page.read_text()
        assert text.startswith(f"# `{m.name}`")
        first_line = (sys.modules[type(m).__module__].__doc__ or "").strip().splitlines()[0].rstrip(".")
        assert first_line in text  # the module docstring is the page's text


def test_every_parameter_is_in_its_modules_table_with_value_unit_and_source(site):
    header = None
    for m in default_modules():
        text = (site / "model" / f"{m.name}.md").read_text()
        rows = _tables(text)["parameter"]
        header = rows[""]
        col = {name: i for i, name in enumerate(header)}
        for p in m.parameters:
            assert p.name in rows, f"{m.name}: parameter {p.name} missing from its table"
            row = rows[p.name]
            assert math.isclose(float(row[col["value"]]), p.value, rel_tol=1e-5, abs_tol=1e-12), (p.name, row)
            assert row[col["unit"]] == cell(p.unit), (p.name, row)
            assert cell(p.source) in row[col["source"]], (p.name, row)
            if p.cv > 0:
                assert math.isclose(float(row[col["CV"]].split()[0]), p.cv, rel_tol=1e-5), (p.name, row)
                assert cell(p.cv_source) in row[col["source"]]
            else:
                assert row[col["CV"]] == ""
            assert row[col["kind"]] == source_kind(p)
    assert header == ["parameter", "value", "unit", "CV", "kind", "source"]


def test_every_state_is_listed_with_its_unit(site):
    for m in default_modules():
        rows = _tables((site / "model" / f"{m.name}.md").read_text()).get("state", {})
        assert list(rows)[1:] == [s.name for s in m.states]
        for s in m.states:
            assert s.name in rows, f"{m.name}: state {s.name} missing"
            assert rows[s.name][1] == cell(s.unit)
            assert cell(s.description) in rows[s.name][4]


def test_module_pages_show_the_functions_that_compute_the_equations(site):
    for m in default_modules():
        text = (site / "model" / f"{m.name}.md").read_text()
        assert f"{type(m).__name__}.outputs" in text or f"{type(m).__name__}.rates" in text, m.name
    # and inputs link to the module that provides them
    receptor = (site / "model" / "receptor.md").read_text()
    assert "`brain_heroin` (from [pk](pk.md))" in receptor


def test_every_readout_is_on_the_readouts_page(site):
    rows = _tables((site / "readouts.md").read_text())["readout"]
    for r in READOUTS.values():
        assert r.name in rows, f"readout {r.name} missing"
        assert rows[r.name][1] == cell(r.units)
        assert rows[r.name][2] == cell(r.long_name)


def test_every_validation_target_is_listed_without_running_it(site):
    text = (site / "validation.md").read_text()
    rows = _tables(text)["id"]
    for t in TARGETS:
        assert t.id in rows, f"validation target {t.id} missing"
        assert rows[t.id][1:4] == [cell(t.finding), cell(t.target), cell(t.source)]
    assert "did not simulate" in text


def test_validation_results_from_a_validate_json_file(tmp_path):
    rows = [{"id": t.id, "finding": t.finding, "target": t.target, "simulated": f"value of {t.id}",
             "passed": t.id != TARGETS[0].id, "source": t.source, "known_gap": ""} for t in TARGETS]
    results = tmp_path / "validation.json"
    results.write_text(json.dumps(rows))
    generate(tmp_path / "out", validation=str(results))
    text = (tmp_path / "out" / "validation.md").read_text()
    table = _tables(text)["id"]
    assert table[TARGETS[0].id][4] == "**FAIL**"
    assert all(table[t.id][3] == cell(f"value of {t.id}") for t in TARGETS)
    assert f"{len(TARGETS) - 1} of {len(TARGETS)} targets passed" in text

    results.write_text(json.dumps(rows + [{"id": "V-GONE-1", "simulated": "", "passed": True}]))
    with pytest.raises(ValidationResultsError, match="V-GONE-1"):
        generate(tmp_path / "out", validation=str(results))
    with pytest.raises(ValidationResultsError, match="list"):
        generate(tmp_path / "out", validation=str(tmp_path / "missing.json"))


def test_every_builtin_scenario_is_on_the_scenarios_page_with_its_toml(site):
    text = (site / "scenarios.md").read_text()
    from opioidsim.scenarios import builtin_dir

    for name in builtin_scenarios():
        assert f"## {name}\n" in text
        assert builtin_dir().joinpath(f"{name}.toml").read_text().strip() in text


def test_output_is_deterministic(site, tmp_path):
    again = tmp_path / "again"
    generate(again, guide_src=GUIDE)

    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert files(site) == files(again)


TUTORIAL = """# A tiny tutorial

Text before.

```python
import matplotlib.pyplot as plt
x = 6 * 7
print("the answer is", x)
```

```toml
# not executed
```

```python
plt.plot([0, 1], [0, x])
```

```python
from matplotlib.figure import Figure
report = Figure()  # a figure made without pyplot, as report functions return them
report.add_subplot().plot([0, 1], [1, 0])
```

```python
print(x + 1)
{bad}
```
"""


def _tutorials(tmp_path, bad: str) -> Path:
    src = tmp_path / "tutorials_src"
    src.mkdir()
    (src / "07-tiny.md").write_text(TUTORIAL.replace("{bad}", bad))
    return src


def test_tutorial_blocks_run_in_one_namespace_with_output_and_figures(tmp_path):
    src = _tutorials(tmp_path, "")
    generate(tmp_path / "a", tutorials_src=src)
    page = (tmp_path / "a" / "tutorials" / "tiny.md").read_text()
    assert "```text\nthe answer is 42\n```" in page
    assert "```text\n43\n```" in page
    assert "![figure tiny-1.png](img/tiny-1.png)" in page
    assert page.count("![figure tiny-2.png](img/tiny-2.png)") == 1  # the Figure in a variable, once
    assert "tiny-3.png" not in page
    assert (tmp_path / "a" / "tutorials" / "img" / "tiny-1.png").read_bytes().startswith(b"\x89PNG")
    assert "tutorials/tiny.md" in (tmp_path / "a" / NAV_FILE).read_text()
    # figures are deterministic too
    generate(tmp_path / "b", tutorials_src=src)
    assert ((tmp_path / "a" / "tutorials" / "img" / "tiny-1.png").read_bytes()
            == (tmp_path / "b" / "tutorials" / "img" / "tiny-1.png").read_bytes())


def test_a_tutorial_block_that_raises_fails_the_build_naming_page_and_block(tmp_path, capsys):
    src = _tutorials(tmp_path, "raise ValueError('the model changed')")
    with pytest.raises(TutorialError, match=r"07-tiny\.md, block 4 \(line 25\) raised ValueError: the model changed"):
        generate(tmp_path / "out", tutorials_src=src)
    assert not (tmp_path / "out").exists()  # nothing half-written
    # the command line reports it and exits 1
    assert main(["--out", str(tmp_path / "out"), "--tutorials", str(src), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "07-tiny.md, block 4" in err
    assert re.search(r'File ".*07-tiny.md", line 27', err)  # the traceback points into the source


def test_generator_refuses_to_wipe_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    generate(tmp_path / "gen")
    assert (tmp_path / "gen" / MARKER).is_file()
    (tmp_path / "gen" / "stale.md").write_text("from an old run")
    generate(tmp_path / "gen")
    assert not (tmp_path / "gen" / "stale.md").exists()


def test_docstring_lists_get_the_blank_lines_markdown_needs():
    md = docstring_to_markdown("Intro:\n- one\n  continued\n- two\nAfter the list.\n\n    eq = 1\n")
    assert md == "Intro:\n\n- one\n  continued\n- two\n\nAfter the list.\n\n    eq = 1\n"


def _mkdocs_site(tmp_path: Path, generated_from: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("generated"))
    if generated_from is None:
        generate(tmp_path / "docs" / "generated", guide_src=GUIDE, **kwargs)
    else:
        shutil.copytree(generated_from, tmp_path / "docs" / "generated")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "-f", str(tmp_path / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")] + (["--strict"] if kwargs.get("tutorials_src") else []),
                          capture_output=True, text=True, cwd=tmp_path)


def test_mkdocs_builds_the_site_from_the_generated_pages(site, tmp_path):
    r = _mkdocs_site(tmp_path, generated_from=site)
    assert r.returncode == 0, r.stderr
    # the quick form has no tutorials: links to them are the only thing mkdocs may warn about
    warnings = [line for line in r.stderr.splitlines() if line.startswith("WARNING")]
    assert [w for w in warnings if "generated/tutorials/" not in w] == []
    html = (tmp_path / "site" / "generated" / "model" / "pk" / "index.html").read_text()
    assert "heroin_clearance" in html and "<table>" in html
    assert not (tmp_path / "site" / "tutorials_src").exists()


@pytest.mark.slow
def test_tutorials_run_and_the_whole_site_builds_strictly(tmp_path):
    """What `make docs` does, validation listed only (ten minutes or more on 2 cores: the four tutorials
    simulate)."""
    r = _mkdocs_site(tmp_path, tutorials_src=ROOT / "docs" / "tutorials_src")
    assert r.returncode == 0, r.stderr
    for slug in ("five-steps", "chronic-course", "animal-experiment", "virtual-trial"):
        page = (tmp_path / "docs" / "generated" / "tutorials" / f"{slug}.md").read_text()
        assert "```text" in page and "](img/" in page, slug
        assert (tmp_path / "site" / "generated" / "tutorials" / slug / "index.html").is_file()


def test_guide_pages_are_in_the_navigation_in_the_order_of_their_numbers(site):
    nav = (site / NAV_FILE).read_text().splitlines()
    files = sorted(GUIDE.glob("*.md"))
    assert len(files) >= 10
    lines = []
    for f in files:
        title = re.search(r"^# (.+)$", f.read_text(), re.M).group(1)
        entry = f'      - "{title}": guide/{f.name}'
        assert entry in nav, entry
        lines.append(nav.index(entry))
    assert lines == sorted(lines)
    assert [path for _, path in guide_pages(GUIDE)] == [f"guide/{f.name}" for f in files]
    with pytest.raises(FileNotFoundError, match="no guide pages"):
        generate(site.parent / "empty-guide", guide_src=site / "model" / "missing")


def test_readme_stays_short_and_links_only_to_files_that_exist():
    """Issue 8: "The README links to it and stays short"; the long sections live in docs/guide/."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 120 and len(readme) <= 8000
    assert "make demo" in readme and "make test" in readme
    assert "never a dosing guide" in readme  # the research-and-teaching notice stays on the front page
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    for link in local:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"
    for f in GUIDE.glob("*.md"):  # every guide page is reachable from the README
        assert f"docs/guide/{f.name}" in local, f"README does not link to docs/guide/{f.name}"


def test_facts_moved_out_of_the_readme_are_on_their_guide_pages():
    """The sections moved from the README kept their facts (a sample, one per page)."""
    facts = {
        "01-getting-started.md": "median peak NAc dopamine: 12.0 nM (baseline 4.9 nM)",
        "02-command-line.md": "opioidsim run --resume <out>.incomplete",
        "03-scenario-files.md": "at most 100,000 dose events per",
        "04-explorer.md": "1,000 subject-doses",
        "05-animal-experiments.md": "V-SA-1 … V-SA-3",
        "06-treatment-and-trials.md": "trial-methadone-vs-no-substitution",
        "07-brain-damage-and-imaging.md": "r = −0.24",
        "08-gymnasium.md": "opioidsim/Subject-v0",
        "09-large-cohorts.md": "4,096 subjects × 30 min",
        "10-model.md": "VE = W·(1 − s^P3) + (D_CO2 + D_O2)·(1 − s^P1)",
        "11-engine.md": "QUANTUM_MIN = 1/16",
        "12-validation.md": "| V-WD-1 | heroin withdrawal after the last dose",
        "13-parameters.md": "σ = √ln(1 + cv²)",
    }
    for page, fact in facts.items():
        assert fact in (GUIDE / page).read_text(), (page, fact)
