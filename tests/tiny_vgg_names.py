"""Tiny VGG's child module names, in forward order, for the tests that check layer lists.

CNN Explainer names its Tiny VGG's layers so; convscope's zoo ``TinyVGG`` and its TF.js
loader keep the names. They are written out here, not read from convscope, so that the
tests compare convscope against an independent list.
"""

TINY_VGG_CHILDREN = [
    "conv_1_1",
    "relu_1_1",
    "conv_1_2",
    "relu_1_2",
    "max_pool_1",
    "conv_2_1",
    "relu_2_1",
    "conv_2_2",
    "relu_2_2",
    "max_pool_2",
    "flatten",
    "output",
]
