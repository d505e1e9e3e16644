"""The shipped networks and scenarios (TOML files, each number with its source).

This folder holds data, not code. A wheel installs it as the data package ``sim._networks``
(see ``pyproject.toml``), which :func:`sim.network.shipped_folder` finds with
:mod:`importlib.resources`; this file is what makes it a package.
"""
