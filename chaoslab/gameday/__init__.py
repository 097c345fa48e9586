"""Game days: a led sequence of experiments with a briefing, live notes and one combined report."""

from __future__ import annotations

from chaoslab.gameday.agenda import GameDayPlan, GameDayStep, load_plan, load_steps, runbook_summary
from chaoslab.gameday.report import render_gameday_html, render_gameday_markdown, review_markdown

__all__ = [
    "GameDayPlan",
    "GameDayStep",
    "load_plan",
    "load_steps",
    "render_gameday_html",
    "render_gameday_markdown",
    "review_markdown",
    "runbook_summary",
]
