"""Finding good settings: sweeps on Optuna (``sweep``), the learning-rate range test
(``lrfind``) and cross-validation (``cv``)."""
