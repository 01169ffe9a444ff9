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
==================  ==============================================================  =========================

Shared loaders live in :mod:`training.loaders`; data come through :mod:`facedata`. The runtime
packages import nothing from here.
"""
