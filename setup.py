"""Packages are found, not listed: every package under the design card's folders ships as a
subpackage of ``memlane`` (a new folder with an ``__init__.py`` cannot be forgotten)."""

from setuptools import find_packages, setup

ROOTS = ("events", "projections", "daemon", "cli")

setup(
    package_dir={f"memlane.{root}": root for root in ROOTS},
    packages=[f"memlane.{root}{'.' + sub if sub else ''}"
              for root in ROOTS for sub in ("", *find_packages(root))],
)
