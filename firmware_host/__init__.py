"""The bench host: rig inventory, deploy, dispatch, clock alignment, measurement store and the `edgetran` CLI.

It wires the other rooms together and is the only room that may import all of them.
"""
