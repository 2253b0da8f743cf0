"""Quantisation, confidence calibration and per-user baselines. Wraps ``model``; reads recorded windows.

==================  ========================================================================================
``shards``          calibration shards on disk (``.npz`` + manifest; never pickles): writer, checked reader
``recorder``        ``ShardRecorder`` (the monitor's ``--record-calib`` hook) and ``mmcl extract`` windows
``quantize``        ONNX Runtime static INT8 (QDQ) from recorded windows; ModelOpt + TensorRT INT8/FP8 (GPU)
``qeval``           FP32 vs INT8 metrics on a held-out split and their interleaved speed ratio
``quantize_run``    ``mmcl calibrate quantize``: quantise, compare FP32 vs INT8, time, report, record in the ckpt
``confidence``      temperature scaling, ECE / Brier, reliability bins, split-conformal intervals
``confidence_run``  ``mmcl calibrate confidence``: fit on valid, report on test, plot, store in the checkpoint
``plots``           reliability diagram and interval-coverage PNGs (matplotlib, Agg)
``baseline``        per-user baseline statistics, YAML file, the shift applied to live features
``live``            the baseline transform and window recorder passed to the monitor's engine when it is built
``config``          ``CalibrationConfig`` (``AppConfig.calibration``)
==================  ========================================================================================

Nothing here opens a device: ``mmcl calibrate baseline`` records through ``realtime`` (sources, workers).
"""
