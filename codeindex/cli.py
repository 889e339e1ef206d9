"""The ``codeindex`` command line: a thin layer over ``codeindex.Index``.

All output happens here. Library exceptions become one-line messages with a hint and a distinct
exit code at one boundary (``main``). Imports stay light at start-up so ``--help`` is fast: the
index, rich and every runtime load inside the command that needs them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from codeindex.errors import INTERRUPTED_HINT, CodeIndexError, ExitCode, Interrupted, classify

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that stop a command cleanly: exit 130, the standard message, the index old or new."""

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class State:
    def __init__(self, index_dir: str | None, verbosity: int) -> None:
        self.index_dir = index_dir
        self.verbosity = verbosity
        self.path: str | None = None
        """The tree the command works on: hints name it instead of ``PATH``."""
        self.index: Any = None
        """The command's ``Index``, to locate damage the error did not (``_located``)."""


_state: State | None = None
"""The running command's state, for the error boundary (``main``)."""


def _index(state: State, path: str, **overrides: Any) -> Any:
    from codeindex.index import Index

    state.path = path
    state.index = Index(path, index_dir=state.index_dir, **overrides)
    return state.index


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    # soft_wrap: never re-wrap code lines or paths when output is piped or narrow
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="codeindex")
@click.option("--index-dir", type=click.Path(file_okay=False), default=None,
              help="Where the index lives (default: PATH/.codeindex).")
