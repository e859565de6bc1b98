"""A skipped integration or e2e test fails the run (checked in a separate pytest process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _run_pytest(root: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    (root / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    integration: x\n    e2e: x\naddopts = -p no:cacheprovider\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "opr_shared.testing.infra",
            "-c",
            str(root / "pytest.ini"),
            "--rootdir",
            str(root),
            "-q",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        check=False,
    )


def test_a_skipped_integration_test_fails_the_run_and_is_named(tmp_path: Path) -> None:
    result = _run_pytest(
        tmp_path,
        {
            "test_it.py": """
                import pytest

                @pytest.mark.integration
                def test_needs_kafka():
                    pytest.skip("no broker here")

                def test_plain():
                    assert True
            """
        },
    )
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "skipped integration/e2e tests" in result.stdout
    assert "test_it.py::test_needs_kafka: no broker here" in result.stdout


def test_a_skipped_e2e_test_class_member_fails_the_run(tmp_path: Path) -> None:
    result = _run_pytest(
        tmp_path,
        {
            "test_e.py": """
                import pytest

                @pytest.mark.e2e
                class TestJourney:
                    @pytest.mark.skipif(True, reason="portal missing")
                    def test_registers(self):
                        pass
            """
        },
    )
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "TestJourney::test_registers: portal missing" in result.stdout


def test_a_module_skipped_in_an_integration_folder_fails_the_run(tmp_path: Path) -> None:
    result = _run_pytest(
        tmp_path,
        {
            "integration/test_mod.py": """
                import pytest

                pytest.skip("whole module skipped", allow_module_level=True)

                def test_never_runs():
                    pass
            """
        },
    )
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "whole module skipped" in result.stdout


def test_skipping_unit_tests_or_expected_failures_does_not_fail_the_run(tmp_path: Path) -> None:
    result = _run_pytest(
        tmp_path,
        {
            "test_unit.py": """
                import pytest

                def test_later():
                    pytest.skip("not yet")

                @pytest.mark.integration
                @pytest.mark.xfail(reason="known broker gap", strict=True)
                def test_known_gap():
                    raise AssertionError("gap")

                @pytest.mark.integration
                def test_runs():
                    assert True
            """
        },
    )
    assert result.returncode == pytest.ExitCode.OK, result.stdout
    assert "skipped integration/e2e tests" not in result.stdout
