"""Registers the test-infrastructure plugin for every test in the repository."""

pytest_plugins = ["opr_shared.testing.infra", "opr_shared.testing.browser"]
