"""Live feature extractors, shared by ``mmcl extract`` (files) and the real-time pipeline (devices).

* ``vision.FaceFeatureExtractor`` — MediaPipe FaceLandmarker → 52 blendshapes + head pose + face flag (56)
* ``audio.AudioFeatureExtractor`` — streaming voice features per 100 ms step (34)
* ``text.TextEmbedder`` / ``text.WordTextTrack`` — MiniLM phrase embeddings placed on the words' steps (384)
* ``grid.to_grid`` — the one resampler onto the common 10 Hz grid, with masks; ``grid.SampleBuffer``
  keeps a modality's recent samples for the live window assembler
* ``media`` (ffmpeg/OpenCV decoding), ``transcribe`` (faster-whisper, offline), ``extract`` / ``dataset``
  (files → windows → MMSA pickle)

Importing this package is cheap: MediaPipe, faster-whisper, sentence-transformers, torch, OpenCV and
librosa are imported only when an extractor is created.
"""

from realtime.features.config import FeatureConfig
from realtime.features.grid import SampleBuffer, grid_times, to_grid

__all__ = ["FeatureConfig", "SampleBuffer", "grid_times", "to_grid"]
