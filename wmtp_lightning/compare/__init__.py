"""`wmtp compare`: the three weightings as one controlled experiment, run and reported by one command.

- `design.py`: what the compared runs must share and what may differ (the allow-list), checked on
  the resolved configs before anything trains;
- `report.py`: the report (markdown tables, JSON, plots) from the runs' MLflow metric histories;
- `command.py`: the command itself (argument parsing, checks, the runs in order, the report).

Nothing else in the package imports this package; `wmtp_lightning.cli` dispatches `wmtp compare` to it.
"""
