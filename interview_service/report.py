"""The interview's results as one readable, self-contained HTML page.

Pure: the results (as ``GET …/results`` answers them) in, a string out. Everything that
came from a person or a model (the transcript, quotes, the summary, criteria, the role)
is escaped with :func:`html.escape`; the page has no script, no external resource, and
is served with a Content-Security-Policy that would block one anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from backend.core.clock import to_seconds

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;
color:#1d2433;background:#fff}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #dde2ea;padding-bottom:.3rem}
.meta{color:#5a6475}.score{margin:1rem 0;padding:.8rem 1rem;border:1px solid #dde2ea;
border-radius:8px}.score h3{margin:0;font-size:1.05rem;display:flex;
justify-content:space-between}.bar{height:6px;background:#eef1f5;border-radius:3px;
margin:.4rem 0}.bar span{display:block;height:6px;background:#3867d6;border-radius:3px}
blockquote{margin:.4rem 0;padding:.2rem .8rem;border-left:3px solid #3867d6;
background:#f6f8fb;font-style:italic}
.line{display:grid;grid-template-columns:3.5rem 6.5rem 1fr;gap:.5rem;padding:.25rem 0}
.at{color:#8a93a3;font-variant-numeric:tabular-nums}.who{font-weight:600}
.candidate .who{color:#0b7a55}.interviewer .who{color:#3867d6}
.interrupted .text::after{content:" (interrupted)";color:#b3541e;font-size:.85em}
table{border-collapse:collapse}td,th{text-align:left;padding:.2rem 1rem .2rem 0;
border-bottom:1px solid #eef1f5}.muted{color:#8a93a3}
"""


def render_report(results: Mapping[str, Any]) -> str:
    plan: Mapping[str, Any] = results.get("plan") or {}
    role = plan.get("role")
    title = f"Interview report: {role}" if role else "Interview report"
    metrics: Mapping[str, Any] = results.get("metrics") or {}
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Interview {escape(str(results.get("session_id", "")))} · '
        f"{escape(str(results.get('status', '')))} · "
        f"{_duration(metrics.get('duration_s'))}</p>",
        _summary(results),
        _scores(results),
        _transcript(results.get("transcript") or []),
        _metrics(metrics),
        "</body></html>",
    ]
    return "\n".join(parts)


def _summary(results: Mapping[str, Any]) -> str:
    summary = results.get("summary")
    if summary:
        return f'<h2>Summary</h2><p id="summary">{escape(str(summary))}</p>'
    why = {
        "pending": "The evaluation is still running; reload in a moment.",
        "failed": "The evaluation failed; the transcript and measurements below stand.",
    }.get(
        str(results.get("evaluation")),
        "Only a language model writes a summary and scores; this interview has the "
        "transcript and measurements.",
    )
    return f'<h2>Summary</h2><p id="summary" class="muted">{escape(why)}</p>'


def _scores(results: Mapping[str, Any]) -> str:
    scores: Sequence[Mapping[str, Any]] | None = results.get("scores")
    if not scores and not results.get("unscored"):
        return ""
    parts = ['<h2>Scores</h2><div id="scores">']
    for score in scores or []:
        value, top = int(score["score"]), max(int(score.get("max") or 5), 1)
        quotes = "".join(
            f"<blockquote>{escape(str(quote))}</blockquote>" for quote in score["evidence"]
        )
        parts.append(
            f'<section class="score"><h3><span>{escape(str(score["criterion"]))}</span>'
            f"<span>{value} / {top}</span></h3>"
            f'<div class="bar"><span style="width:{round(100 * value / top)}%"></span></div>'
            f"{quotes}</section>"
        )
    for item in results.get("unscored") or []:
        parts.append(
            f'<section class="score unscored"><h3><span>{escape(str(item["criterion"]))}'
            '</span><span class="muted">not scored</span></h3>'
            f'<p class="muted">No quote of the candidate supports a score: '
            f"{escape(str(item.get('reason', '')))}</p></section>"
        )
    parts.append("</div>")
    return "".join(parts)


def _transcript(lines: Sequence[Mapping[str, Any]]) -> str:
    if not lines:
        return '<h2>Transcript</h2><p class="muted">Nothing was said.</p>'
    first = to_seconds(lines[0]["start"])
    rows = []
    for line in lines:
        offset = max(0, round(to_seconds(line["start"]) - first))
        role = "candidate" if line["role"] == "candidate" else "interviewer"
        marked = " interrupted" if line.get("interrupted") else ""
        rows.append(
            f'<div class="line {role}{marked}"><span class="at">{offset // 60}:'
            f'{offset % 60:02d}</span><span class="who">{role.title()}</span>'
            f'<span class="text">{escape(str(line["text"]))}</span></div>'
        )
    return '<h2>Transcript</h2><div id="transcript">' + "".join(rows) + "</div>"


METRICS = (
    ("turns", "Candidate turns"),
    ("candidate_talk_ratio", "Candidate talk ratio"),
    ("candidate_words_per_minute", "Candidate words per minute"),
    ("filler_words", "Filler words"),
    ("interviewer_response_latency_s", "Interviewer response latency, median (s)"),
    ("end_reason", "How it ended"),
)


def _metrics(metrics: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><th>{escape(label)}</th><td>{escape(_plain(metrics.get(key)))}</td></tr>"
        for key, label in METRICS
    ]
    return '<h2>Measurements</h2><table id="metrics">' + "".join(rows) + "</table>"


def _plain(value: Any) -> str:
    return "none" if value is None else str(value)


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "not started"
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s"
