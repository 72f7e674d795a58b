"""Step 1: binarisation -- is this pixel newt or background?

The smallest segmentation network: six CBR blocks (Conv 3x3, 32 filters ->
ReLU -> BatchNorm) keep the full 64x64 resolution, and a 1x1 convolution
gives ONE number per pixel, a logit. The sigmoid turns it into the
probability that the pixel belongs to a newt, and the loss is binary
cross-entropy averaged over all pixels (F.sigmoid_cross_entropy, which takes
the logits). Thresholding the probability at 0.5 gives the mask (the run's
predictions.png shows the probability map next to its threshold).

    x [B, 3, 64, 64] -> trunk (CBR x 6) [B, 32, 64, 64] -> head (1x1) [B, 1, 64, 64]

Every pixel sees only a 13x13 window of the image (six 3x3 convolutions):
enough to tell a newt's skin from leaves, not to see the whole animal.
Labels: every class other than background counts as "newt".

Chainer: a network is a chainer.Chain whose links (layers with parameters,
here L.Convolution2D and L.BatchNormalization inside lab.CBR) are assigned in
`with self.init_scope():`, and forward() says how data flows through them.
lab.Sequential (a chainer.ChainList) numbers its links 0, 1, ... like
PyTorch's nn.Sequential, so the weights are named trunk.0.conv.weight in both
(chainer.Sequential would misnumber them; seg_chainer.Sequential says why).
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import seg_chainer as lab   # first: it makes Chainer importable on NumPy 2

import chainer  # noqa: E402
import chainer.links as L  # noqa: E402


class BinarizationNet(chainer.Chain):
    def __init__(self, num_outputs: int = 1, width: int = 32):
        super().__init__()
        with self.init_scope():
            self.trunk = lab.Sequential(lab.CBR(3, width),
                                        *[lab.CBR(width, width) for _ in range(5)])
            self.head = L.Convolution2D(width, num_outputs, ksize=1)

    def forward(self, x):
        return self.head(self.trunk(x))   # logits; the loss applies the sigmoid


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
