"""Reference images: the training images a grid may copy (docs/design.md, "Reference images").

`sources` reads them from a folder, a manifest or img2dataset's output; `index` finds a
seed's near neighbours among them by perceptual hash; `matching` compares seeds with their
candidates by Carlini's tiled l2 and names Webster's type; `evidence` turns the stored
match into the categorizer's reasons.
"""
