"""Step 1: binarisation -- is this pixel newt or background?

The smallest segmentation network: six CBR blocks (Conv 3x3, 32 filters ->
ReLU -> BatchNorm) keep the full 64x64 resolution, and a 1x1 convolution
gives ONE number per pixel, a logit. The sigmoid turns it into the
probability that the pixel belongs to a newt, and the loss is binary
cross-entropy averaged over all pixels. Thresholding the probability at 0.5
gives the mask (the run's predictions.png shows the probability map next to
its threshold).

    x [B, 64, 64, 3] -> trunk (CBR x 6) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 1]

Every pixel sees only a 13x13 window of the image (six 3x3 convolutions):
enough to tell a newt's skin from leaves, not to see the whole animal.
Labels: every class other than background counts as "newt".
Keras works channels-last (NHWC); keras.Input(shape=(None, None, 3)) accepts
any image size. Layer "trunk-0-conv" holds the weights that the other
frameworks call trunk.0.conv.weight and .bias (seg_keras.LAYER_SEP says why "-").
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import seg_keras as lab   # first: it picks the Keras backend (--backend) before keras is imported

import keras
from keras import layers


def BinarizationNet(num_outputs: int = 1, width: int = 32) -> keras.Model:
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    for i in range(6):
        x = lab.cbr(x, width, f"trunk-{i}")
    logits = layers.Conv2D(num_outputs, 1, name="head")(x)   # the loss applies the sigmoid
    return keras.Model(inputs, logits, name="binarization")


def build(num_outputs, args):
    return BinarizationNet(num_outputs)


def step(args):
    return lab.Step(lab.step_name(__file__), task="binary")


@lab.exit_on_user_error
def main(argv=None):
    args = lab.parse_args(__file__, __doc__, argv)
    return lab.run(args, step(args), lambda n: build(n, args))


if __name__ == "__main__":
    main()
