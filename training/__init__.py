"""Training: one module per trained artefact, each a CLI (``python -m training.<name> --help``).

==================  ==============================================================  =========================
module              artefact                                                        shipped in
==================  ==============================================================  =========================
``godp``            GoDP landmark network (train, resume, ``export``)               ``landmarks/godp/weights``
``dpm``             multi-view fHOG mixture detector templates                      ``pipeline/detection/models``
``bbox_cnn``        detector box -> AFLW box regressor                              ``pipeline/detection/models``
``landmark_box``    GoDP landmarks -> face box regressor (lm-verify)                ``pipeline/detection/models``
``face_check``      face / non-face check and the part veto (lm-verify)             ``pipeline/detection/models``
``dfd``             DFD-style descriptor filters, codebooks and PCA                 ``descriptors/data``
``select_resnet3d`` the fusion weight of ``resnet-3d`` (model selection)            ``descriptors/data``
``calibrate``       verification thresholds (operating points) per descriptor       ``descriptors/data``
``pose_chips``      aligned 150x150 face chips of the CFP training subjects         ``runs/pose_chips``
``pose_resnet``     pose-robust fine-tune of the dlib ResNet (``pose-resnet``)      ``descriptors/data``
==================  ==============================================================  =========================

``calibrate`` writes the ``thresholds`` section of ``descriptors/data/MANIFEST.json``; the chips of
``pose_chips`` are training data (under ``runs/``, never shipped) for ``pose_resnet`` and
``calibrate --chips``; ``pose_resnet --export`` writes its weights with their manifest record.
Shared loaders live in :mod:`training.loaders`; data come through :mod:`facedata`. The runtime
packages import nothing from here.
"""
