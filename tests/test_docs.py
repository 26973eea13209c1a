"""The documentation's examples are tests: a stale example, command, option or YAML key fails here.

- every ``python`` block of a ``docs/*.md`` page runs, in order, in one fresh interpreter per page
  (a scratch folder holding a copy of ``configs/`` is the working directory); a block whose first
  line is a file-name comment (``# my_transforms.py``) is written to that file instead, and a
  ``test_*.py`` file's ``test_*`` functions are then called;
- every ``bayesmmm ...`` line of a code block (docs and README) or inline code span (docs) names a
  real command and only options that command (or the global options) has; the cheap ones in
  ``bash`` blocks (``--help``, ``--version``, ``schema``, ``datasets``, ``simulate``) run and must
  exit 0;
- every YAML block parses, and one that is (part of) an experiment validates against the
  experiment's JSON Schema;
- the command reference (``docs/cli.md``) has a section per command naming every option, and the
  YAML reference (``docs/experiment.md``) names every key of the schema in its section;
- the README's relative links point at files that exist.

A block that cannot run fast is preceded by the MyST comment ``% docs-test: skip <reason>``; a
directive without a reason fails.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
README = ROOT / "README.md"
SCHEMA = json.loads((ROOT / "configs" / "experiment.schema.json").read_text())

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,})(?P<lang>[^`\s]*)[^`]*$")
DIRECTIVE = re.compile(r"^%\s*docs-test:(?P<rest>.*)$")
FILE_COMMENT = re.compile(r"^#\s*(?P<name>[\w./-]+\.py)\b")
# a command line as written in the docs: `bayesmmm ...`, `$ bayesmmm ...`, `.venv/bin/bayesmmm ...`
COMMAND = re.compile(r"^\s*(?:\$\s+)?(?:\.venv/bin/)?bayesmmm(?:\s+(?P<args>.*))?$")
INLINE = re.compile(r"(?<!`)`(bayesmmm [^`]+)`(?!`)")
OPTION = re.compile(r"(?<![\w/.:=-])(--?[A-Za-z][\w-]*)")
CHEAP_COMMANDS = {"schema", "datasets", "simulate"}
RUN_LANGS = {"bash", "sh", "shell", "console"}
SHELL_LANGS = RUN_LANGS | {"text", ""}


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the block's first content line
    lang: str
    text: str
    skip: str | None  # the reason of a `% docs-test: skip` directive before it

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page (MyST directives such as ```{toctree} excluded)."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    pending: str | None = None
    i = 0
    while i < len(lines):
        directive = DIRECTIVE.match(lines[i])
        if directive:
            rest = directive["rest"].strip()
            assert rest.startswith("skip ") and rest[5:].strip(), (
                f"{page.name}:{i + 1}: write `% docs-test: skip <reason>` (a reason is required)"
            )
            pending = rest[5:].strip()
            i += 1
            continue
        fence = FENCE.match(lines[i])
        if not fence:
            if lines[i].strip() and pending is not None:
                raise AssertionError(f"{page.name}:{i + 1}: a `% docs-test: skip` line must come right before a block")
            i += 1
            continue
        indent, ticks, lang = fence["indent"], fence["fence"], fence["lang"]
        start = i + 1
        i += 1
        while i < len(lines) and not (lines[i].strip() == ticks and lines[i].startswith(indent)):
            i += 1
        assert i < len(lines), f"{page.name}:{start}: unclosed code block"
        body = "\n".join(line[len(indent) :] if line.startswith(indent) else line for line in lines[start:i])
        if not lang.startswith("{"):
            found.append(Block(page, start + 1, lang.lower(), body + "\n", pending))
        pending = None
        i += 1
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]


def test_the_docs_have_runnable_examples():
    """The harness finds what it is meant to check (a parser that finds nothing would pass everything)."""
    langs = {b.lang for b in ALL_BLOCKS}
    assert {"python", "yaml", "bash", "text"} <= langs
    assert sum(b.lang == "python" for b in ALL_BLOCKS) >= 5


# ------------------------------------------------------------------------------------------ Python blocks
RUNNER = textwrap.dedent(
    """
    import importlib, json, sys
    from pathlib import Path

    sys.path.insert(0, ".")
    namespace = {"__name__": "__docs__"}
    for block in json.loads(Path("_blocks.json").read_text()):
        code = block["text"]
        if block["file"]:
            Path(block["file"]).parent.mkdir(parents=True, exist_ok=True)
            Path(block["file"]).write_text(code)
            name = Path(block["file"]).stem
            if name.startswith("test_"):
                importlib.invalidate_caches()
                module = importlib.import_module(name)
                for attr in sorted(vars(module)):
                    if attr.startswith("test_") and callable(getattr(module, attr)):
                        getattr(module, attr)()
            continue
        # padded so that a traceback names the page's own line numbers
        exec(compile("\\n" * (block["line"] - 1) + code, block["page"], "exec"), namespace)
    """
)

PYTHON_PAGES = sorted({b.page for b in ALL_BLOCKS if b.lang == "python"})


def scratch(tmp_path: Path) -> Path:
    """A working folder with a copy of configs/ (the examples' relative paths), without simulated data."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs", ignore=shutil.ignore_patterns("data"))
    return tmp_path


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "MPLBACKEND": "Agg",
    }


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: p.name)
def test_python_examples_run(page: Path, tmp_path: Path):
    work = scratch(tmp_path)
    todo = []
    for block in blocks(page):
        if block.lang != "python" or block.skip:
            continue
        first = block.text.splitlines()[0] if block.text.strip() else ""
        match = FILE_COMMENT.match(first)
        todo.append(
            {"page": block.where.split(":")[0], "line": block.line, "text": block.text, "file": match and match["name"]}
        )
    (work / "_blocks.json").write_text(json.dumps(todo))
    done = subprocess.run(
        [sys.executable, "-c", RUNNER], cwd=work, env=env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{page.name}: an example failed\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


# ------------------------------------------------------------------------------------------- CLI lines
def _cli():
    import typer.main

    from bayesmmm.cli import app

    group = typer.main.get_command(app)
    options = {
        name: {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}
        for name, cmd in group.commands.items()
    }
    global_opts = {o for p in group.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    return options, global_opts


def command_lines(block: Block) -> list[str]:
    """The ``bayesmmm`` lines of a shell or text block, continuation lines joined, comments dropped."""
    out: list[str] = []
    for raw in block.text.splitlines():
        line = raw.split(" # ")[0].split("   #")[0].rstrip()
        if COMMAND.match(line):
            out.append(line.strip())
        elif out and raw.startswith(" ") and raw.strip().startswith("["):  # a synopsis' continued options
            out[-1] += " " + line.strip()
    return out


def check_command(
    line: str, where: str, options: dict[str, set[str]], global_opts: set[str]
) -> tuple[str | None, list[str]]:
    """Check a ``bayesmmm`` line's command and options; return the command and the line's arguments."""
    args = (COMMAND.match(line)["args"] or "").strip()
    words = args.split()
    command = None
    for position, word in enumerate(words):
        if word.startswith("-"):
            continue
        if word in options:
            command = word
        else:
            # `...` and `|` in a synopsis, an upper-case placeholder (`bayesmmm COMMAND --help`)
            assert word in {"...", "|"} or word.isupper(), f"{where}: `{line}`: {word!r} is not a bayesmmm command"
        head, tail = words[:position], words[position + 1 :]
        break
    else:
        head, tail = words, []
    for option in OPTION.findall(" ".join(head)):
        option = "-v" if option == "-vv" else option
        assert option in global_opts, f"{where}: `{line}`: {option} is not a global option of bayesmmm"
    if command:
        for option in OPTION.findall(" ".join(tail)):
            assert option in options[command] | {"--help"}, f"{where}: `{line}`: `bayesmmm {command}` has no {option}"
    return command, words


SHELL_BLOCKS = [b for page in [*PAGES, README] for b in blocks(page) if b.lang in SHELL_LANGS]


def test_every_documented_command_and_option_exists():
    options, global_opts = _cli()
    checked = 0
    for block in SHELL_BLOCKS:
        for line in command_lines(block):
            check_command(line, block.where, options, global_opts)
            checked += 1
    for page in PAGES:
        for number, text in enumerate(page.read_text().splitlines(), 1):
            for span in INLINE.findall(text):
                check_command(span, f"{page.name}:{number}", options, global_opts)
                checked += 1
    assert checked >= 50


def cheap_runs() -> list[tuple[str, str]]:
    options, global_opts = _cli()
    runs = []
    for block in SHELL_BLOCKS:
        if block.lang not in RUN_LANGS or block.skip or block.page == README:
            continue
        for line in command_lines(block):
            command, words = check_command(line, block.where, options, global_opts)
            if command in CHEAP_COMMANDS or "--help" in words or (command is None and "--version" in words):
                runs.append((block.where, line))
    return runs


CLI_RUNNER = textwrap.dedent(
    """
    import json, sys
    from typer.testing import CliRunner
    from bayesmmm.cli import app

    results = []
    for args in json.loads(sys.argv[1]):
        result = CliRunner().invoke(app, args)
        results.append({"code": result.exit_code, "output": result.output[-2000:], "error": repr(result.exception)})
    print(json.dumps(results))
    """
)


def test_cheap_commands_run(tmp_path: Path):
    """The cheap commands of the docs' shell blocks, in one interpreter (typer's test runner), must exit 0."""
    runs = cheap_runs()
    assert any("simulate" in line for _, line in runs) and any("--help" in line for _, line in runs)
    argv = [shlex.split(COMMAND.match(line)["args"] or "") for _, line in runs]
    done = subprocess.run(
        [sys.executable, "-c", CLI_RUNNER, json.dumps(argv)],
        cwd=scratch(tmp_path),
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(done.stdout.splitlines()[-1])
    for (where, line), result in zip(runs, results, strict=True):
        assert result["code"] == 0, f"{where}: `{line}` exited {result['code']}: {result['error']}\n{result['output']}"


def test_the_command_reference_names_every_command_and_option():
    options, _ = _cli()
    text = (DOCS / "cli.md").read_text()
    sections = dict(re.findall(r"^### bayesmmm (\S+)\n(.*?)(?=^#{2,3} |\Z)", text, re.S | re.M))
    assert set(sections) == set(options), f"docs/cli.md: sections {sorted(sections)} vs commands {sorted(options)}"
    for name, opts in options.items():
        missing = [o for o in sorted(opts) if f"`{o}`" not in sections[name]]
        assert not missing, f"docs/cli.md, `bayesmmm {name}`: options not documented: {missing}"
        assert re.search(rf"^bayesmmm {re.escape(name)}\b", text, re.M), f"docs/cli.md: no synopsis line for {name}"


# ------------------------------------------------------------------------------------------ YAML blocks
def _schema_keys(node: dict, path: tuple[str, ...], out: set[tuple[str, ...]], seen: set) -> None:
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        if (name, path) not in seen:
            seen.add((name, path))
            _schema_keys(SCHEMA["$defs"][name], path, out, seen)
        return
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in node.get(key, []):
            _schema_keys(sub, path, out, seen)
    if isinstance(node.get("items"), dict):
        _schema_keys(node["items"], path, out, seen)
    if isinstance(node.get("additionalProperties"), dict):
        _schema_keys(node["additionalProperties"], (*path, "*"), out, seen)
    for key, sub in node.get("properties", {}).items():
        out.add((*path, key))
        _schema_keys(sub, (*path, key), out, seen)


def test_the_yaml_reference_names_every_key():
    keys: set[tuple[str, ...]] = set()
    _schema_keys(SCHEMA, (), keys, set())
    assert len(keys) > 80
    text = (DOCS / "experiment.md").read_text()
    reference = text[text.index("## Keys") :]
    sections = dict(re.findall(r"^### `(\w+)`\n(.*?)(?=^#{2,3} |\Z)", reference, re.S | re.M))
    intro = reference[: reference.index("### ")]
    spans = {name: " ".join(re.findall(r"`([^`]+)`", body)) for name, body in sections.items()}
    missing = []
    for key in sorted(keys):
        if len(key) == 1 and key[0] in sections:
            continue
        where = spans.get(key[0]) if len(key) > 1 else " ".join(re.findall(r"`([^`]+)`", intro))
        if where is None:
            missing.append(".".join(key) + " (no section)")
            continue
        missing += [".".join(key) for part in key[1:] or key if part != "*" and not re.search(rf"\b{part}\b", where)]
    assert not missing, f"docs/experiment.md does not document: {missing}"


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


YAML_BLOCKS = [b for page in [*PAGES, README] for b in blocks(page) if b.lang == "yaml"]


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: b.where)
def test_yaml_examples_are_valid(block: Block):
    document = yaml.safe_load(block.text)
    top = set(SCHEMA["properties"])
    if not isinstance(document, dict) or not set(document) <= top:
        return  # a sweep file, a scenario's block, ...: parsed only
    base = {"data": {"path": "data.csv", "channel_columns": ["tv"]}}
    try:
        jsonschema.validate(_merge(base, document), SCHEMA)
    except jsonschema.ValidationError as exc:
        raise AssertionError(
            f"{block.where}: not a valid experiment (part): {exc.message} at {list(exc.path)}"
        ) from None


# ---------------------------------------------------------------------------------------------- README
def test_the_readme_links_resolve():
    text = README.read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def _is_part(part: object, whole: object) -> bool:
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _is_part(v, whole[k]) for k, v in part.items())
    return part == whole


def test_the_readme_example_shows_its_config():
    """The README's worked example shows configs/four_channel.yaml as it is (a part of it, unchanged)."""
    config = yaml.safe_load((ROOT / "configs" / "four_channel.yaml").read_text())
    shown = [yaml.safe_load(b.text) for b in blocks(README) if b.lang == "yaml"]
    assert shown and all(_is_part(part, config) for part in shown), "README.md: the YAML differs from its config"
