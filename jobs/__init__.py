"""The Ray batch pre-labeling job, installed as ``savos_job`` (``pip install 'savos[job]'``; this repository keeps
its folder as ``jobs/``). Depends on savos; savos never imports it."""
