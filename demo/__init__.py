"""The demo collection: a generated, labelled set of camera-trap clips in the Pri-matrix format.

``config`` (what to make), ``species`` (how each class looks and moves), ``scenes`` (camera
sites, what happens in a clip, its frames), ``plan`` (which clip shows what, where), ``generate``
(writing clips, label files and the manifest). Start with :func:`make_demo`::

    from jungle.demo import DemoConfig, make_demo
    manifest = make_demo("demo-data", DemoConfig(n_train=400, n_test=100))

Names are loaded on first use, so importing the package stays cheap.
"""

from __future__ import annotations

__all__ = ["DemoConfig", "DemoManifest", "DemoError", "make_demo", "read_demo"]


def __getattr__(name: str):
    if name == "DemoConfig":
        from .config import DemoConfig

        return DemoConfig
    if name in __all__:
        from . import generate

        return getattr(generate, name)
    raise AttributeError(f"module 'jungle.demo' has no attribute {name!r}")
