"""`make cost`: python -m scripts.cost [CONFIG]. Exit 2 with one line per problem when the config
is refused or a region it uses is not in the price table; budget overruns are warnings (exit 0)."""

from __future__ import annotations

import sys

from config import ConfigError, load_config
from scripts.cost import Prices, Unpriced, estimate_all, facts, load_usage, render


def main(argv: list[str]) -> int:
    try:
        cfg = load_config(argv[1] if len(argv) > 1 else None)
    except ConfigError as error:
        print(f"config error:\n{error}", file=sys.stderr)
        return 2
    prices = Prices.load()
    problems = prices.check(cfg)
    try:
        if not problems:
            estimates = estimate_all(cfg, prices=prices, usage=load_usage(), facts_of=lambda env: facts(cfg, env))
    except Unpriced as error:
        problems = [str(error)]
    if problems:
        print("cost error:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    print(render(estimates, prices=prices))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
