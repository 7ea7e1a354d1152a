"""Rewrite the README's node-type x backend table from the registries (tests/test_readme.py checks it)."""

from pathlib import Path

from snndeploy.report.support import readme_with_table

readme = Path(__file__).resolve().parents[1] / "README.md"
readme.write_text(readme_with_table(readme.read_text()))
print(f"updated {readme}")
