"""Puts copies of the top-level ``search_spaces/`` and ``studies/`` into the wheel (``nasengine/_data/``),
so an ordinary ``pip install`` can run the default search; the metadata lives in pyproject.toml."""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("search_spaces", "studies")


class BuildWithShippedFiles(build_py):
    def run(self) -> None:
        super().run()
        for kind in SHIPPED:
            self.copy_tree(kind, os.path.join(self.build_lib, "nasengine", "_data", kind))


setup(cmdclass={"build_py": BuildWithShippedFiles})
