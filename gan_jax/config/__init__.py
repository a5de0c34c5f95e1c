"""Configuration: the base config with every key, the embedded quickstart, config files, and a run's saved config.

  base       get_config(): every key with its default and meaning; validate()
  quickstart what `python -m gan_jax.main --workdir=DIR` trains without --config
  files      load_file('PATH[:PRESET]') and from_sibling(): loading config files
  saved      WORKDIR/config.json, and the keys that may change on resume
"""
