"""MIAR: the sentiment model, its data handling, checkpoints and metrics."""

from model.checkpoint import CheckpointError, LoadedMiar, load_checkpoint, save_checkpoint
from model.data import SampleInput, collate
from model.metrics import MosiMetrics, mosi_metrics
from model.miar import Miar, MiarDims

__all__ = [
    "CheckpointError", "LoadedMiar", "load_checkpoint", "save_checkpoint", "SampleInput", "collate",
    "MosiMetrics", "mosi_metrics", "Miar", "MiarDims",
]
