"""The process supervisor of ``trailpipe run``: every daemon a child process, restarted with
exponential backoff when it crashes, stopped with SIGTERM (flush) then SIGKILL.

:mod:`~pipeline.supervisor.policy` holds the decisions (pure), :mod:`~pipeline.supervisor.process`
the processes (:class:`~pipeline.supervisor.process.Supervisor`),
:mod:`~pipeline.supervisor.children` what ``trailpipe run`` starts, and
:mod:`~pipeline.supervisor.config` the ``[run]`` section. Nothing is imported here:
``pipeline.config`` imports the config module, which must not pull in the rest (logging
imports ``pipeline.config``).
"""
