"""The LeaP engine: protocol, routing, the peer loop, methods and generation backends."""

import leapt  # noqa: F401  (sets the OpenMP wait policy before torch loads)
