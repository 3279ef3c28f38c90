"""Writes web/tests/fixtures/keyframe_curves.json: keyframe documents and the curves a2h_core/pose/curve.py builds from
them, so the web editor's JavaScript interpolation is tested against Python's numbers (web/tests/*.test.mjs).
tests/test_workflows.py checks in CI that the stored numbers are still what pose.py gives. The cases and the
expected values come from a2h_devkit/web_fixtures.py.

    python web/tests/make_fixtures.py
"""
from __future__ import annotations

from a2h_devkit.imports import REPOSITORY
from a2h_devkit.web_fixtures import FIXTURES, build_fixtures, format_fixtures


def main() -> None:
    fixtures = build_fixtures()
    FIXTURES.parent.mkdir(parents=True, exist_ok=True)
    FIXTURES.write_text(format_fixtures(fixtures))
    print(f"wrote {FIXTURES.relative_to(REPOSITORY)}: {len(fixtures['interpolate_keys'])} interpolations, "
          f"{len(fixtures['curves'])} curves")


if __name__ == "__main__":
    main()
