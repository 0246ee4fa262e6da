"""Keep man/tagger.1 in sync with the command line.

The commands and options are discovered from the installed CLI's own ``--help`` output, so a command
or option added later (``train``, ``listen``, ``export`` ...) makes these tests fail until the manual
page documents it. The page must also pass ``mandoc -T lint`` and render with ``man -l``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_tagger

ROOT = Path(__file__).resolve().parents[1]
MANPAGE = ROOT / "man" / "tagger.1"

# Message levels of `mandoc -T lint` (mandoc(1) DIAGNOSTICS), least severe first. STYLE messages
# (suggestions such as "referenced manual not found" or "useless macro") are acceptable; anything
# from WARNING up means mandoc or another formatter may render the page wrongly.
MANDOC_BAD_LEVELS = ("WARNING", "ERROR", "UNSUPP", "BADARG", "SYSERR")
# Regular expressions of WARNING-or-worse messages that are nevertheless accepted (none so far).
MANDOC_ACCEPTED: tuple[str, ...] = ()

HEADING_MACROS = (".SH", ".SS", ".Sh", ".Ss")
OPTION_TOKEN = re.compile(r"^--?[A-Za-z0-9][\w-]*$")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX_CHARS = "│┃|"


# --- the CLI's help ------------------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    """Wide, colourless, non-interactive help output from Rich/Typer."""
    env = dict(os.environ)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "LINES", "JUPYTER_COLUMNS"):
        env.pop(name, None)
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb")
    return env


@functools.cache
def help_text(*command: str) -> str:
    """``tagger [command ...] --help`` of the installed package, run with this interpreter."""
    result = run_tagger(*command, "--help", env=cli_env(), cwd=ROOT, timeout=120)
    assert result.returncode == 0, (
        f"`tagger {' '.join(command)} --help` exited with {result.returncode}:\n{result.stderr}"
    )
    return ANSI_ESCAPE.sub("", result.stdout)


def help_sections(text: str) -> list[tuple[str, list[str]]]:
    """The (title, rows) sections of a help text.

    Understands Rich panels (``╭─ Options ─╮`` / ``│ row │`` / ``╰─╯``) as Typer draws them, and plain
    Click sections (``Options:`` followed by indented rows), so the parser survives ``rich`` being
    absent. Rows keep their leading spaces, which tell entries from wrapped continuation lines.
    """
    sections: list[tuple[str, list[str]]] = []
    rows: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        panel = re.match(r"^[╭┏][─━]+\s*(.*?)\s*[─━]*[╮┓]$", stripped)
        if panel:
            rows = []
            sections.append((panel.group(1), rows))
            continue
        if re.match(r"^[╰┗][─━]*[╯┛]$", stripped):
            rows = None
            continue
        if rows is not None and stripped[:1] in BOX_CHARS:
            rows.append(stripped[1:].rstrip().rstrip(BOX_CHARS).rstrip())
            continue
        header = re.match(r"^([A-Z][\w ]*):$", stripped)
        if header and not line.startswith(" "):
            rows = []
            sections.append((header.group(1), rows))
            continue
        if rows is not None and line.startswith(" ") and stripped:
            rows.append(line.rstrip())
        elif rows is not None and not stripped and sections and sections[-1][1] is rows and rows:
            rows = None  # a blank line ends a plain Click section
    return sections


def entry_rows(rows: list[str]) -> list[str]:
    """The rows that start an entry (least indented), not wrapped continuations of a description.

    Typer marks required entries with a ``*`` in the indentation; it counts as a space here.
    """
    rows = [row.replace("*", " ", 1) if row.lstrip().startswith("* ") else row
            for row in rows if row.strip()]
    if not rows:
        return []
    indent = min(len(row) - len(row.lstrip()) for row in rows)
    return [row.strip() for row in rows if len(row) - len(row.lstrip()) == indent]


def leading_options(row: str) -> list[str]:
    """The option names a help row starts with: ``--top-k -k <int>`` -> ``['--top-k', '-k']``."""
    names = []
    for token in row.replace("/", " ").replace(",", " ").split():
        if token == "*" and not names:  # Typer marks required options with '*'
            continue
        if not OPTION_TOKEN.match(token):
            break
        names.append(token)
    return names


def is_option_row(row: str) -> bool:
    return bool(leading_options(row))


def parse_help(text: str) -> tuple[list[str], list[str]]:
    """(commands, options) listed in a help text, each in order of appearance."""
    commands: list[str] = []
    options: list[str] = []
    for title, rows in help_sections(text):
        if title.lower().startswith("usage"):
            continue
        entries = entry_rows(rows)
        if entries and all(is_option_row(row) for row in entries):
            for row in entries:
                options += [name for name in leading_options(row) if name not in options]
        elif "argument" not in title.lower():
            for row in entries:
                name = row.split()[0]
                if re.match(r"^[a-z][\w-]*$", name) and name not in commands:
                    commands.append(name)
    return commands, options


@functools.cache
def discovered() -> dict[tuple[str, ...], list[str]]:
    """Every command path (``()`` for the top level) with the options its help lists, minus --help.

    Subcommand groups are followed, so ``tagger export onnx`` would appear as ``('export', 'onnx')``.
    """
    found: dict[tuple[str, ...], list[str]] = {}
    pending: list[tuple[str, ...]] = [()]
    while pending:
        path = pending.pop(0)
        commands, options = parse_help(help_text(*path))
        found[path] = [name for name in options if name != "--help"]
        pending += [(*path, name) for name in commands if (*path, name) not in found]
    return found


def commands() -> list[tuple[str, ...]]:
    return [path for path in discovered() if path]


# --- the manual page -----------------------------------------------------------------------------


@functools.cache
def page_source() -> str:
    assert MANPAGE.is_file(), f"{MANPAGE.relative_to(ROOT)} is missing"
    return MANPAGE.read_text(encoding="utf-8")


def plain(roff: str) -> str:
    """Roff source with hyphens unescaped and font/zero-width escapes removed, for searching."""
    text = roff.replace("\\-", "-")
    text = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", text)  # \fB \fI \fR \fP \f(CW \f[B]
    return re.sub(r"\\[&%:]", "", text)  # \& \% \:


def heading_text(line: str) -> str:
    return plain(line.split(None, 1)[1] if " " in line else "").replace('"', "").strip()


@functools.cache
def page_blocks() -> list[tuple[str, str, str]]:
    """(macro, heading, body) of every section and subsection of the page.

    A section's body runs to the next section and includes its subsections; a subsection's body runs
    to the next heading of either level.
    """
    lines = page_source().splitlines()
    starts = [(i, line.split()[0]) for i, line in enumerate(lines) if line.split()[:1]
              and line.split()[0] in HEADING_MACROS]
    blocks = []
    for n, (i, macro) in enumerate(starts):
        section_level = macro in (".SH", ".Sh")
        end = len(lines)
        for j, other in starts[n + 1:]:
            if not section_level or other in (".SH", ".Sh"):
                end = j
                break
        blocks.append((macro, heading_text(lines[i]), plain("\n".join(lines[i + 1:end]))))
    return blocks


def mentions(text: str, word: str) -> bool:
    """``word`` occurs in ``text`` as a whole word or option (``--model`` is not in ``--model-dir``)."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def describe(path: tuple[str, ...]) -> str:
    return " ".join(("tagger", *path))


