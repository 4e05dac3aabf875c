"""The hub worker: each stage a consumer group of its own, its loop, its guard and its metrics."""
