"""Renderer programs spawned by the render stage.

A renderer is run as ``RENDERER SPEC.json OUT_DIR [--dry-run]``; see
:mod:`renderers.protocol` for the contract.
"""
