"""The ``codeindex`` command line: a thin layer over ``codeindex.Index``.

All output happens here. Library exceptions become one-line messages with a hint and a distinct
exit code at one boundary (``main``); with ``--json`` the error is a JSON object on stderr. Imports
stay light at start-up so ``--help`` is fast: the index, rich and every runtime load inside the
command that needs them.

Conventions (as in git and ripgrep): every command takes the tree as a ``PATH`` argument (``--root`` is
the same); commands that use an existing index find it by walking up from ``PATH`` (default: the
current directory); the global options ``-v``, ``-q`` and ``--index-dir`` go before or after the
subcommand; every ``--json`` output is one object with a ``schema`` version (``codeindex/jsonout.py``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from codeindex import jsonout
from codeindex.errors import INTERRUPTED_HINT, CodeIndexError, ExitCode, Interrupted, classify, error_lines

if TYPE_CHECKING:
    from pathlib import Path

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that stop a command cleanly: exit 130, the standard message, the index old or new."""

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class State:
    """What the global options set; filled by their callbacks wherever on the line they appear."""

    def __init__(self) -> None:
        self.index_dir: str | None = None
        self.verbose = 0
        self.quiet = False
        self.path: str | None = None
        """The tree the command works on: hints name it instead of ``PATH``."""
        self.index: Any = None
        """The command's ``Index``, to locate damage the error did not (``_located``)."""

    @property
    def verbosity(self) -> int:
        return -1 if self.quiet else self.verbose


_current: State | None = None
"""The running command's state, for the error boundary (``main``)."""
_handler: logging.Handler | None = None


def _configure_logging(state: State) -> None:
    """codeindex's own loggers to stderr: warnings by default, -v info, -vv debug, -q errors only.

    Third-party loggers (the FAISS loader, dask) stay as they are, below warnings: -v is about
    codeindex, not its dependencies' start-up chatter.
    """
    global _handler
    logger = logging.getLogger("codeindex")
    if _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(_handler)
    v = state.verbosity
    logger.setLevel(logging.ERROR if v < 0 else logging.DEBUG if v >= 2 else logging.INFO if v == 1
                    else logging.WARNING)


def _state(ctx: click.Context) -> State:
    global _current
    _current = ctx.ensure_object(State)
    return _current


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    _state(ctx).verbose += value or 0
    _configure_logging(_state(ctx))


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    _state(ctx).quiet |= bool(value)
    _configure_logging(_state(ctx))


def _set_index_dir(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        _state(ctx).index_dir = value


def global_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """-v, -q and --index-dir, on the group and on every subcommand (before or after its name)."""
    fn = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_set_quiet,
                      help="Only errors.")(fn)
    fn = click.option("-v", "--verbose", count=True, expose_value=False, callback=_set_verbose,
                      help="More output: -v lists the files a run changed, -vv adds debug logs and tracebacks.")(fn)
    fn = click.option("--index-dir", type=click.Path(file_okay=False), expose_value=False,
                      callback=_set_index_dir,
                      help="Where the index lives (default: .codeindex in the indexed tree).")(fn)
    return fn


