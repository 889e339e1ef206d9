"""Rendering for the CLI (rich). The library reports through events and return values; this prints."""

from __future__ import annotations

import re
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from codeindex.progress import ProgressEvent

SNIPPET_LINES = 6
LISTED_PER_KIND = 20
"""Paths ``update --plan`` lists per kind of change before it says "and N more" (-v lists all)."""


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``1,024 segments``."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def lock_holder(detail: dict[str, Any]) -> str:
    """``pid 4242 on host, since 2025-01-31T09:30:00Z`` from what a writer lock holds."""
    from codeindex.jsonout import iso_utc

    since = detail.get("since")
    when = f", since {iso_utc(float(since))}" if isinstance(since, int | float) else ""
    return f"pid {detail.get('pid', '?')} on {detail.get('host', '?')}{when}"


class ProgressRenderer:
    """A rich progress display driven by library ``ProgressEvent``s (files parsed, chunks embedded, tokens/s).

    ``notices`` (on unless -q) prints what is worth knowing even without a progress display: waiting
    for another writer's lock (a spinner on a terminal, one line otherwise).
    """

    def __init__(self, *, enabled: bool, notices: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.notices = notices
        self.console = Console(stderr=True)
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}
        self.warnings: list[str] = []
        self._status: Any = None

    def __enter__(self) -> ProgressRenderer:
        if self.enabled:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("{task.fields[extra]}"), TimeRemainingColumn(),
                                     console=self.console, transient=True)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_waiting()
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
        for message in self.warnings:
            self.console.print(f"[yellow]warning:[/] {escape(message)}")

    def _stop_waiting(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _waiting(self, detail: dict[str, Any]) -> None:
        text = f"waiting for the index's writer lock, held by {lock_holder(detail)}"
        if not self.notices:
            return
        if self.console.is_terminal and self.progress is None:
            self._status = self.console.status(escape(text) + " (Ctrl-C to give up)")
            self._status.start()
        elif self.progress is not None:
            self.progress.add_task(escape(text), total=None, extra="")
        else:
            self.console.print(escape(text), soft_wrap=True)

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage == "warning":
            self.warnings.append(str(event.detail.get("message")))
            return
        if event.stage == "lock":
            self._waiting(event.detail)
            return
        self._stop_waiting()
        if self.progress is None or event.stage in ("done",):
            return
        task = self.tasks.get(event.stage)
        if task is None:
            task = self.progress.add_task(event.stage, total=event.total, extra="")
            self.tasks[event.stage] = task
        extra = ""
        if event.stage == "embed" and event.detail.get("embed_s"):
            extra = f"{event.detail['tokens'] / max(event.detail['embed_s'], 1e-9):,.0f} tok/s"
        elif event.stage == "parse" and "chunks" in event.detail:
            extra = f"{event.detail['chunks']:,} chunks"
        kwargs: dict[str, Any] = {"completed": event.done, "extra": extra}
        if event.total is not None:
            kwargs["total"] = event.total
        self.progress.update(task, **kwargs)


def print_report(console: Console, report: Any) -> None:
    """A run's one-line summary (values escaped: a scheduler address or a path is never markup)."""
    s = report.stages
    console.print(
        f"[bold]{report.kind}[/] {plural(report.files_seen, 'file')} seen: {report.files_indexed:,} indexed, "
        f"{report.files_skipped:,} skipped; changed +{report.files_added} ~{report.files_modified} "
        f"-{report.files_deleted}, moved {report.files_moved}, reparsed {report.files_reparsed}; "
        f"{plural(report.chunks_total, 'chunk')} "
        f"(written {report.chunks_written:,}, embedded {report.chunks_embedded:,}, reused {report.chunks_reused:,})"
        f" in {report.wall_s:.2f}s " + escape(f"[{report.scheduler}, {report.embedder}]"))
    for line in getattr(report, "repairs", []):
        console.print(f"[green]repaired:[/] {escape(line)}")
    if s.get("busy_s"):
        console.print("  " + escape(stage_summary(s)))
    if report.skipped:
        console.print("  skipped: " + escape(", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items()))))
    if getattr(report, "secrets_redacted", 0):
        console.print(f"  secrets redacted: {report.secrets_redacted} (masked before embedding and indexing)")
    for message in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(message)}")


def print_changes(console: Console, changes: dict[str, list[Any]], limit: int | None = None) -> None:
    """One line per changed file (``+`` added, ``~`` modified, ``-`` deleted, ``>`` moved, ``*`` reparsed,
    ``!`` read but skipped); ``limit`` per kind, then a count of the rest."""
    marks = (("added", "+", "green"), ("modified", "~", "yellow"), ("deleted", "-", "red"),
             ("moved", ">", "cyan"), ("reparsed", "*", "blue"), ("skipped", "!", "magenta"))
    for kind, mark, style in marks:
        items = changes.get(kind) or []
        for item in items if limit is None else items[:limit]:
            if kind == "moved":
                text = f"{escape(item[0])} -> {escape(item[1])}"
            elif kind == "skipped":
                text = f"{escape(item[0])} ({escape(item[1])})"
            else:
                text = escape(item)
            console.print(f"  [{style}]{mark}[/] {text}")
        if limit is not None and len(items) > limit:
            console.print(f"  [{style}]{mark}[/] ... and {len(items) - limit:,} more {kind} (-v lists all)")


def stage_summary(s: dict[str, Any]) -> str:
    """Per-stage busy time and share, pipeline wall time, time saved by overlapping the stages."""
    busy = s.get("busy_s", 0.0) or 0.0
    if not busy:
        return "stages: nothing to parse or embed"
    parts = [f"{name} {s[name + '_s']:.2f}s ({100 * s[name + '_s'] / busy:.0f}%)"
             for name in ("read", "parse", "embed", "write") if s.get(name + "_s")]
    text = (f"stages busy: {', '.join(parts)}; pipeline wall {s.get('wall_s', 0):.2f}s, "
            f"overlap saved {s.get('overlap_saved_s', 0):.2f}s")
    if s.get("tokens_per_s"):
        text += f", {s['tokens_per_s']:,.0f} tokens/s"
    if s.get("devices"):
        text += f" on {'/'.join(s['devices'])}"
    workers = s.get("embed_s_by_worker") or {}
    if any(str(w).startswith("gpu-") for w in workers):  # a local GPU cluster: say where embedding ran
        text += " (embedded by " + ", ".join(f"{w} {sec:.1f}s" for w, sec in workers.items()) + ")"
    return text


def print_plan(console: Console, plan: Any, *, verbose: bool = False) -> None:
    console.print(f"[bold]plan[/] (nothing written): {plural(plan.files_seen, 'file')} seen, "
                  f"{plan.unchanged:,} unchanged")
    table = Table("language", "add", "modify", "reparse", "move")
    for lang, counts in sorted(plan.by_language.items()):
        table.add_row(Text(lang), *(str(counts.get(k, 0)) for k in ("add", "modify", "reparse", "move")))
    if plan.by_language:
        console.print(table)
    console.print(f"delete {len(plan.deleted)}, move {len(plan.moved)}")
    print_changes(console, {"added": plan.added, "modified": plan.modified, "deleted": plan.deleted,
                            "moved": [list(m) for m in plan.moved], "reparsed": plan.reparse},
                  limit=None if verbose else LISTED_PER_KIND)
    if plan.model_change:
        console.print(f"[yellow]model change:[/] {escape(plan.model_change)} (every chunk re-embedded)")
    eta = f", ~{plan.estimated_seconds:.1f}s" if plan.estimated_seconds is not None else ""
    console.print(f"estimated: {plural(plan.estimated_chunks, 'chunk')}, {plural(plan.estimated_tokens, 'token')}{eta}")


def _highlight(text: str, terms: list[str]) -> Text:
    out = Text(text)
    for term in sorted(set(terms), key=len, reverse=True):
        if len(term) >= 2:
            out.highlight_regex(re.compile(re.escape(term), re.IGNORECASE), "bold yellow")
    return out


def print_results(console: Console, query: str, results: list[Any]) -> None:
    from codeindex.search.analysis import query_tokens

    if not results:
        console.print("no results")
        return
    terms = query_tokens(query)
    for r in results:
        header = Text()
        header.append(f"{r.path}:{r.start_line}-{r.end_line}", style="bold cyan")
        header.append(f"  {r.symbol or '-'}", style="green")
        header.append(f"  {r.score:.4f}", style="dim")
        console.print(header)
        notes = (["the definition named"] if r.exact_definition else []) + (
            ["also lines " + ", ".join(f"{a}-{b}" for a, b in r.other_ranges)] if r.other_ranges else [])
        if notes:
            console.print(Text("    (" + "; ".join(notes) + ")", style="dim"))
        if r.before or r.after:  # context asked for: the whole piece, numbered, with the lines around it
            numbered = [(r.start_line - len(r.before) + i, line, True) for i, line in enumerate(r.before)]
            numbered += [(r.start_line + i, line, False) for i, line in enumerate(r.text.split("\n"))]
            numbered += [(r.end_line + 1 + i, line, True) for i, line in enumerate(r.after)]
            for number, line, around in numbered:
                text = Text(f"{number:>6}{'-' if around else ':'} ", style="dim")
                text.append_text(Text(line[:160], style="dim") if around else _highlight(line[:160], terms))
                console.print(text)
            continue
        lines = r.text.splitlines()[:SNIPPET_LINES]
        snippet = "\n".join("    " + line[:160] for line in lines)
        console.print(_highlight(snippet, terms))


FAILURES_PRINTED = 5


def match_position(text: str, start_line: int, terms: list[str]) -> tuple[int, int, str]:
    """``(line, column, line text)`` an editor should jump to for a result: the first line holding a
    query term (column of the term, 1-based), else the first non-blank line."""
    lines = text.split("\n")
    wanted = [t.lower() for t in sorted(set(terms), key=len, reverse=True) if len(t) >= 2]
    for i, line in enumerate(lines):
        low = line.lower()
        found = [low.find(t) for t in wanted if t in low]
        if found:
            return start_line + i, min(found) + 1, line
    for i, line in enumerate(lines):
        if line.strip():
            return start_line + i, len(line) - len(line.lstrip()) + 1, line
    return start_line, 1, lines[0] if lines else ""


def print_vimgrep(query: str, results: list[Any]) -> None:
    """``path:line:col: text``, one line per result (vim's ``:cexpr``, emacs grep mode, VS Code)."""
    from codeindex.search.analysis import query_tokens

    terms = query_tokens(query)
    for r in results:
        line, column, text = match_position(r.text, r.start_line, terms)
        sys.stdout.write(f"{r.path}:{line}:{column}: {text.strip()}\n")


def print_result_files(results: list[Any]) -> None:
    """``search -l``: the paths of the results, each once, best first."""
    seen: set[str] = set()
    for r in results:
        if r.path not in seen:
            seen.add(r.path)
            sys.stdout.write(r.path + "\n")


def print_status(console: Console, info: dict[str, Any]) -> None:
    """Every value escaped: a path like ``mk[/]up`` is text, never markup."""
    run = info.get("last_run") or {}
    console.print(f"[bold]{escape(info['root'])}[/] index at {escape(info['index_dir'])}")
    console.print(f"files {info['files_seen']:,} seen: {info['files']:,} indexed, {info['files_skipped']:,} skipped; "
                  f"{plural(info['chunks'], 'chunk')}, {plural(info['vectors'], 'vector')} "
                  f"(+{info['dead_vectors']:,} dead) in {plural(len(info['segments']), 'segment')}, "
                  f"{info['index_bytes'] / 1e6:.1f} MB")
    console.print(escape(f"embedder {info['embedder']} ({info['embedder_kind']}), model {info['model_id']}"))
    if run:
        console.print(escape(f"last run #{run['run_id']} {run['kind']} at {run['started_at']} took "
                             f"{run['wall_s']:.2f}s: embedded {run['chunks_embedded']:,} chunks, "
                             f"reused {run['chunks_reused']:,}"))
        console.print("  " + escape(stage_summary(run.get("stages") or {})))
    if "stale" in info:
        stale = info["stale"]
        changed = sum(stale.values())
        console.print("up to date" if not changed else
                      "stale: " + escape(", ".join(f"{k} {v}" for k, v in stale.items() if v)))
    if info.get("skipped_by_reason"):
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(info["skipped_by_reason"].items()))
        console.print("skipped: " + escape(reasons) + "  (`codeindex files --skipped` lists them)")
    failed = info.get("failed") or []
    if failed:
        console.print(f"[yellow]parse failures: {info.get('parse_failures', len(failed))}[/] (retried when the "
                      "parser changes, or with `codeindex update --retry-failed`)")
        for row in failed[:FAILURES_PRINTED]:
            console.print("  " + escape(f"{row['path']}: {row['reason']}"))
        if info.get("parse_failures", len(failed)) > FAILURES_PRINTED:
            console.print(f"  ... {info['parse_failures'] - FAILURES_PRINTED} more (`codeindex status --json`)")
    integrity = info.get("integrity") or {}
    if integrity.get("check") == "full":
        console.print("integrity: " + escape(_verify_line(integrity)))
    elif integrity:
        console.print(f"integrity: quick check passed ({integrity.get('segments_checked', 0)} segment(s)); "
                      "`codeindex verify` checks everything")


def _verify_line(report: dict[str, Any]) -> str:
    checked = report.get("checked", {})
    rows = sum(v for k, v in checked.items() if k.startswith("rows."))
    what = (f"{rows:,} rows, {checked.get('segments', 0)} segment(s), "
            f"{(checked.get('database_bytes', 0) + checked.get('segment_bytes', 0)) / 1e6:.1f} MB "
            f"in {report.get('seconds', 0):.2f}s")
    problems = report.get("problems", [])
    return f"sound ({what})" if not problems else f"{len(problems)} problem(s) ({what})"


def print_verify(console: Console, report: Any) -> None:
    """What ``codeindex verify`` found: each problem with its repair, then what was checked."""
    data = report.as_dict()
    head = f"[bold]verify[/] {escape(data['index_dir'])}: "
    if report.ok:
        console.print(head + "[green]sound[/] " + escape(_verify_line(data).removeprefix("sound ")))
        return
    console.print(head + f"[red]damaged[/], {len(report.problems)} problem(s)")
    for problem in report.problems:
        repair = "update --repair" if problem.repairable else "rebuild"
        console.print(f"  [red]x[/] {escape(str(problem))}  [dim]repair: codeindex {repair}[/]")
    console.print("  checked: " + escape(_verify_line(data)))


def print_files(console: Console, records: list[Any]) -> None:
    """``codeindex files``: one path per line; skipped entries with their reason and stored message."""
    for r in records:
        if r.indexed:
            console.print(escape(r.path), markup=True)
        else:
            detail = f": {escape(r.detail)}" if r.detail else ""
            console.print(f"{escape(r.path)}  [dim]{escape(r.reason or '')}{detail}[/]")


def print_why(console: Console, report: Any) -> None:
    """``codeindex why``: the verdict, the reason and its specifics."""
    style = {"indexed": "green", "pending": "yellow", "missing": "red"}.get(report.state, "magenta")
    head = "indexed" if report.indexed else f"not indexed ({report.state})"
    console.print(f"[bold]{escape(report.path)}[/]: [{style}]{head}[/]")
    if report.reason:
        console.print(f"  reason: {escape(report.reason)}")
    if report.explanation:
        console.print(f"  {escape(report.explanation)}")
    if report.detail:
        console.print(f"  detail: {escape(report.detail)}")
    for note in report.notes:
        console.print(f"  note: {escape(note)}")
    for r in report.redactions:
        name = f" ({r['name']})" if r["name"] else ""
        console.print(f"  redacted: line {r['line']}: {escape(str(r['kind']))}{escape(str(name))}")


def plugin_rows(manager: Any) -> list[dict[str, Any]]:
    rows = []
    for info in manager.infos.values():
        provides: list[str] = []
        for parser in info.parsers:
            for spec in parser.languages():
                exts = " ".join(spec.extensions + spec.filenames) or "(fallback)"
                provides.append(f"{spec.name} [{exts}]")
        provides.extend(f"embedder {b.name}: {b.description}" for b in info.embedders)
        provides.extend(f"reranker {r.name}: {r.description}" for r in info.rerankers)
        rows.append({"name": info.name, "package": info.package, "version": info.version,
                     "builtin": info.builtin, "provides": provides})
    return rows


def plugin_records(manager: Any) -> list[dict[str, Any]]:
    """``plugins --json``: each plugin with its parsers' languages, its embedders and rerankers, as fields."""
    out = []
    for info in manager.infos.values():
        parsers = [{"name": p.name, "version": p.version,
                    "languages": [{"name": spec.name, "extensions": list(spec.extensions),
                                   "filenames": list(spec.filenames)} for spec in p.languages()]}
                   for p in info.parsers]
        embedders = [{"name": b.name, "description": b.description} for b in info.embedders]
        rerankers = [{"name": r.name, "description": r.description} for r in info.rerankers]
        out.append({"name": info.name, "package": info.package, "version": info.version, "builtin": info.builtin,
                    "module": info.module, "parsers": parsers, "embedders": embedders, "rerankers": rerankers})
    return out


def print_plugins(console: Console, rows: list[dict[str, Any]], warnings: list[str]) -> None:
    table = Table("plugin", "package", "version", "provides", show_lines=True)
    for row in rows:  # Text cells: "python [.py .pyi]" is a list of extensions, not markup
        table.add_row(Text(row["name"] + (" (built-in)" if row["builtin"] else "")), Text(row["package"]),
                      Text(row["version"]), Text("\n".join(row["provides"])))
    console.print(table)
    for message in warnings:
        console.print(f"[yellow]warning:[/] {escape(message)}")


def live_line(status: dict[str, Any]) -> str:
    """One line of what a live process does: files watched, the last or current update, pending changes."""
    last = status.get("last_update") or {}
    parts = [f"watching {last['files_seen']:,} files" if "files_seen" in last else "watching"]
    if status.get("tree_gone_since"):
        parts = [f"the tree is gone (moved or removed, noticed {status['tree_gone_since']})"]
    if status.get("updating"):
        phase = f": {status['phase']}" if status.get("phase") else ""
        parts.append(f"updating ({status['updating']}{phase})")
    elif status.get("last_update_at") and last:
        parts.append(f"last update {status['last_update_at'][11:19]} +{last.get('files_added', 0)} "
                     f"~{last.get('files_modified', 0)} -{last.get('files_deleted', 0)} "
                     f"in {last.get('wall_s', 0):.2f}s")
    parts.append(f"pending {status.get('pending_paths', 0)}")
    if status.get("watch_error"):
        parts.append(f"watcher: {status['watch_error']}")
    if status.get("last_error"):
        parts.append(f"error: {status['last_error']}")
    return " · ".join(parts)


class _LiveLine:
    def __init__(self, status: Any) -> None:
        self.status = status

    def __rich__(self) -> Text:
        return Text(live_line(self.status()))


class WatchDisplay:
    """What `codeindex watch` shows: a live line on a terminal, else one line (or JSON) per update."""

    def __init__(self, console: Console, *, enabled: bool, as_json: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.as_json = as_json
        self.interactive = enabled and not as_json and sys.stderr.isatty()

    def live(self, status: Any) -> Any:
        import contextlib

        from rich.live import Live

        if not self.interactive:
            return contextlib.nullcontext()
        return Live(_LiveLine(status), console=Console(stderr=True), refresh_per_second=4, transient=True)

    def update(self, report: dict[str, Any]) -> None:
        if self.as_json:
            import json

            sys.stdout.write(json.dumps(report, default=str) + "\n")
            sys.stdout.flush()
        elif self.enabled and not self.interactive:
            self.console.print(f"{report['kind']} +{report['files_added']} ~{report['files_modified']} "
                               f"-{report['files_deleted']} moved {report['files_moved']}, "
                               f"embedded {report['chunks_embedded']:,} in {report['wall_s']:.2f}s "
                               f"({report['files_seen']:,} files)")
            sys.stdout.flush()

    def stopped(self) -> None:
        if self.enabled:
            Console(stderr=True).print("stopped watching")
