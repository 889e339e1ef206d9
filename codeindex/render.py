"""Rendering for the CLI (rich). The library reports through events and return values; this prints."""

from __future__ import annotations

import re
import sys
from typing import Any

from rich.console import Console
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
            self.console.print(f"[yellow]warning:[/] {message}")

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
    s = report.stages
    console.print(
        f"[bold]{report.kind}[/] {report.files_seen:,} files seen: +{report.files_added} ~{report.files_modified} "
        f"-{report.files_deleted} moved {report.files_moved} reparsed {report.files_reparsed}, "
        f"{report.files_skipped} skipped; chunks {report.chunks_total:,} "
        f"(written {report.chunks_written:,}, embedded {report.chunks_embedded:,}, reused {report.chunks_reused:,})"
        f" in {report.wall_s:.2f}s [{report.scheduler}, {report.embedder}]")
    if s.get("busy_s"):
        console.print("  " + stage_summary(s))
    if report.skipped:
        console.print("  skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items())))
    for message in report.warnings:
        console.print(f"[yellow]warning:[/] {message}")


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
        table.add_row(lang, *(str(counts.get(k, 0)) for k in ("add", "modify", "reparse", "move")))
    if plan.by_language:
        console.print(table)
    console.print(f"delete {len(plan.deleted)}, move {len(plan.moved)}")
    if plan.model_change:
        console.print(f"[yellow]model change:[/] {plan.model_change} (every chunk re-embedded)")
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


def print_files(results: list[Any]) -> None:
    """The paths of the results, each once, best first."""
    seen: set[str] = set()
    for r in results:
        if r.path not in seen:
            seen.add(r.path)
            sys.stdout.write(r.path + "\n")


def print_status(console: Console, info: dict[str, Any]) -> None:
    run = info.get("last_run") or {}
    console.print(f"[bold]{info['root']}[/] index at {info['index_dir']}")
    console.print(f"files {info['files']:,} (skipped {info['files_skipped']:,}), chunks {info['chunks']:,}, "
                  f"vectors {info['vectors']:,} (+{info['dead_vectors']:,} dead) in {len(info['segments'])} segments, "
                  f"{info['index_bytes'] / 1e6:.1f} MB")
    console.print(f"embedder {info['embedder']} ({info['embedder_kind']}), model {info['model_id']}")
    if run:
        console.print(f"last run #{run['run_id']} {run['kind']} at {run['started_at']} took {run['wall_s']:.2f}s: "
                      f"embedded {run['chunks_embedded']:,} chunks, reused {run['chunks_reused']:,}")
        console.print("  " + stage_summary(run.get("stages") or {}))
    if "stale" in info:
        stale = info["stale"]
        changed = sum(stale.values())
        console.print("up to date" if not changed else
                      "stale: " + ", ".join(f"{k} {v}" for k, v in stale.items() if v))
    if info.get("skipped_by_reason"):
        console.print("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(info["skipped_by_reason"].items())))


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


def print_plugins(console: Console, rows: list[dict[str, Any]], warnings: list[str]) -> None:
    table = Table("plugin", "package", "version", "provides", show_lines=True)
    for row in rows:
        table.add_row(row["name"] + (" (built-in)" if row["builtin"] else ""), row["package"], row["version"],
                      "\n".join(row["provides"]))
    console.print(table)
    for message in warnings:
        console.print(f"[yellow]warning:[/] {message}")
