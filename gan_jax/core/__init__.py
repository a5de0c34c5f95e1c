"""The pure step math: state, train steps, losses, regularisers, D-input transforms, optimisers, precision.

Nothing here reads files, devices or the clock: every function is a pure
function of its arguments, so it can be jitted, vmapped and tested alone.
"""
