"""Formatting shared by the Markdown and the HTML report."""

from __future__ import annotations


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"
