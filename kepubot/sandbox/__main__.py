"""``python -m kepubot.sandbox [--host H] [--port P]``: serve until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse

from kepubot.sandbox.server import main


def run() -> None:
    parser = argparse.ArgumentParser(prog="python -m kepubot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    main(port=args.port, host=args.host)


if __name__ == "__main__":
    run()
