"""Step 2: multiclass -- background, akahara or madara, for every pixel.

The network of step 1 with three output channels instead of one: a logit per
class per pixel. Softmax over the channel axis gives class probabilities and
the loss is softmax cross-entropy, where every pixel is one sample: the
logits [B, H, W, C] are read as [B*H*W, C] rows and the labels [B, H, W] as
[B*H*W] class indices (seg_keras.softmax_cross_entropy shows the reshape).
The prediction is the argmax over channels, coloured with the class palette.

    x [B, 64, 64, 3] -> trunk (CBR x 6) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 3]

Telling the species apart needs their skin pattern, and a 13x13 window often
sees too little of it: this network is the baseline the next steps beat.
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import seg_keras as lab   # first: it picks the Keras backend (--backend) before keras is imported

import keras
from keras import layers


def MulticlassNet(num_classes: int, width: int = 32) -> keras.Model:
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    for i in range(6):
        x = lab.cbr(x, width, f"trunk-{i}")
    logits = layers.Conv2D(num_classes, 1, name="head")(x)   # softmax is inside the loss
    return keras.Model(inputs, logits, name="multiclass")


def build(num_outputs, args):
    return MulticlassNet(num_outputs)


def step(args):
    return lab.Step(lab.step_name(__file__))


@lab.exit_on_user_error
def main(argv=None):
    args = lab.parse_args(__file__, __doc__, argv)
    return lab.run(args, step(args), lambda n: build(n, args))


if __name__ == "__main__":
    main()