def path_argument(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An optional ``PATH`` argument, with ``--root`` as a second spelling; the command gets ``path``
    (None when neither was given: the current directory, and no narrowing to a subfolder)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pathlib import Path

        path, root = kwargs.pop("path"), kwargs.pop("root")
        if path is not None and root is not None and Path(path).resolve() != Path(root).resolve():
            raise click.UsageError(f"PATH {path!r} and --root {root!r} name different trees; pass one")
        return fn(*args, path=path if path is not None else root, **kwargs)

    wrapper = click.option("--root", "root", type=click.Path(), default=None, metavar="PATH",
                           help="Same as PATH.")(wrapper)
    return click.argument("path", required=False, type=click.Path())(wrapper)


def _find_root(state: State, path: str | None) -> Path:
    """The indexed tree for ``path``: the nearest folder at or above it holding an index (like git),
    or ``path`` itself when there is none (or when --index-dir says where the index is)."""
    from pathlib import Path

    from codeindex.store.layout import find_index_root

    start = Path(path if path is not None else ".").expanduser()
    if state.index_dir is not None or not start.exists():  # a PATH that does not exist is an error to report
        return start
    found = find_index_root(start if start.is_dir() else start.parent)
    return found if found is not None else start


def _index(state: State, path: str | None, *, discover: bool = True, **overrides: Any) -> Any:
    from pathlib import Path

    from codeindex.index import Index

    root = _find_root(state, path) if discover else Path(path if path is not None else ".")
    index = Index(root, index_dir=state.index_dir, **overrides)
    state.path, state.index = str(index.root), index
    if state.verbosity >= 0:
        for message in index.config.warnings:
            click.echo(f"codeindex: warning: {message}", err=True)
    return index


def _subfolder(index: Any, path: str | None) -> str:
    """The root-relative folder an explicit ``path`` names inside the index's tree ("" for the root or none)."""
    from pathlib import Path

    if path is None:
        return ""
    target = Path(path).expanduser().resolve()
    try:
        rel = target.relative_to(index.root).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel


def _echo_json(command: str, data: Any) -> None:
    click.echo(jsonout.dumps(jsonout.envelope(command, data)))


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    # soft_wrap: never re-wrap code lines or paths when output is piped or narrow
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="codeindex")
@global_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Keep a semantic index of a source tree up to date, and search it.

    Commands that use an index find it from any subfolder of the indexed tree, like git.

    \b
    Exit codes: 0 done; 1 a bug of codeindex (please report it); 2 bad usage, or the
    environment refused (permission, read-only, no space, a vanished path, an unreachable
    scheduler); 3 no index yet; 4 another process holds the index; 5 the index is damaged
    (the message says what, the hint how to repair it); 6 the embedder failed; 130 interrupted.
    """
    _state(ctx)


def _run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--scheduler", default=None,
                      help="local (LocalCluster, default), sync (in-process) or tcp://host:port.")(fn)
    fn = click.option("--embedder", default=None, help="Embedder backend (onnx, sentence-transformers, hashing).")(fn)
    fn = click.option("--wait", is_flag=True, help="Wait for another writer instead of failing.")(fn)
    fn = click.option("--json", "as_json", is_flag=True,
                      help="Print the run report, with the changed files, as JSON.")(fn)
    fn = click.option("--force", is_flag=True, help="Index PATH even if it is / or your home folder.")(fn)
    return fn


def _do_run(state: State, kind: str, path: str | None, scheduler: str | None, embedder: str | None, wait: bool,
            as_json: bool, force: bool = False, **options: bool) -> None:
    from codeindex.render import ProgressRenderer, print_changes, print_report

    index = _index(state, path, discover=False)  # Index finds the tree owning PATH, and says so
    show = state.verbosity >= 0 and not as_json
    with ProgressRenderer(enabled=show, notices=state.verbosity >= 0) as renderer:
        if kind == "rebuild":
            report = index.rebuild(progress=renderer, scheduler=scheduler, embedder=embedder, wait=wait, force=force)
        else:
            report = index.update(progress=renderer, scheduler=scheduler, embedder=embedder, wait=wait, force=force,
                                  **options)
    if as_json:
        _echo_json(kind, report.as_dict())
    elif state.verbosity >= 0:
        console = _console()
        print_report(console, report)
        if state.verbosity >= 1:
            print_changes(console, report.changes)


@cli.command(context_settings=CONTEXT)
@path_argument
@_run_options
@global_options
@click.pass_obj
def rebuild(state: State, path: str | None, scheduler: str | None, embedder: str | None, wait: bool,
            as_json: bool, force: bool) -> None:
    """Index the tree at PATH (default: .) from scratch."""
    _do_run(state, "rebuild", path, scheduler, embedder, wait, as_json, force)


@cli.command(context_settings=CONTEXT)
@path_argument
@_run_options
@click.option("--plan", "plan_only", is_flag=True, help="Dry run: show what would change; write nothing.")
@click.option("--repair", is_flag=True,
              help="Check everything first (as `verify` does) and mend what the stored chunk texts allow.")
@click.option("--retry-failed", is_flag=True, help="Parse again every file whose parse failed.")
@global_options
@click.pass_obj
def update(state: State, path: str | None, scheduler: str | None, embedder: str | None, wait: bool, as_json: bool,
           force: bool, plan_only: bool, repair: bool, retry_failed: bool) -> None:
    """Re-index only what changed since the last run; mend the damage it finds.

    The index is found by walking up from PATH (default: .); without one, this builds it at PATH.
    In a subfolder of an indexed tree, this updates that tree's index (never a second one nested in it).
    """
    if plan_only:
        from codeindex.render import print_plan

        plan = _index(state, path).plan(embedder=embedder)
        if as_json:
            _echo_json("plan", plan.as_dict())
        else:
            print_plan(_console(), plan, verbose=state.verbosity >= 1)
        return
    _do_run(state, "update", path, scheduler, embedder, wait, as_json, force, repair=repair, retry_failed=retry_failed)


@cli.command(context_settings=CONTEXT)
@click.argument("query")
@path_argument
@click.option("-k", "k", type=click.IntRange(min=1), default=None, help="Number of results (default 10).")
@click.option("--mode", type=click.Choice(["hybrid", "vector", "lexical"]), default=None,
              help="hybrid (default): vector and lexical fused by reciprocal rank.")
@click.option("--lang", "languages", multiple=True, help="Only these languages (repeatable).")
@click.option("--path", "paths", multiple=True,
              help="Only paths matching this glob, or under this folder (repeatable).")
@click.option("--exclude", "exclude_paths", multiple=True,
              help="Drop paths matching this glob, or under this folder (repeatable).")
@click.option("--kind", "kinds", multiple=True, help="Only chunks of this kind: function, class, method...")
@click.option("--symbol", default=None, help="Only chunks whose symbol contains this text.")
@click.option("--embedder", default=None, help="Insist on this embedder (error if the index used another).")
@click.option("--group", type=click.Choice(["definition", "file", "none"]), default=None,
              help="definition (default): one result per definition, its other pieces' lines attached; "
                   "file: one per file; none.")
@click.option("-C", "--context", "context", type=click.IntRange(min=0), default=0,
              help="Show N lines before and after each result.")
@click.option("--rerank", "reranker", default=None, help="Reorder results with this reranker plugin.")
@click.option("--vimgrep", is_flag=True, help="One line per result: path:line:col: text (editors' quickfix form).")
@click.option("-l", "--files-with-matches", "files_only", is_flag=True, help="Only the paths, best first.")
@click.option("--json", "as_json", is_flag=True, help="Print the query and results as JSON with every field.")
@global_options
@click.pass_obj
def search(state: State, query: str, path: str | None, k: int | None, mode: str | None,
           languages: tuple[str, ...], paths: tuple[str, ...], exclude_paths: tuple[str, ...],
           kinds: tuple[str, ...], symbol: str | None, embedder: str | None, group: str | None, context: int,
           reranker: str | None, vimgrep: bool, files_only: bool, as_json: bool) -> None:
    """Search the index for QUERY (words or identifiers).

    The index is found by walking up from PATH (default: .). A PATH naming a subfolder of the indexed
    tree keeps only results below it, as `rg PATTERN PATH` does.
    """
    index = _index(state, path)
    below = _subfolder(index, path)
    scoped = [*paths] if not below else [f"{below}/{p.lstrip('/')}" for p in paths] or [below]
    k = k if k is not None else index.config["search.k"]
    mode = mode or index.config["search.mode"]
    with index:
        results = index.search(query, k=k, mode=mode, languages=list(languages), paths=scoped,
                               exclude_paths=list(exclude_paths), kinds=list(kinds), symbol=symbol,
                               embedder=embedder, group=group, context=context, reranker=reranker)
        meta = index.search_meta()
    if as_json:
        _echo_json("search", {
            "query": query, "mode": mode, "k": k,
            "filters": {"languages": list(languages), "paths": scoped, "exclude_paths": list(exclude_paths),
                        "kinds": list(kinds), "symbol": symbol},
            "index": {"root": str(index.root), "index_dir": str(index.index_dir),
                      "schema_version": int(meta["schema_version"]) if meta.get("schema_version") else None,
                      "embedder": meta.get("embedder_backend"), "model_id": meta.get("model_id")},
            "results": [r.as_dict() for r in results]})
        return
    from codeindex.render import print_result_files, print_results, print_vimgrep

    if files_only:
        print_result_files(results)
    elif vimgrep:
        print_vimgrep(query, results)
    else:
        print_results(_console(), query, results)


@cli.command(context_settings=CONTEXT)
@path_argument
@click.option("--json", "as_json", is_flag=True, help="Print status as JSON.")
@click.option("--stale/--no-stale", default=True, help="Also count files changed since the last run.")
@click.option("--verify", "full", is_flag=True, help="Check everything, as `codeindex verify` does.")
@global_options
@click.pass_obj
def status(state: State, path: str | None, as_json: bool, stale: bool, full: bool) -> None:
    """Files, chunks, model, index size, last run, how stale the index is, and a quick health check.

    The index is found by walking up from PATH (default: .).
    """
    index = _index(state, path)
    info = index.status()
    if full:
        report = index.verify()
        info["integrity"] = {"check": "full", **report.as_dict()}
    if stale:
        info["stale"] = index.staleness()
    if as_json:
        _echo_json("status", info)
    else:
        from codeindex.render import print_status

        print_status(_console(), info)
    if full and not report.ok:
        from codeindex.store.integrity import damage_error

        raise damage_error(report.problems, index.index_dir)


@cli.command(context_settings=CONTEXT)
@path_argument
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@global_options
@click.pass_obj
def verify(state: State, path: str | None, as_json: bool) -> None:
    """Check the whole index: database blocks, segment checksums, vector and chunk maps, Merkle snapshot.

    Exit 0 when sound, 5 when damaged (each problem names its repair: `update --repair` or `rebuild`).
    The index is found by walking up from PATH (default: .).
    """
    index = _index(state, path)
    report = index.verify()
    if as_json:
        _echo_json("verify", report.as_dict())
    else:
        from codeindex.render import print_verify

        print_verify(_console(), report)
    if not report.ok:
        from codeindex.store.integrity import damage_error

        raise damage_error(report.problems, index.index_dir)


@cli.command(context_settings=CONTEXT)
@path_argument
@click.option("--wait", is_flag=True, help="Wait for another writer instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@global_options
@click.pass_obj
def compact(state: State, path: str | None, wait: bool, as_json: bool) -> None:
    """Merge vector segments and drop deleted vectors.

    The index is found by walking up from PATH (default: .).
    """
    from codeindex.render import ProgressRenderer, plural

    index = _index(state, path)
    with ProgressRenderer(enabled=False, notices=state.verbosity >= 0) as renderer:
        result = index.compact(wait=wait, progress=renderer)
    if as_json:
        _echo_json("compact", dict(result))
    elif state.verbosity >= 0:
        click.echo(f"segments {result['segments_before']} -> {result['segments_after']}, "
                   f"dropped {plural(result['dropped_vectors'], 'dead vector')}")


@cli.command(context_settings=CONTEXT)
@path_argument
@click.option("--skipped", is_flag=True, help="List the skipped files and folders, with their reasons.")
@click.option("--reason", default=None, metavar="REASON",
              help="Only skipped entries with this reason (ignored, default-exclude, too-large, parse-error...).")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@global_options
@click.pass_obj
def files(state: State, path: str | None, skipped: bool, reason: str | None, as_json: bool) -> None:
    """List the indexed files, or with --skipped those left out and why.

    The index is found by walking up from PATH (default: .); a PATH naming a subfolder lists only
    what is below it.
    """
    index = _index(state, path)
    records = index.files(under=_subfolder(index, path), skipped=skipped, reason=reason)
    if as_json:
        _echo_json("files", {"root": str(index.root), "skipped": bool(skipped or reason), "reason": reason,
                             "files": [r.as_dict() for r in records]})
        return
    from codeindex.render import print_files

    print_files(_console(), records)


@cli.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path())
@click.option("--root", "root", type=click.Path(), default=None,
              help="The indexed tree (default: found by walking up from FILE).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@global_options
@click.pass_obj
def why(state: State, file: str, root: str | None, as_json: bool) -> None:
    """Say whether FILE is indexed, and if not, which rule or skip reason left it out."""
    from pathlib import Path

    target = Path(file).expanduser().absolute()
    index = _index(state, root if root is not None else str(target.parent if not target.is_dir() else target))
    report = index.why(target)
    if as_json:
        _echo_json("why", report.as_dict())
        return
    from codeindex.render import print_why

    print_why(_console(), report)


@cli.command(context_settings=CONTEXT)
@path_argument
@click.option("--scheduler", default=None, help="For the updates it runs: local, sync or tcp://host:port.")
@click.option("--embedder", default=None, help="Embedder backend of the index (default: the one it was built with).")
@global_options
@click.pass_obj
def serve(state: State, path: str | None, scheduler: str | None, embedder: str | None) -> None:
    """Serve PATH's index to coding agents over MCP (stdio), kept fresh as files change.

    Tools: search, symbol, read, status, update. Register it in an MCP client as the command
    `codeindex serve /path/to/repo` (docs/howto/serve-mcp.md). Builds the index first if there is none.
    """
    import os

    from codeindex.live.server import serve as serve_mcp
    from codeindex.live.service import LiveIndex

    live = LiveIndex(str(_find_root(state, path)), index_dir=state.index_dir, scheduler=scheduler,
                     embedder=embedder)
    try:
        finished = serve_mcp(live)
    except KeyboardInterrupt:  # SIGTERM or Ctrl-C: the usual way a client stops its server
        finished = live.stop(timeout=1.5)
    if not finished:  # an update still running: stop as a kill would (the index stays old or new)
        sys.stderr.flush()
        os._exit(int(ExitCode.OK))


@cli.command(context_settings=CONTEXT)
@path_argument
@click.option("--scheduler", default=None, help="For the updates it runs: local, sync or tcp://host:port.")
@click.option("--embedder", default=None, help="Embedder backend of the index (default: the one it was built with).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON run report per update, no live line.")
@global_options
@click.pass_obj
def watch(state: State, path: str | None, scheduler: str | None, embedder: str | None, as_json: bool) -> None:
    """Keep PATH's index fresh as files change, until Ctrl-C; a live line shows what it does."""
    from codeindex.live.freshness import open_loop
    from codeindex.render import WatchDisplay
    from codeindex.store.lock import live_lock

    display = WatchDisplay(_console(), enabled=state.verbosity >= 0, as_json=as_json)
    loop = open_loop(str(_find_root(state, path)), index_dir=state.index_dir, scheduler=scheduler,
                     embedder=embedder, on_update=display.update)
    with live_lock(loop.index.index_dir, role="watch"), display.live(loop.status):
        try:
            loop.run()  # in this thread: Ctrl-C stops an update in progress as it stops `codeindex update`
        except KeyboardInterrupt:
            if loop.interrupted:
                raise
    display.stopped()


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@global_options
def plugins(as_json: bool) -> None:
    """List plugins: package, version, and the languages or embedders each provides."""
    from codeindex.plugins import get_plugin_manager
    from codeindex.render import plugin_records, plugin_rows, print_plugins

    manager = get_plugin_manager()
    if as_json:
        _echo_json("plugins", {"plugins": plugin_records(manager), "warnings": manager.warnings})
        return
    print_plugins(_console(), plugin_rows(manager), manager.warnings)


