"""`python -m separation.install_model WEIGHTS.pt --name NAME [--model-dir DIR]`: copy a
checkpoint (a state dict) into the model dir and pin its SHA-256 in the manifest.

Known names (hdemucs_high_musdb, hdemucs_high_musdb_plus, htdemucs, htdemucs_ft — the latter
with its four files in the bag's order) bring their architecture, stems, rate, licence and
training-data statement; other names need --stems and --sample-rate."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .registry import check_weights, install_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m separation.install_model")
    p.add_argument("weights", type=Path, nargs="+", help="one checkpoint, or a bag's files in order")
    p.add_argument("--name", required=True)
    p.add_argument("--model-dir", type=Path, default=os.environ.get("CLEARSTEM_MODEL_DIR"))
    p.add_argument("--stems", nargs="+")
    p.add_argument("--sample-rate", type=int)
    p.add_argument("--config", type=json.loads, help='architecture overrides, e.g. \'{"channels": 8}\'')
    p.add_argument("--licence")
    p.add_argument("--training-data")
    p.add_argument("--commercial", action="store_true", help="the weights' licence allows commercial use")
    p.add_argument("--architecture", choices=("hdemucs", "demucs", "bandsplit-rnn"),
                   help="for weights the registry does not know by name (default: from the file's suffix)")
    args = p.parse_args(argv)
    if not args.model_dir:
        p.error("give --model-dir or set CLEARSTEM_MODEL_DIR")
    missing = [w for w in args.weights if not w.is_file()]
    if missing:
        print(f"error: {missing[0]} is not a file", file=sys.stderr)
        return 2
    meta = {k: v for k, v in {"stems": args.stems, "sample_rate": args.sample_rate,
                               "weights_licence": args.licence, "training_data": args.training_data}.items() if v}
    if args.commercial:
        meta["commercial_use"] = True
    if args.architecture:
        meta["architecture"] = args.architecture
    if args.stems and "architecture" not in meta:
        meta["architecture"] = "demucs" if args.weights[0].suffix == ".th" else "hdemucs"
    try:
        entry = install_model(args.weights if len(args.weights) > 1 else args.weights[0], args.name, args.model_dir,
                              args.config, **meta)
        check_weights(args.name, str(args.model_dir))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"installed {entry['name']}: {entry['weights']} sha256 {entry['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
