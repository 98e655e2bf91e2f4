"""The shared core: what the pure cores of every app need (file digests, opening media,
domain errors). Plain Python; it imports neither Django nor any other package of this
project, so anything may depend on it."""
