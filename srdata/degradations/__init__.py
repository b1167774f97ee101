"""Degradation pipelines: how an HR image becomes its LR partner, randomized and recorded.

A pipeline is a YAML file (or a preset name: `seed`, `realesrgan`, `anime-video`) listing steps
(`{op, p, ...ranges}`) and blocks (`repeat`, `second_order`, `one_of`). For each image srkit
draws every parameter from the image's own generator (`pipeline.Pipeline.draw`), which gives a
`pipeline.Record`: the steps that fired with plain numbers, what a manifest line stores.
`Record.apply` re-makes the LR from the HR and the record alone.

Modules (imports only go down the list):
- `albu`: the one place albumentations is imported (without its update check over the network);
- `kernels`: blur and sinc kernels as numpy arrays (BasicSR's formulas);
- `spec`: typed YAML keys (ranges, probabilities, weights) with errors naming file, step and key;
- `ops`: the ops (parse, draw, apply);
- `pipeline`: parsing a file or preset, drawing records, applying them, the CLI shorthand;
- `preview`: the picture `srdata preview` writes.
"""
