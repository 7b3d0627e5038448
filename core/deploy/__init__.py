"""Deployable models: ONNX export, ONNX Runtime and OpenVINO backends, NNCF int8 quantization.

Importing this package turns vendor usage telemetry off for the process (`telemetry.py`) before any
module here imports OpenVINO or NNCF.
"""

from core.deploy.telemetry import disable_vendor_telemetry

disable_vendor_telemetry()
