"""Distributed load through Locust (``load.engine: locust``).

The harness side (:mod:`chaoslab.load.locust.runner`) starts a headless Locust master and local
workers as separate processes — Locust monkey-patches the standard library with gevent, so it
never runs inside chaoslab's asyncio loop. Code that runs inside the Locust processes lives in
:mod:`chaoslab.load.locust.plugin`, :mod:`chaoslab.load.locust.shape` and :mod:`chaoslab.load.locust.users`;
:mod:`chaoslab.load.locust.config` and :mod:`chaoslab.load.locust.aggregate` are pure and shared by both
sides. Importing this package does not import Locust.
"""
