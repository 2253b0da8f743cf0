"""``mmcl serve``: the model on Ray Serve for many monitors (``mmcl monitor --server URL``).

``config`` (ServeConfig), ``scorer`` (one backend call for a batch of windows and their masked variants,
no Ray), ``deployment`` (the Ray Serve deployment: routes, dynamic batching, per-request feature-set
check), ``runner`` (start Ray + Serve on this machine, wait until ready, stop).
"""
