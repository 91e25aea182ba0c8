"""The configuration models :class:`memsvc.settings.Settings` is made of, one per area.

Leaf modules: they import pydantic and nothing of memsvc, so that settings (which every layer,
``stores`` included, reads) depends on no layer above it.
"""
