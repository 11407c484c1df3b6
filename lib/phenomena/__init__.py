"""phenomena: readable, reproducible studies of how neural networks learn.

The library is the machinery behind one notebook per phenomenon:

- :mod:`phenomena.repro`       seeding, device and thread selection, run metadata
- :mod:`phenomena.paths`       where figures, results and caches live; atomic writes
- :mod:`phenomena.config`      typed study configs with presets and validated overrides
- :mod:`phenomena.figures`     one plotting style and ``savefig`` with a provenance sidecar
- :mod:`phenomena.cache`       content-addressed results cache (config + library source)
- :mod:`phenomena.claims`      paper-vs-ours claim records written to ``data/results``
- :mod:`phenomena.run`         ``Run``: ties one notebook's config, figures and claims together
- :mod:`phenomena.transformer` one small GPT-style transformer that can return attention patterns
- :mod:`phenomena.train`       one training loop with progress bar and periodic evaluation
- one module per study (``icl``, ...)
"""

__version__ = "0.1.0"
