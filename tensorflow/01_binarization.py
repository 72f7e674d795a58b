"""Step 1: binarisation -- is this pixel newt or background?

The smallest segmentation network: six CBR blocks (Conv 3x3, 32 filters ->
ReLU -> BatchNorm) keep the full 64x64 resolution, and a 1x1 convolution
gives ONE number per pixel, a logit. The sigmoid turns it into the
probability that the pixel belongs to a newt, and the loss is binary
cross-entropy averaged over all pixels (tf.nn.sigmoid_cross_entropy_with_logits).
Thresholding the probability at 0.5 gives the mask (the run's
predictions.png shows the probability map next to its threshold).

    x [B, 64, 64, 3] -> trunk (CBR x 6) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 1]

Every pixel sees only a 13x13 window of the image (six 3x3 convolutions):
enough to tell a newt's skin from leaves, not to see the whole animal.
Labels: every class other than background counts as "newt".
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import seg_tf as lab


class BinarizationNet(lab.Module):
    def __init__(self, num_outputs: int = 1, width: int = 32):
        super().__init__()
        self.trunk = lab.Sequential(lab.CBR(3, width), *[lab.CBR(width, width) for _ in range(5)])
        self.head = lab.Conv2D(width, num_outputs, kernel_size=1)

    def __call__(self, x, training=False):
        return self.head(self.trunk(x, training))   # logits; the loss applies the sigmoid


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
