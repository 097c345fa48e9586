"""Scaffolding for ``chaoslab init``: reading a Docker Compose file and writing a starter topology and experiment.

:mod:`~chaoslab.scaffold.compose` reads a Compose file into frozen values (its only I/O is reading
the file, the ``extends`` files and the ``env_file`` files it names); :mod:`~chaoslab.scaffold.generate`
turns them into the text of the files ``chaoslab init`` writes, touching nothing.
"""
