"""Challenges and timed campaigns: definitions, pure progress rules, the pipeline step, simulation.

Pure modules (no I/O): ``models``, ``config``, ``advance``, ``rules``, ``codec``, ``diffs``. The database
is reached through one module per concept: ``definitions``, ``states``, ``completions``, ``enrolments``,
``versions``. Nothing is imported here, so importing a pure module loads no database code.
"""
