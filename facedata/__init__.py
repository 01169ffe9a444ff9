"""The data factory: readers of the annotation formats, the data-root setting, and the generators.

Nothing here is imported by the runtime packages (``pipeline``, ``landmarks``, ``recon3d``,
``descriptors``); training (:mod:`training`) and the benchmarks use it.

- :mod:`facedata.paths`     -- the data root (``$GODP_DATA`` or ``--data``, default ``../shared/data``);
- :mod:`facedata.readers`   -- ``annotations.jsonl`` (AFLW crops, AFLW2000-3D, renders), CFP
  ``manifest.csv``, CFP protocol pairs and fiducials;
- :mod:`facedata.splits`    -- the committed train / evaluation splits (``splits/splits.json``);
- :mod:`facedata.recipe`    -- the face-profiling recipe (pure functions over :mod:`recon3d`);
- :mod:`facedata.profiling` -- ``python -m facedata.profiling``: face-profiling render sets;
- :mod:`facedata.uhdb31`    -- ``python -m facedata.uhdb31``: the synthetic UHDB31-protocol set;
- :mod:`facedata.examples68` -- ``python -m facedata.examples68``: 68-point example photos;
- :mod:`facedata.realism`   -- ``python -m facedata.realism``: how far the renders are from real photos.
"""
