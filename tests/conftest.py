"""Test-wide settings: hypothesis without its per-example deadline, a timing assertion that a
loaded machine (CI's two cores under pytest-xdist) breaks without anything being wrong."""

from hypothesis import settings

settings.register_profile("project", deadline=None)
settings.load_profile("project")
