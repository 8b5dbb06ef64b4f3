"""The ``savos-prelabel`` command: the job, or a clear word when its dependencies are not installed (``pip
install savos`` is the model alone; the job is ``pip install 'savos[job]'``)."""

from __future__ import annotations

import sys

JOB_EXTRA_HINT = "pip install 'savos[job]'"


def main() -> int:
    try:
        from .prelabel import main as prelabel
    except ModuleNotFoundError as err:
        print(
            f"savos-prelabel: error: the batch job's dependencies are not installed ({err.name} is missing): "
            f"{JOB_EXTRA_HINT}",
            file=sys.stderr,
        )
        return 2
    return prelabel()


if __name__ == "__main__":
    sys.exit(main())
