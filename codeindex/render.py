"""Rendering for the CLI (rich). The library reports through events and return values; this prints."""

from __future__ import annotations

import re
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from codeindex.progress import ProgressEvent

SNIPPET_LINES = 6


class _RunBar(BarColumn):
    """A bar only on the whole-run line; the stage lines under it are text."""

    def render(self, task: Any) -> Any:
        return super().render(task) if task.fields.get("bar") else Text("")


class ProgressRenderer:
    """A rich progress display driven by library ``ProgressEvent``s.

    One bar for the whole run (tokens to embed, planned from the start, with the library's ETA), and
    under it a line per stage: files parsed, texts embedded (and why that is fewer than the chunks
    parsed), what the last checkpoint committed. Every line is there from the first second.
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.console = Console(stderr=True)
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}
        self.warnings: list[str] = []

    def __enter__(self) -> ProgressRenderer:
        if self.enabled:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description:<10}"), _RunBar(),
                                     TextColumn("{task.fields[extra]}"), console=self.console, transient=True)
            self.progress.__enter__()
            for name, text in (("run", "finding files"), ("parse", "waiting"), ("embed", "waiting for parsed text")):
                self.tasks[name] = self.progress.add_task("indexing" if name == "run" else name, total=None,
                                                          extra=text, bar=name == "run")
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
        if self.progress is None or event.stage == "done":
            return
        line = progress_line(event)
        if line is None:
            return
        name, text = line
        task = self.tasks.get(name)
        if task is None:
            task = self.tasks[name] = self.progress.add_task(name, total=None, extra="", bar=False)
        kwargs: dict[str, Any] = {"extra": text}
        if name == "run" and event.total:
            kwargs.update(completed=event.done, total=event.total)
        self.progress.update(task, **kwargs)


def _approx(n: int, exact: bool) -> str:
    return f"{n:,}" if exact else f"~{n:,}"


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def progress_line(event: ProgressEvent) -> tuple[str, str] | None:
    """Which line an event updates, and its text (pure: the renderer only places it)."""
    d = event.detail
    if event.stage in ("discover", "hash"):
        return "run", "finding files" if event.stage == "discover" else f"hashing {event.total or 0:,} files"
    if event.stage == "run":
        exact = bool(d.get("exact"))
        if not event.total:
            return "run", "nothing to embed"
        eta = d.get("eta_s")
        share = 100 * event.done / event.total
        rate = d.get("tokens_per_s")
        text = (f"{share:3.0f}%  {event.done:,} of {_approx(event.total, exact)} tokens to embed  "
                f"ETA {_clock(eta) if eta is not None else 'measuring...'}")
        if d.get("phase") == "starting":
            text += "  (starting the workers)"
        return "run", text + (f"  {rate:,.0f} tok/s" if rate else "")
    if event.stage == "parse":
        text = f"{event.done:,} of {event.total:,} files" if event.total is not None else f"{event.done:,} files"
        return "parse", text + (f", {d['chunks']:,} chunks" if d.get("chunks") else "")
    if event.stage == "embed":
        exact = bool(d.get("exact"))
        text = f"{event.done:,} of {_approx(event.total or 0, exact)} distinct texts"
        if d.get("shared"):
            text += (f"; {d['shared']:,} of {d.get('chunks', 0):,} chunks share a text or reuse a stored vector, "
                     "embedded once")
        return "embed", text
    if event.stage == "checkpoint":
        return "checkpoint", (f"#{event.done} committed {d.get('files', 0):,} files, {d.get('chunks', 0):,} chunks "
                              f"(embedded {d.get('chunks_embedded', 0):,}): searchable, and kept if stopped")
    if event.stage in ("commit", "compact"):
        return "run", "committing" if event.stage == "commit" else "compacting segments"
    return None


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
    eta = f", ~{plan.estimated_seconds:.1f}s of embedding" if plan.estimated_seconds is not None else ""
    console.print(f"would embed: {plan.estimated_chunks:,} texts, {plan.estimated_tokens:,} tokens{eta} "
                  "(chunks whose text has a stored vector reuse it)")


def _highlight(text: str, terms: list[str]) -> Text:
    out = Text(text)
    for term in sorted(set(terms), key=len, reverse=True):
        if len(term) >= 2:
            out.highlight_regex(re.compile(re.escape(term), re.IGNORECASE), "bold yellow")
    return out


def coverage_lines(info: dict[str, Any]) -> list[str]:
    """What ``status`` says of an unfinished build: vectors still to embed, a rebuild waiting beside."""
    lines = []
    chunks, embedded = info.get("chunks", 0), info.get("chunks_embedded", info.get("chunks", 0))
    if embedded < chunks or info.get("build_in_progress"):
        lines.append(f"[yellow]unfinished build:[/] embedded {embedded:,} of {chunks:,} chunks (lexical search covers "
                     "all of them); `codeindex update` finishes it")
    beside = info.get("rebuild_in_progress")
    if beside:
        lines.append(f"[yellow]unfinished rebuild beside this index:[/] {beside['files']:,} files, embedded "
                     f"{beside['chunks_embedded']:,} of {beside['chunks']:,} chunks; `codeindex rebuild` resumes it")
    return lines


def print_coverage_note(console: Console, coverage: tuple[int, int] | None) -> None:
    """Under search results: the index is still embedding, so vector ranks cover only part of it."""
    if coverage is not None:
        embedded, chunks = coverage
        console.print(f"[yellow]note:[/] embedded {embedded:,} of {chunks:,} chunks so far: vector ranks cover those, "
                      "word matches cover all")


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


def print_status(console: Console, info: dict[str, Any]) -> None:
    run = info.get("last_run") or {}
    console.print(f"[bold]{info['root']}[/] index at {info['index_dir']}")
    console.print(f"files {info['files']:,} (skipped {info['files_skipped']:,}), chunks {info['chunks']:,}, "
                  f"vectors {info['vectors']:,} (+{info['dead_vectors']:,} dead) in {len(info['segments'])} segments, "
                  f"{info['index_bytes'] / 1e6:.1f} MB")
    console.print(f"embedder {info['embedder']} ({info['embedder_kind']}), model {info['model_id']}")
    for line in coverage_lines(info):
        console.print(line)
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