# --- tests ---------------------------------------------------------------------------------------


def test_help_parser_finds_what_the_cli_defines():
    """Guard the help parser: it must see every visible command and option Typer builds from cli.py.

    If this fails, the help layout changed and ``parse_help`` needs fixing, not the manual page.
    """
    import typer.main

    from tagger.cli import app

    def walk(group, path=()):
        yield path, group
        for name, command in getattr(group, "commands", {}).items():
            if not getattr(command, "hidden", False):
                yield from walk(command, (*path, name))

    expected = {}
    for path, command in walk(typer.main.get_command(app)):
        names = []
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option" and not getattr(param, "hidden", False):
                names += [*param.opts, *param.secondary_opts]
        expected[path] = sorted(set(names) - {"--help"})
    found = {path: sorted(options) for path, options in discovered().items()}
    assert found == expected
    assert commands(), "no commands found in `tagger --help`"


def test_every_command_has_a_heading():
    headings = [heading for _, heading, _ in page_blocks()]
    missing = [describe(path) for path in commands()
               if not any(mentions(heading, path[-1]) for heading in headings)]
    assert not missing, (
        f"{MANPAGE.name}: no .SH/.SS heading names {', '.join(missing)}; "
        f'document it under COMMANDS, e.g. `.SS "{missing[0] if missing else ""} [options]"`'
    )


