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


class ProgressRenderer:
    """A rich progress display driven by library ``ProgressEvent``s (files parsed, chunks embedded, tokens/s)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.console = Console(stderr=True)
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}
        self.warnings: list[str] = []

    def __enter__(self) -> ProgressRenderer:
        if self.enabled:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("{task.fields[extra]}"), TimeRemainingColumn(),
                                     console=self.console, transient=True)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
        for message in self.warnings:
            self.console.print(f"[yellow]warning:[/] {escape(message)}")

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage == "warning":
            self.warnings.append(str(event.detail.get("message")))
            return
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
        f"[bold]{report.kind}[/] {report.files_seen:,} files seen: +{report.files_added} ~{report.files_modified} "
        f"-{report.files_deleted} moved {report.files_moved} reparsed {report.files_reparsed}, "
        f"{report.files_skipped} skipped; chunks {report.chunks_total:,} "
        f"(written {report.chunks_written:,}, embedded {report.chunks_embedded:,}, reused {report.chunks_reused:,})"
        f" in {report.wall_s:.2f}s " + escape(f"[{report.scheduler}, {report.embedder}]"))
    for line in getattr(report, "repairs", []):
        console.print(f"[green]repaired:[/] {escape(line)}")
    if s.get("busy_s"):
        console.print("  " + escape(stage_summary(s)))
    if report.skipped:
        console.print("  skipped: " + escape(", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items()))))
    for message in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(message)}")


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


def print_plan(console: Console, plan: Any) -> None:
    console.print(f"[bold]plan[/] (nothing written): {plan.files_seen:,} files, {plan.unchanged:,} unchanged")
    table = Table("language", "add", "modify", "reparse", "move")
    for lang, counts in sorted(plan.by_language.items()):
        table.add_row(Text(lang), *(str(counts.get(k, 0)) for k in ("add", "modify", "reparse", "move")))
    if plan.by_language:
        console.print(table)
    console.print(f"delete {len(plan.deleted)}, move {len(plan.moved)}")
    if plan.model_change:
        console.print(f"[yellow]model change:[/] {escape(plan.model_change)} (every chunk re-embedded)")
    eta = f", ~{plan.estimated_seconds:.1f}s" if plan.estimated_seconds is not None else ""
    console.print(f"estimated: {plan.estimated_chunks:,} chunks, {plan.estimated_tokens:,} tokens{eta}")


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
        lines = r.text.splitlines()[:SNIPPET_LINES]
        snippet = "\n".join("    " + line[:160] for line in lines)
        console.print(_highlight(snippet, terms))


FAILURES_PRINTED = 5


def print_status(console: Console, info: dict[str, Any]) -> None:
    """Every value escaped: a path like ``mk[/]up`` is text, never markup."""
    run = info.get("last_run") or {}
    console.print(f"[bold]{escape(str(info['root']))}[/] index at {escape(str(info['index_dir']))}")
    console.print(f"files {info['files']:,} (skipped {info['files_skipped']:,}), chunks {info['chunks']:,}, "
                  f"vectors {info['vectors']:,} (+{info['dead_vectors']:,} dead) in {len(info['segments'])} segments, "
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
        console.print("skipped: " + escape(", ".join(f"{k} {v}" for k, v in
                                                     sorted(info["skipped_by_reason"].items()))))
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


def plugin_rows(manager: Any) -> list[dict[str, Any]]:
    rows = []
    for info in manager.infos.values():
        provides: list[str] = []
        for parser in info.parsers:
            for spec in parser.languages():
                exts = " ".join(spec.extensions + spec.filenames) or "(fallback)"
                provides.append(f"{spec.name} [{exts}]")
        provides.extend(f"embedder {b.name}: {b.description}" for b in info.embedders)
        rows.append({"name": info.name, "package": info.package, "version": info.version,
                     "builtin": info.builtin, "provides": provides})
    return rows


def print_plugins(console: Console, rows: list[dict[str, Any]], warnings: list[str]) -> None:
    table = Table("plugin", "package", "version", "provides", show_lines=True)
    for row in rows:  # Text cells: "python [.py .pyi]" is a list of extensions, not markup
        table.add_row(Text(row["name"] + (" (built-in)" if row["builtin"] else "")), Text(row["package"]),
                      Text(row["version"]), Text("\n".join(row["provides"])))
    console.print(table)
    for message in warnings:
        console.print(f"[yellow]warning:[/] {escape(message)}")
