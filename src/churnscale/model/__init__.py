"""The model layer: what every model kind is, how a bundle is saved and loaded, and prediction.

Training, evaluation, monitoring, scoring, serving and export all stand on this package;
nothing here imports them.
"""
