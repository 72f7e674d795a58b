"""Step 3: downsample, then upsample with nearest neighbour.

Max pooling halves the resolution so the next convolutions see twice as far
(receptive field 24x24 instead of 13x13 for the same depth); nearest-neighbour
upsampling then copies every pixel into a 2x2 patch to get back to the input
size, where a class is predicted per pixel. Nearest upsampling has no
weights: it only repeats what it is given.

    x [B, 64, 64, 3] -> enc (CBR x 2) [B, 64, 64, 32] -> maxpool 2 [B, 32, 32, 32]
      -> mid (CBR x 2) [B, 32, 32, 32] -> nearest x2 [B, 64, 64, 32]
      -> dec (CBR x 2) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 3]

The original Chainer answer used a bilinear resize here; every framework in
this suite uses true nearest neighbour (Keras: UpSampling2D(interpolation="nearest")).
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import seg_keras as lab   # first: it picks the Keras backend (--backend) before keras is imported

import keras
from keras import layers


def NearestNet(num_classes: int, width: int = 32) -> keras.Model:
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    x = lab.cbr(lab.cbr(x, width, "enc-0"), width, "enc-1")
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = lab.cbr(lab.cbr(x, width, "mid-0"), width, "mid-1")
    x = layers.UpSampling2D(2, interpolation="nearest", name="upsample")(x)   # the lesson: each pixel -> 2x2
    x = lab.cbr(lab.cbr(x, width, "dec-0"), width, "dec-1")
    logits = layers.Conv2D(num_classes, 1, name="head")(x)
    return keras.Model(inputs, logits, name="nearest")


def build(num_outputs, args):
    return NearestNet(num_outputs)


def step(args):
    return lab.Step(lab.step_name(__file__), size_multiple=2)


@lab.exit_on_user_error
def main(argv=None):
    args = lab.parse_args(__file__, __doc__, argv)
    return lab.run(args, step(args), lambda n: build(n, args))


if __name__ == "__main__":
    main()
