"""ONNX export of tagger models (``tagger export``): one graph from waveform to probabilities.

Installed as ``tagger_export`` from the repository's ``export/`` folder. Only the export command
imports it; the ONNX Runtime backend (:mod:`tagger.onnx_backend`) reads the files it writes.
"""
