"""Portable and compact forms of trained models: ONNX graphs and compressed MLP bundles."""

from churnscale.export.writer import ExportReport, export_model, verified_onnx

__all__ = ["ExportReport", "export_model", "verified_onnx"]
