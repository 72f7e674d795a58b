"""Mistakes learners make, as one change to the answer, and what to tell them.

The checker (common/checker.py) replays the mistakes of a question when the
learner's code differs from the answer: if a mistake computes what the
learner's code computes (same output shape, or the same numbers within the
parity tolerance), its text is shown. The match is by the numbers, so a
learner who wrote the same mistake in other words is told too. The tests
(tests/test_workshop.py) write each mistake into a learner's file and check
that the checker fails and names it; a change that no longer applies to the
answer fails there too.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    qid: str
    text: str      # what the learner is told
    old: str       # a line of the answer (it must occur exactly once)
    new: str       # the same line with the mistake

    def apply(self, answer: str) -> str:
        if answer.count(self.old) != 1:
            raise ValueError(f"mistake of {self.qid} ({self.text[:40]}...): {self.old!r} occurs "
                             f"{answer.count(self.old)} times in the answer, not once")
        return answer.replace(self.old, self.new)


BN_FIRST = ("Is BatchNorm before the ReLU? The exercise's CBR is Conv -> ReLU -> BatchNorm "
            "(most papers, and ConvBNReLU in steps 08-09, put BatchNorm first).")
SIGMOID_FOR_SOFTMAX = ("Sigmoid instead of softmax? Each class is scored on its own by a "
                       "sigmoid; softmax cross-entropy makes the classes of a pixel compete.")
RESHAPE_WITHOUT_MOVING = ("The reshape to [B*H*W, C] without moving the channel axis last first: "
                          "each row then mixes pixels and classes. Move the axis (permute/"
                          "transpose to [B, H, W, C]) before the reshape.")
SKIP_ORDER = ("The skip is concatenated in the other order: the question's order is "
              "[skip, upsampled] on the channel axis (the weights of `fuse` see them in that order).")
TRANSPOSED_STRIDE = ("A transposed convolution with stride 1 does not upsample: kernel 2 with "
                     "stride 2 turns every pixel into a 2x2 patch and doubles the side.")
THRESHOLD_PROBABILITY = ("Thresholding the logit at 0.5: the threshold is 0.5 on the probability "
                         "sigmoid(z), which is z > 0 on the logit.")
NO_TRAIN_MODE = ("Is the model in training mode during the step? In inference mode BatchNorm "
                 "normalises with its running statistics and does not update them (PyTorch "
                 "model.train(), Chainer using_config('train', True), TensorFlow and Keras "
                 "training=True).")
NO_UPDATE = ("No update: the gradients are computed but never applied. After the backward pass "
             "the optimizer's step (update) changes the weights.")
TEST_ON_BATCH = ("test_on_batch evaluates: it computes the loss in inference mode and updates "
                 "nothing. One training step in Keras is model.train_on_batch(x, y) on the "
                 "compiled model.")
MEAN_OVER_ALL = ("The mean over all pixels, ignored ones included: divide by the number of "
                 "labelled pixels, and give ignored pixels the weight 0.")
NEAREST_BILINEAR = ("Bilinear instead of nearest-neighbour upsampling: the question's "
                    "upsampling copies each pixel into a 2x2 patch.")
UNET_SKIP_ORDER = ("The skip is concatenated in the other order: the question's order is "
                   "[skip, upsampled] on the channel axis.")
UNPOOL_COPY = ("Upsampling by copying instead of unpooling: SegNet's decoder puts each value "
               "back where the encoder's max-pooling found it (the pooling indices of the same "
               "level) and leaves zeros elsewhere.")
ASPP_ORDER = ("The ASPP branches are concatenated in another order: 1x1, the atrous branches "
              "by rate, then image pooling.")
FCN_NO_RELU = ("fc6 and fc7 without their ReLU: they are the classifier's fully connected "
               "layers read as convolutions, each followed by a ReLU.")
DECODER_ORDER = ("The decoder concatenates in another order: the question's order is "
                 "[ASPP output upsampled, reduced low-level features].")

FRRU_REPLACES = ("The residual stream is replaced, not updated: an FRRU ADDS its upsampled "
                 "1x1 projection to z (z + up(to_residual(y))), so z keeps what it carried "
                 "from the units before.")
FRRU_CONCAT_ORDER = ("The FRRU concatenates in the other order: the question's order is "
                     "[y, pooled z] on the channel axis (conv1's weights see them in that order).")

MISTAKES = {
    ("pytorch", "01_binarization"): (
        Mistake("Q1.1", BN_FIRST, "return self.bn(F.relu(self.conv(x)))",
                "return F.relu(self.bn(self.conv(x)))"),
        Mistake("Q1.3", MEAN_OVER_ALL, "return (per_pixel * keep).sum() / keep.sum().clamp_min(1)",
                "return per_pixel.mean()"),
        Mistake("Q1.4", THRESHOLD_PROBABILITY, "return (logits[:, 0] > 0).to(torch.uint8)",
                "return (logits[:, 0] > 0.5).to(torch.uint8)"),
        Mistake("Q1.5", NO_TRAIN_MODE, "    model.train()\n    optimizer.zero_grad",
                "    optimizer.zero_grad"),
        Mistake("Q1.5", NO_UPDATE, "    optimizer.step()\n", ""),
    ),
    ("pytorch", "02_multiclass"): (
        Mistake("Q2.2", RESHAPE_WITHOUT_MOVING, "flat = logits.permute(0, 2, 3, 1).reshape(-1, c)",
                "flat = logits.reshape(-1, c)"),
        Mistake("Q2.2", SIGMOID_FOR_SOFTMAX,
                "total = F.cross_entropy(flat, labels, ignore_index=ignore, reduction=\"sum\")",
                "total = F.binary_cross_entropy_with_logits(flat, F.one_hot(labels.clamp(0, c - 1), c)"
                ".to(flat.dtype), reduction=\"none\").sum(1)[labels != ignore].sum()"),
    ),
    ("pytorch", "03_nearest"): (
        Mistake("Q3.1", NEAREST_BILINEAR, "F.interpolate(x, scale_factor=2, mode=\"nearest\")",
                "F.interpolate(x, scale_factor=2, mode=\"bilinear\", align_corners=False)"),
    ),
    ("pytorch", "04_transposed_conv"): (
        Mistake("Q4.1", TRANSPOSED_STRIDE,
                "self.up = nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)",
                "self.up = nn.ConvTranspose2d(width, width, kernel_size=2, stride=1)"),
    ),
    ("pytorch", "05_concat"): (
        Mistake("Q5.1", SKIP_ORDER, "x = torch.cat([skip, x], dim=1)",
                "x = torch.cat([x, skip], dim=1)"),
    ),
    ("pytorch", "06_unet"): (
        Mistake("Q6.2", UNET_SKIP_ORDER, "x = dec(torch.cat([skips.pop(), up(x)], dim=1))",
                "x = dec(torch.cat([up(x), skips.pop()], dim=1))"),
    ),
    ("pytorch", "07_fcn8s"): (
        Mistake("Q7.1", FCN_NO_RELU, "x = F.relu(self.fc7(F.relu(self.fc6(pool5))))",
                "x = self.fc7(self.fc6(pool5))"),
    ),
    ("pytorch", "08_segnet"): (
        Mistake("Q8.1", UNPOOL_COPY, "x = self.unpool(x, indices[i], output_size=sizes[i])",
                "x = nn.functional.interpolate(x, size=tuple(sizes[i]), mode=\"nearest\")"),
    ),
    ("pytorch", "09_deeplabv3plus"): (
        Mistake("Q9.1", ASPP_ORDER,
                "torch.cat([branch(x) for branch in self.branches], dim=1)",
                "torch.cat([branch(x) for branch in self.branches[::-1]], dim=1)"),
        Mistake("Q9.2", DECODER_ORDER, "x = torch.cat([x, self.reduce(low_level)], dim=1)",
                "x = torch.cat([self.reduce(low_level), x], dim=1)"),
    ),
    ("pytorch", "10_frrn"): (
        Mistake("Q10.1", FRRU_REPLACES,
                "z = z + F.interpolate(self.to_residual(y), scale_factor=self.scale, mode=\"nearest\")",
                "z = F.interpolate(self.to_residual(y), scale_factor=self.scale, mode=\"nearest\")"),
        Mistake("Q10.1", FRRU_CONCAT_ORDER, "torch.cat([y, pooled], dim=1)",
                "torch.cat([pooled, y], dim=1)"),
        Mistake("Q10.2", NEAREST_BILINEAR,
                "y = F.interpolate(y, scale_factor=2, mode=\"nearest\")  # back to full size",
                "y = F.interpolate(y, scale_factor=2, mode=\"bilinear\")  # back to full size"),
    ),
    ("chainer", "01_binarization"): (
        Mistake("Q1.1", BN_FIRST, "return self.bn(F.relu(self.conv(x)))",
                "return F.relu(self.bn(self.conv(x)))"),
        Mistake("Q1.3", MEAN_OVER_ALL, "return F.sigmoid_cross_entropy(z, y, normalize=True)",
                "return F.mean(F.sigmoid_cross_entropy(z, y, reduce=\"no\"))"),
        Mistake("Q1.4", THRESHOLD_PROBABILITY, "return (logits[:, 0] > 0).astype(np.uint8)",
                "return (logits[:, 0] > 0.5).astype(np.uint8)"),
        Mistake("Q1.5", NO_TRAIN_MODE, "with chainer.using_config(\"train\", True):\n",
                "with chainer.using_config(\"train\", False):\n"),
        Mistake("Q1.5", NO_UPDATE, "        optimizer.update()\n", ""),
    ),
    ("chainer", "02_multiclass"): (
        Mistake("Q2.2", RESHAPE_WITHOUT_MOVING,
                "flat = F.reshape(F.transpose(logits, (0, 2, 3, 1)), (-1, c))",
                "flat = F.reshape(logits, (-1, c))"),
        Mistake("Q2.2", SIGMOID_FOR_SOFTMAX,
                "return F.softmax_cross_entropy(flat, labels, ignore_label=ignore)",
                "t = flat.xp.where((labels != ignore)[:, None], (labels[:, None] == "
                "flat.xp.arange(c)).astype(np.int32), -1)\n"
                "    return F.sum(F.sigmoid_cross_entropy(flat, t, reduce=\"no\")) / "
                "max(int((labels != ignore).sum()), 1)"),
    ),
    ("chainer", "03_nearest"): (
        Mistake("Q3.1", NEAREST_BILINEAR, "x = F.unpooling_2d(x, 2, stride=2, cover_all=False)",
                "x = F.resize_images(x, (2 * x.shape[2], 2 * x.shape[3]), align_corners=False)"),
    ),
    ("chainer", "04_transposed_conv"): (
        Mistake("Q4.1", TRANSPOSED_STRIDE,
                "self.up = L.Deconvolution2D(width, width, ksize=2, stride=2)",
                "self.up = L.Deconvolution2D(width, width, ksize=2, stride=1)"),
    ),
    ("chainer", "05_concat"): (
        Mistake("Q5.1", SKIP_ORDER, "x = F.concat([skip, x], axis=1)",
                "x = F.concat([x, skip], axis=1)"),
    ),
    ("chainer", "06_unet"): (
        Mistake("Q6.2", UNET_SKIP_ORDER, "x = dec(F.concat([skips.pop(), up(x)], axis=1))",
                "x = dec(F.concat([up(x), skips.pop()], axis=1))"),
    ),
    ("chainer", "07_fcn8s"): (
        Mistake("Q7.1", FCN_NO_RELU, "x = F.relu(self.fc7(F.relu(self.fc6(pool5))))",
                "x = self.fc7(self.fc6(pool5))"),
    ),
    ("chainer", "08_segnet"): (
        Mistake("Q8.1", UNPOOL_COPY,
                "x = F.upsampling_2d(x, indices[i], 2, stride=2, outsize=sizes[i],\n"
                "                                cover_all=False)",
                "x = F.unpooling_2d(x, 2, stride=2, outsize=sizes[i], cover_all=False)"),
    ),
    ("chainer", "09_deeplabv3plus"): (
        Mistake("Q9.1", ASPP_ORDER,
                "F.concat([branch(x) for branch in self.branches], axis=1)",
                "F.concat([branch(x) for branch in self.branches[::-1]], axis=1)"),
        Mistake("Q9.2", DECODER_ORDER, "x = F.concat([x, self.reduce(low_level)], axis=1)",
                "x = F.concat([self.reduce(low_level), x], axis=1)"),
    ),
    ("chainer", "10_frrn"): (
        Mistake("Q10.1", FRRU_REPLACES, "z = z + nearest(self.to_residual(y), self.scale)",
                "z = nearest(self.to_residual(y), self.scale)"),
        Mistake("Q10.1", FRRU_CONCAT_ORDER, "F.concat([y, pooled], axis=1)",
                "F.concat([pooled, y], axis=1)"),
    ),
    ("tensorflow", "01_binarization"): (
        Mistake("Q1.1", BN_FIRST, "return self.bn(tf.nn.relu(self.conv(x)), training)",
                "return tf.nn.relu(self.bn(self.conv(x), training))"),
        Mistake("Q1.3", MEAN_OVER_ALL,
                "return tf.reduce_sum(per_pixel * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)",
                "return tf.reduce_mean(per_pixel)"),
        Mistake("Q1.4", THRESHOLD_PROBABILITY, "return tf.cast(logits[..., 0] > 0, tf.uint8)",
                "return tf.cast(logits[..., 0] > 0.5, tf.uint8)"),
        Mistake("Q1.5", NO_TRAIN_MODE, "loss = loss_fn(model(x, training=True), y)",
                "loss = loss_fn(model(x), y)"),
    ),
    ("tensorflow", "02_multiclass"): (
        Mistake("Q2.2", SIGMOID_FOR_SOFTMAX,
                "tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=flat)",
                "tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits("
                "labels=tf.one_hot(labels, c, dtype=flat.dtype), logits=flat), axis=-1)"),
        Mistake("Q2.2", MEAN_OVER_ALL,
                "return tf.reduce_sum(per_pixel * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)",
                "return tf.reduce_mean(per_pixel)"),
    ),
    ("tensorflow", "03_nearest"): (
        Mistake("Q3.1", NEAREST_BILINEAR,
                "tf.image.resize(x, 2 * tf.shape(x)[1:3], method=\"nearest\")",
                "tf.image.resize(x, 2 * tf.shape(x)[1:3], method=\"bilinear\")"),
    ),
    ("tensorflow", "04_transposed_conv"): (
        Mistake("Q4.1", TRANSPOSED_STRIDE,
                "self.up = ConvTranspose2D(width, width, kernel_size=2, stride=2)",
                "self.up = ConvTranspose2D(width, width, kernel_size=2, stride=1)"),
    ),
    ("tensorflow", "05_concat"): (
        Mistake("Q5.1", SKIP_ORDER, "x = tf.concat([skip, x], axis=-1)",
                "x = tf.concat([x, skip], axis=-1)"),
    ),
    ("tensorflow", "06_unet"): (
        Mistake("Q6.2", UNET_SKIP_ORDER,
                "x = dec(tf.concat([skips.pop(), up(x)], axis=-1), training)",
                "x = dec(tf.concat([up(x), skips.pop()], axis=-1), training)"),
    ),
    ("tensorflow", "07_fcn8s"): (
        Mistake("Q7.1", FCN_NO_RELU, "x = tf.nn.relu(self.fc7(tf.nn.relu(self.fc6(pool5))))",
                "x = self.fc7(self.fc6(pool5))"),
    ),
    ("tensorflow", "08_segnet"): (
        Mistake("Q8.1", UNPOOL_COPY, "x = unpool(x, indices[i], shapes[i])",
                "x = tf.image.resize(x, shapes[i][1:3], method=\"nearest\")"),
    ),
    ("tensorflow", "09_deeplabv3plus"): (
        Mistake("Q9.1", ASPP_ORDER,
                "tf.concat([branch(x, training) for branch in self.branches], axis=-1)",
                "tf.concat([branch(x, training) for branch in self.branches[::-1]], axis=-1)"),
        Mistake("Q9.2", DECODER_ORDER,
                "x = tf.concat([x, self.reduce(low_level, training)], axis=-1)",
                "x = tf.concat([self.reduce(low_level, training), x], axis=-1)"),
    ),
    ("tensorflow", "10_frrn"): (
        Mistake("Q10.1", FRRU_REPLACES, "z = z + nearest(self.to_residual(y), self.scale)",
                "z = nearest(self.to_residual(y), self.scale)"),
        Mistake("Q10.1", FRRU_CONCAT_ORDER, "tf.concat([y, pooled], axis=-1)",
                "tf.concat([pooled, y], axis=-1)"),
    ),
    ("keras", "01_binarization"): (
        Mistake("Q1.1", BN_FIRST,
                "activation=\"relu\", name=f\"{name}-conv\")(x)\n    return batch_norm(f\"{name}-bn\")(x)",
                "name=f\"{name}-conv\")(x)\n    return layers.ReLU()(batch_norm(f\"{name}-bn\")(x))"),
        Mistake("Q1.3", MEAN_OVER_ALL,
                "return ops.sum(per_pixel * keep) / ops.maximum(ops.sum(keep), 1.0)",
                "return ops.mean(per_pixel)"),
        Mistake("Q1.4", THRESHOLD_PROBABILITY, "ops.greater(logits[..., 0], 0)",
                "ops.greater(logits[..., 0], 0.5)"),
        Mistake("Q1.5", TEST_ON_BATCH, "return model.train_on_batch(x, y)",
                "return model.test_on_batch(x, y)"),
    ),
    ("keras", "02_multiclass"): (
        Mistake("Q2.2", SIGMOID_FOR_SOFTMAX, "log_p = ops.log_softmax(flat, axis=-1)",
                "log_p = ops.log_sigmoid(flat)"),
        Mistake("Q2.2", MEAN_OVER_ALL,
                "return ops.sum(per_pixel * keep) / ops.maximum(ops.sum(keep), 1.0)",
                "return ops.mean(per_pixel)"),
    ),
    ("keras", "03_nearest"): (
        Mistake("Q3.1", NEAREST_BILINEAR, "layers.UpSampling2D(2, interpolation=\"nearest\"",
                "layers.UpSampling2D(2, interpolation=\"bilinear\""),
    ),
    ("keras", "04_transposed_conv"): (
        Mistake("Q4.1", TRANSPOSED_STRIDE, "layers.Conv2DTranspose(width, 2, strides=2,",
                "layers.Conv2DTranspose(width, 2, strides=1,"),
    ),
    ("keras", "05_concat"): (
        Mistake("Q5.1", SKIP_ORDER, "layers.Concatenate(axis=-1, name=\"concat\")([skip, x])",
                "layers.Concatenate(axis=-1, name=\"concat\")([x, skip])"),
    ),
    ("keras", "06_unet"): (
        Mistake("Q6.2", UNET_SKIP_ORDER, "([skips.pop(), up])", "([up, skips.pop()])"),
    ),
    ("keras", "07_fcn8s"): (
        Mistake("Q7.1", FCN_NO_RELU,
                "padding=\"same\", activation=\"relu\", name=\"fc6\")(pool5)\n"
                "    x = layers.Conv2D(fc_width, 1, activation=\"relu\", name=\"fc7\")(x)",
                "padding=\"same\", name=\"fc6\")(pool5)\n"
                "    x = layers.Conv2D(fc_width, 1, name=\"fc7\")(x)"),
    ),
    ("keras", "08_segnet"): (
        Mistake("Q8.1", UNPOOL_COPY, "x = MaxUnpool(name=f\"unpool-{i}\")(x, indices[i])",
                "x = layers.UpSampling2D(2, interpolation=\"nearest\", name=f\"unpool-{i}\")(x)"),
    ),
    ("keras", "09_deeplabv3plus"): (
        Mistake("Q9.1", ASPP_ORDER, "name=f\"{name}-concat\")(branches)",
                "name=f\"{name}-concat\")(branches[::-1])"),
        Mistake("Q9.2", DECODER_ORDER, "name=f\"{name}-concat\")([x, low_level])",
                "name=f\"{name}-concat\")([low_level, x])"),
    ),
    ("keras", "10_frrn"): (
        Mistake("Q10.1", FRRU_REPLACES, "return y, layers.Add(name=f\"{name}-add\")([z, r])",
                "return y, r"),
        Mistake("Q10.1", FRRU_CONCAT_ORDER, "name=f\"{name}-concat\")([y, pooled])",
                "name=f\"{name}-concat\")([pooled, y])"),
    ),
}
