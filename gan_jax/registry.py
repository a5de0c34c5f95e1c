"""Name -> object registries, so configs pick models, losses and data sources by name.

Adding a component means decorating it with `@REGISTRY.register('name')`; the
trainer only ever calls `REGISTRY.get(config_value)`, so it never grows `if`
chains.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Dict, Generic, TypeVar

from gan_jax import errors

T = TypeVar('T')


class Registry(Generic[T]):
  """A named collection of components of one kind (e.g. 'model', 'loss')."""

  def __init__(self, kind: str, config_key: str):
    self.kind = kind
    self.config_key = config_key
    self._entries: Dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    def decorator(obj: T) -> T:
      if name in self._entries:
        raise ValueError(f'{self.kind} {name!r} is registered twice.')
      self._entries[name] = obj
      return obj
    return decorator

  def get(self, name: str) -> T:
    if name not in self._entries:
      close = difflib.get_close_matches(name, self._entries, n=1)
      hint = f' Did you mean {close[0]!r}?' if close else ''
      raise errors.ConfigError(
          f'Unknown {self.kind} {name!r} in `{self.config_key}`.{hint} '
          f'Choose one of: {", ".join(sorted(self._entries))}.')
    return self._entries[name]

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: Any) -> bool:
    return name in self._entries