@cli.command(context_settings=CONTEXT)
@path_argument
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@global_options
@click.pass_obj
def config(state: State, path: str | None, as_json: bool) -> None:
    """Show every setting, its value and where the value came from.

    Works when the configuration is broken (it is the diagnosis tool): every problem is listed, with
    its file and line or environment variable, and the exit status is then 2. The tree is found by
    walking up from PATH (default: .) to the nearest index, if any.
    """
    from codeindex.config import load_config

    cfg = load_config(_find_root(state, path).resolve(), strict=False)
    rows = [{"name": s.name, "value": v, "source": src, "type": s.type.__name__, "help": s.help}
            for s, v, src in cfg.items()]
    if as_json:
        _echo_json("config", {"settings": rows, "errors": cfg.errors, "warnings": cfg.warnings})
    else:
        for row in rows:
            click.echo(f"{row['name']:<28} {row['value']!s:<12} ({row['source']})")
        for message in cfg.warnings:
            click.echo(f"codeindex: warning: {message}", err=True)
        for message in cfg.errors:
            click.echo(f"codeindex: error: {message}", err=True)
    if cfg.errors:
        raise click.exceptions.Exit(int(ExitCode.USAGE))


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point: the one error boundary turning exceptions into messages and exit codes.

    Environment problems exit 2 naming the path and the OS reason, a busy or locked index 4, damage 5
    with the exact repair, an interrupt 130; only what none of them explains is a bug (exit 1). From
    the moment the command is over, a signal ends the process at once with the standard message, so
    no phase of the shutdown (closing connections, a cluster's teardown) can print a traceback.
    """
    global _current
    _current = None
    args = list(argv if argv is not None else sys.argv[1:])
    verbose = any(a.startswith("-v") or a == "--verbose" for a in args)
    as_json = "--json" in args
    for sig in INTERRUPT_SIGNALS[1:]:
        signal.signal(sig, _raise_interrupt)
    try:
        return _boundary(args, verbose, as_json)
    except KeyboardInterrupt:  # a second signal while the first error was being reported
        _exit_interrupted()
        raise  # not reached
    finally:
        for sig in INTERRUPT_SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:  # a shell's `cmd &` ignores SIGINT: keep that
                signal.signal(sig, _on_late_signal)


def _boundary(args: list[str], verbose: bool, as_json: bool) -> int:
    try:
        code = cli.main(args=args, prog_name="codeindex", standalone_mode=False)
        if isinstance(code, int) and code:  # click returns (not raises) an Exit's code in this mode
            return code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        if as_json:
            return _fail_json(exc, ExitCode.USAGE, "")
        exc.show()
        return int(ExitCode.USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        return _fail(Interrupted("interrupted", hint=INTERRUPTED_HINT), as_json)
    except CodeIndexError as exc:
        return _fail(_located(exc), as_json)
    except Exception as exc:  # the boundary: what the environment or damage explains, else our bug
        typed = classify(exc)
        if typed is not None:
            return _fail(_located(typed), as_json)
        if verbose:
            raise
        if as_json:
            return _fail_json(exc, ExitCode.INTERNAL, "rerun with -vv for a traceback and report it")
        click.echo(f"codeindex: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("hint: rerun with -vv for a traceback and report it", err=True)
        return int(ExitCode.INTERNAL)
    return int(ExitCode.OK)


def _located(exc: CodeIndexError) -> CodeIndexError:
    """A damaged database block, as DuckDB reports it, names no table, so not the repair either: run the
    full check to find which tables it hit (``update --repair`` mends the derived ones)."""
    if not getattr(exc, "unlocated", False) or _current is None or _current.index is None:
        return exc
    try:
        report = _current.index.verify()
    except Exception:  # the diagnosis is a courtesy: the original error stands
        return exc
    if report.ok:
        return exc
    from codeindex.store.integrity import damage_error

    return damage_error(report.problems, _current.index.index_dir)


def _fail(exc: CodeIndexError, as_json: bool = False) -> int:
    hint = _with_path(exc.hint) if exc.hint else exc.hint
    if as_json:
        return _fail_json(exc, exc.exit_code, hint)
    for line in error_lines(exc, hint):
        click.echo(line, err=True)
    return int(exc.exit_code)


def _with_path(hint: str) -> str:
    """A hint naming the command's own tree (and index folder) where it says ``PATH``: the exact repair."""
    if _current is None or _current.path is None or not re.search(r"\bPATH\b", hint):
        return hint
    if _current.index_dir:
        hint = hint.replace("`codeindex ", f"`codeindex --index-dir {shlex.quote(_current.index_dir)} ")
    return re.sub(r"\bPATH\b", lambda _: shlex.quote(_current.path or "") if _current else "PATH", hint)


def _exit_interrupted() -> None:
    """Print the standard interrupt message and end the process now (exit 130)."""
    for sig in INTERRUPT_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    message = "\n".join(error_lines(Interrupted("interrupted", hint=INTERRUPTED_HINT))) + "\n"
    with contextlib.suppress(Exception):  # a closed pipe: nothing more to say there
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, message.encode())
    os._exit(int(ExitCode.INTERRUPTED))


def _on_late_signal(signum: int, frame: object) -> None:
    _exit_interrupted()


def _fail_json(exc: BaseException, code: int, hint: str) -> int:
    message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
    data = jsonout.error_object(exc, code, hint)
    data["error"]["message"] = message
    click.echo(jsonout.dumps(data), err=True)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
