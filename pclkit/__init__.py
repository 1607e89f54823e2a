"""pclkit: Pose-disentangled Contrastive Learning (Liu et al., CVPR 2023, arXiv 2211.13490).

A research workbook for self-supervised facial representation learning:
SynthFaces (an embedded procedural 3D face dataset with ground-truth factors),
the PCL model and losses, a SimCLR baseline, pretraining, linear evaluation of
the paper's four tasks, and figures. Submodules are imported lazily so that
``import pclkit`` stays cheap.
"""

__version__ = "0.1.0"
