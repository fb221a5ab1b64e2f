"""Anneal the ODConv attention temperature during training (official ImageNet recipe)."""
import math
import warnings

from mmengine.hooks import Hook
from mmdet.registry import HOOKS

from ..layers.odconv import set_temperature, temperature_layers
from .attention_stats import AttentionRecorder


def annealed_temperature(cur_iter, total_iters, init_temperature):
    """T = 1 + max(0, (T0 - 1) * (total - cur) / total), ``cur`` the 1-based iteration."""
    return 1.0 + max(0.0, (init_temperature - 1.0) * (total_iters - cur_iter) / total_iters)


@HOOKS.register_module()
class ODConvTemperatureHook(Hook):
    """Linearly anneal the temperature of every ODConv layer from ``init_temperature`` to 1.

    DyConv layers (``conv_cfg=dict(type='DyConv')``) are annealed too, as DyConv's own recipe
    does (30 -> 1 over the first 10 epochs); CondConv has no temperature and is left alone.

    Use with exactly one of ``anneal_epochs`` (epochs of the train dataloader; fractional
    epochs round to whole iterations, e.g. 7.3 for a tenth of a 73-epoch schedule) or
    ``anneal_iters``::

        custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=10)]

    * Before each training iteration the temperature is computed from the runner's iteration
      counter, never carried as state, so a run resumed from a checkpoint continues the schedule
      exactly where an uninterrupted run would be. It is logged as ``odconv_temperature``.
    * Validation during training runs at the temperature of the last training iteration (the
      schedule at the current position).
    * The temperature in force is written to each checkpoint's ``meta['odconv_temperature']``;
      ``tools/test.py`` on that checkpoint evaluates at that temperature.
    * Layers are found through ``model.modules()``, so (MM)DistributedDataParallel wrappers work.
    * ``attention_stats_interval=N`` also records, every N training iterations, the attentions
      of that iteration's forward pass and logs per-stage statistics (attention_stats.py) as
      ``odconv_attention/<stage>/kernel_entropy``, ``.../channel_spread`` and
      ``.../filter_spread``: is the attention still input-dependent, or has it collapsed? Use a
      multiple of the logger's interval, so each logged line shows fresh values.
    """

    priority = 'NORMAL'

    def __init__(self, init_temperature=30.0, anneal_epochs=None, anneal_iters=None, attention_stats_interval=None):
        if isinstance(init_temperature, bool) or not isinstance(init_temperature, (int, float)) \
                or not math.isfinite(init_temperature) or init_temperature < 1:
            raise ValueError(f'ODConvTemperatureHook: init_temperature must be a finite number >= 1, '
                             f'got {init_temperature!r}')
        if (anneal_epochs is None) == (anneal_iters is None):
            raise ValueError('ODConvTemperatureHook: give exactly one of anneal_epochs or anneal_iters, '
                             f'got anneal_epochs={anneal_epochs!r}, anneal_iters={anneal_iters!r}')
        if anneal_epochs is not None and (isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, (int, float))
                                          or not math.isfinite(anneal_epochs) or anneal_epochs <= 0):
            raise ValueError(f'ODConvTemperatureHook: anneal_epochs must be a positive number, got {anneal_epochs!r}')
        if anneal_iters is not None and (isinstance(anneal_iters, bool) or not isinstance(anneal_iters, int)
                                         or anneal_iters <= 0):
            raise ValueError(f'ODConvTemperatureHook: anneal_iters must be a positive integer, got {anneal_iters!r}')
        if attention_stats_interval is not None and (isinstance(attention_stats_interval, bool) or not isinstance(
                attention_stats_interval, int) or attention_stats_interval <= 0):
            raise ValueError('ODConvTemperatureHook: attention_stats_interval must be a positive integer or None, '
                             f'got {attention_stats_interval!r}')
        self.attention_stats_interval = attention_stats_interval
        self._recorder = None
        self.init_temperature = float(init_temperature)
        self.anneal_epochs = anneal_epochs
        self.anneal_iters = anneal_iters
        self.total_iters = anneal_iters
        self.temperature = None  # the value last applied
        self._checkpoint_temperature = None

    def before_run(self, runner):
        if not temperature_layers(runner.model):
            warnings.warn('ODConvTemperatureHook: the model has no ODConv or DyConv layers (CondConv has no '
                          'temperature); the hook does nothing')

    def before_train(self, runner):
        if self.anneal_epochs is not None:
            self.total_iters = max(1, round(self.anneal_epochs * len(runner.train_dataloader)))

    def _apply(self, runner, temperature):
        self.temperature = temperature
        set_temperature(runner.model, temperature)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        temperature = annealed_temperature(runner.iter + 1, self.total_iters, self.init_temperature)
        self._apply(runner, temperature)
        runner.message_hub.update_scalar('train/odconv_temperature', temperature)
        if self._recorder is not None:  # the last iteration raised before after_train_iter
            self._recorder.__exit__(None, None, None)
            self._recorder = None
        interval = self.attention_stats_interval
        if interval is not None and (runner.iter + 1) % interval == 0:
            self._recorder = AttentionRecorder(runner.model).__enter__()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self._recorder is None:
            return
        recorder, self._recorder = self._recorder, None
        recorder.__exit__(None, None, None)
        for stage, values in recorder.statistics().items():
            for key, value in values.items():
                runner.message_hub.update_scalar(f'train/odconv_attention/{stage}/{key}', value)

    def before_val(self, runner):
        # runner.iter iterations are done: the schedule's value is that of the last one.
        if self.total_iters is not None:
            self._apply(runner, annealed_temperature(max(runner.iter, 1), self.total_iters,
                                                     self.init_temperature))

    def before_save_checkpoint(self, runner, checkpoint):
        if self.temperature is not None:
            checkpoint.setdefault('meta', {})['odconv_temperature'] = self.temperature

    def after_load_checkpoint(self, runner, checkpoint):
        self._checkpoint_temperature = checkpoint.get('meta', {}).get('odconv_temperature')

    def before_test(self, runner):
        if self._checkpoint_temperature is not None:
            self._apply(runner, float(self._checkpoint_temperature))
        else:
            warnings.warn('ODConvTemperatureHook: the checkpoint records no odconv_temperature; '
                          'testing at the layers\' current temperature')
