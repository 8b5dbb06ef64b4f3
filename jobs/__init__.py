"""The Ray batch pre-labeling job. Depends on savos; savos never imports it."""
