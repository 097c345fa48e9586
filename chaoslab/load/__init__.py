"""Load on the system under test: the built-in generator, its HTTP client, request mix, rate profiles,
latency histograms and the per-window recorder, and the Locust engine (:mod:`chaoslab.load.locust`)."""
