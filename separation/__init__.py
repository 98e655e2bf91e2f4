"""Separation engines on torch/torchaudio (`dsp` needs no weights), the model registry,
audio I/O and the `python -m separation` CLI — all without Django. `services` and `actors`
wrap them for the job pipeline.
"""
