"""Detect and refine stages.

Detectors: ``dpm``, ``dpm+mmod`` (the default), ``dlib-hog``, ``dlib-mmod``; refiners: ``lm-verify`` (the
default), ``bbox-cnn``, ``none``. Shipped models: ``models/`` with ``MANIFEST.json``.
"""
