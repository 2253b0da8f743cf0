"""Live side of mmcl-live: sources, feature extractors (also used offline by ``mmcl extract``), streaming
ASR, window assembly, the pipeline, the dashboard and the event log. Uses ``model`` for inference and the
feature-set definition; never imports the dashboard from the pipeline."""
