"""Step 8: SegNet (Badrinarayanan, Kendall and Cipolla, 2017) -- unpool where the maximum was.

UNet (step 6) carries whole encoder maps to the decoder and concatenates
them. SegNet carries only WHERE each maximum was: every 2x2 max pooling of the
encoder also returns the position of the maximum in its window, and the
decoder's unpooling puts each value back at that position and zeros in the
other three. The result is sparse; the convolutions after it fill it in.
Unpooling has no weights, and the decoder needs no copy of the encoder's
maps, only one index per pooled value: SegNet's memory argument.

    x [B, 3, S, S]
      level i = 0, 1, 2 (side S/2^i; channels 48, 96, 192):
        enc.i (ConvBNReLU x 2) -> pool 2x2, keeping the indices
      [B, 192, S/8, S/8]
      level i = 2, 1, 0:
        unpool with enc.i's indices (side S/2^i) -> dec.i (ConvBN x 2, no
        ReLU; the second one halves the channels, except at level 0)
      [B, 48, S, S] -> head (1x1) [B, C, S, S]            S must be divisible by 8

    S = 64: pooled maps 32, 16, 8; a bottom cell sees 36x36 input pixels, an
    output pixel 64x64.

Indices, PyTorch's convention: nn.MaxPool2d(2, return_indices=True) returns
int64 indices shaped like its output, [B, C, H/2, W/2]; each is the position
of the maximum as a flat index h * W + w into the H x W map of the same
sample and channel (the pooling's input). nn.MaxUnpool2d(2) scatters every
value to its index in a zero map of side H x W (we pass that size). Other
frameworks count differently (TensorFlow, for one, flattens the channel axis
into the index, NHWC); each port states its own.

Encoder order: Conv -> BatchNorm -> ReLU, the paper's order, NOT the
exercise's Conv -> ReLU -> BatchNorm, and here the order matters beyond
style: ties. Where a 2x2 window has four negative pre-activations, the
exercise's order gives four ReLU zeros that BatchNorm then maps to four
EQUAL values: a tie, whose value is in general not zero. Which of the four positions
wins a tie is an implementation choice (PyTorch keeps the first maximum in
row-major order: top-left, top-right, bottom-left, bottom-right), so
frameworks could unpool the same value to different places. With BatchNorm
before the ReLU the tied values are ReLU zeros: the pooled value is 0
whichever wins, and its gradient, wherever it is routed, meets a ReLU that
passes none. (At the start of training about a third of the first level's
windows are such all-zero ties.) Where the unpooling then puts a value still
depends on which position won: at the bottom that value is the pooled zero,
but levels 1 and 0 unpool the DECODER's values (ConvBN outputs, not zero), so
every framework must break ties the same way, and all four keep the first
maximum (checked on tensors of exact ties). Ties
between positive values need equal pre-activations, which only an input that
is constant over the whole receptive field gives.

Decoder order: Conv -> BatchNorm without a ReLU (ConvBN), as in the paper's
SegNet-Basic. An unpooled ReLU output is a grid of zeros with non-negative
values at the argmax positions, and the convolution after it responds mostly
to that pattern of positions (our reading). With a ReLU in the decoder as
well, every unpooling sees such a map, and the network learned markedly
slower: a 4-level version could not fit even a single batch in 60
iterations, where UNet could. Now only the bottom unpooling does.

Departures from the paper: 3 levels of two 3x3 convolutions, widths 48 to 192
(SegNet: VGG16's 5 levels of 2-2-3-3-3 convolutions, 64 to 512 channels,
ReLU in the decoder; SegNet-Basic: 4 levels of one 7x7 convolution, 64
channels). With 4 levels a 4x4 bottom map carries all the decoder gets
besides the indices; 3 levels learned a little faster here. No ImageNet
weights; no bias in the convolutions (BatchNorm follows each one and cancels
a bias); the last decoder level keeps 48 channels and a 1x1 head gives the
classes, like every step of this suite; no class-balanced loss (the paper
weights classes by median frequency).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

from torch import nn

from common.driver import main
from common.runner import Step
from torch_layers import ConvBNReLU, batch_norm


class ConvBN(nn.Module):
    """Conv 3x3 (no bias) -> BatchNorm, no ReLU: the decoder's layer; <block>.conv, <block>.bn."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = batch_norm(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))


def encoder_block(in_channels, out_channels):
    """ConvBNReLU x 2, the first one to out_channels; named <block>.0, <block>.1."""
    return nn.Sequential(ConvBNReLU(in_channels, out_channels),
                         ConvBNReLU(out_channels, out_channels))


def decoder_block(in_channels, out_channels):
    """ConvBN x 2, the second one to out_channels (the encoder block mirrored)."""
    return nn.Sequential(ConvBN(in_channels, in_channels), ConvBN(in_channels, out_channels))


class SegNet(nn.Module):
    def __init__(self, num_classes: int, depth: int = 3, width: int = 48):
        super().__init__()
        # >>> Q8.1 enc blocks, dec blocks mirrored, max-pool that returns its indices, max-unpool, head 1x1
        chans = [width * 2 ** i for i in range(depth)]    # 48, 96, 192
        ins = [3] + chans[:-1]
        self.enc = nn.ModuleList([encoder_block(ins[i], chans[i]) for i in range(depth)])
        # dec.i works at the side of enc.i and unpools with enc.i's indices
        self.dec = nn.ModuleList([decoder_block(chans[i], chans[max(i - 1, 0)])
                                  for i in range(depth)])
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.head = nn.Conv2d(chans[0], num_classes, kernel_size=1)
        # <<< Q8.1

    def forward(self, x):
        # >>> Q8.1 pool keeping indices; decoder: unpool with the indices of the same level, then the dec block
        indices, sizes = [], []
        for enc in self.enc:
            x = enc(x)
            sizes.append(x.shape[-2:])
            x, idx = self.pool(x)          # idx: flat h * W + w per (sample, channel)
            indices.append(idx)
        for i in reversed(range(len(self.dec))):
            x = self.unpool(x, indices[i], output_size=sizes[i])   # the lesson
            x = self.dec[i](x)
        return self.head(x)
        # <<< Q8.1


def build(num_outputs, args):
    return SegNet(num_outputs)


def step(args):
    return Step("08_segnet", size_multiple=8)



if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
