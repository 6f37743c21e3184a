"""Challenges and timed campaigns: definitions, pure progress rules, the pipeline step, simulation.

Pure modules (no I/O): ``models``, ``rules``, ``periods``, ``config``. The rest talks to the database
through ``repository``. Nothing is imported here, so importing a pure module loads no database code.
"""
