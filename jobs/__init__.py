"""The Ray batch pre-labeling job (issue 4). Depends on savos; savos never imports it."""