@click.option("-v", "--verbose", count=True, help="More output (-vv: debug logs, tracebacks).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.pass_context
def cli(ctx: click.Context, index_dir: str | None, verbose: int, quiet: bool) -> None:
    """Keep a semantic index of a source tree up to date, and search it.

    \b
    Exit codes: 0 done; 1 a bug of codeindex (please report it); 2 bad usage, or the
    environment refused (permission, read-only, no space, a vanished path, an unreachable
    scheduler); 3 no index yet; 4 another process holds the index; 5 the index is damaged
    (the message says what, the hint how to repair it); 6 the embedder failed; 130 interrupted.
    """
    global _state
    verbosity = -1 if quiet else verbose
    ctx.obj = _state = State(index_dir, verbosity)
    level = logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbosity < 0:
        logging.getLogger("codeindex").setLevel(logging.ERROR)


def _run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--scheduler", default=None,
                      help="local (LocalCluster, default), sync (in-process) or tcp://host:port.")(fn)
    fn = click.option("--embedder", default=None, help="Embedder backend (onnx, sentence-transformers, hashing).")(fn)
    fn = click.option("--wait", is_flag=True, help="Wait for another writer instead of failing.")(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")(fn)
    return fn


def _do_run(state: State, kind: str, path: str, scheduler: str | None, embedder: str | None, wait: bool,
            as_json: bool, **options: bool) -> None:
    from codeindex.render import ProgressRenderer, print_report

    index = _index(state, path)
    show = state.verbosity >= 0 and not as_json
    with ProgressRenderer(enabled=show) as renderer:
        if kind == "rebuild":
            report = index.rebuild(progress=renderer, scheduler=scheduler, embedder=embedder, wait=wait)
        else:
            report = index.update(progress=renderer, scheduler=scheduler, embedder=embedder, wait=wait, **options)
    if as_json:
        _echo_json(report.as_dict())
    elif state.verbosity >= 0:
        print_report(_console(), report)


@cli.command(context_settings=CONTEXT)
@click.argument("path", default=".", type=click.Path())
@_run_options
@click.pass_obj
def rebuild(state: State, path: str, scheduler: str | None, embedder: str | None, wait: bool,
            as_json: bool) -> None:
    """Index the tree at PATH from scratch."""
    _do_run(state, "rebuild", path, scheduler, embedder, wait, as_json)


@cli.command(context_settings=CONTEXT)
@click.argument("path", default=".", type=click.Path())
@_run_options
@click.option("--plan", "plan_only", is_flag=True, help="Dry run: show what would change; write nothing.")
@click.option("--repair", is_flag=True,
              help="Check everything first (as `verify` does) and mend what the stored chunk texts allow.")
@click.option("--retry-failed", is_flag=True, help="Parse again every file whose parse failed.")
@click.pass_obj
def update(state: State, path: str, scheduler: str | None, embedder: str | None, wait: bool, as_json: bool,
           plan_only: bool, repair: bool, retry_failed: bool) -> None:
    """Re-index only what changed under PATH since the last run; mend the damage it finds."""
    if plan_only:
        from codeindex.render import print_plan

        plan = _index(state, path).plan(embedder=embedder)
        if as_json:
            _echo_json(plan.as_dict())
        else:
            print_plan(_console(), plan)
        return
    _do_run(state, "update", path, scheduler, embedder, wait, as_json, repair=repair, retry_failed=retry_failed)


@cli.command(context_settings=CONTEXT)
@click.argument("query")
@click.option("--root", "path", default=".", type=click.Path(), help="The indexed tree (default: .).")
@click.option("-k", "k", type=int, default=None, help="Number of results (default 10).")
@click.option("--mode", type=click.Choice(["hybrid", "vector", "lexical"]), default=None,
              help="hybrid (default): vector and lexical fused by reciprocal rank.")
@click.option("--lang", "languages", multiple=True, help="Only these languages (repeatable).")
@click.option("--path", "paths", multiple=True, help="Only paths matching this glob (repeatable).")
@click.option("--exclude", "exclude_paths", multiple=True, help="Drop paths matching this glob (repeatable).")
@click.option("--kind", "kinds", multiple=True, help="Only chunks of this kind: function, class, method...")
@click.option("--symbol", default=None, help="Only chunks whose symbol contains this text.")
@click.option("--embedder", default=None, help="Insist on this embedder (error if the index used another).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON with every field.")
@click.pass_obj
def search(state: State, query: str, path: str, k: int | None, mode: str | None, languages: tuple[str, ...],
           paths: tuple[str, ...], exclude_paths: tuple[str, ...], kinds: tuple[str, ...], symbol: str | None,
           embedder: str | None, as_json: bool) -> None:
    """Search the index for QUERY (words or identifiers)."""
    index = _index(state, path)
    results = index.search(query, k=k, mode=mode, languages=languages, paths=paths, exclude_paths=exclude_paths,
                           kinds=kinds, symbol=symbol, embedder=embedder)
    if as_json:
        _echo_json([r.as_dict() for r in results])
        return
    from codeindex.render import print_results

    print_results(_console(), query, results)


@cli.command(context_settings=CONTEXT)
@click.argument("path", default=".", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print status as JSON.")
@click.option("--stale/--no-stale", default=True, help="Also count files changed since the last run.")
@click.option("--verify", "full", is_flag=True, help="Check everything, as `codeindex verify` does.")
@click.pass_obj
def status(state: State, path: str, as_json: bool, stale: bool, full: bool) -> None:
    """Files, chunks, model, index size, last run, how stale the index is, and a quick health check."""
    index = _index(state, path)
    info = index.status()
    if full:
        report = index.verify()
        info["integrity"] = {"check": "full", **report.as_dict()}
    if stale:
        info["stale"] = index.staleness()
    if as_json:
        _echo_json(info)
    else:
        from codeindex.render import print_status

        print_status(_console(), info)
    if full and not report.ok:
        from codeindex.store.integrity import damage_error

        raise damage_error(report.problems, index.index_dir)


@cli.command(context_settings=CONTEXT)
@click.argument("path", default=".", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_obj
def verify(state: State, path: str, as_json: bool) -> None:
    """Check the whole index: database blocks, segment checksums, vector and chunk maps, Merkle snapshot.

    Exit 0 when sound, 5 when damaged (each problem names its repair: `update --repair` or `rebuild`).
    """
    index = _index(state, path)
    report = index.verify()
    if as_json:
        _echo_json(report.as_dict())
    else:
        from codeindex.render import print_verify

        print_verify(_console(), report)
    if not report.ok:
        from codeindex.store.integrity import damage_error

        raise damage_error(report.problems, index.index_dir)


@cli.command(context_settings=CONTEXT)
@click.argument("path", default=".", type=click.Path())
@click.option("--wait", is_flag=True, help="Wait for another writer instead of failing.")
@click.pass_obj
def compact(state: State, path: str, wait: bool) -> None:
    """Merge vector segments and drop deleted vectors."""
    result = _index(state, path).compact(wait=wait)
    if state.verbosity >= 0:
        click.echo(f"segments {result['segments_before']} -> {result['segments_after']}, "
                   f"dropped {result['dropped_vectors']} dead vectors")


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def plugins(as_json: bool) -> None:
    """List plugins: package, version, and the languages or embedders each provides."""
    from codeindex.plugins import get_plugin_manager
    from codeindex.render import plugin_rows, print_plugins

    manager = get_plugin_manager()
    rows = plugin_rows(manager)
    if as_json:
        _echo_json({"plugins": rows, "warnings": manager.warnings})
        return
    print_plugins(_console(), rows, manager.warnings)


@cli.command(context_settings=CONTEXT)
@click.argument("path", default=".", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def config(path: str, as_json: bool) -> None:
    """Show every setting, its value and where the value came from."""
    from pathlib import Path

    from codeindex.config import load_config

    cfg = load_config(Path(path))
    rows = [{"name": s.name, "value": v, "source": src, "type": s.type.__name__, "help": s.help}
            for s, v, src in cfg.items()]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<28} {row['value']!s:<12} ({row['source']})")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point: the one error boundary turning exceptions into messages and exit codes.

    Environment problems exit 2 naming the path and the OS reason, a busy or locked index 4, damage 5
    with the exact repair, an interrupt 130; only what none of them explains is a bug (exit 1). From
    the moment the command is over, a signal ends the process at once with the standard message, so
    no phase of the shutdown (closing connections, a cluster's teardown) can print a traceback.
    """
    verbose = any(a.startswith("-v") or a == "--verbose" for a in (argv if argv is not None else sys.argv[1:]))
    for sig in INTERRUPT_SIGNALS[1:]:
        signal.signal(sig, _raise_interrupt)
    try:
        return _boundary(argv, verbose)
    except KeyboardInterrupt:  # a second signal while the first error was being reported
        _exit_interrupted()
        raise  # not reached
    finally:
        for sig in INTERRUPT_SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:  # a shell's `cmd &` ignores SIGINT: keep that
                signal.signal(sig, _on_late_signal)


def _boundary(argv: list[str] | None, verbose: bool) -> int:
    try:
        cli.main(args=argv, prog_name="codeindex", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        return _fail(Interrupted("interrupted", hint=INTERRUPTED_HINT))
    except CodeIndexError as exc:
        return _fail(_located(exc))
    except Exception as exc:  # the boundary: what the environment or damage explains, else our bug
        typed = classify(exc)
        if typed is not None:
            return _fail(_located(typed))
        if verbose:
            raise
        click.echo(f"codeindex: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("hint: rerun with -vv for a traceback and report it", err=True)
        return int(ExitCode.INTERNAL)
    return int(ExitCode.OK)


def _located(exc: CodeIndexError) -> CodeIndexError:
    """A damaged database block, as DuckDB reports it, names no table, so not the repair either: run the
    full check to find which tables it hit (``update --repair`` mends the derived ones)."""
    if not getattr(exc, "unlocated", False) or _state is None or _state.index is None:
        return exc
    try:
        report = _state.index.verify()
    except Exception:  # the diagnosis is a courtesy: the original error stands
        return exc
    if report.ok:
        return exc
    from codeindex.store.integrity import damage_error

    return damage_error(report.problems, _state.index.index_dir)


def _fail(exc: CodeIndexError) -> int:
    click.echo(f"codeindex: error: {exc}", err=True)
    if exc.hint:
        click.echo(f"hint: {_with_path(exc.hint)}", err=True)
    return int(exc.exit_code)


def _with_path(hint: str) -> str:
    """A hint naming the command's own tree (and index folder) where it says ``PATH``: the exact repair."""
    if _state is None or _state.path is None or not re.search(r"\bPATH\b", hint):
        return hint
    if _state.index_dir:  # a group option: it goes before the command
        hint = hint.replace("`codeindex ", f"`codeindex --index-dir {shlex.quote(_state.index_dir)} ")
    return re.sub(r"\bPATH\b", lambda _: shlex.quote(_state.path or ""), hint)


def _exit_interrupted() -> None:
    """Print the standard interrupt message and end the process now (exit 130)."""
    for sig in INTERRUPT_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    message = f"codeindex: error: interrupted\nhint: {INTERRUPTED_HINT}\n"
    with contextlib.suppress(Exception):  # a closed pipe: nothing more to say there
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, message.encode())
    os._exit(int(ExitCode.INTERRUPTED))


def _on_late_signal(signum: int, frame: object) -> None:
    _exit_interrupted()


if __name__ == "__main__":
    sys.exit(main())