def test_every_option_is_in_the_page():
    text = plain(page_source())
    missing = [f"{describe(path)} {option}" for path, options in discovered().items()
               for option in options if not mentions(text, option)]
    assert not missing, f"{MANPAGE.name} does not document: " + "; ".join(missing)


def test_options_are_documented_under_their_command():
    """A command's options must appear in a (sub)section whose heading names the command, so that a
    new command that shares option names with ``file`` (``--model``, ``--device`` ...) still needs
    its own documentation. Top-level options may be anywhere."""
    missing = []
    for path, options in discovered().items():
        if not path:
            continue
        bodies = [body for _, heading, body in page_blocks() if mentions(heading, path[-1])]
        missing += [f"{describe(path)} {option}" for option in options
                    if not any(mentions(body, option) for body in bodies)]
    assert not missing, (
        f"{MANPAGE.name}: these options are not described under a heading that names their command "
        "(e.g. `.SS \"Options of tagger COMMAND\"`): " + "; ".join(missing)
    )


def test_mandoc_lint_is_clean():
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        pytest.fail("mandoc is not installed, so man/tagger.1 cannot be checked: "
                    "apt-get install -y --no-install-recommends mandoc")
    result = subprocess.run([mandoc, "-T", "lint", "-W", "warning", str(MANPAGE)],
                            capture_output=True, text=True, timeout=60)
    messages = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    bad = [line for line in messages
           if any(f" {level}: " in line for level in MANDOC_BAD_LEVELS)
           and not any(re.search(pattern, line) for pattern in MANDOC_ACCEPTED)]
    assert not bad, "mandoc -T lint -W warning:\n" + "\n".join(bad)
    # Exit status 0, or 1 for style suggestions only; 2 and up mean a warning or worse.
    assert result.returncode in (0, 1), f"mandoc exited with {result.returncode}:\n" + "\n".join(messages)


def test_man_renders_the_page():
    man = shutil.which("man")
    if man is None:
        pytest.fail("man is not installed, so man/tagger.1 cannot be rendered: "
                    "apt-get install -y man-db groff-base")
    env = {**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat", "LC_ALL": "C.UTF-8"}
    env.pop("MAN_KEEP_FORMATTING", None)
    result = subprocess.run([man, "-l", str(MANPAGE)], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 0, f"man -l exited with {result.returncode}:\n{result.stderr}"
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert not errors, "man -l reported errors:\n" + "\n".join(errors)
    rendered = re.sub(r".\x08", "", result.stdout)  # overstrike bold/underline, if any
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "EXIT STATUS"):
        assert re.search(rf"^{section}$", rendered, re.M), f"rendered page has no {section} section"
    flat = " ".join(rendered.split())
    missing = [describe(path) for path in commands() if describe(path) not in flat]
    assert not missing, f"rendered page never mentions {', '.join(missing)}"


def test_help_parser_reads_options_after_a_required_one():
    """Typer's '*' marker on a required option must not hide the options listed after it."""
    text = "\n".join([
        "╭─ Options ──────────────╮",
        "│ *  --model   -m   <str>  Model. [required]     │",
        "│    --format  -f   <str>  Format.               │",
        "│                          continued description │",
        "│    --top-k        <int>  K.                    │",
        "╰────────────────────────╯",
    ])
    assert parse_help(text) == ([], ["--model", "-m", "--format", "-f", "--top-k"])
