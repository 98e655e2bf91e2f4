"""Chromaprint fingerprints, the catalog index and the matcher.

The core modules (`scan`, `matcher`) are plain Python + numpy; `models`, `services` and
`actors` wrap them for Django.
"""
