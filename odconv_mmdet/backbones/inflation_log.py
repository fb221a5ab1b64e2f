"""One log line per load that inflated static conv weights into a backbone's ODConv layers."""
from mmengine.logging import print_log

from ..layers.odconv import ODConv2d


def log_inflated_convs(module, incompatible_keys=None):
    """A load_state_dict post hook: torch and mmengine call it once ``module``'s whole subtree
    is loaded. It reports the ODConv layers that took a static weight in this load."""
    layers = [m for m in module.modules() if isinstance(m, ODConv2d)]
    inflated = sum(m.inflated_on_load for m in layers)
    for m in layers:
        m.inflated_on_load = False
    if inflated:
        print_log(f'{type(module).__name__}: inflated static conv weights into {inflated} of {len(layers)} '
                  'ODConv layers (each computes its static conv exactly until trained)', logger='current')
