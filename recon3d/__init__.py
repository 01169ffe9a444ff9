"""recon3d: the 3D stage of godp-face -- Surrey Face Model fitting from landmarks, UV
texture lifting, and a CPU renderer (the data factory for face profiling).

Modules (one algorithm each):

- :mod:`recon3d.model`   -- packaged SFM loader (``load_model()``), AFLW-19 / iBUG-68 vertex
  correspondences, pose-dependent jaw contour (landmark marching);
- :mod:`recon3d.camera`  -- scaled-orthographic ``Camera``, Euler convention (yaw > 0: nose towards
  image-left), Gold Standard estimation (H&Z Alg. 7.2), ``project(vertices, camera)``;
- :mod:`recon3d.fit`     -- regularised linear shape (+ expression) fit alternating with the camera
  (Huber et al. 2016 / eos); stages ``SfmFitter`` ("sfm") and ``MeanShapeFitter`` ("mean");
- :mod:`recon3d.raster`  -- vectorised z-buffer triangle rasteriser (NumPy);
- :mod:`recon3d.uv`      -- ``lift_texture(image, fit, size, mirror_fill)`` -> UVTexture (+ flags);
- :mod:`recon3d.render`  -- ``render`` / ``render_pose``: textured mesh at a pose -> image, 19
  landmarks, self-occlusion visibility, AFLW-convention face box;
- :mod:`recon3d.export`  -- OBJ / PLY / PNG / landmark overlays, written atomically;
- :mod:`recon3d.make_data` -- rebuilds ``recon3d/data/sfm_3448.npz`` from ../shared/data/sfm.

Model space: millimetres, x toward the subject's LEFT, y up, z toward the viewer. Image space:
pixels, x right, y down (SPEC section 1).
"""
