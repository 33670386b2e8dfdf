"""Corral's API: pydantic models of every spec and status, and CRD generation from them."""

from corral.api.errors import InvalidObject
from corral.api.gpupool import GPUPool, GPUPoolSpec, GPUPoolStatus
from corral.api.inferenceservice import (
    InferenceService,
    InferenceServiceSpec,
    InferenceServiceStatus,
)
from corral.api.meta import Condition, LabelSelector, Toleration
from corral.api.objects import API_VERSION, CorralObject, parse_object, validate_spec
from corral.api.quantity import Quantity, format_quantity, parse_quantity
from corral.api.trainingjob import TrainingJob, TrainingJobSpec, TrainingJobStatus

__all__ = [
    "API_VERSION",
    "Condition",
    "CorralObject",
    "GPUPool",
    "GPUPoolSpec",
    "GPUPoolStatus",
    "InferenceService",
    "InferenceServiceSpec",
    "InferenceServiceStatus",
    "InvalidObject",
    "LabelSelector",
    "Quantity",
    "Toleration",
    "TrainingJob",
    "TrainingJobSpec",
    "TrainingJobStatus",
    "format_quantity",
    "parse_object",
    "parse_quantity",
    "validate_spec",
]
