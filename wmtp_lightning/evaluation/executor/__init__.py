"""The sandbox's inside: what runs in the isolated worker, stdlib only.

`sandbox.py` (the host side) starts one worker per parallel slot: bubblewrap with this folder
bound read-only at /sandbox/wmtp_executor, running `server.main`. Nothing here imports the rest of
the package: inside the sandbox only this folder, the Python installation and /usr are visible.

  server.py     the worker: a pristine template process that forks a supervisor per sample
  confine.py    per-sample namespaces, scratch tmpfs, capabilities, rlimits, seccomp filter
  candidate.py  runs the program (the completion) and serves calls from the judge
  judge.py      runs the benchmark's own tests against proxies of the program's names
  codec.py      the plain-data wire format between candidate and judge
  frames.py     length-prefixed messages over pipes
"""
