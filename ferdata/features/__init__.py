"""Hand-crafted face descriptors (LPQ, PHOG), their reduction, and ``features.parquet``.

Descriptors live in one registry (``register_descriptor`` / ``list_descriptors`` /
``create_descriptor``; more from the ``ferdata.descriptors`` entry-point group); each turns an (N, H, W) uint8 batch of equally sized grey faces
into an (N, D) float64 matrix. ``ferdata features NAME`` (:func:`compute_features`) runs
them over a manifest's face crops (or its images when there are no crops) and writes
``<manifest>/features.parquet``, one row per image that could be described:

====================  ====================================================================
column                what
====================  ====================================================================
``image_id``          key into ``images.parquet``
``height``/``width``  size of the face (crop or image) the descriptors saw
``lpq``               LPQ histogram, fixed-size list of 256 float64 (sums to 1)
``phog``              PHOG descriptor, fixed-size list of bins·Σ4^l float64 (680 for 8 bins, L = 3)
``lpq_pca``           first K principal components of ``lpq`` (``--reduce pca:K``), not scaled
``phog_pca``          first K principal components of ``phog``
``lpqphog``           ``lpq_pca`` ‖ ``phog_pca`` standardised (zero mean, unit variance on
                      the fitting set): the 10-D fused vector of paper 000 for ``pca:5``
====================  ====================================================================

With other descriptor sets the reduced columns are ``<name>_pca`` and the fused one is the
descriptor names joined (``lpqphog``); a single descriptor gets ``<name>_pca_std``. The
descriptors' parameters and the fitted reduction (PCA components and means, the scaler's
means and scales, and the images it was fitted on) ride in the table's ``ferdata``
metadata, so :meth:`Reduction.from_metadata` applies the same transform to another
dataset. The ANU ``SFEW.xlsx`` columns ``lpq_pc*`` / ``phog_pc*`` in ``images.parquet``
are never touched.
"""

from __future__ import annotations

from ferdata.features._registry import DESCRIPTORS, create_descriptor, list_descriptors, register_descriptor
from ferdata.features.base import Descriptor
from ferdata.features.extract import FeaturesResult, compute_features
from ferdata.features.reduction import Reduction, fit_reduction, parse_reduce

__all__ = ["DESCRIPTORS", "Descriptor", "FeaturesResult", "Reduction", "compute_features", "create_descriptor",
           "fit_reduction", "list_descriptors", "parse_reduce", "register_descriptor"]
