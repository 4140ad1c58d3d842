"""The deterministic configuration list: each built-in family's defaults plus sampled configurations.

Per family: first the configurations warm start uses today (``ModelFamily.portfolio``, ids
``<family>-d<i>``), then ``n`` configurations drawn from the family's own distributions
(``ModelFamily.suggest`` on an Optuna ``RandomSampler``, so conditional parameters such as the
SVM's ``gamma`` follow the library's rules; ids ``<family>-r<i>``). Each family has its own
seeded stream (seed + CRC32 of its name), so the first ``k`` samples do not depend on ``n``
nor on the other families. Floats are rounded to 6 significant digits and the rounded value is
what is evaluated; duplicates (small discrete spaces: knn) are dropped, so such a family may get
fewer than ``n``. From the repository root::

    python -m benchmarks.portfolio.configs --n 200            # rewrites configs.json
    python -m benchmarks.portfolio.configs --n 200 --check    # verifies the committed file
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path
from typing import Any

CONFIGS_FILE = Path(__file__).with_name("configs.json")
DEFAULT_N = 200
DEFAULT_SEED = 0


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


def family_configs(name: str, n: int, seed: int) -> list[dict[str, Any]]:
    """Defaults then ``n`` unique sampled configurations of one built-in family."""
    import optuna

    from ensemble_hpo.spaces import get_family

    family = get_family(name)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(kind: str, index: int, params: dict[str, Any]) -> bool:
        params = {k: _round(v) for k, v in params.items()}
        key = json.dumps(params, sort_keys=True)
        if key in seen:
            return False
        seen.add(key)
        out.append({"id": f"{name}-{kind}{index}" if kind == "d" else f"{name}-{kind}{index:04d}",
                    "family": name, "kind": "default" if kind == "d" else "sampled",
                    "rank": len(out), "params": params})
        return True

    for i, params in enumerate(family.portfolio):
        add("d", i, dict(params))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.RandomSampler(seed=(seed + zlib.crc32(name.encode())) % (2**31 - 1))
    study = optuna.create_study(sampler=sampler)
    drawn, attempts = 0, 0
    while drawn < n and attempts < 50 * n:
        attempts += 1
        trial = study.ask()
        params = family.suggest(trial, prefix=False)
        study.tell(trial, 0.0)
        if add("r", drawn, params):
            drawn += 1
    return out


def build_configs(n: int = DEFAULT_N, seed: int = DEFAULT_SEED,
                  families: list[str] | None = None) -> dict[str, Any]:
    from ensemble_hpo.spaces import BUILTIN_FAMILIES

    names = list(BUILTIN_FAMILIES) if families is None else families
    configs = [c for name in names for c in family_configs(name, n, seed)]
    for config in configs:
        # The estimator's random_state: fixed per configuration id (independent of n).
        config["seed"] = zlib.crc32(config["id"].encode()) % (2**31 - 1)
    return {"n_sampled": n, "seed": seed, "families": names, "configs": configs}


def write_configs(data: dict[str, Any], path: Path = CONFIGS_FILE) -> None:
    """One configuration per line, so diffs stay readable."""
    head = {k: v for k, v in data.items() if k != "configs"}
    lines = [json.dumps(c, sort_keys=False) for c in data["configs"]]
    text = json.dumps(head)[:-1] + ', "configs": [\n' + ",\n".join(lines) + "\n]}\n"
    json.loads(text)  # well-formed
    path.write_text(text)


def load_configs(path: Path = CONFIGS_FILE) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="sampled configurations per family")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=CONFIGS_FILE)
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    args = parser.parse_args(argv)
    data = build_configs(args.n, args.seed)
    if args.check:
        same = load_configs(args.out) == json.loads(json.dumps(data))
        print("configs.json is up to date" if same else "configs.json differs from a fresh build")
        return 0 if same else 1
    write_configs(data, args.out)
    per_family: dict[str, int] = {}
    for c in data["configs"]:
        per_family[c["family"]] = per_family.get(c["family"], 0) + 1
    print(f"wrote {len(data['configs'])} configurations to {args.out}: {per_family}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
