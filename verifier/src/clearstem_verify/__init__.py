"""ClearStem's offline verifier, packaged alone (`clearstem-verify`).

`verify`, `signing`, `checkpoint` and `merkle` are the product's `provenance` modules of the
same names, put into this package when the wheel is built (see verifier/pyproject.toml).
"""
