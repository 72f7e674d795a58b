"""Step 2: multiclass -- background, akahara or madara, for every pixel.

The network of step 1 with three output channels instead of one: a logit per
class per pixel. Softmax over the channel axis gives class probabilities and
the loss is softmax cross-entropy, where every pixel is one sample: the
logits [B, H, W, C] are read as [B*H*W, C] rows and the labels [B, H, W] as
[B*H*W] class indices (seg_tf.softmax_cross_entropy shows the reshape and
calls tf.nn.sparse_softmax_cross_entropy_with_logits).
The prediction is the argmax over channels, coloured with the class palette.

    x [B, 64, 64, 3] -> trunk (CBR x 6) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 3]

Telling the species apart needs their skin pattern, and a 13x13 window often
sees too little of it: this network is the baseline the next steps beat.
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import seg_tf as lab


class MulticlassNet(lab.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        self.trunk = lab.Sequential(lab.CBR(3, width), *[lab.CBR(width, width) for _ in range(5)])
        self.head = lab.Conv2D(width, num_classes, kernel_size=1)

    def __call__(self, x, training=False):
        return self.head(self.trunk(x, training))   # logits; softmax is inside the loss


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
