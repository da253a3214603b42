"""The saliency methods, registered explicitly in ``METHODS`` (add yours with ``METHODS.register(cls)``)."""

from shieldkit.debugger.methods.gradient_norm import GradientNorm, GradientNormConfig
from shieldkit.debugger.methods.gradient_x_input import GradientXInput, GradientXInputConfig
from shieldkit.debugger.methods.integrated_gradients import IntegratedGradients, IntegratedGradientsConfig
from shieldkit.debugger.methods.leave_one_out import LeaveOneOut, LeaveOneOutConfig
from shieldkit.debugger.registry import MethodRegistry


def default_registry() -> MethodRegistry:
    registry = MethodRegistry()
    for method in (GradientXInput, IntegratedGradients, GradientNorm, LeaveOneOut):
        registry.register(method)
    return registry


METHODS = default_registry()

__all__ = [
    "METHODS",
    "GradientNorm",
    "GradientNormConfig",
    "GradientXInput",
    "GradientXInputConfig",
    "IntegratedGradients",
    "IntegratedGradientsConfig",
    "LeaveOneOut",
    "LeaveOneOutConfig",
    "default_registry",
]
