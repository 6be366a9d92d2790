"""Activities: the only code that does I/O on a workflow's behalf.

Each task type has a module with an activity class that receives its dependencies (engine,
provider client, settings) and is wired in `worker.py`; `pages.py` is the shared claim -> act ->
settle engine every page activity runs on, `tasks.py` the task-row activities.
"""
