"""Fixtures shared by every test folder of the workspace."""

pytest_plugins = ["lprctl.pytest_plugin"]
