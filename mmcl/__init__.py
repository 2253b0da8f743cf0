"""The ``mmcl`` command: wires ``model``, ``realtime`` and ``calibration`` together and owns what is printed."""

__version__ = "0.1.0"
